//! The task instance: the control plane behind one mutex, the data plane reading an
//! immutable snapshot, and everything that leaves the device passing the egress gates.
//!
//! Lock order: `plane` before any egress gate; the lookup path takes the plane (to record
//! a detection) only after releasing its gate.
//!
//! A change is recorded before it is made current, with exceptions that make it fail
//! closed: a change that only narrows what may leave (or that the host reports, or that
//! only records a detection or a refusal) is made current even when storage refuses the
//! record, which then waits, in order, to be written before any later one; a change that
//! widens is refused; a change that does both takes its narrowing part at once and the
//! rest once storage records it. At creation the journal is reconciled with the events the
//! host holds, so a restart before storage works again loses no narrowing; over a host
//! that keeps no events the journal itself must prove it (a clean close), or the task
//! fails closed.
//!
//! Events are queued in the outbox under the plane's lock and handed to the host once it
//! is released (`PlaneGuard`), so a slow host callback never delays a change of consent.

use std::{
    ops::{Deref, DerefMut},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use plugin_api::{
    documents::{Counters, Importance, LedgerItem},
    CallOutcome, ControlCall, DataCategory, ErrorKind, LicenseState, LogRetention, Operation,
    Service, TaskError, TaskState, TaskStatus,
};

use super::{
    cache::{url_shelf, Shelf, UrlWeight},
    clock::TaskClock,
    consent::Source,
    control::{Control, Txn, Waiting, WaitingChange},
    doc,
    egress::{Egress, BATCH_INTERVAL_MS, LEDGER_KEY},
    explain,
    host::Host,
    journal::{self, compact_after, entry_json, Event, JOURNAL_KEY},
    oddities::Oddities,
    outbox::Outbox,
    reconcile,
    route::Route,
    snapshot::{Current, Hot, Snapshot, QUEUED},
    table::{Setting, Value},
};

pub struct Task<H: Host> {
    pub(super) host: H,
    plane: Mutex<Plane>,
    pub(super) snapshot: Current,
    /// The snapshot's `Hot` word, for the cache-hit path.
    hot: AtomicU64,
    pub(super) clock: TaskClock,
    pub(super) files: Shelf<[u8; 16]>,
    pub(super) urls: Shelf<String, UrlWeight>,
    pub(super) egress: Egress,
    pub(super) oddities: Oddities,
    retention: LogRetention,
    /// The policy documents read, shared with the other tasks the host made.
    policies: Arc<doc::LastPolicy>,
    /// Events on their way to the host, handed over outside the plane's lock.
    outbox: Outbox,
    /// Whether the host answered `events_since` (it keeps this task's events); if not,
    /// the journal must end with a clean close for the next start to trust it.
    keeps_events: bool,
    /// This session's first record is durable: a clean close at its end may be written.
    session_open: bool,
    /// The host reported the licence since the task was created (the boot order): a
    /// start before that would send requests under the licence last restored.
    license_reported: AtomicBool,
}

/// The plane, locked. Released, it hands the host the events its changes queued.
struct PlaneGuard<'a, H: Host> {
    guard: Option<MutexGuard<'a, Plane>>,
    task: &'a Task<H>,
}

impl<H: Host> Deref for PlaneGuard<'_, H> {
    type Target = Plane;
    fn deref(&self) -> &Plane {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<H: Host> DerefMut for PlaneGuard<'_, H> {
    fn deref_mut(&mut self) -> &mut Plane {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<H: Host> Drop for PlaneGuard<'_, H> {
    fn drop(&mut self) {
        self.guard.take();
        self.task.drain_events();
    }
}

/// The control plane: the state, and what the journal has not taken yet.
struct Plane {
    state: Control,
    /// Records of changes made current while storage refused them, oldest first; `true`
    /// for a record of facts only (detections, refusals).
    unrecorded: Vec<(Vec<u8>, bool)>,
    /// How many of those are of facts only: bounded by `FACTS_WAITING`.
    facts_waiting: usize,
    /// Entries of fact records past the bound, which reached the host but not the log.
    not_recorded: u64,
    /// Where the journal's numbering goes on: a record that starts elsewhere says so.
    journal_next: u64,
    /// Change records since the last base record.
    since_base: usize,
    /// The consent records of the journal's base record, when known: a compaction that
    /// drops every other entry of the base need not read it again.
    base_consent: Option<Vec<String>>,
    /// The journal holds a record (a clean close is worth writing).
    started: bool,
}

/// At most this many records of detections and refusals wait for storage; past it, the
/// log records how many entries it did not keep (the host received every one as an event).
pub const FACTS_WAITING: usize = 1024;

/// Why a transaction did not commit cleanly.
enum Uncommitted {
    /// It took effect, but storage did not record it: it waits.
    TookEffect(TaskError),
    /// Storage refused it and it was not applied: nothing changed.
    Refused(TaskError, Box<Txn>),
}

impl From<Uncommitted> for TaskError {
    fn from(u: Uncommitted) -> Self {
        match u {
            Uncommitted::TookEffect(e) | Uncommitted::Refused(e, _) => e,
        }
    }
}

fn storage_error(message: impl std::fmt::Display) -> TaskError {
    TaskError::new(ErrorKind::STORAGE_ERROR, message)
}

impl<H: Host> Task<H> {
    /// Creates the task, restoring settings, consent and log numbering from storage.
    pub fn new(host: H) -> Result<Self, TaskError> {
        Self::sharing(host, Arc::default())
    }

    /// The same, reading policy documents through `policies`, which other tasks share.
    pub fn sharing(host: H, policies: Arc<doc::LastPolicy>) -> Result<Self, TaskError> {
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
        let mut task = Self {
            hot: AtomicU64::new(Hot::of(&snapshot).pack()),
            snapshot: Current::new(snapshot),
            clock: TaskClock::starting_at(restored.last_time_ms),
            plane: Mutex::new(Plane {
                journal_next: control.next_seq,
                state: control,
                unrecorded: Vec::new(),
                facts_waiting: 0,
                not_recorded: 0,
                since_base: records.len(),
                started: !records.is_empty(),
                base_consent: journal::base_consent(&records),
            }),
            files: Shelf::default(),
            urls: url_shelf(),
            egress: Egress::new(retention.max_entries.min(usize::MAX as u64) as usize),
            oddities: Oddities::default(),
            retention,
            policies,
            outbox: Outbox::default(),
            keeps_events: false,
            session_open: false,
            license_reported: AtomicBool::new(false),
            host,
        };
        // The ledger is an account of what left: a record that cannot be read loses its
        // items, and the task goes on.
        match task.host.storage_records(LEDGER_KEY) {
            Ok(records) => match task.egress.restore_ledger(&records) {
                0 => {}
                damaged => log::warn!(
                    "{damaged} record(s) of the ledger are unreadable: their items are lost to it"
                ),
            },
            Err(e) => log::warn!("the ledger could not be read ({e}): it starts empty"),
        }
        let held = task.host.events_since(restored.next_seq);
        task.keeps_events = held.is_ok();
        {
            let mut plane = task.plane();
            let mut last_state = restored.last_task_state;
            let now = task.now();
            match &held {
                Ok(held) => {
                    if let Some((txn, last)) = reconcile::reconcile(
                        &plane.state,
                        last_state,
                        held,
                        restored.last_time_ms,
                        now,
                    ) {
                        log::warn!(
                            "the journal lacked changes that took effect before the restart; reconciled from the host's events"
                        );
                        last_state = last;
                        task.commit_waiting_allowed(&mut plane, txn)?;
                    }
                }
                Err(reason) if reason == plugin_api::KEEPS_NO_EVENTS => log::info!(
                    "the host keeps no events: the journal alone shows whether the last session lost a withdrawal"
                ),
                // A host that could not say (its callback failed or threw) is taken as
                // one that keeps none: never as one that has nothing waiting.
                Err(reason) => log::warn!(
                    "the host's events could not be read ({reason}): the journal alone shows whether the last session lost a withdrawal"
                ),
            }
            let mut txn = plane.state.restarted(last_state, now);
            if held.is_err() && !records.is_empty() && !restored.clean_close {
                txn = txn.and_then(|c| c.unverified_restart(now));
                log::warn!(
                    "the last session did not end cleanly and this host keeps no events: the acceptance ends until it is confirmed again (fail closed)"
                );
            }
            // This session's first record, written before anything else happens: a clean
            // close before it proves nothing about this session. A host that keeps no
            // events has nothing else to go by, so over one it must be durable; a host that
            // keeps them has its events, and the record waits like any other.
            if !records.is_empty() && (held.is_err() || restored.clean_close) {
                txn.force_persist();
            }
            task.commit_waiting_allowed(&mut plane, txn)?;
            if held.is_err() && !records.is_empty() && !plane.unrecorded.is_empty() {
                return Err(storage_error(
                    "storage refused the record that opens this session, and this host keeps no events: nothing could show at the next start that no withdrawal was lost, so the task is not created; create it again once storage takes writes",
                ));
            }
            task.resume_waiting(&mut plane);
        }
        task.session_open = true;
        Ok(task)
    }

    /// Commits a change that takes effect whatever storage does; a record left waiting is
    /// not an error of the caller's.
    fn commit_waiting_allowed(&self, plane: &mut Plane, txn: Txn) -> Result<(), TaskError> {
        match self.commit(plane, txn) {
            Err(e) if e.kind == ErrorKind::STORAGE_ERROR && !plane.unrecorded.is_empty() => {
                log::info!("{}", e.message);
                Ok(())
            }
            other => other,
        }
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

    fn plane(&self) -> PlaneGuard<'_, H> {
        // The plane is only ever replaced whole after a commit, so it is consistent even if
        // a panic poisoned the lock.
        PlaneGuard {
            guard: Some(self.plane.lock().unwrap_or_else(|e| e.into_inner())),
            task: self,
        }
    }

    /// Hands the host the events queued, unless another thread is doing so.
    fn drain_events(&self) {
        self.outbox.drain(|event| self.host.emit_event(event));
    }

    /// Records a transaction, then makes it current and tells the host. A change that must
    /// apply is made current even when storage refuses it: the call then reports the
    /// storage error, and the record waits to be written before any other.
    fn commit(&self, plane: &mut Plane, txn: Txn) -> Result<(), TaskError> {
        self.try_commit(plane, txn).map_err(TaskError::from)
    }

    fn try_commit(&self, plane: &mut Plane, mut txn: Txn) -> Result<(), Uncommitted> {
        if txn.is_empty() {
            return Ok(());
        }
        txn.drop_waiting_rest(&plane.state);
        let entries: Vec<String> = txn.entries.iter().map(entry_json).collect();
        let from_seq = (txn.first_seq != plane.journal_next).then_some(txn.first_seq);
        let record =
            journal::change_record(txn.next.next_seq, from_seq, &entries, txn.stored().as_ref());
        let mut outcome = Ok(());
        let mut recovered = 0;
        let mut wrote = false;
        match self.write(plane, &record) {
            Ok(flushed) => {
                recovered = flushed;
                wrote = true;
                plane.journal_next = txn.next.next_seq;
            }
            Err(e) if txn.must_apply(&plane.state) => {
                if txn.fact && plane.facts_waiting >= FACTS_WAITING {
                    plane.not_recorded += entries.len() as u64;
                } else {
                    plane.unrecorded.push((record, txn.fact));
                    plane.facts_waiting += usize::from(txn.fact);
                    plane.journal_next = txn.next.next_seq;
                }
                if txn.fact {
                    log::debug!("storage refused a record of what happened; it waits: {e}");
                } else {
                    log::warn!("storage refused a change that takes effect anyway: {e}");
                }
                outcome = Err(Uncommitted::TookEffect(storage_error(format_args!(
                    "the change took effect, but storage did not record it ({e}); it will be written when storage works again"
                ))));
            }
            Err(e) => {
                return Err(Uncommitted::Refused(
                    storage_error(format_args!("the change was not applied: {e}")),
                    Box::new(txn),
                ))
            }
        }
        let effects = txn.effects;
        let resumed = txn.resumes;
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
        self.outbox.post(entries);
        // Only now is the state current that a base record must hold.
        if plane.unrecorded.is_empty() && plane.since_base >= compact_after(self.retention) {
            self.compact(plane);
        }
        if recovered > 0 {
            self.recovered(plane, recovered)
                .map_err(Uncommitted::TookEffect)?;
        }
        // What waits for this change (Private KSN's deferred values, the rest of a change):
        // applied now if it can be, whole or, if it only narrows, waiting for storage.
        if !resumed && plane.state.waiting.is_some() {
            self.resume_waiting(plane);
        }
        let _ = wrote;
        outcome
    }

    /// Storage took the records that waited: the log says so, and how many entries it
    /// could not keep.
    fn recovered(&self, plane: &mut Plane, records: usize) -> Result<(), TaskError> {
        log::info!("storage works again: {records} waiting record(s) written");
        let mut events = vec![Event::StorageRecovered {
            records: records as u64,
        }];
        if plane.not_recorded > 0 {
            events.push(Event::EntriesNotRecorded {
                entries: std::mem::take(&mut plane.not_recorded),
            });
        }
        let txn = plane.state.record(events, self.now());
        self.commit(plane, txn)
    }

    /// Applies the waiting part of an earlier change if storage records it now; while it
    /// does not, the part keeps waiting.
    fn resume_waiting(&self, plane: &mut Plane) {
        let Some(txn) = plane.state.resume(self.now()) else {
            return;
        };
        match self.try_commit(plane, txn) {
            Ok(()) => {}
            Err(Uncommitted::Refused(e, _)) => log::debug!("a waiting change still waits: {e}"),
            Err(Uncommitted::TookEffect(e)) => log::warn!("{e}"),
        }
    }

    /// Appends `record` after whatever waits; answers how many waiting records went with
    /// it.
    fn write(&self, plane: &mut Plane, record: &[u8]) -> Result<usize, String> {
        let waiting = self.flush(plane)?;
        self.host.storage_append(JOURNAL_KEY, record)?;
        plane.since_base += 1;
        plane.started = true;
        Ok(waiting)
    }

    /// Writes the records storage refused earlier, oldest first; answers how many.
    fn flush(&self, plane: &mut Plane) -> Result<usize, String> {
        let waiting = plane.unrecorded.len();
        while let Some((first, fact)) = plane.unrecorded.first() {
            self.host.storage_append(JOURNAL_KEY, first)?;
            plane.facts_waiting -= usize::from(*fact);
            plane.unrecorded.remove(0);
            plane.since_base += 1;
            plane.started = true;
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
                    plane.base_consent.as_deref(),
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|base| {
                self.host
                    .storage_replace(JOURNAL_KEY, &[&base.record])
                    .map(|()| base.consent)
            });
        match compacted {
            Ok(consent) => plane.base_consent = Some(consent),
            Err(e) => log::warn!("the journal was not compacted: {e}"),
        }
    }

    /// Runs a control operation: commits its transaction, or logs the refusal and returns
    /// the error with nothing changed. A settings change storage refuses to record takes
    /// its narrowing part at once, and the rest (`rest`, the change itself) once storage
    /// records it.
    fn operate(
        &self,
        operation: &'static str,
        rest: Option<(WaitingChange, Source)>,
        f: impl FnOnce(&Control, u64) -> Result<Txn, TaskError>,
    ) -> CallOutcome {
        let mut plane = self.plane();
        let result = self.operate_locked(&mut plane, operation, rest, f);
        // The status as this call leaves it: no other control call can come between.
        CallOutcome {
            result: result.into(),
            status: self.status(),
        }
    }

    fn operate_locked(
        &self,
        plane: &mut Plane,
        operation: &'static str,
        rest: Option<(WaitingChange, Source)>,
        f: impl FnOnce(&Control, u64) -> Result<Txn, TaskError>,
    ) -> Result<(), TaskError> {
        let plane: &mut Plane = plane;
        // What waited comes first: changes apply in the order they were made.
        self.resume_waiting(plane);
        let now = self.now();
        match f(&plane.state, now) {
            Ok(txn) => match self.try_commit(plane, txn) {
                Ok(()) => Ok(()),
                Err(Uncommitted::TookEffect(e)) => match &plane.state.waiting {
                    Some(waiting) => Err(storage_error(format_args!(
                        "{}; {} waits: it is applied once storage records it",
                        e.message,
                        waiting.words()
                    ))),
                    None => Err(e),
                },
                Err(Uncommitted::Refused(e, txn)) => {
                    let Some((change, source)) = rest else {
                        return Err(e);
                    };
                    let waiting = Waiting {
                        operation,
                        change,
                        since_ms: now,
                    };
                    let words = waiting.words();
                    let Some(part) = plane.state.narrowing_part(&txn.next, source, waiting, now)
                    else {
                        return Err(e);
                    };
                    let narrowed = part.withdrawals();
                    let recorded = match self.try_commit(plane, part) {
                        Ok(()) => "recorded",
                        Err(_) => "waiting to be recorded",
                    };
                    Err(storage_error(format_args!(
                        "storage refused the change: its narrowing part took effect ({narrowed}; {recorded}), and {words} waits: it is applied once storage records it"
                    )))
                }
            },
            Err(error) => {
                let refusal = plane.state.refusal(operation, &error, now);
                if let Err(Uncommitted::Refused(storage, _)) = self.try_commit(plane, refusal) {
                    log::warn!("could not log the refusal of {operation}: {storage}");
                }
                log::info!("{operation} refused: {error}");
                Err(error)
            }
        }
    }

    /// Records one event of the data plane (a detection): one record, appended at once,
    /// with nothing of the control plane's state copied or published (a fact changes none
    /// of it); the general path when records wait, a change waits, or storage refuses.
    pub(super) fn record_one(
        &self,
        importance: Importance,
        write_event: impl FnOnce(&mut Vec<u8>),
        owned: impl FnOnce() -> Event,
    ) {
        let mut plane = self.plane();
        if !plane.unrecorded.is_empty() || plane.state.waiting.is_some() {
            drop(plane);
            return self.record(vec![owned()]);
        }
        let seq = plane.state.next_seq;
        let from_seq = (seq != plane.journal_next).then_some(seq);
        let (record, json) =
            journal::one_entry_record(seq, self.now(), importance, write_event, from_seq);
        if self.host.storage_append(JOURNAL_KEY, &record).is_err() {
            drop(plane);
            return self.record(vec![owned()]);
        }
        plane.state.next_seq = seq + 1;
        plane.journal_next = seq + 1;
        plane.since_base += 1;
        plane.started = true;
        // The entry's JSON, as the record holds it (serde_json writes UTF-8): the record
        // itself goes to the outbox, with no copy.
        self.outbox.post_within(record, json);
        if plane.since_base >= compact_after(self.retention) {
            self.compact(&mut plane);
        }
    }

    /// Records data-plane events in the task log.
    pub(super) fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut plane = self.plane();
        let txn = plane.state.record(events, self.now());
        match self.try_commit(&mut plane, txn) {
            Ok(()) | Err(Uncommitted::TookEffect(_)) => {}
            Err(Uncommitted::Refused(e, _)) => log::warn!("could not record task events: {e}"),
        }
    }

    /// A control call, and the task's status as it ended.
    pub fn control(&self, call: ControlCall<'_>) -> CallOutcome {
        let document = call.document.as_str();
        match call.operation {
            Operation::PUSH_POLICY => {
                let policy = self
                    .policies
                    .parse(document)
                    .map_err(TaskError::invalid_settings);
                let rest = policy
                    .as_ref()
                    .ok()
                    .map(|p| (WaitingChange::Policy(p.clone()), Source::Policy));
                self.operate("push_policy", rest, |control, now| {
                    control.push_policy(policy?, now)
                })
            }
            Operation::SET_LOCAL => {
                let entries = doc::parse_local(document).map_err(TaskError::invalid_settings);
                let rest = entries
                    .as_ref()
                    .ok()
                    .map(|e| (WaitingChange::Local(e.clone()), Source::Local));
                self.operate("set_local", rest, |control, now| {
                    control.set_local(&entries?, now)
                })
            }
            Operation::SET_PRIVATE_KSN => self.operate("set_private_ksn", None, |control, now| {
                Ok(control.set_private_ksn(call.enabled, now))
            }),
            Operation::SET_LICENSE => self.operate("set_license", None, |control, now| {
                if !LicenseState::ALL.contains(&call.license) {
                    return Err(TaskError::new(
                        ErrorKind::INVALID_ARGUMENT,
                        format_args!(
                            "license: {} is not a licence state this contract knows (one of {})",
                            call.license.0,
                            LicenseState::names().join(", ")
                        ),
                    ));
                }
                // Under the plane's lock: a start after this call sees it.
                self.license_reported.store(true, Ordering::Release);
                Ok(control.set_license(call.license, now))
            }),
            Operation::APPLICATION_STARTED => self.application_started_outcome(),
            Operation::START => self.operate("start", None, |control, now| {
                self.boot_order("start")?;
                control.start(now)
            }),
            Operation::STOP => self.operate("stop", None, |control, now| Ok(control.stop(now))),
            unknown => CallOutcome {
                result: Err(TaskError::new(
                    ErrorKind::INVALID_ARGUMENT,
                    format_args!(
                        "operation: {} is not an operation this contract knows (one of {})",
                        unknown.0,
                        Operation::names().join(", ")
                    ),
                ))
                .into(),
                status: self.status(),
            },
        }
    }

    pub fn push_policy(&self, policy_json: &str) -> Result<(), TaskError> {
        self.control(ControlCall::push_policy(policy_json))
            .result
            .into_result()
    }

    pub fn set_local(&self, settings_json: &str) -> Result<(), TaskError> {
        self.control(ControlCall::set_local(settings_json))
            .result
            .into_result()
    }

    pub fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError> {
        self.control(ControlCall::set_private_ksn(enabled))
            .result
            .into_result()
    }

    pub fn set_license(&self, license: LicenseState) -> Result<(), TaskError> {
        self.control(ControlCall::set_license(license))
            .result
            .into_result()
    }

    pub fn start(&self) -> Result<(), TaskError> {
        self.control(ControlCall::start()).result.into_result()
    }

    pub fn stop(&self) -> Result<(), TaskError> {
        self.control(ControlCall::stop()).result.into_result()
    }

    /// The host has started: with `task.schedule` at `at_application_start` the task starts
    /// itself if it may. A scheduled start that is refused answers the refusal (its kind
    /// and why, and the status after the call says the task did not start); the task is up
    /// all the same. Before the host reported the licence in this session (the boot
    /// order), a scheduled start is refused with `invalid_state` and nothing changes.
    pub fn application_started(&self) -> Result<(), TaskError> {
        self.application_started_outcome().result.into_result()
    }

    /// The boot order (`set_license` before any start) as an error, if it was not kept.
    fn boot_order(&self, operation: &str) -> Result<(), TaskError> {
        if self.license_reported.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(TaskError::invalid_state(format_args!(
            "{operation}: the licence has not been reported since the task was created: call set_license and set_private_ksn first, then push_policy, then {operation} (the boot order); a start now would send requests under the licence last stored"
        )))
    }

    fn application_started_outcome(&self) -> CallOutcome {
        let mut plane = self.plane();
        let scheduled = plane.state.value(Setting::Schedule)
            == Value::Choice("at_application_start")
            && plane.state.state != TaskState::RUNNING;
        let result = match self.boot_order("application_started") {
            Err(error) if scheduled => Err(error),
            _ => {
                let started = if scheduled {
                    self.operate_locked(&mut plane, "start", None, |control, now| {
                        control.start(now)
                    })
                    .map_err(|error| {
                        log::info!("scheduled start refused: {error}");
                        TaskError::new(
                            error.kind,
                            format_args!("the scheduled start was refused: {}", error.message),
                        )
                    })
                } else {
                    Ok(())
                };
                // The host learns from this call that records wait (the restart's own, a
                // reconciliation's), as it would from any call that made them, and that
                // the scheduled start was refused, with the reason.
                match (started, plane.unrecorded.len()) {
                    (Err(refused), 0) => Err(refused),
                    (Ok(()), 0) => Ok(()),
                    (started, waiting) => Err(storage_error(format_args!(
                        "the task is up, but {waiting} record(s) of changes that took effect wait for storage, which refuses writes; they are written when it works again{}",
                        started.err().map_or(String::new(), |e| format!("; and {}", e.message))
                    ))),
                }
            }
        };
        drop(plane);
        CallOutcome {
            result: result.into(),
            status: self.status(),
        }
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
        self.save_ledger();
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

    /// Writes what storage refused earlier, if it takes it now, and then what waited for
    /// it.
    fn retry_unrecorded(&self) {
        let mut plane = self.plane();
        if !plane.unrecorded.is_empty() {
            match self.flush(&mut plane) {
                Ok(written) => {
                    if let Err(e) = self.recovered(&mut plane, written) {
                        log::warn!("{e}");
                    }
                }
                Err(_) => return,
            }
        }
        self.resume_waiting(&mut plane);
    }

    /// Writes the ledger's items entered since the last save to storage, as one record
    /// (at each tick, and as the task ends): a restart keeps what left the device. While
    /// storage refuses, they wait in memory (bounded by the ledger's own bound).
    fn save_ledger(&self) {
        let Some(save) = self.egress.unsaved_ledger() else {
            return;
        };
        if let Err(e) = self.host.storage_append(LEDGER_KEY, &save.record) {
            log::debug!("the ledger's newest items wait for storage: {e}");
            return;
        }
        if let Some(base) = self.egress.ledger_saved(save.count) {
            if let Err(e) = self.host.storage_replace(LEDGER_KEY, &[&base]) {
                log::debug!("the ledger in storage was not compacted: {e}");
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
        records.extend(self.plane().unrecorded.iter().map(|(r, _)| r.clone()));
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

impl<H: Host> Drop for Task<H> {
    /// Records that wait are written if storage takes them now: a host that drops the
    /// task (to restart it) loses none it could have kept. A session that ends with
    /// nothing waiting says so in a last record: the clean close a start over a host that
    /// keeps no events needs (written over any host, so that the journal alone says it).
    fn drop(&mut self) {
        self.save_ledger();
        let mut plane = self.plane();
        if !plane.unrecorded.is_empty() {
            match self.flush(&mut plane) {
                Ok(written) => log::info!("{written} waiting record(s) written as the task ends"),
                Err(e) if self.keeps_events => log::warn!(
                    "{} record(s) still wait for storage as the task ends ({e}); the host's events keep them for the next start",
                    plane.unrecorded.len()
                ),
                Err(e) => log::warn!(
                    "{} record(s) still wait for storage as the task ends ({e}), and this host keeps no events: the next start cannot show that no withdrawal was lost, so its acceptance ends (fail closed)",
                    plane.unrecorded.len()
                ),
            }
        }
        if self.session_open && plane.started && plane.unrecorded.is_empty() {
            let next_seq = plane.state.next_seq;
            let from_seq = (next_seq != plane.journal_next).then_some(next_seq);
            let record = journal::clean_close_record(next_seq, from_seq);
            if let Err(e) = self.host.storage_append(JOURNAL_KEY, &record) {
                log::warn!(
                    "the record of a clean close was not written ({e}): this host keeps no events, so the next start's acceptance ends (fail closed)"
                );
            }
        }
    }
}
