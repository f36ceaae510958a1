//! `ksn-bench --json` prints every figure of BENCHMARKS.md (here with quick, noisy
//! repetitions and a small fleet: the figures themselves are measured by hand).

#[test]
fn the_json_report_has_every_figure() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ksn-bench"))
        .args(["--quick", "--json", "--fleet-devices", "500"])
        .env_remove("KSN_PLUGIN")
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
        "capi_lookup_ns",
        "load_us",
        "policy_push_us_per_device",
        "fleet_devices",
        "fleet_story_s",
        "fleet_peak_rss_mib",
        "miss_requests",
        "miss_total_ms",
        "hit_lookups_per_s_2threads",
        "withdrawal_ms_p50",
        "withdrawal_ms_max",
        "withdrawal_unaffected_ms_max",
        "restore_ms_after_1m_detections",
        "journal_mib_after_1m_detections",
        "long_run_steps_per_s",
        "long_run_growth_20k_over_5k",
        "rss_bytes_per_lookup",
        "story_instructions_per_device",
        "fleet_story_sqlite_s",
        "fleet_story_postgres_s",
        "db_bytes_per_device",
        "hierarchy_devices",
        "hierarchy_story_s",
        "hierarchy_peak_rss_mib",
        "console_page_ms_p50",
        "admin_change_ms_p50",
        "delivery_s",
        "serve_resume_s",
        "admin_change_ms_p50_postgres",
        "delivery_postgres_s",
        "serve_resume_postgres_s",
    ] {
        assert!(report[key].is_number(), "{key} missing: {report}");
    }
    assert_eq!(report["fleet_devices"], 500);
    // The primary counts every device of its secondaries (two of 500).
    assert_eq!(report["hierarchy_devices"], 1000);
    // Concurrent lookups of the same file share one request: exactly one per file.
    assert_eq!(report["miss_requests"], 100);
    // A withdrawal waits for the affected sends in flight (2 s), not for others.
    let affected = report["withdrawal_ms_max"].as_f64().unwrap();
    assert!((500.0..=10_000.0).contains(&affected), "{affected}");
    assert!(report["withdrawal_unaffected_ms_max"].as_f64().unwrap() < 500.0);
    // The growth curves: each point measured, in the order asked for.
    let restore = report["restore_curve"].as_array().unwrap();
    assert_eq!(restore.len(), 2, "{report}");
    assert!(restore[0]["detections"].as_u64() < restore[1]["detections"].as_u64());
    // A longer history never makes the journal smaller than a short one's.
    assert!(restore[1]["journal_mib"].as_f64() >= restore[0]["journal_mib"].as_f64());
    // The story's growth: a smaller fleet, then the fleet of the figures.
    let growth = report["fleet_growth"].as_array().unwrap();
    assert_eq!(growth.len(), 2, "{report}");
    assert_eq!(growth[1]["devices"], 500);
    for point in growth {
        for key in ["memory_s", "sqlite_s", "postgres_s", "memory_peak_rss_mib"] {
            assert!(point[key].is_number(), "{key} missing: {point}");
        }
    }
    let runs = report["long_run_curve"].as_array().unwrap();
    assert_eq!(runs[0]["steps"], 5_000);
    assert_eq!(runs[1]["steps"], 20_000);
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(
        table.contains("cache-hit file lookup through the ABI"),
        "{table}"
    );
}
