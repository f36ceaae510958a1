//! The task's functions, one per method of the Rust contract's `KsnTask`.
//!
//! Each answers `KSN_OK` or an error kind (then described in `error`, when the host passes
//! one). Every argument is checked before the task is touched, so a call refused for its
//! arguments changes nothing. All may be called from any thread, concurrently, except
//! `ksn_task_free`.

use std::{
    ffi::c_char,
    mem::size_of,
    panic::{catch_unwind, AssertUnwindSafe},
    ptr,
};

use plugin_api::{
    CallOutcome, ControlCall, ErrorKind, FileQuery, LicenseState, LookupAnswer, Operation,
    TaskStatus,
};

use crate::core::host::HostObject;

use super::{
    call::{contained, Failure},
    handle::{with_handle, with_task, KsnTask},
    host::CHost,
    sized::{bytes, check_in, read_in, text, ArgError, Out},
    strings::string,
    types::{
        KsnCall, KsnError, KsnErrorKind, KsnFileQuery, KsnHost, KsnLicense, KsnLookupAnswer,
        KsnStatus, KsnString, KSN_OK,
    },
};

/// A settings document from the host: text that is not UTF-8 is a malformed document.
unsafe fn document<'a>(json: *const c_char, len: usize) -> Result<&'a str, ArgError> {
    text(json, len, "the document", ErrorKind::INVALID_SETTINGS)
}

/// Writes a document the task answered to the host's `out`, checked before the task runs.
unsafe fn document_out(
    out: *mut KsnString,
    body: impl FnOnce() -> Result<String, Failure>,
) -> Result<(), Failure> {
    let slot = Out::new(out, "out")?;
    slot.write(string(&body()?));
    Ok(())
}

fn c_answer(answer: LookupAnswer, object: u64) -> KsnLookupAnswer {
    KsnLookupAnswer {
        struct_size: size_of::<KsnLookupAnswer>() as u32,
        verdict: answer.verdict.0.into(),
        action: answer.action.0.into(),
        source: answer.source.0.into(),
        cached: answer.cached,
        object,
    }
}

/// A vocabulary value from the host: one above the contract's range is not one it knows.
fn known_value(value: u32, what: &'static str) -> Result<u8, ArgError> {
    u8::try_from(value).map_err(|_| ArgError::new(what, "is not a value this contract knows"))
}

fn c_status(status: TaskStatus) -> KsnStatus {
    KsnStatus {
        struct_size: size_of::<KsnStatus>() as u32,
        state: status.state.0.into(),
        error: status
            .error
            .into_option()
            .map_or(KSN_OK, |kind| kind.0.into()),
        network: status.network.0.into(),
        license: status.license.0.into(),
        private_ksn: status.private_ksn,
    }
}

/// Creates a task over the host's callback table, restoring its state from the host's
/// storage; `*task` is the new task, or NULL on failure. The plugin copies the table; the
/// callbacks and `context` must stay valid until `ksn_task_free`.
///
/// # Safety
///
/// `host` points to a `KsnHost` of its `struct_size`; `task` to a writable pointer;
/// `error` is NULL or a `KsnError` of its `struct_size`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_new(
    host: *const KsnHost,
    task: *mut *mut KsnTask,
    error: *mut KsnError,
) -> KsnErrorKind {
    contained(error, "ksn_task_new", || {
        if task.is_null() || !task.is_aligned() {
            return Err(ArgError::new("task", "is a null or misaligned pointer").into());
        }
        ptr::write(task, ptr::null_mut());
        let table = read_in(host, "host")?;
        let created = KsnTask::new(CHost::new(&table)?)?;
        ptr::write(task, Box::into_raw(Box::new(created)));
        Ok(())
    })
}

/// Frees a task (NULL is nothing to do). No call on it may be running or follow.
///
/// # Safety
///
/// `task` is NULL or a task `ksn_task_new` created, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_free(task: *mut KsnTask) {
    if task.is_null() || !task.is_aligned() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(task))));
}

/// Replaces the policy (`{"settings": {section: {key: value | {"value": v, "locked": b}}}}`).
/// Validated whole; any error changes nothing.
///
/// # Safety
///
/// `task` is a live task; `json` points to `len` bytes; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_push_policy(
    task: *const KsnTask,
    json: *const c_char,
    len: usize,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_push_policy", |t| {
        Ok(t.push_policy(document(json, len)?)?)
    })
}

/// A local change (`{section: {key: value}}`). Validated whole; any error changes nothing.
///
/// # Safety
///
/// As for `ksn_task_push_policy`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_set_local(
    task: *const KsnTask,
    json: *const c_char,
    len: usize,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_set_local", |t| {
        Ok(t.set_local(document(json, len)?)?)
    })
}

/// The Administration Server says whether Private KSN is in use.
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_set_private_ksn(
    task: *const KsnTask,
    enabled: bool,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_set_private_ksn", |t| {
        Ok(t.set_private_ksn(enabled)?)
    })
}

/// The licence changed (`KSN_LICENSE_*`; a value the contract does not know is refused
/// with `KSN_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_set_license(
    task: *const KsnTask,
    license: KsnLicense,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_set_license", |t| {
        Ok(t.set_license(LicenseState(known_value(license, "license")?))?)
    })
}

/// The application (host) has started: the task starts itself if its schedule says so.
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_application_started(
    task: *const KsnTask,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_application_started", |t| {
        Ok(t.application_started()?)
    })
}

/// Starts the task (refused without the statement of the current mode, or with a licence
/// that does not cover KSN).
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_start(
    task: *const KsnTask,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_start", |t| Ok(t.start()?))
}

/// Stops the task; queued data is discarded.
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_stop(task: *const KsnTask, error: *mut KsnError) -> KsnErrorKind {
    with_task(task, error, "ksn_task_stop", |t| Ok(t.stop()?))
}

/// State, error, the service the next request goes to, mode and licence. After a panic:
/// failed with `KSN_ERROR_PLUGIN_PANIC`.
///
/// # Safety
///
/// `task` is a live task; `status` a `KsnStatus` of its `struct_size`; `error` is NULL or
/// a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_status(
    task: *const KsnTask,
    status: *mut KsnStatus,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_handle(task, error, "ksn_task_status", |t| {
        let slot = Out::new(status, "status")?;
        slot.write(c_status(t.status()));
        Ok(())
    })
}

/// File reputation for the application's other tasks, about `query->object`. A cached
/// trusted or unknown answer allocates nothing; a cached untrusted one writes one record,
/// emits `object_untrusted` and calls `backup_and_delete` with this query (when deletion
/// is on), every time it is asked: each call is a detection of that object.
///
/// # Safety
///
/// `task` is a live task; `query` a `KsnFileQuery` and `answer` a `KsnLookupAnswer`, each
/// of its `struct_size`; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_check_file(
    task: *const KsnTask,
    query: *const KsnFileQuery,
    answer: *mut KsnLookupAnswer,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_check_file", |t| {
        let size = check_in(query, "query")?;
        let slot = Out::new(answer, "answer")?;
        // First-version fields, read in place: the checksum moves as one 16-byte word, as
        // the core reads it (a copy in narrower pieces stalls that read).
        let file = FileQuery {
            md5: ptr::read(ptr::addr_of!((*query).md5)),
            size_bytes: ptr::read(ptr::addr_of!((*query).size_bytes)),
        };
        // The object's reference (1.3.0), when the host's struct holds it. A path is the
        // host's bytes, UTF-8 or not (a Linux path need not be): the lookup gets its
        // verdict, the log shows the path escaped, and the host gets its bytes back.
        let object = if size >= size_of::<KsnFileQuery>() {
            let handle = ptr::read(ptr::addr_of!((*query).object));
            let len = ptr::read(ptr::addr_of!((*query).path_len));
            let path = match len {
                0 => &[][..],
                len => bytes(
                    ptr::read(ptr::addr_of!((*query).path)).cast::<u8>(),
                    len,
                    "query->path",
                )?,
            };
            (handle != 0 || !path.is_empty()).then_some(HostObject { handle, path })
        } else {
            None
        };
        let found = t.check_file_object(file, object);
        let object = object.map_or(0, |o| o.handle);
        slot.write_with(|| c_answer(found, object));
        Ok(())
    })
}

/// URL reputation for the application's other tasks. A URL that is empty, not UTF-8,
/// malformed (`scheme://host...`) or holds a NUL or another control character is refused
/// with `KSN_ERROR_INVALID_ARGUMENT` and sent nowhere.
///
/// # Safety
///
/// `task` is a live task; `url` points to `len` bytes; `answer` is a `KsnLookupAnswer` of
/// its `struct_size`; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_check_url(
    task: *const KsnTask,
    url: *const c_char,
    len: usize,
    answer: *mut KsnLookupAnswer,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_check_url", |t| {
        let url = text(url, len, "url", ErrorKind::INVALID_ARGUMENT)?;
        let slot = Out::new(answer, "answer")?;
        slot.write(c_answer(t.check_url(url)?, 0));
        Ok(())
    })
}

/// Time has passed on the host clock: periodic work (statistics batches), and the clock by
/// which cached verdicts expire. Call it regularly (every second, say).
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_tick(task: *const KsnTask, error: *mut KsnError) -> KsnErrorKind {
    with_task(task, error, "ksn_task_tick", |t| {
        t.tick();
        Ok(())
    })
}

/// Empties the verdict cache.
///
/// # Safety
///
/// `task` is a live task; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_purge_cache(
    task: *const KsnTask,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_purge_cache", |t| {
        t.purge_cache();
        Ok(())
    })
}

/// Effective settings, where each comes from, locks, and whether it applies now (JSON).
///
/// # Safety
///
/// `task` is a live task; `out` a `KsnString` of its `struct_size` (free it with
/// `ksn_string_free`); `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_settings_json(
    task: *const KsnTask,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_settings_json", |t| {
        document_out(out, || Ok(t.settings_json()))
    })
}

/// The task log: a JSON array of entries, oldest first.
///
/// # Safety
///
/// As for `ksn_task_settings_json`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_log_json(
    task: *const KsnTask,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_log_json", |t| {
        document_out(out, || Ok(t.task_log_json()?))
    })
}

/// At most `max` entries of the task log from `from_seq` on: a JSON page.
///
/// # Safety
///
/// As for `ksn_task_settings_json`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_log_page(
    task: *const KsnTask,
    from_seq: u64,
    max: u32,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_log_page", |t| {
        document_out(out, || Ok(t.task_log_page(from_seq, max)?))
    })
}

/// The outbound ledger: a JSON array of every item sent that is still kept, with the
/// consent that allowed it.
///
/// # Safety
///
/// As for `ksn_task_settings_json`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_ledger_json(
    task: *const KsnTask,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_ledger_json", |t| {
        document_out(out, || Ok(t.ledger_json()))
    })
}

/// At most `max` ledger items from `from_seq` on: a JSON page.
///
/// # Safety
///
/// As for `ksn_task_settings_json`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_ledger_page(
    task: *const KsnTask,
    from_seq: u64,
    max: u32,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_ledger_page", |t| {
        document_out(out, || Ok(t.ledger_page(from_seq, max)))
    })
}

/// The task's counters (a JSON object).
///
/// # Safety
///
/// As for `ksn_task_settings_json`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_counters_json(
    task: *const KsnTask,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_counters_json", |t| {
        document_out(out, || Ok(t.counters_json()))
    })
}

/// A control call, and the task's status as it ended, in `after` (NULL when the host does
/// not want it; else a `KsnStatus` of its `struct_size`), written also when the call
/// failed, except with `KSN_ERROR_INVALID_ARGUMENT`: the host's mistake changed nothing,
/// and `after` is left as the host set it. The calls that can change the state:
/// `push_policy` and `set_local` (a withdrawal stops the task), `set_private_ksn` and
/// `set_license` (the task fails), `application_started` (a scheduled start), `start`,
/// `stop`. So `set_private_ksn(false)` under a running task answers `KSN_OK` with `after`
/// saying failed (`KSN_ERROR_LICENSE_VIOLATION`).
///
/// # Safety
///
/// `task` is a live task; `call` a `KsnCall` of its `struct_size` whose `document` points
/// to `document_len` bytes; `after` is NULL or a `KsnStatus`; `error` is NULL or a
/// `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_task_control(
    task: *const KsnTask,
    call: *const KsnCall,
    after: *mut KsnStatus,
    error: *mut KsnError,
) -> KsnErrorKind {
    with_task(task, error, "ksn_task_control", |t| {
        let call = read_in(call, "call")?;
        let slot = if after.is_null() {
            None
        } else {
            Some(Out::new(after, "after")?)
        };
        let operation = Operation(known_value(call.operation, "call->operation")?);
        let takes_document = matches!(operation, Operation::PUSH_POLICY | Operation::SET_LOCAL);
        let document = if takes_document {
            document(call.document, call.document_len)?
        } else {
            ""
        };
        let outcome: CallOutcome = t.control(ControlCall {
            operation,
            document: document.into(),
            enabled: call.enabled != 0,
            license: LicenseState(known_value(call.license, "call->license")?),
        });
        let result = outcome.result.into_result();
        if let Some(slot) = slot {
            if !matches!(&result, Err(e) if e.kind == ErrorKind::INVALID_ARGUMENT) {
                slot.write(c_status(outcome.status));
            }
        }
        Ok(result?)
    })
}
