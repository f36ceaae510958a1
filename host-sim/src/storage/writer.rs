//! Group commit: every write to the host database goes to one writer thread, which takes
//! everything queued while its last transaction committed, runs it as one transaction, and
//! only then answers each caller. A caller's write returns once it is committed (durable
//! as the database makes a commit durable), and a thousand devices writing at once pay for
//! one commit, not a thousand. Each caller of a batch is woken by itself (`unpark`), once:
//! no caller wakes another's lock.
//!
//! A write may also be queued without waiting (`queue`): the host's own rows that a later
//! write of the same caller, or the step's `settle`, waits for. Writes commit in the order
//! they were queued, so a device's record never commits before the environment saved for
//! it first.

use std::{
    sync::{Arc, Condvar, Mutex, OnceLock},
    thread::{JoinHandle, Thread},
};

use super::backend::{Committer, Op};

/// At most this many writes share a transaction (a bound on its size and on the wait of
/// the first caller in it).
const MOST_PER_COMMIT: usize = 8192;

/// What became of a batch: committed whole, or each write's own outcome.
type Outcome = Result<(), Vec<Result<(), String>>>;

#[derive(Default)]
struct Batch {
    done: OnceLock<Outcome>,
    /// The callers waiting for it, in the order they joined.
    waiters: Mutex<Vec<Thread>>,
    /// The waiters once the batch is done (set after `done`, under `waiters`' lock): the
    /// writer wakes the first, and each caller woken wakes two more, so the writer (the
    /// one thread every commit waits on) makes one wake a batch, not one a caller.
    woken: OnceLock<Vec<Thread>>,
    /// Writes queued without a caller waiting: their failures are kept for `settle`.
    unawaited: Mutex<Vec<usize>>,
}

impl Batch {
    /// Registers the calling thread as a waiter: its place, or `None` once the batch is
    /// done (nothing to wait for).
    fn register(&self) -> Option<usize> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if self.woken.get().is_some() {
            return None;
        }
        waiters.push(std::thread::current());
        Some(waiters.len() - 1)
    }

    /// Waits until the batch is done, then wakes the two waiters after this one's place.
    fn wait(&self, place: Option<usize>) -> &Outcome {
        if let Some(place) = place {
            let woken = loop {
                if let Some(woken) = self.woken.get() {
                    break woken;
                }
                std::thread::park();
            };
            for next in [2 * place + 1, 2 * place + 2] {
                if let Some(thread) = woken.get(next) {
                    thread.unpark();
                }
            }
        }
        self.done
            .get()
            .expect("a batch is done before its waiters are woken")
    }

    /// The writer: the batch is done; the first waiter is woken (and wakes the others).
    fn finish(&self, outcome: Outcome) {
        let _ = self.done.set(outcome);
        let first = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            let woken = self.woken.get_or_init(|| std::mem::take(&mut *waiters));
            woken.first().cloned()
        };
        if let Some(first) = first {
            first.unpark();
        }
    }
}

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    batch: Arc<Batch>,
    /// The batch the writer is committing now, if any.
    in_flight: Option<Arc<Batch>>,
    closed: bool,
    /// The writer waits for work (a caller wakes it only then: a wake is a system call).
    writer_idle: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits here for work.
    queued: Condvar,
    /// Callers wait here for room in a full queue.
    committed: Condvar,
    /// Failures of writes queued without waiting, for the next `settle`.
    failures: Mutex<Vec<String>>,
}

pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(committer: Box<dyn Committer>) -> Result<Self, String> {
        let shared = Arc::new(Shared::default());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("host-db-writer".into())
            .spawn(move || run(committer, &for_thread))
            .map_err(|e| format!("the host database's writer could not start: {e}"))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `op` and waits until the transaction holding it has committed.
    pub fn write(&self, op: Op) -> Result<(), String> {
        let (batch, at, place) = self.push(op, true)?;
        match batch.wait(place) {
            Ok(()) => Ok(()),
            Err(each) => each[at].clone(),
        }
    }

    /// Queues `op` without waiting: it commits with the next batch, before any write
    /// queued after it. A failure is answered by the next `settle`.
    pub fn queue(&self, op: Op) -> Result<(), String> {
        let (batch, at, _) = self.push(op, false)?;
        batch
            .unawaited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(at);
        Ok(())
    }

    /// Waits until every write queued before this call has committed; answers the
    /// failures of writes queued without waiting since the last call.
    pub fn settle(&self) -> Result<(), String> {
        let last = {
            let queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            // The queued batch commits after the one in flight: waiting for it is enough.
            let last = if queue.ops.is_empty() {
                queue.in_flight.clone()
            } else {
                Some(queue.batch.clone())
            };
            last.map(|batch| {
                let place = batch.register();
                (batch, place)
            })
        };
        if let Some((batch, place)) = last {
            batch.wait(place);
        }
        let failures = std::mem::take(
            &mut *self
                .shared
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Puts `op` in the queue; the batch it joined, its place there, and (for a caller
    /// that waits) its place among the waiters, registered under the queue's lock, before
    /// the writer can take the batch.
    fn push(&self, op: Op, waits: bool) -> Result<(Arc<Batch>, usize, Option<usize>), String> {
        let shared = &*self.shared;
        let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.closed {
            return Err("the host database is closed".into());
        }
        while queue.ops.len() >= MOST_PER_COMMIT {
            queue = shared
                .committed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
        let at = queue.ops.len();
        queue.ops.push(op);
        let batch = queue.batch.clone();
        let place = if waits { batch.register() } else { None };
        if queue.writer_idle {
            queue.writer_idle = false;
            shared.queued.notify_one();
        }
        Ok((batch, at, place))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Every waiting write was answered before its caller returned; writes queued
        // without waiting are committed before the writer ends.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.queued.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut committer: Box<dyn Committer>, shared: &Shared) {
    loop {
        let (ops, batch) = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            while queue.ops.is_empty() && !queue.closed {
                queue.writer_idle = true;
                queue = shared.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            queue.writer_idle = false;
            if queue.ops.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut queue.batch);
            queue.in_flight = Some(batch.clone());
            (std::mem::take(&mut queue.ops), batch)
        };
        // Callers wait for room only in a full queue.
        if ops.len() >= MOST_PER_COMMIT {
            shared.committed.notify_all();
        }
        let outcome = match committer.commit(&ops) {
            Ok(()) => Ok(()),
            // Nothing of the batch was committed, and one write may have failed it: each
            // alone, so that only a failing write fails.
            Err(e) if ops.len() == 1 => Err(vec![Err(e)]),
            Err(_) => Err(ops
                .iter()
                .map(|op| committer.commit(std::slice::from_ref(op)))
                .collect()),
        };
        if let Err(each) = &outcome {
            let unawaited = batch.unawaited.lock().unwrap_or_else(|e| e.into_inner());
            let mut failures = shared.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.extend(unawaited.iter().filter_map(|&at| each[at].clone().err()));
        }
        {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue
                .in_flight
                .as_ref()
                .is_some_and(|b| Arc::ptr_eq(b, &batch))
            {
                queue.in_flight = None;
            }
        }
        batch.finish(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the batches it commits; fails any batch holding a policy named "bad".
    struct Counting(Arc<(AtomicUsize, AtomicUsize)>);

    impl Committer for Counting {
        fn commit(&mut self, ops: &[Op]) -> Result<(), String> {
            std::thread::sleep(std::time::Duration::from_millis(2));
            if ops
                .iter()
                .any(|op| matches!(op, Op::Policy { document, .. } if document == "bad"))
            {
                return Err("refused".into());
            }
            self.0 .0.fetch_add(1, Ordering::SeqCst);
            self.0 .1.fetch_add(ops.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn policy(document: &str) -> Op {
        Op::Policy {
            host: "h".into(),
            document: document.into(),
        }
    }

    #[test]
    fn waiting_writers_share_commits_and_only_a_failing_write_fails() {
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let writer = Writer::start(Box::new(Counting(counts.clone()))).unwrap();
        std::thread::scope(|s| {
            for t in 0..64 {
                let writer = &writer;
                s.spawn(move || {
                    for i in 0..20 {
                        let bad = t == 5 && i == 7;
                        let result = writer.write(policy(if bad { "bad" } else { "good" }));
                        assert_eq!(result.is_err(), bad, "thread {t}, write {i}");
                    }
                });
            }
        });
        let (commits, ops) = (
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
        );
        assert_eq!(ops, 64 * 20 - 1);
        assert!(commits < 64 * 20 / 4, "{commits} commits for {ops} writes");
        drop(writer);
    }

    #[test]
    fn a_write_queued_without_waiting_commits_in_order_and_settle_answers_its_failure() {
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let writer = Writer::start(Box::new(Counting(counts.clone()))).unwrap();
        writer.queue(policy("good")).unwrap();
        writer.settle().unwrap();
        assert_eq!(counts.1.load(Ordering::SeqCst), 1, "settled: committed");
        writer.queue(policy("bad")).unwrap();
        writer.queue(policy("good")).unwrap();
        // A waiting write after them commits after them.
        writer.write(policy("good")).unwrap();
        assert_eq!(counts.1.load(Ordering::SeqCst), 3);
        assert_eq!(writer.settle().unwrap_err(), "refused");
        writer.settle().unwrap();
        drop(writer);
    }
}
