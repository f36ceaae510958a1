//! The Administration Server a task plugin lives under, as a library: administration
//! groups, group policies with revisions and profiles, each device's effective policy with
//! the provenance of every setting, synchronisation, events by importance and device
//! statuses.
//!
//! Pure, and driven by its host (quinn-proto's shape): its state is private; every change
//! an administrator makes is one typed [`Operation`] ([`Server::apply`]), all or nothing,
//! refused with a typed [`ServerError`]; the host reads it through queries, asks what each
//! device is to be sent ([`Server::plan`]), sends it, and reports back what each took
//! ([`Server::delivered`]) and what its devices said (their events). It knows settings only
//! through the plugin's `describe` ([`Server::set_description`]): as paths of the policy
//! document the plugin reads, which it sends each device as one document.

pub mod editor;
pub mod effective;
pub mod error;
pub mod events;
pub mod names;
pub mod plugins;
pub mod policy;
pub mod status;
pub mod tree;

mod delivery;
mod device;
mod ops;
pub mod records;

use std::{collections::BTreeSet, sync::Arc};

use plugin_api::documents::{PluginDescription, SettingRole};
use serde_json::{json, Value as Json};

pub use delivery::{Delivered, Delivery, DeliveryKey, View};
pub use device::{Consent, ManagedDevice};
pub use effective::{Effective, EffectiveSetting, Provenance};
pub use error::{ServerError, ServerErrorKind};
pub use events::{Arriving, EventRules, EventStore, Filter, StoredEvent};
pub use ops::{Applied, Change, Context, Operation, ProfileDoc};
pub use plugins::PluginVersion;
pub use policy::{Condition, Content, Entry, Policy, PolicyId, Profile, Revision, Settings};
pub use records::{Kind, Record};
pub use status::{Status, StatusRules};
pub use tree::{Group, GroupId, Tree};

/// Network Agents synchronise every 15 minutes by default.
/// The latest time the server keeps (2^53 − 1 ms, some 285,000 years): every reader of
/// its JSON, and its databases' signed integers, hold every time up to it exactly. Host
/// time stops there rather than wrap.
pub const MAX_TIME_MS: u64 = (1 << 53) - 1;

pub const SYNC_INTERVAL_MS: u64 = 15 * 60 * 1000;

/// The name `push_policy` gives the root group's policy when it creates it.
pub const ROOT_POLICY: &str = "Policy of Managed devices";

/// The server's own rules, set when it is made.
#[derive(Clone, Debug)]
pub struct Rules {
    pub events: EventRules,
    pub status: StatusRules,
    pub sync_interval_ms: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            events: EventRules::default(),
            status: StatusRules::default(),
            sync_interval_ms: SYNC_INTERVAL_MS,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Server {
    tree: Tree,
    policies: Vec<Policy>,
    next_policy: PolicyId,
    devices: Vec<ManagedDevice>,
    /// The server's KSN proxy setting: whether Private KSN is in use.
    private_ksn: bool,
    sync_interval_ms: u64,
    events: EventStore,
    status_rules: StatusRules,
    /// The host's own plugin's description of its settings and statements: the policy
    /// editor's where no device of a group has said which version it runs.
    description: Option<Arc<PluginDescription>>,
    /// Every plugin version a device of the fleet ran, with its description.
    versions: Vec<PluginVersion>,
    /// The settings (dotted paths) the plugin does not apply in Private KSN mode, from its
    /// `describe`: their unlocked values wait on the device for the mode to go off.
    deferred_in_private_ksn: BTreeSet<String>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new(Rules::default())
    }
}

impl Server {
    pub fn new(rules: Rules) -> Self {
        Self {
            tree: Tree::default(),
            policies: Vec::new(),
            next_policy: 1,
            devices: Vec::new(),
            private_ksn: false,
            sync_interval_ms: rules.sync_interval_ms,
            events: EventStore::new(rules.events),
            status_rules: rules.status,
            description: None,
            versions: Vec::new(),
            deferred_in_private_ksn: BTreeSet::new(),
        }
    }

    /// The plugin's description, for the policy editor and for the settings that wait for
    /// Private KSN mode to go off.
    pub fn set_description(&mut self, description: Option<PluginDescription>) {
        self.description = description.map(Arc::new);
        self.defer_in_private_ksn();
    }

    /// The settings any known version does not apply in Private KSN mode.
    fn defer_in_private_ksn(&mut self) {
        self.deferred_in_private_ksn = self
            .description
            .iter()
            .chain(self.versions.iter().filter_map(|v| v.description.as_ref()))
            .flat_map(|d| &d.settings)
            .filter(|s| matches!(s.role, SettingRole::GlobalOnly | SettingRole::GlobalRouting))
            .map(|s| s.path.clone())
            .collect();
    }

    /// Device `index` runs `version` (its host says so at boot and after an update).
    pub fn plugin_runs(&mut self, index: usize, version: PluginVersion) {
        let at = match self.versions.iter().position(|v| v.same(&version)) {
            Some(at) => at,
            None => {
                self.versions.push(version);
                self.defer_in_private_ksn();
                self.versions.len() - 1
            }
        };
        self.devices[index].runs = Some(at);
    }

    /// Device `index` runs `library` from now on, by its host's doing (`None`: the host's
    /// own plugin): a resumed server starts it on it.
    pub fn set_library(&mut self, index: usize, library: Option<String>) {
        self.devices[index].library = library;
    }

    /// Whether some plugin version of the fleet (or the host's own) knows setting `path`.
    pub fn known_by_some_version(&self, path: &str) -> bool {
        self.description
            .iter()
            .chain(self.versions.iter().filter_map(|v| v.description.as_ref()))
            .any(|d| d.setting(path).is_some())
    }

    /// Every plugin version a device of the fleet ran.
    pub fn plugin_versions(&self) -> &[PluginVersion] {
        &self.versions
    }

    /// The version device `index` runs, as its host last said.
    pub fn runs(&self, index: usize) -> Option<&PluginVersion> {
        self.devices[index].runs.map(|v| &self.versions[v])
    }

    /// What device `index`'s plugin says of itself (the host's own plugin's, until the
    /// device said which version it runs).
    pub fn description_of(&self, index: usize) -> Option<&PluginDescription> {
        self.runs(index)
            .and_then(|v| v.description.as_deref())
            .or(self.description.as_deref())
    }

    /// The same, each with its version's name (`ksn-usage-task 1.1.0`).
    pub fn labelled_descriptions_within(
        &self,
        group: GroupId,
    ) -> Vec<(String, &PluginDescription)> {
        let labelled: Vec<(String, &PluginDescription)> = self
            .versions_within(group)
            .into_iter()
            .filter_map(|v| {
                let version = &self.versions[v];
                version.description.as_deref().map(|d| (version.label(), d))
            })
            .collect();
        if labelled.is_empty() {
            self.description
                .as_deref()
                .map(|d| ("the host's plugin".to_string(), d))
                .into_iter()
                .collect()
        } else {
            labelled
        }
    }

    /// The versions run by the devices of `group` and below.
    pub fn versions_within(&self, group: GroupId) -> Vec<usize> {
        let mut seen = vec![false; self.versions.len()];
        for d in &self.devices {
            if let Some(v) = d.runs {
                if !seen[v] && self.tree.within(d.group, group) {
                    seen[v] = true;
                }
            }
        }
        (0..seen.len()).filter(|v| seen[*v]).collect()
    }

    /// The descriptions of the versions run by the devices of `group` and below (the
    /// host's own plugin's where none said): what the policy editor offers there.
    pub fn descriptions_within(&self, group: GroupId) -> Vec<&PluginDescription> {
        let found: Vec<&PluginDescription> = self
            .versions_within(group)
            .into_iter()
            .filter_map(|v| self.versions[v].description.as_deref())
            .collect();
        if found.is_empty() {
            self.description.as_deref().into_iter().collect()
        } else {
            found
        }
    }

    /// A device enters the server, in `group`; its number.
    pub fn add_device(&mut self, group: GroupId) -> usize {
        self.devices.push(ManagedDevice::new(group));
        self.devices.len() - 1
    }

    /// The groups and policies as they are: a save every device refused is taken back to
    /// it (`restore`).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            tree: self.tree.clone(),
            policies: self.policies.clone(),
            next_policy: self.next_policy,
        }
    }

    pub fn restore(&mut self, checkpoint: Checkpoint) {
        self.tree = checkpoint.tree;
        self.policies = checkpoint.policies;
        self.next_policy = checkpoint.next_policy;
    }

    // Queries.

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn devices(&self) -> &[ManagedDevice] {
        &self.devices
    }

    pub fn device(&self, index: usize) -> &ManagedDevice {
        &self.devices[index]
    }

    /// The server's KSN proxy setting: whether Private KSN is in use.
    pub fn private_ksn(&self) -> bool {
        self.private_ksn
    }

    pub fn sync_interval_ms(&self) -> u64 {
        self.sync_interval_ms
    }

    pub fn events(&self) -> &EventStore {
        &self.events
    }

    pub fn status_rules(&self) -> &StatusRules {
        &self.status_rules
    }

    pub fn description(&self) -> Option<&PluginDescription> {
        self.description.as_deref()
    }

    /// The devices changes reach at once: connected and switched on.
    pub fn reachable(&self) -> Vec<bool> {
        self.devices.iter().map(ManagedDevice::reachable).collect()
    }

    pub fn policy(&self, name: &str) -> Result<&Policy, ServerError> {
        self.policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
                ServerError::not_found(format!(
                    "no policy {name:?}{}",
                    plugin_api::documents::path::did_you_mean(name, names)
                ))
            })
    }

    pub(crate) fn policy_mut(&mut self, name: &str) -> Result<&mut Policy, ServerError> {
        let id = self.policy(name)?.id;
        Ok(self
            .policies
            .iter_mut()
            .find(|p| p.id == id)
            .expect("found"))
    }

    pub fn policy_by_id(&self, id: PolicyId) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The active policy of `group`, if it has one.
    pub fn active_policy(&self, group: GroupId) -> Option<&Policy> {
        self.policies.iter().find(|p| p.group == group && p.active)
    }

    /// Creates a policy in `group` (revision 1); an active one makes the group's active
    /// policy inactive.
    fn create_policy(
        &mut self,
        group: GroupId,
        name: &str,
        content: Content,
        active: bool,
        by: &str,
        now: u64,
    ) -> Result<PolicyId, ServerError> {
        names::check("policy", name)?;
        if self.policies.iter().any(|p| p.name == name) {
            return Err(ServerError::name_taken(format!(
                "a policy named {name:?} already exists"
            )));
        }
        check_profiles(&content)?;
        let id = self.next_policy;
        self.next_policy += 1;
        if active {
            self.deactivate_group(group);
        }
        self.policies.push(Policy {
            id,
            name: name.to_string(),
            group,
            active,
            revisions: vec![Revision {
                number: 1,
                by: by.to_string(),
                time_ms: now,
                what: "created".into(),
                content: Arc::new(content),
            }],
        });
        Ok(id)
    }

    fn deactivate_group(&mut self, group: GroupId) {
        for p in self.policies.iter_mut().filter(|p| p.group == group) {
            p.active = false;
        }
    }

    /// Saves a new revision of `name`, its content as `change` leaves a copy of the
    /// current one.
    fn edit_policy(
        &mut self,
        name: &str,
        what: &str,
        by: &str,
        now: u64,
        change: impl FnOnce(&mut Content) -> Result<(), ServerError>,
    ) -> Result<u32, ServerError> {
        let policy = self.policy_mut(name)?;
        let mut content = (*policy.current().content).clone();
        change(&mut content)?;
        check_profiles(&content)?;
        let number = policy.current().number + 1;
        policy.revisions.push(Revision {
            number,
            by: by.to_string(),
            time_ms: now,
            what: what.to_string(),
            content: Arc::new(content),
        });
        Ok(number)
    }

    /// A new revision with the content of revision `number`.
    fn roll_back(
        &mut self,
        name: &str,
        number: u32,
        by: &str,
        now: u64,
    ) -> Result<u32, ServerError> {
        let old = self.policy(name)?.revision(number)?.content.clone();
        self.edit_policy(
            name,
            &format!("rolled back to revision {number}"),
            by,
            now,
            |c| {
                *c = (*old).clone();
                Ok(())
            },
        )
    }

    fn activate(&mut self, name: &str) -> Result<(), ServerError> {
        let group = self.policy(name)?.group;
        self.deactivate_group(group);
        self.policy_mut(name)?.active = true;
        Ok(())
    }

    fn deactivate(&mut self, name: &str) -> Result<(), ServerError> {
        self.policy_mut(name)?.active = false;
        Ok(())
    }

    /// Deletes a policy (made inactive first): its locks are released, and nothing is
    /// restored on its devices.
    fn delete(&mut self, name: &str) -> Result<(), ServerError> {
        let id = self.policy(name)?.id;
        self.policies.retain(|p| p.id != id);
        Ok(())
    }

    /// Whether device `index` uses Private KSN, by its group and the server's setting.
    pub fn mode_of(&self, index: usize) -> bool {
        self.tree
            .private_ksn(self.devices[index].group, self.private_ksn)
    }

    pub fn effective(&self, index: usize) -> Effective {
        let d = &self.devices[index];
        effective::effective(
            &self.tree,
            &self.policies,
            d.group,
            d.out_of_office,
            &d.tags,
        )
    }

    /// Devices in `group` or below it.
    pub fn in_group(&self, group: GroupId) -> Vec<bool> {
        self.devices
            .iter()
            .map(|d| self.tree.within(d.group, group))
            .collect()
    }

    /// The provenance of an effective setting, as `explain` and `expect.provenance` read it.
    pub fn provenance_json(&self, setting: &EffectiveSetting) -> Json {
        let p = &setting.provenance;
        let name = |id: PolicyId| {
            self.policy_by_id(id)
                .map_or(String::new(), |p| p.name.clone())
        };
        json!({
            "group": self.tree.path(p.group),
            "policy": name(p.policy),
            "revision": p.revision,
            "profile": p.profile,
            "locked": setting.entry.locked,
            "overrides": p.overrode.iter().map(|&id| json!({
                "policy": name(id),
                "group": self.policy_by_id(id).map_or(String::new(), |q| self.tree.path(q.group)),
            })).collect::<Vec<_>>(),
        })
    }

    /// One line on where a setting's effective value comes from.
    pub fn provenance_line(&self, path: &str, effective: &Effective) -> String {
        let Some(setting) = effective.get(path) else {
            return "no policy sets it".into();
        };
        let p = &setting.provenance;
        let policy = self.policy_by_id(p.policy).map_or("?", |q| q.name.as_str());
        let mut line = format!(
            "{} by policy {policy:?} of group {} (revision {})",
            if setting.entry.locked {
                "locked"
            } else {
                "set"
            },
            self.tree.path(p.group),
            p.revision
        );
        if let Some(profile) = &p.profile {
            line.push_str(&format!(", profile {profile:?}"));
        }
        for id in &p.overrode {
            if let Some(q) = self.policy_by_id(*id) {
                line.push_str(&format!(
                    "; its lock overrides policy {:?} of group {}",
                    q.name,
                    self.tree.path(q.group)
                ));
            }
        }
        line
    }

    // What the host reports of its devices.

    /// Device `index` said (in its events) whether its statement is accepted, and whether
    /// KSN is available to it, at `time_ms`; whether that changed what the server knows.
    pub fn heard(
        &mut self,
        index: usize,
        accepted: Option<bool>,
        ksn_available: Option<bool>,
        time_ms: u64,
    ) -> bool {
        let d = &mut self.devices[index];
        let before = (d.accepted, d.ksn_unavailable_since);
        if let Some(accepted) = accepted {
            d.accepted = Some(accepted);
        }
        match ksn_available {
            Some(false) => {
                d.ksn_unavailable_since.get_or_insert(time_ms);
            }
            Some(true) => d.ksn_unavailable_since = None,
            None => {}
        }
        before != (d.accepted, d.ksn_unavailable_since)
    }

    /// Device `index` said its consent changed (`consent.policy` is filled in here: the
    /// policy and revision that set the statement's box on the device, for a policy's).
    pub fn consent_heard(&mut self, index: usize, mut consent: Consent) {
        if consent.source == "policy" && consent.policy.is_none() {
            let path = self.description.as_ref().and_then(|d| {
                d.settings
                    .iter()
                    .find(|s| s.accepts.iter().any(|a| a.as_str() == consent.statement))
                    .map(|s| s.path.clone())
            });
            let effective = self.effective(index);
            consent.policy = path.and_then(|p| effective.get(&p)).and_then(|e| {
                self.policy_by_id(e.provenance.policy)
                    .map(|p| (p.name.clone(), e.provenance.revision))
            });
        }
        let entries = &mut self.devices[index].consent;
        match entries
            .iter_mut()
            .find(|c| c.statement == consent.statement && c.category == consent.category)
        {
            Some(entry) => *entry = consent,
            None => entries.push(consent),
        }
    }

    /// Files an event of device `index` (its group is filled in here); `false` when its
    /// type is not stored (a term of 0 days).
    pub fn file_event(&mut self, mut event: events::Arriving) -> bool {
        event.group = self.devices[event.device].group;
        self.events.add(event)
    }

    /// Deletes the events older than their type's storage term.
    pub fn expire_events(&mut self, now_ms: u64) {
        self.events.expire(now_ms);
    }

    /// An event read back from the host's database, numbered as it was.
    pub fn restore_event(&mut self, event: StoredEvent) {
        self.events.restore(event);
    }

    /// The devices that synchronised at `now` (`due`), or that hold a connection; the
    /// ones without a connection that did (a connected one's last synchronisation is
    /// always now, and is not worth recording).
    pub fn synchronised(&mut self, due: &[bool], now: u64) -> Vec<usize> {
        let mut unconnected = Vec::new();
        for (i, (record, due)) in self.devices.iter_mut().zip(due).enumerate() {
            if record.online && (*due || record.connected) {
                record.last_sync_ms = now;
                if !record.connected {
                    unconnected.push(i);
                }
            }
        }
        unconnected
    }

    /// After a restart: what the host last told device `index` of Private KSN, and the
    /// server's setting as its devices last had it.
    pub fn resumed_mode(&mut self, index: usize, private_ksn: bool) {
        self.devices[index].delivered.private_ksn = Some(private_ksn);
    }

    pub fn resumed_server_mode(&mut self, private_ksn: bool) {
        self.private_ksn = private_ksn;
    }
}

/// The server's groups and policies at one moment (`checkpoint`).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    tree: Tree,
    policies: Vec<Policy>,
    next_policy: PolicyId,
}

fn check_profiles(content: &Content) -> Result<(), ServerError> {
    if content.profiles.len() > policy::MOST_PROFILES {
        return Err(ServerError::new(
            ServerErrorKind::LimitExceeded,
            format!(
                "a policy holds at most {} profiles, this one {}",
                policy::MOST_PROFILES,
                content.profiles.len()
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for p in &content.profiles {
        if !names.insert(&p.name) {
            return Err(ServerError::name_taken(format!(
                "two profiles named {:?}",
                p.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
