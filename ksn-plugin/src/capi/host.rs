//! The C host's callback table as the core's `Host`: the C twin of the adapter from the
//! Rust contract's `HostServices` in `core::host`. What the host answers is taken as the
//! Rust path takes it: an unknown verdict or transport failure keeps its unknown value
//! (the core answers `unknown`, or "unreachable, nothing delivered", and logs it once), and
//! a reason that is not UTF-8 is kept with replacement characters.

use std::{
    ffi::c_void,
    mem::size_of,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Mutex,
};

use plugin_api::{DataCategory, FileQuery, LogRetention, Service, TransportFailure, Verdict};

use super::{
    sized::{bytes, narrow, ArgError},
    types::{
        KsnBackupAndDeleteFn, KsnEmitEventCheckedFn, KsnEmitEventFn, KsnEventsSinceFn,
        KsnFileQuery, KsnFileRequestFn, KsnHost, KsnLocalFileVerdictFn, KsnLocalUrlVerdictFn,
        KsnLogRetention, KsnLogRetentionFn, KsnNowMsFn, KsnReply, KsnSink, KsnStorageAppendFn,
        KsnStorageRecordsFn, KsnStorageReplaceFn, KsnUploadFn, KsnUrlRequestFn,
        KSN_TRANSPORT_DELIVERED, KSN_VERDICT_UNKNOWN,
    },
};
use crate::core::{host::HostObject, Host};

/// A callback type of the table (nullable) without its NULL.
pub trait Nullable {
    type Present;
}

impl<F> Nullable for Option<F> {
    type Present = F;
}

type Required<F> = <F as Nullable>::Present;

/// The callbacks of a host table, the required ones checked present.
pub struct CHost {
    context: *mut c_void,
    emit_event: Required<KsnEmitEventFn>,
    now_ms: Required<KsnNowMsFn>,
    storage_append: Required<KsnStorageAppendFn>,
    storage_records: Required<KsnStorageRecordsFn>,
    local_file_verdict: Required<KsnLocalFileVerdictFn>,
    local_url_verdict: Required<KsnLocalUrlVerdictFn>,
    ksn_file: Required<KsnFileRequestFn>,
    ksn_url: Required<KsnUrlRequestFn>,
    ksn_upload: Required<KsnUploadFn>,
    backup_and_delete: Required<KsnBackupAndDeleteFn>,
    storage_replace: KsnStorageReplaceFn,
    log_retention: KsnLogRetentionFn,
    events_since: KsnEventsSinceFn,
    emit_event_checked: KsnEmitEventCheckedFn,
}

// SAFETY: the host promises, with the table, that its callbacks and their context may be
// used from any thread, concurrently (the task is Send + Sync, as in the Rust contract).
unsafe impl Send for CHost {}
unsafe impl Sync for CHost {}

fn required<T>(callback: Option<T>, what: &'static str) -> Result<T, ArgError> {
    callback.ok_or(ArgError::new(what, "is NULL: the callback is required"))
}

impl CHost {
    /// The callbacks of `table` (as read: fields beyond the host's `struct_size` are NULL).
    pub fn new(table: &KsnHost) -> Result<Self, ArgError> {
        Ok(Self {
            context: table.context,
            emit_event: required(table.emit_event, "host->emit_event")?,
            now_ms: required(table.now_ms, "host->now_ms")?,
            storage_append: required(table.storage_append, "host->storage_append")?,
            storage_records: required(table.storage_records, "host->storage_records")?,
            local_file_verdict: required(table.local_file_verdict, "host->local_file_verdict")?,
            local_url_verdict: required(table.local_url_verdict, "host->local_url_verdict")?,
            ksn_file: required(table.ksn_file, "host->ksn_file")?,
            ksn_url: required(table.ksn_url, "host->ksn_url")?,
            ksn_upload: required(table.ksn_upload, "host->ksn_upload")?,
            backup_and_delete: required(table.backup_and_delete, "host->backup_and_delete")?,
            storage_replace: table.storage_replace,
            log_retention: table.log_retention,
            events_since: table.events_since,
            emit_event_checked: table.emit_event_checked,
        })
    }
}

/// A reason the host gives for a failure, cut at this many bytes.
const REASON_LIMIT: usize = 4096;

/// Bytes a callback pushes; a push the plugin cannot read marks it broken.
#[derive(Default)]
struct Pushed {
    items: Vec<Vec<u8>>,
    broken: bool,
}

/// A sink over `pushed`, valid while `pushed` is.
fn sink(pushed: &Mutex<Pushed>) -> KsnSink {
    KsnSink {
        struct_size: size_of::<KsnSink>() as u32,
        state: (pushed as *const Mutex<Pushed>).cast_mut().cast::<c_void>(),
        push: Some(push),
    }
}

/// The sinks' push: copies the bytes. Never unwinds into the host.
unsafe extern "C" fn push(state: *mut c_void, data: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(pushed) = state.cast::<Mutex<Pushed>>().cast_const().as_ref() else {
            return;
        };
        let mut pushed = pushed.lock().unwrap_or_else(|p| p.into_inner());
        match bytes(data, len, "pushed bytes") {
            Ok(data) => pushed.items.push(data.to_vec()),
            Err(_) => pushed.broken = true,
        }
    }));
}

/// What a callback answering 0 or non-zero (with a reason pushed) comes to.
fn outcome(status: i32, reason: Mutex<Pushed>) -> Result<(), String> {
    if status == 0 {
        return Ok(());
    }
    let pushed = reason.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut text: Vec<u8> = pushed.items.concat();
    text.truncate(REASON_LIMIT);
    if text.is_empty() {
        return Err(format!(
            "the host failed (status {status}) and gave no reason"
        ));
    }
    Err(String::from_utf8_lossy(&text).into_owned())
}

fn c_query(query: &FileQuery, object: Option<&HostObject<'_>>) -> KsnFileQuery {
    KsnFileQuery {
        struct_size: size_of::<KsnFileQuery>() as u32,
        md5: query.md5,
        size_bytes: query.size_bytes,
        object: object.map_or(0, |o| o.handle),
        path: object.map_or(std::ptr::null(), |o| o.path.as_ptr().cast()),
        path_len: object.map_or(0, |o| o.path.len()),
    }
}

fn empty_reply() -> KsnReply {
    KsnReply {
        struct_size: size_of::<KsnReply>() as u32,
        ksn: KSN_VERDICT_UNKNOWN,
        private_database: KSN_VERDICT_UNKNOWN,
        latency_ms: 0,
    }
}

fn delivered(transport: u32, reply: &KsnReply) -> Result<plugin_api::KsnReply, TransportFailure> {
    if transport != KSN_TRANSPORT_DELIVERED {
        return Err(TransportFailure(narrow(transport)));
    }
    Ok(plugin_api::KsnReply {
        ksn: Verdict(narrow(reply.ksn)),
        private_database: Verdict(narrow(reply.private_database)),
        latency_ms: reply.latency_ms,
    })
}

impl Host for CHost {
    fn emit_event(&self, event_json: &str) -> Result<(), String> {
        // SAFETY (every callback): the host gave these functions and context for the life
        // of the task; the arguments are valid for the call.
        let Some(checked) = self.emit_event_checked else {
            unsafe {
                (self.emit_event)(self.context, event_json.as_ptr().cast(), event_json.len())
            };
            return Ok(());
        };
        let reason = Mutex::default();
        let status = unsafe {
            checked(
                self.context,
                event_json.as_ptr().cast(),
                event_json.len(),
                &sink(&reason),
            )
        };
        outcome(status, reason)
    }

    fn now_ms(&self) -> u64 {
        unsafe { (self.now_ms)(self.context) }
    }

    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        let reason = Mutex::default();
        let status = unsafe {
            (self.storage_append)(
                self.context,
                key.as_ptr().cast(),
                key.len(),
                record.as_ptr(),
                record.len(),
                &sink(&reason),
            )
        };
        outcome(status, reason)
    }

    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let (records, reason) = (Mutex::default(), Mutex::default());
        let status = unsafe {
            (self.storage_records)(
                self.context,
                key.as_ptr().cast(),
                key.len(),
                &sink(&records),
                &sink(&reason),
            )
        };
        outcome(status, reason)?;
        let records: Pushed = records.into_inner().unwrap_or_else(|p| p.into_inner());
        if records.broken {
            return Err("the host pushed a record the plugin cannot read (a null pointer)".into());
        }
        Ok(records.items)
    }

    fn storage_replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        let Some(replace) = self.storage_replace else {
            // What a Rust host that cannot replace answers (the contract's default).
            return Err("this host cannot replace records".into());
        };
        let pointers: Vec<*const u8> = records.iter().map(|r| r.as_ptr()).collect();
        let lens: Vec<usize> = records.iter().map(|r| r.len()).collect();
        let reason = Mutex::default();
        let status = unsafe {
            replace(
                self.context,
                key.as_ptr().cast(),
                key.len(),
                pointers.as_ptr(),
                lens.as_ptr(),
                records.len(),
                &sink(&reason),
            )
        };
        outcome(status, reason)
    }

    fn log_retention(&self) -> LogRetention {
        let default = LogRetention::DEFAULT;
        let Some(retention) = self.log_retention else {
            return default;
        };
        let mut answer = KsnLogRetention {
            struct_size: size_of::<KsnLogRetention>() as u32,
            max_entries: default.max_entries,
            max_age_ms: default.max_age_ms,
        };
        unsafe { retention(self.context, &mut answer) };
        LogRetention {
            max_entries: answer.max_entries,
            max_age_ms: answer.max_age_ms,
        }
    }

    fn events_since(&self, from_seq: u64) -> Result<Vec<String>, String> {
        let Some(events_since) = self.events_since else {
            // As the Rust contract's default: the host keeps no events.
            return Err(plugin_api::KEEPS_NO_EVENTS.into());
        };
        let (events, reason) = (Mutex::default(), Mutex::default());
        let status =
            unsafe { events_since(self.context, from_seq, &sink(&events), &sink(&reason)) };
        outcome(status, reason)?;
        let events: Pushed = events.into_inner().unwrap_or_else(|p| p.into_inner());
        // An event that is not UTF-8 cannot be one of the task's: it is skipped.
        Ok(events
            .items
            .into_iter()
            .filter_map(|e| String::from_utf8(e).ok())
            .collect())
    }

    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        let query = c_query(&query, None);
        Verdict(narrow(unsafe {
            (self.local_file_verdict)(self.context, &query)
        }))
    }

    fn local_url_verdict(&self, url: &str) -> Verdict {
        Verdict(narrow(unsafe {
            (self.local_url_verdict)(self.context, url.as_ptr().cast(), url.len())
        }))
    }

    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<plugin_api::KsnReply, TransportFailure> {
        let query = c_query(&query, None);
        let mut reply = empty_reply();
        let transport = unsafe {
            (self.ksn_file)(
                self.context,
                service.0.into(),
                &query,
                timeout_ms,
                &mut reply,
            )
        };
        delivered(transport, &reply)
    }

    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<plugin_api::KsnReply, TransportFailure> {
        let mut reply = empty_reply();
        let transport = unsafe {
            (self.ksn_url)(
                self.context,
                service.0.into(),
                url.as_ptr().cast(),
                url.len(),
                timeout_ms,
                &mut reply,
            )
        };
        delivered(transport, &reply)
    }

    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        let mut latency_ms = 0u32;
        let transport = unsafe {
            (self.ksn_upload)(
                self.context,
                service.0.into(),
                category.0.into(),
                items,
                timeout_ms,
                &mut latency_ms,
            )
        };
        match transport {
            KSN_TRANSPORT_DELIVERED => Ok(latency_ms),
            failure => Err(TransportFailure(narrow(failure))),
        }
    }

    fn backup_and_delete(
        &self,
        object: Option<HostObject<'_>>,
        query: FileQuery,
    ) -> Result<(), String> {
        // The path goes back as the host's own bytes, UTF-8 or not.
        let query = c_query(&query, object.as_ref());
        let reason = Mutex::default();
        let status = unsafe { (self.backup_and_delete)(self.context, &query, &sink(&reason)) };
        outcome(status, reason)
    }
}
