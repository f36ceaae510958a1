//! The task log, and how the task's state is kept in the host's storage.
//!
//! Storage is one journal of records under one key. Each change appends exactly one
//! *change* record: the log entries it caused, numbered on from the record before, and,
//! when it changed persistent state, a full snapshot of that state. A record is appended
//! atomically by the host, so a crash loses at most the change being written.
//!
//! The journal is compacted (`compact`): a *base* record, holding a fresh snapshot, the
//! consent records of the whole history (never dropped: they are the audit trail) and the
//! other entries the retention keeps, atomically replaces every record. Restoring reads
//! the last snapshot and the records after it, so it costs the same whatever the history.
//!
//! Every record starts with the CRC-32 of the rest, and every read checks it and the
//! record's shape (numbering, entries, snapshot): a damaged record is reported, naming it,
//! and never guessed at.

use std::borrow::Cow;

use plugin_api::{LogRetention, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::stored::{Stored, StoredOut};

pub const JOURNAL_KEY: &str = "journal";

pub use plugin_api::documents::{Changes, Event, LogEntry};

/// How many change records may follow the base before the journal is compacted: about
/// as many as the retention keeps, so a compaction rewrites about twice what it keeps,
/// between these bounds.
pub fn compact_after(retention: LogRetention) -> usize {
    const FEWEST: u64 = 16;
    const MOST: u64 = 4096;
    match retention.max_entries {
        0 => MOST as usize,
        max => max.clamp(FEWEST, MOST) as usize,
    }
}

/// Why a journal cannot be trusted: the record and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub record: usize,
    pub reason: String,
}

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal record {} is damaged: {}",
            self.record, self.reason
        )
    }
}

/// What a record says about itself, as written.
#[derive(Serialize)]
struct RecordOut<'a> {
    /// The number of the next entry after this record's.
    next_seq: u64,
    /// Where this record's numbering starts, when not where the record before ended: the
    /// numbers between were used by entries that reached the host but never storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    from_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<BaseOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a StoredOut<'a>>,
    entries: &'a [Box<RawValue>],
}

/// What only a base record carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
struct BaseOut {
    /// The task's state as the log last recorded it, since the entry that said so may
    /// have been dropped by the retention.
    #[serde(default)]
    task_state: Option<TaskState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn<'a> {
    next_seq: u64,
    #[serde(default)]
    from_seq: Option<u64>,
    #[serde(default)]
    base: Option<BaseOut>,
    #[serde(default, borrow)]
    state: Option<&'a RawValue>,
    #[serde(borrow)]
    entries: Vec<&'a RawValue>,
}

/// Just enough of a log entry to check its numbering and follow the task's state.
#[derive(Deserialize)]
struct EntryHead<'a> {
    seq: u64,
    time_ms: u64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    to: Option<TaskState>,
    #[serde(default)]
    accepted: Option<bool>,
}

/// One record, checked: its checksum, its shape, and its entries' numbering.
struct Record<'a> {
    next_seq: u64,
    from_seq: Option<u64>,
    base: Option<BaseOut>,
    state: Option<&'a RawValue>,
    entries: Vec<(EntryHead<'a>, &'a RawValue)>,
}

fn checksum(body: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(body))
}

/// One record as bytes for the host's storage: `crc32 json`.
fn encode(record: &RecordOut<'_>) -> Vec<u8> {
    let body = serde_json::to_vec(record).expect("records serialise");
    let mut out = Vec::with_capacity(body.len() + 9);
    out.extend_from_slice(checksum(&body).as_bytes());
    out.push(b' ');
    out.extend_from_slice(&body);
    out
}

/// A change record: the entries of one change (already serialised, as they were sent as
/// events) and the state snapshot if the change altered it. `from_seq` when its numbering
/// does not follow the record before.
pub fn change_record(
    next_seq: u64,
    from_seq: Option<u64>,
    entries: &[Box<RawValue>],
    state: Option<&StoredOut<'_>>,
) -> Vec<u8> {
    encode(&RecordOut {
        next_seq,
        from_seq,
        base: None,
        state,
        entries,
    })
}

/// One log entry as it is written and sent as an event.
pub fn entry_json(entry: &LogEntry) -> Box<RawValue> {
    serde_json::value::to_raw_value(entry).expect("log entries serialise")
}

fn parse(index: usize, bytes: &[u8]) -> Result<Record<'_>, Damaged> {
    let damaged = |reason: String| Damaged {
        record: index,
        reason,
    };
    let (sum, body) = match (bytes.get(..8), bytes.get(8), bytes.get(9..)) {
        (Some(sum), Some(b' '), Some(body)) => (sum, body),
        _ => return Err(damaged("no checksum".into())),
    };
    if sum != checksum(body).as_bytes() {
        return Err(damaged("its checksum does not match".into()));
    }
    let record: RecordIn<'_> =
        serde_json::from_slice(body).map_err(|e| damaged(format!("unreadable: {e}")))?;
    let mut entries = Vec::with_capacity(record.entries.len());
    for (i, raw) in record.entries.into_iter().enumerate() {
        let head: EntryHead<'_> = serde_json::from_str(raw.get())
            .map_err(|e| damaged(format!("entry {i} is unreadable: {e}")))?;
        entries.push((head, raw));
    }
    if record.base.is_some() && record.state.is_none() {
        return Err(damaged("a base record without a state".into()));
    }
    let mut last = None;
    for (head, _) in &entries {
        if head.seq >= record.next_seq || last.is_some_and(|l| head.seq <= l) {
            return Err(damaged(format!(
                "entry {} is out of order (next_seq {})",
                head.seq, record.next_seq
            )));
        }
        last = Some(head.seq);
    }
    if record.from_seq.is_some_and(|f| f > record.next_seq) {
        return Err(damaged(format!(
            "it starts at {} after its end {}",
            record.from_seq.unwrap_or_default(),
            record.next_seq
        )));
    }
    Ok(Record {
        next_seq: record.next_seq,
        from_seq: record.from_seq,
        base: record.base,
        state: record.state,
        entries,
    })
}

/// Checks that `record` follows `before`: a change record's entries are numbered on from
/// the record before, without a gap.
fn follows(index: usize, record: &Record<'_>, before: Option<u64>) -> Result<(), Damaged> {
    if record.base.is_some() {
        return Ok(());
    }
    let from = match (record.from_seq, before) {
        // A gap: never back over numbers already used.
        (Some(from), Some(before)) if from < before => {
            return Err(Damaged {
                record: index,
                reason: format!("it starts at {from}, before the record before ended ({before})"),
            })
        }
        (Some(from), _) => from,
        (None, Some(before)) => before,
        (None, None) => record
            .entries
            .first()
            .map_or(record.next_seq, |(h, _)| h.seq),
    };
    let numbered = record
        .entries
        .iter()
        .enumerate()
        .all(|(i, (h, _))| h.seq == from + i as u64);
    if numbered && from + record.entries.len() as u64 == record.next_seq {
        Ok(())
    } else {
        Err(Damaged {
            record: index,
            reason: format!(
                "its entries do not follow the record before (from {from} to {})",
                record.next_seq
            ),
        })
    }
}

/// What a journal restores to.
#[derive(Debug, Default, PartialEq)]
pub struct Restored {
    pub state: Option<Stored>,
    pub next_seq: u64,
    /// The task's state as the log last recorded it.
    pub last_task_state: Option<TaskState>,
    /// The time of the last entry: the task's clock never goes back before it.
    pub last_time_ms: u64,
    /// Records before the last snapshot that are damaged: their entries are lost to the
    /// log, but the state does not depend on them.
    pub damaged: Vec<Damaged>,
}

/// Reads the journal: the last snapshot, where numbering resumes, and the task's state as
/// the log last recorded it. A damaged record at or after the last snapshot makes the
/// state untrustworthy (it may have held a later snapshot): that is an error.
///
/// Records are read newest first, and only as far back as the last snapshot and the last
/// record of the task's state: restoring costs what was written since the last snapshot,
/// not the whole history. An older record's damage costs only the log its entries, and
/// reading the log reports it.
pub fn restore(records: &[Vec<u8>]) -> Result<Restored, Damaged> {
    let mut restored = Restored::default();
    let mut parsed: Vec<Result<Record<'_>, Damaged>> = Vec::new();
    let mut last_state = None;
    let mut task_state_known = false;
    for (index, bytes) in records.iter().enumerate().rev() {
        let record = parse(index, bytes);
        if let Ok(record) = &record {
            if last_state.is_none() && record.state.is_some() {
                last_state = Some(index);
            }
            task_state_known |= record.base.is_some_and(|b| b.task_state.is_some())
                || record
                    .entries
                    .iter()
                    .any(|(head, _)| head.kind == "state_changed" && head.to.is_some());
        }
        parsed.push(record);
        if last_state.is_some() && task_state_known {
            break;
        }
    }
    parsed.reverse();
    let first = records.len() - parsed.len();
    let trusted_from = last_state.unwrap_or(0);
    let mut before = None;
    for (index, record) in (first..).zip(&parsed) {
        let record = match record {
            Ok(record) => record,
            Err(damage) if index < trusted_from => {
                restored.damaged.push(damage.clone());
                before = None;
                continue;
            }
            Err(damage) => return Err(damage.clone()),
        };
        if let Err(damage) = follows(index, record, before) {
            if index < trusted_from {
                restored.damaged.push(damage);
            } else {
                return Err(damage);
            }
        }
        before = Some(record.next_seq);
        restored.next_seq = record.next_seq;
        if let Some(task_state) = record.base.and_then(|b| b.task_state) {
            restored.last_task_state = Some(task_state);
        }
        for (head, _) in &record.entries {
            if head.kind == "state_changed" {
                restored.last_task_state = head.to.or(restored.last_task_state);
            }
            restored.last_time_ms = restored.last_time_ms.max(head.time_ms);
        }
    }
    if let Some(index) = last_state {
        let raw = parsed[index - first]
            .as_ref()
            .ok()
            .and_then(|r| r.state)
            .expect("the last state record was parsed");
        let state: Stored = serde_json::from_str(raw.get()).map_err(|e| Damaged {
            record: index,
            reason: format!("its state is unreadable: {e}"),
        })?;
        state.layers().map_err(|reason| Damaged {
            record: index,
            reason: format!("its state is invalid: {reason}"),
        })?;
        restored.state = Some(state);
    }
    Ok(restored)
}

/// The entries of the journal from `from_seq` on, at most `max`, with the number the next
/// page starts at and the oldest number still kept.
pub fn page(records: &[Vec<u8>], from_seq: u64, max: usize) -> Result<Page, Damaged> {
    let mut entries = Vec::new();
    let mut oldest_seq = None;
    // Past the end, a page says where the end is, not the host's number back.
    let mut end = 0;
    for (index, bytes) in records.iter().enumerate() {
        let record = parse(index, bytes)?;
        for (head, raw) in record.entries {
            oldest_seq.get_or_insert(head.seq);
            if head.seq < from_seq {
                continue;
            }
            if entries.len() == max {
                return Ok(Page {
                    entries,
                    next_seq: head.seq,
                    oldest_seq,
                });
            }
            entries.push(raw.get().to_string());
        }
        end = end.max(record.next_seq);
    }
    Ok(Page {
        entries,
        next_seq: end,
        oldest_seq,
    })
}

/// One page of the log: entries as written.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub entries: Vec<String>,
    pub next_seq: u64,
    pub oldest_seq: Option<u64>,
}

impl Page {
    /// As the contract's `LogPage` document, without re-parsing the entries.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"entries\":[");
        out.push_str(&self.entries.join(","));
        out.push_str(&format!(
            "],\"next_seq\":{},\"oldest_seq\":{}}}",
            self.next_seq,
            self.oldest_seq.unwrap_or(self.next_seq)
        ));
        out
    }
}

/// The whole task log as one JSON array, oldest first, without re-parsing entries.
pub fn log_json(records: &[Vec<u8>]) -> Result<String, Damaged> {
    let page = page(records, 0, usize::MAX)?;
    Ok(format!("[{}]", page.entries.join(",")))
}

/// The base record that replaces the whole journal: `state`, every consent record, and the
/// other entries `retention` keeps (the newest `max_entries`, of the last `max_age_ms`).
pub fn compact(
    records: &[Vec<u8>],
    state: &StoredOut<'_>,
    task_state: TaskState,
    now_ms: u64,
    retention: LogRetention,
) -> Result<Vec<u8>, Damaged> {
    let mut next_seq = 0;
    let mut kept: Vec<(u64, u64, bool, &RawValue)> = Vec::new();
    let parsed: Vec<Record<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, bytes)| parse(i, bytes))
        .collect::<Result<_, _>>()?;
    for record in &parsed {
        next_seq = record.next_seq;
        for (head, raw) in &record.entries {
            let consent = head.kind == "consent_changed" && head.accepted.is_some();
            kept.push((head.seq, head.time_ms, consent, raw));
        }
    }
    let others = kept.iter().filter(|(_, _, consent, _)| !consent).count() as u64;
    let drop_oldest = match retention.max_entries {
        0 => 0,
        max => others.saturating_sub(max),
    };
    let mut dropped = 0;
    let entries: Vec<Box<RawValue>> = kept
        .into_iter()
        .filter(|(_, time_ms, consent, _)| {
            if *consent {
                return true;
            }
            let too_many = dropped < drop_oldest;
            if too_many {
                dropped += 1;
            }
            let too_old =
                retention.max_age_ms != 0 && now_ms.saturating_sub(*time_ms) > retention.max_age_ms;
            !too_many && !too_old
        })
        .map(|(_, _, _, raw)| raw.to_owned())
        .collect();
    Ok(encode(&RecordOut {
        next_seq,
        from_seq: None,
        base: Some(BaseOut {
            task_state: Some(task_state),
        }),
        state: Some(state),
        entries: &entries,
    }))
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
