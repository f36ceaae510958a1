//! The task log: every change of settings, consent and state, every error and detection.
//! The same entries reach the host as events (`HostServices::emit_event`), in order.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};

use super::settings::{Source, Statement};
use crate::kinds::{
    AnswerSource, DataCategory, ErrorKind, LicenseState, ObjectAction, Service, TaskState,
    TransportFailure, Verdict,
};

/// One entry of the task log, and one event.
///
/// ```
/// use plugin_api::{documents::{read_document, Event, LogEntry}, TaskState};
///
/// let entry: LogEntry = read_document("emit_event",
///     r#"{"seq": 4, "time_ms": 1000, "type": "state_changed", "from": "stopped", "to": "running"}"#,
/// ).unwrap();
/// assert!(matches!(entry.event, Event::StateChanged { to: TaskState::RUNNING, .. }));
///
/// // A type a newer plugin sends is kept as it is, not refused.
/// let newer: LogEntry = read_document("emit_event",
///     r#"{"seq": 5, "time_ms": 1001, "type": "quantum_scan", "qubits": 3}"#).unwrap();
/// assert_eq!(newer.event.type_name(), "quantum_scan");
///
/// // A known type with the wrong shape is an error that says where.
/// let err = read_document::<LogEntry>("emit_event",
///     r#"{"seq": 6, "time_ms": 1002, "type": "state_changed", "from": "stopped"}"#).unwrap_err();
/// assert!(err.to_string().contains("missing field `to`"), "{err}");
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Numbered from 0, increasing, for the life of the task's storage. A gap is entries
    /// that reached the host as events but that storage never recorded (see
    /// `journal_reconciled` and `entries_not_recorded`); no number is used twice.
    pub seq: u64,
    /// Host time (milliseconds), never going backwards.
    pub time_ms: u64,
    /// How much it matters to an administrator, as the plugin judges it (added in 1.3.0;
    /// absent from an older plugin's entries: see [`LogEntry::importance`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "Importance::lenient_option"
    )]
    pub importance: Option<Importance>,
    #[serde(flatten)]
    pub event: Event,
}

impl LogEntry {
    /// An entry the plugin judged `importance`.
    pub fn new(seq: u64, time_ms: u64, importance: Importance, event: Event) -> Self {
        Self {
            seq,
            time_ms,
            importance: Some(importance),
            event,
        }
    }

    /// Its importance: the plugin's, or for an entry without one (an older plugin's) the
    /// contract's default for its event.
    pub fn importance(&self) -> Importance {
        self.importance
            .unwrap_or_else(|| Importance::default_for(&self.event))
    }
}

/// How much an event matters, as a management server sorts them: the four importances of
/// the security center's events, least first.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Importance {
    Info,
    Warning,
    FunctionalFailure,
    Critical,
}

impl Importance {
    /// Every importance, least first.
    pub const ALL: [Importance; 4] = [
        Importance::Info,
        Importance::Warning,
        Importance::FunctionalFailure,
        Importance::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Info => "info",
            Importance::Warning => "warning",
            Importance::FunctionalFailure => "functional_failure",
            Importance::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == name)
    }

    /// The importance of an event whose plugin states none (one built before 1.3.0): a
    /// task error is a functional failure; anything else is info.
    pub fn default_for(event: &Event) -> Self {
        match event {
            Event::TaskError { .. } => Importance::FunctionalFailure,
            _ => Importance::Info,
        }
    }

    /// Reads an importance a plugin wrote; one this contract does not know (a newer
    /// plugin's) reads as none, so the default for its event applies.
    pub fn lenient_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Self>, D::Error> {
        let name = Option::<Cow<'de, str>>::deserialize(d)?;
        Ok(name.and_then(|n| Self::from_name(&n)))
    }
}

impl std::fmt::Display for Importance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to the task, tagged by `type`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
#[schemars(transform = other_types_too)]
pub enum Event {
    StateChanged {
        #[serde(deserialize_with = "TaskState::lenient")]
        from: TaskState,
        #[serde(deserialize_with = "TaskState::lenient")]
        to: TaskState,
        /// Why, when it is not an operation on the task (`host_restarted`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'static, str>>,
    },
    TaskError {
        #[serde(deserialize_with = "ErrorKind::lenient")]
        kind: ErrorKind,
        message: String,
    },
    /// Effective values that changed, by dotted path.
    SettingsChanged {
        #[serde(deserialize_with = "Source::lenient")]
        source: Source,
        before: Changes,
        after: Changes,
    },
    PolicyApplied {
        /// The paths the new policy locks.
        locked: Vec<Cow<'static, str>>,
    },
    /// An acceptance or a withdrawal: the audit trail of consent.
    ConsentChanged {
        statement: Statement,
        /// The version of the statement's text accepted or withdrawn.
        version: u32,
        accepted: bool,
        #[serde(deserialize_with = "Source::lenient")]
        source: Source,
        /// Set for a partial withdrawal or re-acceptance of one data category.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "DataCategory::lenient_option"
        )]
        category: Option<DataCategory>,
        /// Set when this acceptance ended only because the acceptance it needs, of this
        /// statement, ended (Managed Protection needs the KSN statement); `source` is then
        /// how that one ended (added in 1.3.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with_statement: Option<Statement>,
    },
    /// A policy's acceptance is not in force: it names another version of the statement
    /// than this plugin ships (`version`), or no version of the statement the box accepts
    /// in the device's mode (`version` absent). The box reads what it read before (added
    /// in 1.3.0).
    AcceptanceNotInForce {
        statement: Statement,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        /// The version this plugin ships, which an acceptance must name.
        current_version: u32,
        #[serde(deserialize_with = "Source::lenient")]
        source: Source,
    },
    PrivateKsnChanged {
        enabled: bool,
    },
    LicenseChanged {
        #[serde(deserialize_with = "LicenseState::lenient")]
        license: LicenseState,
    },
    /// An operation was refused; nothing else changed.
    OperationRefused {
        operation: Cow<'static, str>,
        #[serde(deserialize_with = "ErrorKind::lenient")]
        kind: ErrorKind,
        message: String,
    },
    /// A file or URL was found untrusted, and what was done.
    ObjectUntrusted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        md5: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(deserialize_with = "Verdict::lenient")]
        verdict: Verdict,
        #[serde(deserialize_with = "AnswerSource::lenient")]
        source: AnswerSource,
        #[serde(deserialize_with = "ObjectAction::lenient")]
        action: ObjectAction,
        /// The host's handle of the object (`check_object`), if it gave one (added in
        /// 1.3.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object: Option<u64>,
        /// The object's path as the host gave it, if it did (added in 1.3.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Why the action failed (`delete_failed`): the host's reason (added in 1.3.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    KsnUnavailable {
        #[serde(deserialize_with = "Service::lenient")]
        service: Service,
        #[serde(deserialize_with = "TransportFailure::lenient")]
        reason: TransportFailure,
    },
    KsnRestored {
        #[serde(deserialize_with = "Service::lenient")]
        service: Service,
    },
    /// A send the consent in force did not allow was stopped at the gate.
    EgressRefused {
        #[serde(deserialize_with = "DataCategory::lenient")]
        category: DataCategory,
        #[serde(deserialize_with = "Service::lenient")]
        service: Service,
        reason: Cow<'static, str>,
    },
    /// Storage takes records again: the changes that took effect while it refused them
    /// (withdrawals and the like, which never wait for storage) are now recorded.
    StorageRecovered {
        records: u64,
    },
    /// At task creation the journal lacked entries `first_seq..=last_seq`, which took effect
    /// but which storage never recorded before the host restarted; from the events the host
    /// held for it, the task applied again the `applied` that only narrow what may leave
    /// (withdrawals, mode and licence reports, stops) and logged the detections and
    /// refusals, each at its original time (added in 1.3.0).
    JournalReconciled {
        first_seq: u64,
        last_seq: u64,
        applied: u64,
    },
    /// While storage refused writes, more records waited than the task keeps: `entries`
    /// entries (detections, refusals) reached the host as events but not the log (added
    /// in 1.3.0).
    EntriesNotRecorded {
        entries: u64,
    },
    /// A change that narrows and widens at once could not be recorded: its narrowing part
    /// took effect, and `waiting` (in words) is applied once storage records it (added in
    /// 1.3.0).
    ChangeWaiting {
        operation: Cow<'static, str>,
        waiting: String,
    },
    /// The waiting part of an earlier change was dropped, because a later change took
    /// effect before it could be recorded (added in 1.3.0).
    ChangeDropped {
        operation: Cow<'static, str>,
        reason: String,
    },
    /// A type this contract does not know (from a newer plugin), kept whole.
    #[serde(skip)]
    Other(Map<String, Json>),
}

impl Event {
    /// The `type` tag (`state_changed`).
    pub fn type_name(&self) -> Cow<'_, str> {
        match self {
            Event::Other(fields) => {
                Cow::Borrowed(fields.get("type").and_then(Json::as_str).unwrap_or(""))
            }
            known => match Event::serialize(known, serde_json::value::Serializer) {
                Ok(Json::Object(fields)) => match fields.get("type") {
                    Some(Json::String(name)) => Cow::Owned(name.clone()),
                    _ => Cow::Borrowed(""),
                },
                _ => Cow::Borrowed(""),
            },
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Event::Other(fields) => fields.serialize(serializer),
            known => Event::serialize(known, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Json>::deserialize(deserializer)?;
        let tag = fields
            .get("type")
            .cloned()
            .ok_or_else(|| D::Error::missing_field("type"))?;
        // The tag alone tells a known type (which may then lack fields) from one this
        // contract does not know.
        let known = match Event::deserialize(serde_json::json!({ "type": tag })) {
            Ok(_) => true,
            Err(e) => !e.to_string().starts_with("unknown variant"),
        };
        if !known {
            return Ok(Event::Other(fields));
        }
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(Json::Object(fields), &mut track);
        Event::deserialize(tracked).map_err(|e| {
            let path = track.path().to_string();
            if path == "." {
                D::Error::custom(e)
            } else {
                D::Error::custom(format_args!("{path}: {e}"))
            }
        })
    }
}

/// The schema of every known type, and of the types a newer plugin may add (any other
/// `type`, with any fields): a host validating entries does not refuse a newer plugin's.
fn other_types_too(schema: &mut Schema) {
    let Some(variants) = schema.get_mut("oneOf").and_then(Json::as_array_mut) else {
        return;
    };
    let known: Vec<Json> = variants
        .iter()
        .filter_map(|v| v.pointer("/properties/type/const").cloned())
        .collect();
    variants.push(serde_json::json!({
        "description": "a type from a newer plugin, kept whole",
        "type": "object",
        "properties": {"type": {"type": "string", "not": {"enum": known}}},
        "required": ["type"],
    }));
}

/// Settings by dotted path, written as a JSON object, in the plugin's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes(pub Vec<(Cow<'static, str>, Json)>);

impl Changes {
    pub fn get(&self, path: &str) -> Option<&Json> {
        self.0.iter().find(|(p, _)| p == path).map(|(_, v)| v)
    }
}

impl Serialize for Changes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(path, value)| (path, value)))
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Json>::deserialize(d)?;
        Ok(Changes(
            map.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect(),
        ))
    }
}

impl JsonSchema for Changes {
    fn schema_name() -> Cow<'static, str> {
        "Changes".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "description": "values by dotted setting path"})
    }
}

/// One page of the task log (`task_log_page`): the entries from a sequence number on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// Where the next page starts (the `seq` after the last entry of this page).
    pub next_seq: u64,
    /// The oldest entry still kept: older ones were dropped by the log's retention, but for
    /// consent records, which are kept for ever.
    pub oldest_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{read_document, LedgerItem};

    #[test]
    fn a_value_a_newer_contract_added_reads_as_unrecognised_not_as_an_error() {
        let entry: LogEntry = read_document(
            "task_log_json",
            r#"{"seq": 4, "time_ms": 9, "type": "operation_refused", "operation": "start",
                "kind": "quota_exceeded", "message": "m"}"#,
        )
        .unwrap();
        match entry.event {
            Event::OperationRefused { kind, .. } => {
                assert_eq!(kind, ErrorKind::UNRECOGNISED);
                assert_eq!(kind.as_str(), "unrecognised");
            }
            other => panic!("{other:?}"),
        }
        let entry: LogEntry = read_document(
            "task_log_json",
            r#"{"seq": 5, "time_ms": 9, "type": "consent_changed", "statement": "ksn",
                "version": 1, "accepted": false, "source": "local", "category": "telemetry"}"#,
        )
        .unwrap();
        assert!(matches!(
            entry.event,
            Event::ConsentChanged {
                category: Some(DataCategory::UNRECOGNISED),
                ..
            }
        ));
        let item: LedgerItem = read_document(
            "ledger_json",
            r#"{"seq": 0, "time_ms": 1, "category": "files", "service": "edge", "items": 1,
                "bytes": 24, "consent_record": 3, "outcome": "answered"}"#,
        )
        .unwrap();
        assert_eq!(item.service, Service::UNRECOGNISED);
    }

    #[test]
    fn a_known_field_of_the_wrong_type_is_still_an_error() {
        let err = read_document::<LogEntry>(
            "task_log_json",
            r#"{"seq": 4, "time_ms": 9, "type": "task_error", "kind": 3, "message": "m"}"#,
        )
        .unwrap_err();
        assert!(err.reason.contains("invalid type: integer `3`"), "{err}");
    }
}
