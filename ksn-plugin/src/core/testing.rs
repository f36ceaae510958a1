//! An in-memory host for the core's unit tests: storage, clock, events, local lists and
//! scripted KSN services, with counts of what each service received.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
};

use plugin_api::{
    DataCategory, FileQuery, KsnReply, LogRetention, Service, TransportFailure, Verdict,
};

use super::host::Host;

#[derive(Clone, Copy)]
pub struct Link {
    pub up: bool,
    pub latency_ms: u32,
}

#[derive(Default)]
pub struct World {
    pub now: AtomicU64,
    pub records: Mutex<Vec<Vec<u8>>>,
    pub fail_storage: AtomicBool,
    /// `None`: the default retention.
    pub retention: Mutex<Option<LogRetention>>,
    pub events: Mutex<Vec<String>>,
    /// The host answers `events_since` with none (an older host, or one that keeps none).
    pub forget_events: AtomicBool,
    pub local_files: Mutex<HashMap<[u8; 16], Verdict>>,
    pub ksn_files: Mutex<HashMap<[u8; 16], Verdict>>,
    pub private_files: Mutex<HashMap<[u8; 16], Verdict>>,
    pub ksn_urls: Mutex<HashMap<String, Verdict>>,
    pub links: Mutex<HashMap<u8, Link>>,
    /// (service, category, items) of every delivered request.
    pub received: Mutex<Vec<(Service, DataCategory, u32)>>,
    pub deleted: Mutex<Vec<FileQuery>>,
    /// A callback that stops where it is until the test lets it go (`FakeHost::hold`).
    pub hold: Mutex<Option<Hold>>,
    /// What the services answer instead of their databases (a verdict or a failure this
    /// plugin does not know, say).
    pub odd_verdict: Mutex<Option<Verdict>>,
    pub odd_failure: Mutex<Option<TransportFailure>>,
}

/// One callback held: it says when it is reached, and waits to be let go.
pub struct Hold {
    point: &'static str,
    reached: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

#[derive(Clone, Default)]
pub struct FakeHost(pub Arc<World>);

impl FakeHost {
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.0
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    pub fn received(&self, service: Service, category: DataCategory) -> u32 {
        self.0
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, c, _)| *s == service && *c == category)
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn received_by(&self, service: Service) -> u32 {
        self.0
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| *s == service)
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn set_link(&self, service: Service, up: bool, latency_ms: u32) {
        self.0
            .links
            .lock()
            .unwrap()
            .insert(service.0, Link { up, latency_ms });
    }

    pub fn advance(&self, ms: u64) {
        self.0.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// The next call of the callback `point` (`backup_and_delete`, `ksn_file`, `ksn_url`,
    /// `ksn_upload`) stops until the test sends on the returned `release`; `reached` says
    /// when it has stopped there. No sleeps: the test decides the interleaving.
    pub fn hold(&self, point: &'static str) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.0.hold.lock().unwrap() = Some(Hold {
            point,
            reached: reached_tx,
            release: release_rx,
        });
        (reached, release)
    }

    fn checkpoint(&self, point: &'static str) {
        let held = {
            let mut hold = self.0.hold.lock().unwrap();
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

    fn carry(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        if let Some(failure) = *self.0.odd_failure.lock().unwrap() {
            return Err(failure);
        }
        let link = self
            .0
            .links
            .lock()
            .unwrap()
            .get(&service.0)
            .copied()
            .unwrap_or(Link {
                up: true,
                latency_ms: 1,
            });
        if !link.up {
            return Err(TransportFailure::UNREACHABLE);
        }
        self.0
            .received
            .lock()
            .unwrap()
            .push((service, category, items));
        if link.latency_ms > timeout_ms {
            Err(TransportFailure::TIMED_OUT)
        } else {
            Ok(link.latency_ms)
        }
    }
}

impl Host for FakeHost {
    fn emit_event(&self, event_json: &str) {
        self.0.events.lock().unwrap().push(event_json.to_string());
    }
    fn now_ms(&self) -> u64 {
        self.0.now.load(Ordering::SeqCst)
    }
    fn storage_append(&self, _key: &str, record: &[u8]) -> Result<(), String> {
        if self.0.fail_storage.load(Ordering::SeqCst) {
            return Err("disk full".into());
        }
        self.0.records.lock().unwrap().push(record.to_vec());
        Ok(())
    }
    fn storage_records(&self, _key: &str) -> Result<Vec<Vec<u8>>, String> {
        Ok(self.0.records.lock().unwrap().clone())
    }
    fn storage_replace(&self, _key: &str, records: &[&[u8]]) -> Result<(), String> {
        if self.0.fail_storage.load(Ordering::SeqCst) {
            return Err("disk full".into());
        }
        *self.0.records.lock().unwrap() = records.iter().map(|r| r.to_vec()).collect();
        Ok(())
    }
    fn log_retention(&self) -> LogRetention {
        self.0
            .retention
            .lock()
            .unwrap()
            .unwrap_or(LogRetention::DEFAULT)
    }
    fn events_since(&self, from_seq: u64) -> Result<Vec<String>, String> {
        if self.0.forget_events.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let seq = |e: &String| serde_json::from_str::<serde_json::Value>(e).ok()?["seq"].as_u64();
        Ok(self
            .0
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| seq(e).is_some_and(|s| s >= from_seq))
            .cloned()
            .collect())
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        self.0
            .local_files
            .lock()
            .unwrap()
            .get(&query.md5)
            .copied()
            .unwrap_or(Verdict::UNKNOWN)
    }
    fn local_url_verdict(&self, _url: &str) -> Verdict {
        Verdict::UNKNOWN
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        self.checkpoint("ksn_file");
        let latency_ms = self.carry(service, DataCategory::FILES, 1, timeout_ms)?;
        let odd = *self.0.odd_verdict.lock().unwrap();
        let lookup = |m: &Mutex<HashMap<[u8; 16], Verdict>>| {
            odd.unwrap_or_else(|| {
                m.lock()
                    .unwrap()
                    .get(&query.md5)
                    .copied()
                    .unwrap_or(Verdict::UNKNOWN)
            })
        };
        Ok(KsnReply {
            ksn: lookup(&self.0.ksn_files),
            private_database: if service == Service::PRIVATE {
                lookup(&self.0.private_files)
            } else {
                Verdict::UNKNOWN
            },
            latency_ms,
        })
    }
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        self.checkpoint("ksn_url");
        let latency_ms = self.carry(service, DataCategory::URLS, 1, timeout_ms)?;
        Ok(KsnReply {
            ksn: self
                .0
                .ksn_urls
                .lock()
                .unwrap()
                .get(url)
                .copied()
                .unwrap_or(Verdict::UNKNOWN),
            private_database: Verdict::UNKNOWN,
            latency_ms,
        })
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        self.checkpoint("ksn_upload");
        self.carry(service, category, items, timeout_ms)
    }
    fn backup_and_delete(&self, query: FileQuery) -> Result<(), String> {
        self.checkpoint("backup_and_delete");
        self.0.deleted.lock().unwrap().push(query);
        Ok(())
    }
}
