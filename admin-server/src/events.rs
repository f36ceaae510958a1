//! The server's event store, as the vendor's server keeps it: every event its devices
//! send, with its importance; at most `cap` (400,000 by default), and when the count
//! reaches the cap plus `headroom` (10,000) the oldest are deleted down to the cap; each
//! event type may have its own storage term, in days of host time. A term of 0 days keeps
//! that type out of the store altogether (the vendor's "detected, not shown": the server
//! still reads what the event says of its device, and counts it).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use plugin_api::documents::Importance;
use serde::{Deserialize, Serialize};

use super::tree::GroupId;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRules {
    pub cap: usize,
    pub headroom: usize,
    /// Storage term in days, by event type; a type without one is kept until the cap, a
    /// type with 0 is never stored.
    pub terms_days: BTreeMap<String, u64>,
}

impl Default for EventRules {
    fn default() -> Self {
        Self {
            cap: 400_000,
            headroom: 10_000,
            terms_days: BTreeMap::new(),
        }
    }
}

/// An event's type, shared by every event of it: a fleet sends millions of events of a
/// few dozen types.
pub type EventType = Arc<str>;

/// One event as the server stores it.
#[derive(Clone, Debug, Serialize)]
pub struct StoredEvent {
    /// Numbered by the server, from 1, in arrival order.
    pub id: u64,
    pub time_ms: u64,
    pub device: usize,
    /// The device's group when the event arrived.
    pub group: GroupId,
    pub importance: Importance,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The administrator whose change caused it, when a change through a console did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Arc<str>>,
    /// The wall clock when it arrived, in milliseconds since 1970 (0: not known).
    pub wall_ms: u64,
    /// What happened, in words, when the server keeps that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Arc<str>>,
}

/// An event on its way into the store.
#[derive(Clone, Debug)]
pub struct Arriving {
    pub time_ms: u64,
    pub device: usize,
    pub group: GroupId,
    pub importance: Importance,
    pub kind: EventType,
    pub by: Option<Arc<str>>,
    pub wall_ms: u64,
    pub description: Option<Arc<str>>,
}

/// Which events a query selects; every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only events numbered above this one.
    pub after_id: Option<u64>,
    pub devices: Option<Vec<bool>>,
    pub importance: Option<Importance>,
    pub kind: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Filter {
    pub fn selects(&self, e: &StoredEvent) -> bool {
        self.after_id.is_none_or(|id| e.id > id)
            && self
                .devices
                .as_ref()
                .is_none_or(|d| d.get(e.device).copied().unwrap_or(false))
            && self.importance.is_none_or(|i| i == e.importance)
            && self.kind.as_deref().is_none_or(|k| k == &*e.kind)
            && self.since_ms.is_none_or(|t| e.time_ms >= t)
            && self.until_ms.is_none_or(|t| e.time_ms <= t)
    }
}

#[derive(Clone, Debug, Default)]
pub struct EventStore {
    pub rules: EventRules,
    events: VecDeque<StoredEvent>,
    next_id: u64,
    /// How many the cap and the terms deleted, over the store's life.
    pub deleted: u64,
    /// How many arrived of a type whose term is 0 days: detected, never stored.
    pub not_stored: u64,
}

impl EventStore {
    pub fn new(rules: EventRules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Files an event; `false` when its type's term is 0 days and it is not stored.
    pub fn add(&mut self, e: Arriving) -> bool {
        if self.rules.terms_days.get(&*e.kind) == Some(&0) {
            self.not_stored += 1;
            return false;
        }
        self.next_id += 1;
        self.events.push_back(StoredEvent {
            id: self.next_id,
            time_ms: e.time_ms,
            device: e.device,
            group: e.group,
            importance: e.importance,
            kind: e.kind,
            by: e.by,
            wall_ms: e.wall_ms,
            description: e.description,
        });
        if self.events.len() >= self.rules.cap.saturating_add(self.rules.headroom) {
            let excess = self.events.len() - self.rules.cap;
            self.events.drain(..excess);
            self.deleted += excess as u64;
        }
        true
    }

    /// Deletes the events older than their type's storage term.
    pub fn expire(&mut self, now_ms: u64) {
        if self.rules.terms_days.is_empty() {
            return;
        }
        let terms = &self.rules.terms_days;
        let before = self.events.len();
        self.events.retain(|e| {
            terms
                .get(&*e.kind)
                .is_none_or(|days| now_ms.saturating_sub(e.time_ms) <= days.saturating_mul(DAY_MS))
        });
        self.deleted += (before - self.events.len()) as u64;
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter()
    }

    pub fn query<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a StoredEvent> {
        self.events.iter().filter(move |e| filter.selects(e))
    }

    /// How many events of each importance the filter selects, least first.
    pub fn counts(&self, filter: &Filter) -> [u64; 4] {
        let mut counts = [0; 4];
        for e in self.query(filter) {
            counts[e.importance as usize] += 1;
        }
        counts
    }

    /// The number of the newest event (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.next_id
    }

    /// The number of the oldest event kept (the next one's when none is).
    pub fn oldest_id(&self) -> u64 {
        self.events.front().map_or(self.next_id + 1, |e| e.id)
    }

    /// An event read back from the host database, numbered as it was.
    pub fn restore(&mut self, event: StoredEvent) {
        self.next_id = self.next_id.max(event.id);
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arriving(
        time_ms: u64,
        device: usize,
        group: GroupId,
        importance: Importance,
        kind: &str,
    ) -> Arriving {
        Arriving {
            time_ms,
            device,
            group,
            importance,
            kind: kind.into(),
            by: None,
            wall_ms: 0,
            description: None,
        }
    }

    #[test]
    fn the_oldest_go_when_the_count_reaches_the_cap_plus_the_headroom() {
        let mut store = EventStore::new(EventRules {
            cap: 10,
            headroom: 5,
            ..EventRules::default()
        });
        for i in 0..14 {
            store.add(arriving(i, 0, 0, Importance::Info, "state_changed"));
        }
        assert_eq!(store.len(), 14, "below cap + headroom nothing is deleted");
        store.add(arriving(14, 0, 0, Importance::Critical, "task_error"));
        assert_eq!(store.len(), 10, "down to the cap");
        assert_eq!(store.iter().next().unwrap().id, 6, "the oldest went first");
        assert_eq!(store.deleted, 5);
        assert_eq!(store.counts(&Filter::default()), [9, 0, 0, 1]);
    }

    #[test]
    fn a_type_s_term_deletes_its_events_only() {
        let mut rules = EventRules::default();
        rules.terms_days.insert("ksn_restored".into(), 1);
        let mut store = EventStore::new(rules);
        store.add(arriving(0, 0, 0, Importance::Info, "ksn_restored"));
        store.add(arriving(0, 1, 0, Importance::Warning, "ksn_unavailable"));
        store.expire(DAY_MS);
        assert_eq!(store.len(), 2, "a day old is within a day's term");
        store.expire(DAY_MS + 1);
        assert_eq!(store.len(), 1);
        assert_eq!(&*store.iter().next().unwrap().kind, "ksn_unavailable");
        let filter = Filter {
            importance: Some(Importance::Warning),
            devices: Some(vec![false, true]),
            ..Filter::default()
        };
        assert_eq!(store.query(&filter).count(), 1);
    }

    #[test]
    fn a_term_of_zero_days_keeps_the_type_out_of_the_store_at_once() {
        let mut rules = EventRules::default();
        rules.terms_days.insert("ksn_restored".into(), 0);
        let mut store = EventStore::new(rules);
        assert!(!store.add(arriving(5, 0, 0, Importance::Info, "ksn_restored")));
        assert!(store.add(arriving(5, 0, 0, Importance::Warning, "ksn_unavailable")));
        assert_eq!(store.len(), 1, "not even until time advances");
        assert_eq!(store.last_id(), 1, "numbered only when stored");
        assert_eq!(store.not_stored, 1);
    }
}
