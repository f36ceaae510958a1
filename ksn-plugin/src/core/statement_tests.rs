//! Acceptance of what was read (SPEC §3.13): a policy's acceptance names the statement
//! versions the administrator read; an unversioned one is refused, one of another version
//! is not in force; a local acceptance accepts the version the device shows.

use plugin_api::{ErrorKind, LicenseState, TaskState};

use plugin_api::testing::TestHost;

use super::Task;

fn task() -> (TestHost, Task<TestHost>) {
    let host = TestHost::default();
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    (host, task)
}

fn policy(acceptance: &str) -> String {
    format!(r#"{{"settings": {{"data_handling": {{"ksn_statement_accepted": {acceptance}}}}}}}"#)
}

fn setting(task: &Task<TestHost>, path: &str) -> serde_json::Value {
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    view["details"][path].clone()
}

const BOX: &str = "data_handling.ksn_statement_accepted";

#[test]
fn an_unversioned_acceptance_in_a_policy_is_refused_naming_the_version_to_state() {
    let (_, task) = task();
    for acceptance in ["true", r#"{"value": true, "locked": true}"#] {
        let err = task.push_policy(&policy(acceptance)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_SETTINGS);
        assert!(
            err.message
                .starts_with("settings.data_handling.ksn_statement_accepted: an acceptance in a policy names the version"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains(r#""ksn": 1, "private_ksn": 1"#),
            "{}",
            err.message
        );
    }
    // A withdrawal names nothing: there is nothing it accepts.
    task.push_policy(&policy("false")).unwrap();
    let err = task
        .push_policy(
            r#"{"settings": {"data_handling": {"kmp_statement_accepted": {"value": true, "versions": {"ksn": 1}}}}}"#,
        )
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "settings.data_handling.kmp_statement_accepted.versions.ksn: this box accepts kmp"
        ),
        "{}",
        err.message
    );
    assert_eq!(setting(&task, BOX)["value"], false);
}

#[test]
fn an_acceptance_of_another_version_is_not_in_force_and_says_so_once() {
    let (host, task) = task();
    task.push_policy(&policy(
        r#"{"value": true, "locked": true, "versions": {"ksn": 7}}"#,
    ))
    .unwrap();
    let view = setting(&task, BOX);
    assert_eq!(view["value"], false);
    let why = view["why"].as_str().unwrap();
    assert!(
        why.contains("version 7") && why.contains("ships version 1"),
        "{why}"
    );
    let err = task.start().unwrap_err();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(
        err.message.contains("version 7") && err.message.contains("version 1"),
        "{}",
        err.message
    );
    let events = host.events_of("acceptance_not_in_force");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            &events[0]["statement"],
            &events[0]["version"],
            &events[0]["current_version"]
        ),
        (&"ksn".into(), &7.into(), &1.into())
    );
    // The same policy sent again (a management server's synchronisation) says nothing new.
    task.push_policy(&policy(
        r#"{"value": true, "locked": true, "versions": {"ksn": 7}}"#,
    ))
    .unwrap();
    assert_eq!(host.events_of("acceptance_not_in_force").len(), 1);
    assert!(task
        .task_log_json()
        .unwrap()
        .contains("acceptance_not_in_force"));

    // The lock is on acceptance: accepting locally the version the device shows is
    // re-stating the enforced value.
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    task.start().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
}

#[test]
fn a_policy_accepts_the_statement_of_the_device_s_mode_by_its_version() {
    let (_, task) = task();
    // Only the Private KSN statement was read: not in force in Global KSN mode.
    task.push_policy(&policy(
        r#"{"value": true, "versions": {"private_ksn": 1}}"#,
    ))
    .unwrap();
    assert_eq!(setting(&task, BOX)["value"], false);
    assert!(setting(&task, BOX)["why"]
        .as_str()
        .unwrap()
        .contains("names no version of it"));
    task.set_private_ksn(true).unwrap();
    task.push_policy(&policy(
        r#"{"value": true, "versions": {"private_ksn": 1}}"#,
    ))
    .unwrap();
    assert_eq!(setting(&task, BOX)["value"], true);
    // Both read: after the switch-off the next push accepts the KSN statement.
    task.set_private_ksn(false).unwrap();
    assert_eq!(setting(&task, BOX)["value"], false);
    task.push_policy(&policy(
        r#"{"value": true, "versions": {"private_ksn": 1, "ksn": 1}}"#,
    ))
    .unwrap();
    let log = task.task_log_json().unwrap();
    assert!(
        log.contains(r#""statement":"ksn","version":1,"accepted":true,"source":"policy""#),
        "{log}"
    );
}

#[test]
fn a_local_acceptance_accepts_the_version_shown_and_refuses_another() {
    let (_, task) = task();
    let err = task
        .set_local(r#"{"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 2}}}}"#)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(
        err.message.starts_with("data_handling.ksn_statement_accepted: the change accepts ksn version 2, but this device shows ksn version 1"),
        "{}",
        err.message
    );
    let err = task
        .set_local(r#"{"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"private_ksn": 1}}}}"#)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert_eq!(
        setting(&task, BOX)["value"],
        false,
        "a refusal changes nothing"
    );
    task.set_local(
        r#"{"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}}}}"#,
    )
    .unwrap();
    assert_eq!(setting(&task, BOX)["value"], true);
    let err = task
        .set_local(r#"{"data_handling": {"send_statistics": {"value": true}}}"#)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_SETTINGS);
}

#[test]
fn a_withdrawn_box_says_who_withdrew_it() {
    let (_, task) = task();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#)
        .unwrap();
    let view = setting(&task, BOX);
    assert_eq!(
        (&view["value"], &view["source"]),
        (&false.into(), &"local".into())
    );
    assert!(view["why"]
        .as_str()
        .unwrap()
        .contains("withdrawn by a local change"));
}

#[test]
fn a_locked_kmp_acceptance_of_another_version_does_not_return_with_the_ksn_statement() {
    let (host, task) = task();
    task.push_policy(
        r#"{"settings": {"data_handling": {
            "ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}},
            "kmp_statement_accepted": {"value": true, "locked": true, "versions": {"kmp": 3}}}}}"#,
    )
    .unwrap();
    assert_eq!(
        setting(&task, "data_handling.kmp_statement_accepted")["value"],
        false
    );
    let events = host.events_of("acceptance_not_in_force");
    assert_eq!(events[0]["statement"], "kmp");
}
