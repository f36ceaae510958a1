//! The world as its Administration Server drives it: policies saved and delivered at
//! synchronisation, the server's KSN proxy setting, the events it files, device statuses,
//! and which devices a step addresses.

use std::sync::Arc;

use plugin_api::{
    documents::{read_document, SettingsView, Statement},
    ErrorKind,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::{Answer, Answers, Device, Setup, World};
use crate::storage::EventRow;
use admin_server::{
    status::{self, Facts, Status},
    Change, Context, Delivery, Operation, Rules, Server, ServerError, StoredEvent, Tree,
};

/// An administration group of a scenario's tree: its name, how many devices it holds, its
/// flags, and its subgroups.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default)]
    pub devices: usize,
    /// "Inherit from parent" (default true).
    #[serde(default = "yes")]
    pub inherit: bool,
    /// The group's own KSN proxy setting: its devices use Private KSN (or not) whatever
    /// the server's setting.
    #[serde(default)]
    pub private_ksn: Option<bool>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

fn yes() -> bool {
    true
}

/// Which devices a step addresses (`on`): `"all"`, `{"group": "Servers"}` (the group
/// and its subgroups), `{"device": 3}` or `{"devices": [0, 2]}`.
#[derive(Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum Target {
    All(AllDevices),
    Group { group: String },
    Device { device: usize },
    Devices { devices: Vec<usize> },
}

#[derive(Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum AllDevices {
    All,
}

/// The server of a world set up so: its groups and their devices, its rules.
pub fn server_for(setup: &Setup) -> Result<Server, String> {
    let mut server = Server::new(Rules {
        events: setup.event_rules.clone(),
        status: setup.status_rules,
        sync_interval_ms: setup.sync_interval_ms,
    });
    for _ in 0..setup.devices {
        server.add_device(Tree::ROOT);
    }
    fn add(server: &mut Server, parent: &str, spec: &GroupSpec) -> Result<(), String> {
        if spec.name.contains('/') {
            return Err(format!("a group's name holds no '/', got {:?}", spec.name));
        }
        let path = if parent.is_empty() {
            spec.name.clone()
        } else {
            format!("{parent}/{}", spec.name)
        };
        let op = Operation::CreateGroup {
            path: path.clone(),
            inherit: spec.inherit,
            private_ksn: spec.private_ksn,
        };
        let applied = server
            .apply(&op, &Context::new("setup", 0))
            .map_err(|e| e.message)?;
        let Some(Change::Group(id)) = applied.changes.first() else {
            unreachable!("a group made is its change");
        };
        for _ in 0..spec.devices {
            server.add_device(*id);
        }
        spec.groups.iter().try_for_each(|g| add(server, &path, g))
    }
    for spec in &setup.groups {
        add(&mut server, "", spec).map_err(|e| format!("groups: {e}"))?;
    }
    Ok(server)
}

/// Whether every device that was sent a document refused it as invalid: the save
/// changes nothing.
fn refused_as_invalid(answers: &Answers) -> bool {
    let mut sent = answers
        .iter()
        .filter(|a| !matches!(a, Ok(Answer::Skipped)))
        .peekable();
    sent.peek().is_some()
        && sent.all(|a| matches!(a, Err(e) if e.kind == ErrorKind::INVALID_SETTINGS))
}

impl World {
    /// Whether the server uses Private KSN (its KSN proxy setting).
    pub fn private_ksn(&self) -> bool {
        self.server.private_ksn()
    }

    /// A host database of the first schema kept only the root policy it last pushed: it
    /// becomes the root group's policy, as every device took it before.
    pub(super) fn restore_root_policy(&mut self) {
        let Some(policy) = self
            .legacy_policy
            .take()
            .and_then(|t| serde_json::from_str::<Json>(&t).ok())
        else {
            return;
        };
        let now = self.clock.now_ms();
        let op = Operation::SaveRootPolicy { policy };
        if self.server.apply(&op, &Context::new("admin", now)).is_err() {
            return;
        }
        let plans = self.server.plan(|_| true, false);
        for (i, plan) in plans.into_iter().enumerate() {
            if let Some(mut plan) = plan {
                plan.private_ksn = None;
                self.server.delivered(i, plan, now);
            }
        }
    }

    /// Writes rows of what the server knows to the host database, if it has one; returns
    /// once they are durable.
    fn persist(&self, records: Vec<admin_server::Record>) -> Result<(), ServerError> {
        let Some(db) = &self.database else {
            return Ok(());
        };
        db.store.save_server(&db.host, records).map_err(|e| {
            ServerError::new(
                admin_server::ServerErrorKind::NotSaved,
                format!("the change was not saved, and is not made: {e}"),
            )
        })
    }

    /// Every row of a server made now.
    pub(super) fn persist_all(&self) -> Result<(), String> {
        self.persist(self.server.all_records())
            .map_err(|e| e.message)
    }

    /// The rows of these devices (what they were sent, what they said), queued: they
    /// commit before anything written after them, and the step settles them before it
    /// answers (`collect_events`, or the next call on the devices). Were they lost, a
    /// resumed server would send those devices what they had already taken, which changes
    /// nothing.
    pub(crate) fn persist_devices(&self, devices: impl IntoIterator<Item = usize>) {
        let Some(db) = &self.database else {
            return;
        };
        let records: Vec<_> = devices
            .into_iter()
            .map(|i| self.server.device_record(i))
            .collect();
        if let Err(e) = db.store.queue_server(&db.host, records) {
            log::warn!("the devices' rows were not saved: {e}");
        }
    }

    /// A resumed server and its devices agree: every device that is switched on gets what
    /// it lacks now, connected or not, so that no device keeps a lock of a policy the
    /// server no longer holds (a deletion it had not received), which is released by the
    /// rule (its value stays) and recorded as an event of the server's.
    pub(super) fn agree_at_resume(&mut self) {
        let stale: Vec<usize> = (0..self.devices.len())
            .filter(|&i| {
                self.server.device(i).online
                    && self
                        .server
                        .device(i)
                        .delivered
                        .seen
                        .iter()
                        .any(|v| self.server.policy_by_id(v.policy).is_none())
            })
            .collect();
        let online: Vec<bool> = self.server.devices().iter().map(|d| d.online).collect();
        self.synchronise(|i| online[i], false);
        let now = self.clock.now_ms();
        let first_new = self.server.events().last_id() + 1;
        let mut bodies = Vec::new();
        for &i in &stale {
            let body = serde_json::json!({
                "type": "locks_released",
                "device": i,
                "reason": "the policy that locked them was deleted before the device received it; released at the server's start, their values kept",
            });
            if self.server.file_event(admin_server::Arriving {
                time_ms: now,
                device: i,
                group: 0,
                importance: plugin_api::documents::Importance::Info,
                kind: super::device::event_type("locks_released"),
                by: None,
                wall_ms: crate::storage::wall_clock_ms(),
                description: Some(
                    "locks released at the server's start: their policy was deleted before the device received it (values kept)"
                        .into(),
                ),
            }) {
                bodies.push(Some(body.to_string().into_boxed_str()));
            }
        }
        self.save_events(first_new, bodies);
        if let Some(db) = &self.database {
            if let Err(e) = db.store.settle() {
                log::warn!("the server's rows were not saved: {e}");
            }
        }
    }

    /// Sends each selected device what the server has for it (`force`: its policy even if
    /// unchanged), and records what each took.
    pub fn synchronise(&mut self, selected: impl Fn(usize) -> bool, force: bool) -> Answers {
        let now = self.clock.now_ms();
        // Updates first: what the device is sent next is for the version it runs then.
        let updates = self.install_waiting(&selected);
        let plans = Arc::new(self.server.plan(selected, force));
        let shared = plans.clone();
        let chosen: Vec<bool> = plans.iter().map(Option::is_some).collect();
        // Each device's answer, and whether it took the mode (its policy may still fail).
        let results = self.each_chosen(
            &chosen,
            || (Ok(Answer::Skipped), false),
            move |d: &Device| {
                let Some(plan) = &shared[d.state.id] else {
                    return Ok((Ok(Answer::Skipped), false));
                };
                let mut mode_taken = false;
                let mut waiting = None;
                if let Some(mode) = plan.private_ksn {
                    d.state.set_environment(|e| e.private_ksn = mode);
                    d.state.storage.save_environment(d.state.environment());
                    match d.task.set_private_ksn(mode).into_result() {
                        // The mode took effect; only its record waits, and the answer says so.
                        Err(e) if e.kind == ErrorKind::STORAGE_ERROR => {
                            mode_taken = true;
                            waiting = Some(e);
                        }
                        Err(e) => return Ok((Err(e), false)),
                        Ok(()) => mode_taken = true,
                    }
                }
                if let Some(document) = &plan.document {
                    if let Err(e) = d.task.push_policy(document.as_ref().into()).into_result() {
                        return Ok((Err(e), mode_taken));
                    }
                }
                Ok((waiting.map_or(Ok(Answer::Done), Err), mode_taken))
            },
        );
        let plans: Vec<Option<Delivery>> =
            Arc::try_unwrap(plans).unwrap_or_else(|shared| (*shared).clone());
        let mut answers = Vec::with_capacity(results.len());
        let mut took = Vec::new();
        for (i, (result, plan)) in results.into_iter().zip(plans).enumerate() {
            let answer = match result {
                Ok((answer, mode_taken)) => {
                    if let Some(mut plan) = plan {
                        let mode_only_waits = matches!(&answer, Err(e) if e.kind == ErrorKind::STORAGE_ERROR)
                            && mode_taken
                            && plan.document.is_none();
                        if answer.is_ok() || mode_only_waits {
                            self.server.delivered(i, plan, now);
                            took.push(i);
                        } else if mode_taken {
                            // The policy waits for the next synchronisation.
                            plan.document = None;
                            self.server.delivered(i, plan, now);
                            took.push(i);
                        }
                    }
                    answer
                }
                Err(e) => Err(e),
            };
            answers.push(answer);
        }
        // An update is the device's answer: done, or why it failed (it got its policy all
        // the same).
        for (i, outcome) in updates {
            match outcome {
                Err(e) => answers[i] = Err(e),
                Ok(()) if matches!(answers[i], Ok(Answer::Skipped)) => {
                    answers[i] = Ok(Answer::Done)
                }
                Ok(()) => {}
            }
            took.push(i);
        }
        // What each device took is recorded, so that a resumed server sends it nothing again.
        self.touch(took.iter().copied());
        self.persist_devices(took);
        answers
    }

    /// The devices changes reach at once: connected and switched on.
    pub(crate) fn connected(&self) -> Vec<bool> {
        self.server.reachable()
    }

    /// The administrator makes a change (`op`, by `by`, else the console's user, else
    /// `admin`), and the server sends connected devices (and those that came back) what it
    /// changes for them.
    ///
    /// The change is durable before any device hears of it: a change the host database
    /// cannot record is taken back and refused.
    pub fn apply(&mut self, op: &Operation, by: Option<&str>) -> Result<Answers, ServerError> {
        let ctx = Context::new(self.by(by), self.clock.now_ms());
        let before = self.database.is_some().then(|| self.server.checkpoint());
        let applied = self.server.apply(op, &ctx)?;
        if let Err(e) = self.persist(self.server.records(&applied.changes)) {
            if let Some(before) = before {
                self.server.restore(before);
            }
            return Err(e);
        }
        Ok(self.deliver(&applied))
    }

    /// Who makes a change: `by` if given, else the console's user, else `admin`.
    pub fn by(&self, by: Option<&str>) -> String {
        by.map(str::to_string)
            .or_else(|| self.actor.as_deref().map(str::to_string))
            .unwrap_or_else(|| "admin".into())
    }

    /// Sends connected devices (and those that came back) what a change changes for them:
    /// at once, or, delivering in the background, queued (each device answers `Queued`).
    fn deliver(&mut self, applied: &admin_server::Applied) -> Answers {
        let mut reach = self.connected();
        for &d in &applied.back {
            reach[d] = true;
        }
        if !self.deliveries.background {
            return self.synchronise(|i| reach[i], false);
        }
        let devices: Vec<usize> = (0..reach.len()).filter(|&i| reach[i]).collect();
        let answers = reach
            .iter()
            .map(|&r| Ok(if r { Answer::Queued } else { Answer::Skipped }))
            .collect();
        let by = self.actor.clone();
        self.deliveries
            .push(applied.what.clone(), devices, by.as_deref());
        answers
    }

    /// Delivers what is queued to at most `most` devices, in order; whether more waits.
    pub fn deliver_some(&mut self, most: usize) -> bool {
        let Some((id, devices, by)) = self.deliveries.next(most) else {
            return false;
        };
        // What the devices report of this change is its administrator's.
        let actor = std::mem::replace(&mut self.actor, by.map(Arc::from));
        let mut chosen = vec![false; self.devices.len()];
        for &d in &devices {
            chosen[d] = true;
        }
        let answers = self.synchronise(|i| chosen[i], false);
        let failed = devices.iter().filter(|&&d| answers[d].is_err()).count();
        self.deliveries.record(id, devices.len(), failed);
        self.collect_events();
        // Events of a delivery in the background belong to no step's report: dropped here,
        // a share at a time, not by the next administrator's step for every device at once.
        for &d in &devices {
            drop(self.devices[d].state.take_step_events());
        }
        self.actor = actor;
        !self.deliveries.is_idle()
    }

    /// `push_policy`: the administrator saves the root group's policy in the editor (which
    /// stamps each acceptance with the version of the statement it shows now) and the
    /// server sends it. A document the server cannot hold goes to the devices as it is,
    /// so the plugin says why it refuses it; nothing is stored. A save every device it was
    /// sent to refuses as invalid is taken back.
    pub fn push_policy(&mut self, policy_json: &str) -> Result<Answers, ServerError> {
        let Ok(doc) = serde_json::from_str::<Json>(policy_json) else {
            return Ok(self.send_as_is(policy_json));
        };
        let modes = self
            .server
            .tree()
            .modes_within(Tree::ROOT, self.server.private_ksn());
        let stamped =
            admin_server::editor::stamp(&doc, &self.server.descriptions_within(Tree::ROOT), modes);
        if admin_server::editor::holdable(&stamped).is_none() {
            return Ok(self.send_as_is(&stamped.to_string()));
        }
        // The plugin is the judge of this document: it is saved once a device took it.
        let before = self.server.checkpoint();
        let op = Operation::SaveRootPolicy { policy: doc };
        let applied = self
            .server
            .apply(&op, &Context::new(self.by(None), self.clock.now_ms()))?;
        let answers = self.deliver(&applied);
        if refused_as_invalid(&answers) {
            self.server.restore(before);
        } else {
            self.persist(self.server.records(&applied.changes))?;
        }
        Ok(answers)
    }

    fn send_as_is(&mut self, text: &str) -> Answers {
        let text = text.to_string();
        self.each_done(move |d| d.task.push_policy(text.as_str().into()).into_result())
    }

    /// Synchronisation of every device that is switched on: each gets its effective policy
    /// again, its locks and nothing it already applied (an acceptance stays of the version
    /// read then; a value the device changed locally since stays as it is).
    pub fn resync(&mut self) -> Answers {
        let chosen = self.selection.clone();
        self.synchronise(move |i| chosen.as_ref().is_none_or(|c| c[i]), true)
    }

    /// The server's KSN proxy setting (or a group's own) switches Private KSN; connected
    /// devices get it at once, the others at their next synchronisation.
    pub fn set_private_ksn(&mut self, enabled: bool) -> Answers {
        self.set_private_ksn_of(None, enabled)
            .expect("the server's own setting always exists")
    }

    pub fn set_private_ksn_of(
        &mut self,
        group: Option<&str>,
        enabled: bool,
    ) -> Result<Answers, ServerError> {
        let op = match group {
            Some(path) => Operation::SetGroup {
                path: path.to_string(),
                inherit: None,
                private_ksn: Some(Some(enabled)),
            },
            None => Operation::SetPrivateKsn { enabled },
        };
        self.apply(&op, None)
    }

    /// A local change on each addressed device. The server need not learn of it: it sends
    /// an unlocked value only with a save that is new to the device, so a synchronisation
    /// never undoes a local change.
    pub fn set_local(&mut self, settings_json: &str) -> Answers {
        let text = settings_json.to_string();
        self.each_done(move |d| d.task.set_local(text.as_str().into()).into_result())
    }

    /// Host time passes: periodic work on every device, then each device whose
    /// synchronisation falls in the time passed synchronises.
    pub fn advance_time(&mut self, ms: u64) -> Answers {
        // Statuses that take time (KSN unavailable, not synchronised) may change anywhere.
        self.touch_every();
        let from = self.clock.now_ms();
        self.clock.advance(ms);
        let now = self.clock.now_ms();
        if let Some(db) = &self.database {
            if let Err(e) = db.store.save_clock(&db.host, now) {
                log::warn!("{e}");
            }
        }
        let answers = self.each_done(|d| d.task.tick().into_result());
        let due = self.server.due(from, now);
        for (i, outcome) in self.synchronise(|i| due[i], false).into_iter().enumerate() {
            if let Err(e) = outcome {
                log::warn!("device {i}: its synchronisation failed: {e}");
            }
        }
        let synchronised = self.server.synchronised(&due, now);
        self.persist_devices(synchronised);
        self.server.expire_events(now);
        self.expire_saved_events(now);
        answers
    }

    /// Files the events devices sent since the last call in the server's store, and
    /// what they say of each device (its acceptance, KSN's availability).
    pub fn collect_events(&mut self) {
        let first_new = self.server.events().last_id() + 1;
        // The texts go to the host database only: the server's store in memory keeps
        // what it counts and filters by, so that its memory does not grow with them.
        let mut bodies = Vec::new();
        let mut changed = Vec::new();
        let wall_ms = crate::storage::wall_clock_ms();
        for (i, device) in self.devices.iter().enumerate() {
            let mut heard = false;
            for a in device.state.take_arrived() {
                heard |= self.server.heard(i, a.accepted, a.ksn_available, a.time_ms);
                if let Some(mut consent) = a.consent {
                    consent.user = self.actor.as_deref().map(str::to_string);
                    self.server.consent_heard(i, *consent);
                    heard = true;
                }
                let (description, body) = a.texts.map_or((None, None), |t| (t.description, t.body));
                if self.server.file_event(admin_server::Arriving {
                    time_ms: a.time_ms,
                    device: i,
                    group: 0,
                    importance: a.importance,
                    kind: a.kind,
                    by: self.actor.clone(),
                    wall_ms,
                    description,
                }) {
                    bodies.push(body);
                }
            }
            if heard {
                changed.push(i);
            }
        }
        self.touch(changed.iter().copied());
        self.save_events(first_new, bodies);
        self.persist_devices(changed);
        // The server's events and rows, queued since the step began, are durable before
        // it answers.
        if let Some(db) = &self.database {
            if let Err(e) = db.store.settle() {
                log::warn!("the server's rows were not saved: {e}");
            }
        }
    }

    /// Writes the events numbered from `first_new` on (their texts in `bodies`, in order)
    /// to the host database, in one transaction, and deletes there what the store's cap
    /// deleted.
    pub(crate) fn save_events(&self, first_new: u64, mut bodies: Vec<Option<Box<str>>>) {
        let Some(db) = &self.database else {
            return;
        };
        let store = self.server.events();
        if store.last_id() < first_new && store.deleted == 0 {
            return;
        }
        let rows: Vec<EventRow> = store
            .iter()
            .filter(|e| e.id >= first_new)
            .map(|e| EventRow {
                host: db.host.clone(),
                id: e.id,
                time_ms: e.time_ms,
                device: e.device,
                group: self.server.tree().path(e.group),
                importance: e.importance,
                kind: e.kind.to_string(),
                body: bodies
                    .get_mut((e.id - first_new) as usize)
                    .and_then(Option::take)
                    .map(String::from),
                by: e.by.as_deref().map(String::from),
                wall_ms: e.wall_ms,
            })
            .collect();
        if let Err(e) = db.store.queue_events(&db.host, rows, store.oldest_id()) {
            log::warn!("the server's events were not stored: {e}");
        }
    }

    /// The storage terms at work in the host database too.
    pub(super) fn expire_saved_events(&self, now: u64) {
        let Some(db) = &self.database else {
            return;
        };
        for (kind, days) in &self.server.events().rules.terms_days {
            let before = now.saturating_sub(days.saturating_mul(24 * 60 * 60 * 1000));
            if let Err(e) = db.store.expire_events(&db.host, kind, before) {
                log::warn!("{e}");
            }
        }
    }

    /// After a restart over a database: the events the server kept.
    pub(super) fn restore_events(&mut self) {
        let Some(db) = &self.database else {
            return;
        };
        let rows = match db.store.events(Some(&db.host)) {
            Ok(rows) => rows,
            Err(e) => {
                log::warn!("{e}");
                return;
            }
        };
        for r in rows {
            let group = self.server.tree().find(&r.group).unwrap_or(Tree::ROOT);
            self.server.restore_event(StoredEvent {
                id: r.id,
                time_ms: r.time_ms,
                device: r.device,
                group,
                importance: r.importance,
                kind: super::device::event_type(&r.kind),
                by: r.by.map(Into::into),
                wall_ms: r.wall_ms,
                description: r
                    .body
                    .as_deref()
                    .map(|b| crate::scenario::summary::summarise(b).into()),
            });
        }
    }

    /// Device `i`'s status and its reasons.
    pub fn status_of(&self, i: usize) -> (Status, Vec<String>) {
        let device = &self.devices[i];
        let record = self.server.device(i);
        let hung = device.state.hung.load(std::sync::atomic::Ordering::Relaxed);
        let task = (!hung).then(|| {
            let s = device.task.status();
            (s.state, s.error.into_option())
        });
        let accepted = record
            .accepted
            .unwrap_or_else(|| self.accepted_in_view(device));
        let now = self.clock.now_ms();
        // What to accept: the statement the device's own version ships for its mode.
        let to_accept = (!accepted)
            .then(|| {
                let statement = Statement::for_mode(self.server.mode_of(i));
                let text = self.description_of(i)?.statement(statement)?;
                Some(format!("version {} of {}", text.version, statement.title()))
            })
            .flatten();
        let facts = Facts {
            task,
            accepted,
            to_accept,
            ksn_unavailable_since: record.ksn_unavailable_since,
            last_sync_ms: if record.reachable() {
                now
            } else {
                record.last_sync_ms
            },
            now_ms: now,
        };
        status::status(&facts, self.server.status_rules())
    }

    /// Whether the device's main acceptance box (the one accepting the KSN statement)
    /// reads true, from its settings view.
    fn accepted_in_view(&self, device: &Device) -> bool {
        let Some(description) = self.plugins[device.plugin].description() else {
            return false;
        };
        let Some(boxed) = description
            .settings
            .iter()
            .find(|s| s.accepts.contains(&Statement::Ksn))
        else {
            return false;
        };
        let Ok(text) = device.task.settings_json().into_result() else {
            return false;
        };
        read_document::<SettingsView>("settings_json", &text)
            .ok()
            .and_then(|v| {
                v.details
                    .get(&boxed.path)
                    .map(|d| d.value == Json::Bool(true))
            })
            .unwrap_or(false)
    }

    /// The devices `target` names, each checked to exist.
    pub fn select(&self, target: &Target) -> Result<Vec<bool>, String> {
        let n = self.devices.len();
        let device = |d: usize| {
            if d < n {
                Ok(d)
            } else {
                Err(format!(
                    "no device {d} (devices 0 to {})",
                    n.saturating_sub(1)
                ))
            }
        };
        match target {
            Target::All(_) => Ok(vec![true; n]),
            Target::Group { group } => {
                let id = self.server.tree().find(group)?;
                Ok(self.server.in_group(id))
            }
            Target::Device { device: d } => {
                let d = device(*d)?;
                Ok((0..n).map(|i| i == d).collect())
            }
            Target::Devices { devices } => {
                let mut chosen = vec![false; n];
                for d in devices {
                    chosen[device(*d)?] = true;
                }
                Ok(chosen)
            }
        }
    }

    /// Counts of devices by status, OK first.
    pub fn status_counts(&self) -> [usize; 3] {
        self.status_counts_of(0..self.devices.len())
    }

    /// The same, of some devices.
    pub fn status_counts_of(&self, devices: impl IntoIterator<Item = usize>) -> [usize; 3] {
        let mut counts = [0; 3];
        for i in devices {
            counts[self.status_of(i).0 as usize] += 1;
        }
        counts
    }
}
