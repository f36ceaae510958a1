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

use plugin_api::{documents::Importance, LogRetention, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::stored::{Stored, StoredOut};

pub const JOURNAL_KEY: &str = "journal";

pub use plugin_api::documents::{Changes, Event, LogEntry};

/// How many change records may follow the base before the journal is compacted: twice as
/// many as the retention keeps, so that a compaction drops every other entry of the base
/// and needs not read it (each record is read once more, and the base, the retention's
/// worth, is rewritten once per twice that many records), between these bounds.
pub fn compact_after(retention: LogRetention) -> usize {
    const FEWEST: u64 = 16;
    const MOST: u64 = 65_536;
    match retention.max_entries {
        0 => 4096,
        max => max.saturating_mul(2).clamp(FEWEST, MOST) as usize,
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

/// What a record says about itself, as written (its entries already serialised): the
/// shape `change_record` writes by hand, kept as the reference its tests compare with.
#[cfg(test)]
#[derive(Serialize)]
pub(super) struct RecordOut<'a> {
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

#[cfg(test)]
impl<'a> RecordOut<'a> {
    pub(super) fn change(
        next_seq: u64,
        from_seq: Option<u64>,
        state: Option<&'a StoredOut<'a>>,
        entries: &'a [Box<RawValue>],
    ) -> Self {
        Self {
            next_seq,
            from_seq,
            base: None,
            state,
            entries,
        }
    }
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
    entries: Entries<'a>,
}

/// A record's entries, each read with its head as it is read.
struct Entries<'a>(EntryList<'a>);

/// A record's entries, each with its head and its JSON: one (the common record, a
/// detection) held in place, or many.
#[cfg_attr(test, derive(Debug))]
enum EntryList<'a> {
    One((EntryHead<'a>, &'a str)),
    Many(Vec<(EntryHead<'a>, &'a str)>),
}

impl<'a> EntryList<'a> {
    fn push(&mut self, entry: (EntryHead<'a>, &'a str)) {
        match self {
            EntryList::Many(entries) if entries.is_empty() => *self = EntryList::One(entry),
            EntryList::Many(entries) => entries.push(entry),
            EntryList::One(_) => {
                let EntryList::One(first) = std::mem::replace(self, EntryList::Many(Vec::new()))
                else {
                    unreachable!("matched")
                };
                *self = EntryList::Many(vec![first, entry]);
            }
        }
    }
}

impl<'a> std::ops::Deref for EntryList<'a> {
    type Target = [(EntryHead<'a>, &'a str)];
    fn deref(&self) -> &Self::Target {
        match self {
            EntryList::One(entry) => std::slice::from_ref(entry),
            EntryList::Many(entries) => entries,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of log entries")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Entries<'a>, A::Error> {
                let mut entries = EntryList::Many(Vec::new());
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    let raw = raw.get();
                    let head = entry_head(raw).map_err(|e| {
                        serde::de::Error::custom(format_args!(
                            "entry {} is unreadable: {e}",
                            entries.len()
                        ))
                    })?;
                    entries.push((head, raw));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

/// Just enough of a log entry to check its numbering and follow the task's state.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq, Clone))]
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

/// The head of an entry as this plugin writes it (`{"seq":N,"time_ms":T,"importance":"i",
/// "type":"name",`, the importance absent from entries written before 1.3.0),
/// read from its first bytes; anything else (a `state_changed`, whose `to` matters, or an
/// entry written otherwise) is read whole.
fn entry_head(raw: &str) -> Result<EntryHead<'_>, serde_json::Error> {
    fn number(text: &str, key: &str) -> Option<(u64, usize)> {
        let rest = text.strip_prefix(key)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        Some((rest[..digits].parse().ok()?, key.len() + digits))
    }
    let quick = (|| {
        let (seq, a) = number(raw, "{\"seq\":")?;
        let (time_ms, b) = number(&raw[a..], ",\"time_ms\":")?;
        let mut rest = &raw[a + b..];
        if let Some(importance) = rest.strip_prefix(",\"importance\":\"") {
            rest = &importance[importance.find('"')? + 1..];
        }
        let kind = rest.strip_prefix(",\"type\":\"")?;
        let kind = &kind[..kind.find('"')?];
        if kind.contains('\\') || kind == "state_changed" {
            return None;
        }
        Some(EntryHead {
            seq,
            time_ms,
            kind: Cow::Borrowed(kind),
            to: None,
            // Every consent_changed entry states whether it accepts.
            accepted: (kind == "consent_changed").then_some(true),
        })
    })();
    match quick {
        Some(head) => Ok(head),
        None => serde_json::from_str(raw),
    }
}

/// A record of one entry and nothing else, as this plugin writes every detection
/// (`one_entry_record`; the checksum already checked): `{"next_seq":N[,"from_seq":F],
/// "entries":[E]}` with E's number `N - 1`, so the array holds E alone. Read from its
/// first bytes, without parsing E; any other shape is read whole.
fn one_entry(body: &[u8]) -> Option<Record<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let rest = text.strip_prefix("{\"next_seq\":")?;
    let n = digits(rest);
    let next_seq: u64 = rest[..n].parse().ok()?;
    let mut rest = &rest[n..];
    let mut from_seq = None;
    if let Some(after) = rest.strip_prefix(",\"from_seq\":") {
        let n = digits(after);
        from_seq = Some(after[..n].parse().ok()?);
        rest = &after[n..];
    }
    let entry = rest.strip_prefix(",\"entries\":[")?.strip_suffix("]}")?;
    let head = entry_head(entry).ok()?;
    if head.seq.checked_add(1) != Some(next_seq) || from_seq.is_some_and(|f| f != head.seq) {
        return None;
    }
    // The checksum says these are the bytes written: the entry as it was serialised.
    Some(Record {
        next_seq,
        from_seq,
        base: None,
        state: None,
        entries: EntryList::One((head, entry)),
    })
}

/// One record, checked: its checksum, its shape, and its entries' numbering.
#[cfg_attr(test, derive(Debug))]
struct Record<'a> {
    next_seq: u64,
    from_seq: Option<u64>,
    base: Option<BaseOut>,
    /// The snapshot's JSON, as written.
    state: Option<&'a str>,
    entries: EntryList<'a>,
}

/// Whether `sum` is the CRC-32 of `body` as eight lowercase hexadecimal digits.
fn checksum_matches(sum: &[u8], body: &[u8]) -> bool {
    let crc = crc32fast::hash(body);
    sum.len() == 8
        && sum
            .iter()
            .enumerate()
            .all(|(i, digit)| *digit == b"0123456789abcdef"[((crc >> (28 - 4 * i)) & 0xf) as usize])
}

/// One record as bytes for the host's storage: `crc32 json`, written in one buffer.
#[cfg(test)]
pub(super) fn encode(record: &RecordOut<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"00000000 ");
    serde_json::to_writer(&mut out, record).expect("records serialise");
    seal(&mut out);
    out
}

/// A change record: the entries of one change (already serialised, as they were sent as
/// events) and the state snapshot if the change altered it. `from_seq` when its numbering
/// does not follow the record before.
pub fn change_record(
    next_seq: u64,
    from_seq: Option<u64>,
    entries: &[String],
    state: Option<&StoredOut<'_>>,
) -> Vec<u8> {
    // As `RecordOut` serialises (`encode`), its entries copied in as they are.
    let size: usize = entries.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + if state.is_some() { 1024 } else { 64 });
    out.extend_from_slice(b"00000000 {\"next_seq\":");
    write_number(&mut out, next_seq);
    if let Some(from) = from_seq {
        out.extend_from_slice(b",\"from_seq\":");
        write_number(&mut out, from);
    }
    if let Some(state) = state {
        out.extend_from_slice(b",\"state\":");
        state.write_json(&mut out);
    }
    end_with_entries(out, entries.iter().map(String::as_str))
}

/// A record of one entry (a detection), written in one buffer as `change_record` would
/// write it, with the entry's own JSON at `entry` in it: what is appended and what is sent
/// as the event are the same bytes, made once. `write_event` writes the event as a JSON
/// object, as it serialises.
pub fn one_entry_record(
    seq: u64,
    time_ms: u64,
    importance: Importance,
    write_event: impl FnOnce(&mut Vec<u8>),
    from_seq: Option<u64>,
) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"00000000 {\"next_seq\":");
    write_number(&mut out, seq + 1);
    if let Some(from) = from_seq {
        out.extend_from_slice(b",\"from_seq\":");
        write_number(&mut out, from);
    }
    out.extend_from_slice(b",\"entries\":[");
    let start = out.len();
    // As `LogEntry` serialises (its number and time, then the event's own fields, the tag
    // first), without serde's flattening.
    out.extend_from_slice(b"{\"seq\":");
    write_number(&mut out, seq);
    out.extend_from_slice(b",\"time_ms\":");
    write_number(&mut out, time_ms);
    out.extend_from_slice(b",\"importance\":\"");
    out.extend_from_slice(importance.as_str().as_bytes());
    out.push(b'"');
    let event_start = out.len();
    write_event(&mut out);
    out[event_start] = b','; // in place of the event's own `{`
    let end = out.len();
    out.extend_from_slice(b"]}");
    seal(&mut out);
    (out, start..end)
}

/// A base record, as `encode` would write it, its entries (as read) copied in place.
fn encode_base(
    next_seq: u64,
    task_state: TaskState,
    state: &StoredOut<'_>,
    entries: &[&str],
) -> Vec<u8> {
    use std::io::Write;
    let size: usize = entries.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 1024);
    out.extend_from_slice(b"00000000 ");
    let _ = write!(out, "{{\"next_seq\":{next_seq},\"base\":");
    serde_json::to_writer(
        &mut out,
        &BaseOut {
            task_state: Some(task_state),
        },
    )
    .expect("bases serialise");
    out.extend_from_slice(b",\"state\":");
    state.write_json(&mut out);
    end_with_entries(out, entries.iter().copied())
}

/// A record's last field, its entries as they were serialised, then the seal.
fn end_with_entries<'a>(mut out: Vec<u8>, entries: impl Iterator<Item = &'a str>) -> Vec<u8> {
    out.extend_from_slice(b",\"entries\":[");
    for (i, entry) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entry.as_bytes());
    }
    out.extend_from_slice(b"]}");
    seal(&mut out);
    out
}

/// A number as serde_json writes it, without the formatting machinery.
fn write_number(out: &mut Vec<u8>, n: u64) {
    serde_json::to_writer(out, &n).expect("numbers serialise");
}

/// Writes the CRC-32 of everything after the first nine bytes into the first eight.
fn seal(out: &mut [u8]) {
    let sum = crc32fast::hash(&out[9..]);
    for (i, byte) in out[..8].iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[((sum >> (28 - 4 * i)) & 0xf) as usize];
    }
}

/// One log entry as it is written and sent as an event: the bytes `LogEntry` serialises
/// to (its number, time and importance, then the event's own fields, the tag first),
/// written without serde's flattening, which costs several times the rest.
pub fn entry_json(entry: &LogEntry) -> String {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"seq\":");
    write_number(&mut out, entry.seq);
    out.extend_from_slice(b",\"time_ms\":");
    write_number(&mut out, entry.time_ms);
    if let Some(importance) = entry.importance {
        out.extend_from_slice(b",\"importance\":\"");
        out.extend_from_slice(importance.as_str().as_bytes());
        out.push(b'"');
    }
    let event_start = out.len();
    serde_json::to_writer(&mut out, &entry.event).expect("events serialise");
    if out.len() > event_start + 2 {
        out[event_start] = b','; // in place of the event's own `{`
    } else {
        // An event of no fields at all (`{}`): the entry ends with its head.
        out.truncate(event_start);
        out.push(b'}');
    }
    String::from_utf8(out).expect("serde_json writes UTF-8")
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
    if !checksum_matches(sum, body) {
        return Err(damaged("its checksum does not match".into()));
    }
    if let Some(record) = one_entry(body) {
        return Ok(record);
    }
    let record = match std::str::from_utf8(body).ok().and_then(scan::own_shape) {
        Some(record) => record,
        None => read_whole(body).map_err(|e| damaged(format!("unreadable: {e}")))?,
    };
    if record.base.is_some() && record.state.is_none() {
        return Err(damaged("a base record without a state".into()));
    }
    let mut last = None;
    for (head, _) in record.entries.iter() {
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
    Ok(record)
}

/// A record's body read by serde: any field order, any whitespace.
fn read_whole(body: &[u8]) -> Result<Record<'_>, serde_json::Error> {
    let record: RecordIn<'_> = serde_json::from_slice(body)?;
    Ok(Record {
        next_seq: record.next_seq,
        from_seq: record.from_seq,
        base: record.base,
        state: record.state.map(RawValue::get),
        entries: record.entries.0,
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
    /// The journal ends with a clean-close record (`clean_close_record`): the session that
    /// wrote it recorded every change that took effect.
    pub clean_close: bool,
}

/// The record a session appends as it ends with nothing waiting for storage: a change
/// record of no entries and no state, which no change writes (a change always logs or
/// persists something), readable by any version of this journal. A journal that ends with
/// one proves that nothing narrowed was lost; a host that keeps no events needs that proof
/// (`task`). The next session's first record follows it.
pub fn clean_close_record(next_seq: u64, from_seq: Option<u64>) -> Vec<u8> {
    change_record(next_seq, from_seq, &[], None)
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
        if let (Ok(record), true) = (&record, index + 1 == records.len()) {
            restored.clean_close =
                record.base.is_none() && record.state.is_none() && record.entries.is_empty();
        }
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
        for (head, _) in record.entries.iter() {
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
        let state: Stored = serde_json::from_str(raw).map_err(|e| Damaged {
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
        for (head, raw) in record.entries.iter() {
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
            entries.push(raw.to_string());
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

/// A compaction: the base record that replaces the journal, and its consent records (so
/// the next compaction need not read the base again).
pub struct Compacted {
    pub record: Vec<u8>,
    pub consent: Vec<String>,
}

/// The consent entries of the journal's first record, when it is a base record.
pub fn base_consent(records: &[Vec<u8>]) -> Option<Vec<String>> {
    let first = parse(0, records.first()?).ok()?;
    first.base?;
    Some(
        first
            .entries
            .iter()
            .filter(|(head, _)| is_consent(head))
            .map(|(_, raw)| raw.to_string())
            .collect(),
    )
}

fn is_consent(head: &EntryHead<'_>) -> bool {
    head.kind == "consent_changed" && head.accepted.is_some()
}

/// The base record that replaces the whole journal: `state`, every consent record, and the
/// other entries `retention` keeps (the newest `max_entries`, of the last `max_age_ms`).
///
/// `known_base`, the consent records of the journal's first record when it is a base: if
/// the records after it hold at least `max_entries` other entries, the retention keeps
/// none of the base's others, and the base is not read again.
pub fn compact(
    records: &[Vec<u8>],
    state: &StoredOut<'_>,
    task_state: TaskState,
    now_ms: u64,
    retention: LogRetention,
    known_base: Option<&[String]>,
) -> Result<Compacted, Damaged> {
    let mut next_seq = 0;
    let mut kept: Vec<(u64, u64, bool, &str)> = Vec::new();
    let mut parsed: Vec<Record<'_>> = Vec::with_capacity(records.len());
    for (i, bytes) in records
        .iter()
        .enumerate()
        .skip(usize::from(known_base.is_some()))
    {
        parsed.push(parse(i, bytes)?);
    }
    let newer_others = parsed
        .iter()
        .flat_map(|r| r.entries.iter())
        .filter(|(head, _)| !is_consent(head))
        .count() as u64;
    let base_dropped_whole = retention.max_entries != 0 && newer_others >= retention.max_entries;
    let mut base_consent: Vec<&str> = Vec::new();
    match known_base {
        Some(consent) if base_dropped_whole => {
            base_consent.extend(consent.iter().map(String::as_str));
        }
        Some(_) => parsed.insert(0, parse(0, &records[0])?),
        None => {}
    }
    for raw in &base_consent {
        let head = entry_head(raw).map_err(|e| Damaged {
            record: 0,
            reason: format!("a consent entry is unreadable: {e}"),
        })?;
        kept.push((head.seq, head.time_ms, true, raw));
    }
    for record in &parsed {
        next_seq = record.next_seq;
        for (head, raw) in record.entries.iter() {
            kept.push((head.seq, head.time_ms, is_consent(head), raw));
        }
    }
    if let Some(first) = records.first().filter(|_| parsed.is_empty()) {
        next_seq = parse(0, first)?.next_seq;
    }
    let others = kept.iter().filter(|(_, _, consent, _)| !consent).count() as u64;
    let drop_oldest = match retention.max_entries {
        0 => 0,
        max => others.saturating_sub(max),
    };
    let mut dropped = 0;
    let mut consent = Vec::new();
    let entries: Vec<&str> = kept
        .into_iter()
        .filter(|(_, time_ms, is_consent, raw)| {
            if *is_consent {
                consent.push(raw.to_string());
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
        .map(|(_, _, _, raw)| raw)
        .collect();
    Ok(Compacted {
        record: encode_base(next_seq, task_state, state, &entries),
        consent,
    })
}

#[path = "journal_scan.rs"]
mod scan;
#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
