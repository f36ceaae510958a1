//! An in-memory host for plugin tests (feature `testing`): the one the contract's own tests
//! use, for plugin authors too. It is a complete [`HostServices`]: storage by key that
//! refuses writes on command, a clock the test sets, the events it received (and answers
//! `events_since` with, as a management server would), the device's local lists, KSN
//! services whose links the test sets, a transport that records every delivery, a backup
//! store that records which object it deleted (and fails on command), and callbacks a test
//! can hold where they are until it lets them go, to make an interleaving without sleeps.
//!
//! ```
//! use plugin_api::{testing::TestHost, DataCategory, Service};
//!
//! let host = TestHost::default();
//! host.set_time(1_000);
//! host.fail_storage(true);
//! let services = host.services(); // a HostBox for the plugin's factory
//! # drop(services);
//! assert_eq!(host.received(Service::GLOBAL, DataCategory::FILES), 0);
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    host::{HostBox, HostServices, HostServices_TO, LogRetention},
    kinds::{DataCategory, Service, TransportFailure, Verdict},
    lookup::{FileQuery, KsnReply, ObjectRef},
};

/// A KSN service's link: up or down, and its latency.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub up: bool,
    pub latency_ms: u32,
}

/// What a delivery watcher is told: each request or batch as it arrives at a service.
pub type Watcher = Box<dyn Fn(Service, DataCategory, u32) + Send + Sync>;

/// Everything the host holds; its fields are the test's to read and set.
#[derive(Default)]
pub struct World {
    pub now: AtomicU64,
    /// Records by key.
    pub storage: Mutex<BTreeMap<String, Vec<Vec<u8>>>>,
    /// Storage refuses every write (append and replace), as a full disk would.
    pub refuse_writes: AtomicBool,
    /// `None`: the contract's default retention.
    pub retention: Mutex<Option<LogRetention>>,
    /// Every event received, in order.
    pub events: Mutex<Vec<String>>,
    /// `events_since` answers that the host keeps no events (`Err`, the contract's
    /// default), as a host that keeps none does.
    pub forget_events: AtomicBool,
    pub local_files: Mutex<HashMap<[u8; 16], Verdict>>,
    pub local_urls: Mutex<HashMap<String, Verdict>>,
    /// What every service's KSN data says of a file, and of a URL.
    pub ksn_files: Mutex<HashMap<[u8; 16], Verdict>>,
    pub ksn_urls: Mutex<HashMap<String, Verdict>>,
    /// The Private KSN service's own reputation database.
    pub private_files: Mutex<HashMap<[u8; 16], Verdict>>,
    /// By service number; a service not set is up with 1 ms latency.
    pub links: Mutex<HashMap<u8, Link>>,
    /// (service, category, items) of every delivery, in order.
    pub received: Mutex<Vec<(Service, DataCategory, u32)>>,
    /// Every object deleted: its handle (when the lookup named one) and its query.
    pub deleted: Mutex<Vec<(Option<u64>, FileQuery)>>,
    /// `backup_and_delete` fails with this reason.
    pub delete_fails: Mutex<Option<String>>,
    /// A callback that stops where it is until the test lets it go (`hold`).
    pub hold: Mutex<Option<Hold>>,
    /// What the services answer instead of their data (a verdict or a failure the plugin
    /// does not know, say).
    pub odd_verdict: Mutex<Option<Verdict>>,
    pub odd_failure: Mutex<Option<TransportFailure>>,
    /// Called with every delivery before it is counted (a test's own check of what may
    /// arrive at that moment).
    pub watcher: Mutex<Option<Watcher>>,
}

/// One callback held: it says when it is reached, and waits to be let go.
pub struct Hold {
    point: &'static str,
    reached: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

/// The host, cheap to clone: every clone is the same host.
#[derive(Clone, Default)]
pub struct TestHost(pub Arc<World>);

impl TestHost {
    /// The host-services object a plugin's factory takes (one per task instance; every one
    /// over this same host).
    pub fn services(&self) -> HostBox {
        HostServices_TO::from_value(self.clone(), TD_Opaque)
    }

    pub fn set_time(&self, ms: u64) {
        self.0.now.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: u64) {
        self.0.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Storage starts (`true`) or stops refusing writes.
    pub fn fail_storage(&self, fails: bool) {
        self.0.refuse_writes.store(fails, Ordering::SeqCst);
    }

    /// The records under `key`, oldest first.
    pub fn records(&self, key: &str) -> Vec<Vec<u8>> {
        let storage = self.0.storage.lock().unwrap_or_else(|e| e.into_inner());
        storage.get(key).cloned().unwrap_or_default()
    }

    /// Replaces the records under `key` (a test damaging or cutting a store).
    pub fn set_records(&self, key: &str, records: Vec<Vec<u8>>) {
        let mut storage = self.0.storage.lock().unwrap_or_else(|e| e.into_inner());
        storage.insert(key.to_string(), records);
    }

    /// Every event received, parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let events = self.0.events.lock().unwrap_or_else(|e| e.into_inner());
        events
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect()
    }

    /// The events of one `type`.
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// How many items of `category` `service` received.
    pub fn received(&self, service: Service, category: DataCategory) -> u32 {
        let received = self.0.received.lock().unwrap_or_else(|e| e.into_inner());
        received
            .iter()
            .filter(|(s, c, _)| *s == service && *c == category)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// How many items `service` received, of every category.
    pub fn received_by(&self, service: Service) -> u32 {
        let received = self.0.received.lock().unwrap_or_else(|e| e.into_inner());
        received
            .iter()
            .filter(|(s, _, _)| *s == service)
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn set_link(&self, service: Service, up: bool, latency_ms: u32) {
        let mut links = self.0.links.lock().unwrap_or_else(|e| e.into_inner());
        links.insert(service.0, Link { up, latency_ms });
    }

    /// The next call of the callback `point` (`backup_and_delete`, `ksn_file`, `ksn_url`,
    /// `ksn_upload`, `emit_event`) stops until the test sends on the returned `release`; `reached` says
    /// when it has stopped there. No sleeps: the test decides the interleaving.
    pub fn hold(&self, point: &'static str) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.0.hold.lock().unwrap_or_else(|e| e.into_inner()) = Some(Hold {
            point,
            reached: reached_tx,
            release: release_rx,
        });
        (reached, release)
    }

    /// Stops here if the test holds `point`.
    fn checkpoint(&self, point: &'static str) {
        let held = {
            let mut hold = self.0.hold.lock().unwrap_or_else(|e| e.into_inner());
            match hold.as_ref() {
                Some(h) if h.point == point => hold.take(),
                _ => None,
            }
        };
        if let Some(hold) = held {
            let _ = hold.reached.send(());
            let _ = hold.release.recv();
        }
    }

    fn writable(&self) -> Result<(), RString> {
        if self.0.refuse_writes.load(Ordering::SeqCst) {
            Err("disk full".into())
        } else {
            Ok(())
        }
    }

    /// A delivery to `service` over its link: counted if it got there.
    fn carry(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        if let Some(failure) = *self.0.odd_failure.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(failure);
        }
        let link = self
            .0
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&service.0)
            .copied()
            .unwrap_or(Link {
                up: true,
                latency_ms: 1,
            });
        if !link.up {
            return Err(TransportFailure::UNREACHABLE);
        }
        if let Some(watch) = &*self.0.watcher.lock().unwrap_or_else(|e| e.into_inner()) {
            watch(service, category, items);
        }
        self.0
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((service, category, items));
        if link.latency_ms > timeout_ms {
            Err(TransportFailure::TIMED_OUT)
        } else {
            Ok(link.latency_ms)
        }
    }

    fn verdict_of<K>(&self, map: &Mutex<HashMap<K::Owned, Verdict>>, key: &K) -> Verdict
    where
        K: std::hash::Hash + Eq + ToOwned + ?Sized,
        K::Owned: std::hash::Hash + Eq + std::borrow::Borrow<K>,
    {
        if let Some(odd) = *self.0.odd_verdict.lock().unwrap_or_else(|e| e.into_inner()) {
            return odd;
        }
        map.lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(Verdict::UNKNOWN)
    }
}

fn result<T>(r: Result<T, RString>) -> RResult<T, RString> {
    match r {
        Ok(value) => ROk(value),
        Err(e) => RErr(e),
    }
}

impl HostServices for TestHost {
    fn emit_event(&self, event_json: RStr<'_>) {
        self.checkpoint("emit_event");
        let mut events = self.0.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(event_json.to_string());
    }

    fn now_ms(&self) -> u64 {
        self.0.now.load(Ordering::SeqCst)
    }

    fn storage_append(&self, key: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString> {
        result(self.writable().map(|()| {
            let mut storage = self.0.storage.lock().unwrap_or_else(|e| e.into_inner());
            match storage.get_mut(key.as_str()) {
                Some(records) => records.push(record.to_vec()),
                None => {
                    storage.insert(key.to_string(), vec![record.to_vec()]);
                }
            }
        }))
    }

    fn storage_records(&self, key: RStr<'_>) -> RResult<RVec<RVec<u8>>, RString> {
        ROk(self
            .records(key.as_str())
            .into_iter()
            .map(RVec::from)
            .collect())
    }

    fn storage_replace(
        &self,
        key: RStr<'_>,
        records: RSlice<'_, RSlice<'_, u8>>,
    ) -> RResult<(), RString> {
        result(
            self.writable().map(|()| {
                self.set_records(key.as_str(), records.iter().map(|r| r.to_vec()).collect())
            }),
        )
    }

    fn log_retention(&self) -> LogRetention {
        self.0
            .retention
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(LogRetention::DEFAULT)
    }

    fn events_since(&self, from_seq: u64) -> RResult<RVec<RString>, RString> {
        if self.0.forget_events.load(Ordering::SeqCst) {
            return RErr(crate::host::KEEPS_NO_EVENTS.into());
        }
        #[derive(serde::Deserialize)]
        struct Numbered {
            seq: u64,
        }
        let events = self.0.events.lock().unwrap_or_else(|e| e.into_inner());
        ROk(events
            .iter()
            .filter(|e| serde_json::from_str::<Numbered>(e).is_ok_and(|n| n.seq >= from_seq))
            .map(|e| RString::from(e.as_str()))
            .collect())
    }

    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        let local = self.0.local_files.lock().unwrap_or_else(|e| e.into_inner());
        local.get(&query.md5).copied().unwrap_or(Verdict::UNKNOWN)
    }

    fn local_url_verdict(&self, url: RStr<'_>) -> Verdict {
        let local = self.0.local_urls.lock().unwrap_or_else(|e| e.into_inner());
        local.get(url.as_str()).copied().unwrap_or(Verdict::UNKNOWN)
    }

    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.checkpoint("ksn_file");
        self.carry(service, DataCategory::FILES, 1, timeout_ms)
            .map(|latency_ms| KsnReply {
                ksn: self.verdict_of(&self.0.ksn_files, &query.md5),
                private_database: if service == Service::PRIVATE {
                    self.verdict_of(&self.0.private_files, &query.md5)
                } else {
                    Verdict::UNKNOWN
                },
                latency_ms,
            })
            .into()
    }

    fn ksn_url(
        &self,
        service: Service,
        url: RStr<'_>,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.checkpoint("ksn_url");
        self.carry(service, DataCategory::URLS, 1, timeout_ms)
            .map(|latency_ms| KsnReply {
                ksn: self.verdict_of(&self.0.ksn_urls, url.as_str()),
                private_database: Verdict::UNKNOWN,
                latency_ms,
            })
            .into()
    }

    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> RResult<u32, TransportFailure> {
        self.checkpoint("ksn_upload");
        self.carry(service, category, items, timeout_ms).into()
    }

    fn backup_and_delete(&self, query: FileQuery) -> RResult<(), RString> {
        self.delete(None, query)
    }

    fn backup_and_delete_object(
        &self,
        object: ObjectRef<'_>,
        query: FileQuery,
    ) -> RResult<(), RString> {
        self.delete(Some(object.handle), query)
    }
}

impl TestHost {
    fn delete(&self, object: Option<u64>, query: FileQuery) -> RResult<(), RString> {
        self.checkpoint("backup_and_delete");
        if let Some(reason) = &*self
            .0
            .delete_fails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            return RErr(reason.as_str().into());
        }
        self.0
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((object, query));
        ROk(())
    }
}
