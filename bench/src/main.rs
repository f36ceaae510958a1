//! `ksn-bench`: the figures of BENCHMARKS.md, each a median over repeated runs, each beside
//! its reference measured in the same run. The one program that links both the plugin's
//! core (the in-process reference) and the host simulator (which loads the plugin through
//! the ABI, as every host does).

mod admin;
mod allocations;
mod capi;
mod console;
mod control;
mod fleet;
mod lookups;
mod memory;
mod report;
mod uptime;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use plugin_api::loader;
use report::median;

/// Counting, so the figures that state allocations can measure them.
#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;

/// The figures of BENCHMARKS.md.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The plugin library (default: $KSN_PLUGIN, then beside this executable).
    #[arg(long, global = true, value_name = "PATH")]
    plugin: Option<PathBuf>,
    /// Print the figures as one JSON object (the table goes to standard error).
    #[arg(long)]
    json: bool,
    /// Devices in the fleet story.
    #[arg(long, default_value_t = 100_000)]
    fleet_devices: usize,
    /// Devices of the hierarchy (on PostgreSQL), 100,000 a server.
    #[arg(long, default_value_t = 1_000_000)]
    hierarchy_devices: usize,
    /// Fewer, shorter repetitions (noisier), for tests.
    #[arg(long)]
    quick: bool,
    #[command(subcommand)]
    command: Option<Internal>,
}

/// Steps of a measurement that run in a process of their own.
#[derive(Subcommand)]
enum Internal {
    /// The cached untrusted hit alone: microseconds and allocations per hit.
    #[command(hide = true)]
    UntrustedHit,
    /// The Web Console's pages alone: the median page and the slowest page, in ms.
    #[command(hide = true)]
    ConsolePages {
        #[arg(long, default_value_t = 100_000)]
        devices: usize,
    },
    /// Cache-hit lookups only, for instruction counts under callgrind.
    #[command(hide = true)]
    Lookups {
        /// Through the ABI (`abi`), the C API (`capi`) or the core directly (`core`).
        #[arg(long)]
        mode: String,
        /// How many lookups.
        #[arg(long)]
        calls: usize,
    },
    /// Load the plugin once and print the microseconds it took.
    #[command(hide = true)]
    LoadOnce,
    /// Run the single-device scenario of this many steps and print its seconds.
    #[command(hide = true)]
    LongRun {
        #[arg(long)]
        steps: usize,
    },
    /// What a simulated device holds at boot, part by part (bytes of resident memory a
    /// device): the server's model, the host's state, the plugin's task.
    MemoryParts {
        #[arg(long, default_value_t = 100_000)]
        devices: usize,
    },
    /// The administrator's edit alone (answered, delivered; then the resume), on SQLite
    /// and on PostgreSQL, as the full run measures it.
    #[command(hide = true)]
    AdminEdit {
        #[arg(long, default_value_t = 100_000)]
        devices: usize,
        #[arg(long, default_value_t = 15)]
        edits: usize,
    },
    /// Memory growth per lookup once the cache is full, alone.
    #[command(hide = true)]
    RssPerLookup {
        #[arg(long, default_value_t = 200_000)]
        warm_up: usize,
        #[arg(long, default_value_t = 1_000_000)]
        lookups: usize,
    },
    /// Run the fleet story and print its report as JSON.
    #[command(hide = true)]
    FleetStory {
        /// How many devices.
        #[arg(long)]
        devices: usize,
        /// Keep the devices' records in this host database file.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
}

const MIB: f64 = 1024.0 * 1024.0;

/// How the long run's peak memory grows per step, from the shortest run to the longest.
fn long_run_bytes_per_step(curve: &[report::RunPoint]) -> f64 {
    match (curve.first(), curve.last()) {
        (Some(a), Some(b)) if b.steps > a.steps => {
            (b.peak_rss_mib - a.peak_rss_mib) * MIB / (b.steps - a.steps) as f64
        }
        _ => 0.0,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ksn-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let path = loader::locate(cli.plugin.as_deref()).map_err(|e| e.to_string())?;
    match &cli.command {
        Some(Internal::LoadOnce) => {
            println!("{:.1}", control::load_once(&path)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::Lookups { mode, calls }) => {
            if mode == "capi" {
                let mut capi = capi::CapiLookup::new(&path)?;
                lookups::time_per_call(*calls, || capi.hit());
                return Ok(ExitCode::SUCCESS);
            }
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            lookups::hits_only(plugin, mode, *calls)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::LongRun { steps }) => {
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            let (seconds, peak_rss) = uptime::long_run_s(plugin, *steps)?;
            println!("{seconds} {peak_rss}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::FleetStory { devices, db }) => {
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            let database = match db {
                Some(file) => {
                    let store = host_sim::storage::HostStore::open(file)?;
                    let wanted = host_sim::resume::Wanted::New { name: "fleet" };
                    let choice = host_sim::resume::choose(&store, "fleet", wanted, true)?;
                    Some(host_sim::world::HostDatabase {
                        store,
                        host: choice.id,
                    })
                }
                None => None,
            };
            let story = host_sim::fleet::run(plugin, *devices, database, &|_| {})?;
            println!(
                "{}",
                serde_json::to_string(&story).map_err(|e| e.to_string())?
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::ConsolePages { devices }) => {
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            let (p50, slowest) = console::page_ms(plugin, *devices, 15)?;
            println!("median page {p50:.1} ms, slowest page {slowest:.1} ms");
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::MemoryParts { devices }) => {
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            let parts = memory::per_device(plugin, *devices)?;
            println!(
                "{devices} devices at boot, bytes a device: server's model {:.0}, host's state {:.0}, plugin's task {:.0}",
                parts.server, parts.host, parts.task
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::AdminEdit { devices, edits }) => {
            let cluster = host_sim::pg_cluster::TempCluster::start("bench")?;
            let (sqlite, postgres) = admin::measure_both(&path, *devices, *edits, &cluster)?;
            for (engine, f) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
                println!(
                    "{engine}: edit answered {:.1} ms (median of {edits}), delivered {:.2} s, resume {:.2} s",
                    f.change_ms_p50, f.delivery_s, f.resume_s
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::RssPerLookup { warm_up, lookups }) => {
            let plugin = loader::load(&path).map_err(|e| e.to_string())?;
            let bytes = uptime::rss_per_lookup(plugin, *warm_up, *lookups)?;
            println!("{bytes:.3} bytes a lookup");
            return Ok(ExitCode::SUCCESS);
        }
        Some(Internal::UntrustedHit) => {
            let (us, allocations) = lookups::untrusted_hit(15, 20_000)?;
            println!("{us:.3} µs, {allocations:.2} allocations per untrusted hit");
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let plugin = loader::load(&path).map_err(|e| e.to_string())?;
    let quick = cli.quick;
    let (repetitions, calls) = if quick { (3, 20_000) } else { (15, 1_000_000) };
    let mut capi = capi::CapiLookup::new(&path)?;
    let (abi_lookup_ns, inproc_lookup_ns, capi_lookup_ns) =
        lookups::hit_ns(plugin, || capi.hit(), repetitions, calls)?;
    drop(capi);
    let (untrusted_hit_us, untrusted_hit_allocations) =
        lookups::untrusted_hit(repetitions, if quick { 2_000 } else { 20_000 })?;
    // The story takes seconds on a shared machine: the median of three runs, each in a
    // process of its own, and the highest peak RSS.
    let stories = (0..if quick { 1 } else { 3 })
        .map(|_| fleet::story(&path, cli.fleet_devices))
        .collect::<Result<Vec<_>, _>>()?;
    if stories.iter().any(|story| !story.passed) {
        return Err("the fleet story did not leave every device as expected".into());
    }
    let story = host_sim::fleet::FleetReport {
        story_s: median(stories.iter().map(|s| s.story_s).collect()),
        peak_rss_mib: stories.iter().map(|s| s.peak_rss_mib).fold(0.0, f64::max),
        ..stories[0].clone()
    };
    // Counted on 3,000 devices (500 in a quick run): a count does not need a server's size.
    let story_instructions_devices = if quick { 500 } else { 3_000 };
    let story_instructions_per_device =
        fleet::instructions_per_device(&path, story_instructions_devices)?;
    let (miss_requests, miss_total_ms) = lookups::misses(plugin, 10_000, 100)?;
    let (withdrawal_ms_p50, withdrawal_ms_max, withdrawal_unaffected_ms_max) =
        control::withdrawal_ms(plugin, if quick { 1 } else { 5 })?;
    let detections: &[u64] = if quick {
        &[1_000, 10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let restore_curve: Vec<report::RestorePoint> =
        uptime::restore_after_detections(plugin, detections)?
            .into_iter()
            .map(
                |(detections, restore_ms, journal_mib)| report::RestorePoint {
                    detections,
                    restore_ms,
                    journal_mib,
                },
            )
            .collect();
    let steps: &[usize] = if quick {
        &[5_000, 20_000]
    } else {
        &[5_000, 20_000, 100_000]
    };
    let long_run_curve = steps
        .iter()
        .map(|&steps| {
            // Short runs are the noisiest: more of them.
            let runs = (0..if quick {
                1
            } else if steps <= 20_000 {
                11
            } else {
                3
            })
                .map(|_| uptime::long_run_in_own_process(&path, steps))
                .collect::<Result<Vec<_>, _>>()?;
            let seconds = median(runs.iter().map(|r| r.0).collect());
            let peak_rss_mib = median(runs.iter().map(|r| r.1).collect());
            Ok(report::RunPoint {
                steps,
                seconds,
                steps_per_s: steps as f64 / seconds,
                peak_rss_mib,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let last_restore = restore_curve.last().cloned().unwrap_or_default();
    let (console_page_ms_p50, console_slowest_page_ms) =
        console::page_ms(plugin, cli.fleet_devices, if quick { 3 } else { 15 })?;
    let (fleet_story_sqlite_s, db_bytes_per_device) =
        uptime::fleet_story_sqlite(&path, cli.fleet_devices)?;
    let cluster = host_sim::pg_cluster::TempCluster::start("bench")?;
    let edits = if quick { 3 } else { 15 };
    let (admin_sqlite, admin_postgres) =
        admin::measure_both(&path, cli.fleet_devices, edits, &cluster)?;
    let (fleet_story_postgres_s, postgres_bytes_per_device) =
        uptime::fleet_story_postgres(&path, cli.fleet_devices, &cluster)?;
    // The same story at smaller fleets, each size in memory, on SQLite and on PostgreSQL
    // one after the other (so each ratio is of runs side by side).
    let smaller: &[usize] = if quick { &[250] } else { &[10_000, 30_000] };
    let mut fleet_growth = smaller
        .iter()
        .map(|&devices| {
            let memory = fleet::story(&path, devices)?;
            Ok(report::GrowthPoint {
                devices,
                memory_s: memory.story_s,
                memory_peak_rss_mib: memory.peak_rss_mib,
                sqlite_s: uptime::fleet_story_sqlite(&path, devices)?.0,
                postgres_s: uptime::fleet_story_postgres(&path, devices, &cluster)?.0,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    fleet_growth.push(report::GrowthPoint {
        devices: cli.fleet_devices,
        memory_s: story.story_s,
        memory_peak_rss_mib: story.peak_rss_mib,
        sqlite_s: fleet_story_sqlite_s,
        postgres_s: fleet_story_postgres_s,
    });
    let hierarchy = uptime::hierarchy(
        &path,
        if quick {
            2 * cli.fleet_devices
        } else {
            cli.hierarchy_devices
        },
        &cluster,
    )?;
    drop(cluster);
    let figures = report::Report {
        abi_lookup_ns,
        inproc_lookup_ns,
        abi_ratio: abi_lookup_ns / inproc_lookup_ns,
        capi_lookup_ns,
        untrusted_hit_us,
        untrusted_hit_allocations,
        load_us: control::load_us(&path, if quick { 3 } else { 15 })?,
        policy_push_us_per_device: control::policy_push_us(
            plugin,
            repetitions,
            if quick { 200 } else { 2_000 },
        )?,
        fleet_devices: story.devices,
        fleet_story_s: story.story_s,
        fleet_peak_rss_mib: story.peak_rss_mib,
        story_instructions_per_device,
        story_instructions_devices,
        miss_requests,
        miss_total_ms,
        hit_lookups_per_s_2threads: lookups::hits_per_second(
            plugin,
            if quick { 3 } else { 7 },
            Duration::from_millis(if quick { 50 } else { 500 }),
        )?,
        withdrawal_ms_p50,
        withdrawal_ms_max,
        withdrawal_unaffected_ms_max,
        restore_ms_after_1m_detections: last_restore.restore_ms,
        journal_mib_after_1m_detections: last_restore.journal_mib,
        restore_curve,
        long_run_steps_per_s: long_run_curve.last().map_or(0.0, |p| p.steps_per_s),
        long_run_growth_20k_over_5k: long_run_curve[1].seconds / long_run_curve[0].seconds,
        long_run_bytes_per_step: long_run_bytes_per_step(&long_run_curve),
        long_run_curve,
        rss_bytes_per_lookup: uptime::rss_per_lookup(
            plugin,
            if quick { 20_000 } else { 200_000 },
            if quick { 100_000 } else { 1_000_000 },
        )?,
        fleet_story_sqlite_s,
        db_bytes_per_device,
        fleet_story_postgres_s,
        postgres_bytes_per_device,
        fleet_growth,
        hierarchy_servers: hierarchy.servers,
        hierarchy_devices: hierarchy.devices,
        hierarchy_story_s: hierarchy.story_s,
        hierarchy_peak_rss_mib: hierarchy.peak_rss_mib,
        hierarchy_total_rss_mib: hierarchy.total_rss_mib,
        hierarchy_db_bytes_per_device: hierarchy.db_bytes as f64 / hierarchy.devices.max(1) as f64,
        console_devices: cli.fleet_devices,
        console_page_ms_p50,
        console_slowest_page_ms,
        admin_change_ms_p50: admin_sqlite.change_ms_p50,
        delivery_s: admin_sqlite.delivery_s,
        serve_resume_s: admin_sqlite.resume_s,
        admin_change_ms_p50_postgres: admin_postgres.change_ms_p50,
        delivery_postgres_s: admin_postgres.delivery_s,
        serve_resume_postgres_s: admin_postgres.resume_s,
        machine: report::machine(),
        repetitions,
    };
    if cli.json {
        eprint!("{}", report::table(&figures));
        println!(
            "{}",
            serde_json::to_string_pretty(&figures).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::table(&figures));
    }
    Ok(if report::all_met(&figures) || quick {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
