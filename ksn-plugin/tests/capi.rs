//! The C API, loaded from the built cdylib as a C host loads it: the Private KSN story,
//! version skew both ways (a host table and structs shorter and longer than the plugin's),
//! contained panics, and bad input refused with a kind and a message, changing nothing.

mod c_host;

use std::{
    ffi::CStr,
    mem::{offset_of, size_of},
    ptr,
    sync::atomic::Ordering,
};

use c_host::*;
use ksn_plugin::capi::*;

const ACCEPT_LOCKED: &str = r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}}}}"#;
const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true}}"#;

fn limit(mb: u32) -> String {
    format!(r#"{{"task": {{"checksum_limit_mb": {mb}}}}}"#)
}

#[test]
fn the_plugin_says_who_it_is_and_describes_itself() {
    let api = Api::loaded();
    let mut info = KsnPluginInfo {
        struct_size: size_of::<KsnPluginInfo>() as u32,
        contract_minor: 0,
        name: ptr::null(),
        name_len: 0,
        version: ptr::null(),
        version_len: 0,
        contract_version: ptr::null(),
        contract_version_len: 0,
    };
    call(api, |e| unsafe { (api.plugin_info)(&mut info, e) }).unwrap();
    let text = |p: *const std::ffi::c_char, n: usize| unsafe {
        std::str::from_utf8(std::slice::from_raw_parts(p.cast::<u8>(), n)).unwrap()
    };
    assert_eq!(text(info.name, info.name_len), ksn_plugin::PLUGIN_NAME);
    assert_eq!(
        text(info.version, info.version_len),
        ksn_plugin::PLUGIN_VERSION
    );
    assert_eq!(
        text(info.contract_version, info.contract_version_len),
        plugin_api::CONTRACT_VERSION
    );
    assert_eq!(info.contract_minor, plugin_api::CONTRACT_MINOR);

    let json = document(api, |out, e| unsafe { (api.describe)(out, e) }).unwrap();
    let description: plugin_api::documents::PluginDescription =
        serde_json::from_str(&json).expect("describe answers the contract's document");
    assert!(description
        .settings
        .iter()
        .any(|s| s.path == "data_handling.ksn_statement_accepted"));

    let name = unsafe { CStr::from_ptr((api.error_kind_name)(KSN_ERROR_LICENSE_VIOLATION)) };
    assert_eq!(name.to_str().unwrap(), "license_violation");
}

#[test]
fn private_ksn_accepted_by_policy_then_switched_off_under_the_running_task() {
    let api = Api::loaded();
    let eicar = md5(EICAR);
    let host = TestHost::with_answer(eicar, KSN_VERDICT_UNTRUSTED);
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();

    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_private_ksn(true).unwrap();
    task.push_policy(ACCEPT_LOCKED).unwrap();
    task.start().unwrap();
    let status = task.status();
    assert_eq!(
        (status.state, status.network, status.private_ksn),
        (KSN_STATE_RUNNING, KSN_SERVICE_PRIVATE, true)
    );

    let answer = task.check_file(eicar).unwrap();
    assert_eq!(
        (answer.verdict, answer.action, answer.source, answer.cached),
        (
            KSN_VERDICT_UNTRUSTED,
            KSN_ACTION_DELETED,
            KSN_SOURCE_KSN,
            false
        )
    );
    assert_eq!(host.deleted(), vec![(0, eicar)]);
    assert_eq!(host.file_requests(), vec![KSN_SERVICE_PRIVATE]);

    task.set_private_ksn(false).unwrap();
    let status = task.status();
    assert_eq!(
        (status.state, status.error, status.network),
        (
            KSN_STATE_FAILED,
            KSN_ERROR_LICENSE_VIOLATION,
            KSN_SERVICE_NONE
        )
    );
    assert!(host
        .events()
        .iter()
        .any(|e| e["type"] == "task_error" && e["kind"] == "license_violation"));

    // Not running: the lookup fails open, and nothing is sent.
    let answer = task.check_file(eicar).unwrap();
    assert_eq!(answer.verdict, KSN_VERDICT_UNAVAILABLE);
    let refused = task.start().unwrap_err();
    assert_eq!(refused.kind, KSN_ERROR_STATEMENT_NOT_ACCEPTED);
    assert_eq!(refused.name, "statement_not_accepted");

    // The Global statement accepted locally: running again, through the proxy.
    task.set_local(ACCEPT).unwrap();
    task.start().unwrap();
    assert_eq!(task.status().network, KSN_SERVICE_PROXY);
    let answer = task
        .check_file(md5("00112233445566778899aabbccddeeff"))
        .unwrap();
    assert_eq!(answer.verdict, KSN_VERDICT_UNKNOWN);
    assert_eq!(host.file_requests().last(), Some(&KSN_SERVICE_PROXY));
    let consents: Vec<(String, bool, String)> = task
        .log()
        .iter()
        .filter(|e| e["type"] == "consent_changed")
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("statement"), e["accepted"] == true, text("source"))
        })
        .collect();
    let expected = [
        ("private_ksn", true, "policy"),
        ("private_ksn", false, "mode_change"),
        ("ksn", true, "local"),
    ]
    .map(|(s, a, src)| (s.to_string(), a, src.to_string()));
    assert_eq!(consents, expected);
}

#[test]
fn documents_pages_counters_and_the_rest_of_the_surface() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_local(ACCEPT).unwrap();
    call(api, |e| unsafe { (api.application_started)(task.ptr, e) }).unwrap();
    task.start().unwrap();
    task.check_file(md5(EICAR)).unwrap();
    assert!(task.check_file(md5(EICAR)).unwrap().cached);
    call(api, |e| unsafe { (api.purge_cache)(task.ptr, e) }).unwrap();
    assert!(!task.check_file(md5(EICAR)).unwrap().cached);
    host.shared.set_time(120_000);
    task.tick().unwrap();

    let url = "https://example.test/";
    let mut answer = KsnLookupAnswer {
        struct_size: size_of::<KsnLookupAnswer>() as u32,
        verdict: 99,
        action: 99,
        source: 99,
        cached: true,
        object: 99,
    };
    call(api, |e| unsafe {
        (api.check_url)(task.ptr, url.as_ptr().cast(), url.len(), &mut answer, e)
    })
    .unwrap();
    assert_eq!(answer.verdict, KSN_VERDICT_UNKNOWN);

    let settings = task.settings();
    assert_eq!(
        settings["settings"]["data_handling"]["ksn_statement_accepted"],
        true
    );
    let page = document(api, |out, e| unsafe {
        (api.log_page)(task.ptr, 0, 2, out, e)
    })
    .unwrap();
    let page: plugin_api::documents::LogPage = serde_json::from_str(&page).unwrap();
    assert_eq!(page.entries.len(), 2);
    let ledger = document(api, |out, e| unsafe { (api.ledger_json)(task.ptr, out, e) }).unwrap();
    let ledger: Vec<serde_json::Value> = serde_json::from_str(&ledger).unwrap();
    assert!(!ledger.is_empty(), "the lookups sent are in the ledger");
    let page = document(api, |out, e| unsafe {
        (api.ledger_page)(task.ptr, 0, 1, out, e)
    })
    .unwrap();
    let page: plugin_api::documents::LedgerPage = serde_json::from_str(&page).unwrap();
    assert_eq!(page.items.len(), 1);
    let counters = document(api, |out, e| unsafe {
        (api.counters_json)(task.ptr, out, e)
    })
    .unwrap();
    let _: plugin_api::documents::Counters = serde_json::from_str(&counters).unwrap();

    task.stop().unwrap();
    assert_eq!(task.status().state, KSN_STATE_STOPPED);
}

#[test]
fn settings_log_and_consent_survive_a_new_task_over_the_same_storage() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    {
        let task = unsafe { Task::new(api, &table) }.unwrap();
        task.set_local(ACCEPT).unwrap();
        task.set_local(&limit(7)).unwrap();
    }
    let task = unsafe { Task::new(api, &table) }.unwrap();
    let settings = task.settings();
    assert_eq!(settings["settings"]["task"]["checksum_limit_mb"], 7);
    assert_eq!(
        settings["settings"]["data_handling"]["ksn_statement_accepted"],
        true
    );
    assert!(task.log().len() >= 2);
}

/// A host built against an older header: its table ends before `storage_replace`. What
/// lies beyond its `struct_size` is never read (here: trap callbacks that count calls).
#[test]
fn an_older_host_s_shorter_table_works_without_the_later_callbacks() {
    let api = Api::loaded();
    let host = TestHost {
        max_entries: Some(16),
        ..TestHost::default()
    };
    let mut table = host.table();
    table.struct_size = offset_of!(KsnHost, storage_replace) as u32;
    table.storage_replace = Some(trapped_replace);
    table.log_retention = Some(trapped_retention);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_local(ACCEPT).unwrap();
    for i in 0..40 {
        task.set_local(&limit(1 + i)).unwrap();
    }
    task.start().unwrap();
    assert_eq!(host.trapped.load(Ordering::SeqCst), 0);
    // The default retention (no compaction yet) and no replacements: the journal grows.
    assert!(host.records() >= 40, "{} records", host.records());
    assert_eq!(host.replaced.load(Ordering::SeqCst), 0);
}

/// A table that has the slot but leaves it NULL is the same: here with a short retention,
/// so the plugin tries to compact, is told the host cannot, logs it and goes on.
#[test]
fn without_storage_replace_compaction_fails_as_with_a_rust_host_that_refuses() {
    let api = Api::loaded();
    capture_log(api);
    let host = TestHost {
        max_entries: Some(16),
        ..TestHost::default()
    };
    let mut table = host.table();
    table.storage_replace = None;
    let task = unsafe { Task::new(api, &table) }.unwrap();
    for i in 0..40 {
        task.set_local(&limit(1 + i)).unwrap();
    }
    assert!(host.records() >= 40, "{} records", host.records());
    assert!(LOG
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("not compacted: this host cannot replace records")));
    assert_eq!(task.settings()["settings"]["task"]["checksum_limit_mb"], 40);
}

#[test]
fn the_current_table_compacts_with_the_host_s_retention() {
    let api = Api::loaded();
    let host = TestHost {
        max_entries: Some(16),
        ..TestHost::default()
    };
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();
    // Compaction starts past twice the retention (32 records here).
    for i in 0..80 {
        task.set_local(&limit(1 + i)).unwrap();
    }
    assert!(host.replaced.load(Ordering::SeqCst) >= 2);
    assert!(host.records() <= 33, "{} records", host.records());
    drop(task);
    let task = unsafe { Task::new(api, &table) }.unwrap();
    assert_eq!(task.settings()["settings"]["task"]["checksum_limit_mb"], 80);
}

/// A host built against a newer header: its table and structs have fields this plugin
/// does not know. The plugin reads and writes only its own, and says so in `struct_size`.
#[test]
fn a_newer_host_s_longer_table_and_structs_work() {
    #[repr(C)]
    struct NewerHost {
        current: KsnHost,
        future_callback: Option<unsafe extern "C-unwind" fn()>,
        future_flags: u64,
    }
    #[repr(C)]
    struct NewerStatus {
        current: KsnStatus,
        future: u64,
    }
    #[repr(C)]
    struct NewerQuery {
        current: KsnFileQuery,
        future: [u8; 32],
    }

    let api = Api::loaded();
    let eicar = md5(EICAR);
    let host = TestHost::with_answer(eicar, KSN_VERDICT_UNTRUSTED);
    let mut table = NewerHost {
        current: host.table(),
        future_callback: None,
        future_flags: u64::MAX,
    };
    table.current.struct_size = size_of::<NewerHost>() as u32;
    let task = unsafe { Task::running(api, &table.current, ACCEPT) }.unwrap();

    let mut status = NewerStatus {
        current: KsnStatus {
            struct_size: size_of::<NewerStatus>() as u32,
            state: 99,
            error: 99,
            network: 99,
            license: 99,
            private_ksn: true,
        },
        future: 0xfeed,
    };
    call(api, |e| unsafe {
        (api.status)(task.ptr, &mut status.current, e)
    })
    .unwrap();
    assert_eq!(status.current.struct_size as usize, size_of::<KsnStatus>());
    assert_eq!(status.current.state, KSN_STATE_RUNNING);
    assert!(!status.current.private_ksn);
    assert_eq!(status.future, 0xfeed, "left as the host set it");

    let query = NewerQuery {
        current: KsnFileQuery {
            struct_size: size_of::<NewerQuery>() as u32,
            ..query(eicar)
        },
        future: [0xee; 32],
    };
    let mut answer = KsnLookupAnswer {
        struct_size: size_of::<KsnLookupAnswer>() as u32,
        verdict: 99,
        action: 99,
        source: 99,
        cached: false,
        object: 0,
    };
    call(api, |e| unsafe {
        (api.check_file)(task.ptr, &query.current, &mut answer, e)
    })
    .unwrap();
    assert_eq!(answer.verdict, KSN_VERDICT_UNTRUSTED);

    let mut error = error_slot();
    error.struct_size = (size_of::<KsnError>() + 16) as u32;
    let kind = unsafe { (api.start)(ptr::null(), &mut error) };
    assert_eq!(kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(error.struct_size as usize, size_of::<KsnError>());
    unsafe { (api.error_free)(&mut error) };
}

#[test]
fn bad_input_gets_a_kind_and_a_message_and_changes_nothing() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();

    // Creating a task.
    let no_host = unsafe { Task::new(api, ptr::null()) }.err().unwrap();
    assert_eq!(no_host.kind, KSN_ERROR_INVALID_ARGUMENT);
    assert!(no_host.message.contains("host"), "{}", no_host.message);
    let mut short = host.table();
    short.struct_size = 8;
    let short = unsafe { Task::new(api, &short) }.err().unwrap();
    assert!(short.message.contains("struct_size"), "{}", short.message);
    let mut missing = host.table();
    missing.now_ms = None;
    let missing = unsafe { Task::new(api, &missing) }.err().unwrap();
    assert!(missing.message.contains("now_ms"), "{}", missing.message);
    let mut out = ptr::NonNull::<KsnTask>::dangling().as_ptr();
    let kind = unsafe { (api.task_new)(ptr::null(), &mut out, ptr::null_mut()) };
    assert_eq!((kind, out), (KSN_ERROR_INVALID_ARGUMENT, ptr::null_mut()));
    let kind = unsafe { (api.task_new)(&table, ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(kind, KSN_ERROR_INVALID_ARGUMENT);

    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_local(ACCEPT).unwrap();
    let settings = task.settings();
    let records = host.records();

    // A null task, with and without an error slot.
    let null = call(api, |e| unsafe { (api.start)(ptr::null(), e) }).unwrap_err();
    assert_eq!(null.kind, KSN_ERROR_INVALID_ARGUMENT);
    assert!(null.message.contains("task"), "{}", null.message);
    assert_eq!(
        unsafe { (api.start)(ptr::null(), ptr::null_mut()) },
        KSN_ERROR_INVALID_ARGUMENT
    );

    // Documents: not UTF-8, a null pointer, malformed JSON.
    let bad = b"{\"data_handling\": {\"ksn_statement_accepted\": \xff}}";
    let utf8 = call(api, |e| unsafe {
        (api.set_local)(task.ptr, bad.as_ptr().cast(), bad.len(), e)
    })
    .unwrap_err();
    assert_eq!(utf8.kind, KSN_ERROR_INVALID_SETTINGS);
    assert!(utf8.message.contains("UTF-8"), "{}", utf8.message);
    let null_json = call(api, |e| unsafe {
        (api.push_policy)(task.ptr, ptr::null(), 5, e)
    })
    .unwrap_err();
    assert_eq!(null_json.kind, KSN_ERROR_INVALID_ARGUMENT);
    let malformed = task.push_policy("{\"settings\": ").unwrap_err();
    assert_eq!(malformed.kind, KSN_ERROR_INVALID_SETTINGS);
    let unknown = task
        .set_local(r#"{"task": {"no_such_key": 1}}"#)
        .unwrap_err();
    assert_eq!(unknown.kind, KSN_ERROR_INVALID_SETTINGS);
    assert!(
        unknown.message.contains("no_such_key"),
        "{}",
        unknown.message
    );

    // Lookups: a null query or answer, a query too short, a URL that is not UTF-8.
    let mut answer = KsnLookupAnswer {
        struct_size: size_of::<KsnLookupAnswer>() as u32,
        verdict: 99,
        action: 99,
        source: 99,
        cached: false,
        object: 0,
    };
    let e = call(api, |e| unsafe {
        (api.check_file)(task.ptr, ptr::null(), &mut answer, e)
    })
    .unwrap_err();
    assert!(e.message.contains("query"), "{}", e.message);
    let e = call(api, |e| unsafe {
        (api.check_file)(task.ptr, &query(md5(EICAR)), ptr::null_mut(), e)
    })
    .unwrap_err();
    assert!(e.message.contains("answer"), "{}", e.message);
    let mut old_query = query(md5(EICAR));
    old_query.struct_size = 4;
    let e = call(api, |e| unsafe {
        (api.check_file)(task.ptr, &old_query, &mut answer, e)
    })
    .unwrap_err();
    assert!(e.message.contains("struct_size"), "{}", e.message);
    let url = b"https://\xc3\x28.test/";
    let e = call(api, |e| unsafe {
        (api.check_url)(task.ptr, url.as_ptr().cast(), url.len(), &mut answer, e)
    })
    .unwrap_err();
    assert_eq!(e.kind, KSN_ERROR_INVALID_ARGUMENT);
    assert_eq!(answer.verdict, 99, "the answer is left alone");

    // An out struct too short for this plugin's first version is not written.
    let mut status = KsnStatus {
        struct_size: 8,
        state: 99,
        error: 99,
        network: 99,
        license: 99,
        private_ksn: true,
    };
    let e = call(api, |e| unsafe { (api.status)(task.ptr, &mut status, e) }).unwrap_err();
    assert!(e.message.contains("struct_size"), "{}", e.message);
    assert_eq!((status.state, status.struct_size), (99, 8));
    let mut tiny_error = error_slot();
    tiny_error.struct_size = 4;
    let kind = unsafe { (api.start)(ptr::null(), &mut tiny_error) };
    assert_eq!(kind, KSN_ERROR_INVALID_ARGUMENT);
    assert!(tiny_error.message.is_null(), "nothing written");

    // Freeing is NULL-safe and idempotent.
    unsafe {
        (api.string_free)(ptr::null_mut());
        (api.error_free)(ptr::null_mut());
        (api.task_free)(ptr::null_mut());
    }

    assert_eq!(task.settings(), settings, "nothing changed");
    // The two refusals the task saw (malformed JSON, an unknown key) are in its log, as
    // every refused operation is; those refused at the boundary never reached it.
    assert_eq!(host.records() - records, 2);
    let log = task.log();
    let refused: Vec<_> = log[log.len() - 2..].iter().map(|e| &e["type"]).collect();
    assert_eq!(refused, ["operation_refused", "operation_refused"]);
    assert_eq!(task.status().state, KSN_STATE_STOPPED);
}

/// Values the host answers that the plugin does not know are taken as the Rust path takes
/// them: unknown verdicts are `unknown`, and a reason that is not UTF-8 is kept readable.
#[test]
fn garbage_from_the_host_is_taken_safely() {
    let api = Api::loaded();
    let host = TestHost::default();
    let table = host.table();
    let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();

    host.odd_values.store(true, Ordering::SeqCst);
    let answer = task.check_file(md5(EICAR)).unwrap();
    assert_eq!(answer.verdict, KSN_VERDICT_UNKNOWN);
    host.odd_values.store(false, Ordering::SeqCst);

    host.refuse_writes.store(true, Ordering::SeqCst);
    let refused = task.set_local(&limit(9)).unwrap_err();
    assert_eq!(refused.kind, KSN_ERROR_STORAGE_ERROR);
    assert!(
        refused.message.contains("disk \u{fffd} full"),
        "{}",
        refused.message
    );
    host.refuse_writes.store(false, Ordering::SeqCst);
    task.set_local(&limit(9)).unwrap();
}

/// A panic in the plugin (here: in the host's clock, unwinding through the task) is
/// contained at the boundary, and the task stays failed as under the Rust contract. The
/// plugin is linked into this binary for it: a panic of this binary's runtime is a foreign
/// exception to the cdylib's own, which it cannot catch.
#[test]
fn a_panic_is_contained_and_the_task_stays_failed() {
    let api = Api::linked();
    let host = TestHost::default();
    let table = host.table();
    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.set_local(ACCEPT).unwrap();

    host.clock_panics.store(true, Ordering::SeqCst);
    let panicked = task.start().unwrap_err();
    assert_eq!(panicked.kind, KSN_ERROR_PLUGIN_PANIC);
    assert!(
        panicked.message.contains("clock exploded"),
        "{}",
        panicked.message
    );
    host.clock_panics.store(false, Ordering::SeqCst);

    let status = task.status();
    assert_eq!(
        (status.state, status.error),
        (KSN_STATE_FAILED, KSN_ERROR_PLUGIN_PANIC)
    );
    let after = task.stop().unwrap_err();
    assert_eq!(after.kind, KSN_ERROR_PLUGIN_PANIC);
    assert!(
        after.message.contains("failed after a panic"),
        "{}",
        after.message
    );
    drop(task);

    // Storage is intact: a new task over it recovers.
    let task = unsafe { Task::new(api, &table) }.unwrap();
    task.set_license(KSN_LICENSE_VALID).unwrap();
    task.start().unwrap();
    assert_eq!(task.status().state, KSN_STATE_RUNNING);
}

#[test]
fn a_task_is_used_from_many_threads_at_once() {
    let api = Api::loaded();
    let host = TestHost::with_answer(md5(EICAR), KSN_VERDICT_TRUSTED);
    let table = host.table();
    let task = unsafe { Task::running(api, &table, ACCEPT) }.unwrap();
    struct Shared(*mut KsnTask);
    // SAFETY: the C API's task may be called from any thread.
    unsafe impl Sync for Shared {}
    let shared = Shared(task.ptr);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let shared = &shared;
            s.spawn(move || {
                for _ in 0..200 {
                    let mut answer = KsnLookupAnswer {
                        struct_size: size_of::<KsnLookupAnswer>() as u32,
                        verdict: 99,
                        action: 99,
                        source: 99,
                        cached: false,
                        object: 0,
                    };
                    let kind = unsafe {
                        (api.check_file)(shared.0, &query(md5(EICAR)), &mut answer, ptr::null_mut())
                    };
                    assert_eq!((kind, answer.verdict), (KSN_OK, KSN_VERDICT_TRUSTED));
                }
            });
        }
    });
    assert_eq!(host.file_requests().len(), 1, "one request, then the cache");
}
