//! The Administration Server a task plugin lives under: administration groups, group
//! policies with revisions and profiles, each device's effective policy with the
//! provenance of every setting, synchronisation, events by importance and device statuses.
//!
//! Pure: it decides what each device is to be sent (`plan`), and `World` sends it and
//! reports back (`delivered`). It knows settings only as paths of the policy document the
//! loaded plugin reads, and sends each device that one document.
//!
//! Effective settings follow the vendor's rule "the policy's unlocked values < local values
//! < the policy's locked values": a locked value is always sent; an unlocked one only when
//! the save that set it is new to the device (a policy saved or rolled back, a policy that
//! reaches the device for the first time, a change of the device's active profiles). A
//! policy that goes away (deleted, deactivated, no longer inherited) releases its locks and
//! restores nothing: the values that come into force then were applied at their own save,
//! and are not applied again; a synchronisation sends nothing new. So no acceptance, and no
//! value, changes on a device without an administrator's or a user's act.
//!
//! Unlocked values of settings that do not apply in Private KSN mode are applied by the
//! plugin when the device leaves it; the server sends them with every document until then
//! (a later document that left them out would cancel them), unless a lock supersedes them.

pub mod effective;
pub mod error;
pub mod events;
pub mod policy;
pub mod status;
pub mod tree;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use serde_json::{json, Value as Json};

pub use effective::{Effective, EffectiveSetting, Provenance};
pub use error::{ServerError, ServerErrorKind};
pub use events::{EventRules, EventStore, Filter, StoredEvent};
pub use policy::{Condition, Content, Entry, Policy, PolicyId, Profile, Revision, Settings};
pub use status::{Status, StatusRules};
pub use tree::{Group, GroupId, Tree};

/// Network Agents synchronise every 15 minutes by default.
pub const SYNC_INTERVAL_MS: u64 = 15 * 60 * 1000;

/// The name `push_policy` gives the root group's policy when it creates it.
pub const ROOT_POLICY: &str = "Policy of Managed devices";

type DeliveryKey = (PolicyId, u32, Option<String>);

/// One save of a policy as a device sees it: the policy, its revision, and which of its
/// profiles are active on the device. Its unlocked values are applied once, when the view
/// is new to the device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct View {
    pub policy: PolicyId,
    pub revision: u32,
    pub profiles: Vec<String>,
}

/// What the server last sent a device.
#[derive(Clone, Debug, Default)]
pub struct Delivered {
    /// The locks last sent (as a policy document of the locked values alone): a change of
    /// them is sent, whatever else changed.
    pub locks: Option<Arc<str>>,
    /// The last view of each policy whose values reached the device, while it is the
    /// policy's current revision (an older revision or a deleted policy never comes back).
    pub seen: Arc<[View]>,
    /// Unlocked values of settings not applied in Private KSN mode, sent while the device
    /// was in it: sent again with every document until the device leaves the mode.
    pub pending: BTreeMap<String, DeliveryKey>,
    pub private_ksn: Option<bool>,
}

/// One managed device as the server sees it.
#[derive(Clone, Debug)]
pub struct ManagedDevice {
    pub group: GroupId,
    pub out_of_office: bool,
    pub tags: BTreeSet<String>,
    /// Holds a connection to the server: changes reach it at once. Otherwise it gets them
    /// at its next synchronisation.
    pub connected: bool,
    /// Switched on; a device that is not synchronises with nothing until it is again.
    pub online: bool,
    pub delivered: Delivered,
    pub last_sync_ms: u64,
    /// Whether its statement is accepted, as its consent events last said (`None`: not
    /// known yet).
    pub accepted: Option<bool>,
    /// Since when a KSN service has been unavailable to it, as its events say.
    pub ksn_unavailable_since: Option<u64>,
}

impl ManagedDevice {
    /// Changes reach it at once: it holds a connection and is switched on.
    pub fn reachable(&self) -> bool {
        self.connected && self.online
    }

    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            out_of_office: false,
            tags: BTreeSet::new(),
            connected: true,
            online: true,
            delivered: Delivered::default(),
            last_sync_ms: 0,
            accepted: None,
            ksn_unavailable_since: None,
        }
    }
}

/// What a device is to be sent at a synchronisation.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    pub private_ksn: Option<bool>,
    pub document: Option<Arc<str>>,
    /// What the document was made of (shared by the devices that get the same one).
    planned: Arc<Planned>,
}

#[derive(Clone, Debug)]
pub struct Server {
    pub tree: Tree,
    pub policies: Vec<Policy>,
    next_policy: PolicyId,
    pub devices: Vec<ManagedDevice>,
    /// The server's KSN proxy setting: whether Private KSN is in use.
    pub private_ksn: bool,
    pub sync_interval_ms: u64,
    pub events: EventStore,
    pub status_rules: StatusRules,
    /// The settings (dotted paths) the plugin does not apply in Private KSN mode, from its
    /// `describe`: their unlocked values wait on the device for the mode to go off.
    pub deferred_in_private_ksn: BTreeSet<String>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            tree: Tree::default(),
            policies: Vec::new(),
            next_policy: 1,
            devices: Vec::new(),
            private_ksn: false,
            sync_interval_ms: SYNC_INTERVAL_MS,
            events: EventStore::default(),
            status_rules: StatusRules::default(),
            deferred_in_private_ksn: BTreeSet::new(),
        }
    }
}

impl Server {
    /// The policies and groups as they are, for a change that may have to be undone.
    pub fn clone_policies(&self) -> Saved {
        Saved {
            tree: self.tree.clone(),
            policies: self.policies.clone(),
            next_policy: self.next_policy,
        }
    }

    pub fn restore_policies(&mut self, saved: Saved) {
        self.tree = saved.tree;
        self.policies = saved.policies;
        self.next_policy = saved.next_policy;
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

    fn policy_mut(&mut self, name: &str) -> Result<&mut Policy, ServerError> {
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
    pub fn create_policy(
        &mut self,
        group: GroupId,
        name: &str,
        content: Content,
        active: bool,
        by: &str,
        now: u64,
    ) -> Result<PolicyId, ServerError> {
        if name.trim().is_empty() {
            return Err(ServerError::invalid_name("a policy needs a name"));
        }
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
    pub fn edit_policy(
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
    pub fn roll_back(
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

    pub fn activate(&mut self, name: &str) -> Result<(), ServerError> {
        let group = self.policy(name)?.group;
        self.deactivate_group(group);
        self.policy_mut(name)?.active = true;
        Ok(())
    }

    pub fn deactivate(&mut self, name: &str) -> Result<(), ServerError> {
        self.policy_mut(name)?.active = false;
        Ok(())
    }

    /// Deletes a policy (made inactive first): its locks are released, and nothing is
    /// restored on its devices.
    pub fn delete(&mut self, name: &str) -> Result<(), ServerError> {
        let id = self.policy(name)?.id;
        self.policies.retain(|p| p.id != id);
        Ok(())
    }

    /// `push_policy`: the administrator saves the root group's active policy with these
    /// settings (its profiles and flags kept), or creates it.
    pub fn save_root_policy(
        &mut self,
        settings: Settings,
        by: &str,
        now: u64,
    ) -> Result<(), ServerError> {
        match self.active_policy(Tree::ROOT).map(|p| p.name.clone()) {
            Some(name) => self
                .edit_policy(&name, "edited", by, now, |c| {
                    c.settings = settings;
                    Ok(())
                })
                .map(|_| ()),
            None => {
                let mut name = ROOT_POLICY.to_string();
                let mut n = 1;
                while self.policies.iter().any(|p| p.name == name) {
                    n += 1;
                    name = format!("{ROOT_POLICY} ({n})");
                }
                let content = Content {
                    settings,
                    ..Content::default()
                };
                self.create_policy(Tree::ROOT, &name, content, true, by, now)
                    .map(|_| ())
            }
        }
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

    /// What each selected device is to be sent now (`None`: nothing). `force` sends the
    /// policy even when it is what the device last got (a re-sync).
    pub fn plan(&self, selected: impl Fn(usize) -> bool, force: bool) -> Vec<Option<Delivery>> {
        // Devices of one group with the same properties and the same history get the same
        // document: computed once.
        type Shape<'a> = (GroupId, bool, &'a BTreeSet<String>, &'a [View], bool);
        let mut shared: HashMap<Shape, Arc<Planned>> = HashMap::new();
        (0..self.devices.len())
            .map(|i| {
                if !selected(i) || !self.devices[i].online {
                    return None;
                }
                let d = &self.devices[i];
                let planned = if d.delivered.pending.is_empty() {
                    let mode = self.mode_after(i);
                    shared
                        .entry((d.group, d.out_of_office, &d.tags, &d.delivered.seen, mode))
                        .or_insert_with(|| Arc::new(self.planned(i)))
                        .clone()
                } else {
                    Arc::new(self.planned(i))
                };
                let mode = self.mode_of(i);
                // A device no policy ever reached has nothing to be sent.
                let never = planned.views.is_empty() && d.delivered.locks.is_none();
                let changed = d.delivered.locks.as_deref() != Some(&*planned.locks)
                    || planned.views.iter().any(|v| !d.delivered.seen.contains(v));
                let delivery = Delivery {
                    private_ksn: (d.delivered.private_ksn != Some(mode)).then_some(mode),
                    document: ((force || changed) && !never).then(|| planned.text.clone()),
                    planned,
                };
                (delivery.private_ksn.is_some() || delivery.document.is_some()).then_some(delivery)
            })
            .collect()
    }

    /// The mode device `index` is in once it takes what it is sent now.
    fn mode_after(&self, index: usize) -> bool {
        self.mode_of(index)
    }

    /// The current views of the policies that reach device `index`.
    fn views(&self, index: usize) -> Vec<View> {
        let d = &self.devices[index];
        effective::reaching(&self.tree, &self.policies, d.group)
            .iter()
            .map(|p| {
                let revision = p.current();
                View {
                    policy: p.id,
                    revision: revision.number,
                    profiles: revision
                        .content
                        .profiles
                        .iter()
                        .filter(|f| f.condition.holds(d.out_of_office, &d.tags))
                        .map(|f| f.name.clone())
                        .collect(),
                }
            })
            .collect()
    }

    fn planned(&self, index: usize) -> Planned {
        let d = &self.devices[index];
        let views = self.views(index);
        let private = self.mode_after(index);
        let mut included = Settings::new();
        let mut locks = Settings::new();
        let mut pending = BTreeMap::new();
        for (path, setting) in self.effective(index) {
            if setting.entry.locked {
                locks.insert(path.clone(), setting.entry.clone());
            } else {
                let key = setting.provenance.key();
                let view = views
                    .iter()
                    .find(|v| v.policy == key.0)
                    .expect("an effective value comes from a reaching policy");
                let new = !d.delivered.seen.contains(view);
                let waiting = d.delivered.pending.get(&path) == Some(&key);
                if !new && !waiting {
                    continue;
                }
                if private && self.deferred_in_private_ksn.contains(&path) {
                    pending.insert(path.clone(), key);
                }
            }
            included.insert(path, setting.entry);
        }
        Planned {
            text: policy::document(&included).to_string().into(),
            locks: policy::document(&locks).to_string().into(),
            views,
            pending,
        }
    }

    /// Device `index` took `delivery` at `now`.
    pub fn delivered(&mut self, index: usize, delivery: Delivery, now: u64) {
        let still_current = |v: &View| {
            self.policy_by_id(v.policy)
                .is_some_and(|p| p.current().number == v.revision)
        };
        let d = &self.devices[index];
        let seen: Option<Arc<[View]>> = delivery.document.as_ref().map(|_| {
            let mut seen: Vec<View> = d
                .delivered
                .seen
                .iter()
                .filter(|v| {
                    still_current(v) && !delivery.planned.views.iter().any(|n| n.policy == v.policy)
                })
                .cloned()
                .chain(delivery.planned.views.iter().cloned())
                .collect();
            seen.sort();
            if *seen == *d.delivered.seen {
                d.delivered.seen.clone()
            } else {
                seen.into()
            }
        });
        let d = &mut self.devices[index];
        if let Some(mode) = delivery.private_ksn {
            d.delivered.private_ksn = Some(mode);
        }
        if delivery.document.is_some() {
            if d.delivered.locks.as_deref() != Some(&*delivery.planned.locks) {
                d.delivered.locks = Some(delivery.planned.locks.clone());
            }
            if let Some(seen) = seen {
                d.delivered.seen = seen;
            }
            if d.delivered.pending != delivery.planned.pending {
                d.delivered.pending = delivery.planned.pending.clone();
            }
        }
        // Out of Private KSN mode the plugin has applied what waited for it.
        if d.delivered.private_ksn == Some(false) {
            d.delivered.pending.clear();
        }
        d.last_sync_ms = now;
    }

    /// The devices whose periodic synchronisation falls in `(from, to]`: each at its own
    /// phase of the interval, so a fleet does not synchronise in the same instant.
    pub fn due(&self, from: u64, to: u64) -> Vec<bool> {
        // In u128: any interval, at any time, without overflow.
        let interval = u128::from(self.sync_interval_ms.max(1));
        let n = self.devices.len().max(1) as u128;
        let (from, to) = (u128::from(from), u128::from(to));
        (0..self.devices.len())
            .map(|i| {
                let phase = (i as u128 % n) * interval / n;
                // The first sync time after `from` at this phase.
                let next = if from < phase {
                    phase
                } else {
                    phase + ((from - phase) / interval + 1) * interval
                };
                next <= to
            })
            .collect()
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
}

/// The server's policies and groups at one moment (`clone_policies`).
#[derive(Clone, Debug)]
pub struct Saved {
    tree: Tree,
    policies: Vec<Policy>,
    next_policy: PolicyId,
}

#[derive(Debug, Clone, Default)]
struct Planned {
    text: Arc<str>,
    /// The document of its locked values alone.
    locks: Arc<str>,
    /// The views of the policies that reach the device.
    views: Vec<View>,
    /// What of the document waits on the device for Private KSN to go off.
    pending: BTreeMap<String, DeliveryKey>,
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
