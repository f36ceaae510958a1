//! Calls into the plugin under a deadline, on a small pool of worker threads (not a thread
//! per call): the caller waits at most the deadline. A call that does not return in time
//! keeps its worker (a thread cannot be killed), which the pool replaces, and the device it
//! was made for is marked hung by the caller; the host carries on.
//!
//! Both sides spin briefly before sleeping: a scenario makes calls back to back, and a
//! handoff through the kernel (a futex wake and a context switch each way) costs tens of
//! microseconds on a virtual machine, more than the call itself.

use std::{
    sync::{
        mpsc::{self, Receiver, Sender},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

type Job = Box<dyn FnOnce() + Send>;

/// How long a side polls for the other before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// Polls `try_once` for up to `SPIN`: its answer, or `None` when the caller should sleep.
fn spin<T>(mut try_once: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        for _ in 0..64 {
            if let Some(found) = try_once() {
                return Some(found);
            }
            std::hint::spin_loop();
        }
        if started.elapsed() >= SPIN {
            return None;
        }
    }
}

pub struct Watchdog {
    pub deadline: Duration,
    jobs: Mutex<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
}

/// A call handed to the pool, whose answer is awaited.
pub struct Pending<T> {
    answer: Receiver<T>,
}

impl Watchdog {
    pub fn new(deadline: Duration) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let watchdog = Self {
            deadline,
            jobs: Mutex::new(jobs),
            queue: Arc::new(Mutex::new(queue)),
        };
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        for _ in 0..workers {
            watchdog.add_worker();
        }
        watchdog
    }

    fn add_worker(&self) {
        let queue = self.queue.clone();
        let _ = std::thread::Builder::new()
            .name("plugin-call".into())
            .spawn(move || loop {
                let job = {
                    let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                    match spin(|| queue.try_recv().ok()) {
                        Some(job) => Ok(job),
                        None => queue.recv(),
                    }
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => break,
                }
            });
    }

    /// Hands `call` to a worker.
    pub fn submit<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Pending<T> {
        let (tell, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tell.send(call());
        });
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        Pending { answer }
    }

    /// The call's answer, if it came by `until`; if not, its worker is replaced.
    pub fn wait<T>(&self, pending: Pending<T>, until: Instant) -> Option<T> {
        if let Some(answer) = spin(|| pending.answer.try_recv().ok()) {
            return Some(answer);
        }
        let left = until.saturating_duration_since(Instant::now());
        match pending.answer.recv_timeout(left) {
            Ok(answer) => Some(answer),
            Err(_) => {
                self.add_worker();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_never_returns_is_given_up_on_and_the_pool_goes_on() {
        let watchdog = Watchdog::new(Duration::from_millis(50));
        let stuck = watchdog.submit(|| loop {
            std::thread::park();
        });
        assert!(watchdog
            .wait(stuck, Instant::now() + watchdog.deadline)
            .is_none());
        for i in 0..100 {
            let pending = watchdog.submit(move || i * 2);
            assert_eq!(
                watchdog.wait(pending, Instant::now() + Duration::from_secs(10)),
                Some(i * 2)
            );
        }
    }
}
