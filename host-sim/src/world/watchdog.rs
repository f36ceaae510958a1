//! Calls into the plugin under a deadline, on a small pool of worker threads (not a thread
//! per call): the caller waits at most the deadline. A call that does not return in time
//! keeps its worker (a thread cannot be killed), which the pool replaces, and the device it
//! was made for is marked hung by the caller; the host carries on.

use std::{
    sync::{
        mpsc::{self, Receiver, Sender},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

type Job = Box<dyn FnOnce() + Send>;

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
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
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
