//! What a C++ management server builds on, through the loaded cdylib: the object an action
//! applies to, what a control call caused, the documents' schemas, the host's mistakes
//! answered as such, and a host built against the previous header (contract 1.2.0) still
//! loading and running this plugin.

mod c_host;

use std::{mem::size_of, ptr};

use c_host::*;
use ksn_plugin::capi::*;

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

fn running(api: &'static Api, table: &KsnHost) -> Task<'static> {
    unsafe { Task::running(api, table, ACCEPT) }.unwrap()
}

#[test]
fn an_action_applies_to_the_object_the_lookup_named() {
    let api = Api::loaded();
    let eicar = md5(EICAR);
    let host = TestHost::with_answer(eicar, KSN_VERDICT_UNTRUSTED);
    let table = host.table();
    let task = running(api, &table);

    let answer = task
        .check(&object_query(eicar, 41, "/srv/share/eicar.com"))
        .unwrap();
    assert_eq!((answer.action, answer.object), (KSN_ACTION_DELETED, 41));
    // Another file with the same checksum: cached, and that file is deleted.
    let again = task.check(&object_query(eicar, 42, "")).unwrap();
    assert!(again.cached);
    assert_eq!((again.action, again.object), (KSN_ACTION_DELETED, 42));
    assert_eq!(host.deleted(), vec![(41, eicar), (42, eicar)]);
    // The callback received the whole query: handle, path and all.
    assert!(host
        .delete_query_sizes
        .lock()
        .unwrap()
        .iter()
        .all(|s| *s as usize == size_of::<KsnFileQuery>()));
    let events: Vec<serde_json::Value> = host
        .events()
        .into_iter()
        .filter(|e| e["type"] == "object_untrusted")
        .collect();
    assert_eq!(events[0]["object"], 41);
    assert_eq!(events[0]["path"], "/srv/share/eicar.com");

    // The host's delete fails: the answer says so, and the event says why.
    *host.shared.0.delete_fails.lock().unwrap() = Some("sharing violation".into());
    let failed = task
        .check(&object_query(eicar, 43, "C:\\locked.exe"))
        .unwrap();
    assert_eq!(
        (failed.action, failed.object),
        (KSN_ACTION_DELETE_FAILED, 43)
    );
    let event = host
        .events()
        .into_iter()
        .rfind(|e| e["type"] == "object_untrusted")
        .unwrap();
    assert_eq!(
        (&event["action"], &event["reason"]),
        (&"delete_failed".into(), &"sharing violation".into())
    );
}

#[test]
fn a_control_call_answers_what_it_caused() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();
    let op = |operation, document: &str, enabled, license| {
        task.control(control_call(operation, document, enabled, license))
    };
    op(KSN_OPERATION_SET_LICENSE, "", false, KSN_LICENSE_VALID)
        .0
        .unwrap();
    op(KSN_OPERATION_SET_PRIVATE_KSN, "", true, 0).0.unwrap();
    let policy = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"private_ksn": 1}}}}}"#;
    op(KSN_OPERATION_PUSH_POLICY, policy, false, 0).0.unwrap();
    let (started, after) = op(KSN_OPERATION_START, "", false, 0);
    started.unwrap();
    assert_eq!(after.state, KSN_STATE_RUNNING);

    // The switch-off answers OK, and the status after it says the task failed.
    let (result, after) = op(KSN_OPERATION_SET_PRIVATE_KSN, "", false, 0);
    result.unwrap();
    assert_eq!(
        (after.state, after.error, after.struct_size as usize),
        (
            KSN_STATE_FAILED,
            KSN_ERROR_LICENSE_VIOLATION,
            size_of::<KsnStatus>()
        )
    );
    // A refused call: its error, and the status it left.
    let (refused, after) = op(KSN_OPERATION_START, "", false, 0);
    assert_eq!(refused.unwrap_err().kind, KSN_ERROR_STATEMENT_NOT_ACCEPTED);
    assert_eq!(after.state, KSN_STATE_FAILED);
    // The host's mistakes: an operation or a licence the contract does not know.
    // They change nothing and leave `after` as the host set it.
    let (unknown, after) = op(99, "", false, 0);
    assert_eq!(unknown.unwrap_err().kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(after.state, 99);
    let (licence, after) = op(KSN_OPERATION_SET_LICENSE, "", false, 77);
    assert_eq!(licence.unwrap_err().kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(after.state, 99);
    assert_eq!(task.status().license, KSN_LICENSE_VALID);
    // No status wanted.
    let call_ = control_call(KSN_OPERATION_STOP, "", false, 0);
    call(api, |e| unsafe {
        (api.control)(task.ptr, &call_, ptr::null_mut(), e)
    })
    .unwrap();
    assert_eq!(task.status().state, KSN_STATE_STOPPED);
}

#[test]
fn a_restored_task_boots_in_the_documented_order() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    {
        let task = unsafe { Task::new(api, &table) }.unwrap();
        task.set_license(KSN_LICENSE_VALID).unwrap();
        task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}, "task": {"schedule": "at_application_start"}}"#)
            .unwrap();
    }
    // Created again: the licence last reported is known (the status says it), but no
    // start is made under it before the host reports it in this session: the boot order
    // is enforced, and the answer names it.
    let task = unsafe { Task::new(api, &table) }.unwrap();
    assert_eq!(task.status().license, KSN_LICENSE_VALID);
    let started = || {
        task.control(control_call(
            KSN_OPERATION_APPLICATION_STARTED,
            "",
            false,
            0,
        ))
    };
    let (result, after) = started();
    let refused = result.unwrap_err();
    assert_eq!(refused.kind, KSN_ERROR_INVALID_STATE);
    assert!(
        refused.message.contains("the boot order"),
        "{}",
        refused.message
    );
    assert_eq!(after.state, KSN_STATE_STOPPED);
    assert_eq!(task.start().unwrap_err().kind, KSN_ERROR_INVALID_STATE);
    assert!(host.file_requests().is_empty());
    task.set_license(KSN_LICENSE_VALID).unwrap();
    let (result, after) = started();
    result.unwrap();
    assert_eq!(after.state, KSN_STATE_RUNNING);
    // A scheduled start refused says so: the licence does not cover KSN.
    task.stop().unwrap();
    task.set_license(KSN_LICENSE_NO_KSN).unwrap();
    let (result, after) = started();
    let refused = result.unwrap_err();
    assert_eq!(refused.kind, KSN_ERROR_LICENSE_VIOLATION);
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
fn every_document_has_its_schema_and_an_unknown_name_is_the_host_s_mistake() {
    let api = Api::loaded();
    let schema = |name: &str| {
        document(api, |out, e| unsafe {
            (api.document_schema)(name.as_ptr().cast(), name.len(), out, e)
        })
    };
    for name in [
        "policy",
        "local_change",
        "settings",
        "event",
        "log",
        "log_page",
        "ledger",
        "ledger_page",
        "counters",
        "description",
    ] {
        let text = schema(name).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(parsed.is_object(), "{name}");
    }
    let event: serde_json::Value = serde_json::from_str(&schema("event").unwrap()).unwrap();
    let types: Vec<&str> = event["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.pointer("/properties/type/const")?.as_str())
        .collect();
    assert!(types.contains(&"object_untrusted") && types.contains(&"consent_changed"));
    let policy: serde_json::Value = serde_json::from_str(&schema("policy").unwrap()).unwrap();
    assert_eq!(
        policy["title"], "KSN Usage task: policy",
        "the plugin's own policy schema"
    );
    let unknown = schema("logs").unwrap_err();
    assert_eq!(unknown.kind, KSN_ERROR_INVALID_ARGUMENT);
    assert!(
        unknown.message.contains("ledger_page"),
        "{}",
        unknown.message
    );
}

#[test]
fn the_host_s_mistakes_are_invalid_argument_and_change_nothing() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    let task = running(api, &table);
    let records = host.records();
    let mut answer = KsnLookupAnswer {
        struct_size: size_of::<KsnLookupAnswer>() as u32,
        verdict: 99,
        action: 99,
        source: 99,
        cached: false,
        object: 0,
    };
    for url in [
        &b""[..],
        b"no scheme",
        b"http://a.test/\0x",
        b"http:///nohost",
    ] {
        let e = call(api, |e| unsafe {
            (api.check_url)(task.ptr, url.as_ptr().cast(), url.len(), &mut answer, e)
        })
        .unwrap_err();
        assert_eq!(e.kind, KSN_ERROR_INVALID_ARGUMENT, "{url:?}");
        assert_eq!(e.name, "invalid_argument");
    }
    assert!(
        host.shared.0.received.lock().unwrap().is_empty(),
        "nothing sent"
    );
    let e = call(api, |e| unsafe { (api.set_license)(task.ptr, 1000, e) }).unwrap_err();
    assert_eq!(e.kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(task.status().license, KSN_LICENSE_VALID, "unchanged");

    // An error slot the plugin cannot write: the call is refused and does nothing.
    let mut tiny = error_slot();
    tiny.struct_size = 4;
    let withdraw = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;
    let kind = unsafe {
        (api.set_local)(
            task.ptr,
            withdraw.as_ptr().cast(),
            withdraw.len(),
            &mut tiny,
        )
    };
    assert_eq!(kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(task.status().state, KSN_STATE_RUNNING, "nothing was done");
    assert_eq!(host.records(), records);
    let misaligned = (&mut tiny as *mut KsnError)
        .cast::<u8>()
        .wrapping_add(1)
        .cast::<KsnError>();
    assert_eq!(
        unsafe { (api.start)(task.ptr, misaligned) },
        KSN_ERROR_INVALID_ARGUMENT
    );

    // A second logger: the first stays, and the call says so.
    capture_log(api);
    let sink = KsnLogSink {
        struct_size: size_of::<KsnLogSink>() as u32,
        context: ptr::null_mut(),
        log: None,
        max_level: KSN_LOG_OFF,
    };
    let e = call(api, |e| unsafe { (api.install_logger)(&sink, e) }).unwrap_err();
    assert_eq!(e.kind, KSN_ERROR_INVALID_ARGUMENT, "a NULL log callback");
    let sink = KsnLogSink {
        log: log_callback(),
        ..sink
    };
    let e = call(api, |e| unsafe { (api.install_logger)(&sink, e) }).unwrap_err();
    assert_eq!(e.kind, KSN_ERROR_INVALID_STATE);
    assert!(e.message.contains("already installed"), "{}", e.message);
}

/// A host built against the previous header (contract 1.2.0): a table without
/// `events_since`, queries without the object's reference, answers without it.
#[test]
fn a_host_built_against_the_previous_header_still_runs_the_plugin() {
    const TABLE_1_2: u32 = 112;
    const QUERY_1_2: u32 = 32;
    const ANSWER_1_2: u32 = 20;
    assert_eq!(
        std::mem::offset_of!(KsnHost, events_since),
        TABLE_1_2 as usize
    );
    assert_eq!(
        std::mem::offset_of!(KsnFileQuery, object),
        QUERY_1_2 as usize
    );

    let api = Api::loaded();
    let eicar = md5(EICAR);
    let host = TestHost::with_answer(eicar, KSN_VERDICT_UNTRUSTED);
    let mut table = host.table();
    table.struct_size = TABLE_1_2;
    table.events_since = Some(trapped_events_since);
    let task = running(api, &table);
    let mut query = object_query(eicar, 41, "/ignored");
    query.struct_size = QUERY_1_2;
    let mut answer = KsnLookupAnswer {
        struct_size: ANSWER_1_2,
        verdict: 99,
        action: 99,
        source: 99,
        cached: false,
        object: 0xdead,
    };
    call(api, |e| unsafe {
        (api.check_file)(task.ptr, &query, &mut answer, e)
    })
    .unwrap();
    assert_eq!(
        (answer.verdict, answer.action, answer.struct_size),
        (KSN_VERDICT_UNTRUSTED, KSN_ACTION_DELETED, ANSWER_1_2)
    );
    assert_eq!(
        answer.object, 0xdead,
        "beyond the host's struct: left alone"
    );
    assert_eq!(
        host.deleted(),
        vec![(0, eicar)],
        "no object named: by checksum"
    );
    drop(task);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    assert_eq!(task.status().state, KSN_STATE_STOPPED);
    assert_eq!(
        host.trapped.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a callback beyond the table's size is never called"
    );
}
