//! The task instance: the control plane behind one mutex, the data plane reading an
//! immutable snapshot, and everything that leaves the device passing the egress gates.
//!
//! Lock order: `plane` before any egress gate; the lookup path takes the plane (to record
//! a detection) only after releasing its gate.
//!
//! A change is recorded before it is made current, with two exceptions that make it fail
//! closed: a change that only narrows what may leave (or that the host reports) is made
//! current even when storage refuses the record, which then waits, in order, to be written
//! before any later one; a change that widens is refused while anything waits.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard,
};

use arc_swap::ArcSwap;
use plugin_api::{
    documents::{Counters, LedgerItem},
    DataCategory, ErrorKind, LicenseState, LogRetention, Service, TaskError, TaskState, TaskStatus,
};
use serde_json::value::RawValue;

use super::{
    cache::{url_shelf, Shelf, UrlWeight},
    clock::TaskClock,
    control::{Control, Txn},
    doc,
    egress::{Egress, BATCH_INTERVAL_MS},
    explain,
    host::Host,
    journal::{self, compact_after, entry_json, Event, JOURNAL_KEY},
    oddities::Oddities,
    route::Route,
    snapshot::{Hot, Snapshot, QUEUED},
    table::{Setting, Value},
};

pub struct Task<H: Host> {
    pub(super) host: H,
    plane: Mutex<Plane>,
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// The snapshot's `Hot` word, for the cache-hit path.
    hot: AtomicU64,
    pub(super) clock: TaskClock,
    pub(super) files: Shelf<[u8; 16]>,
    pub(super) urls: Shelf<String, UrlWeight>,
    pub(super) egress: Egress,
    pub(super) oddities: Oddities,
    retention: LogRetention,
}

/// The control plane: the state, and what the journal has not taken yet.
struct Plane {
    state: Control,
    /// Records of changes made current while storage refused them, oldest first.
    unrecorded: Vec<Vec<u8>>,
    /// Change records since the last base record.
    since_base: usize,
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
        for damage in &restored.damaged {
            log::warn!("{damage}; the log lost its entries, the state did not depend on it");
        }
        let control = Control::restored(restored.state.as_ref(), restored.next_seq)
            .map_err(|e| storage_error(format_args!("stored state is damaged: {e}")))?;
        let snapshot = Snapshot::of(&control);
        let retention = host.log_retention();
        let task = Self {
            hot: AtomicU64::new(Hot::of(&snapshot).pack()),
            snapshot: ArcSwap::from_pointee(snapshot),
            clock: TaskClock::starting_at(restored.last_time_ms),
            plane: Mutex::new(Plane {
                state: control,
                unrecorded: Vec::new(),
                since_base: records.len(),
            }),
            files: Shelf::default(),
            urls: url_shelf(),
            egress: Egress::new(retention.max_entries.min(usize::MAX as u64) as usize),
            oddities: Oddities::default(),
            retention,
            host,
        };
        {
            let mut plane = task.plane();
            let txn = plane.state.restarted(restored.last_task_state, task.now());
            match task.commit(&mut plane, txn) {
                Err(e) if e.kind == ErrorKind::STORAGE_ERROR && !plane.unrecorded.is_empty() => {
                    log::warn!("{}", e.message)
                }
                other => other?,
            }
        }
        Ok(task)
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// The task's time, read now (the host's clock, made monotonic).
    pub(super) fn now(&self) -> u64 {
        let reading = self.clock.read(self.host.now_ms());
        if let Some(back) = reading.went_back_ms {
            log::warn!(
                "the host's clock went back {back} ms; the task's time goes on from {} ms",
                reading.now_ms
            );
        }
        reading.now_ms
    }

    pub(super) fn hot(&self) -> Hot {
        Hot::unpack(self.hot.load(Ordering::Acquire))
    }

    fn plane(&self) -> MutexGuard<'_, Plane> {
        // The plane is only ever replaced whole after a commit, so it is consistent even if
        // a panic poisoned the lock.
        self.plane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a transaction, then makes it current and tells the host. A change that must
    /// apply is made current even when storage refuses it: the call then reports the
    /// storage error, and the record waits to be written before any other.
    fn commit(&self, plane: &mut Plane, txn: Txn) -> Result<(), TaskError> {
        if txn.is_empty() {
            return Ok(());
        }
        let entries: Vec<Box<RawValue>> = txn.entries.iter().map(entry_json).collect();
        let record = journal::change_record(txn.next.next_seq, &entries, txn.stored().as_ref());
        let mut outcome = Ok(());
        let mut recovered = 0;
        match self.write(plane, &record) {
            Ok(flushed) => recovered = flushed,
            Err(e) if txn.must_apply(&plane.state) => {
                plane.unrecorded.push(record);
                log::error!("storage refused a change that takes effect anyway: {e}");
                outcome = Err(storage_error(format_args!(
                    "the change took effect, but storage did not record it ({e}); it will be written when storage works again"
                )));
            }
            Err(e) => {
                return Err(storage_error(format_args!(
                    "the change was not applied: {e}"
                )))
            }
        }
        let effects = txn.effects;
        plane.state = txn.next;
        let next = Snapshot::of(&plane.state).after(&self.snapshot.load());
        self.egress.publish(
            &self.snapshot,
            next,
            effects.clear_cache,
            |snapshot: Arc<Snapshot>| {
                self.hot.store(Hot::of(&snapshot).pack(), Ordering::Release);
                self.snapshot.store(snapshot);
                if effects.clear_cache {
                    self.files.clear();
                    self.urls.clear();
                }
                if effects.retry_proxy {
                    self.egress.proxy.up();
                }
            },
        );
        for entry in &entries {
            self.host.emit_event(entry.get());
        }
        // Only now is the state current that a base record must hold.
        if plane.unrecorded.is_empty() && plane.since_base >= compact_after(self.retention) {
            self.compact(plane);
        }
        if recovered > 0 {
            log::info!("storage works again: {recovered} waiting record(s) written");
            let txn = plane.state.record(
                vec![Event::StorageRecovered {
                    records: recovered as u64,
                }],
                self.now(),
            );
            self.commit(plane, txn)?;
        }
        outcome
    }

    /// Appends `record` after whatever waits; answers how many waiting records went with
    /// it.
    fn write(&self, plane: &mut Plane, record: &[u8]) -> Result<usize, String> {
        let waiting = self.flush(plane)?;
        self.host.storage_append(JOURNAL_KEY, record)?;
        plane.since_base += 1;
        Ok(waiting)
    }

    /// Writes the records storage refused earlier, oldest first; answers how many.
    fn flush(&self, plane: &mut Plane) -> Result<usize, String> {
        let waiting = plane.unrecorded.len();
        while let Some(first) = plane.unrecorded.first() {
            self.host.storage_append(JOURNAL_KEY, first)?;
            plane.unrecorded.remove(0);
            plane.since_base += 1;
        }
        Ok(waiting)
    }

    /// Replaces the journal with one base record: the state as it is now (every record
    /// written), the consent records, and the entries the retention keeps.
    fn compact(&self, plane: &mut Plane) {
        plane.since_base = 0;
        let compacted = self
            .host
            .storage_records(JOURNAL_KEY)
            .map_err(|e| e.to_string())
            .and_then(|records| {
                journal::compact(
                    &records,
                    &plane.state.stored(),
                    plane.state.state,
                    self.clock.coarse(),
                    self.retention,
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|base| self.host.storage_replace(JOURNAL_KEY, &[&base]));
        if let Err(e) = compacted {
            log::warn!("the journal was not compacted: {e}");
        }
    }

    /// Runs a control operation: commits its transaction, or logs the refusal and returns
    /// the error with nothing changed.
    fn operate(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Control, u64) -> Result<Txn, TaskError>,
    ) -> Result<(), TaskError> {
        let mut plane = self.plane();
        let now = self.now();
        match f(&plane.state, now) {
            Ok(txn) => self.commit(&mut plane, txn),
            Err(error) => {
                let refusal = plane.state.refusal(operation, &error, now);
                if let Err(storage) = self.commit(&mut plane, refusal) {
                    log::warn!("could not log the refusal of {operation}: {storage}");
                }
                log::info!("{operation} refused: {error}");
                Err(error)
            }
        }
    }

    /// Records data-plane events in the task log.
    pub(super) fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut plane = self.plane();
        let txn = plane.state.record(events, self.now());
        if let Err(e) = self.commit(&mut plane, txn) {
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
            let plane = self.plane();
            plane.state.value(Setting::Schedule) == Value::Choice("at_application_start")
                && plane.state.state != TaskState::RUNNING
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
        snapshot.routing.route(&self.egress.proxy, now)
    }

    /// Periodic work: the queued statistics and KMP data go out, at most once per
    /// `BATCH_INTERVAL_MS`, each only what was counted under the consent in force; records
    /// that storage refused are written if it works again.
    pub fn tick(&self) {
        let now = self.now();
        self.retry_unrecorded();
        let queued = QUEUED.iter().any(|c| self.egress.queued(*c) > 0);
        if !queued || !self.batch_due(now) {
            return;
        }
        let mut events = Vec::new();
        for category in QUEUED {
            self.egress.send_batch(
                &self.snapshot,
                |snapshot| self.route(snapshot, now),
                category,
                now,
                &mut events,
                |service, items, timeout| self.host.ksn_upload(service, category, items, timeout),
            );
        }
        self.record(events);
    }

    /// Writes what storage refused earlier, if it takes it now.
    fn retry_unrecorded(&self) {
        let mut plane = self.plane();
        if plane.unrecorded.is_empty() {
            return;
        }
        if let Ok(written) = self.flush(&mut plane) {
            log::info!("storage works again: {written} waiting record(s) written");
            let txn = plane.state.record(
                vec![Event::StorageRecovered {
                    records: written as u64,
                }],
                self.now(),
            );
            if let Err(e) = self.commit(&mut plane, txn) {
                log::warn!("{e}");
            }
        }
    }

    /// Whether a batch may go out now; if so its time is recorded first, so that a restart
    /// does not send another within the minute. Nothing goes out unrecorded.
    fn batch_due(&self, now: u64) -> bool {
        let mut plane = self.plane();
        let last = plane.state.last_batch_ms.unwrap_or(0);
        if plane.state.state != TaskState::RUNNING
            || now < last.saturating_add(BATCH_INTERVAL_MS)
            || !plane.unrecorded.is_empty()
        {
            return false;
        }
        let txn = plane.state.batch_sent(now);
        match self.commit(&mut plane, txn) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("statistics batch postponed: {e}");
                false
            }
        }
    }

    pub fn settings_json(&self) -> String {
        explain::settings_json(&self.plane().state)
    }

    /// The journal as storage holds it, and after it what storage has not taken yet.
    fn journal_records(&self) -> Result<Vec<Vec<u8>>, TaskError> {
        let mut records = self
            .host
            .storage_records(JOURNAL_KEY)
            .map_err(|e| storage_error(format_args!("cannot read the journal: {e}")))?;
        records.extend(self.plane().unrecorded.iter().cloned());
        Ok(records)
    }

    pub fn task_log_json(&self) -> Result<String, TaskError> {
        journal::log_json(&self.journal_records()?).map_err(storage_error)
    }

    /// At most `max` entries of the log from `from_seq` on (a `LogPage`).
    pub fn task_log_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        journal::page(&self.journal_records()?, from_seq, max as usize)
            .map(|page| page.to_json())
            .map_err(storage_error)
    }

    pub fn ledger(&self) -> Vec<LedgerItem> {
        self.egress.ledger()
    }

    pub fn ledger_json(&self) -> String {
        serde_json::to_string(&self.egress.ledger()).expect("the ledger serialises")
    }

    /// At most `max` ledger items from `from_seq` on (a `LedgerPage`).
    pub fn ledger_page(&self, from_seq: u64, max: u32) -> String {
        serde_json::to_string(&self.egress.ledger_page(from_seq, max as usize))
            .expect("ledger pages serialise")
    }

    /// Counters for operators: cached verdicts, queued items, items in the ledger.
    pub fn counters(&self) -> Counters {
        Counters {
            cache_entries: self.cached_entries() as u64,
            queued_statistics: self.egress.queued(DataCategory::STATISTICS),
            queued_kmp: self.egress.queued(DataCategory::KMP),
            ledger_items: self.egress.ledger_len(),
        }
    }

    pub fn counters_json(&self) -> String {
        serde_json::to_string(&self.counters()).expect("counters serialise")
    }

    pub fn purge_cache(&self) {
        self.files.clear();
        self.urls.clear();
    }

    pub fn cached_entries(&self) -> usize {
        self.files.len() + self.urls.len()
    }
}
