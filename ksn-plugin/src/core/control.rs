//! The task's control plane, as pure functions: each operation takes the current state and
//! the time and returns a transaction (the next state, the log entries, what to persist, and
//! what the data plane must do), or an error that changes nothing. The driver (`task`)
//! persists the transaction before making it current.

use plugin_api::{DataCategory, ErrorKind, LicenseState, Service, TaskError, TaskState};

use super::{
    consent::{Acceptance, Consent, Ended, NotInForce, Source, Statement, Withheld},
    doc::{LocalEntry, Policy, Versions},
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
    /// The part of a change that waits to be recorded (not persisted: a restart loses it,
    /// and the host sends its policy again).
    pub waiting: Option<Waiting>,
}

/// What of an earlier change waits for storage: its narrowing part took effect, the rest
/// is applied (as the whole change, from the state then) once storage records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub operation: &'static str,
    pub change: WaitingChange,
    pub since_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WaitingChange {
    Policy(Policy),
    Local(Vec<LocalEntry>),
    /// The policy's Global-KSN values, due when Private KSN went off.
    DeferredPolicy,
}

impl Waiting {
    /// What waits, in words (for the log and `explain`).
    pub fn words(&self) -> String {
        match &self.change {
            WaitingChange::Policy(_) => format!(
                "the rest of the policy pushed at t={} ms (its acceptances, re-enabled categories and other values)",
                self.since_ms
            ),
            WaitingChange::Local(_) => format!(
                "the rest of the local change made at t={} ms",
                self.since_ms
            ),
            WaitingChange::DeferredPolicy => format!(
                "the policy's Global-KSN values, due when Private KSN went off at t={} ms",
                self.since_ms
            ),
        }
    }

    /// Whether the waiting change sets `setting`.
    pub fn sets(&self, setting: Setting) -> bool {
        match &self.change {
            WaitingChange::Policy(policy) => policy.get(setting).is_some(),
            WaitingChange::Local(entries) => entries.iter().any(|e| e.setting == setting),
            WaitingChange::DeferredPolicy => !setting.descriptor().role.applies_in_private_ksn(),
        }
    }
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
    /// It only records what happened (a detection, a refusal): it changes no permission,
    /// and its record waits for storage like a narrowing one (bounded by the driver).
    pub fact: bool,
    /// It applies the waiting part of an earlier change.
    pub resumes: bool,
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
            // An acceptance is consent given, in force or not (KMP waits for the KSN one).
            control.consent.kmp.is_some(),
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
            fact: false,
            resumes: false,
            now,
        }
    }

    /// Whether this change only narrows what may leave (a withdrawal, a stop, Private KSN
    /// switched on, a licence that no longer covers KSN), is what the host reports, or only
    /// records what happened: such a change takes effect even when storage cannot record it.
    pub fn must_apply(&self, before: &Control) -> bool {
        let (was, is) = (Rights::of(before), Rights::of(&self.next));
        self.reported || self.fact || (was.gains_over(is) && !is.gains_over(was))
    }

    /// Whether it narrows anything at all (it may widen something else too).
    pub fn narrows(&self, before: &Control) -> bool {
        Rights::of(before).gains_over(Rights::of(&self.next))
    }

    /// Whether it widens anything (it may narrow something else too).
    pub fn widens(&self, before: &Control) -> bool {
        Rights::of(&self.next).gains_over(Rights::of(before))
    }

    /// What this transaction withdraws, in words.
    pub fn withdrawals(&self) -> String {
        let words: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::ConsentChanged {
                    statement,
                    accepted: false,
                    category,
                    ..
                } => Some(match category {
                    Some(category) => format!("{category} withdrawn"),
                    None => format!("{} withdrawn", statement.title()),
                }),
                _ => None,
            })
            .collect();
        words.join(", ")
    }

    /// This transaction followed by `then`'s, from the state this one leaves, as one
    /// record.
    pub fn and_then(mut self, then: impl FnOnce(&Control) -> Txn) -> Txn {
        let next = then(&self.next);
        self.entries.extend(next.entries);
        self.next = next.next;
        self.persist_state |= next.persist_state;
        self.reported |= next.reported;
        // A fact only if every part is one (a fact's record may be dropped past a bound).
        self.fact &= next.fact;
        self.resumes |= next.resumes;
        let (a, b) = (&mut self.effects, next.effects);
        a.clear_cache |= b.clear_cache;
        a.discard_statistics |= b.discard_statistics;
        a.discard_kmp |= b.discard_kmp;
        a.retry_proxy |= b.retry_proxy;
        self
    }

    /// A change that takes effect while an earlier one's rest waits drops that rest: the
    /// rest is never applied after a later change (it could take back what that one
    /// narrowed). The host sends its policy again at its next synchronisation.
    pub fn drop_waiting_rest(&mut self, before: &Control) {
        let Some(waiting) = &before.waiting else {
            return;
        };
        if self.fact
            || self.resumes
            || self.is_empty()
            || self.next.waiting.as_ref() != Some(waiting)
        {
            return;
        }
        let waiting = waiting.clone();
        self.log(Event::ChangeDropped {
            operation: waiting.operation.into(),
            reason: format!(
                "{} was dropped: a later change took effect before storage could record it; push the policy again",
                waiting.words()
            ),
        });
        if waiting.change == WaitingChange::DeferredPolicy {
            self.next.deferred_policy = false;
        }
        self.next.waiting = None;
        self.persist_state = true;
    }

    fn log(&mut self, event: Event) -> u64 {
        let seq = self.next.next_seq;
        self.next.next_seq += 1;
        let importance = super::importance::importance(&event);
        self.entries
            .push(LogEntry::new(seq, self.now, importance, event));
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
            with_statement: None,
        })
    }

    /// A policy's acceptance of `setting` is not in force: recorded once per statement,
    /// version and source, so a policy sent again unchanged does not log it again.
    fn not_in_force(
        &mut self,
        setting: Setting,
        statement: Statement,
        version: Option<u32>,
        source: Source,
    ) {
        let slot = |c: &Consent| {
            if setting == Setting::KsnStatementAccepted {
                c.ksn_not_in_force
            } else {
                c.kmp_not_in_force
            }
        };
        if slot(&self.next.consent)
            .is_some_and(|n| (n.statement, n.version, n.source) == (statement, version, source))
        {
            return;
        }
        let record = self.log(Event::AcceptanceNotInForce {
            statement,
            version,
            current_version: statement.current_version(),
            source,
        });
        let not_in_force = Some(NotInForce {
            statement,
            version,
            source,
            time_ms: self.now,
            record,
        });
        if setting == Setting::KsnStatementAccepted {
            self.next.consent.ksn_not_in_force = not_in_force;
        } else {
            self.next.consent.kmp_not_in_force = not_in_force;
        }
        self.persist_state = true;
    }

    /// Withdraws one data category: its box is cleared locally (`source` says by whom), or,
    /// where the policy in force locks it on, withheld until the box is decided again.
    fn withdraw_category(&mut self, setting: Setting, source: Source) {
        let Some(index) = setting.category_index() else {
            return;
        };
        if !self.next.value(setting).as_bool() {
            return;
        }
        let version = self.next.consent.ksn.map_or(0, |a| a.version);
        let category = CATEGORY_OF[index].1;
        let record = self.log(Event::ConsentChanged {
            statement: Statement::Ksn,
            version,
            accepted: false,
            source,
            category: Some(category),
            with_statement: None,
        });
        self.next
            .layers
            .set_local(setting, Value::Bool(false), source);
        if self.next.value(setting).as_bool() {
            self.next.consent.withheld[index] = Some(Withheld {
                source,
                time_ms: self.now,
                record,
            });
        }
        if category == DataCategory::STATISTICS {
            self.effects.discard_statistics = true;
        }
        self.persist_state = true;
    }

    /// The snapshot to persist with this transaction's record, if it changed persistent state.
    pub fn stored(&self) -> Option<StoredOut<'_>> {
        self.persist_state.then(|| self.next.stored())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.persist_state
    }

    /// Writes a record with the state even if nothing changed.
    pub fn force_persist(&mut self) {
        self.persist_state = true;
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
        self.next.consent.ksn_not_in_force = None;
        self.persist_state = true;
        // A Managed Protection acceptance the policy in force locks ended with its
        // prerequisite; it is in force again with it (from the next start, like any), if
        // the policy names the version this plugin ships.
        let kmp_locked = self
            .next
            .layers
            .policy
            .get(Setting::KmpStatementAccepted)
            .filter(|e| e.locked && e.value.as_bool())
            .map(|e| e.versions);
        if let Some(versions) = kmp_locked {
            if self.next.consent.kmp.is_none() {
                self.accept_by(
                    Setting::KmpStatementAccepted,
                    Source::Policy,
                    Some(versions),
                );
            }
        }
    }

    /// Accepts the box's statement of the device's mode, by `source`. A policy's
    /// acceptance (`versions` given) is in force only if it names the shipped version.
    fn accept_by(&mut self, setting: Setting, source: Source, versions: Option<Versions>) {
        let statement = setting
            .statement_in_mode(self.next.private_ksn)
            .expect("an acceptance box accepts a statement in every mode");
        if let Some(versions) = versions {
            let named = versions.get(statement);
            if named != Some(statement.current_version()) {
                self.not_in_force(setting, statement, named, source);
                return;
            }
        }
        if setting == Setting::KsnStatementAccepted {
            self.accept_ksn(source);
        } else {
            self.accept_kmp(source);
        }
    }

    /// Full withdrawal (or lapse): the KSN acceptance ends, and KMP with it; the task stops;
    /// queued data is discarded and cached verdicts dropped.
    fn end_ksn(&mut self, source: Source) {
        let ended = self
            .next
            .consent
            .ksn
            .map_or(Statement::for_mode(self.next.private_ksn), |a| a.statement);
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
        self.next.consent.ksn_not_in_force = None;
        self.end_kmp(source, Some(ended));
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
        self.next.consent.kmp_not_in_force = None;
        self.persist_state = true;
    }

    /// Ends Managed Protection; `with` the KSN box's statement when it ends because that
    /// acceptance did (its record says so, and `source` is how that one ended).
    fn end_kmp(&mut self, source: Source, with: Option<Statement>) {
        let with_ksn = with.is_some();
        if let Some(acceptance) = self.next.consent.kmp.take() {
            let record = self.log(Event::ConsentChanged {
                statement: Statement::Kmp,
                version: acceptance.version,
                accepted: false,
                source,
                category: None,
                with_statement: with,
            });
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

/// Why an acceptance ended at a start over a host that keeps no events.
pub const UNVERIFIED: &str = "the last session did not end cleanly (it was killed, or a change waited for storage), and this host keeps no events that would show no withdrawal was lost, so the task fails closed";

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
            waiting: None,
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
            // What the host last reported; it reports again at each start.
            control.license = stored
                .license
                .filter(|l| LicenseState::ALL.contains(l))
                .unwrap_or(LicenseState::UNKNOWN);
            control.deferred_policy = stored.deferred_policy;
            control.last_batch_ms = stored.last_batch_ms;
            // Values due when Private KSN went off that storage had not recorded yet.
            if stored.deferred_policy && !stored.private_ksn {
                control.waiting = Some(Waiting {
                    operation: "set_private_ksn",
                    change: WaitingChange::DeferredPolicy,
                    since_ms: 0,
                });
            }
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
            self.license,
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
        let versions: Vec<Versions> = policy.entries.iter().map(|e| e.versions).collect();
        // A lock this policy releases restores nothing, in every mode and wherever it was
        // pushed: the value it left in force stays, below the lock (this policy's own value
        // for the setting, if it sets one, is applied next, as for any push).
        let resolved = self.resolved();
        for entry in self.layers.policy.entries.iter().filter(|e| e.locked) {
            let setting = entry.setting;
            if setting.descriptor().role != Role::Statement && policy.locked(setting).is_none() {
                let kept = resolved[setting.index()];
                txn.next.layers.set_local(setting, kept.value, kept.source);
            }
        }
        txn.next.layers.policy = policy;
        txn.next.deferred_policy = false;
        // A new policy decides every category again.
        txn.next.consent.withheld = Default::default();
        for ((setting, value, locked), versions) in changes.into_iter().zip(versions) {
            match setting {
                Setting::KsnStatementAccepted | Setting::KmpStatementAccepted => self
                    .apply_statement(
                        &mut txn,
                        setting,
                        value.as_bool(),
                        Source::Policy,
                        Some(versions),
                    ),
                // A locked value is written below the lock too, in every mode (a `send_*`
                // lock pushed while Private KSN is on included): a policy that releases it
                // later leaves it as it is (nothing from before the policy comes back).
                _ if locked => txn.next.layers.set_local(setting, value, Source::Policy),
                // Unlocked settings that do not apply in Private KSN mode wait for it to go
                // off.
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
            if let Some(statement) = entry.setting.statement_in_mode(self.private_ksn) {
                let shown = statement.current_version();
                let other = entry
                    .versions
                    .named()
                    .find(|(s, v)| (*s, *v) != (statement, shown));
                if let Some((named, version)) = other {
                    return Err(settings_error(
                        ErrorKind::STATEMENT_NOT_ACCEPTED,
                        path,
                        format_args!(
                            "the change accepts {} version {version}, but this device shows {} version {shown}: read it (statement {}) and accept that version",
                            named.as_str(),
                            statement.as_str(),
                            statement.as_str()
                        ),
                    ));
                }
            }
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
            // A local decision on a category's box ends its withholding.
            if let Some(index) = entry.setting.category_index() {
                if txn.next.consent.withheld[index].take().is_some() {
                    txn.persist_state = true;
                }
            }
            match entry.setting {
                Setting::KsnStatementAccepted | Setting::KmpStatementAccepted => self
                    .apply_statement(
                        &mut txn,
                        entry.setting,
                        entry.value.as_bool(),
                        Source::Local,
                        None,
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

    /// Sets an acceptance box: a policy's acceptance (`versions` given) is in force only if
    /// it names the version this plugin ships; a local one accepts the version shown.
    fn apply_statement(
        &self,
        txn: &mut Txn,
        setting: Setting,
        accept: bool,
        source: Source,
        versions: Option<Versions>,
    ) {
        let ksn = setting == Setting::KsnStatementAccepted;
        let accepted = if ksn {
            txn.next.consent.ksn.is_some()
        } else {
            txn.next.consent.kmp.is_some()
        };
        match (ksn, accept, accepted) {
            (_, true, false) => txn.accept_by(setting, source, versions),
            (true, false, true) => txn.end_ksn(source),
            (false, false, true) => txn.end_kmp(source, None),
            (true, false, false) => txn.next.consent.ksn_not_in_force = None,
            (false, false, false) => txn.next.consent.kmp_not_in_force = None,
            (_, true, true) => Self::accept_again(txn, setting, source, versions),
        }
    }

    /// A policy's acceptance of a box already accepted. A policy replaces the previous
    /// one: when this one's acceptance is not in force (another version than the one
    /// shipped, or none of the mode's statement), an acceptance an earlier policy gave
    /// ends with it, so that what is in force depends on the policy in force, never on
    /// the order policies came in. A local acceptance stays: the user read the version
    /// the device shows.
    fn accept_again(txn: &mut Txn, setting: Setting, source: Source, versions: Option<Versions>) {
        let Some(versions) = versions else {
            return;
        };
        let statement = setting
            .statement_in_mode(txn.next.private_ksn)
            .expect("an acceptance box accepts a statement in every mode");
        let named = versions.get(statement);
        if named == Some(statement.current_version()) {
            return;
        }
        let ksn = setting == Setting::KsnStatementAccepted;
        let held = if ksn {
            txn.next.consent.ksn
        } else {
            txn.next.consent.kmp
        };
        if held.is_some_and(|a| a.source == Source::Policy) {
            if ksn {
                txn.end_ksn(source);
            } else {
                txn.end_kmp(source, None);
            }
        }
        txn.not_in_force(setting, statement, named, source);
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
                        with_statement: None,
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
        // The policy's Global-KSN values are applied as a change of their own, once this
        // one is recorded (at once, when storage works).
        if !enabled && self.deferred_policy {
            txn.next.waiting = Some(Waiting {
                operation: "set_private_ksn",
                change: WaitingChange::DeferredPolicy,
                since_ms: now,
            });
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
        txn.persist_state = true;
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
            let not_in_force = self
                .consent
                .ksn_not_in_force
                .filter(|n| n.statement == statement);
            let reason = match (not_in_force, self.consent.ksn_ended) {
                (Some(n), _) => format!(
                    "{} is not accepted: {}",
                    statement.title(),
                    n.words(statement.current_version())
                ),
                (None, Some(ended)) if ended.source == Source::UnverifiedRestart => format!(
                    "{}'s acceptance ended at this start (log #{}): {UNVERIFIED}; confirm it again, locally or by the next policy push",
                    statement.title(),
                    ended.record
                ),
                (None, Some(ended)) if ended.source == Source::StatementChanged => format!(
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
            txn.end_kmp(Source::StatementChanged, None);
        }
        if !txn.entries.is_empty() || txn.persist_state {
            self.log_settings_diff(&mut txn, Source::StatementChanged);
        }
        txn
    }

    /// The host keeps no events, and the journal does not end with the record of a clean
    /// close: the last session may have ended (killed, or with a narrowing waiting for
    /// storage) without recording a withdrawal. Nothing can prove otherwise, so the
    /// acceptance ends (and Managed Protection with it): fail closed, never open.
    pub fn unverified_restart(&self, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        txn.reported = true;
        if self.consent.ksn.is_some() {
            let before = self.resolved();
            txn.end_ksn(Source::UnverifiedRestart);
            txn.log_diff(&before, Source::UnverifiedRestart);
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
        txn.fact = true;
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
        txn.fact = true;
        for event in events {
            txn.log(event);
        }
        txn
    }
}

impl Control {
    /// The waiting part of an earlier change, now that storage can record it: the change
    /// is made again from the state now (its narrowing part changes nothing more). A change
    /// the state now refuses is dropped, and the log says why.
    pub fn resume(&self, now: u64) -> Option<Txn> {
        let waiting = self.waiting.as_ref()?;
        let outcome = match &waiting.change {
            WaitingChange::Policy(policy) => self.push_policy(policy.clone(), now),
            WaitingChange::Local(entries) => self.set_local(entries, now),
            WaitingChange::DeferredPolicy => {
                let mut txn = Txn::new(self, now);
                apply_deferred_policy(&mut txn);
                Ok(txn)
            }
        };
        let mut txn = outcome.unwrap_or_else(|error| {
            let mut txn = Txn::new(self, now);
            txn.log(Event::ChangeDropped {
                operation: waiting.operation.into(),
                reason: format!("{} was refused when applied: {error}", waiting.words()),
            });
            txn
        });
        txn.next.waiting = None;
        txn.resumes = true;
        txn.persist_state = true;
        Some(txn)
    }

    /// The part of the change from this state to `after` that only narrows what may leave:
    /// the acceptances it ends, the data categories it withdraws, and the stop that a full
    /// withdrawal is. It takes effect when the whole change cannot be recorded; `waiting`
    /// (the whole change) is applied once it can.
    pub fn narrowing_part(
        &self,
        after: &Control,
        source: Source,
        waiting: Waiting,
        now: u64,
    ) -> Option<Txn> {
        let mut txn = Txn::new(self, now);
        let before = self.resolved();
        if self.consent.ksn.is_some() && after.consent.ksn.is_none() {
            txn.end_ksn(source);
        } else {
            if self.consent.kmp.is_some() && after.consent.kmp.is_none() {
                txn.end_kmp(source, None);
            }
            if self.consent.ksn.is_some() && !self.private_ksn {
                for (setting, _) in CATEGORY_OF {
                    if !after.value(setting).as_bool() {
                        txn.withdraw_category(setting, source);
                    }
                }
            }
        }
        if txn.entries.is_empty() {
            return None;
        }
        txn.log_diff(&before, source);
        if txn.next.consent.ksn.is_none() && txn.next.state != TaskState::STOPPED {
            txn.set_state(TaskState::STOPPED, None);
        }
        txn.log(Event::ChangeWaiting {
            operation: waiting.operation.into(),
            waiting: waiting.words(),
        });
        txn.next.waiting = Some(waiting);
        Some(txn)
    }

    /// A value the host recorded as set (a `settings_changed` entry), set again locally
    /// with its source. An acceptance box is consent, not a value: it is left alone.
    pub fn reapply(&self, setting: Setting, value: Value, source: Source, now: u64) -> Txn {
        let mut txn = Txn::new(self, now);
        if setting.descriptor().role == Role::Statement {
            return txn;
        }
        let before = self.resolved();
        if setting.category_index().is_some() && !value.as_bool() && self.consent.ksn.is_some() {
            txn.withdraw_category(setting, source);
        } else if self.layers.local[setting.index()] != Some((value, source)) {
            txn.next.layers.set_local(setting, value, source);
            txn.persist_state = true;
        }
        txn.log_diff(&before, source);
        txn
    }

    /// What a withdrawal the host recorded does, applied again: the acceptance of
    /// `statement` ends, or one data category is withdrawn. Nothing else changes.
    pub fn withdrawal(
        &self,
        statement: Statement,
        category: Option<DataCategory>,
        source: Source,
        now: u64,
    ) -> Txn {
        let mut txn = Txn::new(self, now);
        let before = self.resolved();
        match (statement, category) {
            (Statement::Kmp, _) => txn.end_kmp(source, None),
            (_, Some(category)) => {
                if let Some((setting, _)) = CATEGORY_OF.iter().find(|(_, c)| *c == category) {
                    if self.consent.ksn.is_some() {
                        txn.withdraw_category(*setting, source);
                    }
                }
            }
            (_, None) => {
                if self.consent.ksn.is_some_and(|a| a.statement == statement) {
                    txn.end_ksn(source);
                }
            }
        }
        txn.log_diff(&before, source);
        if txn.next.consent.ksn.is_none() && self.consent.ksn.is_some() {
            txn.set_state(TaskState::STOPPED, None);
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
