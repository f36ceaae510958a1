//! One simulated managed device's host-side state: storage, environment, events, what the
//! KSN services received from it. It outlives the task instance, so `restart_host` drops
//! the task and creates a new one on the same state.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};

use plugin_api::LogRetention;

use super::received::Received;
use crate::{
    network::{Database, Network},
    storage::{Environment, MemoryStorage, Storage},
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

pub struct DeviceState {
    pub id: usize,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    /// The device's own allow/deny lists, consulted by the task before anything else.
    pub local_lists: Arc<Database>,
    pub storage: Arc<dyn Storage>,
    /// When set, storage refuses every write (`set_storage`), as a full disk would.
    pub storage_refuses: AtomicBool,
    /// The last write refused: events that arrive now may be of changes storage has not
    /// recorded, so the server holds them (`Storage::hold_event`) until it takes a write.
    pub storage_failing: AtomicBool,
    /// The server holds events for this device.
    pub holding_events: AtomicBool,
    /// Events as the task emitted them (kept only if `keep_events`), and how many.
    events: Mutex<Vec<Box<str>>>,
    pub event_total: AtomicU64,
    pub keep_events: bool,
    /// A call into the plugin on this device never returned (see `World::each`).
    pub hung: AtomicBool,
    pub received: Received,
    /// The host's backup store: how many copies of deleted untrusted files it holds.
    pub backups: AtomicU64,
    /// The last object handle the device's consumers named (each object its own).
    objects: AtomicU64,
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
            Arc::new(MemoryStorage::default()),
        )
    }

    pub fn with_storage(
        id: usize,
        clock: Arc<Clock>,
        network: Arc<Network>,
        local_lists: Arc<Database>,
        storage: Arc<dyn Storage>,
    ) -> Self {
        Self {
            id,
            clock,
            network,
            local_lists,
            storage,
            storage_refuses: AtomicBool::new(false),
            storage_failing: AtomicBool::new(false),
            holding_events: AtomicBool::new(false),
            events: Mutex::default(),
            event_total: AtomicU64::new(0),
            keep_events: true,
            hung: AtomicBool::new(false),
            received: Received::default(),
            backups: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            environment: Mutex::new(Environment::default()),
            retention: LogRetention::DEFAULT,
        }
    }

    pub fn environment(&self) -> Environment {
        *self.environment.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_environment(&self, change: impl FnOnce(&mut Environment)) {
        change(&mut self.environment.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(super) fn record_event(&self, event_json: &str) {
        self.event_total.fetch_add(1, Ordering::Relaxed);
        if self.storage_failing.load(Ordering::Relaxed) {
            self.storage.hold_event(event_json);
            self.holding_events.store(true, Ordering::Relaxed);
        }
        if self.keep_events {
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event_json.into());
        }
    }

    /// A new object of the device's, as consumer `by` names it: a handle and a path.
    pub fn object(&self, by: &str, query: &plugin_api::FileQuery) -> (u64, String) {
        let handle = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        (handle, format!("/{by}/{handle}/{}", query.md5_hex()))
    }

    /// A write to the device's storage succeeded or failed.
    pub(super) fn wrote(&self, ok: bool) {
        self.storage_failing.store(!ok, Ordering::Relaxed);
        if ok && self.holding_events.swap(false, Ordering::Relaxed) {
            self.storage.release_held_events();
        }
    }

    /// Every event since the last `reset_counters`.
    pub fn events(&self) -> Vec<Box<str>> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events from number `start` on: a step's own, copied without the history.
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
}
