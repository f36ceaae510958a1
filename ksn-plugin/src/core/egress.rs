//! Everything that leaves the device: the egress gate, the outbound ledger, and the
//! statistics and Managed Protection batches.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use plugin_api::documents::Counters;
use plugin_api::{DataCategory, Service, TransportFailure};

use super::{host::Host, journal::Event, snapshot::Snapshot, task::Task};

/// Statistics and KMP data are sent at most once per this many host milliseconds.
pub const BATCH_INTERVAL_MS: u64 = 60_000;

pub use plugin_api::documents::{LedgerItem, LedgerOutcome};

#[derive(Default)]
pub struct Outbound {
    ledger: Mutex<Vec<LedgerItem>>,
    pending_statistics: AtomicU64,
    pending_kmp: AtomicU64,
}

impl Outbound {
    /// Called with the egress gate held exclusively.
    pub fn discard(&self, statistics: bool, kmp: bool) {
        if statistics {
            self.pending_statistics.store(0, Ordering::Relaxed);
        }
        if kmp {
            self.pending_kmp.store(0, Ordering::Relaxed);
        }
    }

    /// Queues one item of `category`, if the consent in force allows the category now.
    pub fn count(&self, snapshot: &Snapshot, category: DataCategory) {
        if !snapshot.allows_category(category) {
            return;
        }
        if let Some(pending) = self.pending(category) {
            pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn pending(&self, category: DataCategory) -> Option<&AtomicU64> {
        match category {
            DataCategory::STATISTICS => Some(&self.pending_statistics),
            DataCategory::KMP => Some(&self.pending_kmp),
            _ => None,
        }
    }

    pub fn pending_items(&self, category: DataCategory) -> u64 {
        self.pending(category)
            .map_or(0, |p| p.load(Ordering::Relaxed))
    }

    fn enter(&self, mut item: LedgerItem) {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        item.seq = ledger.len() as u64;
        ledger.push(item);
    }

    pub fn ledger(&self) -> Vec<LedgerItem> {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How one send through the route ended.
pub enum Sent<T> {
    Answered(Service, T),
    /// Nothing usable came back: every service was unreachable (the `undelivered` case),
    /// one timed out, or the gate refused.
    Failed,
}

impl<H: Host> Task<H> {
    /// Sends one request along the current route (`route`), under the egress gate: to the
    /// first service, and to the fallback only if the first refused the connection. A
    /// timeout spends the whole budget. Returns the data-plane events to record once the
    /// gate is released.
    pub(super) fn send<T>(
        &self,
        category: DataCategory,
        items: u32,
        bytes: u64,
        events: &mut Vec<Event>,
        mut attempt: impl FnMut(Service, u32) -> Result<T, TransportFailure>,
        undelivered: impl FnOnce(),
    ) -> Sent<T> {
        let now = self.now();
        let _gate = self.egress.read().unwrap_or_else(|e| e.into_inner());
        // The snapshot current under the gate is the consent in force for this send.
        let snapshot = self.snapshot.load();
        let budget = snapshot.timeout_ms;
        let route = self.route(&snapshot, now);
        let mut next = Some(route.first);
        while let Some(service) = next.filter(|s| *s != Service::NONE) {
            if !snapshot.allows(category, service) {
                log::warn!("egress refused: {category} to {service} is not allowed by the consent in force");
                events.push(Event::EgressRefused {
                    category,
                    service,
                    reason: "no consent in force allows it".into(),
                });
                return Sent::Failed;
            }
            let result = attempt(service, budget);
            let delivered = !matches!(result, Err(TransportFailure::UNREACHABLE));
            if delivered {
                self.enter_ledger(&snapshot, category, service, items, bytes, &result);
            }
            match result {
                Ok(value) => {
                    self.service_ok(service, events);
                    return Sent::Answered(service, value);
                }
                Err(failure) => {
                    self.service_lost(service, failure, now, events);
                    if failure == TransportFailure::TIMED_OUT {
                        return Sent::Failed;
                    }
                }
            }
            next = route.fallback.filter(|f| *f != service);
        }
        // Nothing reached any service, and the consent in force still allows it: still
        // under the gate, so a withdrawal cannot slip in between.
        if snapshot.allows_category(category) {
            undelivered();
        }
        Sent::Failed
    }

    fn enter_ledger<T>(
        &self,
        snapshot: &Snapshot,
        category: DataCategory,
        service: Service,
        items: u32,
        bytes: u64,
        result: &Result<T, TransportFailure>,
    ) {
        self.outbound.enter(LedgerItem {
            seq: 0,
            time_ms: self.host.now_ms(),
            category,
            service,
            items,
            bytes,
            consent_record: snapshot.consent_record(category).unwrap_or(u64::MAX),
            outcome: if result.is_ok() {
                LedgerOutcome::Answered
            } else {
                LedgerOutcome::TimedOut
            },
        });
    }

    fn service_ok(&self, service: Service, events: &mut Vec<Event>) {
        if service == Service::PROXY {
            self.proxy.up();
        }
        if self.lost[service.0 as usize].swap(false, Ordering::Relaxed) {
            events.push(Event::KsnRestored { service });
        }
    }

    fn service_lost(
        &self,
        service: Service,
        reason: TransportFailure,
        now: u64,
        events: &mut Vec<Event>,
    ) {
        if service == Service::PROXY {
            self.proxy.down(now);
        }
        if !self.lost[service.0 as usize].swap(true, Ordering::Relaxed) {
            events.push(Event::KsnUnavailable { service, reason });
        }
    }

    /// Periodic work: sends the queued statistics and KMP data, at most once per
    /// `BATCH_INTERVAL_MS`, each only while its consent applies. Data that could not be
    /// delivered stays queued.
    pub fn tick(&self) {
        let now = self.now();
        let queued = [DataCategory::STATISTICS, DataCategory::KMP]
            .iter()
            .any(|c| self.outbound.pending_items(*c) > 0);
        if !queued || !self.batch_due(now) {
            return;
        }
        let mut events = Vec::new();
        for category in [DataCategory::STATISTICS, DataCategory::KMP] {
            let Some(pending) = self.outbound.pending(category) else {
                continue;
            };
            let items = pending.swap(0, Ordering::Relaxed).min(u64::from(u32::MAX)) as u32;
            if items == 0 {
                continue;
            }
            // A batch that reached no service stays queued; one that was delivered, even
            // without an answer in time, is not sent again.
            self.send(
                category,
                items,
                u64::from(items) * 32,
                &mut events,
                |service, timeout| {
                    self.host
                        .ksn_upload(service, category, items, timeout)
                        .map(|_| ())
                },
                || {
                    pending.fetch_add(u64::from(items), Ordering::Relaxed);
                },
            );
        }
        self.record(events);
    }

    pub fn ledger(&self) -> Vec<LedgerItem> {
        self.outbound.ledger()
    }

    /// Counters for operators: cached verdicts, queued items, items sent.
    pub fn counters(&self) -> Counters {
        Counters {
            cache_entries: self.cached_entries() as u64,
            queued_statistics: self.outbound.pending_items(DataCategory::STATISTICS),
            queued_kmp: self.outbound.pending_items(DataCategory::KMP),
            ledger_items: self
                .outbound
                .ledger
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len() as u64,
        }
    }

    pub fn counters_json(&self) -> String {
        serde_json::to_string(&self.counters()).expect("counters serialise")
    }

    pub fn ledger_json(&self) -> String {
        serde_json::to_string(&self.outbound.ledger()).expect("ledger serialises")
    }
}
