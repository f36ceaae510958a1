//! What a simulated device holds, part by part, at the fleet's size: the process's resident
//! memory read as each part is made for every device in turn (the Administration Server's
//! model of the devices, each device's host state, each device's task in the plugin). What
//! the story adds on top (journals, events, statuses) is its phases' RSS.

use std::sync::Arc;

use host_sim::{
    fleet,
    network::Network,
    world::{admin, default_ksn, Device, DeviceState, Setup},
};
use plugin_api::loader::Plugin;

/// Bytes a device, by part.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub server: f64,
    pub host: f64,
    pub task: f64,
}

fn rss_bytes() -> f64 {
    fleet::rss_mib() * 1024.0 * 1024.0
}

/// Each part of `devices` devices, made in this order and held until the end.
pub fn per_device(plugin: Plugin, devices: usize) -> Result<Parts, String> {
    let (in_root, groups) = fleet::groups(devices);
    let setup = Setup {
        groups,
        ..Setup::counting(in_root)
    };
    let each = |bytes: f64| bytes / devices.max(1) as f64;
    let before = rss_bytes();
    let server = admin::server_for(&setup)?;
    let with_server = rss_bytes();
    let network = Arc::new(Network::new(&default_ksn(), false)?);
    let states: Vec<Arc<DeviceState>> = (0..devices)
        .map(|id| {
            Arc::new(DeviceState::new(
                id,
                Arc::default(),
                network.clone(),
                Arc::default(),
            ))
        })
        .collect();
    let with_states = rss_bytes();
    let booted = states
        .iter()
        .map(|state| Device::boot(&plugin, state.clone(), 0).map(|(device, _)| device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let with_tasks = rss_bytes();
    std::hint::black_box((&server, &booted));
    Ok(Parts {
        server: each(with_server - before),
        host: each(with_states - with_server),
        task: each(with_tasks - with_states),
    })
}
