//! One simulated managed device's host-side state: storage, environment, events, what the
//! KSN services received from it. It outlives the task instance, so `restart_host` drops
//! the task and creates a new one on the same state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};

use plugin_api::{
    documents::{Importance, LogEntry},
    LogRetention,
};
use serde::Deserialize;

use super::received::Received;
use crate::{
    network::{Database, Network},
    storage::{Environment, MemoryStorage, Storage},
};
use admin_server::events::EventType;

/// Simulated time, shared by every device of a run.
#[derive(Default)]
pub struct Clock(AtomicU64);

use admin_server::MAX_TIME_MS;

impl Clock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Time moves on, and stops at the server's last time ([`MAX_TIME_MS`]).
    pub fn advance(&self, ms: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(ms).min(MAX_TIME_MS))
            });
    }
}

pub struct DeviceState {
    pub id: usize,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    /// The device's own allow/deny lists, consulted by the task before anything else.
    pub local_lists: Arc<Database>,
    pub storage: Arc<dyn Storage>,
    /// When set, storage refuses every write (`set_storage`), as a full disk would.
    pub storage_refuses: AtomicBool,
    /// The last write refused: events that arrive now may be of changes storage has not
    /// recorded, so the server holds them (`Storage::hold_event`) until it takes a write.
    pub storage_failing: AtomicBool,
    /// The server holds events for this device.
    pub holding_events: AtomicBool,
    /// Events as the task emitted them since `clear_events` (kept only if `keep_history`).
    events: Mutex<Vec<Box<str>>>,
    pub keep_history: bool,
    /// Events of the step in progress, for its report (`take_step_events`; kept only if
    /// `report_events`).
    step_events: Mutex<Vec<Box<str>>>,
    pub report_events: bool,
    /// Events on their way to the server's store (`World::collect_events`).
    inbox: Mutex<Vec<Arrived>>,
    /// Something may be in `inbox`, or in `step_events`: a step over 100,000 devices
    /// looks at a flag of each, not a lock of each.
    fresh: std::sync::atomic::AtomicBool,
    fresh_step: std::sync::atomic::AtomicBool,
    pub event_total: AtomicU64,
    pub keep_events: bool,
    /// The server keeps each event's description in words (a console's server; a fleet
    /// only counts them).
    pub describe_events: bool,
    /// A call into the plugin on this device never returned (see `World::each`).
    pub hung: AtomicBool,
    pub received: Received,
    /// The host's backup store: how many copies of deleted untrusted files it holds.
    pub backups: AtomicU64,
    /// The last object handle the device's consumers named (each object its own).
    objects: AtomicU64,
    pub environment: Mutex<Environment>,
    /// How much of the task log the plugin keeps (the host's configuration).
    pub retention: LogRetention,
    /// The host answers `events_since` with the events it holds; `false`: it keeps none
    /// (the contract's default answer).
    pub keeps_task_events: bool,
}

impl DeviceState {
    pub fn new(
        id: usize,
        clock: Arc<Clock>,
        network: Arc<Network>,
        local_lists: Arc<Database>,
    ) -> Self {
        Self::with_storage(
            id,
            clock,
            network,
            local_lists,
            Arc::new(MemoryStorage::default()),
        )
    }

    pub fn with_storage(
        id: usize,
        clock: Arc<Clock>,
        network: Arc<Network>,
        local_lists: Arc<Database>,
        storage: Arc<dyn Storage>,
    ) -> Self {
        Self {
            id,
            clock,
            network,
            local_lists,
            storage,
            storage_refuses: AtomicBool::new(false),
            storage_failing: AtomicBool::new(false),
            holding_events: AtomicBool::new(false),
            events: Mutex::default(),
            keep_history: true,
            step_events: Mutex::default(),
            report_events: false,
            inbox: Mutex::default(),
            fresh: std::sync::atomic::AtomicBool::new(false),
            fresh_step: std::sync::atomic::AtomicBool::new(false),
            event_total: AtomicU64::new(0),
            keep_events: true,
            describe_events: false,
            hung: AtomicBool::new(false),
            received: Received::default(),
            backups: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            environment: Mutex::new(Environment::default()),
            retention: LogRetention::DEFAULT,
            keeps_task_events: true,
        }
    }

    pub fn environment(&self) -> Environment {
        *self.environment.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_environment(&self, change: impl FnOnce(&mut Environment)) {
        change(&mut self.environment.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(super) fn record_event(&self, event_json: &str) {
        self.event_total.fetch_add(1, Ordering::Relaxed);
        if let Some(arrived) = Arrived::read(event_json, self.keep_events, self.describe_events) {
            self.inbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(arrived);
            self.fresh.store(true, Ordering::Release);
        }
        if self.storage_failing.load(Ordering::Relaxed) {
            self.storage.hold_event(event_json);
            self.holding_events.store(true, Ordering::Relaxed);
        }
        if self.keep_history {
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event_json.into());
        }
        if self.report_events {
            self.step_events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event_json.into());
            self.fresh_step.store(true, Ordering::Release);
        }
    }

    /// The events since the last call (`report_events`): a step's own.
    pub fn take_step_events(&self) -> Vec<Box<str>> {
        if !self.fresh_step.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.step_events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A new object of the device's, as consumer `by` names it: a handle and a path.
    pub fn object(&self, by: &str, query: &plugin_api::FileQuery) -> (u64, String) {
        let handle = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        (handle, format!("/{by}/{handle}/{}", query.md5_hex()))
    }

    /// A write to the device's storage succeeded or failed.
    pub(super) fn wrote(&self, ok: bool) {
        self.storage_failing.store(!ok, Ordering::Relaxed);
        if ok && self.holding_events.swap(false, Ordering::Relaxed) {
            self.storage.release_held_events();
        }
    }

    /// The events that arrived since the last call, for the server's store.
    pub fn take_arrived(&self) -> Vec<Arrived> {
        // (Cleared before taking: an event recorded meanwhile sets it again.)
        if !self.fresh.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every event since the last `reset_counters`.
    pub fn events(&self) -> Vec<Box<str>> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear_events(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The one `EventType` of this name (per thread: no lock on the devices' path).
pub fn event_type(name: &str) -> EventType {
    thread_local! {
        static TYPES: RefCell<HashMap<Box<str>, EventType>> = RefCell::default();
    }
    TYPES.with(|types| {
        if let Some(known) = types.borrow().get(name) {
            return known.clone();
        }
        let new: EventType = name.into();
        types.borrow_mut().insert(name.into(), new.clone());
        new
    })
}

/// An event as the server files it: what it needs of it, read once where it arrives.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub time_ms: u64,
    pub importance: Importance,
    pub kind: EventType,
    /// A consent event of the task's main statement (KSN, or Private KSN): whether it is
    /// accepted now.
    pub accepted: Option<bool>,
    /// `Some(false)`: a KSN service became unavailable; `Some(true)`: it is back.
    pub ksn_available: Option<bool>,
    /// A consent event, as the fleet's consent view keeps it (boxed: most events are not
    /// one, and every device's arrivals wait for the step's end at once).
    pub consent: Option<Box<admin_server::Consent>>,
    /// Its texts, when the world keeps any (boxed, for the same reason).
    pub texts: Option<Box<Texts>>,
}

#[derive(Debug, Clone, Default)]
pub struct Texts {
    /// What happened, in words, when the world describes events.
    pub description: Option<std::sync::Arc<str>>,
    /// The event as the plugin sent it, when the run keeps texts.
    pub body: Option<Box<str>>,
}

/// The texts an event keeps: its body when the run keeps them.
fn body(json: &str, keep_body: bool) -> Option<Box<Texts>> {
    keep_body.then(|| {
        Box::new(Texts {
            description: None,
            body: Some(json.into()),
        })
    })
}

impl Arrived {
    /// `None` for what is not an event document (the plugin's log says why).
    pub fn read(json: &str, keep_body: bool, describe: bool) -> Option<Self> {
        let mut arrived = Self::read_fields(json, keep_body)?;
        if describe {
            arrived.texts.get_or_insert_with(Box::default).description =
                Some(crate::scenario::summary::summarise(json).into());
        }
        Some(arrived)
    }

    fn read_fields(json: &str, keep_body: bool) -> Option<Self> {
        let Some((time_ms, importance, kind, rest)) = quick_head(json) else {
            return Self::read_whole(json, keep_body);
        };
        // What an event says of the device beyond its importance, from its fields as
        // this contract's plugins write them, in order: a consent event of the main
        // statement, whole (no category), says whether it is accepted now.
        let accepted = match kind {
            "consent_changed" => match quick_consent(rest) {
                Some(accepted) => accepted,
                None => return Self::read_whole(json, keep_body),
            },
            _ => None,
        };
        let consent = (kind == "consent_changed")
            .then(|| consent_of(json))
            .flatten();
        Some(Self {
            time_ms,
            importance,
            kind: event_type(kind),
            accepted,
            ksn_available: match kind {
                "ksn_unavailable" => Some(false),
                "ksn_restored" => Some(true),
                _ => None,
            },
            consent: consent.map(Box::new),
            texts: body(json, keep_body),
        })
    }

    fn read_whole(json: &str, keep_body: bool) -> Option<Self> {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(default)]
            time_ms: u64,
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(default, deserialize_with = "Importance::lenient_option")]
            importance: Option<Importance>,
            #[serde(default, borrow)]
            statement: Option<std::borrow::Cow<'a, str>>,
            #[serde(default)]
            accepted: Option<bool>,
            #[serde(default)]
            category: Option<serde::de::IgnoredAny>,
        }
        let head: Head<'_> = serde_json::from_str(json).ok()?;
        let importance = match head.importance {
            Some(importance) => importance,
            // An older plugin's event: the contract's default for it.
            None => serde_json::from_str::<LogEntry>(json)
                .map(|e| e.importance())
                .unwrap_or(Importance::Info),
        };
        let main_statement = matches!(head.statement.as_deref(), Some("ksn" | "private_ksn"));
        Some(Self {
            time_ms: head.time_ms,
            importance,
            accepted: (head.kind == "consent_changed" && main_statement && head.category.is_none())
                .then_some(head.accepted)
                .flatten(),
            ksn_available: match &*head.kind {
                "ksn_unavailable" => Some(false),
                "ksn_restored" => Some(true),
                _ => None,
            },
            consent: (head.kind == "consent_changed")
                .then(|| consent_of(json).map(Box::new))
                .flatten(),
            kind: event_type(&head.kind),
            texts: body(json, keep_body),
        })
    }
}

/// A consent event's fields, as the server keeps them (the few events that are one are
/// read whole).
fn consent_of(json: &str) -> Option<admin_server::Consent> {
    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        time_ms: u64,
        statement: String,
        #[serde(default)]
        version: u32,
        accepted: bool,
        source: String,
        #[serde(default)]
        category: Option<String>,
    }
    let f: Fields = serde_json::from_str(json).ok()?;
    Some(admin_server::Consent {
        statement: f.statement,
        category: f.category,
        accepted: f.accepted,
        version: f.version,
        since_ms: f.time_ms,
        source: f.source,
        user: None,
        policy: None,
    })
}

/// The head of an event as a plugin of this contract writes it, from its first bytes
/// (`{"seq":N,"time_ms":T,"importance":"i","type":"t"`): time, importance, type and what
/// follows, or `None` for any other shape (read whole).
fn quick_head(json: &str) -> Option<(u64, Importance, &str, &str)> {
    fn number<'a>(text: &'a str, key: &str) -> Option<(u64, &'a str)> {
        let rest = text.strip_prefix(key)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        Some((rest[..digits].parse().ok()?, &rest[digits..]))
    }
    fn name<'a>(text: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
        let rest = text.strip_prefix(key)?;
        // Names are short: a plain loop beats a searcher's set-up.
        let end = rest.bytes().position(|b| b == b'"' || b == b'\\')?;
        (rest.as_bytes()[end] == b'"').then(|| (&rest[..end], &rest[end + 1..]))
    }
    let (_, rest) = number(json, "{\"seq\":")?;
    let (time_ms, rest) = number(rest, ",\"time_ms\":")?;
    let (importance, rest) = name(rest, ",\"importance\":\"")?;
    let (kind, rest) = name(rest, ",\"type\":\"")?;
    Some((time_ms, Importance::from_name(importance)?, kind, rest))
}

/// The fields of a `consent_changed` after its type, as serde writes them
/// (`,"statement":"s","version":N,"accepted":b,"source":"x"`, then `}` or the category):
/// `Some(Some(accepted))` for the main statement whole, `Some(None)` for another
/// statement or one category, `None` for any other shape (read whole).
fn quick_consent(rest: &str) -> Option<Option<bool>> {
    let rest = rest.strip_prefix(",\"statement\":\"")?;
    let end = rest.bytes().position(|b| b == b'"')?;
    let main = matches!(&rest[..end], "ksn" | "private_ksn");
    let rest = rest[end + 1..].strip_prefix(",\"version\":")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix(",\"accepted\":")?;
    let (accepted, rest) = if let Some(rest) = rest.strip_prefix("true") {
        (true, rest)
    } else {
        (false, rest.strip_prefix("false")?)
    };
    let rest = rest.strip_prefix(",\"source\":\"")?;
    let rest = &rest[rest.bytes().position(|b| b == b'"')? + 1..];
    if rest.starts_with(",\"category\":") {
        Some(None)
    } else if rest == "}" {
        Some(main.then_some(accepted))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_the_same_from_its_head_as_whole() {
        for json in [
            r#"{"seq":3,"time_ms":70,"importance":"critical","type":"task_error","kind":"license_violation","message":"m"}"#,
            r#"{"seq":4,"time_ms":71,"importance":"info","type":"consent_changed","statement":"ksn","version":1,"accepted":false,"source":"local"}"#,
            r#"{"seq":5,"time_ms":72,"importance":"info","type":"consent_changed","statement":"ksn","version":1,"accepted":false,"source":"local","category":"statistics"}"#,
            r#"{"seq":6,"time_ms":73,"importance":"warning","type":"ksn_unavailable","service":"proxy","reason":"refused"}"#,
            r#"{"seq":7,"time_ms":74,"importance":"info","type":"consent_changed","statement":"private_ksn","version":2,"accepted":true,"source":"policy","needs":"ksn"}"#,
            r#"{"seq":8,"time_ms":75,"importance":"info","type":"consent_changed","statement":"kmp","version":1,"accepted":true,"source":"local"}"#,
        ] {
            let quick = Arrived::read(json, true, false).unwrap();
            let whole = Arrived::read_whole(json, true).unwrap();
            assert_eq!(
                (
                    quick.time_ms,
                    quick.importance,
                    &quick.kind,
                    quick.accepted,
                    quick.ksn_available
                ),
                (
                    whole.time_ms,
                    whole.importance,
                    &whole.kind,
                    whole.accepted,
                    whole.ksn_available
                ),
                "{json}"
            );
        }
        let older = Arrived::read(
            r#"{"seq":1,"time_ms":2,"type":"task_error","kind":"storage_error","message":"m"}"#,
            false,
            false,
        )
        .unwrap();
        assert_eq!(
            older.importance,
            Importance::FunctionalFailure,
            "the contract's default"
        );
        let consent = Arrived::read(r#"{"seq":4,"time_ms":71,"importance":"info","type":"consent_changed","statement":"private_ksn","version":1,"accepted":true,"source":"policy"}"#, false, false).unwrap();
        assert_eq!(consent.accepted, Some(true));
        assert!(Arrived::read("[]", false, false).is_none());
    }

    #[test]
    fn host_time_stops_at_the_servers_last_time() {
        let clock = Clock::default();
        clock.advance(5);
        clock.advance(u64::MAX);
        assert_eq!(clock.now_ms(), MAX_TIME_MS);
        clock.advance(1);
        assert_eq!(clock.now_ms(), MAX_TIME_MS);
        assert!(
            i64::try_from(clock.now_ms()).is_ok(),
            "a database keeps it as it is"
        );
    }
}
