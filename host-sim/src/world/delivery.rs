//! Delivery in the background: a change is saved at once and answered; the server then
//! delivers it to the devices it reaches, in order, a share at a time, so that an answer
//! never waits for 100,000 devices, and shows how far each delivery is. Scenarios and the
//! text console deliver at once (a step waits for the devices it reaches now); the Web
//! Console queues.

use std::collections::VecDeque;

use serde::Serialize;

/// One change's delivery: what it was, and how far it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Progress {
    /// Numbered from 1, in the order the changes were saved.
    pub id: u64,
    /// What was saved (`saved policy "Servers", revision 3`, `switched Private KSN on`).
    pub what: String,
    /// The devices it reaches now (connected ones; the others get it at their next
    /// synchronisation).
    pub total: usize,
    pub delivered: usize,
    /// Devices whose task refused what they were sent, or could not be reached.
    pub failed: usize,
    pub done: bool,
    /// The administrator who made the change (what the devices report of it is theirs).
    pub by: Option<String>,
}

/// The deliveries not done yet, oldest first, and the last few done.
#[derive(Debug, Default)]
pub struct Queue {
    /// Deliver in the background (`World::deliver_some`) rather than at once.
    pub background: bool,
    next_id: u64,
    /// Each pending delivery with the devices it has still to reach, in order.
    pending: VecDeque<(Progress, VecDeque<usize>)>,
    /// The most recent finished ones (newest last), for the console.
    finished: VecDeque<Progress>,
}

/// How many finished deliveries the console still shows.
const KEPT: usize = 20;

impl Queue {
    /// A change saved now, to be delivered to `devices`, in order.
    pub fn push(&mut self, what: String, devices: Vec<usize>, by: Option<&str>) -> u64 {
        self.next_id += 1;
        let progress = Progress {
            id: self.next_id,
            what,
            total: devices.len(),
            delivered: 0,
            failed: 0,
            done: devices.is_empty(),
            by: by.map(str::to_string),
        };
        if devices.is_empty() {
            self.finish(progress);
        } else {
            self.pending.push_back((progress, devices.into()));
        }
        self.next_id
    }

    fn finish(&mut self, progress: Progress) {
        if self.finished.len() == KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(progress);
    }

    /// The newest delivery's number (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.next_id
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next `most` devices to deliver to, of the oldest pending delivery, and who
    /// made that change.
    pub fn next(&mut self, most: usize) -> Option<(u64, Vec<usize>, Option<String>)> {
        let (progress, devices) = self.pending.front_mut()?;
        let n = most.min(devices.len());
        Some((
            progress.id,
            devices.drain(..n).collect(),
            progress.by.clone(),
        ))
    }

    /// Delivery `id` reached `delivered` more devices, `failed` of them refusing.
    pub fn record(&mut self, id: u64, delivered: usize, failed: usize) {
        let Some(at) = self.pending.iter().position(|(p, _)| p.id == id) else {
            return;
        };
        let (progress, devices) = &mut self.pending[at];
        progress.delivered += delivered;
        progress.failed += failed;
        if devices.is_empty() {
            let (mut progress, _) = self.pending.remove(at).expect("found");
            progress.done = true;
            self.finish(progress);
        }
    }

    /// Every delivery the console shows: the pending ones, then the finished, newest first.
    pub fn progress(&self) -> Vec<Progress> {
        let mut all: Vec<Progress> = self.pending.iter().map(|(p, _)| p.clone()).collect();
        all.extend(self.finished.iter().cloned());
        all.sort_by_key(|p| std::cmp::Reverse(p.id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_go_in_order_a_share_at_a_time_and_say_how_far_they_are() {
        let mut q = Queue::default();
        let a = q.push("first".into(), vec![0, 1, 2], Some("alice"));
        let b = q.push("second".into(), vec![3], None);
        let none = q.push("reaches no device now".into(), vec![], None);
        let alice = Some("alice".to_string());
        assert_eq!(q.next(2), Some((a, vec![0, 1], alice.clone())));
        q.record(a, 2, 1);
        assert_eq!(q.progress()[2].delivered, 2);
        assert_eq!(q.next(2), Some((a, vec![2], alice)));
        q.record(a, 1, 0);
        assert_eq!(q.next(2), Some((b, vec![3], None)));
        q.record(b, 1, 0);
        assert!(q.is_idle());
        let shown = q.progress();
        assert_eq!(
            shown.iter().map(|p| (p.id, p.done)).collect::<Vec<_>>(),
            vec![(none, true), (b, true), (a, true)]
        );
        assert_eq!((shown[2].delivered, shown[2].failed), (3, 1));
    }
}
