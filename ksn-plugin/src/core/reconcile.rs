//! After a restart the journal may lack changes that took effect while storage refused to
//! record them (a withdrawal never waits for storage). The host holds the events the task
//! emitted, in its own database: at creation the task asks for those after its journal's
//! last entry and applies again, each at its original time and with its original source,
//! only what narrows what may leave (withdrawals, the mode and licence the host reported,
//! stops, and the values those changes set), and logs the detections and refusals again.
//! Nothing the host answers can widen a permission: each operation is checked before it is
//! applied, an acceptance or a start among the events is ignored, and so is anything
//! unreadable. What a restart before storage works still loses is the policy document
//! itself (its locks): the host sends it again.

use std::collections::BTreeMap;

use plugin_api::{
    documents::{Changes, Event, LogEntry, Source},
    TaskState,
};

use super::{
    control::{Control, Txn},
    table::{Role, Setting, TABLE},
};

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
    // Every number the host holds is taken, those of earlier reconciliations too: this
    // one's entries come after all of them, so that no number is used twice and a later
    // restart tells each entry from every other.
    let (first_seq, last_seq) = (entries.first()?.seq, entries.last()?.seq);
    superseded_by_earlier_reconciliations(&mut entries);

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
    let held_values: Vec<Changes> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::SettingsChanged { after, .. } => Some(after.clone()),
            _ => None,
        })
        .collect();
    for entry in entries {
        // Never before the journal's last entry, never after now.
        time = entry.time_ms.clamp(time, now.max(time));
        let at = time;
        let before = txn.entries.len();
        for step in replay(&entry.event) {
            txn = txn.and_then(|c| {
                let next = step(c, at);
                // Only what narrows, or changes no permission, is applied again; what the
                // host reported (the mode, the licence) ends acceptances rather than widen.
                if next.widens(c) && !next.reported {
                    c.record(Vec::new(), at)
                } else {
                    next
                }
            });
        }
        if txn.entries.len() > before {
            applied += 1;
        }
    }
    // Where a value reads otherwise than the host was last told (a lock of the recorded
    // policy is in force again, the policy that released it not having been recorded), the
    // log says so.
    let told = last_told(&held_values);
    let resolved = txn.next.resolved();
    let (mut was, mut is) = (Changes::default(), Changes::default());
    let mut source = Source::Policy;
    for d in &TABLE {
        let r = resolved[d.setting.index()];
        if let Some(value) = told.get(d.path) {
            if d.role != Role::Statement && *value != r.value.to_json() {
                was.0.push((d.path.into(), value.clone()));
                is.0.push((d.path.into(), r.value.to_json()));
                source = r.source;
            }
        }
    }
    if !is.0.is_empty() {
        txn = txn.and_then(|c| {
            let mut told = c.record(
                vec![Event::SettingsChanged {
                    source,
                    before: was,
                    after: is,
                }],
                now,
            );
            told.fact = false;
            told
        });
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

type Step = Box<dyn Fn(&Control, u64) -> Txn>;

/// What one held event does again: the operations that reproduce it, each checked not to
/// widen before it is applied. Acceptances, starts and anything else do nothing.
fn replay(event: &Event) -> Vec<Step> {
    match event.clone() {
        Event::ConsentChanged {
            statement,
            accepted: false,
            source,
            category,
            ..
        } => vec![Box::new(move |c, at| {
            c.withdrawal(statement, category, source, at)
        })],
        Event::SettingsChanged { source, after, .. } => after
            .0
            .into_iter()
            .filter_map(|(path, json)| {
                let setting = Setting::from_path(&path)?;
                let value = setting.parse_value(&json).ok()?;
                Some(Box::new(move |c: &Control, at| c.reapply(setting, value, source, at)) as Step)
            })
            .collect(),
        Event::PrivateKsnChanged { enabled } => {
            vec![Box::new(move |c, at| c.set_private_ksn(enabled, at))]
        }
        Event::LicenseChanged { license } => {
            vec![Box::new(move |c, at| c.set_license(license, at))]
        }
        Event::StateChanged {
            to: TaskState::STOPPED,
            reason: None,
            ..
        } => vec![Box::new(|c, at| c.stop(at))],
        fact @ (Event::ObjectUntrusted { .. }
        | Event::OperationRefused { .. }
        | Event::KsnUnavailable { .. }
        | Event::KsnRestored { .. }
        | Event::EgressRefused { .. }) => {
            vec![Box::new(move |c, at| c.record(vec![fact.clone()], at))]
        }
        _ => Vec::new(),
    }
}

/// The value of each setting the held events last reported.
fn last_told(changes: &[Changes]) -> BTreeMap<&str, serde_json::Value> {
    let mut told = BTreeMap::new();
    for change in changes {
        for (path, value) in &change.0 {
            told.insert(path.as_ref(), value.clone());
        }
    }
    told
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
