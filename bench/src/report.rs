//! The figures, their targets, and the table BENCHMARKS.md shows.

use serde::Serialize;

#[derive(Serialize, Debug, Clone, Default)]
pub struct Report {
    /// A cache-hit file lookup through the ABI, and the same lookup on the core linked
    /// in-process, in the same run.
    pub abi_lookup_ns: f64,
    pub inproc_lookup_ns: f64,
    pub abi_ratio: f64,
    /// Open, layout check, logger, factory, in a fresh process.
    pub load_us: f64,
    pub policy_push_us_per_device: f64,
    pub fleet_devices: usize,
    pub fleet_story_s: f64,
    pub fleet_peak_rss_mib: f64,
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
    pub machine: String,
    pub repetitions: usize,
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
        (
            "withdrawal with sends in flight (2 s, timeout 10 s)".into(),
            format!(
                "p50 {:.0} ms, max {:.0} ms; nothing affected in flight: max {:.1} ms",
                r.withdrawal_ms_p50, r.withdrawal_ms_max, r.withdrawal_unaffected_ms_max
            ),
            "≤ 10000 ms; unaffected ≤ 50 ms".into(),
            r.withdrawal_ms_max <= 10_000.0 && r.withdrawal_unaffected_ms_max <= 50.0,
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
