//! One simulated managed device: the host side of a task instance. Its state (storage,
//! environment, events, what the KSN services received from it) outlives the task
//! instance, so `restart_host` drops the task and creates a new one on the same state.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec},
};
use plugin_api::{
    DataCategory, FileQuery, HostBox, HostServices, HostServices_TO, KsnReply, KsnTaskBox,
    LicenseState, LogRetention, Service, TaskError, TransportFailure, Verdict,
};

use crate::{
    loader::Plugin,
    network::{Database, Network},
    storage::{MemoryStorage, Storage},
};

/// Simulated time, shared by every device of a run.
#[derive(Default)]
pub struct Clock(AtomicU64);

impl Clock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What the KSN services received from this device, counted on the host side.
#[derive(Default)]
pub struct Received {
    counts: [[AtomicU64; 5]; 4],
    items: Mutex<Vec<ReceivedItem>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedItem {
    pub service: Service,
    pub category: DataCategory,
    pub items: u32,
}

impl Received {
    fn add(&self, service: Service, category: DataCategory, items: u32) {
        if let Some(row) = self.counts.get(service.0 as usize) {
            if let Some(cell) = row.get(category.0 as usize) {
                cell.fetch_add(u64::from(items), Ordering::Relaxed);
            }
        }
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ReceivedItem {
                service,
                category,
                items,
            });
    }

    pub fn count(&self, service: Service, category: DataCategory) -> u64 {
        self.counts[service.0 as usize][category.0 as usize].load(Ordering::Relaxed)
    }

    pub fn total(&self, service: Service) -> u64 {
        self.counts[service.0 as usize]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn items(&self) -> Vec<ReceivedItem> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        for row in &self.counts {
            for cell in row {
                cell.store(0, Ordering::Relaxed);
            }
        }
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The environment the Administration Server reports to the task.
#[derive(Clone, Copy, Debug)]
pub struct Environment {
    pub private_ksn: bool,
    pub license: LicenseState,
}

pub struct DeviceState {
    pub id: usize,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    /// The device's own allow/deny lists, consulted by the task before anything else.
    pub local_lists: Arc<Database>,
    pub storage: Box<dyn Storage>,
    /// Events as the task emitted them (kept only if `keep_events`), and how many.
    pub events: Mutex<Vec<Box<str>>>,
    pub event_total: AtomicU64,
    pub keep_events: bool,
    /// A call into the plugin on this device never returned (see `Device::call`).
    pub hung: AtomicBool,
    pub received: Received,
    /// The host's backup store: copies of deleted untrusted files.
    pub backups: Mutex<Vec<FileQuery>>,
    pub environment: Mutex<Environment>,
    /// How much of the task log the plugin keeps (the host's configuration).
    pub retention: LogRetention,
}

impl DeviceState {
    pub fn new(
        id: usize,
        clock: Arc<Clock>,
        network: Arc<Network>,
        local_lists: Arc<Database>,
    ) -> Self {
        Self::with_storage(
            id,
            clock,
            network,
            local_lists,
            Box::<MemoryStorage>::default(),
        )
    }

    pub fn with_storage(
        id: usize,
        clock: Arc<Clock>,
        network: Arc<Network>,
        local_lists: Arc<Database>,
        storage: Box<dyn Storage>,
    ) -> Self {
        Self {
            id,
            clock,
            network,
            local_lists,
            storage,
            events: Mutex::default(),
            event_total: AtomicU64::new(0),
            keep_events: true,
            hung: AtomicBool::new(false),
            received: Received::default(),
            backups: Mutex::default(),
            environment: Mutex::new(Environment {
                private_ksn: false,
                license: LicenseState::VALID,
            }),
            retention: LogRetention::DEFAULT,
        }
    }

    pub fn environment(&self) -> Environment {
        *self.environment.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn events(&self) -> Vec<Box<str>> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events after the first `start` (what one step caused), without copying the rest.
    pub fn events_since(&self, start: usize) -> Vec<Box<str>> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.get(start..).unwrap_or(&[]).to_vec()
    }

    pub fn event_count(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn clear_events(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn carry(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        let delivery = self.network.carry(service, timeout_ms);
        if delivery.delivered {
            self.received.add(service, category, items);
        }
        delivery.result
    }

    fn file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        let latency = self.carry(service, DataCategory::FILES, 1, timeout_ms)?;
        Ok(self.network.file_reply(service, &query.md5, latency))
    }

    fn url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        let latency = self.carry(service, DataCategory::URLS, 1, timeout_ms)?;
        Ok(self.network.url_reply(service, url, latency))
    }

    fn backup(&self, query: FileQuery) {
        self.backups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(query);
    }
}

/// The host-services object handed to one task instance.
#[derive(Clone)]
pub struct DeviceHost(pub Arc<DeviceState>);

impl HostServices for DeviceHost {
    fn emit_event(&self, event_json: RStr<'_>) {
        self.0.event_total.fetch_add(1, Ordering::Relaxed);
        if self.0.keep_events {
            self.0
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event_json.as_str().into());
        }
    }
    fn now_ms(&self) -> u64 {
        self.0.clock.now_ms()
    }
    fn storage_append(&self, key: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString> {
        match self.0.storage.append(key.as_str(), record.as_slice()) {
            Ok(()) => ROk(()),
            Err(e) => RErr(e.into()),
        }
    }
    fn storage_records(&self, key: RStr<'_>) -> RResult<RVec<RVec<u8>>, RString> {
        match self.0.storage.records(key.as_str()) {
            Ok(records) => ROk(records.into_iter().map(RVec::from).collect()),
            Err(e) => RErr(e.into()),
        }
    }
    fn storage_replace(
        &self,
        key: RStr<'_>,
        records: RSlice<'_, RSlice<'_, u8>>,
    ) -> RResult<(), RString> {
        let records: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        match self.0.storage.replace(key.as_str(), &records) {
            Ok(()) => ROk(()),
            Err(e) => RErr(e.into()),
        }
    }
    fn log_retention(&self) -> LogRetention {
        self.0.retention
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
        self.0.file(service, query, timeout_ms).into()
    }
    fn ksn_url(
        &self,
        service: Service,
        url: RStr<'_>,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.0.url(service, url.as_str(), timeout_ms).into()
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> RResult<u32, TransportFailure> {
        self.0.carry(service, category, items, timeout_ms).into()
    }
    fn backup_and_delete(&self, query: FileQuery) -> RResult<(), RString> {
        self.0.backup(query);
        ROk(())
    }
}

/// A device with its running task instance.
/// A device with its task instance: a cheap handle, so a call can run on a watchdog
/// thread.
#[derive(Clone)]
pub struct Device {
    pub state: Arc<DeviceState>,
    pub task: Arc<KsnTaskBox>,
}

impl Device {
    /// Creates the task on the device's state and tells it the environment, then that the
    /// application has started (so a scheduled task starts itself).
    pub fn boot(plugin: &Plugin, state: Arc<DeviceState>) -> Result<Self, TaskError> {
        let host: HostBox = HostServices_TO::from_value(DeviceHost(state.clone()), TD_Opaque);
        let task = plugin.module.new_task()(host).into_result()?;
        let env = state.environment();
        task.set_license(env.license).into_result()?;
        task.set_private_ksn(env.private_ksn).into_result()?;
        task.application_started().into_result()?;
        Ok(Self {
            state,
            task: Arc::new(task),
        })
    }

    /// Runs `call` on this device; with a `deadline`, on a thread of its own. A call that
    /// does not return in time leaves the device marked hung (its thread is abandoned: a
    /// thread cannot be killed), and every later call on it fails at once; the host and the
    /// other devices carry on.
    pub fn call<T: Send + 'static>(
        &self,
        deadline: Option<Duration>,
        call: impl FnOnce(&Device) -> Result<T, TaskError> + Send + 'static,
    ) -> Result<T, TaskError> {
        if self.state.hung.load(Ordering::Relaxed) {
            return Err(TaskError::invalid_state(format_args!(
                "device {} is hung: an earlier call into the plugin never returned",
                self.state.id
            )));
        }
        let Some(deadline) = deadline else {
            return call(self);
        };
        let (done, answer) = std::sync::mpsc::channel();
        let device = self.clone();
        std::thread::Builder::new()
            .name(format!("device-{}", self.state.id))
            .spawn(move || {
                let _ = done.send(call(&device));
            })
            .map_err(|e| TaskError::invalid_state(format_args!("cannot start a call: {e}")))?;
        answer.recv_timeout(deadline).unwrap_or_else(|_| {
            self.state.hung.store(true, Ordering::Relaxed);
            Err(TaskError::invalid_state(format_args!(
                "device {}: the plugin did not return within {} ms; the device is marked hung",
                self.state.id,
                deadline.as_millis()
            )))
        })
    }
}
