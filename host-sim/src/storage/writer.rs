//! Group commit: every write to the host database goes to one writer thread, which takes
//! everything queued while its last transaction committed, runs it as one transaction, and
//! only then answers each caller. A caller's write returns once it is committed (durable
//! as the database makes a commit durable), and a thousand devices writing at once pay for
//! one commit, not a thousand. The callers of a batch are woken together, once.

use std::{
    sync::{Arc, Condvar, Mutex, OnceLock},
    thread::JoinHandle,
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
}

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    batch: Arc<Batch>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits here for work.
    queued: Condvar,
    /// Callers wait here for their batch.
    committed: Condvar,
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
        if at == 0 {
            shared.queued.notify_one();
        }
        loop {
            if let Some(outcome) = batch.done.get() {
                return match outcome {
                    Ok(()) => Ok(()),
                    Err(each) => each[at].clone(),
                };
            }
            queue = shared
                .committed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Every write was answered before its caller returned: the queue is empty.
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
                queue = shared.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.ops.is_empty() {
                return;
            }
            (
                std::mem::take(&mut queue.ops),
                std::mem::take(&mut queue.batch),
            )
        };
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
        let _ = batch.done.set(outcome);
        // Taken under the lock, so no caller misses the wake between checking and waiting.
        drop(shared.queue.lock().unwrap_or_else(|e| e.into_inner()));
        shared.committed.notify_all();
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
}
