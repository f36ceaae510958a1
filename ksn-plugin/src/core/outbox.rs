//! Events on their way to the host. A change queues its events while it holds the task's
//! plane lock, so they are queued in the order of their numbers; they are handed to the
//! host's `emit_event` after that lock is released, by one thread at a time (whichever
//! finds nobody handing them over), so a slow or failing callback on one thread never
//! holds up a change of consent on another, and the host still receives them in order.
//! What waits is bounded; what a callback failed to take, or what was dropped past the
//! bound, is logged with its count (the task log keeps every entry either way).

use std::{collections::VecDeque, ops::Range, sync::Mutex};

/// At most this many events wait for a slow host; past it the oldest are dropped.
pub const OUTBOX_MOST: usize = 16_384;

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
}

/// One event: its JSON at `range` of `bytes` (a detection's whole journal record, so that
/// the hot path copies nothing).
struct Pending {
    bytes: Vec<u8>,
    range: Range<usize>,
}

impl Pending {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.range.clone()]).expect("events are JSON text")
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Pending>,
    /// A thread is handing events to the host: it takes what is queued meanwhile too.
    draining: bool,
    /// Dropped past the bound since the last drain said so.
    dropped: u64,
}

/// Clears `draining` if the callback panicked, so that events still reach the host.
struct Unwinding<'a>(&'a Outbox);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().draining = false;
        }
    }
}

impl Queue {
    fn push(&mut self, event: Pending) {
        if self.events.len() >= OUTBOX_MOST {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every update leaves the queue consistent: a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues events, in order (the caller holds the lock that orders them).
    pub fn post(&self, events: impl IntoIterator<Item = String>) {
        let mut queue = self.lock();
        for event in events {
            let range = 0..event.len();
            queue.push(Pending {
                bytes: event.into_bytes(),
                range,
            });
        }
    }

    /// Queues one event that is the text at `range` of `bytes`.
    pub fn post_within(&self, bytes: Vec<u8>, range: Range<usize>) {
        debug_assert!(std::str::from_utf8(&bytes[range.clone()]).is_ok());
        self.lock().push(Pending { bytes, range });
    }

    /// Hands every queued event to `emit`, oldest first, unless another thread already
    /// does (it takes these too, in order): a caller never waits for another thread's
    /// callback. Failures and drops are logged once per drain, with their counts.
    pub fn drain(&self, emit: impl Fn(&str) -> Result<(), String>) {
        let mut queue = self.lock();
        if queue.draining || (queue.events.is_empty() && queue.dropped == 0) {
            return;
        }
        queue.draining = true;
        let _unwinding = Unwinding(self);
        let (mut dropped, mut failed, mut reason) = (0u64, 0u64, String::new());
        loop {
            dropped += std::mem::take(&mut queue.dropped);
            let Some(event) = queue.events.pop_front() else {
                queue.draining = false;
                break;
            };
            drop(queue);
            if let Err(e) = emit(event.text()) {
                failed += 1;
                reason = e;
            }
            queue = self.lock();
        }
        drop(queue);
        if dropped > 0 {
            log::warn!(
                "{dropped} event(s) never reached the host: more than {OUTBOX_MOST} waited for a slow emit_event, and the oldest were dropped (the task log keeps them)"
            );
        }
        if failed > 0 {
            log::warn!(
                "the host's emit_event failed for {failed} event(s), the last with: {reason} (the task log keeps them)"
            );
        }
    }

    /// Events waiting.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_the_oldest_are_dropped_and_counted() {
        let outbox = Outbox::default();
        outbox.post((0..OUTBOX_MOST + 3).map(|i| i.to_string()));
        assert_eq!(outbox.waiting(), OUTBOX_MOST);
        let seen = Mutex::new(Vec::new());
        outbox.drain(|e| {
            seen.lock().unwrap().push(e.to_string());
            Ok(())
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.first().map(String::as_str), Some("3"));
        assert_eq!(seen.len(), OUTBOX_MOST);
        assert_eq!(outbox.waiting(), 0);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_later_events() {
        let outbox = Outbox::default();
        outbox.post(["a".to_string()]);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outbox.drain(|_| panic!("the host's callback"))
        }));
        outbox.post(["b".to_string()]);
        let seen = Mutex::new(Vec::new());
        outbox.drain(|e| {
            seen.lock().unwrap().push(e.to_string());
            Ok(())
        });
        assert_eq!(seen.into_inner().unwrap(), ["b"]);
    }
}
