//! Everything that leaves the device: the egress gate, the outbound ledger, and the
//! statistics and Managed Protection batches.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use plugin_api::{DataCategory, Service, TransportFailure};
use serde::Serialize;

use super::{host::Host, journal::Event, snapshot::Snapshot, task::Task};

/// Statistics and KMP data are sent at most once per this many host milliseconds.
pub const BATCH_INTERVAL_MS: u64 = 60_000;

/// One item (or batch) that left the device.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LedgerItem {
    pub seq: u64,
    pub time_ms: u64,
    pub category: DataCategory,
    pub service: Service,
    /// Items carried: 1 for a lookup, the batch size for statistics and KMP data.
    pub items: u32,
    pub bytes: u64,
    /// Task-log number of the acceptance that allowed it.
    pub consent_record: u64,
    /// `answered`, or `timed_out` (delivered, no answer in time).
    pub outcome: &'static str,
}

#[derive(Default)]
pub struct Outbound {
    ledger: Mutex<Vec<LedgerItem>>,
    pending_statistics: AtomicU64,
    pending_kmp: AtomicU64,
    last_batch_ms: AtomicU64,
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
    /// Sends one request along the current route, under the egress gate. Each service is
    /// tried in order while it is unreachable; a timeout spends the whole budget. Returns
    /// the data-plane events to record once the gate is released.
    pub(super) fn send<T>(
        &self,
        category: DataCategory,
        items: u32,
        bytes: u64,
        events: &mut Vec<Event>,
        mut attempt: impl FnMut(Service, u32) -> Result<T, TransportFailure>,
        undelivered: impl FnOnce(),
    ) -> Sent<T> {
        let _gate = self.egress.read().unwrap_or_else(|e| e.into_inner());
        // The snapshot current under the gate is the consent in force for this send.
        let snapshot = self.snapshot.load();
        // An unreachable service fails at once; a slow one spends the whole budget.
        let budget = snapshot.timeout_ms;
        for &service in snapshot.route() {
            if !snapshot.allows(category, service) {
                log::warn!("egress refused: {category} to {service} is not allowed by the consent in force");
                events.push(Event::EgressRefused {
                    category,
                    service,
                    reason: "no consent in force allows it",
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
                    self.service_lost(service, failure, events);
                    if failure == TransportFailure::TIMED_OUT {
                        return Sent::Failed;
                    }
                }
            }
        }
        // Nothing reached any service, and the consent in force still allows it: still
        // under the gate, so a withdrawal cannot slip in between.
        undelivered();
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
                "answered"
            } else {
                "timed_out"
            },
        });
    }

    fn service_ok(&self, service: Service, events: &mut Vec<Event>) {
        if self.lost[service.0 as usize].swap(false, Ordering::Relaxed) {
            events.push(Event::KsnRestored { service });
        }
    }

    fn service_lost(&self, service: Service, reason: TransportFailure, events: &mut Vec<Event>) {
        if !self.lost[service.0 as usize].swap(true, Ordering::Relaxed) {
            events.push(Event::KsnUnavailable { service, reason });
        }
    }

    /// Periodic work: sends the queued statistics and KMP data, at most once per
    /// `BATCH_INTERVAL_MS`, each only while its consent applies. Data that could not be
    /// delivered stays queued.
    pub fn tick(&self) {
        let now = self.now();
        let last = self.outbound.last_batch_ms.load(Ordering::Relaxed);
        if !self.snapshot.load().running() || now < last.saturating_add(BATCH_INTERVAL_MS) {
            return;
        }
        self.outbound.last_batch_ms.store(now, Ordering::Relaxed);
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
    pub fn counters_json(&self) -> String {
        serde_json::json!({
            "cache_entries": self.cached_entries(),
            "queued_statistics": self.outbound.pending_items(DataCategory::STATISTICS),
            "queued_kmp": self.outbound.pending_items(DataCategory::KMP),
            "ledger_items": self.outbound.ledger.lock().unwrap_or_else(|e| e.into_inner()).len(),
        })
        .to_string()
    }

    pub fn ledger_json(&self) -> String {
        serde_json::to_string(&self.outbound.ledger()).expect("ledger serialises")
    }
}
