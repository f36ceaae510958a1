//! What an integrating host needs from each call: the object an action applies to, what a
//! control call caused, a safe order of calls after creation, and an argument error that
//! says it is the host's.

use plugin_api::{
    testing::TestHost, AnswerSource, ControlCall, ErrorKind, FileQuery, LicenseState, ObjectAction,
    ObjectRef, Service, TaskState, Verdict,
};

use super::Task;

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

fn untrusted_host() -> TestHost {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([9; 16], Verdict::UNTRUSTED);
    host
}

fn running(host: &TestHost) -> Task<TestHost> {
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    task
}

const FILE: FileQuery = FileQuery {
    md5: [9; 16],
    size_bytes: 100,
};

#[test]
fn the_action_applies_to_the_object_asked_about_every_time() {
    let host = untrusted_host();
    let task = running(&host);
    let first = task.check_object(FILE, ObjectRef::new(41, "/srv/a/eicar.com"));
    assert_eq!(first.action, ObjectAction::DELETED);
    // The same checksum, another object: answered from the cache, deleted too, by handle.
    let second = task.check_object(FILE, ObjectRef::new(42, ""));
    assert!(second.cached);
    assert_eq!(second.action, ObjectAction::DELETED);
    let deleted: Vec<Option<u64>> = host.0.deleted.lock().unwrap().iter().map(|d| d.0).collect();
    assert_eq!(deleted, [Some(41), Some(42)]);
    let events = host.events_of("object_untrusted");
    assert_eq!(
        (&events[0]["object"], &events[0]["path"]),
        (&41.into(), &"/srv/a/eicar.com".into())
    );
    assert_eq!(events[1]["object"], 42);
    assert!(events[1].get("path").is_none(), "an empty path is no path");
    // A lookup without an object: the host's first-contract callback.
    task.check_file(FILE);
    assert_eq!(host.0.deleted.lock().unwrap()[2].0, None);
}

#[test]
fn a_failed_action_says_so_in_the_answer_and_the_event() {
    let host = untrusted_host();
    let task = running(&host);
    *host.0.delete_fails.lock().unwrap() = Some("the file is in use".into());
    let answer = task.check_object(FILE, ObjectRef::new(7, "/srv/locked.bin"));
    assert_eq!(answer.action, ObjectAction::DELETE_FAILED);
    let event = &host.events_of("object_untrusted")[0];
    assert_eq!(
        (&event["action"], &event["reason"], &event["object"]),
        (
            &"delete_failed".into(),
            &"the file is in use".into(),
            &7.into()
        )
    );
}

#[test]
fn a_control_call_hands_back_what_it_caused() {
    let host = TestHost::default();
    let task = Task::new(host.clone()).unwrap();
    task.control(ControlCall::set_license(LicenseState::VALID));
    task.control(ControlCall::set_private_ksn(true));
    let pushed = task.control(ControlCall::push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"private_ksn": 1}}}}}"#,
    ));
    assert!(pushed.result.is_ok());
    let started = task.control(ControlCall::start());
    assert_eq!(started.status.state, TaskState::RUNNING);
    // Switched off under the running task: the call succeeds, and says the task failed.
    let off = task.control(ControlCall::set_private_ksn(false));
    assert!(off.result.is_ok());
    assert_eq!(
        (off.status.state, off.status.error.into_option()),
        (TaskState::FAILED, Some(ErrorKind::LICENSE_VIOLATION))
    );
    // A refusal answers its error, and the status is the one it left.
    let refused = task.control(ControlCall::start());
    assert_eq!(
        refused.result.into_result().unwrap_err().kind,
        ErrorKind::STATEMENT_NOT_ACCEPTED
    );
    assert_eq!(refused.status.state, TaskState::FAILED);
    let unknown = task.control(ControlCall {
        operation: plugin_api::Operation(99),
        ..ControlCall::start()
    });
    assert_eq!(
        unknown.result.into_result().unwrap_err().kind,
        ErrorKind::INVALID_ARGUMENT
    );
}

#[test]
fn no_start_before_the_licence_is_reported_in_this_session() {
    let host = TestHost::default();
    let task = Task::new(host.clone()).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    // The licence was never reported: the scheduled start cannot know whether it may.
    let err = task.application_started().unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_STATE);
    assert!(err.message.contains("set_license"), "{}", err.message);
    task.set_license(LicenseState::VALID).unwrap();
    task.set_license(LicenseState::EXPIRED).unwrap();
    drop(task);
    // Restored, the task knows the licence last reported (its status says it), but
    // neither start is made under it: the host reports the licence first.
    let task = Task::new(host.clone()).unwrap();
    assert_eq!(task.status().license, LicenseState::EXPIRED);
    for call in [ControlCall::start(), ControlCall::application_started()] {
        let refused = task.control(call);
        let err = refused.result.into_result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_STATE, "{}", err.message);
        assert!(
            err.message
                .contains("call set_license and set_private_ksn first"),
            "{}",
            err.message
        );
        assert_eq!(refused.status.state, TaskState::STOPPED);
    }
    assert!(
        host.0.received.lock().unwrap().is_empty(),
        "nothing was sent"
    );
    // Reported (the same licence as stored, or another): the boot goes on.
    task.set_license(LicenseState::VALID).unwrap();
    let booted = task.control(ControlCall::application_started());
    assert!(booted.result.is_ok());
    assert_eq!(booted.status.state, TaskState::RUNNING);
}

#[test]
fn a_scheduled_start_refused_at_application_started_says_so_in_the_answer() {
    let host = TestHost::default();
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::NO_KSN).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    let outcome = task.control(ControlCall::application_started());
    let err = outcome.result.into_result().unwrap_err();
    assert_eq!(err.kind, ErrorKind::LICENSE_VIOLATION);
    assert!(
        err.message.starts_with("the scheduled start was refused"),
        "{}",
        err.message
    );
    assert_eq!(outcome.status.state, TaskState::STOPPED);
    // Nothing scheduled: nothing to refuse.
    task.set_local(r#"{"task": {"schedule": "manual"}}"#)
        .unwrap();
    task.application_started().unwrap();
}

#[test]
fn a_lookup_that_cannot_be_answered_says_why() {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([4; 16], Verdict::TRUSTED);
    let task = Task::new(host.clone()).unwrap();
    let query = FileQuery {
        md5: [4; 16],
        size_bytes: 10,
    };
    let not_running = task.check_file(query);
    assert_eq!(
        (not_running.verdict, not_running.source),
        (Verdict::UNAVAILABLE, AnswerSource::NOT_RUNNING)
    );
    let url = task.check_url("https://example.com/").unwrap();
    assert_eq!(url.source, AnswerSource::NOT_RUNNING);
    task.set_license(LicenseState::VALID).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true, "send_scanned_files_data": false}, "task": {"use_ksc_as_ksn_proxy": false}}"#)
        .unwrap();
    task.start().unwrap();
    let withheld = task.check_file(query);
    assert_eq!(
        (withheld.verdict, withheld.source),
        (Verdict::UNKNOWN, AnswerSource::NOT_CONSENTED)
    );
    task.set_local(r#"{"data_handling": {"send_scanned_files_data": true}}"#)
        .unwrap();
    host.set_link(Service::GLOBAL, false, 1);
    let down = task.check_file(query);
    assert_eq!(
        (down.verdict, down.source),
        (Verdict::UNAVAILABLE, AnswerSource::SERVICE_DOWN)
    );
    host.set_link(Service::GLOBAL, true, 1);
    let answered = task.check_file(query);
    assert_eq!(
        (answered.verdict, answered.source),
        (Verdict::TRUSTED, AnswerSource::KSN)
    );
}

#[test]
fn a_licence_the_contract_does_not_know_is_refused() {
    let host = TestHost::default();
    let task = Task::new(host).unwrap();
    let err = task.set_license(LicenseState(200)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::INVALID_ARGUMENT);
    assert_eq!(
        task.status().license,
        LicenseState::UNKNOWN,
        "nothing changed"
    );
}

#[test]
fn a_url_that_is_not_one_is_refused_and_never_sent() {
    let host = TestHost::default();
    let task = running(&host);
    for bad in [
        "",
        "example.com",
        "://example.com",
        "1http://example.com",
        "http://",
        "http:///path",
        "http://exa mple.com",
        "http://example.com/\0",
        "http://example.com/\n",
    ] {
        let err = task.check_url(bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_ARGUMENT, "{bad:?}");
        assert!(err.message.starts_with("url: "), "{bad:?}: {}", err.message);
    }
    assert!(
        host.0.received.lock().unwrap().is_empty(),
        "nothing was sent"
    );
    for good in [
        "http://example.com",
        "https://a.b/c?d=e#f",
        "ftp+ssl://h",
        "HTTP://X",
    ] {
        assert!(task.check_url(good).is_ok(), "{good}");
    }
}

#[test]
fn pages_past_the_end_say_where_the_end_is() {
    let host = TestHost::default();
    let task = running(&host);
    let page: serde_json::Value =
        serde_json::from_str(&task.task_log_page(u64::MAX, 10).unwrap()).unwrap();
    let end = page["next_seq"].as_u64().unwrap();
    assert!(end < 100, "{page}");
    let ledger: serde_json::Value = serde_json::from_str(&task.ledger_page(u64::MAX, 10)).unwrap();
    assert!(ledger["next_seq"].as_u64().unwrap() < 100, "{ledger}");
}

#[test]
fn time_stops_at_the_largest_integer_json_readers_hold_exactly() {
    let host = TestHost::default();
    host.set_time(u64::MAX - 5);
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    let log: Vec<serde_json::Value> = serde_json::from_str(&task.task_log_json().unwrap()).unwrap();
    assert!(log
        .iter()
        .all(|e| e["time_ms"].as_u64().unwrap() <= super::clock::MAX_JSON_INTEGER));
}

/// Every event carries the plugin's importance: a detection and a licence that stops the
/// task are critical, an outage a warning, a change of state info.
#[test]
fn every_event_says_how_much_it_matters() {
    let host = untrusted_host();
    let task = running(&host);
    task.check_object(FILE, ObjectRef::new(1, ""));
    task.set_license(LicenseState::EXPIRED).unwrap();
    let events = host.events();
    assert!(
        events.iter().all(|e| e.get("importance").is_some()),
        "{events:#?}"
    );
    let of = |kind: &str| host.events_of(kind).last().unwrap()["importance"].clone();
    assert_eq!(of("object_untrusted"), "critical");
    assert_eq!(of("task_error"), "critical");
    assert_eq!(of("license_changed"), "warning");
    assert_eq!(
        host.events_of("license_changed")[0]["importance"],
        "info",
        "to valid"
    );
    assert_eq!(of("state_changed"), "info");
    // The task log says the same.
    let log: Vec<serde_json::Value> = serde_json::from_str(&task.task_log_json().unwrap()).unwrap();
    assert!(log
        .iter()
        .any(|e| e["type"] == "object_untrusted" && e["importance"] == "critical"));
}

#[test]
fn a_path_that_is_not_utf8_gets_its_verdict_and_is_logged_escaped() {
    let host = untrusted_host();
    let task = running(&host);
    let path = b"/srv/caf\xe9/a\\b.bin";
    let answer = task.check_file_object(
        FILE,
        Some(super::host::HostObject {
            handle: 5,
            path: &path[..],
        }),
    );
    assert_eq!(
        (answer.verdict, answer.action),
        (Verdict::UNTRUSTED, ObjectAction::DELETED)
    );
    let event = &host.events_of("object_untrusted")[0];
    assert_eq!(event["path"], r"/srv/caf\xe9/a\\b.bin");
    assert_eq!(event["object"], 5);
    assert_eq!(host.0.deleted.lock().unwrap()[0].0, Some(5));
}

#[test]
fn object_handle_0_is_no_object_and_its_action_is_the_checksum_s() {
    let host = untrusted_host();
    let task = running(&host);
    let answer = task.check_object(FILE, ObjectRef::new(0, "/srv/unknown-handle.bin"));
    assert_eq!(answer.action, ObjectAction::DELETED);
    // The host's first-contract callback (no handle), as for `check_file`.
    assert_eq!(host.0.deleted.lock().unwrap()[0].0, None);
    let event = &host.events_of("object_untrusted")[0];
    assert!(event.get("object").is_none(), "{event}");
    assert_eq!(
        event["path"], "/srv/unknown-handle.bin",
        "the path is still logged"
    );
}
