//! The server: its Private KSN setting, the licence, the KSN services, the deliveries.
use serde::Serialize;
use utoipa::ToSchema;

use crate::world::World;
use plugin_api::Service;

/// A KSN service as the simulation plays it.
#[derive(Serialize, ToSchema)]
pub struct ServiceRow {
    pub service: String,
    pub up: bool,
    pub latency_ms: u32,
    /// Items received from every device so far.
    pub received: u64,
}

/// The server: Private KSN, the licence, the services, the host time.
#[derive(Serialize, ToSchema)]
pub struct ServerView {
    pub private_ksn: bool,
    pub license: String,
    pub time_ms: u64,
    pub devices: usize,
    pub services: Vec<ServiceRow>,
    /// The plugin versions the fleet runs, with how many devices run each.
    pub plugins: Vec<PluginCount>,
}

/// A plugin version of the fleet.
#[derive(Serialize, ToSchema)]
pub struct PluginCount {
    pub name: String,
    pub version: String,
    pub contract: String,
    pub devices: usize,
    /// Of those, the devices whose statement is accepted (as their consent events said).
    pub accepted: usize,
    /// Devices an update will install it on at their next synchronisation.
    pub installing: usize,
}

/// Devices by the plugin version they run (in the order the host loaded them).
pub fn plugin_counts(world: &World) -> Vec<PluginCount> {
    let mut counts: Vec<PluginCount> = Vec::new();
    let mut place = std::collections::HashMap::new();
    for (i, d) in world.devices.iter().enumerate() {
        let v = &world.plugins[d.plugin].version;
        let at = *place.entry(v.label()).or_insert_with(|| {
            counts.push(PluginCount {
                name: v.name.clone(),
                version: v.version.clone(),
                contract: v.contract.clone(),
                devices: 0,
                accepted: 0,
                installing: 0,
            });
            counts.len() - 1
        });
        counts[at].devices += 1;
        counts[at].accepted += usize::from(world.server.device(i).accepted == Some(true));
    }
    for d in world.server.devices() {
        if let Some(library) = &d.install {
            if let Some(v) = world
                .plugins
                .iter()
                .find(|p| p.library.as_deref() == Some(library.as_str()))
            {
                if let Some(&at) = place.get(&v.version.label()) {
                    counts[at].installing += 1;
                }
            }
        }
    }
    counts
}

pub fn server_view(world: &World) -> ServerView {
    ServerView {
        private_ksn: world.server.private_ksn(),
        license: world.devices.first().map_or("valid".to_string(), |d| {
            d.state.environment().license.to_string()
        }),
        time_ms: world.clock.now_ms(),
        devices: world.devices.len(),
        services: SERVICES
            .iter()
            .zip(sample(world).received)
            .map(|(&service, received)| {
                let (up, latency_ms) = world.network.link(service);
                ServiceRow {
                    service: service.to_string(),
                    up,
                    latency_ms,
                    received,
                }
            })
            .collect(),
        plugins: plugin_counts(world),
    }
}

/// One change's delivery to the devices it reaches now.
#[derive(Serialize, ToSchema)]
pub struct DeliveryRow {
    /// Numbered in the order the changes were saved.
    pub id: u64,
    /// What was saved.
    pub what: String,
    /// The devices it reaches now (connected ones; the others get it at their next
    /// synchronisation).
    pub total: usize,
    pub delivered: usize,
    /// Devices whose task refused it.
    pub failed: usize,
    pub done: bool,
    /// Who made the change (none for the server's own).
    pub by: Option<String>,
}

pub fn delivery_rows(world: &World) -> Vec<DeliveryRow> {
    world
        .deliveries
        .progress()
        .into_iter()
        .map(|p| DeliveryRow {
            id: p.id,
            what: p.what,
            total: p.total,
            delivered: p.delivered,
            failed: p.failed,
            done: p.done,
            by: p.by,
        })
        .collect()
}

/// What each KSN service had received at one moment of host time, summed over devices.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub time_ms: u64,
    pub received: [u64; 3],
}

/// The services a server page shows, in its order.
pub const SERVICES: [Service; 3] = [Service::GLOBAL, Service::PROXY, Service::PRIVATE];

pub fn sample(world: &World) -> Sample {
    let mut received = [0; 3];
    for device in &world.devices {
        for (total, service) in received.iter_mut().zip(SERVICES) {
            *total += device.state.received.total(service);
        }
    }
    Sample {
        time_ms: world.clock.now_ms(),
        received,
    }
}
