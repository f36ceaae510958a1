//! After a restart the journal may lack changes that took effect while storage refused to
//! record them (a withdrawal never waits for storage). The host holds the events the task
//! emitted, in its own database: at creation the task asks for those after its journal's
//! last entry and applies again, each at its original time and with its original source,
//! only what narrows what may leave (withdrawals, the mode and licence the host reported,
//! stops), and logs the detections and refusals again. Nothing the host answers can widen
//! a permission: an acceptance, a re-enabled category or a start among the events is
//! ignored, and so is anything unreadable.

use plugin_api::{
    documents::{Event, LogEntry},
    TaskState,
};

use super::control::{Control, Txn};

/// The journal reconciled with the events the host holds: one transaction (recorded like
/// any narrowing change, even while storage still refuses writes), and the task's state
/// as the events last said, for the `host_restarted` record. `None` when there is nothing
/// the journal lacks.
pub fn reconcile(
    control: &Control,
    last_state: Option<TaskState>,
    held: &[String],
    last_time_ms: u64,
    now: u64,
) -> Option<(Txn, Option<TaskState>)> {
    let mut entries: Vec<LogEntry> = held
        .iter()
        .filter_map(|text| serde_json::from_str::<LogEntry>(text).ok())
        .filter(|e| e.seq >= control.next_seq)
        .collect();
    entries.sort_by_key(|e| e.seq);
    entries.dedup_by_key(|e| e.seq);
    superseded_by_earlier_reconciliations(&mut entries);
    let (first_seq, last_seq) = (entries.first()?.seq, entries.last()?.seq);

    // Replayed from the state the journal last recorded, running or not, so that a mode
    // or licence change that failed the task says so again.
    let mut from = control.clone();
    from.next_seq = last_seq + 1;
    from.state = last_state.unwrap_or(TaskState::STOPPED);
    from.error = None;
    let mut txn = from.record(Vec::new(), now);
    txn.fact = false;
    let mut applied = 0;
    let mut time = last_time_ms;
    for entry in entries {
        // Never before the journal's last entry, never after now.
        time = entry.time_ms.clamp(time, now.max(time));
        let at = time;
        let step = |c: &Control| replay(c, entry.event, at);
        let before = txn.entries.len();
        txn = txn.and_then(|c| step(c).unwrap_or_else(|| c.record(Vec::new(), at)));
        if txn.entries.len() > before {
            applied += 1;
        }
    }
    let last = Some(txn.next.state);
    txn = txn.and_then(|c| {
        let mut done = c.record(
            vec![Event::JournalReconciled {
                first_seq,
                last_seq,
                applied,
            }],
            now,
        );
        done.fact = false;
        done
    });
    // The task itself comes back stopped, as after any restart.
    txn.next.state = TaskState::STOPPED;
    txn.next.error = None;
    txn.next.kmp_active = false;
    txn.reported = true;
    txn.fact = false;
    txn.persist_state = true;
    Some((txn, last))
}

/// What one held event does again, if it narrows or only records.
fn replay(control: &Control, event: Event, at: u64) -> Option<Txn> {
    match event {
        Event::ConsentChanged {
            statement,
            accepted: false,
            source,
            category,
            ..
        } => Some(control.withdrawal(statement, category, source, at)),
        Event::PrivateKsnChanged { enabled } => Some(control.set_private_ksn(enabled, at)),
        Event::LicenseChanged { license } => Some(control.set_license(license, at)),
        Event::StateChanged {
            to: TaskState::STOPPED,
            reason: None,
            ..
        } => Some(control.stop(at)),
        fact @ (Event::ObjectUntrusted { .. }
        | Event::OperationRefused { .. }
        | Event::KsnUnavailable { .. }
        | Event::KsnRestored { .. }
        | Event::EgressRefused { .. }) => Some(control.record(vec![fact], at)),
        _ => None,
    }
}

/// A reconciliation that was itself never recorded (storage still refused writes) is held
/// too, after the entries it reconciled: those are dropped, its own entries stand for them.
fn superseded_by_earlier_reconciliations(entries: &mut Vec<LogEntry>) {
    let ranges: Vec<(u64, u64)> = entries
        .iter()
        .filter_map(|e| match e.event {
            Event::JournalReconciled {
                first_seq,
                last_seq,
                ..
            } => Some((first_seq, last_seq)),
            _ => None,
        })
        .collect();
    entries.retain(|e| {
        !ranges
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&e.seq))
            && !matches!(e.event, Event::JournalReconciled { .. })
    });
}
