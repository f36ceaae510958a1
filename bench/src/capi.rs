//! The lookup path through the C API: a cache hit as a C host makes it, through the
//! library's exported `ksn_task_check_file` (looked up with `dlsym`), over an in-memory host
//! table; measured as `lookups::hit_ns` measures the ABI path.

use std::{
    ffi::{c_char, c_void},
    hint::black_box,
    mem::size_of,
    path::Path,
    ptr,
    sync::Mutex,
};

use ksn_plugin::capi::*;
use libloading::Library;

use crate::lookups::{files, ACCEPT};

/// The host's state: storage only (the clock stands still, as the ABI path's simulated
/// clock does while it is measured; every KSN service answers `unknown`).
#[derive(Default)]
struct Host {
    records: Mutex<Vec<Vec<u8>>>,
}

unsafe fn host<'a>(context: *mut c_void) -> &'a Host {
    &*context.cast_const().cast::<Host>()
}

unsafe extern "C-unwind" fn emit_event(_: *mut c_void, _: *const c_char, _: usize) {}

unsafe extern "C-unwind" fn now_ms(_: *mut c_void) -> u64 {
    0
}

unsafe extern "C-unwind" fn storage_append(
    context: *mut c_void,
    _key: *const c_char,
    _key_len: usize,
    record: *const u8,
    len: usize,
    _error: *const KsnSink,
) -> i32 {
    let record = std::slice::from_raw_parts(record, len).to_vec();
    host(context).records.lock().unwrap().push(record);
    0
}

unsafe extern "C-unwind" fn storage_records(
    context: *mut c_void,
    _key: *const c_char,
    _key_len: usize,
    records: *const KsnSink,
    _error: *const KsnSink,
) -> i32 {
    let sink = &*records;
    let Some(push) = sink.push else { return 1 };
    for record in host(context).records.lock().unwrap().iter() {
        push(sink.state, record.as_ptr(), record.len());
    }
    0
}

unsafe extern "C-unwind" fn local_file_verdict(
    _: *mut c_void,
    _: *const KsnFileQuery,
) -> KsnVerdict {
    KSN_VERDICT_UNKNOWN
}

unsafe extern "C-unwind" fn local_url_verdict(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
) -> KsnVerdict {
    KSN_VERDICT_UNKNOWN
}

unsafe extern "C-unwind" fn ksn_file(
    _: *mut c_void,
    _: KsnService,
    _: *const KsnFileQuery,
    _: u32,
    _reply: *mut KsnReply,
) -> KsnTransport {
    KSN_TRANSPORT_DELIVERED
}

unsafe extern "C-unwind" fn ksn_url(
    _: *mut c_void,
    _: KsnService,
    _: *const c_char,
    _: usize,
    _: u32,
    _reply: *mut KsnReply,
) -> KsnTransport {
    KSN_TRANSPORT_DELIVERED
}

unsafe extern "C-unwind" fn ksn_upload(
    _: *mut c_void,
    _: KsnService,
    _: KsnDataCategory,
    _: u32,
    _: u32,
    latency_ms: *mut u32,
) -> KsnTransport {
    *latency_ms = 0;
    KSN_TRANSPORT_DELIVERED
}

unsafe extern "C-unwind" fn backup_and_delete(
    _: *mut c_void,
    _: *const KsnFileQuery,
    _: *const KsnSink,
) -> i32 {
    0
}

fn table(host: &Host) -> KsnHost {
    KsnHost {
        struct_size: size_of::<KsnHost>() as u32,
        context: (host as *const Host).cast_mut().cast(),
        emit_event: Some(emit_event),
        now_ms: Some(now_ms),
        storage_append: Some(storage_append),
        storage_records: Some(storage_records),
        local_file_verdict: Some(local_file_verdict),
        local_url_verdict: Some(local_url_verdict),
        ksn_file: Some(ksn_file),
        ksn_url: Some(ksn_url),
        ksn_upload: Some(ksn_upload),
        backup_and_delete: Some(backup_and_delete),
        storage_replace: None,
        log_retention: None,
        events_since: None,
        emit_event_checked: None,
    }
}

fn error_slot() -> KsnError {
    KsnError {
        struct_size: size_of::<KsnError>() as u32,
        kind: KSN_OK,
        message: ptr::null_mut(),
        message_len: 0,
    }
}

/// The functions the measurement uses.
struct Api {
    free_error: PFN_ksn_error_free,
    task_new: PFN_ksn_task_new,
    task_free: PFN_ksn_task_free,
    set_license: PFN_ksn_task_set_license,
    set_local: PFN_ksn_task_set_local,
    start: PFN_ksn_task_start,
    check_file: PFN_ksn_task_check_file,
}

fn symbol<T: Copy>(library: &Library, name: &str) -> Result<T, String> {
    // SAFETY: `T` is the header's type of the function named.
    unsafe { library.get::<T>(name.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|e| format!("the plugin has no C API ({name}): {e}"))
}

impl Api {
    fn load(library: &Library) -> Result<Self, String> {
        Ok(Self {
            free_error: symbol(library, "ksn_error_free\0")?,
            task_new: symbol(library, "ksn_task_new\0")?,
            task_free: symbol(library, "ksn_task_free\0")?,
            set_license: symbol(library, "ksn_task_set_license\0")?,
            set_local: symbol(library, "ksn_task_set_local\0")?,
            start: symbol(library, "ksn_task_start\0")?,
            check_file: symbol(library, "ksn_task_check_file\0")?,
        })
    }

    /// The outcome of one call, its message read and freed.
    fn checked(
        &self,
        what: &str,
        call: impl FnOnce(*mut KsnError) -> KsnErrorKind,
    ) -> Result<(), String> {
        let mut error = error_slot();
        if call(&mut error) == KSN_OK {
            return Ok(());
        }
        // SAFETY: on failure the plugin filled the message.
        let message = unsafe {
            let text = std::slice::from_raw_parts(error.message.cast::<u8>(), error.message_len);
            let text = String::from_utf8_lossy(text).into_owned();
            (self.free_error)(&mut error);
            text
        };
        Err(format!("{what}: {message}"))
    }
}

/// A running task created through the C API, with one file in its cache: `hit` looks it
/// up again, as a C host would.
pub struct CapiLookup {
    api: Api,
    // Boxed so the table's context pointer stays valid; both outlive the task.
    _host: Box<Host>,
    _table: Box<KsnHost>,
    task: *mut KsnTask,
    query: KsnFileQuery,
    answer: KsnLookupAnswer,
}

impl CapiLookup {
    pub fn new(plugin_path: &Path) -> Result<Self, String> {
        // SAFETY: loading the plugin runs its initialisers, which have no preconditions.
        let library = unsafe { Library::new(plugin_path) }
            .map_err(|e| format!("{}: {e}", plugin_path.display()))?;
        let api = Api::load(&library)?;
        // A library is never unloaded (as the ABI loader keeps it): its logger and statics
        // may still be in use.
        std::mem::forget(library);
        let host = Box::<Host>::default();
        let table = Box::new(table(&host));
        let mut task = ptr::null_mut();
        // SAFETY (every call below): the table and the host outlive the task.
        api.checked("ksn_task_new", |e| unsafe {
            (api.task_new)(&*table, &mut task, e)
        })?;
        let file = files(1)[0];
        let mut lookup = Self {
            api,
            _host: host,
            _table: table,
            task,
            query: KsnFileQuery {
                struct_size: size_of::<KsnFileQuery>() as u32,
                md5: file.md5,
                size_bytes: file.size_bytes,
                object: 0,
                path: std::ptr::null(),
                path_len: 0,
            },
            answer: KsnLookupAnswer {
                struct_size: size_of::<KsnLookupAnswer>() as u32,
                verdict: KSN_VERDICT_UNKNOWN,
                action: KSN_ACTION_NONE,
                source: KSN_SOURCE_NONE,
                cached: false,
                object: 0,
            },
        };
        let (api, task) = (&lookup.api, lookup.task);
        api.checked("set_license", |e| unsafe {
            (api.set_license)(task, KSN_LICENSE_VALID, e)
        })?;
        api.checked("set_local", |e| unsafe {
            (api.set_local)(task, ACCEPT.as_ptr().cast(), ACCEPT.len(), e)
        })?;
        api.checked("start", |e| unsafe { (api.start)(task, e) })?;
        for _ in 0..2 {
            let (query, answer) = (&lookup.query, &mut lookup.answer);
            lookup.api.checked("check_file", |e| unsafe {
                (lookup.api.check_file)(task, query, answer, e)
            })?;
        }
        if !lookup.answer.cached {
            return Err("the warmed lookup did not hit the cache".to_string());
        }
        Ok(lookup)
    }

    /// One cache-hit lookup.
    #[inline]
    pub fn hit(&mut self) {
        // SAFETY: the task is live until drop; the query and answer are ours.
        black_box(unsafe {
            (self.api.check_file)(
                black_box(self.task),
                black_box(&self.query),
                &mut self.answer,
                ptr::null_mut(),
            )
        });
    }
}

impl Drop for CapiLookup {
    fn drop(&mut self) {
        // SAFETY: the task is not used after this.
        unsafe { (self.api.task_free)(self.task) };
    }
}
