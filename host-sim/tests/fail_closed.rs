//! Fail closed, through the loaded library: a host whose callbacks stop until the test
//! lets them go (no sleeps), that answers what the plugin does not know, whose clock goes
//! back, and whose storage refuses writes or holds a damaged journal.

mod common;

use std::{
    sync::{atomic::Ordering, mpsc},
    time::Duration,
};

use plugin_api::{
    abi_stable::std_types::RResult, testing::TestHost, DataCategory, ErrorKind, FileQuery,
    KsnTaskBox, LicenseState, Service, TaskState, TransportFailure, Verdict,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// The contract's in-memory host, over the loaded plugin.
fn new_task(host: &TestHost) -> KsnTaskBox {
    common::plugin().new_task(host.services()).unwrap()
}

fn received(host: &TestHost, category: DataCategory) -> u32 {
    [Service::GLOBAL, Service::PROXY, Service::PRIVATE]
        .into_iter()
        .map(|service| host.received(service, category))
        .sum()
}

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}, "task": {"use_ksc_as_ksn_proxy": false}}"#;

fn running(host: &TestHost) -> KsnTaskBox {
    let task = new_task(host);
    task.set_license(LicenseState::VALID).into_result().unwrap();
    task.set_local(ACCEPT.into()).into_result().unwrap();
    task.start().into_result().unwrap();
    task
}

fn ok(result: RResult<(), plugin_api::TaskError>) {
    result.into_result().unwrap()
}

#[test]
fn a_detection_held_across_a_withdrawal_sends_nothing_under_the_new_consent() {
    let host = TestHost::default();
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert([8; 16], Verdict::UNTRUSTED);
    let task = running(&host);
    let (reached, release) = host.hold("backup_and_delete");
    std::thread::scope(|s| {
        let lookup = s.spawn(|| {
            task.check_file(FileQuery {
                md5: [8; 16],
                size_bytes: 10,
            })
        });
        reached
            .recv_timeout(DEADLINE)
            .expect("held in the host's action");
        ok(task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#.into()));
        ok(task.set_local(ACCEPT.into()));
        ok(task.start());
        release.send(()).unwrap();
        assert_eq!(
            lookup.join().unwrap().into_result().unwrap().verdict,
            Verdict::UNTRUSTED
        );
    });
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    assert_eq!(
        received(&host, DataCategory::STATISTICS) + received(&host, DataCategory::KMP),
        0
    );
}

#[test]
fn a_files_only_withdrawal_does_not_wait_for_a_url_request_in_flight() {
    let host = TestHost::default();
    let task = running(&host);
    let (reached, release) = host.hold("ksn_url");
    std::thread::scope(|s| {
        let lookup = s.spawn(|| task.check_url("https://slow.example/".into()));
        reached.recv_timeout(DEADLINE).unwrap();
        let (done_tx, done) = mpsc::channel();
        let task = &task;
        s.spawn(move || {
            ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#.into()));
            done_tx.send(()).unwrap();
        });
        done.recv_timeout(DEADLINE)
            .expect("the withdrawal returned while the URL request was held");
        release.send(()).unwrap();
        lookup.join().unwrap().into_result().unwrap();
    });
}

#[test]
fn a_withdrawal_takes_effect_while_storage_refuses_it_and_is_recorded_after() {
    let host = TestHost::default();
    let task = running(&host);
    host.0.refuse_writes.store(true, Ordering::SeqCst);
    let err = task
        .set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#.into())
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert_eq!(task.status().state, TaskState::STOPPED);
    let before = host.0.received.lock().unwrap().len();
    task.check_file(FileQuery {
        md5: [1; 16],
        size_bytes: 10,
    })
    .into_result()
    .unwrap();
    assert_eq!(host.0.received.lock().unwrap().len(), before);
    host.0.refuse_writes.store(false, Ordering::SeqCst);
    ok(task.tick());
    assert!(host
        .0
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains("storage_recovered")));
    drop(task);
    let restored = new_task(&host);
    assert!(restored
        .settings_json()
        .into_result()
        .unwrap()
        .contains(r#""data_handling.ksn_statement_accepted":{"value":false"#));
}

#[test]
fn a_damaged_journal_is_reported_naming_the_record_never_a_panic() {
    let host = TestHost::default();
    drop(running(&host));
    let good = host.records("journal");
    for (index, damage) in [
        (
            good.len() - 1,
            b"00000000 {\"next_seq\":0,\"entries\":5}".to_vec(),
        ),
        (0, b"{\"first_seq\":0,\"entries\":5}".to_vec()),
        (good.len() - 1, good[good.len() - 1][..20].to_vec()),
    ] {
        let mut journal = good.clone();
        journal[index] = damage;
        let damaged = TestHost::default();
        damaged.set_records("journal", journal);
        match common::plugin().new_task(damaged.services()) {
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::STORAGE_ERROR, "{e}");
                assert!(
                    e.message.contains(&format!("journal record {index}")),
                    "{e}"
                );
            }
            Ok(task) => {
                // Damage before the last snapshot: the state is whole, the log says so.
                let err = task.task_log_json().into_result().unwrap_err();
                assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
                assert!(
                    err.message.contains(&format!("journal record {index}")),
                    "{err}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_verdict_is_unknown_and_an_unknown_failure_is_not_delivered() {
    let host = TestHost::default();
    let task = running(&host);
    *host.0.odd_verdict.lock().unwrap() = Some(Verdict(99));
    let answer = task
        .check_file(FileQuery {
            md5: [3; 16],
            size_bytes: 10,
        })
        .into_result()
        .unwrap();
    assert_eq!(answer.verdict, Verdict::UNKNOWN);
    *host.0.odd_failure.lock().unwrap() = Some(TransportFailure(42));
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    let counters: serde_json::Value =
        serde_json::from_str(&task.counters_json().into_result().unwrap()).unwrap();
    assert_eq!(counters["queued_statistics"], 1, "not taken as delivered");
}

#[test]
fn a_clock_that_goes_back_does_not_stop_the_batches() {
    let host = TestHost::default();
    host.0.now.store(10 * 86_400_000, Ordering::SeqCst);
    let task = running(&host);
    task.check_file(FileQuery {
        md5: [4; 16],
        size_bytes: 10,
    })
    .into_result()
    .unwrap();
    host.0.now.fetch_sub(86_400_000, Ordering::SeqCst);
    ok(task.tick());
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    assert_eq!(received(&host, DataCategory::STATISTICS), 1);
}
