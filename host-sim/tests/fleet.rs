//! The fleet story and the benchmark command: shapes and correctness, never timings
//! (timings live in BENCHMARKS.md, measured by `host-sim bench`).

mod common;

#[test]
fn the_fleet_story_leaves_every_device_as_expected() {
    let report = host_sim::fleet::run(common::plugin(), 600, &|_| {}).unwrap();
    assert!(report.passed, "{}", host_sim::fleet::text(&report));
    assert_eq!(report.devices, 600);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name).collect();
    assert!(names.contains(&"Private KSN off"));
    assert!(report.phases.iter().all(|p| p.wrong == 0));
}

#[test]
fn a_fleet_device_that_misbehaves_is_counted() {
    // A plugin that refuses everything makes every phase wrong on every device.
    let plugin = host_sim::loader::load(&common::artifact("fixture_panicky_plugin")).unwrap();
    let report = host_sim::fleet::run(plugin, 300, &|_| {}).unwrap();
    assert!(!report.passed);
    assert_eq!(
        report.phases[1].wrong,
        300,
        "{}",
        host_sim::fleet::text(&report)
    );
}

#[test]
fn bench_json_has_every_figure() {
    let out = common::host_sim()
        .args(["bench", "--quick", "--json", "--fleet-devices", "500"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "abi_lookup_ns",
        "inproc_lookup_ns",
        "abi_ratio",
        "load_us",
        "policy_push_us_per_device",
        "fleet_devices",
        "fleet_story_s",
        "fleet_peak_rss_mib",
        "miss_requests",
        "miss_total_ms",
        "hit_lookups_per_s_2threads",
    ] {
        assert!(report[key].is_number(), "{key} missing: {report}");
    }
    assert_eq!(report["fleet_devices"], 500);
    // Concurrent lookups of the same file share one request: exactly one per file.
    assert_eq!(report["miss_requests"], 100);
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(
        table.contains("cache-hit file lookup through the ABI"),
        "{table}"
    );
}
