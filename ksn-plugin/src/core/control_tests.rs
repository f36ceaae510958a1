use plugin_api::{DataCategory, ErrorKind, LicenseState, TaskState};

use super::*;
use crate::core::{
    consent::{Source, Statement},
    doc::{parse_local, parse_policy},
    journal::Event,
    stored::Stored,
    table::{Setting, Value},
};

/// Applies a transaction the way the driver does.
fn commit(control: &mut Control, txn: Txn) -> Txn {
    *control = txn.next.clone();
    txn
}

fn fresh() -> Control {
    let mut c = Control::default();
    let txn = c.set_license(LicenseState::VALID, 0);
    commit(&mut c, txn);
    c
}

fn push(c: &mut Control, policy: &str) -> Result<Txn, TaskError> {
    let txn = c.push_policy(parse_policy(policy).unwrap(), 1)?;
    Ok(commit(c, txn))
}

fn local(c: &mut Control, doc: &str) -> Result<Txn, TaskError> {
    let txn = c.set_local(&parse_local(doc).unwrap(), 2)?;
    Ok(commit(c, txn))
}

fn start(c: &mut Control) -> Result<Txn, TaskError> {
    let txn = c.start(3)?;
    Ok(commit(c, txn))
}

const ACCEPT_LOCKED: &str = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}}}}"#;

fn events(txn: &Txn) -> Vec<&Event> {
    txn.entries.iter().map(|e| &e.event).collect()
}

#[test]
fn start_needs_the_statement_and_stays_stopped_without_it() {
    let c = fresh();
    let err = c.start(0).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(err.message.contains("the KSN statement"));
    assert_eq!(c.state, TaskState::STOPPED);
}

#[test]
fn start_needs_a_licence_that_covers_ksn() {
    for license in [
        LicenseState::UNKNOWN,
        LicenseState::EXPIRED,
        LicenseState::NO_KSN,
    ] {
        let mut c = Control::default();
        let txn = c.set_license(license, 0);
        commit(&mut c, txn);
        local(
            &mut c,
            r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
        )
        .unwrap();
        let err = c.start(0).err().unwrap();
        assert_eq!(err.kind, ErrorKind::LICENSE_VIOLATION, "{license}");
        assert_eq!(c.state, TaskState::STOPPED);
    }
}

#[test]
fn starting_twice_is_an_invalid_state() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    let txn = start(&mut c).unwrap();
    assert_eq!(
        events(&txn),
        vec![&Event::StateChanged {
            from: TaskState::STOPPED,
            to: TaskState::RUNNING,
            reason: None
        }]
    );
    assert_eq!(c.start(4).err().unwrap().kind, ErrorKind::INVALID_STATE);
}

#[test]
fn a_locked_policy_accepts_and_records_its_source() {
    let mut c = fresh();
    let txn = push(&mut c, ACCEPT_LOCKED).unwrap();
    let acceptance = c.consent.ksn.unwrap();
    assert_eq!(acceptance.statement, Statement::Ksn);
    assert_eq!(acceptance.source, Source::Policy);
    assert!(txn.persist_state);
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Ksn,
        version: 1,
        accepted: true,
        source: Source::Policy,
        category: None,
        with_statement: None
    }));
    let r = c.layers.resolve(Setting::KsnStatementAccepted, &c.consent);
    assert_eq!(
        (r.value, r.source, r.locked),
        (Value::Bool(true), Source::Policy, true)
    );
}

#[test]
fn a_locked_setting_is_refused_locally_unless_it_is_the_enforced_value() {
    let mut c = fresh();
    push(
        &mut c,
        r#"{"settings": {"task": {"action_on_untrusted": {"value": "log", "locked": true}}}}"#,
    )
    .unwrap();
    let before = c.clone();
    let err = local(&mut c, r#"{"task": {"action_on_untrusted": "delete"}}"#)
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::LOCKED_BY_POLICY);
    assert!(err
        .message
        .starts_with("task.action_on_untrusted: locked by policy"));
    assert_eq!(c, before);
    let txn = local(&mut c, r#"{"task": {"action_on_untrusted": "log"}}"#).unwrap();
    assert!(
        txn.is_empty(),
        "re-stating the enforced value changes nothing"
    );
}

#[test]
fn a_refused_local_change_applies_none_of_its_parts() {
    let mut c = fresh();
    push(
        &mut c,
        r#"{"settings": {"task": {"schedule": {"value": "manual", "locked": true}}}}"#,
    )
    .unwrap();
    let before = c.clone();
    let doc = r#"{"task": {"checksum_limit_mb": 9, "schedule": "at_application_start"}}"#;
    assert!(local(&mut c, doc).is_err());
    assert_eq!(c, before);
}

#[test]
fn an_unlocked_policy_value_is_changeable_until_the_next_push() {
    let mut c = fresh();
    let policy = r#"{"settings": {"task": {"checksum_limit_mb": 8}}}"#;
    push(&mut c, policy).unwrap();
    assert_eq!(c.value(Setting::ChecksumLimitMb), Value::Int(8));
    let txn = local(&mut c, r#"{"task": {"checksum_limit_mb": 16}}"#).unwrap();
    assert_eq!(c.value(Setting::ChecksumLimitMb), Value::Int(16));
    let Event::SettingsChanged {
        source,
        before,
        after,
    } = events(&txn)[0]
    else {
        panic!("{:?}", events(&txn))
    };
    assert_eq!(*source, Source::Local);
    assert_eq!(
        before.get("task.checksum_limit_mb"),
        Some(&serde_json::json!(8))
    );
    assert_eq!(
        after.get("task.checksum_limit_mb"),
        Some(&serde_json::json!(16))
    );
    push(&mut c, policy).unwrap();
    assert_eq!(c.value(Setting::ChecksumLimitMb), Value::Int(8));
}

#[test]
fn a_new_policy_replaces_the_previous_one_and_a_released_lock_restores_nothing() {
    let mut c = fresh();
    local(&mut c, r#"{"task": {"lookup_timeout_ms": 500}}"#).unwrap();
    push(
        &mut c,
        r#"{"settings": {"task": {"lookup_timeout_ms": {"value": 2000, "locked": true}}}}"#,
    )
    .unwrap();
    assert_eq!(c.value(Setting::LookupTimeoutMs), Value::Int(2000));
    push(&mut c, r#"{"settings": {}}"#).unwrap();
    assert!(c.layers.policy.locked_paths().is_empty());
    assert_eq!(
        c.value(Setting::LookupTimeoutMs),
        Value::Int(2000),
        "the value the policy enforced stays; the one from before it does not come back"
    );
    local(&mut c, r#"{"task": {"lookup_timeout_ms": 700}}"#).unwrap();
    assert_eq!(c.value(Setting::LookupTimeoutMs), Value::Int(700));
}

#[test]
fn kmp_needs_the_ksn_statement() {
    let mut c = fresh();
    let err = local(
        &mut c,
        r#"{"data_handling": {"kmp_statement_accepted": true}}"#,
    )
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(err
        .message
        .starts_with("data_handling.kmp_statement_accepted"));
    let err = c
        .push_policy(
            parse_policy(r#"{"settings": {"data_handling": {"kmp_statement_accepted": {"value": true, "versions": {"kmp": 1}}}}}"#)
                .unwrap(),
            0,
        )
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}}"#,
    )
    .unwrap();
    assert!(c.consent.kmp_accepted());
}

#[test]
fn kmp_acceptance_takes_effect_at_the_next_start_and_withdrawal_at_once() {
    let mut c = fresh();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    start(&mut c).unwrap();
    local(
        &mut c,
        r#"{"data_handling": {"kmp_statement_accepted": true}}"#,
    )
    .unwrap();
    assert!(!c.kmp_active, "not before the next start");
    let txn = c.stop(4);
    commit(&mut c, txn);
    start(&mut c).unwrap();
    assert!(c.kmp_active);
    let txn = local(
        &mut c,
        r#"{"data_handling": {"kmp_statement_accepted": false}}"#,
    )
    .unwrap();
    assert!(!c.kmp_active);
    assert!(txn.effects.discard_kmp);
    assert_eq!(c.state, TaskState::RUNNING, "KMP withdrawal is partial");
}

#[test]
fn full_withdrawal_stops_the_task_without_error_and_drops_queued_data() {
    let mut c = fresh();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}}"#,
    )
    .unwrap();
    start(&mut c).unwrap();
    let generation = c.generation;
    let txn = local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
    )
    .unwrap();
    assert_eq!((c.state, c.error), (TaskState::STOPPED, None));
    assert!(txn.effects.clear_cache && txn.effects.discard_statistics && txn.effects.discard_kmp);
    assert!(c.generation > generation);
    assert!(c.consent.ksn.is_none() && c.consent.kmp.is_none());
    let withdrawals: Vec<_> = events(&txn)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::ConsentChanged {
                    accepted: false,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        withdrawals.len(),
        2,
        "KSN and KMP withdrawals are both recorded"
    );
}

#[test]
fn withdrawal_by_policy_is_recorded_with_its_source() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    start(&mut c).unwrap();
    let txn = push(
        &mut c,
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": false, "locked": true}}}}"#,
    )
    .unwrap();
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Ksn,
        version: 1,
        accepted: false,
        source: Source::Policy,
        category: None,
        with_statement: None
    }));
    assert_eq!(c.state, TaskState::STOPPED);
    let err = local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::LOCKED_BY_POLICY);
}

#[test]
fn partial_withdrawal_is_one_category_only() {
    let mut c = fresh();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    start(&mut c).unwrap();
    let txn = local(&mut c, r#"{"data_handling": {"send_statistics": false}}"#).unwrap();
    assert_eq!(c.state, TaskState::RUNNING);
    assert!(txn.effects.discard_statistics && !txn.effects.clear_cache);
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Ksn,
        version: 1,
        accepted: false,
        source: Source::Local,
        category: Some(DataCategory::STATISTICS),
        with_statement: None
    }));
    let txn = local(
        &mut c,
        r#"{"data_handling": {"send_scanned_urls_data": false}}"#,
    )
    .unwrap();
    assert!(!txn.effects.discard_statistics);
}

#[test]
fn private_ksn_makes_the_global_boxes_unavailable_locally() {
    let mut c = fresh();
    let txn = c.set_private_ksn(true, 0);
    commit(&mut c, txn);
    for key in [
        "send_scanned_files_data",
        "send_scanned_urls_data",
        "send_statistics",
    ] {
        let doc = format!(r#"{{"data_handling": {{"{key}": false}}}}"#);
        let err = local(&mut c, &doc).err().unwrap();
        assert_eq!(err.kind, ErrorKind::UNAVAILABLE_IN_PRIVATE_KSN, "{key}");
        assert!(err.message.starts_with(&format!("data_handling.{key}")));
    }
    // A policy may carry them; unlocked ones are not applied in this mode.
    push(
        &mut c,
        r#"{"settings": {"data_handling": {"send_statistics": false}}}"#,
    )
    .unwrap();
    assert_eq!(c.value(Setting::SendStatistics), Value::Bool(true));
    assert!(!c.applies(Setting::SendStatistics));
    assert!(!c.applies(Setting::UseKscAsKsnProxy));
    assert!(c.applies(Setting::ChecksumLimitMb));
}

#[test]
fn private_ksn_acceptance_is_of_the_private_statement() {
    let mut c = fresh();
    let txn = c.set_private_ksn(true, 0);
    commit(&mut c, txn);
    push(&mut c, ACCEPT_LOCKED).unwrap();
    assert_eq!(c.consent.ksn.unwrap().statement, Statement::PrivateKsn);
}

#[test]
fn private_ksn_switched_off_while_running_is_a_licence_violation() {
    let mut c = fresh();
    let txn = c.set_private_ksn(true, 0);
    commit(&mut c, txn);
    push(&mut c, ACCEPT_LOCKED).unwrap();
    start(&mut c).unwrap();
    let txn = c.set_private_ksn(false, 5);
    commit(&mut c, txn);
    assert_eq!(
        (c.state, c.error),
        (TaskState::FAILED, Some(ErrorKind::LICENSE_VIOLATION))
    );
    assert_eq!(
        c.value(Setting::KsnStatementAccepted),
        Value::Bool(false),
        "does not carry over"
    );
    assert!(c.consent.ksn.is_none());
    assert!(matches!(
        c.start(6).err().unwrap().kind,
        ErrorKind::STATEMENT_NOT_ACCEPTED
    ));
    // Accepting the Global statement locally re-states the policy's enforced value.
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    assert_eq!(c.consent.ksn.unwrap().statement, Statement::Ksn);
    assert_eq!(c.state, TaskState::FAILED, "the task must be started again");
    start(&mut c).unwrap();
    assert_eq!((c.state, c.error), (TaskState::RUNNING, None));
}

#[test]
fn private_ksn_switched_on_while_running_needs_the_private_statement() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    start(&mut c).unwrap();
    let txn = c.set_private_ksn(true, 5);
    assert!(txn.effects.clear_cache);
    commit(&mut c, txn);
    assert_eq!(
        (c.state, c.error),
        (TaskState::FAILED, Some(ErrorKind::STATEMENT_NOT_ACCEPTED))
    );
    push(&mut c, ACCEPT_LOCKED).unwrap();
    assert_eq!(c.consent.ksn.unwrap().statement, Statement::PrivateKsn);
    start(&mut c).unwrap();
    assert_eq!(c.state, TaskState::RUNNING);
}

#[test]
fn the_same_mode_again_changes_nothing() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    assert!(c.set_private_ksn(false, 0).is_empty());
}

#[test]
fn a_settings_change_does_not_clear_a_failure() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    start(&mut c).unwrap();
    let txn = c.set_license(LicenseState::EXPIRED, 9);
    commit(&mut c, txn);
    assert_eq!(
        (c.state, c.error),
        (TaskState::FAILED, Some(ErrorKind::LICENSE_VIOLATION))
    );
    local(&mut c, r#"{"task": {"action_on_untrusted": "log"}}"#).unwrap();
    assert_eq!(c.state, TaskState::FAILED);
    let txn = c.stop(10);
    commit(&mut c, txn);
    assert_eq!((c.state, c.error), (TaskState::STOPPED, None));
}

#[test]
fn refusals_are_logged_with_their_kind() {
    let c = fresh();
    let err = c.start(0).err().unwrap();
    let txn = c.refusal("start", &err, 0);
    assert!(matches!(
        events(&txn)[0],
        Event::OperationRefused {
            operation,
            kind: ErrorKind::STATEMENT_NOT_ACCEPTED,
            ..
        } if operation == "start"
    ));
    assert!(!txn.persist_state);
}

#[test]
fn stored_state_restores_settings_and_consent_but_not_the_run_state() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    local(
        &mut c,
        r#"{"task": {"checksum_limit_mb": 64, "schedule": "at_application_start"}}"#,
    )
    .unwrap();
    start(&mut c).unwrap();
    let json = serde_json::to_string(&c.stored()).unwrap();
    let back: Stored = serde_json::from_str(&json).unwrap();
    let restored = Control::restored(Some(&back), c.next_seq).unwrap();
    assert_eq!(restored.layers, c.layers);
    assert_eq!(restored.consent, c.consent);
    assert_eq!(restored.state, TaskState::STOPPED);
    assert_eq!(
        restored.license,
        LicenseState::VALID,
        "what the host last reported, until it reports again"
    );
}

/// A mode report, and what waited for its record (the policy's deferred values), as the
/// driver applies them once the report is recorded.
fn private_ksn(c: &mut Control, enabled: bool) -> Txn {
    let mut txn = c.set_private_ksn(enabled, 7);
    if txn.next.waiting.is_some() {
        txn = txn.and_then(|c| c.resume(7).expect("a waiting change"));
    }
    commit(c, txn)
}

#[test]
fn a_policy_pushed_in_private_mode_is_in_force_when_private_ksn_goes_off() {
    for locked in [false, true] {
        let mut c = fresh();
        private_ksn(&mut c, true);
        let policy = format!(
            r#"{{"settings": {{"data_handling": {{"send_scanned_urls_data": {{"value": false, "locked": {locked}}},
                "send_statistics": false}},
                "task": {{"use_ksc_as_ksn_proxy": false, "checksum_limit_mb": 9}}}}}}"#
        );
        push(&mut c, &policy).unwrap();
        assert_eq!(
            c.value(Setting::ChecksumLimitMb),
            Value::Int(9),
            "applies in both modes"
        );
        assert!(!c.applies(Setting::SendStatistics) && !c.applies(Setting::UseKscAsKsnProxy));
        // A local change of the proxy settings is allowed while they do not apply, and the
        // policy's value wins when they do again, as if pushed then.
        local(&mut c, r#"{"task": {"use_ksc_as_ksn_proxy": true}}"#).unwrap();

        let txn = private_ksn(&mut c, false);
        for (setting, value) in [
            (Setting::SendScannedUrlsData, false),
            (Setting::SendStatistics, false),
            (Setting::UseKscAsKsnProxy, false),
            (Setting::SendScannedFilesData, true),
        ] {
            assert_eq!(
                c.value(setting),
                Value::Bool(value),
                "{setting:?} (locked {locked})"
            );
        }
        assert!(!c.deferred_policy);
        assert!(events(&txn).iter().any(|e| matches!(
            e,
            Event::SettingsChanged { source: Source::Policy, after, .. }
                if after.get("data_handling.send_statistics") == Some(&serde_json::json!(false))
        )));
        // Once applied, they are ordinary unlocked policy values: changeable locally.
        local(&mut c, r#"{"data_handling": {"send_statistics": true}}"#).unwrap();
        assert_eq!(c.value(Setting::SendStatistics), Value::Bool(true));
        private_ksn(&mut c, true);
        private_ksn(&mut c, false);
        assert_eq!(
            c.value(Setting::SendStatistics),
            Value::Bool(true),
            "a switch without a pending policy leaves local changes alone"
        );
    }
}

#[test]
fn the_deferred_policy_survives_a_restart() {
    let mut c = fresh();
    private_ksn(&mut c, true);
    push(
        &mut c,
        r#"{"settings": {"data_handling": {"send_scanned_files_data": false}}}"#,
    )
    .unwrap();
    let back: Stored = serde_json::from_str(&serde_json::to_string(&c.stored()).unwrap()).unwrap();
    let mut restored = Control::restored(Some(&back), c.next_seq).unwrap();
    assert!(restored.deferred_policy);
    private_ksn(&mut restored, false);
    assert_eq!(
        restored.value(Setting::SendScannedFilesData),
        Value::Bool(false)
    );
}

const KSN_WITH_LOCKED_KMP: &str = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}},
    "kmp_statement_accepted": {"value": true, "locked": true, "versions": {"kmp": 1}}}}}"#;

#[test]
fn a_locked_kmp_acceptance_returns_with_the_ksn_statement() {
    let mut c = fresh();
    push(&mut c, KSN_WITH_LOCKED_KMP).unwrap();
    start(&mut c).unwrap();
    assert!(c.kmp_active);
    let txn = local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
    )
    .unwrap();
    assert!(c.consent.kmp.is_none(), "withdrawal beats the lock");
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Kmp,
        version: 1,
        accepted: false,
        source: Source::Local,
        category: None,
        with_statement: Some(Statement::Ksn)
    }));
    let ended = c.consent.kmp_ended.unwrap();
    assert!(ended.with_ksn && ended.source == Source::Local);

    let txn = local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Kmp,
        version: 1,
        accepted: true,
        source: Source::Policy,
        category: None,
        with_statement: None
    }));
    assert_eq!(c.value(Setting::KmpStatementAccepted), Value::Bool(true));
    start(&mut c).unwrap();
    assert!(c.kmp_active, "in force from the next start");

    // An unlocked KMP acceptance does not come back by itself.
    let mut c = fresh();
    push(&mut c, r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}}, "kmp_statement_accepted": {"value": true, "versions": {"kmp": 1}}}}}"#).unwrap();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
    )
    .unwrap();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    assert!(c.consent.kmp.is_none());
}

fn why(c: &Control, path: &str) -> String {
    let settings: serde_json::Value =
        serde_json::from_str(&crate::core::explain::settings_json(c)).unwrap();
    settings["details"][path]["why"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn explain_gives_the_recorded_reason_an_acceptance_ended() {
    let ksn = "data_handling.ksn_statement_accepted";
    let kmp = "data_handling.kmp_statement_accepted";
    let mut c = fresh();
    push(&mut c, KSN_WITH_LOCKED_KMP).unwrap();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
    )
    .unwrap();
    let text = why(&c, ksn);
    assert!(text.contains("withdrawn by a local change"), "{text}");
    assert!(!text.contains("mode"), "no mode change happened: {text}");
    let text = why(&c, kmp);
    assert!(
        text.contains("ended when the KSN statement's did"),
        "{text}"
    );
    assert!(
        text.contains("in force again once the KSN statement is accepted"),
        "{text}"
    );

    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    private_ksn(&mut c, true);
    let text = why(&c, ksn);
    assert!(
        text.contains("the Private KSN statement is not accepted"),
        "{text}"
    );
    assert!(
        text.contains("lapsed when the Private KSN mode changed"),
        "{text}"
    );
    assert!(text.contains("accept locally"), "{text}");

    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    push(
        &mut c,
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": false}}}"#,
    )
    .unwrap();
    let text = why(&c, ksn);
    assert!(text.contains("withdrawn by the policy"), "{text}");

    let text = why(&fresh(), ksn);
    assert_eq!(text, "the KSN statement is not accepted");
}

#[test]
fn an_acceptance_of_another_version_of_the_statement_no_longer_counts() {
    let mut c = fresh();
    push(&mut c, KSN_WITH_LOCKED_KMP).unwrap();
    let mut stored: serde_json::Value = serde_json::to_value(c.stored()).unwrap();
    stored["consent"]["ksn"]["version"] = 0.into();
    let stored: Stored = serde_json::from_value(stored).unwrap();
    let restored = Control::restored(Some(&stored), c.next_seq).unwrap();
    let txn = restored.restarted(None, 50);
    assert!(txn.persist_state);
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Ksn,
        version: 0,
        accepted: false,
        source: Source::StatementChanged,
        category: None,
        with_statement: None
    }));
    let mut c = restored;
    commit(&mut c, txn);
    assert_eq!(c.value(Setting::KsnStatementAccepted), Value::Bool(false));
    assert!(c.consent.kmp.is_none());
    let mut licensed = c.clone();
    licensed.license = LicenseState::VALID;
    let err = licensed.start(60).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(err.message.contains("changed"), "{}", err.message);
    let text = why(&c, "data_handling.ksn_statement_accepted");
    assert!(
        text.contains("the statement changed: version 1 replaces version 0"),
        "{text}"
    );
    // Accepting again accepts the current version.
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    assert_eq!(c.consent.ksn.unwrap().version, 1);
}

#[test]
fn the_time_of_the_last_batch_is_persisted() {
    let mut c = fresh();
    let txn = c.batch_sent(120_000);
    assert!(txn.persist_state);
    commit(&mut c, txn);
    let back: Stored = serde_json::from_str(&serde_json::to_string(&c.stored()).unwrap()).unwrap();
    assert_eq!(
        Control::restored(Some(&back), 0).unwrap().last_batch_ms,
        Some(120_000)
    );
}

const BOXES: [(&str, Setting, DataCategory); 3] = [
    (
        "send_scanned_files_data",
        Setting::SendScannedFilesData,
        DataCategory::FILES,
    ),
    (
        "send_scanned_urls_data",
        Setting::SendScannedUrlsData,
        DataCategory::URLS,
    ),
    (
        "send_statistics",
        Setting::SendStatistics,
        DataCategory::STATISTICS,
    ),
];

fn lock(key: &str, value: bool) -> String {
    format!(
        r#"{{"settings": {{"data_handling": {{"{key}": {{"value": {value}, "locked": true}}}}}}}}"#
    )
}

/// Every acceptance of a category recorded by these transactions.
fn category_acceptances(txns: &[Txn]) -> Vec<DataCategory> {
    txns.iter()
        .flat_map(|t| t.entries.iter())
        .filter_map(|e| match &e.event {
            Event::ConsentChanged {
                accepted: true,
                category: Some(category),
                ..
            } => Some(*category),
            _ => None,
        })
        .collect()
}

#[test]
fn a_released_lock_restores_nothing_wherever_it_was_pushed_and_released() {
    // (mode the lock is pushed in, mode it is released in)
    for (pushed_private, released_private) in
        [(false, false), (false, true), (true, true), (true, false)]
    {
        for (key, setting, category) in BOXES {
            let mut c = fresh();
            push(&mut c, ACCEPT_LOCKED).unwrap();
            let mut txns = Vec::new();
            if pushed_private {
                txns.push(private_ksn(&mut c, true));
            }
            txns.push(push(&mut c, &lock(key, false)).unwrap());
            if pushed_private != released_private {
                txns.push(private_ksn(&mut c, released_private));
            }
            // The next policy does not name the category (it accepts the statement again
            // in whichever mode the device is in).
            txns.push(push(&mut c, ACCEPT_LOCKED).unwrap());
            let case = format!(
                "{key}: pushed private {pushed_private}, released private {released_private}"
            );
            assert!(c.layers.policy.locked(setting).is_none(), "{case}");
            assert_eq!(c.value(setting), Value::Bool(false), "{case}");
            // Back in Global mode with the statement accepted, the category stays
            // withdrawn, and no record says anyone accepted it.
            if c.private_ksn {
                txns.push(private_ksn(&mut c, false));
                txns.push(
                    local(
                        &mut c,
                        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
                    )
                    .unwrap(),
                );
            }
            assert_eq!(c.value(setting), Value::Bool(false), "{case}");
            assert!(c.consent.ksn_accepted(), "{case}");
            assert!(
                !category_acceptances(&txns).contains(&category),
                "{case}: a release recorded an acceptance of {category}"
            );
            // And a restart keeps it so.
            let back: Stored =
                serde_json::from_str(&serde_json::to_string(&c.stored()).unwrap()).unwrap();
            let restored = Control::restored(Some(&back), c.next_seq).unwrap();
            assert_eq!(restored.value(setting), Value::Bool(false), "{case}");
        }
    }
}

#[test]
fn a_lock_pushed_in_private_mode_over_an_older_lock_leaves_its_own_value_when_released() {
    for (key, setting, _) in BOXES {
        let mut c = fresh();
        push(&mut c, &lock(key, false)).unwrap();
        private_ksn(&mut c, true);
        push(&mut c, &lock(key, true)).unwrap();
        push(&mut c, r#"{"settings": {}}"#).unwrap();
        assert_eq!(c.value(setting), Value::Bool(true), "{key} in Private mode");
        private_ksn(&mut c, false);
        assert_eq!(
            c.value(setting),
            Value::Bool(true),
            "{key} back in Global mode"
        );
    }
}

#[test]
fn a_release_keeps_a_category_withheld_while_its_withdrawal_waited() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    push(&mut c, &lock("send_scanned_files_data", true)).unwrap();
    // The narrowing part of a change that could not be recorded withdrew the category
    // under the lock: it is withheld.
    let after = c
        .push_policy(
            parse_policy(r#"{"settings": {"data_handling": {"send_scanned_files_data": false}}}"#)
                .unwrap(),
            5,
        )
        .unwrap()
        .next;
    let waiting = Waiting {
        operation: "push_policy",
        change: WaitingChange::Local(Vec::new()),
        since_ms: 5,
    };
    let part = c
        .narrowing_part(&after, Source::Policy, waiting, 5)
        .unwrap();
    commit(&mut c, part);
    assert_eq!(c.value(Setting::SendScannedFilesData), Value::Bool(false));
    // A policy that releases the lock without naming the category: it stays withdrawn.
    let txn = push(&mut c, r#"{"settings": {}}"#).unwrap();
    assert_eq!(c.value(Setting::SendScannedFilesData), Value::Bool(false));
    assert!(category_acceptances(&[txn]).is_empty());
}

const ACCEPT_STALE: &str = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 9, "private_ksn": 9}}}}}"#;

/// What the consent in force is, whatever the log says.
fn in_force(c: &Control) -> (bool, bool, Option<Source>) {
    (
        c.consent.ksn_accepted(),
        c.consent.kmp_accepted(),
        c.consent.ksn.map(|a| a.source),
    )
}

#[test]
fn a_policy_acceptance_not_in_force_ends_the_one_an_earlier_policy_gave() {
    let mut c = fresh();
    push(&mut c, ACCEPT_LOCKED).unwrap();
    start(&mut c).unwrap();
    let txn = push(&mut c, ACCEPT_STALE).unwrap();
    assert!(
        !c.consent.ksn_accepted(),
        "the rollback's acceptance is not in force"
    );
    assert_eq!(c.state, TaskState::STOPPED);
    assert!(events(&txn).contains(&&Event::ConsentChanged {
        statement: Statement::Ksn,
        version: 1,
        accepted: false,
        source: Source::Policy,
        category: None,
        with_statement: None
    }));
    assert!(events(&txn).contains(&&Event::AcceptanceNotInForce {
        statement: Statement::Ksn,
        version: Some(9),
        current_version: 1,
        source: Source::Policy
    }));
    let err = c.start(9).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(err.message.contains("version 9"), "{}", err.message);
    let text = why(&c, "data_handling.ksn_statement_accepted");
    assert!(
        !text.contains("accepted by the policy") && text.contains("version 9"),
        "{text}"
    );
    // Sent again unchanged (a synchronisation): nothing more is recorded.
    let again = push(&mut c, ACCEPT_STALE).unwrap();
    assert!(!events(&again).iter().any(|e| matches!(
        e,
        Event::AcceptanceNotInForce { .. } | Event::ConsentChanged { .. }
    )));
}

#[test]
fn the_consent_in_force_depends_on_the_policy_in_force_not_on_the_order_of_pushes() {
    let with_kmp = |versions: &str| {
        format!(
            r#"{{"settings": {{"data_handling": {{"ksn_statement_accepted": {{"value": true, "locked": true, "versions": {versions}}},
               "kmp_statement_accepted": {{"value": true, "locked": true, "versions": {{"kmp": 1}}}}}}}}}}"#
        )
    };
    let good = with_kmp(r#"{"ksn": 1, "private_ksn": 1}"#);
    let stale = with_kmp(r#"{"ksn": 9, "private_ksn": 9}"#);
    let global_only = with_kmp(r#"{"ksn": 1}"#);
    for private in [false, true] {
        let run = |pushes: &[&str]| {
            let mut c = fresh();
            if private {
                private_ksn(&mut c, true);
            }
            for p in pushes {
                push(&mut c, p).unwrap();
            }
            in_force(&c)
        };
        for last in [&good, &stale, &global_only] {
            let alone = run(&[last]);
            for first in [&good, &stale, &global_only] {
                assert_eq!(
                    run(&[first, last]),
                    alone,
                    "private {private}: {first} then {last}"
                );
            }
        }
        let accepted = run(&[&good]);
        assert_eq!(accepted, (true, true, Some(Source::Policy)));
        assert_eq!(run(&[&good, &stale]), (false, false, None));
        // A policy for the Global statement alone is not in force in Private mode.
        assert_eq!(run(&[&good, &global_only]).0, !private);
    }
}

#[test]
fn a_local_acceptance_of_the_shipped_version_stays_under_a_policy_not_in_force() {
    let mut c = fresh();
    local(
        &mut c,
        r#"{"data_handling": {"ksn_statement_accepted": true}}"#,
    )
    .unwrap();
    let txn = push(&mut c, ACCEPT_STALE).unwrap();
    assert_eq!(in_force(&c), (true, false, Some(Source::Local)));
    assert!(events(&txn)
        .iter()
        .any(|e| matches!(e, Event::AcceptanceNotInForce { .. })));
    assert!(!events(&txn)
        .iter()
        .any(|e| matches!(e, Event::ConsentChanged { .. })));
    let text = why(&c, "data_handling.ksn_statement_accepted");
    assert!(
        text.starts_with("the KSN statement was accepted by a local change")
            && text.contains("the policy in force does not accept it"),
        "{text}"
    );
}
