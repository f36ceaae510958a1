//! The verdict cache (quick_cache): a time to live per verdict kind, `unavailable` never cached, and one
//! outgoing request shared by concurrent lookups of the same object (the cache's
//! placeholder guards). Entries carry the generation they were made in; a mode change or
//! a full withdrawal bumps the generation, so older entries are misses even before the
//! cache is emptied.

use std::{hash::Hash, sync::OnceLock};

use plugin_api::{AnswerSource, Verdict};
use quick_cache::{
    sync::{Cache, GuardResult, PlaceholderGuard},
    DefaultHashBuilder, Equivalent, UnitWeighter,
};

/// Entries per kind of object and device.
pub const CAPACITY: usize = 16_384;

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

pub type Guard<'a, K> = PlaceholderGuard<
    'a,
    K,
    Cached,
    UnitWeighter,
    DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<K, Cached>,
>;

pub enum Lookup<'a, K> {
    Hit(Cached),
    /// This caller asks the network and fills the entry; concurrent callers wait for it.
    Miss(Guard<'a, K>),
}

/// One kind of object's verdicts. Created on first use: a fleet host holds many idle tasks.
pub struct Shelf<K> {
    cache: OnceLock<Cache<K, Cached>>,
}

impl<K: Eq + Hash + Clone> Default for Shelf<K> {
    fn default() -> Self {
        Self {
            cache: OnceLock::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> Shelf<K> {
    fn cache(&self) -> &Cache<K, Cached> {
        self.cache.get_or_init(|| Cache::new(CAPACITY))
    }

    pub fn lookup<Q>(&self, key: &Q, now_ms: u64, generation: u32) -> Lookup<'_, K>
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fills a placeholder, unless the verdict must not be cached (the waiters then ask).
pub fn fill<K>(
    guard: Guard<'_, K>,
    verdict: Verdict,
    source: AnswerSource,
    now_ms: u64,
    generation: u32,
) where
    K: Eq + Hash + Clone,
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
