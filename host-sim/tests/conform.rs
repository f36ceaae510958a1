//! `host-sim conform`: the real plugin and the independent minimal one keep the contract;
//! the panicking fixture and the incompatible one fail, saying why.

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
    assert!(out.contains("10 of 10 checks hold"), "{out}");
    assert!(
        out.contains("unversioned refused, version 1001 not in force"),
        "{out}"
    );
    for check in [
        "answers every method",
        "a refused change changes nothing",
        "events arrive in order, as logged",
        "the log survives a restart",
    ] {
        assert!(out.contains(check), "{check}: {out}");
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
    assert!(out.contains("10 of 10 checks hold"), "{out}");
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
    assert_eq!(checks.len(), 10);
    assert!(checks.iter().all(|c| c["passed"] == true), "{report}");
}
