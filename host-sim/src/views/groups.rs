//! The administration groups, in the tree's order, with their devices' statuses counted
//! over each subtree.
use serde::Serialize;
use utoipa::ToSchema;

use crate::world::World;
use admin_server::status::Status;
use admin_server::tree::{GroupId, Tree};

/// An administration group.
#[derive(Serialize, ToSchema)]
pub struct GroupRow {
    pub path: String,
    pub name: String,
    /// 0 for the root, 1 for its subgroups, and so on.
    pub depth: usize,
    pub inherit: bool,
    /// The group's own Private KSN setting; none where it follows its parent or the server.
    pub private_ksn: Option<bool>,
    /// Whether its devices use Private KSN (its own setting, a parent's, or the server's).
    pub uses_private_ksn: bool,
    /// Devices of the group itself.
    pub own_devices: usize,
    /// Devices of the group and its subgroups.
    pub devices: usize,
    /// OK, Warning, Critical, of the group's own devices and its subgroups'.
    pub counts: [usize; 3],
    pub active_policy: Option<String>,
    /// Every policy of the group, active or not.
    pub policies: Vec<String>,
}

/// Every live group, each followed by its subgroups (depth first, by name).
pub fn group_rows(world: &World, statuses: &[(Status, Vec<String>)]) -> Vec<GroupRow> {
    let server = &world.server;
    let tree = server.tree();
    // One pass over the devices: each adds to its group; then each group's totals flow up.
    let mut own = vec![[0usize; 3]; tree.len()];
    for (i, d) in server.devices().iter().enumerate() {
        own[d.group][statuses.get(i).map_or(0, |s| s.0 as usize)] += 1;
    }
    let order = depth_first(tree);
    let mut total = own.clone();
    for &(g, _) in order.iter().rev() {
        if let Some(parent) = tree.group(g).parent {
            let below = total[g];
            for (t, b) in total[parent].iter_mut().zip(below) {
                *t += b;
            }
        }
    }
    order
        .into_iter()
        .map(|(id, depth)| {
            let group = tree.group(id);
            GroupRow {
                path: tree.path(id),
                name: group.name.clone(),
                depth,
                inherit: group.inherit,
                private_ksn: group.private_ksn,
                uses_private_ksn: tree.private_ksn(id, server.private_ksn()),
                own_devices: own[id].iter().sum(),
                devices: total[id].iter().sum(),
                counts: total[id],
                active_policy: server.active_policy(id).map(|p| p.name.clone()),
                policies: server
                    .policies()
                    .iter()
                    .filter(|p| p.group == id)
                    .map(|p| p.name.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The live groups with their depths, each before its subgroups, siblings by name.
fn depth_first(tree: &Tree) -> Vec<(GroupId, usize)> {
    let mut children: Vec<Vec<GroupId>> = vec![Vec::new(); tree.len()];
    for g in tree.live() {
        if let Some(parent) = tree.group(g).parent {
            children[parent].push(g);
        }
    }
    for list in &mut children {
        list.sort_by(|a, b| tree.group(*a).name.cmp(&tree.group(*b).name));
    }
    let mut order = Vec::new();
    let mut stack = vec![(Tree::ROOT, 0)];
    while let Some((g, depth)) = stack.pop() {
        order.push((g, depth));
        stack.extend(children[g].iter().rev().map(|&c| (c, depth + 1)));
    }
    order
}
