//! No restart brings back a permission that was narrowed before it (SPEC §3.12): a
//! narrowing change that took effect while storage refused to record it survives a restart
//! before storage works again, from the events the host holds, with its original time and
//! source; and a detection is never lost.

use std::sync::atomic::Ordering;

use plugin_api::{DataCategory, ErrorKind, FileQuery, LicenseState, Service, TaskState, Verdict};

use plugin_api::testing::TestHost;

use super::Task;

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"schedule": "at_application_start"}}"#;
const WITHDRAW: &str = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;

fn host() -> TestHost {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([9; 16], Verdict::UNTRUSTED);
    host
}

fn file(n: u8) -> FileQuery {
    FileQuery {
        md5: [n; 16],
        size_bytes: 1000,
    }
}

fn storage(host: &TestHost, works: bool) {
    host.0.refuse_writes.store(!works, Ordering::SeqCst);
}

/// What a host does at each start; a storage error only says that records wait, and a
/// scheduled start may be refused (the answer of `application_started` says why).
fn boot(host: &TestHost, licence: LicenseState, private_ksn: bool) -> Task<TestHost> {
    let task = Task::new(host.clone()).unwrap();
    for outcome in [
        task.set_license(licence),
        task.set_private_ksn(private_ksn),
        task.application_started(),
    ] {
        if let Err(e) = outcome {
            assert!(
                e.kind == ErrorKind::STORAGE_ERROR
                    || e.message.starts_with("the scheduled start was refused"),
                "{e}"
            );
        }
    }
    task
}

fn value(task: &Task<TestHost>, path: &str) -> serde_json::Value {
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    view["details"][path]["value"].clone()
}

fn log(task: &Task<TestHost>) -> Vec<serde_json::Value> {
    serde_json::from_str(&task.task_log_json().unwrap()).unwrap()
}

fn withdrawals(task: &Task<TestHost>) -> Vec<serde_json::Value> {
    log(task)
        .into_iter()
        .filter(|e| e["type"] == "consent_changed" && e["accepted"] == false)
        .collect()
}

fn sent(host: &TestHost) -> usize {
    host.0.received.lock().unwrap().len()
}

fn running(host: &TestHost) -> Task<TestHost> {
    let task = boot(host, LicenseState::VALID, false);
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    task
}

#[test]
fn a_withdrawal_storage_refused_survives_restarts_before_and_after_recovery() {
    let host = host();
    let task = running(&host);
    storage(&host, false);
    host.advance(5_000);
    let err = task.set_local(WITHDRAW).unwrap_err();
    assert!(err.message.contains("took effect"), "{}", err.message);
    drop(task);

    // Back before storage works: the withdrawal holds, and the scheduled start is refused.
    host.advance(1_000);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    assert_eq!(task.status().state, TaskState::STOPPED);
    let before = sent(&host);
    task.check_file(file(9));
    assert_eq!(sent(&host), before, "nothing leaves");
    let withdrawn = withdrawals(&task);
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert_eq!(
        (&withdrawn[0]["source"], &withdrawn[0]["time_ms"]),
        (&"local".into(), &5_000.into()),
        "with its original source and time"
    );
    assert!(log(&task).iter().any(|e| e["type"] == "journal_reconciled"));
    drop(task);

    // Again before recovery: still once.
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(withdrawals(&task).len(), 1);
    // Storage works: the records are written; a restart after that reads them.
    storage(&host, true);
    task.tick();
    drop(task);
    host.0.forget_events.store(true, Ordering::SeqCst);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    assert_eq!(task.status().state, TaskState::STOPPED);
    assert_eq!(withdrawals(&task).len(), 1);
    let seqs: Vec<u64> = log(&task)
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn a_partial_withdrawal_survives_a_restart_even_under_a_policy_that_locked_it_on() {
    let host = host();
    let task = boot(&host, LicenseState::VALID, false);
    task.push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}},
            "send_statistics": {"value": true, "locked": true}},
            "task": {"use_ksc_as_ksn_proxy": false}}}"#,
    )
    .unwrap();
    task.set_local(r#"{"data_handling": {"send_scanned_urls_data": true}}"#)
        .unwrap();
    task.start().unwrap();
    storage(&host, false);
    // The administrator withdraws statistics (a policy that only narrows: it applies).
    let err = task
        .push_policy(
            r#"{"settings": {"data_handling": {"send_statistics": {"value": false, "locked": true}},
                "task": {"use_ksc_as_ksn_proxy": false}}}"#,
        )
        .unwrap_err();
    assert!(err.message.contains("took effect"), "{}", err.message);
    // And locally, URLs.
    task.set_local(r#"{"data_handling": {"send_scanned_urls_data": false}}"#)
        .unwrap_err();
    drop(task);

    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.send_statistics"), false);
    assert_eq!(value(&task, "data_handling.send_scanned_urls_data"), false);
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    let why = view["details"]["data_handling.send_statistics"]["why"]
        .as_str()
        .unwrap();
    assert!(why.contains("stays withdrawn until"), "{why}");
    // Storage works: a start sends no statistics and no URLs.
    storage(&host, true);
    task.start().unwrap();
    task.check_url("https://a.example/").unwrap();
    host.advance(120_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 0);
    assert_eq!(host.received(Service::GLOBAL, DataCategory::URLS), 0);
    // The next policy decides the box again.
    task.push_policy(
        r#"{"settings": {"data_handling": {"send_statistics": true}, "task": {"use_ksc_as_ksn_proxy": false}}}"#,
    )
    .unwrap();
    assert_eq!(value(&task, "data_handling.send_statistics"), true);
}

#[test]
fn private_ksn_switched_on_survives_a_restart_before_the_host_reports_it_again() {
    let host = host();
    let task = running(&host);
    storage(&host, false);
    task.set_private_ksn(true).unwrap_err();
    drop(task);
    // A task created over the same storage, before the host says anything.
    let task = Task::new(host.clone()).unwrap();
    assert!(task.status().private_ksn);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    let lapsed = withdrawals(&task);
    assert_eq!(lapsed[0]["source"], "mode_change");
    assert!(log(&task)
        .iter()
        .any(|e| e["type"] == "task_error" && e["kind"] == "statement_not_accepted"));
}

#[test]
fn a_licence_violation_survives_a_restart_in_the_log() {
    let host = host();
    let task = running(&host);
    storage(&host, false);
    task.set_license(LicenseState::EXPIRED).unwrap_err();
    assert_eq!(task.status().state, TaskState::FAILED);
    drop(task);
    let task = boot(&host, LicenseState::EXPIRED, false);
    let entries = log(&task);
    let violation = entries
        .iter()
        .position(|e| e["type"] == "task_error" && e["kind"] == "license_violation")
        .expect("the licence violation is in the log");
    assert!(entries[violation..]
        .iter()
        .any(|e| e["type"] == "state_changed"
            && e["from"] == "failed"
            && e["reason"] == "host_restarted"));
    assert_eq!(task.status().state, TaskState::STOPPED);
}

#[test]
fn waiting_records_are_written_when_the_task_is_dropped_if_storage_takes_them() {
    let host = host();
    host.0.forget_events.store(true, Ordering::SeqCst);
    let task = running(&host);
    storage(&host, false);
    task.set_local(WITHDRAW).unwrap_err();
    storage(&host, true);
    drop(task);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    assert_eq!(task.status().state, TaskState::STOPPED);
}

#[test]
fn a_host_that_keeps_no_events_fails_closed_where_the_journal_cannot_show_nothing_was_lost() {
    // With neither working storage nor the host's events, a restart cannot know of the
    // withdrawal: the acceptance ends, recorded, and must be confirmed again.
    let host = host();
    host.0.forget_events.store(true, Ordering::SeqCst);
    let task = running(&host);
    storage(&host, false);
    task.set_local(WITHDRAW).unwrap_err();
    drop(task);
    // Storage still refuses: nothing could prove the next start either, so none is made.
    let err = Task::new(host.clone()).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert!(err.message.contains("keeps no events"), "{}", err.message);
    storage(&host, true);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    assert_eq!(task.status().state, TaskState::STOPPED);
    let ended = withdrawals(&task);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["source"], "unverified_restart");
    let err = task.start().unwrap_err();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(
        err.message.contains("did not end cleanly") && err.message.contains("confirm it again"),
        "{}",
        err.message
    );
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    let why = view["details"]["data_handling.ksn_statement_accepted"]["why"]
        .as_str()
        .unwrap();
    assert!(why.contains("confirm it again"), "{why}");
    // Confirmed again locally: it starts.
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
}

#[test]
fn a_host_that_keeps_no_events_trusts_a_journal_closed_cleanly_and_only_that() {
    let host = host();
    host.0.forget_events.store(true, Ordering::SeqCst);
    let task = running(&host);
    drop(task);
    // Closed cleanly: the acceptance stands, and the scheduled start happens.
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), true);
    assert_eq!(task.status().state, TaskState::RUNNING);
    // This session's first record is written at once: killed now (never dropped), the
    // clean close before it proves nothing of this session.
    std::mem::forget(task);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
    assert_eq!(withdrawals(&task)[0]["source"], "unverified_restart");
    drop(task);
    // A session that opened over a clean close but whose storage refuses to write that
    // first record is not created: nothing could prove it next time.
    let task = boot(&host, LicenseState::VALID, false);
    task.set_local(ACCEPT).unwrap();
    drop(task);
    storage(&host, false);
    let err = Task::new(host.clone()).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    storage(&host, true);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), true);
}

#[test]
fn a_failing_events_since_is_never_taken_as_nothing_waiting() {
    // A host whose events_since fails (a C++ callback that threw, say) cannot say what
    // waited: as one that keeps none.
    let host = host();
    let task = running(&host);
    storage(&host, false);
    task.set_local(WITHDRAW).unwrap_err();
    std::mem::forget(task);
    storage(&host, true);
    host.0.events.lock().unwrap().clear();
    host.0.forget_events.store(true, Ordering::SeqCst);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), false);
}

#[test]
fn a_detection_reaches_the_host_and_the_log_whatever_storage_does() {
    let host = host();
    let task = running(&host);
    storage(&host, false);
    let answer = task.check_file(file(9));
    assert_eq!(answer.verdict, Verdict::UNTRUSTED);
    assert_eq!(
        host.events_of("object_untrusted").len(),
        1,
        "the host hears at once"
    );
    storage(&host, true);
    task.tick();
    assert!(log(&task).iter().any(|e| e["type"] == "object_untrusted"));

    // Restarted before storage worked: the detection is in the log all the same.
    storage(&host, false);
    task.purge_cache();
    task.check_file(file(9));
    drop(task);
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(
        log(&task)
            .iter()
            .filter(|e| e["type"] == "object_untrusted")
            .count(),
        2
    );
}

#[test]
fn past_the_bound_the_log_says_how_many_detections_it_did_not_keep() {
    let host = host();
    let task = running(&host);
    storage(&host, false);
    let extra = 5;
    for _ in 0..super::task::FACTS_WAITING + extra {
        task.purge_cache();
        task.check_file(file(9));
    }
    assert_eq!(
        host.events_of("object_untrusted").len(),
        super::task::FACTS_WAITING + extra
    );
    storage(&host, true);
    task.tick();
    let entries = log(&task);
    let not_recorded = entries
        .iter()
        .find(|e| e["type"] == "entries_not_recorded")
        .expect("the log says how many");
    assert_eq!(not_recorded["entries"], extra);
    drop(task);
    // The journal with its gap reads back.
    let task = boot(&host, LicenseState::VALID, false);
    assert_eq!(value(&task, "data_handling.ksn_statement_accepted"), true);
}

/// Found by the property test: each reconciliation numbers its entries after every entry
/// the host holds (earlier reconciliations' own included), so that restart after restart
/// before storage works keeps a narrowed value, and no number is used twice.
#[test]
fn a_narrowed_value_survives_any_number_of_restarts_before_storage_works() {
    let host = host();
    let task = boot(&host, LicenseState::VALID, false);
    task.push_policy("{\"settings\": {}}").unwrap();
    storage(&host, false);
    let narrowing = r#"{"settings": {"task": {"use_ksn_if_proxy_unavailable": false}}}"#;
    match task.push_policy(narrowing) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind, ErrorKind::STORAGE_ERROR, "{e}"),
    }
    assert_eq!(value(&task, "task.use_ksn_if_proxy_unavailable"), false);
    drop(task);
    for restart in 1..=5 {
        let task = boot(&host, LicenseState::VALID, false);
        assert_eq!(
            value(&task, "task.use_ksn_if_proxy_unavailable"),
            false,
            "after restart {restart}"
        );
    }
    let events = host.0.events.lock().unwrap().clone();
    let mut seqs: Vec<u64> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let count = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), count, "a number used twice: {events:#?}");
}
