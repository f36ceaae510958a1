//! What the core needs from its host, in plain Rust types, and the one adapter from the
//! contract's `HostServices` to it: the ABI shell hands the core its `HostBox`, and an
//! in-process host (tests, the benchmark) hands it its own `HostServices` value.

use std::borrow::Cow;

use plugin_api::{
    abi_stable::std_types::{RSlice, RStr},
    DataCategory, FileQuery, HostServices, KsnReply, LogRetention, ObjectRef, Service,
    TransportFailure, Verdict,
};

/// The host's object a file lookup is about: its handle (opaque; 0 is no object) and its
/// path as the host gave it. A path is bytes (on Linux it need not be UTF-8): the task
/// hands the host back exactly these bytes, and logs them escaped (`shown_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostObject<'a> {
    pub handle: u64,
    pub path: &'a [u8],
}

impl<'a> HostObject<'a> {
    /// The object of a Rust host's `check_object` (its path is UTF-8 by type).
    pub fn of(object: ObjectRef<'a>) -> Self {
        Self {
            handle: object.handle,
            path: object.path.as_str().as_bytes(),
        }
    }

    /// The path for the log: as it is when it is UTF-8; otherwise every byte that is not
    /// part of a UTF-8 character written `\xNN`, and every backslash doubled, so that the
    /// text tells the bytes apart.
    pub fn shown_path(&self) -> Cow<'a, str> {
        if let Ok(text) = std::str::from_utf8(self.path) {
            return Cow::Borrowed(text);
        }
        let mut shown = String::with_capacity(self.path.len() + 16);
        for chunk in self.path.utf8_chunks() {
            shown.push_str(&chunk.valid().replace('\\', "\\\\"));
            for byte in chunk.invalid() {
                shown.push_str(&format!("\\x{byte:02x}"));
            }
        }
        Cow::Owned(shown)
    }
}

pub trait Host: Send + Sync + 'static {
    /// Hands the host one event; `Err` when the host says it could not take it (a C++
    /// callback that threw), which the task logs.
    fn emit_event(&self, event_json: &str) -> Result<(), String>;
    fn now_ms(&self) -> u64;
    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String>;
    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String>;
    fn storage_replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String>;
    fn log_retention(&self) -> LogRetention;
    /// The events of this task the host holds from `from_seq` on (see
    /// `HostServices::events_since`).
    fn events_since(&self, from_seq: u64) -> Result<Vec<String>, String>;
    fn local_file_verdict(&self, query: FileQuery) -> Verdict;
    fn local_url_verdict(&self, url: &str) -> Verdict;
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure>;
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure>;
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure>;
    /// Removes the object (the host's, when the lookup named one), keeping a backup.
    fn backup_and_delete(
        &self,
        object: Option<HostObject<'_>>,
        query: FileQuery,
    ) -> Result<(), String>;
}

impl<T: HostServices + Send + Sync + 'static> Host for T {
    fn emit_event(&self, event_json: &str) -> Result<(), String> {
        HostServices::emit_event(self, RStr::from_str(event_json));
        Ok(())
    }
    fn now_ms(&self) -> u64 {
        HostServices::now_ms(self)
    }
    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        HostServices::storage_append(self, key.into(), record.into())
            .into_result()
            .map_err(String::from)
    }
    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        HostServices::storage_records(self, key.into())
            .into_result()
            .map(|records| records.into_iter().map(|r| r.into_vec()).collect())
            .map_err(String::from)
    }
    fn storage_replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        let slices: Vec<RSlice<'_, u8>> = records.iter().map(|r| RSlice::from_slice(r)).collect();
        HostServices::storage_replace(self, key.into(), RSlice::from_slice(&slices))
            .into_result()
            .map_err(String::from)
    }
    fn log_retention(&self) -> LogRetention {
        HostServices::log_retention(self)
    }
    fn events_since(&self, from_seq: u64) -> Result<Vec<String>, String> {
        HostServices::events_since(self, from_seq)
            .into_result()
            .map(|events| events.into_iter().map(String::from).collect())
            .map_err(String::from)
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        HostServices::local_file_verdict(self, query)
    }
    fn local_url_verdict(&self, url: &str) -> Verdict {
        HostServices::local_url_verdict(self, url.into())
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        HostServices::ksn_file(self, service, query, timeout_ms).into_result()
    }
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        HostServices::ksn_url(self, service, url.into(), timeout_ms).into_result()
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        HostServices::ksn_upload(self, service, category, items, timeout_ms).into_result()
    }
    fn backup_and_delete(
        &self,
        object: Option<HostObject<'_>>,
        query: FileQuery,
    ) -> Result<(), String> {
        match object {
            Some(object) => {
                // A Rust host's path came as UTF-8; the same text goes back.
                let path = String::from_utf8_lossy(object.path);
                let object = ObjectRef::new(object.handle, &path);
                HostServices::backup_and_delete_object(self, object, query)
            }
            None => HostServices::backup_and_delete(self, query),
        }
        .into_result()
        .map_err(String::from)
    }
}
