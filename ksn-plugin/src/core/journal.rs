//! The task log, and how the task's state is kept in the host's storage.
//!
//! Storage is one append-only journal. Each change appends exactly one record: the log
//! entries it caused and, when it changed persistent state, a full snapshot of that state.
//! A record is appended atomically by the host, so a crash loses at most the change being
//! written, and restoring means taking the last snapshot.

use plugin_api::TaskState;
use serde::{Deserialize, Serialize};
use serde_json::{value::RawValue, Value as Json};

use super::{
    consent::{Consent, Source},
    doc::PolicyEntry,
    layers::Layers,
    table::{Setting, Value},
};

pub const JOURNAL_KEY: &str = "journal";

pub use plugin_api::documents::{Changes, Event, LogEntry};

/// The persistent state as it is written: borrowed from the task's state, no copies.
#[derive(Serialize)]
pub struct StoredOut<'a> {
    private_ksn: bool,
    policy: Vec<PolicyOut>,
    local: Vec<LocalOut>,
    consent: &'a Consent,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deferred_policy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_batch_ms: Option<u64>,
}

#[derive(Serialize)]
struct PolicyOut {
    path: &'static str,
    value: Value,
    locked: bool,
}

#[derive(Serialize)]
struct LocalOut {
    path: &'static str,
    value: Value,
    source: Source,
}

/// The persistent state as it is read back: settings layers, consent, and the last known
/// mode.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    pub private_ksn: bool,
    pub policy: Vec<StoredPolicyValue>,
    pub local: Vec<StoredLocalValue>,
    pub consent: Consent,
    #[serde(default)]
    pub deferred_policy: bool,
    #[serde(default)]
    pub last_batch_ms: Option<u64>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredPolicyValue {
    pub path: String,
    pub value: Json,
    pub locked: bool,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredLocalValue {
    pub path: String,
    pub value: Json,
    pub source: Source,
}

impl Stored {
    /// The persistent state to write: settings layers, consent, the mode, whether the
    /// policy has values waiting for Private KSN to go off, and the last batch's time.
    pub fn capture<'a>(
        layers: &Layers,
        consent: &'a Consent,
        private_ksn: bool,
        deferred_policy: bool,
        last_batch_ms: Option<u64>,
    ) -> StoredOut<'a> {
        StoredOut {
            private_ksn,
            deferred_policy,
            last_batch_ms,
            policy: layers
                .policy
                .entries
                .iter()
                .map(|e| PolicyOut {
                    path: e.setting.path(),
                    value: e.value,
                    locked: e.locked,
                })
                .collect(),
            local: Setting::ALL
                .iter()
                .filter_map(|s| {
                    layers.local[s.index()].map(|(value, source)| LocalOut {
                        path: s.path(),
                        value,
                        source,
                    })
                })
                .collect(),
            consent,
        }
    }

    pub fn layers(&self) -> Result<Layers, String> {
        let setting = |path: &str, value: &Json| {
            let setting =
                Setting::from_path(path).ok_or_else(|| format!("unknown setting {path}"))?;
            let value = setting
                .parse_value(value)
                .map_err(|e| format!("{path}: {e}"))?;
            Ok::<_, String>((setting, value))
        };
        let mut layers = Layers::default();
        for p in &self.policy {
            let (setting, value) = setting(&p.path, &p.value)?;
            layers.policy.entries.push(PolicyEntry {
                setting,
                value,
                locked: p.locked,
            });
        }
        layers.policy.entries.sort_by_key(|e| e.setting);
        for l in &self.local {
            let (setting, value) = setting(&l.path, &l.value)?;
            layers.set_local(setting, value, l.source);
        }
        Ok(layers)
    }
}

#[derive(Deserialize)]
struct RecordIn<'a> {
    first_seq: u64,
    /// Parsed only for the record whose snapshot is used.
    #[serde(default, borrow)]
    state: Option<&'a RawValue>,
    #[serde(borrow)]
    entries: &'a RawValue,
}

/// One journal record, as bytes for the host's storage: the entries (already serialised,
/// as they were sent as events) and the state snapshot if the change altered it.
pub fn encode_record(first_seq: u64, entries: &[String], state: Option<&StoredOut<'_>>) -> Vec<u8> {
    use std::io::Write;
    let size =
        entries.iter().map(|e| e.len() + 1).sum::<usize>() + if state.is_some() { 512 } else { 32 };
    let mut out = Vec::with_capacity(size);
    let _ = write!(out, "{{\"first_seq\":{first_seq},");
    if let Some(state) = state {
        out.extend_from_slice(b"\"state\":");
        serde_json::to_writer(&mut out, state).expect("state serialises");
        out.push(b',');
    }
    out.extend_from_slice(b"\"entries\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entry.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

pub fn entry_json(entry: &LogEntry) -> String {
    serde_json::to_string(entry).expect("log entries serialise")
}

/// What a journal restores to.
#[derive(Debug, Default, PartialEq)]
pub struct Restored {
    pub state: Option<Stored>,
    pub next_seq: u64,
    /// The task's state as the log last recorded it.
    pub last_task_state: Option<TaskState>,
}

/// Just enough of a log entry to follow the task's state.
#[derive(Deserialize)]
struct StateLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    to: Option<TaskState>,
}

/// Reads the journal from the end: the last snapshot, and where numbering resumes.
pub fn restore(records: &[Vec<u8>]) -> Result<Restored, String> {
    let mut restored = Restored::default();
    for (index, bytes) in records.iter().enumerate().rev() {
        let record: RecordIn<'_> = serde_json::from_slice(bytes)
            .map_err(|e| format!("journal record {index} is unreadable: {e}"))?;
        if index + 1 == records.len() {
            let count = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(record.entries.get())
                .map_err(|e| format!("journal record {index} is unreadable: {e}"))?
                .len();
            restored.next_seq = record.first_seq + count as u64;
        }
        if restored.last_task_state.is_none() {
            let lines: Vec<StateLine> = serde_json::from_str(record.entries.get())
                .map_err(|e| format!("journal record {index} is unreadable: {e}"))?;
            restored.last_task_state = lines
                .iter()
                .rev()
                .find(|l| l.kind == "state_changed")
                .and_then(|l| l.to);
        }
        if let (None, Some(raw)) = (&restored.state, record.state) {
            let state = serde_json::from_str(raw.get())
                .map_err(|e| format!("journal record {index} holds an unreadable state: {e}"))?;
            restored.state = Some(state);
        }
        if restored.state.is_some() && restored.last_task_state.is_some() {
            break;
        }
    }
    Ok(restored)
}

/// The whole task log as one JSON array, oldest first, without re-parsing entries.
pub fn log_json(records: &[Vec<u8>]) -> Result<String, String> {
    let mut out = String::from("[");
    for (index, bytes) in records.iter().enumerate() {
        let record: RecordIn<'_> = serde_json::from_slice(bytes)
            .map_err(|e| format!("journal record {index} is unreadable: {e}"))?;
        let inner = record.entries.get().trim();
        let inner = inner[1..inner.len() - 1].trim();
        if !inner.is_empty() {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(inner);
        }
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::consent::{Acceptance, Statement};
    use plugin_api::{LicenseState, Service};

    fn entry(seq: u64, event: Event) -> String {
        entry_json(&LogEntry {
            seq,
            time_ms: seq * 10,
            event,
        })
    }

    #[test]
    fn restore_takes_the_last_snapshot_and_resumes_numbering() {
        let mut layers = Layers::default();
        layers.set_local(Setting::ChecksumLimitMb, Value::Int(7), Source::Local);
        let consent = Consent {
            ksn: Some(Acceptance {
                statement: Statement::Ksn,
                version: 1,
                source: Source::Local,
                time_ms: 3,
                record: 1,
            }),
            ..Consent::default()
        };
        let empty = Consent::default();
        let first = Stored::capture(&Layers::default(), &empty, false, false, None);
        let second = Stored::capture(&layers, &consent, true, true, Some(60_000));
        let second_read: Stored =
            serde_json::from_str(&serde_json::to_string(&second).unwrap()).unwrap();
        let records = vec![
            encode_record(
                0,
                &[entry(0, Event::PrivateKsnChanged { enabled: false })],
                Some(&first),
            ),
            encode_record(
                1,
                &[
                    entry(1, Event::PrivateKsnChanged { enabled: true }),
                    entry(
                        2,
                        Event::LicenseChanged {
                            license: LicenseState::VALID,
                        },
                    ),
                ],
                Some(&second),
            ),
            encode_record(
                3,
                &[entry(
                    3,
                    Event::KsnRestored {
                        service: Service::GLOBAL,
                    },
                )],
                None,
            ),
            encode_record(4, &[], Some(&second)),
        ];
        let restored = restore(&records).unwrap();
        assert_eq!(
            restored.next_seq, 4,
            "a record without entries keeps the numbering"
        );
        let state = restored.state.unwrap();
        assert_eq!(state, second_read);
        assert_eq!(state.layers().unwrap(), layers);

        let log: Vec<Json> = serde_json::from_str(&log_json(&records).unwrap()).unwrap();
        assert_eq!(log.len(), 4);
        assert_eq!(log[2]["type"], "license_changed");
        assert_eq!(log[2]["license"], "valid");
        assert_eq!(log[3]["seq"], 3);
    }

    #[test]
    fn an_empty_journal_restores_to_defaults() {
        assert_eq!(restore(&[]).unwrap(), Restored::default());
        assert_eq!(log_json(&[]).unwrap(), "[]");
    }

    #[test]
    fn a_damaged_record_is_reported_not_skipped() {
        let err = restore(&[b"{\"first_seq\":".to_vec()]).unwrap_err();
        assert!(err.contains("record 0"), "{err}");
    }
}
