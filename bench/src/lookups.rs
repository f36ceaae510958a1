//! The lookup path: a cache hit through the ABI beside the same core linked in-process,
//! hits per second on two threads, and concurrent misses sharing one request per file.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use host_sim::world::{DeviceHost, DeviceState, Setup, World};
use plugin_api::{loader::Plugin, DataCategory, FileQuery, LicenseState, Service};

use crate::report::median;

pub const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

pub fn world(plugin: Plugin, devices: usize, real_latency: bool) -> Result<World, String> {
    World::new(
        plugin,
        &Setup {
            real_latency,
            ..Setup::counting(devices)
        },
    )
}

pub fn files(n: usize) -> Vec<FileQuery> {
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
pub fn time_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        f();
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// A running task reached through the ABI and the same task's core linked in-process,
/// each with one file already in its cache.
pub struct LookupPair {
    pub world: World,
    pub core: ksn_plugin::Task<DeviceHost>,
    pub query: FileQuery,
}

pub fn lookup_pair(plugin: Plugin) -> Result<LookupPair, String> {
    let abi_world = world(plugin, 1, false)?;
    let abi = &abi_world.devices[0].task;
    ok(abi.set_local(ACCEPT.into()).into_result())?;
    ok(abi.start().into_result())?;

    let state = Arc::new(DeviceState::new(
        1,
        abi_world.clock.clone(),
        abi_world.network.clone(),
        abi_world.local_lists.clone(),
    ));
    let core = ok(ksn_plugin::Task::new(DeviceHost(state)))?;
    ok(core.set_license(LicenseState::VALID))?;
    ok(core.set_local(ACCEPT))?;
    ok(core.start())?;

    let query = files(1)[0];
    ok(abi.check_file(query).into_result())?;
    core.check_file(query);
    if !ok(abi.check_file(query).into_result())?.cached || !core.check_file(query).cached {
        return Err("the warmed lookup did not hit the cache".into());
    }
    Ok(LookupPair {
        world: abi_world,
        core,
        query,
    })
}

/// A cache-hit lookup through the ABI, the same lookup on the core linked in-process, and
/// `third` (the same hit through the C API), alternating batches so all three see the same
/// machine.
pub fn hit_ns(
    plugin: Plugin,
    // Generic, not `dyn`: each path's call is then made from the timing loop itself, as
    // the ABI's is (a `dyn` call would add an indirect call to the C API's figure only).
    mut third: impl FnMut(),
    repetitions: usize,
    calls: usize,
) -> Result<(f64, f64, f64), String> {
    let LookupPair { world, core, query } = lookup_pair(plugin)?;
    let abi = &world.devices[0].task;
    let mut through_abi = Vec::new();
    let mut in_process = Vec::new();
    let mut through_capi = Vec::new();
    for _ in 0..repetitions {
        through_abi.push(time_per_call(calls, || {
            black_box(abi.check_file(black_box(query)));
        }));
        in_process.push(time_per_call(calls, || {
            black_box(core.check_file(black_box(query)));
        }));
        through_capi.push(time_per_call(calls, &mut third));
    }
    Ok((
        median(through_abi),
        median(in_process),
        median(through_capi),
    ))
}

/// For instruction counting (`valgrind --tool=callgrind ksn-bench lookups ...`): `calls`
/// cache-hit lookups through the ABI (`abi`) or in-process (`core`); `capi` is served by
/// main, which owns the C API's loader.
pub fn hits_only(plugin: Plugin, mode: &str, calls: usize) -> Result<(), String> {
    let LookupPair { world, core, query } = lookup_pair(plugin)?;
    let abi = &world.devices[0].task;
    match mode {
        "abi" => time_per_call(calls, || {
            black_box(abi.check_file(black_box(query)));
        }),
        "core" => time_per_call(calls, || {
            black_box(core.check_file(black_box(query)));
        }),
        other => return Err(format!("--mode: expected abi, capi or core, got {other}")),
    };
    Ok(())
}

/// 10,000 concurrent lookups of 100 distinct files, 20 ms KSN latency (slept for real):
/// how many requests went out, and how long it all took.
pub fn misses(plugin: Plugin, lookups: usize, distinct: usize) -> Result<(u64, f64), String> {
    let world = world(plugin, 1, true)?;
    world.network.set_link(Service::PROXY, true, Some(20));
    let device = &world.devices[0];
    ok(device.task.set_local(ACCEPT.into()).into_result())?;
    ok(device.task.start().into_result())?;
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
    let received = &device.state.received;
    let requests = received.count(Service::PROXY, DataCategory::FILES)
        + received.count(Service::GLOBAL, DataCategory::FILES);
    Ok((requests, elapsed))
}

/// Cache-hit lookups per second, two threads through the ABI.
pub fn hits_per_second(
    plugin: Plugin,
    repetitions: usize,
    duration: Duration,
) -> Result<f64, String> {
    let world = world(plugin, 1, false)?;
    let task = &world.devices[0].task;
    ok(task.set_local(ACCEPT.into()).into_result())?;
    ok(task.start().into_result())?;
    let queries = files(64);
    for q in &queries {
        ok(task.check_file(*q).into_result())?;
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

/// A cached *untrusted* hit on the core over the contract's in-memory host: the action,
/// the one durable record, the event; microseconds (median of batches) and allocations
/// per hit (the host's own included: its storage and event record copy what they get).
pub fn untrusted_hit(repetitions: usize, hits: usize) -> Result<(f64, f64), String> {
    let host = plugin_api::testing::TestHost::default();
    let query = files(1)[0];
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert(query.md5, plugin_api::Verdict::UNTRUSTED);
    // The retention the host keeps (the default): compaction, amortised, included.
    let task = ok(ksn_plugin::Task::new(host.clone()))?;
    ok(task.set_license(LicenseState::VALID))?;
    ok(task.set_local(ACCEPT))?;
    ok(task.start())?;
    let object = plugin_api::ObjectRef::new(7, "");
    if !task
        .check_object(query, object)
        .action
        .eq(&plugin_api::ObjectAction::DELETED)
        || !task.check_object(query, object).cached
    {
        return Err("the untrusted file was not deleted from the cache".into());
    }
    let mut times = Vec::new();
    let mut allocations = Vec::new();
    for _ in 0..repetitions {
        // The host's records of earlier batches go, as a host's storage would keep them
        // elsewhere: memory stays flat between batches.
        host.0.events.lock().unwrap().clear();
        host.0.deleted.lock().unwrap().clear();
        let before = crate::allocations::count();
        let ns = time_per_call(hits, || {
            black_box(task.check_object(black_box(query), object));
        });
        allocations.push((crate::allocations::count() - before) as f64 / hits as f64);
        times.push(ns / 1000.0);
    }
    Ok((median(times), median(allocations)))
}
