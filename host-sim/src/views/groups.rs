//! The administration groups, with their devices' statuses counted over each subtree.
use serde::Serialize;
use utoipa::ToSchema;

use crate::world::World;
use admin_server::status::Status;

/// An administration group.
#[derive(Serialize, ToSchema)]
pub struct GroupRow {
    pub path: String,
    pub inherit: bool,
    pub private_ksn: Option<bool>,
    pub devices: usize,
    /// OK, Warning, Critical, of the group's own devices and its subgroups'.
    pub counts: [usize; 3],
    pub active_policy: Option<String>,
}

pub fn group_rows(world: &World, statuses: &[(Status, Vec<String>)]) -> Vec<GroupRow> {
    let tree = &world.server.tree();
    tree.live()
        .map(|id| {
            let mut counts = [0; 3];
            let mut devices = 0;
            for (i, d) in world.server.devices().iter().enumerate() {
                if tree.within(d.group, id) {
                    devices += 1;
                    counts[statuses.get(i).map_or(0, |s| s.0 as usize)] += 1;
                }
            }
            let group = tree.group(id);
            GroupRow {
                path: tree.path(id),
                inherit: group.inherit,
                private_ksn: group.private_ksn,
                devices,
                counts,
                active_policy: world.server.active_policy(id).map(|p| p.name.clone()),
            }
        })
        .collect()
}
