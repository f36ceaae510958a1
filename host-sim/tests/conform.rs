//! `host-sim conform`: the real plugin and the independent minimal one keep the contract;
//! the panicking fixture and the incompatible one fail, saying why; a careless one fails
//! each rule of consent it breaks.

mod common;

fn conform(lib: &str) -> (i32, String, String) {
    let out = common::host_sim()
        .args(["conform", "--watchdog-ms", "500", "--plugin"])
        .arg(common::artifact(lib))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_real_plugin_keeps_the_contract() {
    let (code, out, err) = conform("ksn_plugin");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("13 of 13 checks hold"), "{out}");
    assert!(
        out.contains("unversioned refused, version 1001 not in force"),
        "{out}"
    );
    for check in [
        "answers every method",
        "a refused change changes nothing",
        "events arrive in order, as logged",
        "the log survives a restart",
        "a released lock restores nothing, in either mode",
        "no restart brings back a withdrawal (host keeps no events)",
        "what a call caused is in its answer",
    ] {
        assert!(out.contains(check), "{check}: {out}");
    }
    assert!(
        out.contains("a start before set_license answers invalid_state")
            && out.contains("a lookup on a stopped task answers not_running"),
        "{out}"
    );
}

/// The rules of consent, each broken the way the issue found them: conform fails each,
/// saying what it saw.
#[test]
fn a_plugin_that_breaks_the_rules_of_consent_fails_each_check_saying_why() {
    let (code, out, err) = conform("fixture_careless_plugin");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("10 of 13 checks hold"), "{out}");
    let line = |check: &str| {
        out.lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("{check}: {out}"))
            .to_string()
    };
    let released = line("a released lock restores nothing");
    assert!(
        released.contains("FAIL") && released.contains("the value from before the lock came back"),
        "{released}"
    );
    let restart = line("no restart brings back a withdrawal");
    assert!(
        restart.contains("FAIL") && restart.contains("the withdrawal was lost"),
        "{restart}"
    );
    let calls = line("what a call caused is in its answer");
    for broken in [
        "application_started answered ok",
        "start before the licence was reported in this session started the task",
        "a lookup on a stopped task answered unavailable from none",
    ] {
        assert!(calls.contains(broken), "{broken}: {calls}");
    }
}

#[test]
fn a_second_plugin_written_from_the_contract_alone_keeps_it() {
    let (code, out, err) = conform("minimal_plugin");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("conformance of minimal-ksn-usage-task"),
        "{out}"
    );
    assert!(out.contains("13 of 13 checks hold"), "{out}");
    assert!(out.contains("nothing undescribed admitted"), "{out}");
}

#[test]
fn a_plugin_that_panics_fails_with_the_reason() {
    let (code, out, _) = conform("fixture_panicky_plugin");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("answers every method") && out.contains("start panicked"),
        "{out}"
    );
    assert!(
        out.contains("describe is not implemented by this plugin"),
        "{out}"
    );
}

#[test]
fn an_incompatible_plugin_is_refused_at_load_with_the_reason() {
    let (code, _, err) = conform("fixture_incompatible_plugin");
    assert_eq!(code, 5);
    assert!(
        err.contains("mismatched type at info.__returns.contract_version"),
        "{err}"
    );
}

#[test]
fn conform_as_json_lists_every_check() {
    let out = common::host_sim()
        .args(["conform", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 13);
    assert!(checks.iter().all(|c| c["passed"] == true), "{report}");
    assert!(checks.iter().all(|c| c["applicable"] == true), "{report}");
}
