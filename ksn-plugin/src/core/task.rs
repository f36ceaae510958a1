//! The task instance: the control plane behind one mutex, the data plane reading an
//! immutable snapshot, and everything that leaves the device passing the egress gate.
//!
//! Lock order: `control` before `egress`; the lookup path never takes `control` while it
//! holds `egress`.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex, MutexGuard, RwLock,
};

use arc_swap::ArcSwap;
use plugin_api::{ErrorKind, LicenseState, Service, TaskError, TaskState, TaskStatus};

use super::{
    cache::Shelf,
    control::{Control, Txn},
    doc,
    egress::{Outbound, BATCH_INTERVAL_MS},
    explain,
    host::Host,
    journal::{self, entry_json, Event, JOURNAL_KEY},
    route::{ProxyHealth, Route},
    snapshot::{Hot, Snapshot},
};

pub struct Task<H: Host> {
    pub(super) host: H,
    control: Mutex<Control>,
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// The snapshot's `Hot` word, for the cache-hit path.
    hot: AtomicU64,
    /// The host's time as of the last tick, miss or control operation: the cache-hit path
    /// judges expiry by it rather than call the host's clock on every lookup, so expiry is
    /// as precise as the host's ticks (verdicts live minutes).
    clock: AtomicU64,
    /// Held shared while sending, exclusively while publishing a new snapshot: once a
    /// withdrawal returns, no send that started under the old consent is still under way.
    pub(super) egress: RwLock<()>,
    pub(super) files: Shelf<[u8; 16]>,
    pub(super) urls: Shelf<String>,
    pub(super) outbound: Outbound,
    /// Services found unreachable (by `Service` number), for the loss/restore events.
    pub(super) lost: [AtomicBool; 4],
    /// When the proxy was found down: the route avoids it for a while (`route`).
    pub(super) proxy: ProxyHealth,
}

fn storage_error(message: impl std::fmt::Display) -> TaskError {
    TaskError::new(ErrorKind::STORAGE_ERROR, message)
}

impl<H: Host> Task<H> {
    /// Creates the task, restoring settings, consent and log numbering from storage.
    pub fn new(host: H) -> Result<Self, TaskError> {
        let records = host
            .storage_records(JOURNAL_KEY)
            .map_err(|e| storage_error(format_args!("cannot read the journal: {e}")))?;
        let restored = journal::restore(&records).map_err(storage_error)?;
        let control = Control::restored(restored.state.as_ref(), restored.next_seq)
            .map_err(|e| storage_error(format_args!("stored state is damaged: {e}")))?;
        let snapshot = Snapshot::of(&control);
        let task = Self {
            host,
            control: Mutex::new(control),
            hot: AtomicU64::new(Hot::of(&snapshot).pack()),
            clock: AtomicU64::new(0),
            snapshot: ArcSwap::from_pointee(snapshot),
            egress: RwLock::new(()),
            files: Shelf::default(),
            urls: Shelf::default(),
            outbound: Outbound::default(),
            lost: Default::default(),
            proxy: ProxyHealth::default(),
        };
        {
            let mut control = task.control();
            let txn = control.restarted(restored.last_task_state, task.now());
            task.commit(&mut control, txn)?;
        }
        Ok(task)
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// The host's time, read now; it also advances the cache's clock.
    pub(super) fn now(&self) -> u64 {
        let now = self.host.now_ms();
        self.clock.fetch_max(now, Ordering::Relaxed);
        now
    }

    /// The time the cache-hit path judges expiry by.
    pub(super) fn cache_clock(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    pub(super) fn hot(&self) -> Hot {
        Hot::unpack(self.hot.load(Ordering::Acquire))
    }

    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
        // Control is only ever replaced whole after a commit, so it is consistent even if a
        // panic poisoned the lock.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Persists a transaction, then makes it current and tells the host.
    fn commit(&self, control: &mut Control, txn: Txn) -> Result<(), TaskError> {
        if txn.is_empty() {
            return Ok(());
        }
        let entries: Vec<String> = txn.entries.iter().map(entry_json).collect();
        let record = journal::encode_record(txn.first_seq, &entries, txn.stored().as_ref());
        self.host
            .storage_append(JOURNAL_KEY, &record)
            .map_err(|e| storage_error(format_args!("the change was not applied: {e}")))?;
        let effects = txn.effects;
        *control = txn.next;
        {
            let _gate = self.egress.write().unwrap_or_else(|e| e.into_inner());
            let snapshot = Snapshot::of(control);
            self.hot.store(Hot::of(&snapshot).pack(), Ordering::Release);
            self.snapshot.store(Arc::new(snapshot));
            if effects.clear_cache {
                self.files.clear();
                self.urls.clear();
                for lost in &self.lost {
                    lost.store(false, Ordering::Relaxed);
                }
            }
            if effects.clear_cache || effects.retry_proxy {
                self.proxy.up();
            }
            self.outbound
                .discard(effects.discard_statistics, effects.discard_kmp);
        }
        for entry in &entries {
            self.host.emit_event(entry);
        }
        Ok(())
    }

    /// Runs a control operation: commits its transaction, or logs the refusal and returns
    /// the error with nothing changed.
    fn operate(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Control, u64) -> Result<Txn, TaskError>,
    ) -> Result<(), TaskError> {
        let mut control = self.control();
        let now = self.now();
        match f(&control, now) {
            Ok(txn) => self.commit(&mut control, txn),
            Err(error) => {
                let refusal = control.refusal(operation, &error, now);
                if let Err(storage) = self.commit(&mut control, refusal) {
                    log::warn!("could not log the refusal of {operation}: {storage}");
                }
                log::info!("{operation} refused: {error}");
                Err(error)
            }
        }
    }

    /// Whether a statistics/KMP batch may go out now; if so its time is recorded first, so
    /// that a restart does not send another within the minute. Nothing goes out unrecorded.
    pub(super) fn batch_due(&self, now: u64) -> bool {
        let mut control = self.control();
        let last = control.last_batch_ms.unwrap_or(0);
        if control.state != TaskState::RUNNING || now < last.saturating_add(BATCH_INTERVAL_MS) {
            return false;
        }
        let txn = control.batch_sent(now);
        match self.commit(&mut control, txn) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("statistics batch postponed: {e}");
                false
            }
        }
    }

    /// Records data-plane events in the task log.
    pub(super) fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut control = self.control();
        let txn = control.record(events, self.host.now_ms());
        if let Err(e) = self.commit(&mut control, txn) {
            log::warn!("could not record task events: {e}");
        }
    }

    pub fn push_policy(&self, policy_json: &str) -> Result<(), TaskError> {
        self.operate("push_policy", |control, now| {
            let policy = doc::parse_policy(policy_json).map_err(TaskError::invalid_settings)?;
            control.push_policy(policy, now)
        })
    }

    pub fn set_local(&self, settings_json: &str) -> Result<(), TaskError> {
        self.operate("set_local", |control, now| {
            let entries = doc::parse_local(settings_json).map_err(TaskError::invalid_settings)?;
            control.set_local(&entries, now)
        })
    }

    pub fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError> {
        self.operate("set_private_ksn", |control, now| {
            Ok(control.set_private_ksn(enabled, now))
        })
    }

    pub fn set_license(&self, license: LicenseState) -> Result<(), TaskError> {
        self.operate("set_license", |control, now| {
            Ok(control.set_license(license, now))
        })
    }

    pub fn start(&self) -> Result<(), TaskError> {
        self.operate("start", |control, now| control.start(now))
    }

    pub fn stop(&self) -> Result<(), TaskError> {
        self.operate("stop", |control, now| Ok(control.stop(now)))
    }

    /// The host has started: with `task.schedule` at `at_application_start` the task starts
    /// itself if it may. A refusal is logged; the host's start does not fail for it.
    pub fn application_started(&self) -> Result<(), TaskError> {
        let scheduled = {
            let control = self.control();
            control.value(super::table::Setting::Schedule)
                == super::table::Value::Choice("at_application_start")
                && control.state != TaskState::RUNNING
        };
        if scheduled {
            if let Err(error) = self.start() {
                log::info!("scheduled start refused: {error}");
            }
        }
        Ok(())
    }

    pub fn status(&self) -> TaskStatus {
        let snapshot = self.snapshot.load();
        TaskStatus {
            state: snapshot.state,
            error: snapshot.error.into(),
            network: if snapshot.running() {
                self.route(&snapshot, self.now()).first
            } else {
                Service::NONE
            },
            private_ksn: snapshot.private_ksn,
            license: snapshot.license,
        }
    }

    /// Where the next request goes: the one decision requests and `status` share.
    pub(super) fn route(&self, snapshot: &Snapshot, now: u64) -> Route {
        snapshot.routing.route(&self.proxy, now)
    }

    pub fn settings_json(&self) -> String {
        explain::settings_json(&self.control())
    }

    pub fn task_log_json(&self) -> Result<String, TaskError> {
        let records = self
            .host
            .storage_records(JOURNAL_KEY)
            .map_err(|e| storage_error(format_args!("cannot read the journal: {e}")))?;
        journal::log_json(&records).map_err(storage_error)
    }

    pub fn purge_cache(&self) {
        self.files.clear();
        self.urls.clear();
    }

    pub fn cached_entries(&self) -> usize {
        self.files.len() + self.urls.len()
    }
}
