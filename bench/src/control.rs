//! The control path: loading the plugin, a policy push, and how long a withdrawal takes
//! while sends are in flight.

use std::{
    hint::black_box,
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use host_sim::world::{Device, DeviceState};
use plugin_api::{loader, loader::Plugin, Service};

use crate::{
    lookups::{files, time_per_call, world},
    report::median,
};

/// Loading the plugin in a fresh process each time: open, layout check, logger, factory.
/// Measured inside the child, so process start-up is not counted.
pub fn load_us(plugin_path: &Path, repetitions: usize) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..repetitions {
        let out = Command::new(&exe)
            .arg("--plugin")
            .arg(plugin_path)
            .arg("load-once")
            .output()
            .map_err(|e| format!("load-once: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        times.push(text.trim().parse::<f64>().map_err(|_| {
            format!(
                "load-once printed {text:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?);
    }
    Ok(median(times))
}

/// The child side of `load_us`: microseconds to load and create one task.
pub fn load_once(path: &Path) -> Result<f64, String> {
    let started = Instant::now();
    let plugin = loader::load(path).map_err(|e| e.to_string())?;
    let network = Arc::new(host_sim::network::Network::new(
        &host_sim::world::default_ksn(),
        false,
    )?);
    let state = Arc::new(DeviceState::new(0, Arc::default(), network, Arc::default()));
    let device = Device::boot(&plugin, state, 0).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    black_box(device);
    Ok(elapsed.as_secs_f64() * 1e6)
}

/// One device's policy push, alternating two policies so each push changes settings.
pub fn policy_push_us(plugin: Plugin, repetitions: usize, pushes: usize) -> Result<f64, String> {
    let world = world(plugin, 1, false)?;
    let task = &world.devices[0].task;
    // Pushed straight to the task, not through the server's editor: the acceptance
    // carries the versions of the statements the editor would have stamped.
    let policies = [
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}},
            "task": {"schedule": {"value": "at_application_start", "locked": true}}}}"#,
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}},
            "task": {"checksum_limit_mb": 8, "action_on_untrusted": {"value": "log", "locked": true}}}}"#,
    ];
    let mut times = Vec::new();
    for _ in 0..repetitions {
        let mut failed = None;
        let ns = time_per_call(pushes, || {
            for policy in policies {
                if let Err(e) = task.push_policy(policy.into()).into_result() {
                    failed = Some(e);
                }
            }
        });
        if let Some(e) = failed {
            return Err(e.to_string());
        }
        times.push(ns / 2.0 / 1e3);
    }
    Ok(median(times))
}

/// How long withdrawals take while requests are in flight, the services answering in 2 s
/// (slept for real) within a 10 s timeout: a full withdrawal with file requests in flight
/// (it waits for them), and a files-only withdrawal with only URL requests in flight
/// (nothing it affects: it does not wait). Milliseconds: (p50, max) and the unaffected max.
pub fn withdrawal_ms(plugin: Plugin, repetitions: usize) -> Result<(f64, f64, f64), String> {
    let world = world(plugin, 1, true)?;
    world.network.set_link(Service::PROXY, true, Some(2_000));
    let task = world.devices[0].task.clone();
    let accept = r#"{"data_handling": {"ksn_statement_accepted": true, "send_scanned_files_data": true}, "task": {"lookup_timeout_ms": 10000}}"#;
    let queries = files(10_000);
    let mut affected = Vec::new();
    let mut unaffected = Vec::new();
    for round in 0..repetitions {
        task.set_local(accept.into())
            .into_result()
            .map_err(|e| e.to_string())?;
        let _ = task.start().into_result();
        // URL requests in flight; withdraw files only.
        let withdraw_files = r#"{"data_handling": {"send_scanned_files_data": false}}"#;
        unaffected.push(while_in_flight(
            &task,
            |task, i| {
                black_box(
                    task.check_url(
                        format!("https://in-flight.example/{round}/{i}")
                            .as_str()
                            .into(),
                    ),
                );
            },
            withdraw_files,
        )?);
        task.set_local(accept.into())
            .into_result()
            .map_err(|e| e.to_string())?;
        // File requests in flight; withdraw everything.
        let base = round * 100;
        affected.push(while_in_flight(
            &task,
            |task, i| {
                black_box(task.check_file(queries[base + i]));
            },
            r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
        )?);
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    Ok((median(affected.clone()), max(&affected), max(&unaffected)))
}

/// Starts four requests, waits until they are surely in flight, then times `withdrawal`.
fn while_in_flight(
    task: &plugin_api::KsnTaskBox,
    request: impl Fn(&plugin_api::KsnTaskBox, usize) + Sync,
    withdrawal: &str,
) -> Result<f64, String> {
    std::thread::scope(|s| {
        for i in 0..4 {
            let request = &request;
            s.spawn(move || request(task, i));
        }
        // The requests take 2 s; a quarter of that and they are under way.
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        task.set_local(withdrawal.into())
            .into_result()
            .map_err(|e| e.to_string())?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    })
}
