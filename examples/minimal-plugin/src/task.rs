//! The task: its state and task log, kept in the host's storage; the start gate; the one
//! lookup path; the ledger of what it sent.
//!
//! Restart: the journal proves that nothing narrowed was lost only when it ends with the
//! record a session writes as it ends with nothing waiting (`closed`). This plugin does
//! not read the host's events, so where the journal does not end so (the host was killed,
//! or storage refused a withdrawal until the end), the acceptance is suspended (fail
//! closed) until it is confirmed again; and a session over a journal is created only once
//! its first record is written, so that the close before it is not taken for its own.
//!
//! Concurrency: `inner` (a mutex) holds everything; `gate` (a read-write lock) is held
//! shared around every request to KSN and exclusively by every control operation, taken
//! before `inner`. So when an operation that withdraws consent returns, no request that the
//! old consent allowed is still in flight, and none starts after it.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError, RwLock},
};

use plugin_api::{
    abi_stable::std_types::{ROption, RSlice, RStr},
    documents::{
        Counters, Event, Importance, LedgerItem, LedgerOutcome, LedgerPage, LogEntry, LogPage,
        Source, Statement,
    },
    AnswerSource, DataCategory, ErrorKind, FileQuery, HostBox, LicenseState, LogRetention,
    LookupAnswer, ObjectAction, Service, TaskError, TaskImpl, TaskState, TaskStatus,
    TransportFailure, Verdict,
};
use serde::{Deserialize, Serialize};

use crate::settings::{
    read_local, read_policy, Layers, KSN_ACCEPTED, LOOKUP_TIMEOUT, SCHEDULE, SEND_FILES,
    STATEMENT_VERSION,
};

/// The one storage key: the task's journal. Each change appends one record (the entries
/// it logged and the whole state after it); the last record's state is the state.
pub const JOURNAL: &str = "minimal-plugin.journal";
/// After this many records the journal is compacted into one (`storage_replace`).
const COMPACT_EVERY: u64 = 256;
/// Items the ledger keeps (it lives as long as the task instance).
const LEDGER_KEEP: usize = 10_000;
/// The most entries or items one page carries, whatever `max` asks for.
const PAGE_MAX: u32 = 1_000;
/// What a file lookup sends: the MD5 checksum and the size.
const FILE_QUERY_BYTES: u64 = 16 + 8;

/// The persisted state: everything but the log itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    /// The `seq` of the next log entry.
    next_seq: u64,
    /// The time of the last entry, so that times never go back.
    time_ms: u64,
    state: TaskState,
    error: Option<ErrorKind>,
    license: LicenseState,
    private_ksn: bool,
    layers: Layers,
    /// The log entry of the acceptance that allows asking about files, while one does.
    files_consent: Option<u64>,
    /// The acceptance is not in force: a restart could not show that no withdrawal was
    /// lost. A local change or a policy that accepts again confirms it.
    #[serde(default)]
    suspended: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            next_seq: 0,
            time_ms: 0,
            state: TaskState::STOPPED,
            error: None,
            license: LicenseState::UNKNOWN,
            private_ksn: false,
            layers: Layers::default(),
            files_consent: None,
            suspended: false,
        }
    }
}

/// One record of the journal.
#[derive(Serialize, Deserialize)]
struct Record {
    entries: Vec<LogEntry>,
    state: State,
    /// The last record of a session that ended with nothing waiting for storage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    closed: bool,
}

/// A change being made: the next state, and the events it logs.
struct Change {
    next: State,
    events: Vec<Event>,
}

impl Change {
    fn new(state: &State) -> Self {
        Self {
            next: state.clone(),
            events: Vec::new(),
        }
    }

    /// Adds an event; answers the `seq` its log entry will have.
    fn push(&mut self, event: Event) -> u64 {
        self.events.push(event);
        self.next.next_seq + self.events.len() as u64 - 1
    }
}

struct Inner {
    state: State,
    /// The task log as kept (retention applies when the journal is compacted).
    log: VecDeque<LogEntry>,
    /// Entries that took effect while storage refused them; written with the next record.
    unwritten: Vec<LogEntry>,
    /// Records in the journal since it was last compacted.
    records: u64,
    compact_at: u64,
    retention: LogRetention,
    ledger: VecDeque<LedgerItem>,
    ledger_next: u64,
    /// The last request to Global KSN failed (`ksn_unavailable` was logged).
    ksn_down: bool,
    /// The host reported the licence in this session: no start before (the boot order).
    license_reported: bool,
}

/// The minimal KSN Usage task.
pub struct MinimalTask {
    host: HostBox,
    gate: RwLock<()>,
    inner: Mutex<Inner>,
}

fn storage_error(message: impl std::fmt::Display) -> TaskError {
    TaskError::new(ErrorKind::STORAGE_ERROR, message)
}

fn internal(e: serde_json::Error) -> TaskError {
    TaskError::invalid_state(format_args!("a document does not serialise: {e}"))
}

/// Whether the task may run in `state`: the statement accepted, a licence covering KSN.
fn may_run(state: &State) -> Result<(), TaskError> {
    if state.private_ksn {
        return Err(TaskError::new(
            ErrorKind::STATEMENT_NOT_ACCEPTED,
            "Private KSN is in use, and this plugin has no Private KSN statement (it works with Global KSN only)",
        ));
    }
    if !accepted(state) {
        return Err(TaskError::new(
            ErrorKind::STATEMENT_NOT_ACCEPTED,
            format_args!("the KSN statement is not accepted ({KSN_ACCEPTED})"),
        ));
    }
    if state.license != LicenseState::VALID {
        return Err(TaskError::new(
            ErrorKind::LICENSE_VIOLATION,
            format_args!("the licence ({}) does not cover KSN", state.license),
        ));
    }
    Ok(())
}

/// A start before the host reported the licence in this session.
fn boot_order(operation: &str) -> TaskError {
    TaskError::invalid_state(format_args!(
        "{operation}: the licence has not been reported since the task was created: call set_license and set_private_ksn first, then push_policy, then {operation} (the boot order)"
    ))
}

/// Whether the statement's acceptance is in force.
fn accepted(state: &State) -> bool {
    state.layers.flag(KSN_ACCEPTED) && !state.suspended
}

/// Whether a change of settings only narrows what may leave the device (a withdrawal of
/// the statement or of the files category, and nothing else): such a change takes effect
/// even when storage refuses to record it.
fn only_narrows(before: &State, next: &State) -> bool {
    let Some((_, after)) = before.layers.changes(&next.layers) else {
        return false;
    };
    after.0.iter().all(|(path, value)| {
        (path == KSN_ACCEPTED || path == SEND_FILES) && *value == serde_json::Value::Bool(false)
    })
}

/// Reads the journal: every record whole and in order, or why not; and whether it ends
/// with a session's clean close. Never guesses.
fn restore(records: &[impl AsRef<[u8]>]) -> Result<(State, VecDeque<LogEntry>, bool), String> {
    let mut state = State::default();
    let mut log: VecDeque<LogEntry> = VecDeque::new();
    let mut closed = false;
    for (index, bytes) in records.iter().enumerate() {
        let record: Record = serde_json::from_slice(bytes.as_ref())
            .map_err(|e| format!("record {index} of {JOURNAL} is damaged: {e}"))?;
        for entry in record.entries {
            let out_of_order = matches!(log.back(), Some(last) if entry.seq <= last.seq);
            if out_of_order || entry.seq >= record.state.next_seq {
                return Err(format!(
                    "record {index} of {JOURNAL} is damaged: entry {} is out of order",
                    entry.seq
                ));
            }
            log.push_back(entry);
        }
        state = record.state;
        closed = record.closed;
    }
    Ok((state, log, closed))
}

/// Drops what the host's retention does not keep; consent records are kept for ever.
fn apply_retention(log: &mut VecDeque<LogEntry>, retention: LogRetention, now: u64) {
    let len = log.len() as u64;
    let mut index = 0u64;
    log.retain(|entry| {
        let newest = retention.max_entries == 0 || len - index <= retention.max_entries;
        let young =
            retention.max_age_ms == 0 || entry.time_ms.saturating_add(retention.max_age_ms) >= now;
        index += 1;
        matches!(entry.event, Event::ConsentChanged { .. }) || (newest && young)
    });
}

/// A page of `items` from `from_seq` on: the items, where the next page starts, and the
/// oldest kept.
fn page<T: Clone>(
    items: &VecDeque<T>,
    seq: impl Fn(&T) -> u64,
    from_seq: u64,
    max: u32,
    next_seq: u64,
) -> (Vec<T>, u64, u64) {
    let start = items.partition_point(|item| seq(item) < from_seq);
    let taken: Vec<T> = items
        .range(start..)
        .take(max.min(PAGE_MAX) as usize)
        .cloned()
        .collect();
    let next = taken.last().map_or(from_seq, |last| seq(last) + 1);
    let oldest = items.front().map_or(next_seq, &seq);
    (taken, next, oldest)
}

impl MinimalTask {
    /// The factory: restores the task from the host's storage. A damaged journal is an
    /// error (`storage_error`), never guessed at.
    pub fn new(host: HostBox) -> Result<Self, TaskError> {
        let records = host
            .storage_records(RStr::from_str(JOURNAL))
            .into_result()
            .map_err(|e| storage_error(format_args!("cannot read {JOURNAL}: {e}")))?;
        let (state, log, closed) = restore(&records).map_err(storage_error)?;
        let retention = host.log_retention();
        let task = Self {
            host,
            gate: RwLock::new(()),
            inner: Mutex::new(Inner {
                state,
                log,
                unwritten: Vec::new(),
                records: records.len() as u64,
                compact_at: COMPACT_EVERY,
                retention,
                ledger: VecDeque::new(),
                ledger_next: 0,
                ksn_down: false,
                license_reported: false,
            }),
        };
        {
            let mut inner = task.lock();
            let records_before = inner.records;
            let mut change = Change::new(&inner.state);
            // A task comes back stopped; if the log last said otherwise, it says so now.
            let was = inner.state.state;
            if was != TaskState::STOPPED {
                change.next.state = TaskState::STOPPED;
                change.next.error = None;
                change.push(Event::StateChanged {
                    from: was,
                    to: TaskState::STOPPED,
                    reason: Some("host_restarted".into()),
                });
            }
            // Without a clean close, a withdrawal may have been lost: fail closed.
            if !records.is_empty() && !closed && accepted(&inner.state) {
                log::warn!("the journal does not end with a clean close: the acceptance is suspended until it is confirmed again");
                change.next.suspended = true;
                Self::consequences(&inner.state, &mut change, Source::UnverifiedRestart);
            }
            if let Err(e) = task.commit(&mut inner, change, None) {
                log::warn!("{e}");
            }
            // This session's first record, before anything else: the close before it says
            // nothing of this session.
            if !records.is_empty() && inner.records == records_before {
                task.append(&mut inner, false).map_err(|e| {
                    storage_error(format_args!("the task is not created: storage refused its first record, and without it the next start could not show that no withdrawal was lost: {e}"))
                })?;
            }
            if !inner.unwritten.is_empty() {
                return Err(storage_error(
                    "the task is not created: storage refused its first record, and without it the next start could not show that no withdrawal was lost",
                ));
            }
            log::info!(
                "minimal KSN Usage task restored: {} log entries, {} records",
                inner.log.len(),
                inner.records
            );
        }
        Ok(task)
    }

    /// Appends a record of the state as it is, with the entries that wait for storage;
    /// `closed` for the last one of a session.
    fn append(&self, inner: &mut Inner, closed: bool) -> Result<(), String> {
        let record = serde_json::to_vec(&Record {
            entries: inner.unwritten.clone(),
            state: inner.state.clone(),
            closed,
        })
        .map_err(|e| e.to_string())?;
        self.host
            .storage_append(RStr::from_str(JOURNAL), RSlice::from_slice(&record))
            .into_result()
            .map_err(String::from)?;
        inner.unwritten.clear();
        inner.records += 1;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a control operation: the gate exclusively (no request in flight), then the
    /// state.
    fn control(
        &self,
        operation: impl FnOnce(&mut Inner) -> Result<(), TaskError>,
    ) -> Result<(), TaskError> {
        let _gate = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let mut inner = self.lock();
        operation(&mut inner)
    }

    /// Records a change and makes it the state: the entries and the state are appended to
    /// the journal as one record, then the entries are logged and emitted, in order.
    ///
    /// If storage refuses the record, a `durable` change (one the host asked for: a
    /// policy, a local change, a start; named by its operation) is not made, and the
    /// refusal is logged. Any other (a withdrawal, a stop, what the host reports, what the
    /// task found) takes effect anyway, since it only narrows what the task does, and its
    /// entries are written with the next record storage takes.
    fn commit(
        &self,
        inner: &mut Inner,
        change: Change,
        durable: Option<&'static str>,
    ) -> Result<(), TaskError> {
        let Change { mut next, events } = change;
        if events.is_empty() && next == inner.state {
            return Ok(());
        }
        let now = self.host.now_ms().max(inner.state.time_ms);
        let base = inner.state.next_seq;
        let entry = |offset: usize, event: Event| {
            LogEntry::new(base + offset as u64, now, importance(&event), event)
        };
        let mut fresh: Vec<LogEntry> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| entry(i, event))
            .collect();
        let recovered = (!inner.unwritten.is_empty()).then(|| {
            entry(
                fresh.len(),
                Event::StorageRecovered {
                    records: inner.unwritten.len() as u64,
                },
            )
        });
        next.time_ms = now;
        next.next_seq = base + fresh.len() as u64 + u64::from(recovered.is_some());
        let mut entries = inner.unwritten.clone();
        entries.extend(fresh.iter().cloned());
        entries.extend(recovered.clone());
        let record = serde_json::to_vec(&Record {
            entries,
            state: next.clone(),
            closed: false,
        })
        .map_err(internal)?;
        let written = self
            .host
            .storage_append(RStr::from_str(JOURNAL), RSlice::from_slice(&record))
            .into_result();
        let refused = match written {
            Ok(()) => {
                inner.unwritten.clear();
                inner.records += 1;
                fresh.extend(recovered);
                None
            }
            Err(e) if durable.is_some() => {
                let error = storage_error(format_args!(
                    "the host's storage refused the change, so nothing changed: {e}"
                ));
                return Err(self.refuse(inner, durable.unwrap_or_default(), error));
            }
            Err(e) => {
                next.next_seq = base + fresh.len() as u64;
                inner.unwritten.extend(fresh.iter().cloned());
                Some(e)
            }
        };
        inner.state = next;
        for entry in fresh {
            match serde_json::to_string(&entry) {
                Ok(json) => self.host.emit_event(RStr::from_str(&json)),
                Err(e) => log::error!("log entry {} does not serialise: {e}", entry.seq),
            }
            inner.log.push_back(entry);
        }
        match refused {
            None => {
                self.compact_if_due(inner, now);
                Ok(())
            }
            Some(e) => Err(storage_error(format_args!(
                "the change took effect, but the host's storage refused to record it (it is written with the next record storage takes): {e}"
            ))),
        }
    }

    /// Replaces the journal with one record (the log as the retention keeps it, and the
    /// state) once it has grown long. A host that cannot replace records keeps the journal
    /// as it is.
    fn compact_if_due(&self, inner: &mut Inner, now: u64) {
        if inner.records < inner.compact_at {
            return;
        }
        apply_retention(&mut inner.log, inner.retention, now);
        let record = serde_json::to_vec(&Record {
            entries: inner.log.iter().cloned().collect(),
            state: inner.state.clone(),
            closed: false,
        });
        let replaced = match record {
            Ok(record) => self
                .host
                .storage_replace(
                    RStr::from_str(JOURNAL),
                    RSlice::from_slice(&[RSlice::from_slice(&record)]),
                )
                .into_result()
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match replaced {
            Ok(()) => {
                inner.records = 1;
                inner.compact_at = COMPACT_EVERY;
            }
            Err(e) => {
                log::debug!("the journal was not compacted: {e}");
                inner.compact_at = inner.records + COMPACT_EVERY;
            }
        }
    }

    /// Logs a refused operation (nothing else changes) and answers the refusal.
    fn refuse(&self, inner: &mut Inner, operation: &'static str, error: TaskError) -> TaskError {
        let mut change = Change::new(&inner.state);
        change.push(Event::OperationRefused {
            operation: operation.into(),
            kind: error.kind,
            message: error.message.to_string(),
        });
        if let Err(e) = self.commit(inner, change, None) {
            log::warn!("{e}");
        }
        error
    }

    /// What a change of settings implies: the settings that changed, the consent that
    /// changed, and a running task that may no longer run.
    fn consequences(before: &State, change: &mut Change, source: Source) {
        if let Some((was, is)) = before.layers.changes(&change.next.layers) {
            change.push(Event::SettingsChanged {
                source,
                before: was,
                after: is,
            });
        }
        let accepted = (accepted(before), accepted(&change.next));
        let files = (
            before.layers.flag(SEND_FILES),
            change.next.layers.flag(SEND_FILES),
        );
        let consent = |accepted: bool, category: Option<DataCategory>| Event::ConsentChanged {
            statement: Statement::Ksn,
            version: STATEMENT_VERSION,
            accepted,
            source,
            category,
            with_statement: None,
        };
        if accepted.0 != accepted.1 {
            let seq = change.push(consent(accepted.1, None));
            if accepted.1 && files.1 {
                change.next.files_consent = Some(seq);
            }
        } else if accepted.1 && files.0 != files.1 {
            // A partial withdrawal, or re-acceptance, of one category of data.
            let seq = change.push(consent(files.1, Some(DataCategory::FILES)));
            if files.1 {
                change.next.files_consent = Some(seq);
            }
        }
        if !(accepted.1 && files.1) {
            change.next.files_consent = None;
        }
        Self::settle(change);
    }

    /// A running task that may no longer run fails, with the reason.
    fn settle(change: &mut Change) {
        if change.next.state != TaskState::RUNNING {
            return;
        }
        if let Err(e) = may_run(&change.next) {
            change.next.state = TaskState::FAILED;
            change.next.error = Some(e.kind);
            change.push(Event::StateChanged {
                from: TaskState::RUNNING,
                to: TaskState::FAILED,
                reason: None,
            });
            change.push(Event::TaskError {
                kind: e.kind,
                message: e.message.to_string(),
            });
        }
    }

    /// Starts the task if it may; `reason` for a start the host did not ask for.
    fn begin(&self, inner: &mut Inner, reason: Option<&'static str>) -> Result<(), TaskError> {
        let mut change = Change::new(&inner.state);
        change.next.state = TaskState::RUNNING;
        change.next.error = None;
        change.push(Event::StateChanged {
            from: inner.state.state,
            to: TaskState::RUNNING,
            reason: reason.map(Into::into),
        });
        self.commit(inner, change, Some(reason.unwrap_or("start")))?;
        inner.ksn_down = false;
        Ok(())
    }

    /// An answer from the local list or KSN; an untrusted object is logged (this plugin
    /// deletes nothing).
    fn answer(
        &self,
        inner: &mut Inner,
        verdict: Verdict,
        source: AnswerSource,
        md5: Option<String>,
        url: Option<String>,
    ) -> LookupAnswer {
        let mut action = ObjectAction::NONE;
        if verdict == Verdict::UNTRUSTED {
            action = ObjectAction::LOGGED;
            let mut change = Change::new(&inner.state);
            change.push(Event::ObjectUntrusted {
                md5,
                url,
                verdict,
                source,
                action,
                object: None,
                path: None,
                reason: None,
            });
            if let Err(e) = self.commit(inner, change, None) {
                log::warn!("{e}");
            }
        }
        LookupAnswer {
            verdict,
            action,
            source,
            cached: false,
        }
    }

    /// Logs Global KSN going away (once) or coming back.
    fn health(&self, inner: &mut Inner, failure: Option<TransportFailure>) {
        let event = match failure {
            Some(reason) if !inner.ksn_down => Event::KsnUnavailable {
                service: Service::GLOBAL,
                reason,
            },
            None if inner.ksn_down => Event::KsnRestored {
                service: Service::GLOBAL,
            },
            _ => return,
        };
        inner.ksn_down = failure.is_some();
        let mut change = Change::new(&inner.state);
        change.push(event);
        if let Err(e) = self.commit(inner, change, None) {
            log::warn!("{e}");
        }
    }
}

impl Drop for MinimalTask {
    /// The session ends: what waited for storage and the clean close, in one record, if
    /// storage takes it (a journal that does not end so makes the next start fail closed).
    fn drop(&mut self) {
        let mut inner = self.lock();
        if inner.records == 0 {
            return;
        }
        if let Err(e) = self.append(&mut inner, true) {
            log::warn!("the session's last record was not written ({e}): the next start suspends the acceptance until it is confirmed again");
        }
    }
}

fn is_verdict(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::TRUSTED | Verdict::UNTRUSTED)
}

impl TaskImpl for MinimalTask {
    fn push_policy(&self, policy_json: &str) -> Result<(), TaskError> {
        self.control(|inner| {
            let entries = match read_policy(policy_json) {
                Ok(entries) => entries,
                Err(why) => {
                    return Err(self.refuse(inner, "push_policy", TaskError::invalid_settings(why)))
                }
            };
            // An acceptance of a version this plugin does not ship is not in force: the
            // policy is applied without it, and the log says so.
            let (entries, not_in_force): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| {
                e.version
                    .is_none_or(|v| v == crate::settings::STATEMENT_VERSION)
            });
            let mut change = Change::new(&inner.state);
            change.next.layers.apply_policy(&entries);
            // A policy that accepts (the version shipped) confirms a suspended acceptance.
            if entries
                .iter()
                .any(|e| e.setting.path == KSN_ACCEPTED && e.value == true)
            {
                change.next.suspended = false;
            }
            for entry in &not_in_force {
                change.push(Event::AcceptanceNotInForce {
                    statement: plugin_api::documents::Statement::Ksn,
                    version: entry.version,
                    current_version: crate::settings::STATEMENT_VERSION,
                    source: Source::Policy,
                });
            }
            change.push(Event::PolicyApplied {
                locked: entries
                    .iter()
                    .filter(|e| e.locked)
                    .map(|e| e.setting.path.into())
                    .collect(),
            });
            Self::consequences(&inner.state, &mut change, Source::Policy);
            let durable = !only_narrows(&inner.state, &change.next);
            self.commit(inner, change, durable.then_some("push_policy"))
        })
    }

    fn set_local(&self, settings_json: &str) -> Result<(), TaskError> {
        self.control(|inner| {
            let entries = match read_local(settings_json) {
                Ok(entries) => entries,
                Err(why) => {
                    return Err(self.refuse(inner, "set_local", TaskError::invalid_settings(why)))
                }
            };
            if let Some(why) = inner.state.layers.lock_conflict(&entries) {
                let error = TaskError::new(ErrorKind::LOCKED_BY_POLICY, why);
                return Err(self.refuse(inner, "set_local", error));
            }
            let mut change = Change::new(&inner.state);
            change.next.layers.apply_local(&entries);
            // Accepting locally confirms a suspended acceptance.
            if entries
                .iter()
                .any(|e| e.setting.path == KSN_ACCEPTED && e.value == true)
            {
                change.next.suspended = false;
            }
            Self::consequences(&inner.state, &mut change, Source::Local);
            let durable = !only_narrows(&inner.state, &change.next);
            self.commit(inner, change, durable.then_some("set_local"))
        })
    }

    fn settings_json(&self) -> Result<String, TaskError> {
        let inner = self.lock();
        let mut view = inner.state.layers.view(inner.state.private_ksn);
        if inner.state.suspended {
            // The box reads what is in force: not accepted, and why.
            let (section, key) = KSN_ACCEPTED.split_once('.').unwrap_or_default();
            if let Some(value) = view.settings.get_mut(section).and_then(|s| s.get_mut(key)) {
                *value = serde_json::Value::Bool(false);
            }
            if let Some(detail) = view.details.get_mut(KSN_ACCEPTED) {
                detail.value = serde_json::Value::Bool(false);
                detail.source = Source::UnverifiedRestart;
                detail.why = "the acceptance is suspended: the last session did not end cleanly, so a withdrawal may have been lost; confirm it again (locally, or by a policy that accepts)".into();
            }
        }
        serde_json::to_string(&view).map_err(internal)
    }

    fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError> {
        self.control(|inner| {
            if inner.state.private_ksn == enabled {
                return Ok(());
            }
            let mut change = Change::new(&inner.state);
            change.next.private_ksn = enabled;
            change.push(Event::PrivateKsnChanged { enabled });
            Self::settle(&mut change);
            self.commit(inner, change, None)
        })
    }

    fn set_license(&self, license: LicenseState) -> Result<(), TaskError> {
        self.control(|inner| {
            inner.license_reported = true;
            if inner.state.license == license {
                return Ok(());
            }
            let mut change = Change::new(&inner.state);
            change.next.license = license;
            change.push(Event::LicenseChanged { license });
            Self::settle(&mut change);
            self.commit(inner, change, None)
        })
    }

    fn application_started(&self) -> Result<(), TaskError> {
        self.control(|inner| {
            let scheduled = inner.state.layers.value(SCHEDULE) == "at_application_start";
            if !scheduled || inner.state.state == TaskState::RUNNING {
                return Ok(());
            }
            // The boot order is licence first: a start decided without it would be wrong.
            if !inner.license_reported {
                return Err(self.refuse(
                    inner,
                    "application_started",
                    boot_order("application_started"),
                ));
            }
            match may_run(&inner.state) {
                Ok(()) => self.begin(inner, Some("application_started")),
                // The call says the scheduled start was refused, and why.
                Err(e) => Err(self.refuse(
                    inner,
                    "application_started",
                    TaskError::new(
                        e.kind,
                        format_args!("the scheduled start was refused: {}", e.message),
                    ),
                )),
            }
        })
    }

    fn start(&self) -> Result<(), TaskError> {
        self.control(|inner| {
            if inner.state.state == TaskState::RUNNING {
                return Ok(());
            }
            if !inner.license_reported {
                return Err(self.refuse(inner, "start", boot_order("start")));
            }
            if let Err(e) = may_run(&inner.state) {
                let e = TaskError::new(e.kind, format_args!("cannot start: {}", e.message));
                return Err(self.refuse(inner, "start", e));
            }
            self.begin(inner, None)
        })
    }

    fn stop(&self) -> Result<(), TaskError> {
        self.control(|inner| {
            if inner.state.state == TaskState::STOPPED {
                return Ok(());
            }
            let mut change = Change::new(&inner.state);
            change.next.state = TaskState::STOPPED;
            change.next.error = None;
            change.push(Event::StateChanged {
                from: inner.state.state,
                to: TaskState::STOPPED,
                reason: None,
            });
            self.commit(inner, change, None)
        })
    }

    fn status(&self) -> TaskStatus {
        let inner = self.lock();
        let state = &inner.state;
        TaskStatus {
            state: state.state,
            error: ROption::from(state.error),
            network: if state.state == TaskState::RUNNING {
                Service::GLOBAL
            } else {
                Service::NONE
            },
            private_ksn: state.private_ksn,
            license: state.license,
        }
    }

    fn check_file(&self, query: FileQuery) -> Result<LookupAnswer, TaskError> {
        // Held across the request: a withdrawal waits for it, and none starts under a
        // consent that has ended.
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        let (consent, timeout_ms) = {
            let inner = self.lock();
            if inner.state.state != TaskState::RUNNING {
                return Ok(LookupAnswer::NOT_RUNNING);
            }
            let timeout = inner.state.layers.number(LOOKUP_TIMEOUT);
            (
                inner.state.files_consent,
                u32::try_from(timeout).unwrap_or(u32::MAX),
            )
        };
        let local = self.host.local_file_verdict(query);
        if is_verdict(local) {
            let mut inner = self.lock();
            let md5 = Some(query.md5_hex());
            return Ok(self.answer(&mut inner, local, AnswerSource::LOCAL_LIST, md5, None));
        }
        let Some(consent_record) = consent else {
            // The files category is withdrawn: no request, and the answer says why.
            return Ok(LookupAnswer {
                verdict: Verdict::UNKNOWN,
                action: ObjectAction::NONE,
                source: AnswerSource::NOT_CONSENTED,
                cached: false,
            });
        };
        let reply = self
            .host
            .ksn_file(Service::GLOBAL, query, timeout_ms)
            .into_result();
        let mut inner = self.lock();
        // Only `unreachable` says nothing left the device; a failure this contract does not
        // know is counted as sent.
        let outcome = match reply {
            Ok(_) => Some(LedgerOutcome::Answered),
            Err(TransportFailure::UNREACHABLE) => None,
            Err(_) => Some(LedgerOutcome::TimedOut),
        };
        if let Some(outcome) = outcome {
            let item = LedgerItem {
                seq: inner.ledger_next,
                time_ms: self.host.now_ms(),
                category: DataCategory::FILES,
                service: Service::GLOBAL,
                items: 1,
                bytes: FILE_QUERY_BYTES,
                consent_record,
                outcome,
            };
            inner.ledger_next += 1;
            if inner.ledger.len() == LEDGER_KEEP {
                inner.ledger.pop_front();
            }
            inner.ledger.push_back(item);
        }
        match reply {
            Ok(reply) => {
                self.health(&mut inner, None);
                let verdict = reply.ksn;
                if !is_verdict(verdict) && verdict != Verdict::UNKNOWN {
                    // Not a reputation (from a newer host, say): no answer.
                    return Ok(LookupAnswer::UNAVAILABLE);
                }
                let md5 = Some(query.md5_hex());
                Ok(self.answer(&mut inner, verdict, AnswerSource::KSN, md5, None))
            }
            Err(failure) => {
                self.health(&mut inner, Some(failure));
                Ok(LookupAnswer {
                    source: AnswerSource::SERVICE_DOWN,
                    ..LookupAnswer::UNAVAILABLE
                })
            }
        }
    }

    fn check_url(&self, url: &str) -> Result<LookupAnswer, TaskError> {
        if self.lock().state.state != TaskState::RUNNING {
            return Ok(LookupAnswer::NOT_RUNNING);
        }
        let local = self.host.local_url_verdict(RStr::from_str(url));
        if is_verdict(local) {
            let mut inner = self.lock();
            let url = Some(plugin_api::documents::path::cut(url));
            return Ok(self.answer(&mut inner, local, AnswerSource::LOCAL_LIST, None, url));
        }
        // This plugin never asks KSN about URLs.
        Ok(LookupAnswer {
            verdict: Verdict::UNKNOWN,
            action: ObjectAction::NONE,
            source: AnswerSource::NONE,
            cached: false,
        })
    }

    fn tick(&self) -> Result<(), TaskError> {
        // Nothing periodic: no cache to expire, no batches to send.
        Ok(())
    }

    fn task_log_json(&self) -> Result<String, TaskError> {
        serde_json::to_string(&self.lock().log).map_err(internal)
    }

    fn ledger_json(&self) -> Result<String, TaskError> {
        serde_json::to_string(&self.lock().ledger).map_err(internal)
    }

    fn purge_cache(&self) -> Result<(), TaskError> {
        // No verdict cache: every answer is asked for.
        Ok(())
    }

    fn counters_json(&self) -> Result<String, TaskError> {
        let counters = Counters {
            ledger_items: self.lock().ledger.len() as u64,
            ..Counters::default()
        };
        serde_json::to_string(&counters).map_err(internal)
    }

    fn task_log_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        let inner = self.lock();
        let (entries, next_seq, oldest_seq) =
            page(&inner.log, |e| e.seq, from_seq, max, inner.state.next_seq);
        serde_json::to_string(&LogPage {
            entries,
            next_seq,
            oldest_seq,
        })
        .map_err(internal)
    }

    fn ledger_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        let inner = self.lock();
        let (items, next_seq, oldest_seq) =
            page(&inner.ledger, |i| i.seq, from_seq, max, inner.ledger_next);
        serde_json::to_string(&LedgerPage {
            items,
            next_seq,
            oldest_seq,
        })
        .map_err(internal)
    }
}

/// How much an event matters to an administrator: a licence that stops the task is
/// critical, any other task error a functional failure, a refusal a warning.
fn importance(event: &Event) -> Importance {
    match event {
        Event::TaskError { kind, .. } if *kind == ErrorKind::LICENSE_VIOLATION => {
            Importance::Critical
        }
        Event::TaskError { .. } => Importance::FunctionalFailure,
        Event::OperationRefused { .. } => Importance::Warning,
        _ => Importance::Info,
    }
}
