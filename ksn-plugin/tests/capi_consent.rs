//! Consent through every host the C door allows (issue rules 4 to 7), the built cdylib
//! loaded as a C host loads it: a host that keeps no events, or whose `events_since`
//! fails; an `emit_event` that fails; the boot order; lookups that say why they could not
//! be answered; a path that is not UTF-8.

mod c_host;

use std::sync::atomic::Ordering;

use c_host::*;
use ksn_plugin::capi::*;

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;
const WITHDRAW: &str = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;

fn accepted(task: &Task<'_>) -> bool {
    task.settings()["settings"]["data_handling"]["ksn_statement_accepted"] == true
}

fn ended_unverified(task: &Task<'_>) -> bool {
    task.log()
        .iter()
        .any(|e| e["type"] == "consent_changed" && e["source"] == "unverified_restart")
}

#[test]
fn a_host_that_keeps_no_events_fails_closed_where_the_journal_cannot_show_nothing_was_lost() {
    let api = Api::loaded();
    let host = TestHost::with_answer(md5(EICAR), KSN_VERDICT_TRUSTED);
    let mut table = host.table();
    table.events_since = None;
    {
        let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();
        host.refuse_writes.store(true, Ordering::SeqCst);
        let took_effect = task.set_local(WITHDRAW).unwrap_err();
        assert_eq!(took_effect.kind, KSN_ERROR_STORAGE_ERROR);
        // Freed while storage refuses: the withdrawal was never recorded.
    }
    // Storage still refuses: nothing could show at the next start what this one lost.
    let refused = unsafe { Task::new(api, &table) }.err().unwrap();
    assert_eq!(refused.kind, KSN_ERROR_STORAGE_ERROR);
    assert!(
        refused.message.contains("keeps no events"),
        "{}",
        refused.message
    );
    host.refuse_writes.store(false, Ordering::SeqCst);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_license(KSN_LICENSE_VALID).unwrap();
    assert!(!accepted(&task), "the withdrawal is not undone");
    assert!(ended_unverified(&task));
    let start = task.start().unwrap_err();
    assert_eq!(start.kind, KSN_ERROR_STATEMENT_NOT_ACCEPTED);
    assert!(
        start.message.contains("confirm it again"),
        "{}",
        start.message
    );
    assert!(host.file_requests().is_empty());
    // Confirmed again, and freed cleanly: the next start trusts the journal.
    task.set_local(ACCEPT).unwrap();
    drop(task);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    assert!(accepted(&task));
}

#[test]
fn a_failing_events_since_is_never_taken_as_nothing_waiting() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    {
        let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();
        host.refuse_writes.store(true, Ordering::SeqCst);
        task.set_local(WITHDRAW).unwrap_err();
    }
    host.refuse_writes.store(false, Ordering::SeqCst);
    // The host's callback fails (a C++ one that threw): it cannot say what waited.
    host.shared.0.forget_events.store(true, Ordering::SeqCst);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    assert!(!accepted(&task));
    assert!(ended_unverified(&task));
}

#[test]
fn an_event_the_host_failed_to_take_is_logged_with_its_count_and_changes_nothing_else() {
    let api = Api::loaded();
    capture_log(api);
    let host = TestHost::default();
    let table = host.table();
    let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();
    host.emit_fails.store(true, Ordering::SeqCst);
    task.set_local(WITHDRAW).unwrap();
    assert!(!accepted(&task), "the withdrawal took effect");
    assert_eq!(task.status().state, KSN_STATE_STOPPED);
    assert!(
        LOG.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("emit_event failed for")
                && l.contains("event(s)")
                && l.contains("the event store threw")),
        "{:?}",
        LOG.lock().unwrap()
    );
    assert!(task
        .log()
        .iter()
        .any(|e| e["type"] == "consent_changed" && e["accepted"] == false));
}

#[test]
fn no_start_before_the_licence_is_reported_and_a_refused_scheduled_start_says_why() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    {
        let task = unsafe { Task::new(api, &table) }.unwrap();
        task.set_license(KSN_LICENSE_VALID).unwrap();
        task.set_local(ACCEPT).unwrap();
    }
    let task = unsafe { Task::new(api, &table) }.unwrap();
    let early = task.start().unwrap_err();
    assert_eq!(early.kind, KSN_ERROR_INVALID_STATE);
    assert!(early.message.contains("set_license"), "{}", early.message);
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}, "task": {"schedule": "at_application_start"}}"#)
        .unwrap();
    let (result, after) = task.control(control_call(
        KSN_OPERATION_APPLICATION_STARTED,
        "",
        false,
        0,
    ));
    let refused = result.unwrap_err();
    assert_eq!(refused.kind, KSN_ERROR_STATEMENT_NOT_ACCEPTED);
    assert!(
        refused
            .message
            .starts_with("the scheduled start was refused"),
        "{}",
        refused.message
    );
    assert_eq!(after.state, KSN_STATE_STOPPED);
}

#[test]
fn a_lookup_that_cannot_be_answered_says_why() {
    let api = Api::loaded();
    let host = TestHost::with_answer(md5(EICAR), KSN_VERDICT_TRUSTED);
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();
    let answer = task.check_file(md5(EICAR)).unwrap();
    assert_eq!(
        (answer.verdict, answer.source),
        (KSN_VERDICT_UNAVAILABLE, KSN_SOURCE_NOT_RUNNING)
    );
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_local(
        r#"{"data_handling": {"ksn_statement_accepted": true, "send_scanned_files_data": false}}"#,
    )
    .unwrap();
    task.start().unwrap();
    let answer = task.check_file(md5(EICAR)).unwrap();
    assert_eq!(
        (answer.verdict, answer.source),
        (KSN_VERDICT_UNKNOWN, KSN_SOURCE_NOT_CONSENTED)
    );
    task.set_local(r#"{"data_handling": {"send_scanned_files_data": true}}"#)
        .unwrap();
    for service in [plugin_api::Service::PROXY, plugin_api::Service::GLOBAL] {
        host.shared.set_link(service, false, 1);
    }
    let answer = task.check_file(md5(EICAR)).unwrap();
    assert_eq!(
        (answer.verdict, answer.source),
        (KSN_VERDICT_UNAVAILABLE, KSN_SOURCE_SERVICE_DOWN)
    );
}

#[test]
fn a_path_that_is_not_utf8_gets_its_verdict_and_the_host_gets_its_bytes_back() {
    let api = Api::loaded();
    let host = TestHost::with_answer(md5(EICAR), KSN_VERDICT_UNTRUSTED);
    let table = host.table();
    let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();
    let path: &'static [u8] = b"/srv/caf\xe9/eicar.com";
    let mut query = object_query(md5(EICAR), 17, "");
    query.path = path.as_ptr().cast();
    query.path_len = path.len();
    let answer = task.check(&query).unwrap();
    assert_eq!(
        (answer.verdict, answer.action, answer.object),
        (KSN_VERDICT_UNTRUSTED, KSN_ACTION_DELETED, 17)
    );
    assert_eq!(host.delete_paths.lock().unwrap()[0], path);
    let event = host
        .events()
        .into_iter()
        .find(|e| e["type"] == "object_untrusted")
        .unwrap();
    assert_eq!(event["path"], r"/srv/caf\xe9/eicar.com");
    // Handle 0 is no object: the checksum's action, and the path only logged.
    let nameless = object_query(md5(EICAR), 0, "/srv/other.com");
    let answer = task.check(&nameless).unwrap();
    assert_eq!((answer.action, answer.object), (KSN_ACTION_DELETED, 0));
    assert_eq!(host.deleted().last().unwrap().0, 0);
}
