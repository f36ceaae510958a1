//! Bad input as a new user would type it: one clear error naming the place, and nothing
//! changed.

mod common;

use host_sim::world::Device;
use plugin_api::ErrorKind;

fn snapshot(device: &Device) -> (String, String) {
    let settings = device
        .task
        .settings_json()
        .into_result()
        .unwrap()
        .to_string();
    let status = format!("{:?}", device.task.status());
    (settings, status)
}

#[test]
fn bad_policies_are_refused_whole_with_their_path() {
    let device = common::device();
    device
        .task
        .push_policy(
            r#"{"settings": {"task": {"checksum_limit_mb": {"value": 16, "locked": true}}}}"#
                .into(),
        )
        .into_result()
        .unwrap();
    let before = snapshot(&device);
    let cases = [
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": false, "send_statistics": "no"}}}"#,
            "settings.data_handling.send_statistics: expected true or false, got the string \"no\"",
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": false}, "task": {"colour": 1}}}"#,
            "settings.task.colour: unknown setting; task has: action_on_untrusted, checksum_limit_enabled",
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": false}, "task": {"lookup_timeout_ms": 99}}}"#,
            "settings.task.lookup_timeout_ms: expected an integer from 100 to 60000, got 99",
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": false}, "task": {"checksum_limit_mb": 2"#,
            "line 1 column 97: malformed JSON: EOF while parsing an object",
        ),
        (r#"{"settings": {"tasks": {}}}"#, "settings.tasks: unknown section"),
        (
            r#"{"settings": {"task": {"schedule": {"value": "manual", "locked": "yes"}}}}"#,
            "settings.task.schedule.locked: expected true or false",
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": true, "ksn_statement_accepted": false}}}"#,
            "settings.data_handling.ksn_statement_accepted: the key is given twice",
        ),
        (
            r#"{"settings": {"task": {"checksum_limit_m": 3}}}"#,
            "settings.task.checksum_limit_m: unknown setting",
        ),
    ];
    for (policy, message) in cases {
        let err = device
            .task
            .push_policy(policy.into())
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_SETTINGS, "{policy}");
        assert!(
            err.message.starts_with(message),
            "{policy}\n got: {}\nwant: {message}",
            err.message
        );
        assert!(!err.message.contains('\n'));
        assert_eq!(snapshot(&device), before, "{policy} changed something");
    }
}

#[test]
fn bad_local_changes_are_refused_whole_with_their_path() {
    let device = common::device();
    device
        .task
        .set_local(r#"{"task": {"checksum_limit_mb": 16}}"#.into())
        .into_result()
        .unwrap();
    let before = snapshot(&device);
    let cases = [
        (r#"{"task": {"checksum_limit_mb": 0, "schedule": "manual"}}"#, ErrorKind::INVALID_SETTINGS, "task.checksum_limit_mb: expected an integer from 1 to 1024, got 0"),
        (r#"{"task": {"checksum_limit_mb": 4, "schedule": "weekly"}}"#, ErrorKind::INVALID_SETTINGS, "task.schedule: expected one of \"manual\", \"at_application_start\", got \"weekly\""),
        (r#"{"task": {"checksum_limit_mb": 4}, "extra": {}}"#, ErrorKind::INVALID_SETTINGS, "extra: unknown section"),
        (r#"{"task": {"checksum_limit_mb": {"value": 4}}}"#, ErrorKind::INVALID_SETTINGS, "task.checksum_limit_mb: a local change takes plain values"),
        (r#"[1, 2]"#, ErrorKind::INVALID_SETTINGS, "settings: expected an object, got an array"),
        (r#"{"task": "#, ErrorKind::INVALID_SETTINGS, "line 1 column 9: malformed JSON"),
        (r#"{"data_handling": {"kmp_statement_accepted": true}}"#, ErrorKind::STATEMENT_NOT_ACCEPTED, "data_handling.kmp_statement_accepted: the Managed Protection statement needs the KSN statement accepted first"),
    ];
    for (doc, kind, message) in cases {
        let err = device.task.set_local(doc.into()).into_result().unwrap_err();
        assert_eq!(err.kind, kind, "{doc}: {err}");
        assert!(
            err.message.starts_with(message),
            "{doc}\n got: {}\nwant: {message}",
            err.message
        );
        assert_eq!(snapshot(&device), before, "{doc} changed something");
    }
}

#[test]
fn a_huge_key_or_value_gets_a_short_error_and_a_short_log_record() {
    let device = common::device();
    let key = "k".repeat(1 << 20);
    let value = "v".repeat(1 << 20);
    for policy in [
        format!(r#"{{"settings": {{"task": {{"{key}": 1}}}}}}"#),
        format!(r#"{{"settings": {{"task": {{"schedule": "{value}"}}}}}}"#),
    ] {
        let err = device
            .task
            .push_policy(policy.as_str().into())
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_SETTINGS);
        assert!(err.message.len() < 400, "{} bytes", err.message.len());
    }
    let log = device.task.task_log_json().into_result().unwrap();
    assert!(
        log.len() < 4_000,
        "the refusals are logged short: {} bytes",
        log.len()
    );
}
