//! Fail closed: nothing counted under one consent leaves under another, even when the
//! host takes its time; a change that narrows what may leave takes effect even when
//! storage refuses it; a withdrawal waits only for the sends it affects; and what a host
//! says that the plugin does not understand is taken safely. The interleavings are made by
//! the test, with callbacks that stop until let go: no sleeps.

use std::{sync::mpsc, thread, time::Duration};

use plugin_api::{
    DataCategory, ErrorKind, FileQuery, LicenseState, Service, TaskState, TransportFailure, Verdict,
};

use plugin_api::testing::TestHost;

use super::Task;

const ACCEPT_GLOBAL: &str = r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"use_ksc_as_ksn_proxy": false}}"#;
const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;
const WITHDRAW: &str = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;

/// Longer than any of these steps takes; only reached if the code under test blocks.
const DEADLINE: Duration = Duration::from_secs(20);

fn file(n: u8) -> FileQuery {
    FileQuery {
        md5: [n; 16],
        size_bytes: 1000,
    }
}

fn host() -> TestHost {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([9; 16], Verdict::UNTRUSTED);
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert([8; 16], Verdict::UNTRUSTED);
    host
}

fn running(host: &TestHost, accept: &str) -> Task<TestHost> {
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_local(accept).unwrap();
    task.start().unwrap();
    task
}

fn statistics_and_kmp(host: &TestHost) -> u32 {
    host.received(Service::GLOBAL, DataCategory::STATISTICS)
        + host.received(Service::PROXY, DataCategory::STATISTICS)
        + host.received(Service::GLOBAL, DataCategory::KMP)
        + host.received(Service::PROXY, DataCategory::KMP)
}

/// A detection whose host action (`backup_and_delete`) is held while `narrow` runs and
/// `widen` restores the consent; once let go, the items it counted must not be sent.
fn held_detection(
    accept: &str,
    narrow: impl FnOnce(&Task<TestHost>),
    widen: impl FnOnce(&Task<TestHost>),
) {
    let host = host();
    let task = running(&host, accept);
    task.set_local(r#"{"data_handling": {"kmp_statement_accepted": true}}"#)
        .unwrap();
    task.stop().unwrap();
    task.start().unwrap();
    let (reached, release) = host.hold("backup_and_delete");
    thread::scope(|s| {
        // A file on the local deny list: found untrusted without a request, then deleted.
        let lookup = s.spawn(|| task.check_file(file(8)));
        reached
            .recv_timeout(DEADLINE)
            .expect("the lookup reached the host's action");
        narrow(&task);
        widen(&task);
        release.send(()).unwrap();
        assert_eq!(lookup.join().unwrap().verdict, Verdict::UNTRUSTED);
    });
    assert_eq!(
        task.counters().queued_statistics + task.counters().queued_kmp,
        0,
        "what was counted under the old consent is not queued under the new one"
    );
    host.advance(60_000);
    task.tick();
    assert_eq!(statistics_and_kmp(&host), 0, "{:?}", task.ledger());
}

#[test]
fn nothing_counted_before_a_full_withdrawal_is_sent_after_reacceptance() {
    held_detection(
        ACCEPT_GLOBAL,
        |task| task.set_local(WITHDRAW).unwrap(),
        |task| {
            task.set_local(
                r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}}"#,
            )
            .unwrap();
            task.start().unwrap();
        },
    );
}

#[test]
fn nothing_counted_before_statistics_were_withdrawn_is_sent_when_they_are_allowed_again() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    let (reached, release) = host.hold("backup_and_delete");
    thread::scope(|s| {
        let lookup = s.spawn(|| task.check_file(file(8)));
        reached.recv_timeout(DEADLINE).unwrap();
        task.set_local(r#"{"data_handling": {"send_statistics": false}}"#)
            .unwrap();
        task.set_local(r#"{"data_handling": {"send_statistics": true}}"#)
            .unwrap();
        release.send(()).unwrap();
        lookup.join().unwrap();
    });
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 0);
}

#[test]
fn nothing_counted_in_private_ksn_mode_goes_to_the_proxy_after_it_is_switched_off() {
    let host = host();
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_private_ksn(true).unwrap();
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    let (reached, release) = host.hold("backup_and_delete");
    thread::scope(|s| {
        let lookup = s.spawn(|| task.check_file(file(8)));
        reached.recv_timeout(DEADLINE).unwrap();
        task.set_private_ksn(false).unwrap();
        task.set_local(ACCEPT).unwrap();
        task.start().unwrap();
        release.send(()).unwrap();
        lookup.join().unwrap();
    });
    host.advance(60_000);
    task.tick();
    assert_eq!(
        host.received_by(Service::PROXY) + host.received_by(Service::GLOBAL),
        0,
        "{:?}",
        task.ledger()
    );
}

#[test]
fn a_full_withdrawal_waits_for_the_file_request_in_flight_and_nothing_it_counted_leaks() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    // The request is held after it was delivered, so it is answered under the old consent.
    let (reached, release) = host.hold("ksn_file");
    let (done_tx, done) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            task.check_file(file(1));
        });
        reached.recv_timeout(DEADLINE).unwrap();
        // The withdrawal waits for the file request in flight, so it runs beside it.
        let (task, done_tx) = (&task, done_tx.clone());
        s.spawn(move || {
            task.set_local(WITHDRAW).unwrap();
            done_tx.send(()).unwrap();
        });
        assert!(
            done.recv_timeout(Duration::from_millis(200)).is_err(),
            "a full withdrawal waits for the file request in flight"
        );
        release.send(()).unwrap();
        done.recv_timeout(DEADLINE).unwrap();
    });
    task.set_local(ACCEPT_GLOBAL).unwrap();
    task.start().unwrap();
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 0);
}

#[test]
fn a_files_only_withdrawal_does_not_wait_for_a_url_request_in_flight() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    let (reached, release) = host.hold("ksn_url");
    thread::scope(|s| {
        let lookup = s.spawn(|| task.check_url("https://slow.example/"));
        reached.recv_timeout(DEADLINE).unwrap();
        let (done_tx, done) = mpsc::channel();
        let task = &task;
        s.spawn(move || {
            task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#)
                .unwrap();
            done_tx.send(()).unwrap();
        });
        done.recv_timeout(DEADLINE)
            .expect("the withdrawal of files returned while the URL request was held");
        release.send(()).unwrap();
        lookup.join().unwrap().unwrap();
    });
}

#[test]
fn narrowing_changes_take_effect_while_storage_refuses_them_and_are_recorded_after() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    task.check_file(file(1));
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let err = task
        .set_local(r#"{"data_handling": {"send_scanned_urls_data": false}}"#)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert!(err.message.contains("took effect"), "{}", err.message);
    let sent = host.0.received.lock().unwrap().len();
    task.check_url("https://a.example/").unwrap();
    assert_eq!(
        host.0.received.lock().unwrap().len(),
        sent,
        "URLs withdrawn"
    );

    // Widening is refused while the narrowing waits.
    let err = task
        .set_local(r#"{"data_handling": {"send_scanned_urls_data": true}}"#)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert!(err.message.contains("not applied"), "{}", err.message);

    let err = task.set_local(WITHDRAW).unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert_eq!(task.status().state, TaskState::STOPPED);
    task.check_file(file(2));
    host.advance(120_000);
    task.tick();
    assert_eq!(
        host.0.received.lock().unwrap().len(),
        sent,
        "nothing leaves"
    );
    assert_eq!(
        task.start().unwrap_err().kind,
        ErrorKind::STATEMENT_NOT_ACCEPTED
    );

    // Storage works again: the waiting records go first, and say so: the two withdrawals
    // and the refused start, which waits like any record of what happened.
    host.0
        .refuse_writes
        .store(false, std::sync::atomic::Ordering::SeqCst);
    task.tick();
    assert_eq!(host.events_of("storage_recovered")[0]["records"], 3);
    let log = task.task_log_json().unwrap();
    assert_eq!(log.matches("\"operation_refused\"").count(), 1, "{log}");
    drop(task);
    let restored = Task::new(host.clone()).unwrap();
    let settings: serde_json::Value = serde_json::from_str(&restored.settings_json()).unwrap();
    assert_eq!(
        settings["details"]["data_handling.ksn_statement_accepted"]["value"], false,
        "the withdrawal was recorded once storage worked again"
    );
}

#[test]
fn private_ksn_an_expired_licence_and_stop_take_effect_while_storage_refuses_them() {
    for narrow in ["private_ksn", "licence", "stop"] {
        let host = host();
        let task = running(&host, ACCEPT);
        host.0
            .refuse_writes
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let result = match narrow {
            "private_ksn" => task.set_private_ksn(true),
            "licence" => task.set_license(LicenseState::EXPIRED),
            _ => task.stop(),
        };
        assert_eq!(
            result.unwrap_err().kind,
            ErrorKind::STORAGE_ERROR,
            "{narrow}"
        );
        assert_ne!(task.status().state, TaskState::RUNNING, "{narrow}");
        let before = host.0.received.lock().unwrap().len();
        task.check_file(file(1));
        task.check_url("https://b.example/").unwrap();
        assert_eq!(
            host.0.received.lock().unwrap().len(),
            before,
            "{narrow}: nothing leaves"
        );
        assert_eq!(
            task.start().unwrap_err().kind,
            if narrow == "stop" {
                ErrorKind::STORAGE_ERROR
            } else if narrow == "licence" {
                ErrorKind::LICENSE_VIOLATION
            } else {
                ErrorKind::STATEMENT_NOT_ACCEPTED
            },
            "{narrow}: a start widens, and is refused"
        );
    }
}

#[test]
fn an_unknown_verdict_is_unknown_and_an_unknown_failure_is_undelivered() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    *host.0.odd_verdict.lock().unwrap() = Some(Verdict(77));
    let answer = task.check_file(file(1));
    assert_eq!(answer.verdict, Verdict::UNKNOWN);
    *host.0.odd_verdict.lock().unwrap() = None;

    task.check_file(file(2));
    *host.0.odd_failure.lock().unwrap() = Some(TransportFailure(42));
    host.advance(60_000);
    task.tick();
    assert_eq!(
        task.counters().queued_statistics,
        2,
        "not taken as delivered: the batch stays queued"
    );
    assert!(task
        .ledger()
        .iter()
        .all(|i| i.category != DataCategory::STATISTICS));
    *host.0.odd_failure.lock().unwrap() = None;
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 2);
}

#[test]
fn a_clock_that_goes_back_does_not_stop_the_batches() {
    let host = host();
    host.advance(10 * 86_400_000);
    let task = running(&host, ACCEPT_GLOBAL);
    task.check_file(file(1));
    host.0
        .now
        .fetch_sub(86_400_000, std::sync::atomic::Ordering::SeqCst);
    task.tick();
    host.advance(60_000);
    task.tick();
    assert_eq!(
        host.received(Service::GLOBAL, DataCategory::STATISTICS),
        1,
        "a minute after the jump, not a day and a minute"
    );
}

#[test]
fn a_policy_that_narrows_and_widens_takes_its_narrowing_part_at_once_and_the_rest_once_recorded() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    task.set_local(r#"{"data_handling": {"send_statistics": false}}"#)
        .unwrap();
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Withdraws file data, re-enables statistics.
    let mixed = r#"{"settings": {"data_handling": {"send_scanned_files_data": false, "send_statistics": true},
        "task": {"use_ksc_as_ksn_proxy": false}}}"#;
    let err = task.push_policy(mixed).unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert!(
        err.message.contains("data about scanned files withdrawn")
            || err.message.contains("files withdrawn"),
        "{}",
        err.message
    );
    assert!(err.message.contains("waits"), "{}", err.message);
    let sent = host.0.received.lock().unwrap().len();
    task.check_file(file(3));
    assert_eq!(
        host.0.received.lock().unwrap().len(),
        sent,
        "no checksum leaves"
    );
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    let details = &view["details"];
    assert_eq!(
        details["data_handling.send_scanned_files_data"]["value"],
        false
    );
    assert_eq!(
        details["data_handling.send_statistics"]["value"], false,
        "the rest waits"
    );
    let why = details["data_handling.send_statistics"]["why"]
        .as_str()
        .unwrap();
    assert!(why.contains("waits: the rest of the policy"), "{why}");

    // Storage works: the rest applies, in order, recorded.
    host.0
        .refuse_writes
        .store(false, std::sync::atomic::Ordering::SeqCst);
    task.tick();
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    assert_eq!(
        view["details"]["data_handling.send_statistics"]["value"],
        true
    );
    assert_eq!(
        view["details"]["data_handling.send_scanned_files_data"]["value"],
        false
    );
    let log = task.task_log_json().unwrap();
    let waiting = log
        .find("\"change_waiting\"")
        .expect("the log says what waited");
    let applied = log.rfind("\"policy_applied\"").unwrap();
    assert!(
        waiting < applied,
        "the rest is recorded after the narrowing part"
    );
}

#[test]
fn a_later_narrowing_drops_the_waiting_rest_of_a_change() {
    let host = host();
    let task = running(&host, ACCEPT_GLOBAL);
    task.set_local(r#"{"data_handling": {"send_statistics": false}}"#)
        .unwrap();
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    task.push_policy(
        r#"{"settings": {"data_handling": {"send_scanned_files_data": false, "send_statistics": true},
            "task": {"use_ksc_as_ksn_proxy": false}}}"#,
    )
    .unwrap_err();
    // The user withdraws URLs before storage works: the policy's rest must not come after.
    task.set_local(r#"{"data_handling": {"send_scanned_urls_data": false}}"#)
        .unwrap_err();
    host.0
        .refuse_writes
        .store(false, std::sync::atomic::Ordering::SeqCst);
    task.tick();
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    assert_eq!(
        view["details"]["data_handling.send_statistics"]["value"],
        false
    );
    assert!(task.task_log_json().unwrap().contains("\"change_dropped\""));
}

#[test]
fn private_ksn_off_under_a_storage_fault_applies_the_policy_s_values_once_recorded() {
    let host = host();
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_private_ksn(true).unwrap();
    task.push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"private_ksn": 1}},
            "send_statistics": false}}}"#,
    )
    .unwrap();
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    task.set_private_ksn(false).unwrap_err();
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    let statistics = &view["details"]["data_handling.send_statistics"];
    assert_eq!(
        statistics["value"], true,
        "the policy's value waits for its record"
    );
    assert!(statistics["why"].as_str().unwrap().contains("waits"));
    host.0
        .refuse_writes
        .store(false, std::sync::atomic::Ordering::SeqCst);
    task.tick();
    let view: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    assert_eq!(
        view["details"]["data_handling.send_statistics"]["value"],
        false
    );
}
