//! The driver with an in-memory host: persistence, crash safety, storage failure, and the
//! lookup path's rules (merge order, cache, checksum limit, routes, timeouts, egress).

use plugin_api::{
    AnswerSource, DataCategory, ErrorKind, FileQuery, LicenseState, ObjectAction, Service,
    TaskState, Verdict,
};

use plugin_api::testing::TestHost;

use super::journal::JOURNAL_KEY;

use super::Task;

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

fn file(n: u8) -> FileQuery {
    FileQuery {
        md5: [n; 16],
        size_bytes: 1000,
    }
}

fn task(host: &TestHost) -> Task<TestHost> {
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task
}

/// A running task routed straight to Global KSN.
fn running(host: &TestHost) -> Task<TestHost> {
    let task = task(host);
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"use_ksc_as_ksn_proxy": false}}"#)
        .unwrap();
    task.start().unwrap();
    task
}

fn settings(task: &Task<TestHost>) -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_str(&task.settings_json()).unwrap();
    json.as_object_mut().unwrap().remove("details");
    json
}

#[test]
fn settings_consent_and_log_survive_a_restart() {
    let host = TestHost::default();
    let first = running(&host);
    first
        .set_local(r#"{"task": {"checksum_limit_mb": 99}}"#)
        .unwrap();
    let log_before = first.task_log_json().unwrap();
    let settings_before = settings(&first);
    drop(first);

    let second = Task::new(host.clone()).unwrap();
    assert_eq!(settings(&second), settings_before);
    assert_eq!(second.status().state, TaskState::STOPPED);
    // The log is kept, and says why the running task is now stopped.
    let log_after = second.task_log_json().unwrap();
    assert!(log_after.starts_with(&log_before[..log_before.len() - 1]));
    let log: Vec<serde_json::Value> = serde_json::from_str(&log_after).unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (&last["type"], &last["from"], &last["to"], &last["reason"]),
        (
            &"state_changed".into(),
            &"running".into(),
            &"stopped".into(),
            &"host_restarted".into()
        )
    );
    drop(second);
    let third = Task::new(host.clone()).unwrap();
    let again: Vec<serde_json::Value> =
        serde_json::from_str(&third.task_log_json().unwrap()).unwrap();
    assert_eq!(
        again.len(),
        log.len(),
        "a stopped task's restart logs nothing more"
    );
    third.set_license(LicenseState::VALID).unwrap();
    third.start().unwrap();
    let log: Vec<serde_json::Value> =
        serde_json::from_str(&third.task_log_json().unwrap()).unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "numbering continues"
    );
}

#[test]
fn a_crash_loses_at_most_the_change_being_written() {
    let host = TestHost::default();
    let task = task(&host);
    let changes = [
        r#"{"task": {"checksum_limit_mb": 3}}"#,
        ACCEPT,
        r#"{"task": {"action_on_untrusted": "log", "lookup_timeout_ms": 900}}"#,
        r#"{"data_handling": {"send_statistics": false}}"#,
        r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
    ];
    let mut after = vec![(0, settings(&task))];
    for change in changes {
        task.set_local(change).unwrap();
        after.push((host.records(JOURNAL_KEY).len(), settings(&task)));
    }
    let records = host.records(JOURNAL_KEY);
    for cut in 0..=records.len() {
        let crashed = TestHost::default();
        crashed.set_records(JOURNAL_KEY, records[..cut].to_vec());
        let restored = Task::new(crashed).unwrap();
        let expected = &after.iter().rev().find(|(len, _)| *len <= cut).unwrap().1;
        assert_eq!(
            &settings(&restored),
            expected,
            "journal cut after {cut} records"
        );
    }
}

#[test]
fn a_change_the_storage_refuses_is_not_applied() {
    let host = TestHost::default();
    let task = task(&host);
    let before = settings(&task);
    let events = host.0.events.lock().unwrap().len();
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = task.set_local(ACCEPT).unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert!(err.message.contains("disk full"));
    assert_eq!(settings(&task), before);
    assert_eq!(host.0.events.lock().unwrap().len(), events);
    assert_eq!(
        task.start().unwrap_err().kind,
        ErrorKind::STATEMENT_NOT_ACCEPTED
    );
}

#[test]
fn a_damaged_journal_is_reported_not_guessed() {
    let host = TestHost::default();
    let mut damaged = host.records(JOURNAL_KEY);
    damaged.push(b"{not json".to_vec());
    host.set_records(JOURNAL_KEY, damaged);
    let err = Task::new(host).err().unwrap();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
}

#[test]
fn the_scheduled_start_happens_only_when_it_may() {
    let host = TestHost::default();
    let task = task(&host);
    task.set_local(r#"{"task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    // No statement: not started, and the call says so, with the reason.
    let refused = task.application_started().unwrap_err();
    assert_eq!(refused.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    assert!(
        refused
            .message
            .starts_with("the scheduled start was refused: cannot start"),
        "{}",
        refused.message
    );
    assert_eq!(task.status().state, TaskState::STOPPED);
    assert_eq!(host.events_of("operation_refused").len(), 1);
    task.set_local(ACCEPT).unwrap();
    task.application_started().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
}

#[test]
fn merge_order_is_local_list_then_private_database_then_ksn() {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::TRUSTED);
    host.0
        .private_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::UNTRUSTED);
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert([2; 16], Verdict::TRUSTED);
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([2; 16], Verdict::UNTRUSTED);
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([3; 16], Verdict::UNTRUSTED);

    let task = task(&host);
    task.set_private_ksn(true).unwrap();
    task.set_local(ACCEPT).unwrap();
    task.set_local(r#"{"task": {"action_on_untrusted": "log"}}"#)
        .unwrap();
    task.start().unwrap();
    let a = task.check_file(file(1));
    assert_eq!(
        (a.verdict, a.source, a.action),
        (
            Verdict::UNTRUSTED,
            AnswerSource::PRIVATE_DATABASE,
            ObjectAction::LOGGED
        )
    );
    let a = task.check_file(file(2));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::TRUSTED, AnswerSource::LOCAL_LIST)
    );
    let a = task.check_file(file(3));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::UNTRUSTED, AnswerSource::KSN)
    );
    assert_eq!(
        host.received(Service::PRIVATE, DataCategory::FILES),
        2,
        "the local list answered one"
    );
    assert!(
        host.0.deleted.lock().unwrap().is_empty(),
        "log only records"
    );

    // Outside Private KSN mode there is no private database.
    let host2 = TestHost::default();
    host2
        .0
        .ksn_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::TRUSTED);
    host2
        .0
        .private_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::UNTRUSTED);
    let task = running(&host2);
    assert_eq!(task.check_file(file(1)).verdict, Verdict::TRUSTED);
}

#[test]
fn a_cache_hit_sends_nothing_and_unavailable_is_not_cached() {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::UNTRUSTED);
    let task = running(&host);
    let first = task.check_file(file(1));
    let second = task.check_file(file(1));
    assert!(!first.cached && second.cached);
    assert_eq!(
        second.action,
        ObjectAction::DELETED,
        "each hit of an untrusted file gets the action"
    );
    assert_eq!(host.received(Service::GLOBAL, DataCategory::FILES), 1);
    assert_eq!(host.0.deleted.lock().unwrap().len(), 2);

    host.set_link(Service::GLOBAL, false, 1);
    assert_eq!(task.check_file(file(2)).verdict, Verdict::UNAVAILABLE);
    host.set_link(Service::GLOBAL, true, 1);
    let again = task.check_file(file(2));
    assert_eq!((again.verdict, again.cached), (Verdict::UNKNOWN, false));
    assert_eq!(host.received(Service::GLOBAL, DataCategory::FILES), 2);

    // Unknown verdicts expire after five minutes, trusted ones after an hour, by the time of
    // the host's last tick.
    host.advance(5 * 60_000);
    task.tick();
    assert!(!task.check_file(file(2)).cached);
    assert!(task.check_file(file(1)).cached);
    task.purge_cache();
    assert!(!task.check_file(file(1)).cached);
}

#[test]
fn the_checksum_limit_means_no_request() {
    let host = TestHost::default();
    let task = running(&host);
    let big = FileQuery {
        md5: [1; 16],
        size_bytes: 2 * 1024 * 1024 + 1,
    };
    let a = task.check_file(big);
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::UNKNOWN, AnswerSource::NONE)
    );
    assert_eq!(host.received_by(Service::GLOBAL), 0);
    task.set_local(r#"{"task": {"checksum_limit_mb": 3}}"#)
        .unwrap();
    task.check_file(big);
    assert_eq!(host.received_by(Service::GLOBAL), 1);
    let bigger = FileQuery {
        md5: [2; 16],
        size_bytes: 1 << 30,
    };
    task.set_local(r#"{"task": {"checksum_limit_enabled": false}}"#)
        .unwrap();
    task.check_file(bigger);
    assert_eq!(host.received_by(Service::GLOBAL), 2);
}

#[test]
fn the_proxy_falls_back_to_global_only_when_allowed() {
    let host = TestHost::default();
    let task = task(&host);
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    assert_eq!(task.status().network, Service::PROXY);
    task.check_file(file(1));
    assert_eq!(host.received_by(Service::PROXY), 1);

    host.set_link(Service::PROXY, false, 1);
    assert_eq!(task.check_file(file(2)).verdict, Verdict::UNKNOWN);
    assert_eq!(host.received_by(Service::GLOBAL), 1, "fell back");
    assert_eq!(task.status().network, Service::GLOBAL);
    assert_eq!(host.events_of("ksn_unavailable")[0]["service"], "proxy");

    // Back up: found by the first request once a minute has passed.
    host.set_link(Service::PROXY, true, 1);
    assert_eq!(task.check_file(file(3)).verdict, Verdict::UNKNOWN);
    assert_eq!(host.received_by(Service::GLOBAL), 2, "still avoided");
    host.advance(60_000);
    assert_eq!(task.status().network, Service::PROXY);
    task.check_file(file(4));
    assert_eq!(host.received_by(Service::PROXY), 2);
    assert_eq!(host.events_of("ksn_restored")[0]["service"], "proxy");

    // Without fallback there is nowhere else to ask: every request tries the proxy.
    task.set_local(r#"{"task": {"use_ksn_if_proxy_unavailable": false}}"#)
        .unwrap();
    host.set_link(Service::PROXY, false, 1);
    assert_eq!(task.check_file(file(5)).verdict, Verdict::UNAVAILABLE);
    assert_eq!(task.status().network, Service::PROXY);
    host.set_link(Service::PROXY, true, 1);
    assert_eq!(task.check_file(file(5)).verdict, Verdict::UNKNOWN);
    assert_eq!(host.received_by(Service::GLOBAL), 2, "no fallback");
}

#[test]
fn a_proxy_that_does_not_answer_in_time_is_down_like_one_that_refuses() {
    let host = TestHost::default();
    let task = task(&host);
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    host.set_link(Service::PROXY, true, 20_000);
    assert_eq!(
        task.check_file(file(1)).verdict,
        Verdict::UNAVAILABLE,
        "the budget is spent"
    );
    assert_eq!(task.status().network, Service::GLOBAL);
    assert_eq!(task.check_file(file(2)).verdict, Verdict::UNKNOWN);
    assert_eq!(
        (
            host.received_by(Service::PROXY),
            host.received_by(Service::GLOBAL)
        ),
        (1, 1),
        "the next request went where status said"
    );
    // A policy push tries the proxy again at once; still slow, so it is down again.
    task.push_policy(r#"{"settings": {}}"#).unwrap();
    assert_eq!(task.status().network, Service::PROXY);
    host.set_link(Service::PROXY, true, 1);
    task.check_file(file(3));
    assert_eq!(host.received_by(Service::PROXY), 2);
    assert_eq!(task.status().network, Service::PROXY);
}

#[test]
fn private_ksn_never_falls_back_to_global_or_the_proxy() {
    let host = TestHost::default();
    let task = task(&host);
    task.set_private_ksn(true).unwrap();
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    host.set_link(Service::PRIVATE, false, 1);
    for n in 0..5 {
        assert_eq!(task.check_file(file(n)).verdict, Verdict::UNAVAILABLE);
    }
    host.advance(120_000);
    task.tick();
    assert_eq!(
        host.received_by(Service::GLOBAL) + host.received_by(Service::PROXY),
        0
    );
}

#[test]
fn a_slow_service_answers_unavailable_and_is_reported_lost_then_restored() {
    let host = TestHost::default();
    let task = running(&host);
    host.set_link(Service::GLOBAL, true, 20_000);
    let a = task.check_file(file(1));
    assert_eq!(a.verdict, Verdict::UNAVAILABLE);
    assert_eq!(
        host.received(Service::GLOBAL, DataCategory::FILES),
        1,
        "delivered, answered late"
    );
    let lost = host.events_of("ksn_unavailable");
    assert_eq!(
        (lost[0]["service"].as_str(), lost[0]["reason"].as_str()),
        (Some("global"), Some("timed_out"))
    );
    task.set_local(r#"{"task": {"lookup_timeout_ms": 30000}}"#)
        .unwrap();
    assert_eq!(
        task.check_file(file(1)).verdict,
        Verdict::UNKNOWN,
        "unavailable was not cached"
    );
    assert_eq!(host.events_of("ksn_restored").len(), 1);
    let ledger = task.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        ledger[0].outcome,
        plugin_api::documents::LedgerOutcome::TimedOut
    );
}

#[test]
fn statistics_go_in_batches_while_allowed_and_are_discarded_on_withdrawal() {
    let host = TestHost::default();
    let task = running(&host);
    for n in 0..3 {
        task.check_file(file(n));
    }
    task.tick();
    assert_eq!(
        host.received(Service::GLOBAL, DataCategory::STATISTICS),
        0,
        "not before a minute"
    );
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 3);
    task.check_file(file(9));
    task.set_local(r#"{"data_handling": {"send_statistics": false}}"#)
        .unwrap();
    task.set_local(r#"{"data_handling": {"send_statistics": true}}"#)
        .unwrap();
    host.advance(60_000);
    task.tick();
    assert_eq!(
        host.received(Service::GLOBAL, DataCategory::STATISTICS),
        3,
        "the queued item was discarded"
    );
}

#[test]
fn the_ledger_matches_what_the_services_received_and_names_the_consent() {
    let host = TestHost::default();
    let task = running(&host);
    host.0
        .ksn_urls
        .lock()
        .unwrap()
        .insert("u".into(), Verdict::TRUSTED);
    task.check_file(file(1));
    task.check_url("https://u.example/").unwrap();
    host.advance(60_000);
    task.tick();
    let ledger = task.ledger();
    let received = host.0.received.lock().unwrap().clone();
    assert_eq!(ledger.len(), received.len());
    for (item, (service, category, items)) in ledger.iter().zip(&received) {
        assert_eq!(
            (item.service, item.category, item.items),
            (*service, *category, *items)
        );
    }
    let log: Vec<serde_json::Value> = serde_json::from_str(&task.task_log_json().unwrap()).unwrap();
    let acceptance = log
        .iter()
        .find(|e| e["type"] == "consent_changed" && e["accepted"] == true)
        .unwrap();
    assert!(ledger
        .iter()
        .all(|i| i.consent_record == acceptance["seq"].as_u64().unwrap()));
}

#[test]
fn nothing_is_sent_after_a_withdrawal_returns() {
    let host = TestHost::default();
    let task = running(&host);
    task.check_file(file(1));
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#)
        .unwrap();
    let sent = host.0.received.lock().unwrap().len();
    task.check_file(file(2));
    task.check_url("https://x.example/").unwrap();
    host.advance(120_000);
    task.tick();
    assert_eq!(host.0.received.lock().unwrap().len(), sent);
    assert_eq!(task.cached_entries(), 0, "the cache was emptied");
}

#[test]
fn a_batch_that_was_delivered_is_not_sent_again_and_one_that_was_not_stays_queued() {
    let host = TestHost::default();
    let task = running(&host);
    task.check_file(file(1));
    task.check_file(file(2));
    // The service is down: the batch reaches nobody and stays queued.
    host.set_link(Service::GLOBAL, false, 1);
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 0);
    // Slow: delivered (the service counts it) but not answered in time.
    host.set_link(Service::GLOBAL, true, 20_000);
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 2);
    // Back to normal: nothing is queued any more, so nothing goes out again.
    host.set_link(Service::GLOBAL, true, 1);
    host.advance(60_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 2);
    let ledger = task.ledger();
    let batches: Vec<_> = ledger
        .iter()
        .filter(|i| i.category == DataCategory::STATISTICS)
        .collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(
        (batches[0].items, batches[0].outcome),
        (2, plugin_api::documents::LedgerOutcome::TimedOut)
    );
}

#[test]
fn at_most_one_batch_a_minute_also_across_a_restart() {
    let host = TestHost::default();
    let task = running(&host);
    host.advance(60_000);
    task.check_file(file(1));
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 1);
    drop(task);
    let task = super::Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.start().unwrap();
    task.check_file(file(2));
    host.advance(30_000);
    task.tick();
    assert_eq!(
        host.received(Service::GLOBAL, DataCategory::STATISTICS),
        1,
        "half a minute after the last batch, restart or not"
    );
    host.advance(30_000);
    task.tick();
    assert_eq!(host.received(Service::GLOBAL, DataCategory::STATISTICS), 2);
}

#[test]
fn the_journal_stays_bounded_keeps_every_consent_record_and_restores() {
    let host = TestHost::default();
    *host.0.retention.lock().unwrap() = Some(plugin_api::LogRetention {
        max_entries: 100,
        max_age_ms: 0,
    });
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert([8; 16], Verdict::UNTRUSTED);
    let task = running(&host);
    for round in 0..20 {
        for _ in 0..100 {
            task.check_file(file(8));
        }
        let accept = round % 2 == 1;
        task.set_local(&format!(
            r#"{{"data_handling": {{"send_statistics": {accept}}}}}"#
        ))
        .unwrap();
    }
    let records = host.records(JOURNAL_KEY).len();
    assert!(
        records <= 2 * 100 + 1,
        "{records} records after 2,000 detections"
    );
    let log: Vec<serde_json::Value> = serde_json::from_str(&task.task_log_json().unwrap()).unwrap();
    let consent = log
        .iter()
        .filter(|e| e["type"] == "consent_changed")
        .count();
    assert_eq!(
        consent,
        1 + 20,
        "the acceptance and every partial withdrawal or re-acceptance"
    );
    let others = log.len() - consent;
    assert!(others <= 2 * 100, "{others} other entries kept");
    let settings = task.settings_json();
    drop(task);
    let restored = super::Task::new(host.clone()).unwrap();
    assert_eq!(restored.settings_json(), settings);
}

/// A host whose `emit_event` fails (as a C++ callback that throws does through the C door).
struct Refusing(TestHost);

impl super::Host for Refusing {
    fn emit_event(&self, _: &str) -> Result<(), String> {
        Err("the event sink threw: queue full".into())
    }
    fn now_ms(&self) -> u64 {
        super::Host::now_ms(&self.0)
    }
    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        super::Host::storage_append(&self.0, key, record)
    }
    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        super::Host::storage_records(&self.0, key)
    }
    fn storage_replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        super::Host::storage_replace(&self.0, key, records)
    }
    fn log_retention(&self) -> plugin_api::LogRetention {
        super::Host::log_retention(&self.0)
    }
    fn events_since(&self, from_seq: u64) -> Result<Vec<String>, String> {
        super::Host::events_since(&self.0, from_seq)
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        super::Host::local_file_verdict(&self.0, query)
    }
    fn local_url_verdict(&self, url: &str) -> Verdict {
        super::Host::local_url_verdict(&self.0, url)
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<plugin_api::KsnReply, plugin_api::TransportFailure> {
        super::Host::ksn_file(&self.0, service, query, timeout_ms)
    }
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<plugin_api::KsnReply, plugin_api::TransportFailure> {
        super::Host::ksn_url(&self.0, service, url, timeout_ms)
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, plugin_api::TransportFailure> {
        super::Host::ksn_upload(&self.0, service, category, items, timeout_ms)
    }
    fn backup_and_delete(
        &self,
        object: Option<super::host::HostObject<'_>>,
        query: FileQuery,
    ) -> Result<(), String> {
        super::Host::backup_and_delete(&self.0, object, query)
    }
}

/// The log records of this test binary (the `log` crate's logger is one per binary).
static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Trace);
}

#[test]
fn what_the_host_failed_to_take_is_logged_with_its_count() {
    capture_logs();
    let host = TestHost::default();
    let task = Task::new(Refusing(host.clone())).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_local(ACCEPT).unwrap();
    let logged = LOGGED.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("WARN the host's emit_event failed for")
                && l.contains("the event sink threw: queue full")),
        "{logged:?}"
    );
    // The change took effect all the same, and the log has every entry.
    let log: Vec<serde_json::Value> = serde_json::from_str(&task.task_log_json().unwrap()).unwrap();
    assert!(log.iter().any(|e| e["type"] == "consent_changed"));
}

#[test]
fn a_slow_emit_event_on_one_thread_never_delays_a_withdrawal_on_another() {
    let host = TestHost::default();
    let task = running(&host);
    let (reached, release) = host.hold("emit_event");
    std::thread::scope(|s| {
        // This thread's change: its event's callback stops in the host.
        let slow = s.spawn(|| task.set_local(r#"{"task": {"lookup_timeout_ms": 500}}"#));
        reached
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the callback was reached");
        // Another thread withdraws while that callback is still held: it must return
        // before the callback is let go (emitting under the lock would wait for it).
        let (done, withdrawn) = std::sync::mpsc::channel();
        let task = &task;
        s.spawn(move || {
            let result = task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#);
            let _ = done.send(result);
        });
        let result = withdrawn.recv_timeout(std::time::Duration::from_secs(10));
        let _ = release.send(());
        result
            .expect("the withdrawal returned while the other thread's callback was held")
            .unwrap();
        assert_eq!(task.status().state, TaskState::STOPPED);
        let before = host.received(Service::GLOBAL, DataCategory::FILES);
        task.check_file(file(3));
        assert_eq!(host.received(Service::GLOBAL, DataCategory::FILES), before);
        slow.join().unwrap().unwrap();
    });
    // Every event reached the host, in the order of its number.
    let seqs: Vec<u64> = host
        .events()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let logged: Vec<u64> =
        serde_json::from_str::<Vec<serde_json::Value>>(&task.task_log_json().unwrap())
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
    assert_eq!(seqs, logged);
}

#[test]
fn the_ledger_survives_a_restart_and_its_numbering_goes_on() {
    let host = TestHost::default();
    let task = running(&host);
    task.check_file(file(1));
    task.check_url("https://example.com/").unwrap();
    let before = task.ledger();
    assert_eq!(before.len(), 2);
    // Saved at each tick, and as the task ends.
    task.tick();
    task.check_file(file(2));
    drop(task);
    let task = Task::new(host.clone()).unwrap();
    let after = task.ledger();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[..2], before[..]);
    task.set_license(LicenseState::VALID).unwrap();
    task.start().unwrap();
    task.check_file(file(3));
    let seqs: Vec<u64> = task.ledger().iter().map(|i| i.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    // While storage refuses, the newest items wait in memory; written when it works.
    host.fail_storage(true);
    task.check_file(file(4));
    task.tick();
    host.fail_storage(false);
    task.tick();
    drop(task);
    let task = Task::new(host).unwrap();
    assert_eq!(task.ledger().len(), 5);
}
