//! The task's control plane, as pure functions: each operation takes the current state and
//! the time and returns a transaction (the next state, the log entries, what to persist, and
//! what the data plane must do), or an error that changes nothing. The driver (`task`)
//! persists the transaction before making it current.

use plugin_api::{DataCategory, ErrorKind, LicenseState, Service, TaskError, TaskState};

use super::{
    consent::{Acceptance, Consent, Ended, Source, Statement},
    doc::{LocalEntry, Policy},
    journal::{Changes, Event, LogEntry},
    layers::{Layers, Resolved},
    route::Routing,
    statements::Shipped,
    stored::{Stored, StoredOut},
    table::{Role, Setting, Value, SETTING_COUNT, TABLE},
};

#[derive(Clone, Debug, PartialEq)]
pub struct Control {
    pub layers: Layers,
    pub consent: Consent,
    pub private_ksn: bool,
    pub license: LicenseState,
    pub state: TaskState,
    pub error: Option<ErrorKind>,
    /// Managed Protection data flows only if KMP was accepted when the task started.
    pub kmp_active: bool,
    /// Bumped when cached verdicts stop being valid (mode change, full withdrawal).
    pub generation: u32,
    pub next_seq: u64,
    /// The policy in force has unlocked values of settings that do not apply while Private
    /// KSN is on, not applied yet: they are, as if pushed then, when Private KSN goes off.
    pub deferred_policy: bool,
    /// When the last statistics/KMP batch went out (host time), so that "at most one
    /// batch a minute" holds across restarts.
    pub last_batch_ms: Option<u64>,
}

/// What the data plane must do once a transaction is committed.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Effects {
    pub clear_cache: bool,
    pub discard_statistics: bool,
    pub discard_kmp: bool,
    /// A policy push or a start: the next request tries the proxy, if it was found down.
    pub retry_proxy: bool,
}

pub struct Txn {
    /// The task-log number of this transaction's first entry.
    pub first_seq: u64,
    pub next: Control,
    pub entries: Vec<LogEntry>,
    pub persist_state: bool,
    pub effects: Effects,
    /// What the host reports of the environment (the mode, the licence) is applied even
    /// when storage cannot record it.
    pub reported: bool,
    now: u64,
}

/// What a state allows to leave, as bits: used to tell a change that only narrows it
/// (applied even when it cannot be recorded) from one that widens it (refused then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rights(u32);

impl Rights {
    fn of(control: &Control) -> Self {
        let ksn = control.consent.ksn.is_some();
        let category = |s: Setting| ksn && (control.private_ksn || control.value(s).as_bool());
        let routing = control.routing();
        let bits = [
            ksn,
            control.consent.kmp_accepted(),
            category(Setting::SendScannedFilesData),
            category(Setting::SendScannedUrlsData),
            category(Setting::SendStatistics),
            control.state == TaskState::RUNNING,
            control.kmp_active,
            routing.may_reach(Service::GLOBAL),
            routing.may_reach(Service::PROXY),
            routing.may_reach(Service::PRIVATE),
        ];
        Rights(
            bits.iter()
                .enumerate()
                .fold(0, |word, (i, on)| word | u32::from(*on) << i),
        )
    }

    fn gains_over(self, before: Rights) -> bool {
        self.0 & !before.0 != 0
    }
}

impl Txn {
    fn new(control: &Control, now: u64) -> Self {
        Self {
            first_seq: control.next_seq,
            next: control.clone(),
            entries: Vec::new(),
            persist_state: false,
            effects: Effects::default(),
            reported: false,
            now,
        }
    }

    /// Whether this change only narrows what may leave (a withdrawal, a stop, Private KSN
    /// switched on, a licence that no longer covers KSN), or is what the host reports:
    /// such a change takes effect even when storage cannot record it.
    pub fn must_apply(&self, before: &Control) -> bool {
        let (was, is) = (Rights::of(before), Rights::of(&self.next));
        self.reported || (was.gains_over(is) && !is.gains_over(was))
    }

    fn log(&mut self, event: Event) -> u64 {
        let seq = self.next.next_seq;
        self.next.next_seq += 1;
        self.entries.push(LogEntry {
            seq,
            time_ms: self.now,
            event,
        });
        seq
    }

    fn set_state(&mut self, to: TaskState, error: Option<(ErrorKind, String)>) {
        let from = self.next.state;
        if from != to {
            self.log(Event::StateChanged {
                from,
                to,
                reason: None,
            });
        }
        self.next.state = to;
        self.next.error = error.as_ref().map(|(kind, _)| *kind);
        if let Some((kind, message)) = error {
            self.log(Event::TaskError { kind, message });
        }
        if to != TaskState::RUNNING {
            self.next.kmp_active = false;
        }
    }

    fn consent_event(
        &mut self,
        statement: Statement,
        version: u32,
        accepted: bool,
        source: Source,
    ) -> u64 {
        self.log(Event::ConsentChanged {
            statement,
            version,
            accepted,
            source,
            category: None,
        })
    }

    /// The snapshot to persist with this transaction's record, if it changed persistent state.
    pub fn stored(&self) -> Option<StoredOut<'_>> {
        self.persist_state.then(|| self.next.stored())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.persist_state
    }

    fn accept_ksn(&mut self, source: Source) {
        let statement = Statement::for_mode(self.next.private_ksn);
        let version = statement.current_version();
        let record = self.consent_event(statement, version, true, source);
        self.next.consent.ksn = Some(Acceptance {
            statement,
            version,
            source,
            time_ms: self.now,
            record,
        });
        self.next.consent.ksn_ended = None;
        self.persist_state = true;
        // A Managed Protection acceptance the policy in force locks ended with its
        // prerequisite; it is in force again with it (from the next start, like any).
        let kmp_locked = self
            .next
            .layers
            .policy
            .locked(Setting::KmpStatementAccepted);
        if kmp_locked == Some(Value::Bool(true)) && self.next.consent.kmp.is_none() {
            self.accept_kmp(Source::Policy);
        }
    }

    /// Full withdrawal (or lapse): the KSN acceptance ends, and KMP with it; the task stops;
    /// queued data is discarded and cached verdicts dropped.
    fn end_ksn(&mut self, source: Source) {
        if let Some(acceptance) = self.next.consent.ksn.take() {
            let record =
                self.consent_event(acceptance.statement, acceptance.version, false, source);
            self.next.consent.ksn_ended = Some(Ended {
                statement: acceptance.statement,
                version: acceptance.version,
                source,
                time_ms: self.now,
                record,
                with_ksn: false,
            });
        }
        self.end_kmp(source, true);
        self.persist_state = true;
        self.next.generation = self.next.generation.wrapping_add(1);
        self.effects.clear_cache = true;
        self.effects.discard_statistics = true;
    }

    fn accept_kmp(&mut self, source: Source) {
        let version = Statement::Kmp.current_version();
        let record = self.consent_event(Statement::Kmp, version, true, source);
        self.next.consent.kmp = Some(Acceptance {
            statement: Statement::Kmp,
            version,
            source,
            time_ms: self.now,
            record,
        });
        self.next.consent.kmp_ended = None;
        self.persist_state = true;
    }

    /// Ends Managed Protection; `with_ksn` when it ends because the KSN statement did.
    fn end_kmp(&mut self, source: Source, with_ksn: bool) {
        if let Some(acceptance) = self.next.consent.kmp.take() {
            let record = self.consent_event(Statement::Kmp, acceptance.version, false, source);
            self.next.consent.kmp_ended = Some(Ended {
                statement: Statement::Kmp,
                version: acceptance.version,
                source,
                time_ms: self.now,
                record,
                with_ksn,
            });
        }
        self.next.kmp_active = false;
        self.effects.discard_kmp = true;
        self.persist_state = true;
    }

    /// Logs the effective values that changed since `before`, with their values then.
    fn log_diff(&mut self, before: &[Resolved; SETTING_COUNT], source: Source) {
        let after = self.next.resolved();
        let mut old = Changes::default();
        let mut new = Changes::default();
        for d in &TABLE {
            let (b, a) = (before[d.setting.index()], after[d.setting.index()]);
            if b.value != a.value {
                old.0.push((d.path.into(), b.value.to_json()));
                new.0.push((d.path.into(), a.value.to_json()));
            }
        }
        if !new.0.is_empty() {
            self.log(Event::SettingsChanged {
                source,
                before: old,
                after: new,
            });
        }
    }
}

fn settings_error(kind: ErrorKind, path: &str, reason: impl std::fmt::Display) -> TaskError {
    TaskError::new(kind, format_args!("{path}: {reason}"))
}

const CATEGORY_OF: [(Setting, DataCategory); 3] = [
    (Setting::SendScannedFilesData, DataCategory::FILES),
    (Setting::SendScannedUrlsData, DataCategory::URLS),
    (Setting::SendStatistics, DataCategory::STATISTICS),
];

impl Default for Control {
    fn default() -> Self {
        Self {
            layers: Layers::default(),
            consent: Consent::default(),
            private_ksn: false,
            license: LicenseState::UNKNOWN,
            state: TaskState::STOPPED,
            error: None,
            kmp_active: false,
            generation: 0,
            next_seq: 0,
            deferred_policy: false,
            last_batch_ms: None,
        }
    }
}

impl Control {
    /// The state after a host (re)start: persisted settings and consent, task stopped.
    pub fn restored(stored: Option<&Stored>, next_seq: u64) -> Result<Self, String> {
        let mut control = Control {
            next_seq,
            ..Control::default()
        };
        if let Some(stored) = stored {
            control.layers = stored.layers()?;
            control.consent = stored.consent;
            control.private_ksn = stored.private_ksn;
            control.deferred_policy = stored.deferred_policy;
            control.last_batch_ms = stored.last_batch_ms;
        }
        Ok(control)
    }

    /// How requests reach KSN, by the settings in force.
    pub fn routing(&self) -> Routing {
        Routing {
            private_ksn: self.private_ksn,
            use_proxy: self.value(Setting::UseKscAsKsnProxy).as_bool(),
            fallback: self.value(Setting::UseKsnIfProxyUnavailable).as_bool(),
        }
    }

    /// What is persisted of this state.
    pub fn stored(&self) -> StoredOut<'_> {
        Stored::capture(
            &self.layers,
            &self.consent,
            self.private_ksn,
            self.deferred_policy,
            self.last_batch_ms,
        )
    }

    pub fn resolved(&self) -> [Resolved; SETTING_COUNT] {
        self.layers.resolve_all(&self.consent)
    }

    pub fn value(&self, setting: Setting) -> Value {
        self.layers.resolve(setting, &self.consent).value
    }

    /// Whether a setting governs the task's behaviour in the current mode.
    pub fn applies(&self, setting: Setting) -> bool {
        !self.private_ksn || setting.descriptor().role.applies_in_private_ksn()
    }

    /// A new policy replaces the previous one.
    pub fn push_policy(&self, policy: Policy, now: u64) -> Result<Txn, TaskError> {
        let ksn_after = policy
            .get(Setting::KsnStatementAccepted)
            .map_or(self.consent.ksn_accepted(), |e| e.value.as_bool());
        if let Some(kmp) = policy.get(Setting::KmpStatementAccepted) {
            if kmp.value.as_bool() && !ksn_after {
                return Err(self.kmp_needs_ksn("settings.data_handling.kmp_statement_accepted"));
            }
        }
        let mut txn = Txn::new(self, now);
        txn.persist_state = true;
        txn.effects.retry_proxy = true;
        txn.log(Event::PolicyApplied {
            locked: policy.locked_paths().into_iter().map(Into::into).collect(),
        });
        let changes: Vec<(Setting, Value, bool)> = policy
            .entries
            .iter()
            .map(|e| (e.setting, e.value, e.locked))
            .collect();
        txn.next.layers.policy = policy;
        txn.next.deferred_policy = false;
        for (setting, value, locked) in changes {
            match setting {
                Setting::KsnStatementAccepted | Setting::KmpStatementAccepted => {
                    self.apply_statement(&mut txn, setting, value.as_bool(), Source::Policy)
                }
                _ if locked => {}
                // Settings that do not apply in Private KSN mode wait for it to go off.
                _ if !self.applies(setting) => txn.next.deferred_policy = true,
                _ => txn.next.layers.set_local(setting, value, Source::Policy),
            }
        }
        self.finish_settings_change(&mut txn, Source::Policy);
        Ok(txn)
    }

    /// A local change, refused whole if any part of it is not allowed.
    pub fn set_local(&self, entries: &[LocalEntry], now: u64) -> Result<Txn, TaskError> {
        for entry in entries {
            let path = entry.setting.path();
            if self.private_ksn && entry.setting.descriptor().role == Role::GlobalOnly {
                // (The proxy settings may change locally: they apply again when it goes off.)
                return Err(settings_error(
                    ErrorKind::UNAVAILABLE_IN_PRIVATE_KSN,
                    path,
                    "unavailable while Private KSN is in use (all data goes to the Private KSN services)",
                ));
            }
            if let Some(enforced) = self.layers.policy.locked(entry.setting) {
                if enforced != entry.value {
                    return Err(settings_error(
                        ErrorKind::LOCKED_BY_POLICY,
                        path,
                        format_args!("locked by policy at {enforced}"),
                    ));
                }
            }
        }
        let wants = |setting: Setting| {
            entries
                .iter()
                .find(|e| e.setting == setting)
                .map(|e| e.value.as_bool())
        };
        let ksn_after = wants(Setting::KsnStatementAccepted).unwrap_or(self.consent.ksn_accepted());
        if wants(Setting::KmpStatementAccepted) == Some(true) && !ksn_after {
            return Err(self.kmp_needs_ksn("data_handling.kmp_statement_accepted"));
        }

        let mut txn = Txn::new(self, now);
        for entry in entries {
            match entry.setting {
                Setting::KsnStatementAccepted | Setting::KmpStatementAccepted => self
                    .apply_statement(
                        &mut txn,
                        entry.setting,
                        entry.value.as_bool(),
                        Source::Local,
                    ),
                // Writing the enforced value of a locked setting changes nothing.
                setting if self.layers.policy.locked(setting).is_some() => {}
                setting => {
                    if txn.next.layers.local[setting.index()] != Some((entry.value, Source::Local))
                    {
                        txn.next
                            .layers
                            .set_local(setting, entry.value, Source::Local);
                        txn.persist_state = true;
                    }
                }
            }
        }
        self.finish_settings_change(&mut txn, Source::Local);
        Ok(txn)
    }

    fn kmp_needs_ksn(&self, path: &str) -> TaskError {
        settings_error(
            ErrorKind::STATEMENT_NOT_ACCEPTED,
            path,
            format_args!(
                "the Managed Protection statement needs {} accepted first",
                Statement::for_mode(self.private_ksn).title()
            ),
        )
    }

    fn apply_statement(&self, txn: &mut Txn, setting: Setting, accept: bool, source: Source) {
        let ksn = setting == Setting::KsnStatementAccepted;
        let accepted = if ksn {
            txn.next.consent.ksn.is_some()
        } else {
            txn.next.consent.kmp.is_some()
        };
        match (ksn, accept, accepted) {
            (true, true, false) => txn.accept_ksn(source),
            (true, false, true) => txn.end_ksn(source),
            (false, true, false) => txn.accept_kmp(source),
            (false, false, true) => txn.end_kmp(source, false),
            _ => {}
        }
    }

    /// Logs what changed; turns cleared category boxes into partial withdrawals and a
    /// cleared statement into a stop.
    fn finish_settings_change(&self, txn: &mut Txn, source: Source) {
        let before = self.resolved();
        let after = txn.next.resolved();
        if !self.private_ksn && txn.next.consent.ksn.is_some() && self.consent.ksn.is_some() {
            for (setting, category) in CATEGORY_OF {
                let (was, is) = (
                    before[setting.index()].value.as_bool(),
                    after[setting.index()].value.as_bool(),
                );
                if was != is {
                    let version = txn.next.consent.ksn.map_or(0, |a| a.version);
                    txn.log(Event::ConsentChanged {
                        statement: Statement::Ksn,
                        version,
                        accepted: is,
                        source,
                        category: Some(category),
                    });
                    if !is && category == DataCategory::STATISTICS {
                        txn.effects.discard_statistics = true;
                    }
                }
            }
        }
        self.log_settings_diff(txn, source);
        let withdrawn = self.consent.ksn.is_some() && txn.next.consent.ksn.is_none();
        if withdrawn && txn.next.state != TaskState::STOPPED {
            txn.set_state(TaskState::STOPPED, None);
        }
    }

    /// Logs the effective values that changed, before and after.
    fn log_settings_diff(&self, txn: &mut Txn, source: Source) {
        txn.log_diff(&self.resolved(), source);
    }

    /// The Administration Server reports whether Private KSN is in use.
    ///
    /// Switching modes ends the acceptance of the old mode's statement (and KMP with it):
    /// the box reads false until the new mode's statement is accepted. A running task
    /// fails: with `license_violation` when Private KSN is switched off (SPEC §3.3), with
    /// `statement_not_accepted` when it is switched on (the Private KSN statement, which
    /// sends every category of data, was never accepted).
    pub fn set_private_ksn(&self, enabled: bool, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        txn.reported = true;
        if enabled == self.private_ksn {
            return txn;
        }
        txn.log(Event::PrivateKsnChanged { enabled });
        txn.next.private_ksn = enabled;
        txn.end_ksn(Source::ModeChange);
        self.log_settings_diff(&mut txn, Source::ModeChange);
        if !enabled && self.deferred_policy {
            apply_deferred_policy(&mut txn);
        }
        if self.state == TaskState::RUNNING {
            let error = if enabled {
                (
                    ErrorKind::STATEMENT_NOT_ACCEPTED,
                    "Private KSN was switched on while the task was running: accept the Private KSN statement and start the task again".to_string(),
                )
            } else {
                (
                    ErrorKind::LICENSE_VIOLATION,
                    "Private KSN was switched off while the task was running: accept the KSN statement and start the task again".to_string(),
                )
            };
            txn.set_state(TaskState::FAILED, Some(error));
        }
        txn
    }

    pub fn set_license(&self, license: LicenseState, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        txn.reported = true;
        if license == self.license {
            return txn;
        }
        txn.log(Event::LicenseChanged { license });
        txn.next.license = license;
        if self.state == TaskState::RUNNING && license != LicenseState::VALID {
            txn.set_state(
                TaskState::FAILED,
                Some((
                    ErrorKind::LICENSE_VIOLATION,
                    format!("the licence is now {license} and does not cover KSN"),
                )),
            );
            txn.effects.discard_statistics = true;
            txn.effects.discard_kmp = true;
        }
        txn
    }

    pub fn start(&self, now: u64) -> Result<Txn, TaskError> {
        if self.state == TaskState::RUNNING {
            return Err(TaskError::invalid_state("the task is already running"));
        }
        if !self.consent.ksn_accepted() {
            let statement = Statement::for_mode(self.private_ksn);
            let reason = match self.consent.ksn_ended {
                Some(ended) if ended.source == Source::StatementChanged => format!(
                    "{} changed (version {} replaces version {}, which was accepted): read it and accept it again",
                    statement.title(),
                    statement.current_version(),
                    ended.version
                ),
                _ => format!("{} is not accepted", statement.title()),
            };
            return Err(TaskError::new(
                ErrorKind::STATEMENT_NOT_ACCEPTED,
                format_args!("cannot start: {reason} (data_handling.ksn_statement_accepted)"),
            ));
        }
        if self.license != LicenseState::VALID {
            return Err(TaskError::new(
                ErrorKind::LICENSE_VIOLATION,
                format_args!(
                    "cannot start: the licence is {} and does not cover KSN",
                    self.license
                ),
            ));
        }
        let mut txn = Txn::new(self, now);
        txn.effects.retry_proxy = true;
        txn.set_state(TaskState::RUNNING, None);
        txn.next.kmp_active = self.consent.kmp_accepted();
        Ok(txn)
    }

    /// Stop leaves `stopped` with no error; stopping a stopped task does nothing.
    pub fn stop(&self, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        if self.state != TaskState::STOPPED {
            txn.set_state(TaskState::STOPPED, None);
            txn.effects.discard_statistics = true;
            txn.effects.discard_kmp = true;
        }
        txn
    }

    /// After a host restart the task is stopped, whatever the log last said: record that.
    /// An acceptance of another version of a statement than this plugin's no longer counts.
    pub fn restarted(&self, last: Option<TaskState>, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        // A restart is a fact, and a lapse only narrows: both hold whatever storage does.
        txn.reported = true;
        if let Some(from) = last.filter(|s| *s != TaskState::STOPPED) {
            txn.log(Event::StateChanged {
                from,
                to: TaskState::STOPPED,
                reason: Some("host_restarted".into()),
            });
        }
        let outdated =
            |a: Option<Acceptance>| a.is_some_and(|a| a.version != a.statement.current_version());
        if outdated(self.consent.ksn) {
            txn.end_ksn(Source::StatementChanged);
        } else if outdated(self.consent.kmp) {
            txn.end_kmp(Source::StatementChanged, false);
        }
        if !txn.entries.is_empty() || txn.persist_state {
            self.log_settings_diff(&mut txn, Source::StatementChanged);
        }
        txn
    }

    /// The statistics/KMP batch goes out now: recorded first, so that a restart does not
    /// send another within the minute.
    pub fn batch_sent(&self, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        txn.next.last_batch_ms = Some(now);
        txn.persist_state = true;
        txn
    }

    /// Records a refused operation in the task log; nothing else changes.
    pub fn refusal(&self, operation: &'static str, error: &TaskError, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        txn.log(Event::OperationRefused {
            operation: operation.into(),
            kind: error.kind,
            message: error.message.to_string(),
        });
        txn
    }

    /// Records events of the data plane (detections, service loss).
    pub fn record(&self, events: Vec<Event>, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        for event in events {
            txn.log(event);
        }
        txn
    }
}

/// Private KSN went off: the policy's unlocked values of the settings that did not apply
/// are in force now, exactly as if the policy had been pushed at this moment.
fn apply_deferred_policy(txn: &mut Txn) {
    let before = txn.next.resolved();
    let deferred: Vec<(Setting, Value)> = txn
        .next
        .layers
        .policy
        .entries
        .iter()
        .filter(|e| !e.locked && !e.setting.descriptor().role.applies_in_private_ksn())
        .map(|e| (e.setting, e.value))
        .collect();
    for (setting, value) in deferred {
        txn.next.layers.set_local(setting, value, Source::Policy);
    }
    txn.next.deferred_policy = false;
    txn.persist_state = true;
    txn.log_diff(&before, Source::Policy);
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
