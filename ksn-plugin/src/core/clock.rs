//! The task's time: the host's clock, made monotonic. A host clock that goes back (an
//! adjusted system clock, a restored virtual machine) must not stop statistics batches or
//! cache expiry until it catches up again, so the task's time moves on by what the host's
//! clock moved forward, and a step back is logged and skipped.
//!
//! The cache-hit path reads `coarse()`, the time as of the last reading, rather than call
//! the host's clock on every lookup: expiry is as precise as the host's ticks.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

/// The largest time (and log number) the task writes: JSON readers that hold numbers as
/// doubles read every integer up to it exactly.
pub const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;

#[derive(Default)]
pub struct TaskClock {
    /// (the host's last reading, the task's time then).
    readings: Mutex<Option<(u64, u64)>>,
    coarse: AtomicU64,
    floor: u64,
}

/// The task's time now, and by how much the host's clock went back, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub now_ms: u64,
    pub went_back_ms: Option<u64>,
}

impl TaskClock {
    /// A clock that never reads earlier than `floor` (the last time the log recorded).
    pub fn starting_at(floor: u64) -> Self {
        Self {
            readings: Mutex::new(None),
            coarse: AtomicU64::new(floor),
            floor,
        }
    }

    /// The task's time for a reading `host_ms` of the host's clock.
    pub fn read(&self, host_ms: u64) -> Reading {
        let mut readings = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        let (now_ms, went_back_ms) = match *readings {
            None => (host_ms.max(self.floor), None),
            Some((last_host, last_task)) if host_ms >= last_host => {
                (last_task.saturating_add(host_ms - last_host), None)
            }
            Some((last_host, last_task)) => (last_task, Some(last_host - host_ms)),
        };
        // A clock past 2^53 ms (285,000 years) is a host's mistake: time stops there.
        let now_ms = now_ms.min(MAX_JSON_INTEGER);
        *readings = Some((host_ms, now_ms));
        self.coarse.fetch_max(now_ms, Ordering::Relaxed);
        Reading {
            now_ms,
            went_back_ms,
        }
    }

    /// The time as of the last reading.
    pub fn coarse(&self) -> u64 {
        self.coarse.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_that_goes_back_keeps_the_task_s_time_moving() {
        const DAY: u64 = 86_400_000;
        let clock = TaskClock::starting_at(0);
        assert_eq!(clock.read(10 * DAY).now_ms, 10 * DAY);
        assert_eq!(clock.read(10 * DAY + 60_000).now_ms, 10 * DAY + 60_000);
        // The host's clock goes back a day: the task's does not, and moves on from there.
        let back = clock.read(9 * DAY + 60_000);
        assert_eq!(back.now_ms, 10 * DAY + 60_000);
        assert_eq!(back.went_back_ms, Some(DAY));
        assert_eq!(clock.read(9 * DAY + 120_000).now_ms, 10 * DAY + 120_000);
        assert_eq!(clock.coarse(), 10 * DAY + 120_000);
    }

    #[test]
    fn the_first_reading_is_not_earlier_than_the_log() {
        let clock = TaskClock::starting_at(5_000);
        assert_eq!(clock.read(10).now_ms, 5_000);
        assert_eq!(clock.read(20).now_ms, 5_010);
    }
}
