//! What crosses the C ABI: integer vocabularies, the size-prefixed structs, the host's
//! callback table and the callbacks' signatures.
//!
//! Every struct starts with `struct_size`, the size in bytes of the struct as its writer
//! knows it; fields are only ever appended. Vocabularies are plain integers (not C enums):
//! a value a side does not know is taken as the Rust contract takes it.

use std::ffi::{c_char, c_void};

/// Why a call failed: the Rust contract's `ErrorKind` numbers. `KSN_OK` (0) is success.
pub type KsnErrorKind = u32;
pub const KSN_OK: KsnErrorKind = 0;
pub const KSN_ERROR_STATEMENT_NOT_ACCEPTED: KsnErrorKind = 1;
pub const KSN_ERROR_LICENSE_VIOLATION: KsnErrorKind = 2;
pub const KSN_ERROR_LOCKED_BY_POLICY: KsnErrorKind = 3;
pub const KSN_ERROR_UNAVAILABLE_IN_PRIVATE_KSN: KsnErrorKind = 4;
pub const KSN_ERROR_INVALID_SETTINGS: KsnErrorKind = 5;
/// A call the task's state does not allow now (`start` while running, say).
pub const KSN_ERROR_INVALID_STATE: KsnErrorKind = 6;
pub const KSN_ERROR_PLUGIN_PANIC: KsnErrorKind = 7;
pub const KSN_ERROR_KSN_UNAVAILABLE: KsnErrorKind = 8;
pub const KSN_ERROR_STORAGE_ERROR: KsnErrorKind = 9;
pub const KSN_ERROR_NOT_IMPLEMENTED: KsnErrorKind = 10;
/// The host's mistake: an argument the plugin cannot use (a null or misaligned pointer, a
/// `struct_size` too small, a missing callback, a URL that is empty, malformed, not UTF-8
/// or holds a NUL, a vocabulary value the contract does not know). Nothing changed.
pub const KSN_ERROR_INVALID_ARGUMENT: KsnErrorKind = 11;

/// A reputation answer.
pub type KsnVerdict = u32;
pub const KSN_VERDICT_UNKNOWN: KsnVerdict = 0;
pub const KSN_VERDICT_TRUSTED: KsnVerdict = 1;
pub const KSN_VERDICT_UNTRUSTED: KsnVerdict = 2;
pub const KSN_VERDICT_UNAVAILABLE: KsnVerdict = 3;

/// What was done to an object found untrusted.
pub type KsnAction = u32;
pub const KSN_ACTION_NONE: KsnAction = 0;
pub const KSN_ACTION_DELETED: KsnAction = 1;
pub const KSN_ACTION_LOGGED: KsnAction = 2;
/// The object was to be deleted, but the host's `backup_and_delete` failed: it is still
/// there (the `object_untrusted` event says why).
pub const KSN_ACTION_DELETE_FAILED: KsnAction = 3;

/// Which layer of the merge gave a verdict; for an answer no layer could give, why (1.4.0).
pub type KsnAnswerSource = u32;
/// Nothing was asked (a file over the checksum limit, an overlong URL).
pub const KSN_SOURCE_NONE: KsnAnswerSource = 0;
pub const KSN_SOURCE_LOCAL_LIST: KsnAnswerSource = 1;
pub const KSN_SOURCE_PRIVATE_DATABASE: KsnAnswerSource = 2;
pub const KSN_SOURCE_KSN: KsnAnswerSource = 3;
/// `KSN_VERDICT_UNAVAILABLE`: the task is not running (its status says why) (1.4.0).
pub const KSN_SOURCE_NOT_RUNNING: KsnAnswerSource = 4;
/// `KSN_VERDICT_UNKNOWN`: the category's data may not leave (its consent is withdrawn), so
/// only the local list and the cache were asked (1.4.0).
pub const KSN_SOURCE_NOT_CONSENTED: KsnAnswerSource = 5;
/// `KSN_VERDICT_UNAVAILABLE`: no service answered (unreachable, or not within the lookup
/// timeout): a KSN outage (1.4.0).
pub const KSN_SOURCE_SERVICE_DOWN: KsnAnswerSource = 6;

/// A reputation service, or none.
pub type KsnService = u32;
pub const KSN_SERVICE_NONE: KsnService = 0;
pub const KSN_SERVICE_GLOBAL: KsnService = 1;
pub const KSN_SERVICE_PROXY: KsnService = 2;
pub const KSN_SERVICE_PRIVATE: KsnService = 3;

/// The licence as the host reports it.
pub type KsnLicense = u32;
pub const KSN_LICENSE_UNKNOWN: KsnLicense = 0;
pub const KSN_LICENSE_VALID: KsnLicense = 1;
pub const KSN_LICENSE_EXPIRED: KsnLicense = 2;
pub const KSN_LICENSE_NO_KSN: KsnLicense = 3;

/// The task's state.
pub type KsnTaskState = u32;
pub const KSN_STATE_STOPPED: KsnTaskState = 0;
pub const KSN_STATE_RUNNING: KsnTaskState = 1;
pub const KSN_STATE_FAILED: KsnTaskState = 2;

/// What the host's transport did with a request: delivered, or why not.
pub type KsnTransport = u32;
pub const KSN_TRANSPORT_DELIVERED: KsnTransport = 0;
/// Connection refused or no route: nothing was delivered.
pub const KSN_TRANSPORT_UNREACHABLE: KsnTransport = 1;
/// Delivered, but no answer within the time allowed.
pub const KSN_TRANSPORT_TIMED_OUT: KsnTransport = 2;

/// A category of data that leaves the device.
pub type KsnDataCategory = u32;
pub const KSN_CATEGORY_FILES: KsnDataCategory = 1;
pub const KSN_CATEGORY_URLS: KsnDataCategory = 2;
pub const KSN_CATEGORY_STATISTICS: KsnDataCategory = 3;
pub const KSN_CATEGORY_KMP: KsnDataCategory = 4;

/// A control call (`ksn_task_control`), each the function of the same name.
pub type KsnOperation = u32;
pub const KSN_OPERATION_PUSH_POLICY: KsnOperation = 1;
pub const KSN_OPERATION_SET_LOCAL: KsnOperation = 2;
pub const KSN_OPERATION_SET_PRIVATE_KSN: KsnOperation = 3;
pub const KSN_OPERATION_SET_LICENSE: KsnOperation = 4;
pub const KSN_OPERATION_APPLICATION_STARTED: KsnOperation = 5;
pub const KSN_OPERATION_START: KsnOperation = 6;
pub const KSN_OPERATION_STOP: KsnOperation = 7;

/// Log levels, numbered as in Rust's `log` crate.
pub type KsnLogLevel = u32;
pub const KSN_LOG_OFF: KsnLogLevel = 0;
pub const KSN_LOG_ERROR: KsnLogLevel = 1;
pub const KSN_LOG_WARN: KsnLogLevel = 2;
pub const KSN_LOG_INFO: KsnLogLevel = 3;
pub const KSN_LOG_DEBUG: KsnLogLevel = 4;
pub const KSN_LOG_TRACE: KsnLogLevel = 5;

/// An error: its kind and a one-line message. The caller sets `struct_size` and passes it
/// to any call; on failure the plugin fills it (the message is the plugin's: free it with
/// `ksn_error_free`). Untouched on success.
#[repr(C)]
pub struct KsnError {
    pub struct_size: u32,
    pub kind: KsnErrorKind,
    /// UTF-8, `message_len` bytes, followed by a 0 byte that `message_len` does not count.
    pub message: *mut c_char,
    pub message_len: usize,
}

/// A text the plugin allocated (a JSON document): free it with `ksn_string_free`.
#[repr(C)]
pub struct KsnString {
    pub struct_size: u32,
    /// UTF-8, `len` bytes, followed by a 0 byte that `len` does not count.
    pub ptr: *mut c_char,
    pub len: usize,
}

/// Who the plugin is. The strings are the library's own, valid while it is loaded; they
/// are not 0-terminated.
#[repr(C)]
pub struct KsnPluginInfo {
    pub struct_size: u32,
    /// The minor number of the Rust contract version (`contract_version`).
    pub contract_minor: u32,
    pub name: *const c_char,
    pub name_len: usize,
    pub version: *const c_char,
    pub version_len: usize,
    /// The version of the contract the plugin implements (`1.3.0`), shared by both ABIs.
    pub contract_version: *const c_char,
    pub contract_version_len: usize,
}

/// A file reputation question: its size and its MD5 checksum, and the host's reference to
/// the object it is about. The plugin passes the same struct to `backup_and_delete`, so
/// the host deletes that object, not whatever shares its checksum.
#[repr(C)]
pub struct KsnFileQuery {
    pub struct_size: u32,
    pub size_bytes: u64,
    /// At offset 16, so that it moves as one aligned 16-byte word on the lookup path.
    pub md5: [u8; 16],
    /// The host's handle of the object (opaque to the plugin), handed back in the answer,
    /// the `object_untrusted` event and to `backup_and_delete` (added in 1.3.0). 0 is no
    /// object: the lookup is about the checksum, and `backup_and_delete` gets no handle
    /// (the host decides which files the checksum names), as a query without one.
    pub object: u64,
    /// The object's path, for the log: `path_len` bytes, not 0-terminated, NULL for none;
    /// any bytes (a Linux path need not be UTF-8: the log shows it with each byte that is
    /// not UTF-8 as `\xNN`, and `backup_and_delete` gets the host's bytes back). Valid
    /// during the call only (added in 1.3.0).
    pub path: *const c_char,
    pub path_len: usize,
}

/// The task's answer to a reputation question.
#[repr(C)]
pub struct KsnLookupAnswer {
    pub struct_size: u32,
    pub verdict: KsnVerdict,
    /// What the task did to the object (`KSN_ACTION_NONE` unless it is untrusted;
    /// `KSN_ACTION_DELETE_FAILED` when the host's delete failed).
    pub action: KsnAction,
    /// Which layer of the merge decided.
    pub source: KsnAnswerSource,
    /// Whether the answer came from the verdict cache, with no request sent.
    pub cached: bool,
    /// The query's `object`, handed back (added in 1.3.0).
    pub object: u64,
}

/// One control call (`ksn_task_control`): the operation and its argument, if it takes one.
#[repr(C)]
pub struct KsnCall {
    pub struct_size: u32,
    pub operation: KsnOperation,
    /// The policy or local change (`KSN_OPERATION_PUSH_POLICY`, `_SET_LOCAL`): UTF-8,
    /// `document_len` bytes.
    pub document: *const c_char,
    pub document_len: usize,
    /// `KSN_OPERATION_SET_PRIVATE_KSN`: non-zero when Private KSN is in use.
    pub enabled: u32,
    /// `KSN_OPERATION_SET_LICENSE`: the licence.
    pub license: KsnLicense,
}

/// The task's state as the host sees it.
#[repr(C)]
pub struct KsnStatus {
    pub struct_size: u32,
    pub state: KsnTaskState,
    /// Why the task failed (`KSN_OK` unless `state` is `KSN_STATE_FAILED`).
    pub error: KsnErrorKind,
    /// The service the running task uses; `KSN_SERVICE_NONE` when it is not running.
    pub network: KsnService,
    pub license: KsnLicense,
    pub private_ksn: bool,
}

/// What a KSN service answered, filled by the host's transport. The plugin sets
/// `struct_size` and the defaults (unknown verdicts, 0 ms); the host writes only the fields
/// that `struct_size` covers.
#[repr(C)]
pub struct KsnReply {
    pub struct_size: u32,
    pub ksn: KsnVerdict,
    /// The Private KSN service's local reputation database; other services leave it.
    pub private_database: KsnVerdict,
    /// How long the answer took, in milliseconds.
    pub latency_ms: u32,
}

/// How much of the task log the plugin keeps beyond the consent records (which it keeps
/// for ever): the newest `max_entries`, of at most `max_age_ms` of host time; 0 means no
/// limit of that kind. The plugin sets `struct_size` and the defaults.
#[repr(C)]
pub struct KsnLogRetention {
    pub struct_size: u32,
    pub max_entries: u64,
    pub max_age_ms: u64,
}

/// Where a callback hands the plugin bytes: call `push(state, data, len)`, during the
/// callback only (from any thread). The plugin copies them; a NULL `data` with a non-zero
/// `len` is a push the plugin cannot read (for records, the read then fails).
#[repr(C)]
pub struct KsnSink {
    pub struct_size: u32,
    pub state: *mut c_void,
    pub push: KsnPushFn,
}

/// A sink's push (the plugin's function).
pub type KsnPushFn = Option<unsafe extern "C" fn(state: *mut c_void, data: *const u8, len: usize)>;

/// Receives one event (a JSON object with a `type`), in order. The text is the plugin's,
/// valid during the call.
pub type KsnEmitEventFn = Option<
    unsafe extern "C-unwind" fn(context: *mut c_void, event_json: *const c_char, len: usize),
>;

/// The host's clock, in milliseconds.
pub type KsnNowMsFn = Option<unsafe extern "C-unwind" fn(context: *mut c_void) -> u64>;

/// Appends one record under `key` atomically (after a crash it is there whole or not at
/// all). Answers 0, or non-zero with a reason pushed to `error`.
pub type KsnStorageAppendFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        key: *const c_char,
        key_len: usize,
        record: *const u8,
        record_len: usize,
        error: *const KsnSink,
    ) -> i32,
>;

/// Pushes every record under `key` to `records`, oldest first, one push per record.
/// Answers 0, or non-zero with a reason pushed to `error`.
pub type KsnStorageRecordsFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        key: *const c_char,
        key_len: usize,
        records: *const KsnSink,
        error: *const KsnSink,
    ) -> i32,
>;

/// Replaces every record under `key` with the `count` records (`records[i]`, `lens[i]`
/// bytes), atomically. Answers 0, or non-zero with a reason pushed to `error`.
pub type KsnStorageReplaceFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        key: *const c_char,
        key_len: usize,
        records: *const *const u8,
        lens: *const usize,
        count: usize,
        error: *const KsnSink,
    ) -> i32,
>;

/// Fills in the host's log retention (the plugin has set the defaults).
pub type KsnLogRetentionFn =
    Option<unsafe extern "C-unwind" fn(context: *mut c_void, retention: *mut KsnLogRetention)>;

/// Pushes to `events`, oldest first, each event of this task the host holds (the JSON text
/// `emit_event` received) whose `seq` is `from_seq` or later. Answers 0, or non-zero with a
/// reason pushed to `error`.
pub type KsnEventsSinceFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        from_seq: u64,
        events: *const KsnSink,
        error: *const KsnSink,
    ) -> i32,
>;

/// Receives one event, as `emit_event`, and answers whether it took it: 0, or non-zero
/// with a reason pushed to `error` (the plugin logs what a host failed to take, with the
/// count). Preferred over `emit_event` when present (added in 1.4.0).
pub type KsnEmitEventCheckedFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        event_json: *const c_char,
        len: usize,
        error: *const KsnSink,
    ) -> i32,
>;

/// The device's local allow/deny list for files.
pub type KsnLocalFileVerdictFn = Option<
    unsafe extern "C-unwind" fn(context: *mut c_void, query: *const KsnFileQuery) -> KsnVerdict,
>;

/// The device's local allow/deny list for URLs.
pub type KsnLocalUrlVerdictFn = Option<
    unsafe extern "C-unwind" fn(context: *mut c_void, url: *const c_char, len: usize) -> KsnVerdict,
>;

/// Sends a file reputation request to `service`, waiting at most `timeout_ms` (the
/// transport must honour it: a withdrawal waits for the sends in flight it affects). On
/// `KSN_TRANSPORT_DELIVERED`, `reply` holds the answer.
pub type KsnFileRequestFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        service: KsnService,
        query: *const KsnFileQuery,
        timeout_ms: u32,
        reply: *mut KsnReply,
    ) -> KsnTransport,
>;

/// Sends a URL reputation request to `service`, waiting at most `timeout_ms`.
pub type KsnUrlRequestFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        service: KsnService,
        url: *const c_char,
        len: usize,
        timeout_ms: u32,
        reply: *mut KsnReply,
    ) -> KsnTransport,
>;

/// Sends a batch of `items` items of `category`; on delivery writes the latency in
/// milliseconds to `latency_ms`.
pub type KsnUploadFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        service: KsnService,
        category: KsnDataCategory,
        items: u32,
        timeout_ms: u32,
        latency_ms: *mut u32,
    ) -> KsnTransport,
>;

/// Removes the object, keeping a backup copy. Answers 0, or non-zero with a reason pushed
/// to `error`.
pub type KsnBackupAndDeleteFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        query: *const KsnFileQuery,
        error: *const KsnSink,
    ) -> i32,
>;

/// Receives one log record of the plugin.
pub type KsnLogFn = Option<
    unsafe extern "C-unwind" fn(
        context: *mut c_void,
        level: KsnLogLevel,
        target: *const c_char,
        target_len: usize,
        message: *const c_char,
        message_len: usize,
    ),
>;

/// The host's services to one task: the only way the task reaches the outside world. The
/// plugin calls them on the threads that call into the task (it starts none), several at
/// once when the host calls in from several threads. They must not call back into the
/// task, nor unwind (a C++ exception escaping one ends the process).
///
/// Every callback up to `backup_and_delete` is required. A table whose `struct_size` does
/// not reach a later callback (an older host), or that holds NULL there, does not have it:
/// the plugin does without (see each field).
#[repr(C)]
pub struct KsnHost {
    pub struct_size: u32,
    /// Passed back as the first argument of every callback.
    pub context: *mut c_void,
    pub emit_event: KsnEmitEventFn,
    pub now_ms: KsnNowMsFn,
    pub storage_append: KsnStorageAppendFn,
    pub storage_records: KsnStorageRecordsFn,
    pub local_file_verdict: KsnLocalFileVerdictFn,
    pub local_url_verdict: KsnLocalUrlVerdictFn,
    pub ksn_file: KsnFileRequestFn,
    pub ksn_url: KsnUrlRequestFn,
    pub ksn_upload: KsnUploadFn,
    pub backup_and_delete: KsnBackupAndDeleteFn,
    /// Optional. Without it the plugin cannot compact its storage: it keeps appending, and
    /// logs that compaction failed, as with a Rust host that refuses replacements.
    pub storage_replace: KsnStorageReplaceFn,
    /// Optional. Without it the contract's default retention applies (the newest 10,000
    /// entries of the last 90 days).
    pub log_retention: KsnLogRetentionFn,
    /// Optional (added in 1.3.0). The events of this task the host keeps in its own
    /// database, apart from the task's storage: at creation the task reconciles its journal
    /// with those after its last entry, so that a withdrawal that took effect while storage
    /// refused to record it survives a restart. NULL says the host keeps no events, and a
    /// non-zero answer that it cannot tell: the task then trusts its journal only if the
    /// last session closed it cleanly (`ksn_task_free` with nothing waiting for storage);
    /// otherwise the statement's acceptance ends at creation (`consent_changed`, source
    /// `unverified_restart`) and must be confirmed again (1.4.0).
    pub events_since: KsnEventsSinceFn,
    /// Optional (added in 1.4.0): `emit_event` that says when the host could not take an
    /// event. Either way events reach the host outside the task's lock, in order.
    pub emit_event_checked: KsnEmitEventCheckedFn,
}

/// The host's logger, installed once for the library (`ksn_install_logger`).
#[repr(C)]
pub struct KsnLogSink {
    pub struct_size: u32,
    pub context: *mut c_void,
    /// Required. Called from any thread.
    pub log: KsnLogFn,
    /// The most verbose level the host wants; the plugin filters before formatting.
    pub max_level: KsnLogLevel,
}
