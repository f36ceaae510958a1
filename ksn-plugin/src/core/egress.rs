//! Everything that leaves the device passes here: one gate per category of data, the
//! queues of statistics and Managed Protection items, the outbound ledger, and what is
//! known of each service's health.
//!
//! A send holds its category's gate shared and re-checks the snapshot current under it;
//! publishing a snapshot that narrows a category holds that category's gate exclusively,
//! so once a withdrawal returns no send it affects is in flight and none will start, while
//! sends of other categories go on.
//!
//! Queued items carry the generation of the consent they were counted under (a category's
//! generation moves on whenever its permission changes: a withdrawal, a mode change, a new
//! acceptance, a stop); an item of another generation is dropped when it is queued and
//! when the queue is sent, so nothing counted under one consent goes out under another.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
};

use plugin_api::{
    documents::{LedgerItem, LedgerOutcome, LedgerPage},
    DataCategory, Service, TransportFailure,
};

use super::{
    journal::Event,
    route::{ProxyHealth, Route},
    snapshot::{Current, Snapshot, QUEUED},
};

/// Statistics and KMP data are sent at most once per this many host milliseconds.
pub const BATCH_INTERVAL_MS: u64 = 60_000;

fn gate_of(category: DataCategory) -> usize {
    usize::from(category.0.clamp(1, 4) - 1)
}

/// The index of a queued category, if it is one.
pub fn queue_of(category: DataCategory) -> Option<usize> {
    QUEUED.iter().position(|c| *c == category)
}

/// How one send through the route ended.
pub enum Sent<T> {
    Answered(Service, T),
    /// Nothing usable came back: every service was unreachable, or one timed out.
    Failed,
    /// Nothing was sent: the consent in force does not allow it (a withdrawal won the
    /// race), or there was nothing to send.
    Refused,
}

pub struct Egress {
    gates: [RwLock<()>; 4],
    /// Per queued category: the generation (high 32 bits) and the count (low 32 bits).
    queues: [AtomicU64; 2],
    ledger: Mutex<Ledger>,
    /// Services found unreachable (by `Service` number), for the loss/restore events.
    lost: [AtomicBool; 4],
    /// When the proxy was found down: the route avoids it for a while (`route`).
    pub proxy: ProxyHealth,
    unknown_failure_logged: AtomicBool,
}

fn pack(generation: u32, count: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(count)
}

fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

impl Egress {
    /// The ledger keeps the newest `ledger_capacity` items, at most `LEDGER_MOST` (also
    /// when the host's retention sets no limit, 0), in memory; the newest
    /// `LEDGER_STORED_MOST` of them are kept in the task's storage too (`LEDGER_KEY`).
    pub fn new(ledger_capacity: usize) -> Self {
        let capacity = match ledger_capacity {
            0 => LEDGER_MOST,
            n => n.min(LEDGER_MOST),
        };
        Self {
            gates: Default::default(),
            queues: Default::default(),
            ledger: Mutex::new(Ledger {
                items: VecDeque::new(),
                next_seq: 0,
                capacity,
                unsaved: 0,
                stored: 0,
            }),
            lost: Default::default(),
            proxy: ProxyHealth::default(),
            unknown_failure_logged: AtomicBool::new(false),
        }
    }

    /// Makes `next` current: under the gates of the categories whose permission it
    /// narrows, the queues are moved to `next`'s generations, `install` makes it current
    /// (and the cache whatever the change requires), and then the gates are released.
    pub fn publish(
        &self,
        current: &Current,
        next: Snapshot,
        forget_health: bool,
        install: impl FnOnce(Arc<Snapshot>),
    ) {
        let old = current.load();
        let narrowed: Vec<usize> = DataCategory_ALL
            .iter()
            .filter(|c| old.allows_category(**c) && old.permit(**c) != next.permit(**c))
            .map(|c| gate_of(*c))
            .collect();
        let _held: Vec<_> = narrowed
            .iter()
            .map(|&i| self.gates[i].write().unwrap_or_else(|e| e.into_inner()))
            .collect();
        for (i, queue) in self.queues.iter().enumerate() {
            if next.queue_generation[i] != old.queue_generation[i] {
                queue.store(pack(next.queue_generation[i], 0), Ordering::Release);
            }
        }
        if forget_health {
            for lost in &self.lost {
                lost.store(false, Ordering::Relaxed);
            }
            self.proxy.up();
        }
        install(Arc::new(next));
    }

    /// Queues one item of `category` counted under `snapshot`: dropped unless that
    /// snapshot allows the category and its consent is still the one in force.
    pub fn enqueue(&self, snapshot: &Snapshot, category: DataCategory) {
        let Some(i) = queue_of(category) else { return };
        if !snapshot.allows_category(category) {
            return;
        }
        let generation = snapshot.queue_generation[i];
        let _ = self.queues[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            let (queued_generation, count) = unpack(word);
            (queued_generation == generation).then(|| pack(generation, count.saturating_add(1)))
        });
    }

    /// Items of `category` waiting for the next batch.
    pub fn queued(&self, category: DataCategory) -> u64 {
        queue_of(category).map_or(0, |i| {
            u64::from(unpack(self.queues[i].load(Ordering::Acquire)).1)
        })
    }

    /// Sends one request of `category` along the route, under the category's gate: to
    /// the route's first service, and to its fallback only if the first refused the
    /// connection. A timeout spends the whole budget. `prepare` says, under the gate and
    /// for the snapshot in force there, how many items of how many bytes go (`None`:
    /// nothing to send); `undelivered` gets them back if no service received them. Returns
    /// how it ended and the snapshot it was sent under; data-plane events go to `events`,
    /// to be recorded once the gate is released.
    #[allow(clippy::too_many_arguments)]
    pub fn send<T>(
        &self,
        current: &Current,
        route: impl FnOnce(&Snapshot) -> Route,
        category: DataCategory,
        now: u64,
        events: &mut Vec<Event>,
        prepare: impl FnOnce(&Snapshot) -> Option<(u32, u64)>,
        mut attempt: impl FnMut(Service, u32, u32) -> Result<T, TransportFailure>,
        undelivered: impl FnOnce(&Snapshot, u32),
    ) -> (Sent<T>, Arc<Snapshot>) {
        let _gate = self.gates[gate_of(category)]
            .read()
            .unwrap_or_else(|e| e.into_inner());
        // The snapshot current under the gate is the consent in force for this send.
        let snapshot = current.load();
        let budget = snapshot.timeout_ms;
        let route = route(&snapshot);
        let Some((items, bytes)) = prepare(&snapshot) else {
            return (Sent::Refused, snapshot);
        };
        let mut next = Some(route.first);
        while let Some(service) = next.filter(|s| *s != Service::NONE) {
            if !snapshot.allows(category, service) {
                // An expected race: a withdrawal won against a lookup already under way.
                log::debug!("egress refused: {category} to {service} is not allowed by the consent in force");
                events.push(Event::EgressRefused {
                    category,
                    service,
                    reason: "no consent in force allows it".into(),
                });
                return (Sent::Refused, snapshot);
            }
            let result = attempt(service, items, budget).map_err(|f| self.known_failure(f));
            if !matches!(result, Err(TransportFailure::UNREACHABLE)) {
                self.enter(
                    &snapshot,
                    category,
                    service,
                    items,
                    bytes,
                    now,
                    result.is_ok(),
                );
            }
            match result {
                Ok(value) => {
                    self.service_ok(service, events);
                    return (Sent::Answered(service, value), snapshot);
                }
                Err(failure) => {
                    self.service_lost(service, failure, now, events);
                    if failure == TransportFailure::TIMED_OUT {
                        // Delivered, though not answered in time: not sent again.
                        return (Sent::Failed, snapshot);
                    }
                }
            }
            next = route.fallback.filter(|f| *f != service);
        }
        // Nothing reached any service: still under the gate, so no withdrawal slips in.
        undelivered(&snapshot, items);
        (Sent::Failed, snapshot)
    }

    /// Sends the queued items of `category` as one batch, if any were counted under the
    /// consent in force; a batch that reached no service stays queued.
    pub fn send_batch(
        &self,
        current: &Current,
        route: impl FnOnce(&Snapshot) -> Route,
        category: DataCategory,
        now: u64,
        events: &mut Vec<Event>,
        upload: impl FnMut(Service, u32, u32) -> Result<u32, TransportFailure>,
    ) {
        let Some(i) = queue_of(category) else { return };
        let queue = &self.queues[i];
        // Only what the consent in force counted: the queue's generation is the snapshot's.
        let take = |snapshot: &Snapshot| {
            let generation = snapshot.queue_generation[i];
            if !snapshot.allows_category(category) {
                return None;
            }
            let taken = queue.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (g, count) = unpack(word);
                (g == generation && count > 0).then(|| pack(g, 0))
            });
            let count = unpack(taken.ok()?).1;
            Some((count, u64::from(count) * 32))
        };
        let requeue = |snapshot: &Snapshot, items: u32| {
            let generation = snapshot.queue_generation[i];
            let _ = queue.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (g, count) = unpack(word);
                (g == generation).then(|| pack(g, count.saturating_add(items)))
            });
        };
        self.send(current, route, category, now, events, take, upload, requeue);
    }

    fn known_failure(&self, failure: TransportFailure) -> TransportFailure {
        if failure == TransportFailure::UNREACHABLE || failure == TransportFailure::TIMED_OUT {
            return failure;
        }
        if !self.unknown_failure_logged.swap(true, Ordering::Relaxed) {
            log::warn!(
                "the host's transport reported a failure this plugin does not know ({}); it is taken as unreachable, nothing delivered",
                failure.0
            );
        }
        TransportFailure::UNREACHABLE
    }

    #[allow(clippy::too_many_arguments)]
    fn enter(
        &self,
        snapshot: &Snapshot,
        category: DataCategory,
        service: Service,
        items: u32,
        bytes: u64,
        now: u64,
        answered: bool,
    ) {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let seq = ledger.next_seq;
        ledger.push(LedgerItem {
            seq,
            time_ms: now,
            category,
            service,
            items,
            bytes,
            consent_record: snapshot.consent_record(category).unwrap_or(u64::MAX),
            outcome: if answered {
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
        if self.lost[usize::from(service.0 & 3)].swap(false, Ordering::Relaxed) {
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
        if !self.lost[usize::from(service.0 & 3)].swap(true, Ordering::Relaxed) {
            events.push(Event::KsnUnavailable { service, reason });
        }
    }

    /// Every item still kept, oldest first.
    pub fn ledger(&self) -> Vec<LedgerItem> {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.items.iter().cloned().collect()
    }

    pub fn ledger_len(&self) -> u64 {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len() as u64
    }

    /// At most `max` items from `from_seq` on.
    pub fn ledger_page(&self, from_seq: u64, max: usize) -> LedgerPage {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let oldest_seq = ledger.items.front().map_or(ledger.next_seq, |i| i.seq);
        let skip = from_seq.saturating_sub(oldest_seq) as usize;
        let items: Vec<LedgerItem> = ledger.items.iter().skip(skip).take(max).cloned().collect();
        LedgerPage {
            // Past the end, the page says where the end is (not the host's number back).
            next_seq: items
                .last()
                .map_or(from_seq.clamp(oldest_seq, ledger.next_seq), |i| i.seq + 1),
            oldest_seq,
            items,
        }
    }
}

#[allow(non_upper_case_globals)]
const DataCategory_ALL: [DataCategory; 4] = [
    DataCategory::FILES,
    DataCategory::URLS,
    DataCategory::STATISTICS,
    DataCategory::KMP,
];

/// The most ledger items a task keeps in memory, whatever the log retention.
pub const LEDGER_MOST: usize = 1_000_000;

/// The storage key of the ledger: records of items, each a JSON array, oldest first.
pub const LEDGER_KEY: &str = "ledger";

/// The most ledger items kept in storage (the newest), whatever the memory keeps: a
/// restart restores at most these.
pub const LEDGER_STORED_MOST: usize = 65_536;

/// The items that left the device, newest kept.
struct Ledger {
    items: VecDeque<LedgerItem>,
    next_seq: u64,
    capacity: usize,
    /// The newest items not yet in storage (at most the items kept).
    unsaved: usize,
    /// Items in storage since its last compaction.
    stored: usize,
}

impl Ledger {
    fn push(&mut self, item: LedgerItem) {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
        }
        self.next_seq = item.seq + 1;
        self.items.push_back(item);
        self.unsaved = (self.unsaved + 1).min(self.items.len());
    }

    /// How many items storage keeps.
    fn stored_bound(&self) -> usize {
        self.capacity.min(LEDGER_STORED_MOST)
    }

    /// The newest `count` items not counting the newest `skip`, as one record.
    fn record(&self, skip: usize, count: usize) -> Vec<u8> {
        let end = self.items.len() - skip;
        let items: Vec<&LedgerItem> = self.items.range(end - count..end).collect();
        serde_json::to_vec(&items).expect("ledger items serialise")
    }
}

/// What storage should do with the ledger's newest items: append them, then, when the
/// key holds too many, replace them all with `base`.
pub struct LedgerSave {
    pub record: Vec<u8>,
    pub count: usize,
}

impl Egress {
    /// Restores the ledger from its records in storage: the newest items kept, numbering
    /// going on after them. A record that cannot be read loses its items (the ledger is
    /// an account of what left, not state the task depends on); answers how many.
    pub fn restore_ledger(&self, records: &[Vec<u8>]) -> usize {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let mut damaged = 0;
        for record in records {
            let Ok(items) = serde_json::from_slice::<Vec<LedgerItem>>(record) else {
                damaged += 1;
                continue;
            };
            ledger.stored += items.len();
            for item in items {
                if item.seq >= ledger.next_seq {
                    ledger.push(item);
                }
            }
        }
        ledger.unsaved = 0;
        damaged
    }

    /// The items entered since the last save, as one record (`None`: nothing new).
    pub fn unsaved_ledger(&self) -> Option<LedgerSave> {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let count = ledger.unsaved.min(ledger.stored_bound());
        (count > 0).then(|| LedgerSave {
            record: ledger.record(0, count),
            count,
        })
    }

    /// `count` items were appended to storage. Answers the record that should replace
    /// every one storage holds, when it holds more than twice what it keeps.
    pub fn ledger_saved(&self, count: usize) -> Option<Vec<u8>> {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.unsaved = ledger.unsaved.saturating_sub(count);
        ledger.stored += count;
        let bound = ledger.stored_bound();
        if ledger.stored <= 2 * bound {
            return None;
        }
        // The newest stored items: those entered since are saved on their own later.
        let skip = ledger.unsaved;
        let count = (ledger.items.len() - skip).min(bound);
        ledger.stored = count;
        Some(ledger.record(skip, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64) -> LedgerItem {
        LedgerItem {
            seq,
            time_ms: seq,
            category: DataCategory::FILES,
            service: Service::GLOBAL,
            items: 1,
            bytes: 24,
            consent_record: 1,
            outcome: LedgerOutcome::Answered,
        }
    }

    #[test]
    fn the_ledger_in_storage_is_bounded_and_restores_numbering_on() {
        let egress = Egress::new(4);
        let mut storage: Vec<Vec<u8>> = Vec::new();
        for seq in 0..20 {
            egress.ledger.lock().unwrap().push(item(seq));
            let save = egress.unsaved_ledger().unwrap();
            storage.push(save.record);
            if let Some(base) = egress.ledger_saved(save.count) {
                storage = vec![base];
            }
            assert!(storage.len() <= 9, "{} records", storage.len());
        }
        assert!(egress.unsaved_ledger().is_none());
        storage.push(b"not json".to_vec());
        let again = Egress::new(4);
        assert_eq!(
            again.restore_ledger(&storage),
            1,
            "the damaged record is counted"
        );
        let seqs: Vec<u64> = again.ledger().iter().map(|i| i.seq).collect();
        assert_eq!(seqs, [16, 17, 18, 19]);
        assert_eq!(again.ledger_page(0, 10).next_seq, 20);
    }

    #[test]
    fn the_ledger_is_bounded_even_when_the_log_is_not() {
        for (retention, kept) in [(0, LEDGER_MOST), (16, 16), (usize::MAX, LEDGER_MOST)] {
            let egress = Egress::new(retention);
            assert_eq!(egress.ledger.lock().unwrap().capacity, kept);
        }
    }
}
