//! Months of uptime: what a restart costs after a long history, how much storage that
//! history takes, how a long scenario runs, and whether memory grows with lookups.

use std::{hint::black_box, path::Path, sync::Arc, time::Instant};

use host_sim::{
    network::DatabaseSpec,
    scenario::{self, runner},
    storage::{MemoryStorage, Storage},
    world::{default_ksn, Device, DeviceState, Setup, World},
};
use plugin_api::{loader::Plugin, FileQuery, Verdict};

use crate::{
    lookups::{files, ACCEPT},
    report::median,
};

/// A file on the device's own deny list: each lookup of it is a detection, with no request.
const DENIED: &str = "0badf11e0badf11e0badf11e0badf11e";

fn denied() -> FileQuery {
    FileQuery {
        md5: FileQuery::parse_md5(DENIED).expect("an MD5"),
        size_bytes: 10,
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn detecting_world(plugin: Plugin) -> Result<World, String> {
    let mut local_lists = DatabaseSpec::default();
    local_lists.files.insert(DENIED.into(), Verdict::UNTRUSTED);
    let world = World::new(
        plugin,
        &Setup {
            local_lists,
            ..Setup::counting(1)
        },
    )?;
    let task = &world.devices[0].task;
    ok(task.set_local(ACCEPT.into()).into_result())?;
    ok(task.start().into_result())?;
    Ok(world)
}

/// After each number of detections in `counts` (cumulative, ascending): how long a restart
/// of the host takes to restore the task (median of 5, milliseconds), and how many MiB its
/// storage holds.
pub fn restore_after_detections(
    plugin: Plugin,
    counts: &[u64],
) -> Result<Vec<(u64, f64, f64)>, String> {
    let world = detecting_world(plugin)?;
    let device = world.devices[0].clone();
    let query = denied();
    let mut done = 0;
    let mut out = Vec::new();
    for &count in counts {
        while done < count {
            black_box(ok(device.task.check_file(query).into_result())?);
            done += 1;
        }
        let records = ok(device.state.storage.records("journal"))?;
        let bytes: usize = records.iter().map(Vec::len).sum();
        let mut times = Vec::new();
        for _ in 0..5 {
            // The host restarts: a new instance over the records the old one left (a
            // copy, since the old instance keeps running for the next count).
            let copy = MemoryStorage::default();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            ok(copy.replace("journal", &refs))?;
            let state = DeviceState::with_storage(
                device.state.id,
                device.state.clock.clone(),
                device.state.network.clone(),
                device.state.local_lists.clone(),
                Arc::new(copy),
            );
            state.set_environment(|env| *env = device.state.environment());
            let state = Arc::new(state);
            let started = Instant::now();
            let restored = Device::boot(&plugin, state, 0).map_err(|e| e.to_string())?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            drop(restored);
        }
        out.push((count, median(times), bytes as f64 / (1 << 20) as f64));
    }
    Ok(out)
}

/// A single-device scenario of `steps` lookups, every other one a detection, run as
/// `host-sim run` runs it (the watchdog included): seconds, and the process's peak
/// resident memory (MiB).
pub fn long_run_s(plugin: Plugin, steps: usize) -> Result<(f64, f64), String> {
    let trusted = "e99a18c428cb38d5f260853678922e03";
    let mut text = format!(
        r#"{{"name": "{steps} lookups", "local_lists": {{"files": {{"{DENIED}": "untrusted"}}}},
            "steps": [{{"do": "set_local", "settings": {ACCEPT}}}, {{"do": "start"}}"#
    );
    for i in 0..steps.saturating_sub(2) {
        let md5 = if i % 2 == 0 { DENIED } else { trusted };
        text.push_str(&format!(
            r#", {{"do": "check_file", "md5": "{md5}", "size_bytes": 10}}"#
        ));
    }
    text.push_str("]}");
    let parsed = scenario::parse(&text)?;
    // As `host-sim run`: the text goes once the steps are parsed.
    drop(text);
    let options = runner::Options {
        watchdog: Some(runner::DEFAULT_WATCHDOG),
        database: None,
        whole_timeline: false,
    };
    let started = Instant::now();
    let outcome = runner::run(plugin, &parsed, "long run", &default_ksn(), &options);
    let elapsed = started.elapsed().as_secs_f64();
    if !outcome.passed {
        return Err(format!("the long run failed: {:?}", outcome.failure));
    }
    Ok((elapsed, host_sim::fleet::peak_rss_mib()))
}

/// `long_run_s` in a process of its own (`ksn-bench long-run`), so that no earlier
/// measurement's heap is in its way, as `host-sim run` would run it.
pub fn long_run_in_own_process(
    plugin_path: &std::path::Path,
    steps: usize,
) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("--plugin")
        .arg(plugin_path)
        .args(["long-run", "--steps", &steps.to_string()])
        .output()
        .map_err(|e| format!("long-run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    match (
        fields.next().and_then(|s| s.parse().ok()),
        fields.next().and_then(|r| r.parse().ok()),
    ) {
        (Some(seconds), Some(rss)) => Ok((seconds, rss)),
        _ => Err(format!(
            "the long run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One task, `lookups` lookups of distinct files after a warm-up that fills the cache and
/// the ledger: how much the process's resident memory grew, per lookup (bytes).
pub fn rss_per_lookup(plugin: Plugin, warm_up: usize, lookups: usize) -> Result<f64, String> {
    let world = World::new(
        plugin,
        &Setup {
            ..Setup::counting(1)
        },
    )?;
    let task = world.devices[0].task.clone();
    ok(task.set_local(ACCEPT.into()).into_result())?;
    ok(task.start().into_result())?;
    let queries = files(warm_up + lookups);
    let tick_every = 10_000;
    let run = |range: std::ops::Range<usize>| -> Result<(), String> {
        for (n, i) in range.enumerate() {
            black_box(ok(task.check_file(queries[i]).into_result())?);
            if n % tick_every == 0 {
                world.clock.advance(60_000);
                ok(task.tick().into_result())?;
            }
        }
        Ok(())
    };
    run(0..warm_up)?;
    let before = rss_bytes();
    run(warm_up..warm_up + lookups)?;
    let after = rss_bytes();
    drop(queries);
    Ok(after.saturating_sub(before) as f64 / lookups as f64)
}

/// The fleet story with the devices' records in an SQLite host database, in a process of
/// its own: seconds, and the bytes of the file per device once the process ended (its WAL
/// checkpointed into it).
pub fn fleet_story_sqlite(plugin_path: &Path, devices: usize) -> Result<(f64, f64), String> {
    let dir = std::env::temp_dir().join(format!("ksn-bench-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("host.db");
    let story = crate::fleet::story_with(plugin_path, devices, Some(&db));
    let bytes: u64 = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let _ = std::fs::remove_dir_all(&dir);
    let story = story?;
    if !story.passed {
        return Err("the fleet story on SQLite did not leave every device as expected".into());
    }
    Ok((story.story_s, bytes as f64 / devices.max(1) as f64))
}

/// The same on PostgreSQL (a throwaway cluster): seconds, and bytes per device.
pub fn fleet_story_postgres(
    plugin_path: &Path,
    devices: usize,
    cluster: &host_sim::pg_cluster::TempCluster,
) -> Result<(f64, f64), String> {
    let url = cluster.url("bench_story");
    let story = crate::fleet::story_with(plugin_path, devices, Some(Path::new(&url)))?;
    if !story.passed {
        return Err("the fleet story on PostgreSQL did not leave every device as expected".into());
    }
    let bytes = host_sim::storage::HostStore::open(Path::new(&url))?.size_bytes()?;
    Ok((story.story_s, bytes as f64 / devices.max(1) as f64))
}

/// A hierarchy of servers on PostgreSQL, run by `host-sim fleet --servers` (the host-sim
/// beside this executable) in a process of its own, so that the primary's RSS is its own.
pub fn hierarchy(
    plugin_path: &Path,
    devices: usize,
    cluster: &host_sim::pg_cluster::TempCluster,
) -> Result<host_sim::hierarchy::HierarchyReport, String> {
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("host-sim");
    if !exe.is_file() {
        return Err(format!(
            "{}: not built (cargo build --release builds it)",
            exe.display()
        ));
    }
    let servers = devices
        .div_ceil(host_sim::hierarchy::MOST_PER_SERVER)
        .max(2);
    let out = std::process::Command::new(&exe)
        .arg("--plugin")
        .arg(plugin_path)
        .args(["fleet", "--json", "--servers", &servers.to_string()])
        .args([
            "--devices",
            &devices.to_string(),
            "--db",
            &cluster.url("bench"),
        ])
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let report: host_sim::hierarchy::HierarchyReport = serde_json::from_slice(&out.stdout)
        .map_err(|e| {
            format!(
                "the hierarchy gave no report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    if !report.passed {
        return Err(format!(
            "the hierarchy did not leave every device as expected: {}",
            host_sim::hierarchy::text(&report)
        ));
    }
    Ok(report)
}
