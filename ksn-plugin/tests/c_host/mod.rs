//! A C host written in Rust for the C API's tests: the library's functions (looked up with
//! `dlsym` in the built cdylib, or linked from the rlib where a test needs the plugin to
//! share this binary's panic runtime), and an in-memory host behind a callback table.
#![allow(dead_code)]

use std::{
    ffi::{c_char, c_void, CStr},
    mem::size_of,
    path::PathBuf,
    ptr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
};

use ksn_plugin::capi::*;
use libloading::Library;
use plugin_api::{
    abi_stable::std_types::{RErr, ROk, RResult, RSlice, RString},
    HostServices,
};

macro_rules! api {
    ($($field:ident = $function:ident: $pfn:ident,)*) => {
        /// The C API's functions.
        pub struct Api {
            $(pub $field: $pfn,)*
        }

        impl Api {
            /// Looked up in the cdylib cargo built beside this test, as a C host would.
            pub fn loaded() -> &'static Api {
                static API: OnceLock<Api> = OnceLock::new();
                API.get_or_init(|| {
                    let library = library();
                    // SAFETY: the header declares these functions with these types.
                    unsafe {
                        Api {$(
                            $field: *library
                                .get::<$pfn>(concat!(stringify!($function), "\0").as_bytes())
                                .expect(stringify!($function)),
                        )*}
                    }
                })
            }

            /// Linked from the rlib into this binary.
            pub fn linked() -> &'static Api {
                static API: Api = Api {$($field: $function,)*};
                &API
            }
        }
    };
}

api! {
    plugin_info = ksn_plugin_info: PFN_ksn_plugin_info,
    describe = ksn_describe: PFN_ksn_describe,
    install_logger = ksn_install_logger: PFN_ksn_install_logger,
    error_kind_name = ksn_error_kind_name: PFN_ksn_error_kind_name,
    string_free = ksn_string_free: PFN_ksn_string_free,
    error_free = ksn_error_free: PFN_ksn_error_free,
    task_new = ksn_task_new: PFN_ksn_task_new,
    task_free = ksn_task_free: PFN_ksn_task_free,
    push_policy = ksn_task_push_policy: PFN_ksn_task_push_policy,
    set_local = ksn_task_set_local: PFN_ksn_task_set_local,
    set_private_ksn = ksn_task_set_private_ksn: PFN_ksn_task_set_private_ksn,
    set_license = ksn_task_set_license: PFN_ksn_task_set_license,
    application_started = ksn_task_application_started: PFN_ksn_task_application_started,
    start = ksn_task_start: PFN_ksn_task_start,
    stop = ksn_task_stop: PFN_ksn_task_stop,
    tick = ksn_task_tick: PFN_ksn_task_tick,
    purge_cache = ksn_task_purge_cache: PFN_ksn_task_purge_cache,
    status = ksn_task_status: PFN_ksn_task_status,
    check_file = ksn_task_check_file: PFN_ksn_task_check_file,
    check_url = ksn_task_check_url: PFN_ksn_task_check_url,
    settings_json = ksn_task_settings_json: PFN_ksn_task_settings_json,
    log_json = ksn_task_log_json: PFN_ksn_task_log_json,
    log_page = ksn_task_log_page: PFN_ksn_task_log_page,
    ledger_json = ksn_task_ledger_json: PFN_ksn_task_ledger_json,
    ledger_page = ksn_task_ledger_page: PFN_ksn_task_ledger_page,
    counters_json = ksn_task_counters_json: PFN_ksn_task_counters_json,
    control = ksn_task_control: PFN_ksn_task_control,
    document_schema = ksn_document_schema: PFN_ksn_document_schema,
}

/// The plugin's cdylib, as cargo builds it beside this test binary.
pub fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().expect("deps directory").join(format!(
        "{}ksn_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    // SAFETY: the plugin's initialisers have no preconditions; it stays loaded.
    LIBRARY.get_or_init(|| unsafe { Library::new(library_path()) }.expect("the cdylib loads"))
}

/// What the plugin logged, once `capture_log` installed the logger.
pub static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C-unwind" fn log_record(
    _: *mut c_void,
    level: KsnLogLevel,
    target: *const c_char,
    target_len: usize,
    message: *const c_char,
    message_len: usize,
) {
    let text = |p: *const c_char, n| {
        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), n)).into_owned()
    };
    let line = format!(
        "{level} {}: {}",
        text(target, target_len),
        text(message, message_len)
    );
    LOG.lock().unwrap().push(line);
}

/// The callback that keeps every record in `LOG`.
pub fn log_callback() -> KsnLogFn {
    Some(log_record)
}

/// Installs a logger that keeps every record in `LOG` (once per loaded library).
pub fn capture_log(api: &Api) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let sink = KsnLogSink {
            struct_size: size_of::<KsnLogSink>() as u32,
            context: ptr::null_mut(),
            log: Some(log_record),
            max_level: KSN_LOG_DEBUG,
        };
        let mut e = error_slot();
        assert_eq!(unsafe { (api.install_logger)(&sink, &mut e) }, KSN_OK);
    });
}

pub fn error_slot() -> KsnError {
    KsnError {
        struct_size: size_of::<KsnError>() as u32,
        kind: KSN_OK,
        message: ptr::null_mut(),
        message_len: 0,
    }
}

/// An error as the test reads it: kind name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: KsnErrorKind,
    pub name: String,
    pub message: String,
}

/// Runs one call with an error slot; frees the message.
pub fn call(api: &Api, f: impl FnOnce(*mut KsnError) -> KsnErrorKind) -> Result<(), Failure> {
    let mut e = error_slot();
    let kind = f(&mut e);
    if kind == KSN_OK {
        assert!(e.message.is_null(), "no message on success");
        return Ok(());
    }
    assert_eq!(e.kind, kind, "the error slot holds the kind answered");
    let message = unsafe {
        let bytes = std::slice::from_raw_parts(e.message.cast::<u8>(), e.message_len);
        assert_eq!(*e.message.add(e.message_len), 0, "0-terminated");
        String::from_utf8(bytes.to_vec()).expect("UTF-8 message")
    };
    unsafe { (api.error_free)(&mut e) };
    assert!(e.message.is_null());
    let name = unsafe { CStr::from_ptr((api.error_kind_name)(kind)) }
        .to_str()
        .unwrap()
        .to_string();
    Err(Failure {
        kind,
        name,
        message,
    })
}

/// Runs one call that answers a document; frees it.
pub fn document(
    api: &Api,
    f: impl FnOnce(*mut KsnString, *mut KsnError) -> KsnErrorKind,
) -> Result<String, Failure> {
    let mut out = KsnString {
        struct_size: size_of::<KsnString>() as u32,
        ptr: ptr::null_mut(),
        len: 0,
    };
    call(api, |e| f(&mut out, e))?;
    let text = unsafe {
        String::from_utf8(std::slice::from_raw_parts(out.ptr.cast::<u8>(), out.len).to_vec())
            .unwrap()
    };
    unsafe { (api.string_free)(&mut out) };
    assert!(out.ptr.is_null());
    Ok(text)
}

pub fn query(md5: [u8; 16]) -> KsnFileQuery {
    object_query(md5, 0, "")
}

/// A query about the host's object `handle` (`path` for the log).
pub fn object_query(md5: [u8; 16], handle: u64, path: &'static str) -> KsnFileQuery {
    KsnFileQuery {
        struct_size: size_of::<KsnFileQuery>() as u32,
        md5,
        size_bytes: 4096,
        object: handle,
        path: path.as_ptr().cast(),
        path_len: path.len(),
    }
}

pub fn md5(hex: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

pub const EICAR: &str = "44d88612fea8a8f36de82e1278abb02f";

/// The contract's in-memory host (`plugin_api::testing`) behind a C callback table: the
/// callbacks turn the C arguments into the Rust contract's and call it, so the C API is
/// tested over the same host as the Rust one. What only a C host can do wrong (a reason
/// that is not UTF-8, a clock that panics, values out of range) is this table's own.
#[derive(Default)]
pub struct TestHost {
    pub shared: plugin_api::testing::TestHost,
    /// Retention the host asks for (`log_retention`), if any.
    pub max_entries: Option<u64>,
    /// Storage refuses writes, with a reason that is not UTF-8.
    pub refuse_writes: AtomicBool,
    /// The host answers values the plugin does not know.
    pub odd_values: AtomicBool,
    /// The clock panics (only where the plugin is linked into this binary).
    pub clock_panics: AtomicBool,
    /// Calls of callbacks the plugin must not see.
    pub trapped: AtomicUsize,
    /// Replacements (compactions) taken.
    pub replaced: AtomicUsize,
    /// The `struct_size` of every `KsnFileQuery` the plugin passed to `backup_and_delete`.
    pub delete_query_sizes: Mutex<Vec<u32>>,
    /// The path bytes of every `KsnFileQuery` the plugin passed to `backup_and_delete`.
    pub delete_paths: Mutex<Vec<Vec<u8>>>,
    /// `emit_event_checked` answers a failure, as a C++ callback that threw does.
    pub emit_fails: AtomicBool,
}

impl TestHost {
    /// A host whose KSN services know `md5` as `verdict`.
    pub fn with_answer(md5: [u8; 16], verdict: KsnVerdict) -> Self {
        let host = Self::default();
        host.shared
            .0
            .ksn_files
            .lock()
            .unwrap()
            .insert(md5, plugin_api::Verdict(verdict as u8));
        host
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.shared.events()
    }

    pub fn records(&self) -> usize {
        let storage = self.shared.0.storage.lock().unwrap();
        storage.values().map(Vec::len).sum()
    }

    /// The services that received a file request, in order.
    pub fn file_requests(&self) -> Vec<KsnService> {
        let received = self.shared.0.received.lock().unwrap();
        received
            .iter()
            .filter(|(_, category, _)| *category == plugin_api::DataCategory::FILES)
            .map(|(service, _, _)| u32::from(service.0))
            .collect()
    }

    /// The objects deleted: handle (0 for none) and checksum.
    pub fn deleted(&self) -> Vec<(u64, [u8; 16])> {
        let deleted = self.shared.0.deleted.lock().unwrap();
        deleted
            .iter()
            .map(|(object, query)| (object.unwrap_or(0), query.md5))
            .collect()
    }

    /// The callback table over this host, as this build of the header has it.
    pub fn table(&self) -> KsnHost {
        KsnHost {
            struct_size: size_of::<KsnHost>() as u32,
            context: (self as *const TestHost).cast_mut().cast(),
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
            storage_replace: Some(storage_replace),
            log_retention: Some(log_retention),
            events_since: Some(events_since),
            emit_event_checked: Some(emit_event_checked),
        }
    }
}

unsafe fn host<'a>(context: *mut c_void) -> &'a TestHost {
    &*context.cast_const().cast::<TestHost>()
}

unsafe fn text<'a>(data: *const c_char, len: usize) -> &'a str {
    if len == 0 {
        return "";
    }
    std::str::from_utf8(std::slice::from_raw_parts(data.cast::<u8>(), len)).unwrap()
}

unsafe fn push(sink: *const KsnSink, data: &[u8]) {
    let sink = &*sink;
    (sink.push.expect("the plugin's push"))(sink.state, data.as_ptr(), data.len());
}

/// A C status for what the shared host answered; a reason pushed to `error`.
unsafe fn status(result: RResult<(), RString>, error: *const KsnSink) -> i32 {
    match result {
        ROk(()) => 0,
        RErr(reason) => {
            push(error, reason.as_bytes());
            1
        }
    }
}

unsafe fn c_query(query: *const KsnFileQuery) -> plugin_api::FileQuery {
    plugin_api::FileQuery {
        md5: (*query).md5,
        size_bytes: (*query).size_bytes,
    }
}

fn c_transport(failure: plugin_api::TransportFailure) -> KsnTransport {
    u32::from(failure.0)
}

unsafe extern "C-unwind" fn emit_event(context: *mut c_void, json: *const c_char, len: usize) {
    host(context).shared.emit_event(text(json, len).into());
}

unsafe extern "C-unwind" fn emit_event_checked(
    context: *mut c_void,
    json: *const c_char,
    len: usize,
    error: *const KsnSink,
) -> i32 {
    let host = host(context);
    if host.emit_fails.load(Ordering::SeqCst) {
        push(error, b"the event store threw");
        return 1;
    }
    host.shared.emit_event(text(json, len).into());
    0
}

unsafe extern "C-unwind" fn now_ms(context: *mut c_void) -> u64 {
    let host = host(context);
    if host.clock_panics.load(Ordering::SeqCst) {
        panic!("the host's clock exploded");
    }
    host.shared.now_ms()
}

unsafe extern "C-unwind" fn storage_append(
    context: *mut c_void,
    key: *const c_char,
    key_len: usize,
    record: *const u8,
    record_len: usize,
    error: *const KsnSink,
) -> i32 {
    let host = host(context);
    if host.refuse_writes.load(Ordering::SeqCst) {
        push(error, b"disk \xff full");
        return 28;
    }
    let record = std::slice::from_raw_parts(record, record_len);
    status(
        host.shared
            .storage_append(text(key, key_len).into(), record.into()),
        error,
    )
}

/// The events this host holds, as a management server keeps them apart from the task's
/// storage.
unsafe extern "C-unwind" fn events_since(
    context: *mut c_void,
    from_seq: u64,
    events: *const KsnSink,
    error: *const KsnSink,
) -> i32 {
    match host(context).shared.events_since(from_seq) {
        ROk(held) => {
            for event in held {
                push(events, event.as_bytes());
            }
            0
        }
        RErr(reason) => {
            push(error, reason.as_bytes());
            1
        }
    }
}

unsafe extern "C-unwind" fn storage_records(
    context: *mut c_void,
    key: *const c_char,
    key_len: usize,
    records: *const KsnSink,
    _error: *const KsnSink,
) -> i32 {
    for record in host(context).shared.records(text(key, key_len)) {
        push(records, &record);
    }
    0
}

unsafe extern "C-unwind" fn storage_replace(
    context: *mut c_void,
    key: *const c_char,
    key_len: usize,
    records: *const *const u8,
    lens: *const usize,
    count: usize,
    error: *const KsnSink,
) -> i32 {
    let host = host(context);
    let new: Vec<RSlice<'_, u8>> = (0..count)
        .map(|i| std::slice::from_raw_parts(*records.add(i), *lens.add(i)).into())
        .collect();
    host.replaced.fetch_add(1, Ordering::SeqCst);
    status(
        host.shared
            .storage_replace(text(key, key_len).into(), new.as_slice().into()),
        error,
    )
}

unsafe extern "C-unwind" fn log_retention(context: *mut c_void, retention: *mut KsnLogRetention) {
    if let Some(max) = host(context).max_entries {
        (*retention).max_entries = max;
    }
}

unsafe extern "C-unwind" fn local_file_verdict(
    context: *mut c_void,
    query: *const KsnFileQuery,
) -> KsnVerdict {
    let host = host(context);
    if host.odd_values.load(Ordering::SeqCst) {
        return 999;
    }
    u32::from(host.shared.local_file_verdict(c_query(query)).0)
}

unsafe extern "C-unwind" fn local_url_verdict(
    context: *mut c_void,
    url: *const c_char,
    len: usize,
) -> KsnVerdict {
    u32::from(
        host(context)
            .shared
            .local_url_verdict(text(url, len).into())
            .0,
    )
}

unsafe extern "C-unwind" fn ksn_file(
    context: *mut c_void,
    service: KsnService,
    query: *const KsnFileQuery,
    timeout_ms: u32,
    reply: *mut KsnReply,
) -> KsnTransport {
    let host = host(context);
    assert_eq!((*reply).struct_size as usize, size_of::<KsnReply>());
    let service = plugin_api::Service(service as u8);
    match host.shared.ksn_file(service, c_query(query), timeout_ms) {
        ROk(answer) => {
            (*reply).ksn = if host.odd_values.load(Ordering::SeqCst) {
                77
            } else {
                u32::from(answer.ksn.0)
            };
            (*reply).private_database = u32::from(answer.private_database.0);
            (*reply).latency_ms = answer.latency_ms;
            KSN_TRANSPORT_DELIVERED
        }
        RErr(failure) => c_transport(failure),
    }
}

unsafe extern "C-unwind" fn ksn_url(
    context: *mut c_void,
    service: KsnService,
    url: *const c_char,
    len: usize,
    timeout_ms: u32,
    reply: *mut KsnReply,
) -> KsnTransport {
    let service = plugin_api::Service(service as u8);
    match host(context)
        .shared
        .ksn_url(service, text(url, len).into(), timeout_ms)
    {
        ROk(answer) => {
            (*reply).ksn = u32::from(answer.ksn.0);
            (*reply).latency_ms = answer.latency_ms;
            KSN_TRANSPORT_DELIVERED
        }
        RErr(failure) => c_transport(failure),
    }
}

unsafe extern "C-unwind" fn ksn_upload(
    context: *mut c_void,
    service: KsnService,
    category: KsnDataCategory,
    items: u32,
    timeout_ms: u32,
    latency_ms: *mut u32,
) -> KsnTransport {
    let service = plugin_api::Service(service as u8);
    let category = plugin_api::DataCategory(category as u8);
    match host(context)
        .shared
        .ksn_upload(service, category, items, timeout_ms)
    {
        ROk(latency) => {
            *latency_ms = latency;
            KSN_TRANSPORT_DELIVERED
        }
        RErr(failure) => c_transport(failure),
    }
}

unsafe extern "C-unwind" fn backup_and_delete(
    context: *mut c_void,
    query: *const KsnFileQuery,
    error: *const KsnSink,
) -> i32 {
    let host = host(context);
    host.delete_query_sizes
        .lock()
        .unwrap()
        .push((*query).struct_size);
    let file = c_query(query);
    let raw = match (*query).path_len {
        0 => &[][..],
        len => std::slice::from_raw_parts((*query).path.cast::<u8>(), len),
    };
    host.delete_paths.lock().unwrap().push(raw.to_vec());
    let path = String::from_utf8_lossy(raw);
    let outcome = if (*query).object == 0 && path.is_empty() {
        host.shared.backup_and_delete(file)
    } else {
        host.shared
            .backup_and_delete_object(plugin_api::ObjectRef::new((*query).object, &path), file)
    };
    status(outcome, error)
}

/// For a table's fields the plugin must not call: counts the call.
pub unsafe extern "C-unwind" fn trapped_replace(
    context: *mut c_void,
    _key: *const c_char,
    _key_len: usize,
    _records: *const *const u8,
    _lens: *const usize,
    _count: usize,
    _error: *const KsnSink,
) -> i32 {
    host(context).trapped.fetch_add(1, Ordering::SeqCst);
    0
}

pub unsafe extern "C-unwind" fn trapped_events_since(
    context: *mut c_void,
    _from_seq: u64,
    _events: *const KsnSink,
    _error: *const KsnSink,
) -> i32 {
    host(context).trapped.fetch_add(1, Ordering::SeqCst);
    0
}

pub unsafe extern "C-unwind" fn trapped_retention(
    context: *mut c_void,
    _retention: *mut KsnLogRetention,
) {
    host(context).trapped.fetch_add(1, Ordering::SeqCst);
}

/// A task created over a table, freed when dropped.
pub struct Task<'a> {
    pub api: &'a Api,
    pub ptr: *mut KsnTask,
}

impl<'a> Task<'a> {
    /// # Safety
    ///
    /// `table`'s context outlives the task.
    pub unsafe fn new(api: &'a Api, table: *const KsnHost) -> Result<Self, Failure> {
        let mut ptr = ptr::null_mut();
        call(api, |e| (api.task_new)(table, &mut ptr, e))?;
        assert!(!ptr.is_null());
        Ok(Self { api, ptr })
    }

    /// A task with a valid licence, `accept` applied locally, and started.
    ///
    /// # Safety
    ///
    /// As `new`.
    pub unsafe fn running(
        api: &'a Api,
        table: *const KsnHost,
        accept: &str,
    ) -> Result<Self, Failure> {
        let task = Self::new(api, table)?;
        task.set_license(KSN_LICENSE_VALID)?;
        task.set_local(accept)?;
        task.start()?;
        Ok(task)
    }

    pub fn push_policy(&self, json: &str) -> Result<(), Failure> {
        call(self.api, |e| unsafe {
            (self.api.push_policy)(self.ptr, json.as_ptr().cast(), json.len(), e)
        })
    }

    pub fn set_local(&self, json: &str) -> Result<(), Failure> {
        call(self.api, |e| unsafe {
            (self.api.set_local)(self.ptr, json.as_ptr().cast(), json.len(), e)
        })
    }

    pub fn set_license(&self, license: KsnLicense) -> Result<(), Failure> {
        call(self.api, |e| unsafe {
            (self.api.set_license)(self.ptr, license, e)
        })
    }

    pub fn set_private_ksn(&self, on: bool) -> Result<(), Failure> {
        call(self.api, |e| unsafe {
            (self.api.set_private_ksn)(self.ptr, on, e)
        })
    }

    pub fn start(&self) -> Result<(), Failure> {
        call(self.api, |e| unsafe { (self.api.start)(self.ptr, e) })
    }

    pub fn stop(&self) -> Result<(), Failure> {
        call(self.api, |e| unsafe { (self.api.stop)(self.ptr, e) })
    }

    pub fn tick(&self) -> Result<(), Failure> {
        call(self.api, |e| unsafe { (self.api.tick)(self.ptr, e) })
    }

    pub fn status(&self) -> KsnStatus {
        let mut status = KsnStatus {
            struct_size: size_of::<KsnStatus>() as u32,
            state: 99,
            error: 99,
            network: 99,
            license: 99,
            private_ksn: false,
        };
        call(self.api, |e| unsafe {
            (self.api.status)(self.ptr, &mut status, e)
        })
        .expect("status");
        status
    }

    pub fn check_file(&self, md5: [u8; 16]) -> Result<KsnLookupAnswer, Failure> {
        self.check(&query(md5))
    }

    /// A lookup of `query` as given (an object's, or one of another size).
    pub fn check(&self, query: &KsnFileQuery) -> Result<KsnLookupAnswer, Failure> {
        let mut answer = KsnLookupAnswer {
            struct_size: size_of::<KsnLookupAnswer>() as u32,
            verdict: 99,
            action: 99,
            source: 99,
            cached: false,
            object: 99,
        };
        call(self.api, |e| unsafe {
            (self.api.check_file)(self.ptr, query, &mut answer, e)
        })?;
        Ok(answer)
    }

    /// A control call, with the status after it.
    pub fn control(&self, call_: KsnCall) -> (Result<(), Failure>, KsnStatus) {
        let mut after = KsnStatus {
            struct_size: size_of::<KsnStatus>() as u32,
            state: 99,
            error: 99,
            network: 99,
            license: 99,
            private_ksn: false,
        };
        let result = call(self.api, |e| unsafe {
            (self.api.control)(self.ptr, &call_, &mut after, e)
        });
        (result, after)
    }

    pub fn settings(&self) -> serde_json::Value {
        let json = document(self.api, |out, e| unsafe {
            (self.api.settings_json)(self.ptr, out, e)
        })
        .expect("settings");
        serde_json::from_str(&json).unwrap()
    }

    pub fn log(&self) -> Vec<serde_json::Value> {
        let json = document(self.api, |out, e| unsafe {
            (self.api.log_json)(self.ptr, out, e)
        })
        .expect("log");
        serde_json::from_str(&json).unwrap()
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        unsafe { (self.api.task_free)(self.ptr) };
    }
}

/// A control call of `operation` (with `document`, `enabled` and `license` as it takes).
pub fn control_call(
    operation: KsnOperation,
    document: &str,
    enabled: bool,
    license: KsnLicense,
) -> KsnCall {
    KsnCall {
        struct_size: size_of::<KsnCall>() as u32,
        operation,
        document: document.as_ptr().cast(),
        document_len: document.len(),
        enabled: u32::from(enabled),
        license,
    }
}
