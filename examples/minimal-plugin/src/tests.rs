//! The task driven through a small in-memory host, in process; `host-sim/tests/
//! minimal_plugin.rs` drives the built library through the ABI.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use plugin_api::{
    abi_stable::std_types::RStr,
    documents::{
        read_document, Counters, Event, LedgerItem, LedgerOutcome, LedgerPage, LogEntry, LogPage,
        PluginDescription, SettingsView, Source,
    },
    testing::TestHost,
    DataCategory, ErrorKind, FileQuery, LicenseState, LogRetention, Service, TaskImpl, TaskState,
    TransportFailure, Verdict,
};
use serde_json::{json, Value as Json};

use crate::{description, MinimalTask, JOURNAL};

const ACCEPT_LOCKED: &str = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}}}}}"#;
const EICAR: &str = "44d88612fea8a8f36de82e1278abb02f";

/// The contract's in-memory host (`plugin_api::testing`), as these tests use it: a Global
/// KSN that answers every file with one reply.
trait MinimalHost {
    fn new() -> Self;
    /// A task instance over this host's storage (a host start, or restart).
    fn boot(&self) -> MinimalTask;
    fn entries(&self) -> Vec<LogEntry>;
    fn record_count(&self) -> usize;
    /// What Global KSN answers: a verdict, or a transport failure (a timeout is delivered
    /// and not answered in time; unreachable is not delivered).
    fn set_reply(&self, reply: Result<Verdict, TransportFailure>);
    /// File requests Global KSN received; no other service is ever asked.
    fn sent(&self) -> u64;
}

impl MinimalHost for TestHost {
    fn new() -> Self {
        let host = TestHost::default();
        host.set_time(1_000);
        host.set_reply(Ok(Verdict::UNKNOWN));
        host
    }

    fn boot(&self) -> MinimalTask {
        MinimalTask::new(self.services()).expect("the task is created")
    }

    fn entries(&self) -> Vec<LogEntry> {
        let events = self.0.events.lock().unwrap();
        events
            .iter()
            .map(|e| read_document("emit_event", e).unwrap())
            .collect()
    }

    fn record_count(&self) -> usize {
        self.records(JOURNAL).len()
    }

    fn set_reply(&self, reply: Result<Verdict, TransportFailure>) {
        let (up, latency_ms) = match reply {
            Err(TransportFailure::UNREACHABLE) => (false, 5),
            Err(_) => (true, u32::MAX),
            Ok(_) => (true, 5),
        };
        self.set_link(Service::GLOBAL, up, latency_ms);
        *self.0.odd_verdict.lock().unwrap() = reply.ok();
    }

    fn sent(&self) -> u64 {
        for other in [Service::PROXY, Service::PRIVATE] {
            assert_eq!(self.received_by(other), 0, "only Global KSN is ever asked");
        }
        u64::from(self.received(Service::GLOBAL, DataCategory::FILES))
    }
}

fn file(hex: &str) -> FileQuery {
    FileQuery {
        md5: FileQuery::parse_md5(hex).unwrap(),
        size_bytes: 68,
    }
}

fn log(task: &MinimalTask) -> Vec<LogEntry> {
    read_document("task_log_json", &task.task_log_json().unwrap()).unwrap()
}

fn settings(task: &MinimalTask) -> SettingsView {
    read_document("settings_json", &task.settings_json().unwrap()).unwrap()
}

fn ledger(task: &MinimalTask) -> Vec<LedgerItem> {
    read_document("ledger_json", &task.ledger_json().unwrap()).unwrap()
}

fn types(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.event.type_name().into_owned())
        .collect()
}

/// A running task: the host reported a valid licence, the policy accepts and locks the
/// statement.
fn running(host: &TestHost) -> MinimalTask {
    let task = host.boot();
    task.set_license(LicenseState::VALID).unwrap();
    task.push_policy(ACCEPT_LOCKED).unwrap();
    task.start().unwrap();
    task
}

#[test]
fn the_description_is_the_contract_s_and_its_defaults_are_valid_documents() {
    let text = serde_json::to_string(&description()).unwrap();
    let description: PluginDescription = read_document("describe", &text).unwrap();
    for path in [
        "data_handling.ksn_statement_accepted",
        "data_handling.send_scanned_files_data",
        "task.lookup_timeout_ms",
    ] {
        assert!(description.setting(path).is_some(), "{path}");
    }
    let ksn = description
        .statement(plugin_api::documents::Statement::Ksn)
        .unwrap();
    assert!(ksn.version >= 1 && !ksn.text.is_empty());
    // The defaults, as a local change and as a policy, are accepted by the task itself.
    let mut local = serde_json::Map::new();
    for setting in &description.settings {
        local
            .entry(setting.section().to_string())
            .or_insert_with(|| json!({}))[setting.key()] = setting.default.clone();
    }
    let local = Json::Object(local);
    let host = TestHost::new();
    let task = host.boot();
    task.set_local(&local.to_string()).unwrap();
    task.push_policy(&json!({ "settings": local }).to_string())
        .unwrap();
    // A default value set explicitly changes no value, so no settings_changed is logged.
    assert_eq!(types(&log(&task)), ["policy_applied"]);
}

#[test]
fn the_start_gate_wants_the_statement_then_a_valid_licence() {
    let host = TestHost::new();
    let task = host.boot();
    // The host has not reported a licence yet: the boot order is enforced.
    let early = task.start().unwrap_err();
    assert_eq!(early.kind, ErrorKind::INVALID_STATE, "{early}");
    assert!(early.message.contains("the boot order"), "{early}");
    task.set_license(LicenseState::UNKNOWN).unwrap();
    let refused = task.start().unwrap_err();
    assert_eq!(refused.kind, ErrorKind::STATEMENT_NOT_ACCEPTED, "{refused}");
    assert!(refused.message.contains("ksn_statement_accepted"));
    task.push_policy(ACCEPT_LOCKED).unwrap();
    assert_eq!(task.start().unwrap_err().kind, ErrorKind::LICENSE_VIOLATION);
    task.set_license(LicenseState::NO_KSN).unwrap();
    assert_eq!(task.start().unwrap_err().kind, ErrorKind::LICENSE_VIOLATION);
    task.set_license(LicenseState::VALID).unwrap();
    task.start().unwrap();
    let status = task.status();
    assert_eq!(
        (status.state, status.network),
        (TaskState::RUNNING, Service::GLOBAL)
    );
    // Each refusal is in the log, and nothing else came of it.
    let entries = log(&task);
    assert_eq!(
        types(&entries),
        [
            "operation_refused",
            "operation_refused",
            "policy_applied",
            "settings_changed",
            "consent_changed",
            "operation_refused",
            "license_changed",
            "operation_refused",
            "license_changed",
            "state_changed",
        ]
    );
    // A licence that stops covering KSN fails the running task.
    task.set_license(LicenseState::EXPIRED).unwrap();
    let status = task.status();
    assert_eq!(status.state, TaskState::FAILED);
    assert_eq!(
        status.error.into_option(),
        Some(ErrorKind::LICENSE_VIOLATION)
    );
    task.stop().unwrap();
    assert_eq!(task.status().error.into_option(), None);
}

#[test]
fn bad_documents_are_refused_whole_with_their_place_on_one_line() {
    let host = TestHost::new();
    let task = host.boot();
    task.set_local(r#"{"task": {"lookup_timeout_ms": 700}}"#)
        .unwrap();
    let cases = [
        (
            r#"{"settings": {"task": {"lookup_timeout_ms": 5000000}}}"#,
            "settings.task.lookup_timeout_ms: expected an integer from 100 to 30000, got 5000000",
        ),
        (
            r#"{"settings": {"task": {"schedule": "hourly"}}}"#,
            r#"settings.task.schedule: expected one of "manual", "at_application_start", got "hourly""#,
        ),
        (
            r#"{"settings": {"task": {"lookup_timeout_msx": 200}}}"#,
            "settings.task.lookup_timeout_msx: unknown setting; did you mean `lookup_timeout_ms`?",
        ),
        (
            r#"{"settings": {"data_handlin": {}}}"#,
            "settings.data_handlin: unknown section; did you mean `data_handling`?",
        ),
        (
            r#"{"settings": {"task": {"schedule": {"value": "manual", "locked": "yes"}}}}"#,
            r#"settings.task.schedule.locked: expected true or false, got "yes""#,
        ),
        (
            r#"{"settings": {"task": {"schedule": {"value": "manual", "lockd": true}}}}"#,
            "settings.task.schedule.lockd: unknown key",
        ),
        (
            r#"{"settings": {"task": {"schedule": {"locked": true}}}}"#,
            r#"settings.task.schedule: missing "value""#,
        ),
        (
            r#"{"settings": {"task": {"schedule": "manual", "schedule": "at_application_start"}}}"#,
            "settings.task.schedule: duplicate key",
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}}}}"#,
            r#"settings.data_handling.ksn_statement_accepted: an acceptance in a policy names the version of the statement the administrator read: write {"value": true, "versions": {"ksn": 1}}"#,
        ),
        (
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"kmp": 1}}}}}"#,
            r#"settings.data_handling.ksn_statement_accepted.versions.kmp: this box accepts the KSN statement only"#,
        ),
        (
            r#"{"setings": {}}"#,
            "setings: unknown key; a policy has only \"settings\"; did you mean `settings`?",
        ),
        (r#"{"settings": {"#, "malformed JSON: EOF while parsing"),
        (
            "[1]",
            r#"a policy is a JSON object {"settings": {...}}, got [1]"#,
        ),
        (
            "{\"settings\": {\"task\": {\"a\\nb\": 1}}}",
            r#"settings.task["a\nb"]: unknown setting"#,
        ),
    ];
    let settings_before = task.settings_json().unwrap();
    let log_before = log(&task);
    for (policy, wanted) in cases {
        let e = task.push_policy(policy).unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS, "{policy}: {e}");
        assert!(e.message.starts_with(wanted), "{policy}: {e}");
        assert!(!e.message.contains('\n'), "{policy}: {e}");
    }
    let local_cases = [
        (
            r#"{"data_handling": {"send_scanned_files_data": "yes"}}"#,
            r#"data_handling.send_scanned_files_data: expected true or false, got "yes""#,
        ),
        (
            r#"{"data_handling": {"ksn_statement_accepted": {"value": true}}}"#,
            r#"data_handling.ksn_statement_accepted: expected true or false, got {"value":true}"#,
        ),
        (
            // Refused whole: the valid first entry is not applied either.
            r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"lookup_timeout_ms": -1}}"#,
            "task.lookup_timeout_ms: expected an integer from 100 to 30000, got -1",
        ),
        (
            "7",
            "a local change: expected an object of sections (data_handling, task), got 7",
        ),
    ];
    for (change, wanted) in local_cases {
        let e = task.set_local(change).unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS, "{change}: {e}");
        assert!(e.message.starts_with(wanted), "{change}: {e}");
    }
    assert_eq!(task.settings_json().unwrap(), settings_before);
    let after = log(&task);
    assert_eq!(after[..log_before.len()], log_before[..]);
    assert!(after[log_before.len()..].iter().all(|e| matches!(
        e.event,
        Event::OperationRefused {
            kind: ErrorKind::INVALID_SETTINGS,
            ..
        }
    )));
    assert_eq!(
        after.len(),
        log_before.len() + cases.len() + local_cases.len()
    );
}

#[test]
fn a_local_change_to_a_locked_setting_is_refused_and_restating_it_is_not() {
    let host = TestHost::new();
    let task = host.boot();
    task.push_policy(ACCEPT_LOCKED).unwrap();
    let before = task.settings_json().unwrap();
    let e = task
        .set_local(r#"{"data_handling": {"ksn_statement_accepted": false}, "task": {"lookup_timeout_ms": 900}}"#)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::LOCKED_BY_POLICY, "{e}");
    assert!(
        e.message
            .starts_with("data_handling.ksn_statement_accepted: locked by the policy"),
        "{e}"
    );
    assert_eq!(task.settings_json().unwrap(), before, "nothing changed");
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    let view = settings(&task);
    let accepted = view
        .setting("data_handling.ksn_statement_accepted")
        .unwrap();
    assert_eq!(
        (&accepted.value, accepted.source, accepted.locked),
        (&json!(true), Source::Policy, true)
    );
    assert_eq!(view.locked, ["data_handling.ksn_statement_accepted"]);
    // A new policy releases the lock; the local acceptance stays.
    task.push_policy(r#"{"settings": {"task": {"lookup_timeout_ms": 250}}}"#)
        .unwrap();
    let view = settings(&task);
    assert!(view.locked.is_empty());
    let accepted = view
        .setting("data_handling.ksn_statement_accepted")
        .unwrap();
    assert_eq!(
        (&accepted.value, accepted.source),
        (&json!(true), Source::Local)
    );
    let timeout = view.setting("task.lookup_timeout_ms").unwrap();
    assert_eq!(
        (&timeout.value, timeout.source, timeout.locked),
        (&json!(250), Source::Policy, false)
    );
    // An unlocked policy value may be changed locally.
    task.set_local(r#"{"task": {"lookup_timeout_ms": 300}}"#)
        .unwrap();
    assert_eq!(view.settings["task"]["lookup_timeout_ms"], 250);
    assert_eq!(settings(&task).settings["task"]["lookup_timeout_ms"], 300);
}

#[test]
fn lookups_ask_global_ksn_only_while_running_and_allowed() {
    let host = TestHost::new();
    let task = host.boot();
    host.set_reply(Ok(Verdict::UNTRUSTED));
    let answer = task.check_file(file(EICAR)).unwrap();
    assert_eq!(
        (answer.verdict, answer.source),
        (Verdict::UNAVAILABLE, plugin_api::AnswerSource::NOT_RUNNING),
        "not running, and it says so"
    );
    assert_eq!(host.sent(), 0);
    let task = running(&host);
    let answer = task.check_file(file(EICAR)).unwrap();
    assert_eq!(
        (answer.verdict, answer.action, answer.source),
        (
            Verdict::UNTRUSTED,
            plugin_api::ObjectAction::LOGGED,
            plugin_api::AnswerSource::KSN
        )
    );
    assert_eq!(host.sent(), 1);
    let items = ledger(&task);
    let consent = log(&task)
        .into_iter()
        .find(|e| matches!(e.event, Event::ConsentChanged { accepted: true, .. }))
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].category, items[0].service, items[0].consent_record),
        (DataCategory::FILES, Service::GLOBAL, consent.seq)
    );
    // The files category withdrawn: no request, and the answer says why; the partial
    // withdrawal is a consent record.
    task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#)
        .unwrap();
    let withheld = task.check_file(file(EICAR)).unwrap();
    assert_eq!(
        (withheld.verdict, withheld.source),
        (Verdict::UNKNOWN, plugin_api::AnswerSource::NOT_CONSENTED)
    );
    assert_eq!(host.sent(), 1);
    assert!(log(&task).iter().any(|e| matches!(
        e.event,
        Event::ConsentChanged {
            accepted: false,
            category: Some(DataCategory::FILES),
            ..
        }
    )));
    // Allowed again: the next item names the re-acceptance.
    task.set_local(r#"{"data_handling": {"send_scanned_files_data": true}}"#)
        .unwrap();
    host.set_reply(Ok(Verdict::TRUSTED));
    assert_eq!(
        task.check_file(file(EICAR)).unwrap().verdict,
        Verdict::TRUSTED
    );
    let reaccepted = log(&task)
        .into_iter()
        .rev()
        .find(|e| matches!(e.event, Event::ConsentChanged { accepted: true, .. }))
        .unwrap();
    assert_eq!(ledger(&task)[1].consent_record, reaccepted.seq);
    // The device's own list answers first.
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert(file(EICAR).md5, Verdict::TRUSTED);
    let answer = task.check_file(file(EICAR)).unwrap();
    assert_eq!(answer.source, plugin_api::AnswerSource::LOCAL_LIST);
    assert_eq!(host.sent(), 2);
    // URLs: never asked.
    let url = task.check_url("https://example.com/").unwrap();
    assert_eq!(url.verdict, Verdict::UNKNOWN);
    task.stop().unwrap();
    assert_eq!(
        task.check_url("https://example.com/").unwrap().verdict,
        Verdict::UNAVAILABLE
    );
}

#[test]
fn a_transport_failure_answers_unavailable_and_is_logged_once() {
    let host = TestHost::new();
    let task = running(&host);
    host.set_reply(Err(TransportFailure::UNREACHABLE));
    for _ in 0..3 {
        let answer = task.check_file(file(EICAR)).unwrap();
        assert_eq!(answer.verdict, Verdict::UNAVAILABLE);
    }
    host.set_reply(Err(TransportFailure::TIMED_OUT));
    assert_eq!(
        task.check_file(file(EICAR)).unwrap().verdict,
        Verdict::UNAVAILABLE
    );
    host.set_reply(Ok(Verdict::UNKNOWN));
    assert_eq!(
        task.check_file(file(EICAR)).unwrap().verdict,
        Verdict::UNKNOWN
    );
    let entries = log(&task);
    let kinds = types(&entries);
    assert_eq!(
        kinds.iter().filter(|t| *t == "ksn_unavailable").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap(), "ksn_restored");
    // Unreachable sent nothing; the timed-out request did leave the device.
    let outcomes: Vec<LedgerOutcome> = ledger(&task).iter().map(|i| i.outcome).collect();
    assert_eq!(outcomes, [LedgerOutcome::TimedOut, LedgerOutcome::Answered]);
}

#[test]
fn the_log_and_settings_survive_a_restart_and_events_match_the_log() {
    let host = TestHost::new();
    let task = running(&host);
    task.set_local(r#"{"task": {"lookup_timeout_ms": 1234}}"#)
        .unwrap();
    task.stop().unwrap();
    task.start().unwrap();
    let before_log = log(&task);
    let before_settings = task.settings_json().unwrap();
    // The events are the log's entries, in order, with increasing seq from 0.
    assert_eq!(host.entries(), before_log);
    for (i, entry) in before_log.iter().enumerate() {
        assert_eq!(entry.seq, i as u64);
    }
    drop(task);
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    let task = host.boot();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_private_ksn(false).unwrap();
    task.application_started().unwrap();
    assert_eq!(task.settings_json().unwrap(), before_settings);
    assert_eq!(task.status().state, TaskState::STOPPED);
    let after = log(&task);
    assert_eq!(after[..before_log.len()], before_log[..]);
    assert_eq!(after.len(), before_log.len() + 1);
    let restarted = &after[before_log.len()];
    assert_eq!(restarted.seq, before_log.len() as u64);
    assert!(matches!(
        &restarted.event,
        Event::StateChanged { from: TaskState::RUNNING, to: TaskState::STOPPED, reason: Some(r) }
            if r == "host_restarted"
    ));
    assert_eq!(host.entries(), after);
    // The schedule starts it with the application.
    task.set_local(r#"{"task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    drop(task);
    let task = host.boot();
    task.set_license(LicenseState::VALID).unwrap();
    task.application_started().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
}

/// The boot order: a scheduled start needs the licence first; the licence last reported
/// is restored.
#[test]
fn a_scheduled_start_waits_for_the_licence_and_the_licence_is_restored() {
    let host = TestHost::new();
    let task = host.boot();
    task.push_policy(ACCEPT_LOCKED).unwrap();
    task.set_local(r#"{"task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    let early = task.application_started().unwrap_err();
    assert_eq!(early.kind, ErrorKind::INVALID_STATE, "{early}");
    assert!(early.message.contains("set_license"), "{early}");
    assert_eq!(task.status().state, TaskState::STOPPED);
    task.set_license(LicenseState::VALID).unwrap();
    task.application_started().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
    drop(task);
    // Restored, the licence last reported is known, but no start is made under it until
    // the host reports it in this session.
    let task = host.boot();
    assert_eq!(task.status().license, LicenseState::VALID);
    let early = task.application_started().unwrap_err();
    assert_eq!(early.kind, ErrorKind::INVALID_STATE, "{early}");
    task.set_license(LicenseState::VALID).unwrap();
    task.application_started().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
    // A scheduled start the task refuses says so, with the reason.
    task.stop().unwrap();
    task.set_license(LicenseState::EXPIRED).unwrap();
    let refused = task.application_started().unwrap_err();
    assert_eq!(refused.kind, ErrorKind::LICENSE_VIOLATION, "{refused}");
    assert!(refused
        .message
        .starts_with("the scheduled start was refused"));
}

#[test]
fn pages_read_the_same_log_and_ledger() {
    let host = TestHost::new();
    let task = running(&host);
    for _ in 0..7 {
        task.check_file(file(EICAR)).unwrap();
        task.set_local(r#"{"task": {"lookup_timeout_ms": 222}}"#)
            .unwrap();
        task.set_local(r#"{"task": {"lookup_timeout_ms": 333}}"#)
            .unwrap();
    }
    let whole = log(&task);
    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page: LogPage =
            read_document("task_log_page", &task.task_log_page(from, 4).unwrap()).unwrap();
        assert_eq!(page.oldest_seq, 0);
        if page.entries.is_empty() {
            assert_eq!(page.next_seq, from);
            break;
        }
        assert!(page.entries.len() <= 4);
        from = page.next_seq;
        paged.extend(page.entries);
    }
    assert_eq!(paged, whole);
    let page: LedgerPage = read_document("ledger_page", &task.ledger_page(3, 2).unwrap()).unwrap();
    assert_eq!(page.items.iter().map(|i| i.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(page.next_seq, 5);
    let counters: Counters =
        read_document("counters_json", &task.counters_json().unwrap()).unwrap();
    assert_eq!(counters.ledger_items, 7);
}

#[test]
fn storage_refusing_a_write_changes_nothing_unless_the_change_only_narrows() {
    let host = TestHost::new();
    let task = running(&host);
    let settings_before = task.settings_json().unwrap();
    let log_before = log(&task);
    host.0.refuse_writes.store(true, Ordering::SeqCst);
    let e = task
        .set_local(r#"{"task": {"lookup_timeout_ms": 999}}"#)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::STORAGE_ERROR, "{e}");
    assert_eq!(task.settings_json().unwrap(), settings_before);
    // A stop narrows what the task does: it takes effect, and is recorded later.
    let e = task.stop().unwrap_err();
    assert_eq!(e.kind, ErrorKind::STORAGE_ERROR);
    assert_eq!(task.status().state, TaskState::STOPPED);
    // So does a withdrawal: nothing is sent from the moment it returns.
    task.start().unwrap_err();
    assert_eq!(
        task.status().state,
        TaskState::STOPPED,
        "a start waits for storage"
    );
    // A policy that withdraws the acceptance: that takes effect too.
    assert_eq!(
        task.push_policy(r#"{"settings": {"data_handling": {"ksn_statement_accepted": false}}}"#)
            .unwrap_err()
            .kind,
        ErrorKind::STORAGE_ERROR
    );
    assert_eq!(
        settings(&task).settings["data_handling"]["ksn_statement_accepted"],
        false
    );
    let e = task
        .set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::STORAGE_ERROR);
    assert_eq!(
        settings(&task).settings["data_handling"]["send_scanned_files_data"],
        false
    );
    host.0.refuse_writes.store(false, Ordering::SeqCst);
    task.set_local(r#"{"task": {"lookup_timeout_ms": 999}}"#)
        .unwrap();
    let entries = log(&task);
    // Recorded now: the refused set_local, the stop, the refused start, the policy's
    // withdrawal (policy_applied, settings_changed, consent_changed) and the files box.
    assert!(matches!(
        entries.last().unwrap().event,
        Event::StorageRecovered { records: 7 }
    ));
    // Everything is in storage now: a restart reads the same log.
    drop(task);
    let task = host.boot();
    assert_eq!(log(&task), entries);
    assert_eq!(entries[..log_before.len()], log_before[..]);
}

#[test]
fn a_damaged_journal_is_reported_not_guessed_at() {
    let host = TestHost::new();
    running(&host);
    let mut damaged = host.records(JOURNAL);
    damaged.push(b"{\"entries\": [".to_vec());
    host.set_records(JOURNAL, damaged);
    let e = MinimalTask::new(host.services()).err().expect("refused");
    assert_eq!(e.kind, ErrorKind::STORAGE_ERROR);
    assert!(e.message.contains("is damaged"), "{e}");
}

#[test]
fn the_journal_is_compacted_and_the_retention_keeps_consent_records() {
    let host = TestHost::new();
    *host.0.retention.lock().unwrap() = Some(LogRetention {
        max_entries: 10,
        max_age_ms: 0,
    });
    let task = running(&host);
    for i in 0..300 {
        task.set_local(&format!(
            r#"{{"task": {{"lookup_timeout_ms": {}}}}}"#,
            200 + i
        ))
        .unwrap();
    }
    assert!(host.record_count() < 100, "{} records", host.record_count());
    let kept = log(&task);
    assert!(kept.len() < 120, "{}", kept.len());
    assert!(kept
        .iter()
        .any(|e| matches!(e.event, Event::ConsentChanged { .. })));
    let page: LogPage = read_document("task_log_page", &task.task_log_page(0, 1).unwrap()).unwrap();
    assert_eq!(page.oldest_seq, kept[0].seq);
    let settings_before = task.settings_json().unwrap();
    drop(task);
    let task = host.boot();
    assert_eq!(task.settings_json().unwrap(), settings_before);
    let restored = log(&task);
    assert_eq!(restored[..kept.len()], kept[..]);
}

#[test]
fn nothing_is_sent_once_a_withdrawal_returns() {
    let host = TestHost::new();
    let task = Arc::new(running(&host));
    task.push_policy("{}").unwrap(); // the lock released: withdrawal is local from now on
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    task.start().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let lookups: Vec<_> = (0..3)
        .map(|_| {
            let (task, done) = (task.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    task.check_file(file(EICAR)).unwrap();
                }
            })
        })
        .collect();
    while host.sent() < 50 {
        std::thread::yield_now();
    }
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#)
        .unwrap();
    let sent_at_withdrawal = host.sent();
    for _ in 0..200 {
        task.check_file(file(EICAR)).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for lookup in lookups {
        lookup.join().unwrap();
    }
    assert_eq!(host.sent(), sent_at_withdrawal);
    assert_eq!(task.status().state, TaskState::FAILED);
    assert_eq!(ledger(&task).len() as u64, sent_at_withdrawal);
    // The events arrived in order although they were made on several threads.
    let seqs: Vec<u64> = host.entries().iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{seqs:?}");
}

#[test]
fn through_the_abi_with_the_export_helper() {
    let host = TestHost::new();
    let boxed = plugin_api::export::new_task(host.services(), MinimalTask::new)
        .into_result()
        .unwrap();
    boxed
        .set_license(LicenseState::VALID)
        .into_result()
        .unwrap();
    let e = boxed
        .push_policy(RStr::from_str("{"))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS);
    boxed
        .push_policy(RStr::from_str(ACCEPT_LOCKED))
        .into_result()
        .unwrap();
    boxed.start().into_result().unwrap();
    assert_eq!(boxed.status().state, TaskState::RUNNING);
    let view: SettingsView = read_document(
        "settings_json",
        &boxed.settings_json().into_result().unwrap(),
    )
    .unwrap();
    assert_eq!(
        view.settings["data_handling"]["ksn_statement_accepted"],
        true
    );
}

#[test]
fn an_acceptance_of_another_statement_version_is_not_in_force() {
    let host = TestHost::new();
    let task = host.boot();
    task.set_license(LicenseState::VALID).unwrap();
    task.push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 2}}}}}"#,
    )
    .unwrap();
    let refused = task.start().unwrap_err();
    assert_eq!(refused.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    let log = task.task_log_json().unwrap();
    assert!(
        log.contains(
            r#""type":"acceptance_not_in_force","statement":"ksn","version":2,"current_version":1"#
        ),
        "{log}"
    );
}

#[test]
fn a_released_lock_restores_nothing() {
    let host = TestHost::new();
    let task = running(&host);
    task.push_policy(r#"{"settings": {"data_handling": {"send_scanned_files_data": {"value": false, "locked": true}}}}"#)
        .unwrap();
    // The next policy does not name the box: the value the lock enforced stays, and no
    // record says anyone accepted the category again.
    task.push_policy(ACCEPT_LOCKED).unwrap();
    let view = settings(&task);
    assert_eq!(
        view.settings["data_handling"]["send_scanned_files_data"],
        false
    );
    assert!(!log(&task).iter().any(|e| matches!(
        e.event,
        Event::ConsentChanged {
            accepted: true,
            category: Some(DataCategory::FILES),
            ..
        }
    )));
}

#[test]
fn a_restart_that_cannot_show_no_withdrawal_was_lost_fails_closed() {
    let host = TestHost::new();
    let task = host.boot();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    task.start().unwrap();
    host.0.refuse_writes.store(true, Ordering::SeqCst);
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#)
        .unwrap_err();
    drop(task);
    // Storage refused the withdrawal to the end: the next start is not made while it
    // still refuses, and fails closed once it takes writes.
    assert_eq!(
        MinimalTask::new(host.services()).err().unwrap().kind,
        ErrorKind::STORAGE_ERROR
    );
    host.0.refuse_writes.store(false, Ordering::SeqCst);
    let task = host.boot();
    let view = settings(&task);
    let accepted = view
        .setting("data_handling.ksn_statement_accepted")
        .unwrap();
    assert_eq!(
        (&accepted.value, accepted.source),
        (&json!(false), Source::UnverifiedRestart)
    );
    task.set_license(LicenseState::VALID).unwrap();
    assert_eq!(
        task.start().unwrap_err().kind,
        ErrorKind::STATEMENT_NOT_ACCEPTED
    );
    // Confirmed again, and closed cleanly: the next start trusts the journal.
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    drop(task);
    let task = host.boot();
    assert_eq!(
        settings(&task).settings["data_handling"]["ksn_statement_accepted"],
        true
    );
    // Killed (never dropped): the close is missing, and the acceptance is suspended.
    std::mem::forget(task);
    let task = host.boot();
    assert_eq!(
        settings(&task).settings["data_handling"]["ksn_statement_accepted"],
        false
    );
}
