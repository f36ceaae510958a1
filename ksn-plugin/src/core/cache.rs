//! The verdict cache (quick_cache): a time to live per verdict kind, `unavailable` never cached, and one
//! outgoing request shared by concurrent lookups of the same object (the cache's
//! placeholder guards). Entries carry the generation they were made in; a mode change or
//! a full withdrawal bumps the generation, so older entries are misses even before the
//! cache is emptied.

use std::{hash::Hash, sync::OnceLock};

use plugin_api::{AnswerSource, Verdict};
use quick_cache::{
    sync::{Cache, GuardResult, PlaceholderGuard},
    DefaultHashBuilder, Equivalent, UnitWeighter, Weighter,
};

/// File verdicts per device.
pub const CAPACITY: usize = 16_384;

/// URL verdicts per device are bounded by what they weigh: the URL's bytes and a fixed
/// share for the entry, so that long URLs cannot take more than this in all.
pub const URL_CACHE_BYTES: u64 = 4 << 20;
const URL_ENTRY_BYTES: u64 = 64;

/// URLs longer than this are looked up but not cached.
pub const MAX_CACHED_URL_BYTES: usize = 2048;

/// Weighs a cached URL verdict by the URL's length.
#[derive(Clone, Copy, Default)]
pub struct UrlWeight;

impl Weighter<String, Cached> for UrlWeight {
    fn weight(&self, url: &String, _: &Cached) -> u64 {
        url.len() as u64 + URL_ENTRY_BYTES
    }
}

const MINUTE_MS: u64 = 60_000;

/// How long a verdict stays valid, in host milliseconds; `None`: never cached. Judged on
/// the cache-hit path by the task's coarse clock (see `Task::cache_clock`).
pub fn ttl_ms(verdict: Verdict) -> Option<u64> {
    match verdict {
        Verdict::TRUSTED | Verdict::UNTRUSTED => Some(60 * MINUTE_MS),
        // An unknown object may be classified soon: ask again sooner.
        Verdict::UNKNOWN => Some(5 * MINUTE_MS),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    pub verdict: Verdict,
    pub source: AnswerSource,
    pub expires_ms: u64,
    pub generation: u32,
}

impl Cached {
    fn fresh(&self, now_ms: u64, generation: u32) -> bool {
        self.generation == generation && now_ms < self.expires_ms
    }
}

pub type Guard<'a, K, W = UnitWeighter> = PlaceholderGuard<
    'a,
    K,
    Cached,
    W,
    DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<K, Cached>,
>;

pub enum Lookup<'a, K, W = UnitWeighter> {
    Hit(Cached),
    /// This caller asks the network and fills the entry; concurrent callers wait for it.
    Miss(Guard<'a, K, W>),
}

/// One kind of object's verdicts. Created on first use: a fleet host holds many idle tasks.
pub struct Shelf<K, W = UnitWeighter> {
    cache: OnceLock<Cache<K, Cached, W>>,
    /// (estimated entries, weight capacity).
    size: (usize, u64),
    weigh: W,
}

impl<K: Eq + Hash + Clone> Default for Shelf<K> {
    fn default() -> Self {
        Self::new(CAPACITY, CAPACITY as u64, UnitWeighter)
    }
}

/// The URL shelf, bounded in bytes.
pub fn url_shelf() -> Shelf<String, UrlWeight> {
    Shelf::new(
        (URL_CACHE_BYTES / (URL_ENTRY_BYTES + 64)) as usize,
        URL_CACHE_BYTES,
        UrlWeight,
    )
}

impl<K: Eq + Hash + Clone, W: Weighter<K, Cached> + Clone> Shelf<K, W> {
    fn new(estimated_items: usize, weight_capacity: u64, weigh: W) -> Self {
        Self {
            cache: OnceLock::new(),
            size: (estimated_items, weight_capacity),
            weigh,
        }
    }

    fn cache(&self) -> &Cache<K, Cached, W> {
        self.cache
            .get_or_init(|| Cache::with_weighter(self.size.0, self.size.1, self.weigh.clone()))
    }

    pub fn lookup<Q>(&self, key: &Q, now_ms: u64, generation: u32) -> Lookup<'_, K, W>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        let cache = self.cache();
        loop {
            match cache.get_value_or_guard(key, None) {
                GuardResult::Value(cached) if cached.fresh(now_ms, generation) => {
                    return Lookup::Hit(cached)
                }
                GuardResult::Value(_) => {
                    cache.remove_if(key, |c| !c.fresh(now_ms, generation));
                }
                GuardResult::Guard(guard) => return Lookup::Miss(guard),
                GuardResult::Timeout => {}
            }
        }
    }

    pub fn clear(&self) {
        if let Some(cache) = self.cache.get() {
            cache.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.cache.get().map_or(0, |c| c.len())
    }

    /// What the entries weigh (for URLs: about their bytes).
    pub fn weight(&self) -> u64 {
        self.cache.get().map_or(0, |c| c.weight())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fills a placeholder, unless the verdict must not be cached (the waiters then ask).
pub fn fill<K, W>(
    guard: Guard<'_, K, W>,
    verdict: Verdict,
    source: AnswerSource,
    now_ms: u64,
    generation: u32,
) where
    K: Eq + Hash + Clone,
    W: Weighter<K, Cached> + Clone,
{
    if let Some(ttl) = ttl_ms(verdict) {
        let _ = guard.insert(Cached {
            verdict,
            source,
            expires_ms: now_ms.saturating_add(ttl),
            generation,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Barrier,
    };

    #[test]
    fn hits_expire_by_verdict_kind_and_generation() {
        let shelf: Shelf<String> = Shelf::default();
        let Lookup::Miss(guard) = shelf.lookup("a", 0, 0) else {
            panic!("empty cache hit")
        };
        fill(guard, Verdict::UNKNOWN, AnswerSource::KSN, 0, 0);
        assert!(matches!(
            shelf.lookup("a", 5 * MINUTE_MS - 1, 0),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            shelf.lookup("a", 5 * MINUTE_MS, 0),
            Lookup::Miss(_)
        ));

        let Lookup::Miss(guard) = shelf.lookup("b", 0, 0) else {
            panic!()
        };
        fill(guard, Verdict::TRUSTED, AnswerSource::KSN, 0, 0);
        assert!(matches!(
            shelf.lookup("b", 59 * MINUTE_MS, 0),
            Lookup::Hit(_)
        ));
        assert!(
            matches!(shelf.lookup("b", 1, 1), Lookup::Miss(_)),
            "older generation is a miss"
        );
    }

    #[test]
    fn long_urls_weigh_their_bytes_and_the_shelf_stays_within_its_bound() {
        let shelf = url_shelf();
        for i in 0..20_000u32 {
            let url = format!("https://example.com/{i}/{}", "x".repeat(1500));
            if let Lookup::Miss(guard) = shelf.lookup(url.as_str(), 0, 0) {
                fill(guard, Verdict::TRUSTED, AnswerSource::KSN, 0, 0);
            }
        }
        assert!(shelf.weight() <= URL_CACHE_BYTES, "{}", shelf.weight());
        assert!(shelf.len() < 3_000, "{}", shelf.len());
    }

    #[test]
    fn unavailable_is_never_cached() {
        let shelf: Shelf<String> = Shelf::default();
        let Lookup::Miss(guard) = shelf.lookup("a", 0, 0) else {
            panic!()
        };
        fill(guard, Verdict::UNAVAILABLE, AnswerSource::NONE, 0, 0);
        assert!(matches!(shelf.lookup("a", 0, 0), Lookup::Miss(_)));
        assert_eq!(ttl_ms(Verdict::UNAVAILABLE), None);
    }

    #[test]
    fn concurrent_misses_share_one_fill() {
        let shelf: Arc<Shelf<String>> = Arc::new(Shelf::default());
        let fills = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (shelf, fills, barrier) = (shelf.clone(), fills.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match shelf.lookup("same", 0, 0) {
                        Lookup::Hit(c) => c.verdict,
                        Lookup::Miss(guard) => {
                            fills.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            fill(guard, Verdict::TRUSTED, AnswerSource::KSN, 0, 0);
                            Verdict::TRUSTED
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Verdict::TRUSTED);
        }
        assert_eq!(fills.load(Ordering::SeqCst), 1);
    }
}
