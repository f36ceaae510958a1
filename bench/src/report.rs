//! The figures, their targets, and the table BENCHMARKS.md shows.

use serde::Serialize;

#[derive(Serialize, Debug, Clone, Default)]
pub struct Report {
    /// A cache-hit file lookup through the ABI, and the same lookup on the core linked
    /// in-process, in the same run.
    pub abi_lookup_ns: f64,
    pub inproc_lookup_ns: f64,
    pub abi_ratio: f64,
    /// The same cache hit through the C ABI (`ksn_task_check_file`), in the same run.
    pub capi_lookup_ns: f64,
    /// A cached *untrusted* hit on the core over an in-memory host (the action, the one
    /// durable record, the event), and its allocations, the host's included.
    pub untrusted_hit_us: f64,
    pub untrusted_hit_allocations: f64,
    /// Open, layout check, logger, factory, in a fresh process.
    pub load_us: f64,
    pub policy_push_us_per_device: f64,
    pub fleet_devices: usize,
    pub fleet_story_s: f64,
    pub fleet_peak_rss_mib: f64,
    /// The story's instructions per device (callgrind, `story_instructions_devices`
    /// devices, in memory): repeatable, for comparing versions of the hot path.
    pub story_instructions_per_device: f64,
    pub story_instructions_devices: usize,
    /// 10,000 concurrent lookups of 100 files at 20 ms: requests sent and time taken.
    pub miss_requests: u64,
    pub miss_total_ms: f64,
    pub hit_lookups_per_s_2threads: f64,
    /// How long a full withdrawal takes with file requests in flight (2 s service
    /// latency, 10 s lookup timeout), and a files-only withdrawal with only URL requests in
    /// flight (nothing it affects).
    pub withdrawal_ms_p50: f64,
    pub withdrawal_ms_max: f64,
    pub withdrawal_unaffected_ms_max: f64,
    /// A device that logged the last count of `restore_curve` detections: a host restart
    /// restores its task in this many ms, and its storage holds this many MiB.
    pub restore_ms_after_1m_detections: f64,
    pub journal_mib_after_1m_detections: f64,
    pub restore_curve: Vec<RestorePoint>,
    /// A single-device scenario of the last count of `long_run_curve` steps (half the
    /// lookups detections), run as `host-sim run` runs it; and how its time grows.
    pub long_run_steps_per_s: f64,
    pub long_run_curve: Vec<RunPoint>,
    /// Time of 20,000 steps over time of 5,000 (4 when linear).
    pub long_run_growth_20k_over_5k: f64,
    /// How the long run's peak resident memory grows per step, from the shortest run of
    /// the curve to the longest (the scenario's own steps included).
    pub long_run_bytes_per_step: f64,
    /// Resident memory growth per lookup of a distinct file once the cache is full.
    pub rss_bytes_per_lookup: f64,
    /// The fleet story with every device's records in a host database: SQLite (the file's
    /// bytes per device after it), and PostgreSQL (a throwaway cluster).
    pub fleet_story_sqlite_s: f64,
    pub db_bytes_per_device: f64,
    pub fleet_story_postgres_s: f64,
    pub postgres_bytes_per_device: f64,
    /// The story at smaller fleets, and at `fleet_devices` (the figures above): how each
    /// grows.
    pub fleet_growth: Vec<GrowthPoint>,
    /// A hierarchy of servers on PostgreSQL: devices counted by the primary, the story end
    /// to end, the largest peak RSS of one server and the sum over all.
    pub hierarchy_servers: usize,
    pub hierarchy_devices: usize,
    pub hierarchy_story_s: f64,
    pub hierarchy_peak_rss_mib: f64,
    pub hierarchy_total_rss_mib: f64,
    pub hierarchy_db_bytes_per_device: f64,
    /// The Web Console on this many devices: the median time of a page (request to last
    /// byte, over HTTP), and the slowest page's median.
    pub console_devices: usize,
    pub console_page_ms_p50: f64,
    pub console_slowest_page_ms: f64,
    /// The durable server (`serve --db`, SQLite) on `console_devices` connected devices: a
    /// policy edit of the root group answered once saved (median), the same edit reaching
    /// every device (median), and the server started again on its database until the
    /// console answers.
    pub admin_change_ms_p50: f64,
    pub delivery_s: f64,
    pub serve_resume_s: f64,
    /// The same on PostgreSQL.
    pub admin_change_ms_p50_postgres: f64,
    pub delivery_postgres_s: f64,
    pub serve_resume_postgres_s: f64,
    pub machine: String,
    pub repetitions: usize,
}

/// The story at one fleet size, in memory and on each database, each run beside the
/// others (`fleet_growth`).
#[derive(Serialize, Debug, Clone, Default)]
pub struct GrowthPoint {
    pub devices: usize,
    pub memory_s: f64,
    pub memory_peak_rss_mib: f64,
    pub sqlite_s: f64,
    pub postgres_s: f64,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct RestorePoint {
    pub detections: u64,
    pub restore_ms: f64,
    pub journal_mib: f64,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct RunPoint {
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_s: f64,
    pub peak_rss_mib: f64,
}

/// One row of the table: the figure, what was measured, the target, whether it is met.
type Row = (String, String, String, bool);

fn rows(r: &Report) -> Vec<Row> {
    vec![
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
            "cache-hit file lookup through the C ABI".into(),
            format!(
                "{:.1} ns ({:.2} of the ABI's)",
                r.capi_lookup_ns,
                r.capi_lookup_ns / r.abi_lookup_ns
            ),
            "≤ 1.10 × the ABI's".into(),
            r.capi_lookup_ns <= 1.10 * r.abi_lookup_ns,
        ),
        (
            "cached untrusted hit (action, record, event)".into(),
            format!(
                "{:.2} µs, {:.1} allocations",
                r.untrusted_hit_us, r.untrusted_hit_allocations
            ),
            "≤ 2 µs, ≤ 5 allocations".into(),
            r.untrusted_hit_us <= 2.0 && r.untrusted_hit_allocations <= 5.0,
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
            "≤ 5 s, ≤ 600 MiB (at 100,000)".into(),
            r.fleet_story_s <= 5.0 && r.fleet_peak_rss_mib <= 600.0,
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
        (
            "withdrawal with sends in flight (2 s, timeout 10 s)".into(),
            format!(
                "p50 {:.0} ms, max {:.0} ms; nothing affected in flight: max {:.1} ms",
                r.withdrawal_ms_p50, r.withdrawal_ms_max, r.withdrawal_unaffected_ms_max
            ),
            "≤ 10000 ms; unaffected ≤ 50 ms".into(),
            r.withdrawal_ms_max <= 10_000.0 && r.withdrawal_unaffected_ms_max <= 50.0,
        ),
        (
            format!(
                "restart after {} detections",
                r.restore_curve.last().map_or(0, |p| p.detections)
            ),
            format!(
                "restore {:.1} ms, storage {:.1} MiB ({})",
                r.restore_ms_after_1m_detections,
                r.journal_mib_after_1m_detections,
                r.restore_curve
                    .iter()
                    .map(|p| format!(
                        "{}: {:.1} ms {:.1} MiB",
                        p.detections, p.restore_ms, p.journal_mib
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "≤ 50 ms, ≤ 64 MiB (at 1,000,000)".into(),
            r.restore_ms_after_1m_detections <= 50.0 && r.journal_mib_after_1m_detections <= 64.0,
        ),
        (
            format!(
                "single-device scenario, {} steps",
                r.long_run_curve.last().map_or(0, |p| p.steps)
            ),
            format!(
                "{:.0} steps/s; 20k/5k time {:.2}; {:.0} B of peak memory per step ({})",
                r.long_run_steps_per_s,
                r.long_run_growth_20k_over_5k,
                r.long_run_bytes_per_step,
                r.long_run_curve
                    .iter()
                    .map(|p| format!("{}: {:.3} s, {:.0} MiB", p.steps, p.seconds, p.peak_rss_mib))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "≥ 50,000 steps/s (at 100,000), ≤ 5, ≤ 1,024 B/step".into(),
            r.long_run_steps_per_s >= 50_000.0
                && r.long_run_growth_20k_over_5k <= 5.0
                && r.long_run_bytes_per_step <= 1024.0,
        ),
        (
            "memory per lookup, cache full".into(),
            format!("{:.3} bytes", r.rss_bytes_per_lookup),
            "≤ 1 byte".into(),
            r.rss_bytes_per_lookup <= 1.0,
        ),
        (
            format!(
                "the story's instructions per device (callgrind, {} devices)",
                r.story_instructions_devices
            ),
            format!("{:.0}", r.story_instructions_per_device),
            "measured".into(),
            true,
        ),
        (
            format!("Private KSN story, {} devices, SQLite", r.fleet_devices),
            format!(
                "{:.2} s ({:.2}x in memory)",
                r.fleet_story_sqlite_s,
                r.fleet_story_sqlite_s / r.fleet_story_s
            ),
            "≤ 2x in memory".into(),
            r.fleet_story_sqlite_s <= 2.0 * r.fleet_story_s,
        ),
        (
            "the story's growth (memory; SQLite; PostgreSQL)".into(),
            r.fleet_growth
                .iter()
                .map(|p| {
                    format!(
                        "{}: {:.2} s ({:.0} MiB); {:.2} s; {:.2} s",
                        p.devices, p.memory_s, p.memory_peak_rss_mib, p.sqlite_s, p.postgres_s
                    )
                })
                .collect::<Vec<_>>()
                .join(" | "),
            "measured".into(),
            true,
        ),
        (
            "database bytes per device after the story (SQLite)".into(),
            format!("{:.0} bytes", r.db_bytes_per_device),
            "≤ 4,096".into(),
            r.db_bytes_per_device <= 4096.0,
        ),
        (
            format!("Private KSN story, {} devices, PostgreSQL", r.fleet_devices),
            format!(
                "{:.2} s ({:.2}x in memory), {:.0} bytes a device",
                r.fleet_story_postgres_s,
                r.fleet_story_postgres_s / r.fleet_story_s,
                r.postgres_bytes_per_device
            ),
            "≤ 4x in memory".into(),
            r.fleet_story_postgres_s <= 4.0 * r.fleet_story_s,
        ),
        (
            format!(
                "hierarchy: {} servers, {} devices, PostgreSQL",
                r.hierarchy_servers, r.hierarchy_devices
            ),
            format!(
                "{:.1} s; peak RSS {:.0} MiB a server, {:.0} MiB in all; {:.0} bytes a device",
                r.hierarchy_story_s,
                r.hierarchy_peak_rss_mib,
                r.hierarchy_total_rss_mib,
                r.hierarchy_db_bytes_per_device
            ),
            "≤ 300 s (at 1,000,000)".into(),
            r.hierarchy_story_s <= 300.0,
        ),
        (
            format!("Web Console page, {} devices", r.console_devices),
            format!(
                "median {:.1} ms (slowest page {:.1} ms)",
                r.console_page_ms_p50, r.console_slowest_page_ms
            ),
            "median ≤ 100 ms".into(),
            r.console_page_ms_p50 <= 100.0,
        ),
        (
            format!(
                "policy edit answered, {} devices (SQLite; PostgreSQL)",
                r.console_devices
            ),
            format!(
                "median {:.1} ms; {:.1} ms",
                r.admin_change_ms_p50, r.admin_change_ms_p50_postgres
            ),
            "≤ 50 ms".into(),
            r.admin_change_ms_p50 <= 50.0 && r.admin_change_ms_p50_postgres <= 50.0,
        ),
        (
            "that edit delivered to every device (SQLite; PostgreSQL)".to_string(),
            format!("{:.2} s; {:.2} s", r.delivery_s, r.delivery_postgres_s),
            "measured".into(),
            true,
        ),
        (
            format!(
                "serve resumed, {} devices (SQLite; PostgreSQL)",
                r.console_devices
            ),
            format!(
                "{:.2} s; {:.2} s",
                r.serve_resume_s, r.serve_resume_postgres_s
            ),
            "≤ 10 s".into(),
            r.serve_resume_s <= 10.0 && r.serve_resume_postgres_s <= 10.0,
        ),
    ]
}

/// Whether every figure meets its target.
pub fn all_met(r: &Report) -> bool {
    rows(r).iter().all(|(_, _, _, met)| *met)
}

pub fn table(r: &Report) -> String {
    let mut out = format!("{}\nmedians of {} repetitions\n", r.machine, r.repetitions);
    out.push_str(&format!(
        "{:<52} {:<64} {:<34} \n",
        "figure", "measured", "target"
    ));
    for (name, value, target, met) in rows(r) {
        out.push_str(&format!(
            "{name:<52} {value:<64} {target:<34} {}\n",
            if met { "met" } else { "MISSED" }
        ));
    }
    out
}

pub fn machine() -> String {
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

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
