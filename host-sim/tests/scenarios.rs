//! The scenario runner through the real cdylib: the bundled suite passes, and a wrong
//! expectation or a malformed scenario fails where and how it should.

mod common;

use host_sim::{
    scenario::{self, runner},
    world,
};

#[test]
fn every_bundled_scenario_holds_on_one_device_and_on_three() {
    holds_on_one_device_and_on_three(scenario::bundled_suite());
}

/// Every scenario under `dir`, run on one device and on three.
fn holds_on_one_device_and_on_three(dir: std::path::PathBuf) {
    let plugin = common::plugin();
    let files = scenario::collect(&[dir]).unwrap();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for devices in [1, 3] {
            let mut parsed = scenario::parse(&text).unwrap();
            if !parsed.groups.is_empty() {
                // A tree of groups says where each device is: run as written, once.
                if devices == 3 {
                    continue;
                }
            } else {
                parsed.devices = devices;
            }
            let outcome = runner::run(
                plugin,
                &parsed,
                &file.display().to_string(),
                &world::default_ksn(),
                &runner::Options {
                    watchdog: Some(runner::DEFAULT_WATCHDOG),
                    database: None,
                    whole_timeline: false,
                },
            );
            assert!(
                outcome.passed,
                "on {devices} devices: {}",
                scenario::report::text(&[outcome], true, false)
            );
        }
    }
}

#[test]
fn the_bundled_suite_passes_through_the_loaded_plugin() {
    let plugin = common::plugin();
    let files = scenario::collect(&[scenario::bundled_suite()]).unwrap();
    assert!(files.len() >= 12, "{files:?}");
    let default_ksn = world::default_ksn();
    let failed: Vec<String> = files
        .iter()
        .map(|f| {
            scenario::run_file(
                plugin,
                f,
                &default_ksn,
                &runner::Options {
                    watchdog: Some(runner::DEFAULT_WATCHDOG),
                    database: None,
                    whole_timeline: false,
                },
            )
        })
        .filter(|o| !o.passed)
        .map(|o| scenario::report::text(&[o], true, false))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn run_text(text: &str) -> runner::Outcome {
    let scenario = scenario::parse(text).unwrap();
    runner::run(
        common::plugin(),
        &scenario,
        "inline",
        &world::default_ksn(),
        &runner::Options {
            watchdog: Some(runner::DEFAULT_WATCHDOG),
            database: None,
            whole_timeline: false,
        },
    )
}

#[test]
fn a_wrong_expectation_fails_at_its_step_with_what_differed() {
    let outcome = run_text(
        r#"{"name": "wrong", "devices": 2, "steps": [
            {"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}}},
            {"do": "start"},
            {"expect": {"state": "running", "network": "proxy"}},
            {"expect": {"state": "stopped"}},
            {"do": "stop"}
        ]}"#,
    );
    assert!(!outcome.passed);
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.step, Some(3));
    assert_eq!(failure.device, Some(0));
    assert_eq!(
        (
            failure.what.as_str(),
            failure.expected.as_str(),
            failure.found.as_str()
        ),
        ("state", "stopped", "running")
    );
    assert_eq!(outcome.steps.len(), 4, "the run stops at the failing step");
}

#[test]
fn each_kind_of_expectation_can_fail() {
    let base = r#"{"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}, "task": {"use_ksc_as_ksn_proxy": false}}},
                  {"do": "start"},
                  {"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1}"#;
    let cases = [
        (r#"{"expect": {"error": "license_violation"}}"#, "error"),
        (r#"{"expect": {"network": "private"}}"#, "network"),
        (
            r#"{"expect": {"settings": {"task.checksum_limit_mb": 3}}}"#,
            "settings.task.checksum_limit_mb",
        ),
        (
            r#"{"expect": {"settings": {"task.nothing": 3}}}"#,
            "settings.task.nothing",
        ),
        (r#"{"expect": {"locked": ["task.schedule"]}}"#, "locked"),
        (
            r#"{"expect": {"received": {"global": {"files": 2}}}}"#,
            "received.global.files",
        ),
        (
            r#"{"expect": {"received": {"proxy": {"total": 1}}}}"#,
            "received.proxy.total",
        ),
        (
            r#"{"expect": {"events_include": [{"type": "task_error"}]}}"#,
            "events_include",
        ),
        (
            r#"{"expect": {"log_include": [{"type": "ksn_unavailable"}]}}"#,
            "log_include",
        ),
        (
            r#"{"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1, "expect": {"verdict": "trusted"}}"#,
            "verdict",
        ),
        (
            r#"{"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1, "expect": {"verdict": "untrusted", "action": "logged"}}"#,
            "action",
        ),
        (
            r#"{"do": "check_url", "url": "https://updates.example.com/", "expect": {"verdict": "trusted", "cached": true}}"#,
            "cached",
        ),
        (r#"{"do": "start"}"#, "result"),
        (
            r#"{"do": "stop", "expect_error": "invalid_state"}"#,
            "error",
        ),
        (
            r#"{"do": "start", "expect_error": "license_violation"}"#,
            "error",
        ),
    ];
    for (step, what) in cases {
        let text = format!(r#"{{"name": "x", "steps": [{base}, {step}]}}"#);
        let outcome = run_text(&text);
        let failure = outcome
            .failure
            .unwrap_or_else(|| panic!("{step} should fail"));
        assert_eq!(failure.step, Some(3), "{step}");
        assert_eq!(failure.what, what, "{step}: {failure:?}");
    }
}

#[test]
fn the_command_line_reports_and_exits_by_outcome() {
    let suite = common::repo_root().join("tests/scenarios");
    let out = common::host_sim()
        .args(["run", "--json"])
        .arg(&suite)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = report.as_array().unwrap();
    assert!(report.len() >= 12);
    assert!(report
        .iter()
        .all(|o| o["passed"] == true && o["name"].is_string()));

    let dir = std::env::temp_dir().join(format!("ksn-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"name": "typo", "steps": [{"do": "strat"}]}"#).unwrap();
    let out = common::host_sim()
        .args(["run", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["passed"], false);
    let what = report[0]["failure"]["what"].as_str().unwrap();
    assert!(
        what.contains("steps[0]") && what.contains("unknown variant `strat`"),
        "{what}"
    );

    let out = common::host_sim().arg("run").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL") && text.contains("steps[0]"), "{text}");

    let out = common::host_sim()
        .args(["run", "/no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reports_are_styled_for_terminals_plain_when_piped_and_junit_for_ci() {
    let outcome = run_text(
        r#"{"name": "a <tricky> & \"quoted\" name", "steps": [{"expect": {"state": "running"}}]}"#,
    );
    let styled = scenario::report::text(std::slice::from_ref(&outcome), true, false);
    assert!(
        styled.contains("\u{1b}["),
        "the text carries styles for a terminal"
    );

    let dir = std::env::temp_dir().join(format!("ksn-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.json"),
        r#"{"name": "passes", "steps": [{"expect": {"state": "stopped"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"name": "fails <here>", "steps": [{"expect": {"state": "running"}}]}"#,
    )
    .unwrap();
    let junit = dir.join("report.xml");
    let out = common::host_sim()
        .arg("run")
        .arg(&dir)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}'), "no styles when piped: {text:?}");
    assert!(text.contains("FAIL  fails <here>"), "{text}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    // As quick-junit writes it: the counts of the run, then of the one suite.
    assert!(
        xml.contains(
            "<testsuites name=\"host-sim\" tests=\"2\" skipped=\"0\" failures=\"1\" errors=\"0\""
        ),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuite name=\"scenarios\" tests=\"2\" skipped=\"0\" errors=\"0\" failures=\"1\""
        ),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert!(
        xml.contains("<testcase name=\"passes\" classname=\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"fails &lt;here&gt;\" classname=\""),
        "{xml}"
    );
    assert!(
        xml.contains("<system-out>steps[0] expect → FAILED</system-out>"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"failed at steps[0], device 0: state: expected running, found stopped\""),
        "{xml}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_default_report_is_one_line_per_pass_with_paths_relative_to_here() {
    let root = common::repo_root().canonicalize().unwrap();
    let out = common::host_sim()
        .arg("run")
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let (summary, passes) = lines.split_last().unwrap();
    assert!(passes.len() >= 12, "{text}");
    for line in passes {
        assert!(
            line.starts_with("PASS  ") && line.contains(" (tests/scenarios/"),
            "one line per passing scenario, its file relative to here: {line:?}"
        );
    }
    let n = passes.len();
    assert_eq!(*summary, format!("{n} of {n} scenarios passed"));
    // Scenarios that fault storage on purpose make the plugin warn: a passing one's log
    // is its report's, not the terminal's.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "a passing suite prints nothing else"
    );
    let verbose = common::host_sim()
        .args([
            "run",
            "--verbose",
            "tests/scenarios/withdrawal_while_storage_refuses_writes.json",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verbose.stdout);
    assert!(
        text.contains("logged while it ran")
            && text.contains("WARN ")
            && text.contains("storage refused a change"),
        "{text}"
    );
    assert_eq!(String::from_utf8_lossy(&verbose.stderr), "");
}

#[test]
fn a_failure_shows_its_timeline_and_steps_shows_every_timeline() {
    let dir = std::env::temp_dir().join(format!("ksn-report-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cases")).unwrap();
    std::fs::write(
        dir.join("cases/a.json"),
        r#"{"name": "passes", "steps": [{"do": "start", "expect_error": "statement_not_accepted"}, {"expect": {"state": "stopped"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("cases/b.json"),
        r#"{"name": "fails", "steps": [{"expect": {"state": "stopped"}}, {"expect": {"state": "running"}}, {"do": "start"}]}"#,
    )
    .unwrap();
    let report = |flags: &[&str]| {
        let out = common::host_sim()
            .arg("run")
            .arg(dir.join("cases"))
            .args(flags)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    for default in [report(&[]), report(&["--quiet"])] {
        let lines: Vec<&str> = default.lines().collect();
        assert!(
            lines[0].starts_with("PASS  passes  (cases/a.json, "),
            "{default}"
        );
        assert!(
            lines[1].starts_with("FAIL  fails  (cases/b.json, "),
            "{default}"
        );
        assert!(
            lines[2].trim_start().starts_with("steps[0] expect → ok"),
            "{default}"
        );
        assert!(
            lines[3]
                .trim_start()
                .starts_with("steps[1] expect → FAILED"),
            "{default}"
        );
        assert!(
            lines[4]
                .trim_start()
                .starts_with("failed at steps[1], device 0: state"),
            "{default}"
        );
        assert!(
            lines[5]
                .trim_start()
                .starts_with("statuses at the end: 0 OK, 1 Warning, 0 Critical"),
            "{default}"
        );
        assert_eq!(lines[6], "1 of 2 scenarios passed", "{default}");
        assert_eq!(
            lines.len(),
            7,
            "the failing scenario stops at its failure: {default}"
        );
    }

    let steps = report(&["--steps"]);
    let lines: Vec<&str> = steps.lines().collect();
    assert!(lines[0].starts_with("PASS  passes"), "{steps}");
    assert!(
        lines[1]
            .trim_start()
            .starts_with("steps[0] start → refused as expected"),
        "{steps}"
    );
    assert!(
        lines[2].trim_start().starts_with("steps[1] expect → ok"),
        "{steps}"
    );
    assert!(
        lines[3].trim_start().starts_with("statuses at the end:"),
        "{steps}"
    );
    assert!(lines[4].starts_with("FAIL  fails"), "{steps}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_setting_path_gets_the_nearest_and_the_list() {
    let outcome = run_text(
        r#"{"name": "typo", "steps": [{"expect": {"settings": {"task.checksum_limit": 8}}}]}"#,
    );
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.what, "settings.task.checksum_limit");
    let found = &failure.found;
    assert!(
        found.starts_with("no such setting; did you mean `task.checksum_limit_mb`? (settings: "),
        "{found}"
    );
    for path in ["data_handling.ksn_statement_accepted", "task.schedule"] {
        assert!(found.contains(path), "{found}");
    }
    assert!(!found.contains('\n'), "{found}");
}

#[test]
fn a_missing_entry_in_a_long_log_shows_only_the_nearest_few() {
    const DETECTIONS: usize = 3000;
    let detection =
        r#"{"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1}"#;
    let mut steps = vec![
        r#"{"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}}}"#,
        r#"{"do": "start"}"#,
    ];
    steps.extend(std::iter::repeat_n(detection, DETECTIONS));
    let scenario = |expect: &str| {
        let mut steps = steps.clone();
        steps.push(expect);
        format!(r#"{{"name": "long", "steps": [{}]}}"#, steps.join(",\n"))
    };
    for (what, expect) in [
        (
            "log_include",
            r#"{"expect": {"log_include": [{"type": "state_changed", "to": "failed"}]}}"#,
        ),
        (
            "events_include",
            r#"{"expect": {"events_include": [{"type": "state_changed", "to": "failed"}]}}"#,
        ),
    ] {
        let outcome = run_text(&scenario(expect));
        let failure = outcome.failure.unwrap();
        assert_eq!(failure.what, what);
        let found = &failure.found;
        assert!(found.len() < 600, "{what}: {} bytes: {found}", found.len());
        let (count, nearest) = found.split_once(", none matching; nearest: ").unwrap();
        let count: usize = count.trim_end_matches(" entries").parse().unwrap();
        assert!(count > DETECTIONS, "{found}");
        assert_eq!(nearest.matches(", ").count(), 4, "five entries: {found}");
        // The entry most like what was wanted comes first, however far back it is.
        assert!(
            nearest.starts_with('[') && nearest.contains("state stopped→running"),
            "{found}"
        );
        assert!(nearest.contains("untrusted 44d88612"), "{found}");
    }
}

#[test]
fn a_missing_entry_shows_near_misses_before_the_latest() {
    let steps = r#"{"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}}},
        {"do": "start"}, {"do": "stop"}, {"do": "start"},
        {"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1}"#;
    let found = |want: &str| {
        let text = format!(
            r#"{{"name": "x", "steps": [{steps}, {{"expect": {{"log_include": [{want}]}}}}]}}"#
        );
        run_text(&text).failure.unwrap().found
    };
    // A mistyped type: the entries of the type meant.
    let typo = found(r#"{"type": "state_chnged"}"#);
    assert_eq!(typo.matches("state ").count(), 3, "{typo}");
    // No entry alike: the latest.
    let none = found(r#"{"type": "ksn_restored"}"#);
    assert!(
        none.ends_with("#4 state running→stopped, #5 state stopped→running, #6 untrusted 44d88612fea8a8f36de82e1278abb02f → deleted]"),
        "{none}"
    );
    let events = |steps: &str| {
        let text = format!(
            r#"{{"name": "x", "steps": [{steps}{{"expect": {{"events_include": [{{"type": "task_error"}}]}}}}]}}"#
        );
        run_text(&text).failure.unwrap().found
    };
    assert_eq!(
        events(""),
        "1 entry, none matching; nearest: [#0 licence valid]"
    );
    assert_eq!(events(r#"{"do": "reset_counters"}, "#), "no entries");
}

#[test]
fn the_plugin_update_scenarios_pass_with_the_updated_fixture() {
    holds_on_one_device_and_on_three(common::repo_root().join("tests/update-scenarios"));
}

/// A fleet whose devices run different versions: each scenario names its devices, so it
/// runs as written (some on one device, some on three).
#[test]
fn the_mixed_fleet_scenarios_pass_as_written() {
    let plugin = common::plugin();
    let files =
        scenario::collect(&[common::repo_root().join("tests/mixed-fleet-scenarios")]).unwrap();
    assert!(files.len() >= 2, "{files:?}");
    let mut sizes = std::collections::BTreeSet::new();
    for file in files {
        let parsed = scenario::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        sizes.insert(parsed.devices);
        let outcome = runner::run(
            plugin,
            &parsed,
            &file.display().to_string(),
            &world::default_ksn(),
            &runner::Options {
                watchdog: Some(runner::DEFAULT_WATCHDOG),
                database: None,
                whole_timeline: false,
            },
        );
        assert!(
            outcome.passed,
            "{}",
            scenario::report::text(&[outcome], true, false)
        );
    }
    assert!(
        sizes.contains(&1) && sizes.contains(&3),
        "on 1 and on 3 devices: {sizes:?}"
    );
}

/// A step that changes the server or the network as a whole takes no `on`: refused at
/// load, never ignored; a step that acts on devices honours it.
#[test]
fn a_step_that_cannot_honour_on_is_refused_at_load() {
    for step in [
        r#"{"do": "set_private_ksn", "enabled": true, "on": {"device": 1}}"#,
        r#"{"do": "advance_time", "ms": 10, "on": {"group": "/"}}"#,
        r#"{"do": "push_policy", "policy": {"settings": {}}, "on": {"devices": [0]}}"#,
        r#"{"do": "create_group", "group": "A", "on": "all"}"#,
        r#"{"do": "set_network", "service": "global", "up": false, "on": {"device": 0}}"#,
    ] {
        let text = format!(r#"{{"name": "x", "devices": 2, "steps": [{step}]}}"#);
        let error = scenario::parse(&text).unwrap_err();
        assert!(
            error.starts_with("steps[0].on: ") && error.contains("remove \"on\""),
            "{step}: {error}"
        );
    }
    for step in [
        r#"{"do": "restart_host", "on": {"device": 1}}"#,
        r#"{"do": "resync", "on": {"device": 1}}"#,
        r#"{"do": "set_storage", "writable": false, "on": {"device": 1}}"#,
        r#"{"do": "install_plugin", "plugin": "fixture_updated_plugin", "on": {"device": 1}}"#,
    ] {
        let text = format!(r#"{{"name": "x", "devices": 2, "steps": [{step}]}}"#);
        assert!(scenario::parse(&text).is_ok(), "{step}");
    }
}

/// A long scenario keeps only the last steps for its report (memory stays flat); the
/// whole timeline is kept when a report shows it.
#[test]
fn a_failing_long_scenario_shows_its_last_steps_and_every_one_when_asked() {
    use host_sim::scenario::timeline::RECENT_STEPS;
    let dir = std::env::temp_dir().join(format!("long-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.json");
    let n = RECENT_STEPS + 150;
    let mut steps = vec![
        r#"{"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}}}"#
            .to_string(),
        r#"{"do": "start"}"#.to_string(),
    ];
    for _ in 2..n - 1 {
        steps.push(
            r#"{"do": "check_file", "md5": "44d88612fea8a8f36de82e1278abb02f", "size_bytes": 1}"#
                .into(),
        );
    }
    steps.push(r#"{"expect": {"state": "stopped"}}"#.into());
    std::fs::write(
        &file,
        format!(r#"{{"name": "long", "steps": [{}]}}"#, steps.join(",")),
    )
    .unwrap();
    let last = n - 1;
    let first_kept = n - RECENT_STEPS;

    let out = common::host_sim().arg("run").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains(&format!(
            "steps[0] to steps[{}] passed (not kept: --steps shows every step)",
            first_kept - 1
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("steps[{first_kept}] check_file")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("steps[{}] check_file", first_kept - 1)),
        "{text}"
    );
    assert!(text.contains(&format!("failed at steps[{last}]")), "{text}");

    let out = common::host_sim()
        .args(["run", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reported = json[0]["steps"].as_array().unwrap();
    assert_eq!(reported.len(), n, "every step, in order");
    assert!(reported.iter().enumerate().all(|(i, s)| s["index"] == i));
    assert_eq!(reported[last]["result"], "FAILED");

    let out = common::host_sim()
        .args(["run", "--steps"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("steps[0] set_local"), "{text}");
    assert!(!text.contains("not kept"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the whole timeline cannot be kept, the scenario fails at once, saying where.
#[test]
fn a_timeline_that_cannot_be_kept_fails_the_scenario_naming_the_folder() {
    let missing = std::env::temp_dir().join(format!("no-such-folder-{}", std::process::id()));
    let out = common::host_sim()
        .args(["run", "--json"])
        .arg(common::repo_root().join("tests/scenarios"))
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &json[0];
    assert_eq!(first["passed"], false);
    let what = first["failure"]["what"].as_str().unwrap();
    assert!(
        what.contains("the timeline cannot be kept in")
            && what.contains(&*missing.to_string_lossy()),
        "{what}"
    );
}

/// The head is refused before the steps, whatever is wrong with both.
#[test]
fn a_bad_head_is_reported_before_a_bad_step() {
    let bad_step = r#"{"do": "no_such_step"}"#;
    for (head, expected) in [
        (r#""devices": 0"#, "devices: must be at least 1"),
        (r#""devices": "two""#, "devices: invalid type"),
    ] {
        let text = format!(r#"{{"name": "x", {head}, "steps": [{bad_step}]}}"#);
        let error = scenario::parse(&text).unwrap_err();
        assert!(error.starts_with(expected), "{head}: {error}");
    }
    let error = scenario::parse(&format!(
        r#"{{"name": "x", "steps": [{{"do": "start"}}, {bad_step}]}}"#
    ))
    .unwrap_err();
    assert!(error.starts_with("steps[1]"), "{error}");
}

#[test]
fn a_step_on_several_devices_reports_every_device_s_outcome_and_events() {
    // Devices 0 and 2 accept; a start on all three is refused on device 1 only.
    let text = r#"{"name": "x", "devices": 3, "steps": [
        {"do": "set_local", "on": {"devices": [0, 2]},
         "settings": {"data_handling": {"ksn_statement_accepted": true}}},
        {"do": "start"}]}"#;
    let outcome = run_text(text);
    let failure = outcome.failure.expect("device 1 refuses");
    assert_eq!((failure.step, failure.device), (Some(1), Some(1)));
    assert!(
        failure.found.contains("ok on devices 0, 2")
            && failure
                .found
                .contains("statement_not_accepted: cannot start")
            && failure.found.contains("on device 1"),
        "{}",
        failure.found
    );
    let steps: Vec<_> = outcome.steps.iter().collect();
    let events = &steps[1].events;
    assert!(
        events.contains(&"state stopped→running (devices 0, 2)".to_string()),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("start refused") && e.ends_with("(device 1)")),
        "{events:?}"
    );
    // The devices a step does not address are left out of its outcomes.
    let first = &steps[0];
    assert_eq!(first.outcomes.len(), 1, "{:?}", first.outcomes);
    assert_eq!(first.outcomes[0].devices, "devices 0, 2");

    // Every device alike: one answer, counted.
    let alike = run_text(
        r#"{"name": "x", "devices": 3, "steps": [{"do": "set_local",
            "settings": {"data_handling": {"ksn_statement_accepted": true}}}, {"do": "start"}]}"#,
    );
    assert!(alike.passed, "{:?}", alike.failure);
    assert_eq!(alike.steps.iter().nth(1).unwrap().result, "ok (3 devices)");
}

#[test]
fn a_refusal_of_the_server_s_is_of_its_own_kind() {
    let base = r#"{"do": "create_group", "group": "Servers"},
        {"do": "create_policy", "name": "P", "group": "Servers"}"#;
    for (step, kind) in [
        (
            r#"{"do": "create_group", "group": "Nowhere/Web"}"#,
            "not_found",
        ),
        (
            r#"{"do": "create_group", "group": "Servers"}"#,
            "name_taken",
        ),
        (r#"{"do": "create_policy", "name": "P"}"#, "name_taken"),
        (r#"{"do": "create_policy", "name": " "}"#, "invalid_name"),
        (
            r#"{"do": "roll_back_policy", "name": "P", "revision": 4}"#,
            "not_found",
        ),
        (
            r#"{"do": "remove_profile", "name": "P", "profile": "away"}"#,
            "not_found",
        ),
        (
            r#"{"do": "set_group", "group": "/", "inherit": false}"#,
            "not_allowed",
        ),
        (
            r#"{"do": "create_policy", "name": "Q", "policy": {"settings": {"task": {"checksum_limit_mb": 0}}}}"#,
            "invalid_settings",
        ),
    ] {
        let with = |kind: &str| {
            let mut step: serde_json::Value = serde_json::from_str(step).unwrap();
            step["expect_error"] = kind.into();
            step.to_string()
        };
        let expected = with(kind);
        let text = format!(r#"{{"name": "x", "devices": 2, "steps": [{base}, {expected}]}}"#);
        let outcome = run_text(&text);
        assert!(outcome.passed, "{step}: {:?}", outcome.failure);
        // Expected as a device's kind instead, it fails naming the server's refusal.
        let wrong = with("invalid_state");
        let text = format!(r#"{{"name": "x", "devices": 2, "steps": [{base}, {wrong}]}}"#);
        let failure = run_text(&text).failure.expect("not the device's kind");
        assert_eq!(failure.device, None, "{step}: the server's, not a device's");
        assert!(
            failure
                .found
                .starts_with(&format!("the server refused it: {kind}: ")),
            "{step}: {}",
            failure.found
        );
    }
}
