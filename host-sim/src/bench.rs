//! `host-sim bench`: the figures that matter for a fleet, each a median over repeated runs,
//! each beside its reference measured in the same run.

use std::{
    hint::black_box,
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use plugin_api::{DataCategory, FileQuery, LicenseState, Service};
use serde::Serialize;

use crate::{
    device::{DeviceHost, DeviceState},
    fleet,
    loader::{self, Plugin},
    world::{default_ksn, Setup, World},
};

#[derive(Serialize, Debug, Clone)]
pub struct BenchReport {
    pub abi_lookup_ns: f64,
    pub inproc_lookup_ns: f64,
    pub abi_ratio: f64,
    pub load_us: f64,
    pub policy_push_us_per_device: f64,
    pub fleet_devices: usize,
    pub fleet_story_s: f64,
    pub fleet_peak_rss_mib: f64,
    pub miss_requests: u64,
    pub miss_total_ms: f64,
    pub hit_lookups_per_s_2threads: f64,
    pub machine: String,
    pub repetitions: usize,
}

pub struct Options {
    pub fleet_devices: usize,
    /// Fewer and shorter repetitions (for tests); the figures are noisier.
    pub quick: bool,
}

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn world(plugin: Plugin, devices: usize, real_latency: bool) -> Result<World, String> {
    World::new(
        plugin,
        &Setup {
            keep_events: false,
            real_latency,
            ..Setup::new(devices)
        },
    )
}

fn files(n: usize) -> Vec<FileQuery> {
    (0..n)
        .map(|i| {
            let mut md5 = [0u8; 16];
            md5[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            FileQuery {
                md5,
                size_bytes: 4096,
            }
        })
        .collect()
}

/// Nanoseconds per call of `f`, over `calls` calls.
fn time_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        f();
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// A running task reached through the ABI and the same task's core linked in-process, each
/// with one file already in its cache.
struct LookupPair {
    world: World,
    core: ksn_plugin::Task<DeviceHost>,
    query: FileQuery,
}

fn lookup_pair(plugin: Plugin) -> Result<LookupPair, String> {
    let abi_world = world(plugin, 1, false)?;
    let abi = &abi_world.devices[0].task;
    abi.set_local(ACCEPT.into())
        .into_result()
        .map_err(|e| e.to_string())?;
    abi.start().into_result().map_err(|e| e.to_string())?;

    let state = Arc::new(DeviceState::new(
        1,
        abi_world.clock.clone(),
        abi_world.network.clone(),
        abi_world.local_lists.clone(),
    ));
    let core = ksn_plugin::Task::new(DeviceHost(state)).map_err(|e| e.to_string())?;
    core.set_license(LicenseState::VALID)
        .map_err(|e| e.to_string())?;
    core.set_local(ACCEPT).map_err(|e| e.to_string())?;
    core.start().map_err(|e| e.to_string())?;

    let query = files(1)[0];
    abi.check_file(query)
        .into_result()
        .map_err(|e| e.to_string())?;
    core.check_file(query);
    if !abi
        .check_file(query)
        .into_result()
        .map_err(|e| e.to_string())?
        .cached
        || !core.check_file(query).cached
    {
        return Err("the warmed lookup did not hit the cache".into());
    }
    Ok(LookupPair {
        world: abi_world,
        core,
        query,
    })
}

/// (1) A cache-hit lookup through the ABI and the same lookup on the core linked
/// in-process, alternating batches so both see the same machine.
fn lookups(plugin: Plugin, repetitions: usize, calls: usize) -> Result<(f64, f64), String> {
    let LookupPair { world, core, query } = lookup_pair(plugin)?;
    let abi = &world.devices[0].task;
    let mut through_abi = Vec::new();
    let mut in_process = Vec::new();
    for _ in 0..repetitions {
        through_abi.push(time_per_call(calls, || {
            black_box(abi.check_file(black_box(query)));
        }));
        in_process.push(time_per_call(calls, || {
            black_box(core.check_file(black_box(query)));
        }));
    }
    Ok((median(through_abi), median(in_process)))
}

/// For instruction counting (`valgrind --tool=callgrind host-sim bench-lookups ...`): runs
/// `calls` cache-hit lookups through the ABI (`abi`) or in-process (`core`).
pub fn lookups_only(plugin: Plugin, mode: &str, calls: usize) -> Result<(), String> {
    let LookupPair { world, core, query } = lookup_pair(plugin)?;
    let abi = &world.devices[0].task;
    match mode {
        "abi" => time_per_call(calls, || {
            black_box(abi.check_file(black_box(query)));
        }),
        "core" => time_per_call(calls, || {
            black_box(core.check_file(black_box(query)));
        }),
        other => return Err(format!("--mode: expected abi or core, got {other}")),
    };
    Ok(())
}

/// (2) Loading the plugin in a fresh process each time: open, layout check, logger,
/// factory. Measured inside the child, so process start-up is not counted.
fn load(plugin_path: &Path, repetitions: usize) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..repetitions {
        let out = Command::new(&exe)
            .arg("--plugin")
            .arg(plugin_path)
            .arg("bench-load")
            .output()
            .map_err(|e| format!("bench-load: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        times.push(text.trim().parse::<f64>().map_err(|_| {
            format!(
                "bench-load printed {text:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?);
    }
    Ok(median(times))
}

/// The child side of (2): microseconds to load and create one task.
pub fn load_once(path: &Path) -> Result<f64, String> {
    let started = Instant::now();
    let plugin = loader::load(path).map_err(|e| e.to_string())?;
    let ksn = default_ksn();
    let network = Arc::new(crate::network::Network::new(&ksn, false)?);
    let state = Arc::new(DeviceState::new(0, Arc::default(), network, Arc::default()));
    let device = crate::device::Device::boot(&plugin, state).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    black_box(device);
    Ok(elapsed.as_secs_f64() * 1e6)
}

/// (3a) One device's policy push, alternating two policies so each push changes settings.
fn policy_push(plugin: Plugin, repetitions: usize, pushes: usize) -> Result<f64, String> {
    let world = world(plugin, 1, false)?;
    let task = &world.devices[0].task;
    let policies = [
        fleet::FLEET_POLICY,
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}},
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

/// (3b) The fleet story in a fresh process, so its peak RSS is its own.
fn fleet_story(plugin_path: &Path, devices: usize) -> Result<fleet::FleetReport, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--plugin")
        .arg(plugin_path)
        .args(["fleet", "--json", "--devices", &devices.to_string()])
        .output()
        .map_err(|e| format!("fleet: {e}"))?;
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| {
            Some(fleet::FleetReport {
                devices: v["devices"].as_u64()? as usize,
                threads: v["threads"].as_u64()? as usize,
                phases: Vec::new(),
                story_s: v["story_s"].as_f64()?,
                peak_rss_mib: v["peak_rss_mib"].as_f64()?,
                passed: v["passed"].as_bool()?,
            })
        })
        .ok_or_else(|| {
            format!(
                "the fleet run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// (4) 10,000 concurrent lookups of 100 distinct files, 20 ms KSN latency (slept for
/// real): how many requests went out, and how long it all took.
fn miss_path(plugin: Plugin, lookups: usize, distinct: usize) -> Result<(u64, f64), String> {
    let world = world(plugin, 1, true)?;
    world.network.set_link(Service::PROXY, true, Some(20));
    let device = &world.devices[0];
    device
        .task
        .set_local(ACCEPT.into())
        .into_result()
        .map_err(|e| e.to_string())?;
    device
        .task
        .start()
        .into_result()
        .map_err(|e| e.to_string())?;
    let queries = files(distinct);
    let threads = 100;
    let per_thread = lookups / threads;
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (task, queries) = (&device.task, &queries);
            s.spawn(move || {
                for k in 0..per_thread {
                    black_box(task.check_file(queries[(t + k) % queries.len()]));
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    let requests = device
        .state
        .received
        .count(Service::PROXY, DataCategory::FILES)
        + device
            .state
            .received
            .count(Service::GLOBAL, DataCategory::FILES);
    Ok((requests, elapsed))
}

/// (5) Cache-hit lookups per second, two threads through the ABI.
fn hit_throughput(plugin: Plugin, repetitions: usize, duration: Duration) -> Result<f64, String> {
    let world = world(plugin, 1, false)?;
    let task = &world.devices[0].task;
    task.set_local(ACCEPT.into())
        .into_result()
        .map_err(|e| e.to_string())?;
    task.start().into_result().map_err(|e| e.to_string())?;
    let queries = files(64);
    for q in &queries {
        task.check_file(*q)
            .into_result()
            .map_err(|e| e.to_string())?;
    }
    let mut rates = Vec::new();
    for _ in 0..repetitions {
        let started = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let queries = &queries;
                    s.spawn(move || {
                        let mut n = 0u64;
                        let mut i = t * 32;
                        while started.elapsed() < duration {
                            for _ in 0..1024 {
                                black_box(task.check_file(queries[i % queries.len()]));
                                i += 1;
                            }
                            n += 1024;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        rates.push(total as f64 / started.elapsed().as_secs_f64());
    }
    Ok(median(rates))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

pub fn run(plugin: Plugin, plugin_path: &Path, options: &Options) -> Result<BenchReport, String> {
    let (repetitions, calls) = if options.quick {
        (3, 20_000)
    } else {
        (15, 1_000_000)
    };
    let (abi_lookup_ns, inproc_lookup_ns) = lookups(plugin, repetitions, calls)?;
    let load_us = load(plugin_path, if options.quick { 3 } else { 15 })?;
    let policy_push_us_per_device =
        policy_push(plugin, repetitions, if options.quick { 200 } else { 2_000 })?;
    let story = fleet_story(plugin_path, options.fleet_devices)?;
    if !story.passed {
        return Err("the fleet story did not leave every device as expected".into());
    }
    let (miss_requests, miss_total_ms) = miss_path(plugin, 10_000, 100)?;
    let hit = hit_throughput(
        plugin,
        if options.quick { 3 } else { 7 },
        Duration::from_millis(if options.quick { 50 } else { 500 }),
    )?;
    Ok(BenchReport {
        abi_lookup_ns,
        inproc_lookup_ns,
        abi_ratio: abi_lookup_ns / inproc_lookup_ns,
        load_us,
        policy_push_us_per_device,
        fleet_devices: story.devices,
        fleet_story_s: story.story_s,
        fleet_peak_rss_mib: story.peak_rss_mib,
        miss_requests,
        miss_total_ms,
        hit_lookups_per_s_2threads: hit,
        machine: machine(),
        repetitions,
    })
}

pub fn table(r: &BenchReport) -> String {
    let rows: Vec<(String, String, String, bool)> = vec![
        (
            "cache-hit file lookup through the ABI".into(),
            format!(
                "{:.1} ns (in-process core {:.1} ns, ratio {:.2})",
                r.abi_lookup_ns, r.inproc_lookup_ns, r.abi_ratio
            ),
            "≤ 100 ns, ratio ≤ 1.5".into(),
            r.abi_lookup_ns <= 100.0 && r.abi_ratio <= 1.5,
        ),
        (
            "plugin load (open, layout check, factory)".into(),
            format!("{:.0} µs", r.load_us),
            "≤ 1000 µs".into(),
            r.load_us <= 1000.0,
        ),
        (
            "policy push per device".into(),
            format!("{:.2} µs", r.policy_push_us_per_device),
            "≤ 20 µs".into(),
            r.policy_push_us_per_device <= 20.0,
        ),
        (
            format!("Private KSN story, {} devices", r.fleet_devices),
            format!(
                "{:.2} s, peak RSS {:.0} MiB",
                r.fleet_story_s, r.fleet_peak_rss_mib
            ),
            "≤ 5 s, ≤ 2048 MiB (at 100,000)".into(),
            r.fleet_story_s <= 5.0 && r.fleet_peak_rss_mib <= 2048.0,
        ),
        (
            "10,000 concurrent misses, 100 files, 20 ms".into(),
            format!("{} requests, {:.0} ms", r.miss_requests, r.miss_total_ms),
            "≤ 100 requests, ≤ 1000 ms".into(),
            r.miss_requests <= 100 && r.miss_total_ms <= 1000.0,
        ),
        (
            "cache-hit lookups per second, 2 threads".into(),
            format!("{:.1} million", r.hit_lookups_per_s_2threads / 1e6),
            "≥ 10 million".into(),
            r.hit_lookups_per_s_2threads >= 10e6,
        ),
    ];
    let mut out = format!("{}\nmedians of {} repetitions\n", r.machine, r.repetitions);
    out.push_str(&format!(
        "{:<44} {:<48} {:<30} {}\n",
        "figure", "measured", "target", ""
    ));
    for (name, value, target, met) in rows {
        out.push_str(&format!(
            "{name:<44} {value:<48} {target:<30} {}\n",
            if met { "met" } else { "MISSED" }
        ));
    }
    out
}
