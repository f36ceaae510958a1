//! Synchronisation: what each device is to be sent, and what it took.
//!
//! A locked value is always sent; an unlocked one only when the save that set it is new
//! to the device (a policy saved or rolled back, a policy that reaches the device for the
//! first time, a change of the device's active profiles). A policy that goes away
//! (deleted, deactivated, no longer inherited) releases its locks and restores nothing:
//! the values that come into force then were applied at their own save, and are not
//! applied again; a synchronisation sends nothing new. So no acceptance, and no value,
//! changes on a device without an administrator's or a user's act.
//!
//! Unlocked values of settings that do not apply in Private KSN mode are applied by the
//! plugin when the device leaves it; the server sends them with every document until then
//! (a later document that left them out would cancel them), unless a lock supersedes them.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use crate::{
    effective,
    policy::{self, PolicyId, Settings},
    tree::GroupId,
    Server,
};

pub type DeliveryKey = (PolicyId, u32, Option<String>);

/// One save of a policy as a device sees it: the policy, its revision, and which of its
/// profiles are active on the device. Its unlocked values are applied once, when the view
/// is new to the device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct View {
    pub policy: PolicyId,
    pub revision: u32,
    pub profiles: Vec<String>,
}

/// What the server last sent a device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// What a device is to be sent at a synchronisation.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    pub private_ksn: Option<bool>,
    pub document: Option<Arc<str>>,
    /// What the document was made of (shared by the devices that get the same one).
    planned: Arc<Planned>,
}

impl Server {
    /// What each selected device is to be sent now (`None`: nothing). `force` sends the
    /// policy even when it is what the device last got (a re-sync).
    pub fn plan(&self, selected: impl Fn(usize) -> bool, force: bool) -> Vec<Option<Delivery>> {
        // Devices of one group with the same properties and the same history get the same
        // document: computed once.
        type Shape<'a> = (
            GroupId,
            bool,
            &'a BTreeSet<String>,
            &'a [View],
            bool,
            Option<usize>,
        );
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
                        .entry((
                            d.group,
                            d.out_of_office,
                            &d.tags,
                            &d.delivered.seen,
                            mode,
                            d.runs,
                        ))
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

    /// The updates to install now: each selected device switched on with a library
    /// waiting for it.
    pub fn installs(&self, selected: impl Fn(usize) -> bool) -> Vec<(usize, String)> {
        self.devices
            .iter()
            .enumerate()
            .filter(|(i, d)| d.online && selected(*i))
            .filter_map(|(i, d)| d.install.clone().map(|library| (i, library)))
            .collect()
    }

    /// Device `index` took its update (it runs `library` now), or could not (it keeps
    /// its version; the update is over for it). After an update the device is sent its
    /// policy again, as a device the policy reaches for the first time: the new version
    /// applies it.
    pub fn installed(&mut self, index: usize, took: bool) {
        let d = &mut self.devices[index];
        let Some(library) = d.install.take() else {
            return;
        };
        if took {
            d.library = Some(library);
            d.delivered = Delivered {
                private_ksn: d.delivered.private_ksn,
                ..Delivered::default()
            };
        }
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
        // What the device's plugin version knows, each acceptance of the version it ships.
        let description = self.description_of(index);
        let elsewhere = |path: &str| self.known_by_some_version(path);
        let (included, locks) = (
            crate::editor::narrow(&included, description, elsewhere),
            crate::editor::narrow(&locks, description, elsewhere),
        );
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
