//! The host's services as one device gives them to its task instance: simulated time,
//! storage, the event record, the local allow/deny lists, the backup store, and the
//! transport to the simulated KSN services (which counts what each received).

use std::sync::{atomic::Ordering, Arc};

use plugin_api::{
    abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec},
    DataCategory, FileQuery, HostServices, KsnReply, LogRetention, Service, TransportFailure,
    Verdict,
};

use super::device::DeviceState;

/// The host-services object handed to one task instance.
#[derive(Clone)]
pub struct DeviceHost(pub Arc<DeviceState>);

impl DeviceHost {
    fn carry(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        let delivery = self.0.network.carry(service, timeout_ms);
        if delivery.delivered {
            self.0.received.add(service, category, items);
        }
        delivery.result
    }

    fn writable(&self) -> Result<(), RString> {
        if self.0.storage_refuses.load(Ordering::Relaxed) {
            Err("the device's storage refuses writes (disk full)".into())
        } else {
            Ok(())
        }
    }
}

fn result<T>(r: Result<T, String>) -> RResult<T, RString> {
    match r {
        Ok(value) => ROk(value),
        Err(e) => RErr(e.into()),
    }
}

impl HostServices for DeviceHost {
    fn emit_event(&self, event_json: RStr<'_>) {
        self.0.record_event(event_json.as_str());
    }
    fn now_ms(&self) -> u64 {
        self.0.clock.now_ms()
    }
    fn storage_append(&self, key: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString> {
        let appended = self
            .writable()
            .map_err(String::from)
            .and_then(|()| self.0.storage.append(key.as_str(), record.as_slice()));
        self.0.wrote(appended.is_ok());
        result(appended)
    }
    fn storage_records(&self, key: RStr<'_>) -> RResult<RVec<RVec<u8>>, RString> {
        result(
            self.0
                .storage
                .records(key.as_str())
                .map(|records| records.into_iter().map(RVec::from).collect()),
        )
    }
    fn storage_replace(
        &self,
        key: RStr<'_>,
        records: RSlice<'_, RSlice<'_, u8>>,
    ) -> RResult<(), RString> {
        if let Err(e) = self.writable() {
            return RErr(e);
        }
        let records: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        result(self.0.storage.replace(key.as_str(), &records))
    }
    fn log_retention(&self) -> LogRetention {
        self.0.retention
    }
    fn events_since(&self, from_seq: u64) -> RResult<RVec<RString>, RString> {
        if !self.0.keeps_task_events {
            return RErr(plugin_api::KEEPS_NO_EVENTS.into());
        }
        #[derive(serde::Deserialize)]
        struct Numbered {
            seq: u64,
        }
        // The server keeps none for this device (the flag follows every hold and
        // release): no read of the database.
        if !self.0.holding_events.load(Ordering::Relaxed) {
            return ROk(RVec::new());
        }
        let held = self.0.storage.held_events();
        ROk(held
            .into_iter()
            .filter(|e| serde_json::from_str::<Numbered>(e).is_ok_and(|n| n.seq >= from_seq))
            .map(RString::from)
            .collect())
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        self.0.local_lists.file(&query.md5)
    }
    fn local_url_verdict(&self, url: RStr<'_>) -> Verdict {
        self.0.local_lists.url(url.as_str())
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.carry(service, DataCategory::FILES, 1, timeout_ms)
            .map(|latency| self.0.network.file_reply(service, &query.md5, latency))
            .into()
    }
    fn ksn_url(
        &self,
        service: Service,
        url: RStr<'_>,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.carry(service, DataCategory::URLS, 1, timeout_ms)
            .map(|latency| self.0.network.url_reply(service, url.as_str(), latency))
            .into()
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> RResult<u32, TransportFailure> {
        self.carry(service, category, items, timeout_ms).into()
    }
    fn backup_and_delete(&self, _: FileQuery) -> RResult<(), RString> {
        self.0.backups.fetch_add(1, Ordering::Relaxed);
        ROk(())
    }
}
