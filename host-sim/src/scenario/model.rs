//! The scenario file format (SPEC §4): parsed strictly, every unknown step or key an error
//! that names its place.

use std::collections::BTreeMap;

use plugin_api::{ErrorKind, LogRetention, Service, TaskState};
// Paths quote odd keys, and errors stay on one line, exactly as in the plugin's own errors.
use plugin_api::documents::path::{did_you_mean, join, one_line};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::{json, Value as Json};

pub use crate::steps::Action;
use crate::{
    consumers::LaunchControlSpec,
    network::{DatabaseSpec, KsnSpec},
    schemas::schema,
    world::{admin::Target, GroupSpec},
};
use admin_server::{EventRules, ServerErrorKind, Status, StatusRules};

/// A scenario file (SPEC §4).
#[derive(Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioHead {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Every step runs on this many devices (task instances of one loaded library): the
    /// root group's, "Managed devices" (default 1, or 0 when `groups` holds devices).
    #[serde(default)]
    #[schemars(range(min = 0))]
    devices: Option<usize>,
    /// Administration groups below the root, each with its devices and subgroups.
    #[serde(default)]
    groups: Vec<GroupSpec>,
    /// The Administration Server: its event store, status thresholds, sync interval.
    #[serde(default)]
    server: ServerSpec,
    /// The KSN services' databases (default: tests/data/ksn-database.json).
    #[serde(default)]
    ksn: Option<KsnSpec>,
    #[serde(default)]
    local_lists: DatabaseSpec,
    #[serde(default)]
    launch_control: LaunchControlSpec,
    /// How much of the task log the host asks the plugin to keep (default: the
    /// contract's, 10,000 entries of the last 90 days).
    #[serde(default)]
    log_retention: Option<RetentionSpec>,
    /// The host's services as each device gives them to its task.
    #[serde(default)]
    host: HostSpec,
    /// Devices that start on another plugin library than the host's own (a fleet in the
    /// middle of an update, or of two plugins).
    #[serde(default)]
    plugins: Vec<PluginsSpec>,
    /// Required, and an array; `parse` reads its steps one by one.
    #[schemars(schema_with = "steps_schema")]
    #[allow(dead_code)]
    steps: Vec<Json>,
}

/// The schema of `steps`: each a `do` step or an `expect`.
fn steps_schema(generator: &mut SchemaGenerator) -> Schema {
    let action = generator.subschema_for::<Action>().to_value();
    let expect = generator.subschema_for::<Expect>().to_value();
    schema(json!({
        "type": "array",
        "items": {"oneOf": [
            action,
            {
                "type": "object",
                "properties": {"expect": expect},
                "required": ["expect"],
                "additionalProperties": false,
            },
        ]},
    }))
}

/// The schema of `expect.received`: counts by service.
fn received_schema(generator: &mut SchemaGenerator) -> Schema {
    let counts = generator.subschema_for::<ReceivedExpect>().to_value();
    schema(json!({
        "type": "object",
        "propertyNames": {"enum": ["global", "proxy", "private"]},
        "additionalProperties": counts,
    }))
}

/// Devices started on a plugin library: by number (`devices`), or every device of a group
/// and its subgroups (`group`).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PluginsSpec {
    /// A library's name (`fixture_updated_plugin`, looked for the way the plugin is) or
    /// path.
    pub library: String,
    #[serde(default)]
    pub devices: Vec<usize>,
    #[serde(default)]
    pub group: Option<String>,
}

/// How the scenario's Administration Server is configured.
#[derive(Deserialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    #[serde(default)]
    pub events: Option<EventsSpec>,
    #[serde(default)]
    pub status: Option<StatusRules>,
    /// How often devices that hold no connection synchronise (default 15).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub sync_interval_minutes: Option<u64>,
}

/// The server's event store: at most `cap` events (default 400,000); when the count
/// reaches `cap + headroom` (default 10,000) the oldest go, down to the cap; `terms_days`
/// keeps each listed type that many days of host time (0: never stored).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    #[serde(default = "default_cap")]
    pub cap: usize,
    #[serde(default = "default_headroom")]
    pub headroom: usize,
    #[serde(default)]
    pub terms_days: BTreeMap<String, u64>,
}

fn default_cap() -> usize {
    EventRules::default().cap
}

fn default_headroom() -> usize {
    EventRules::default().headroom
}

/// What the host gives each task beyond the contract's required services.
#[derive(Deserialize, JsonSchema, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The host keeps each task's events apart from its storage and answers
    /// `events_since` (default true); false: a host that keeps none, which the contract
    /// allows (the C++ wrapper's default), where the plugin has only its journal to go by.
    #[serde(default = "keeps_events")]
    pub keeps_events: bool,
}

fn keeps_events() -> bool {
    true
}

impl Default for HostSpec {
    fn default() -> Self {
        Self { keeps_events: true }
    }
}

/// The host's retention of task-log entries; consent records are kept whatever it says.
/// Zero means no limit of that kind.
#[derive(Deserialize, JsonSchema, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    #[serde(default = "default_max_entries")]
    pub max_entries: u64,
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u64,
}

fn default_max_entries() -> u64 {
    LogRetention::DEFAULT.max_entries
}

fn default_max_age_days() -> u64 {
    LogRetention::DEFAULT.max_age_ms / DAY_MS
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

impl RetentionSpec {
    pub fn retention(self) -> LogRetention {
        LogRetention {
            max_entries: self.max_entries,
            max_age_ms: self.max_age_days.saturating_mul(DAY_MS),
        }
    }
}

#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// Devices in the root group.
    pub devices: usize,
    pub groups: Vec<GroupSpec>,
    pub event_rules: EventRules,
    pub status_rules: StatusRules,
    pub sync_interval_ms: u64,
    /// `None`: the bundled default database.
    pub ksn: Option<KsnSpec>,
    pub local_lists: DatabaseSpec,
    /// The rules of the simulated application launch control task.
    pub launch_control: LaunchControlSpec,
    pub log_retention: LogRetention,
    /// Whether the host keeps the tasks' events (`events_since`).
    pub host_keeps_events: bool,
    /// Devices started on another library than the host's own.
    pub plugins: Vec<crate::world::DevicePlugins>,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Whether an expectation reads every event since the last `reset_counters`
    /// (`events_include`, `events_exclude`), so that the devices must keep them.
    pub fn reads_every_event(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(s, Step::Expect(e) if e.events_include.is_some() || e.events_exclude.is_some())
        })
    }
}

/// The kind of error a step must fail with: one of the plugin's (`ErrorKind`) or of the
/// server's (`ServerErrorKind`); `invalid_settings` is both (a document refused by the
/// plugin or by the policy editor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedError(&'static str);

impl ExpectedError {
    /// Every kind a step may expect.
    pub fn names() -> Vec<&'static str> {
        let mut names = ErrorKind::names();
        for kind in ServerErrorKind::ALL {
            if !names.contains(&kind.as_str()) {
                names.push(kind.as_str());
            }
        }
        names
    }

    fn read(value: &Json, path: &str) -> Result<Self, String> {
        let names = Self::names();
        let Some(text) = value.as_str() else {
            return Err(format!(
                "{path}: expected an error kind, one of {}",
                names.join(", ")
            ));
        };
        match names.iter().find(|n| **n == text) {
            Some(name) => Ok(Self(name)),
            None => Err(format!(
                "{path}: unknown error kind {text:?}{}; expected one of {}",
                did_you_mean(text, names.iter().copied()),
                names.join(", ")
            )),
        }
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// Whether a plugin's error is of this kind.
    pub fn is_plugins(self, kind: ErrorKind) -> bool {
        kind.to_string() == self.0
    }

    /// Whether a refusal of the server's is of this kind.
    pub fn is_servers(self, kind: ServerErrorKind) -> bool {
        kind.as_str() == self.0
    }
}

impl std::fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    Do {
        action: Action,
        expect_error: Option<ExpectedError>,
        /// The devices it addresses (`None`: all).
        on: Option<Target>,
    },
    Expect(Box<Expect>),
}

#[derive(Deserialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The devices checked (default all).
    #[serde(default)]
    pub on: Option<Target>,
    #[serde(default)]
    pub state: Option<TaskState>,
    /// The plugin the device runs: its version (`1.1.0`), or its name and version
    /// (`ksn-usage-task 1.1.0`).
    #[serde(default)]
    pub plugin: Option<String>,
    /// `Some(None)`: the key was there with `null` (no error).
    #[serde(default, deserialize_with = "present")]
    #[schemars(schema_with = "crate::schemas::error_or_null")]
    pub error: Option<Option<ErrorKind>>,
    #[serde(default)]
    pub network: Option<Service>,
    #[serde(default)]
    pub settings: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    pub locked: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(schema_with = "received_schema")]
    pub received: Option<BTreeMap<String, ReceivedExpect>>,
    #[serde(default)]
    pub events_include: Option<Vec<Json>>,
    /// Partial events none of which may match an event since the last `reset_counters`
    /// (nothing of that kind happened).
    #[serde(default)]
    pub events_exclude: Option<Vec<Json>>,
    /// Partial entries that must be in the task log as the plugin reads it back from
    /// storage (which, unlike the host's event record, survives `restart_host`).
    #[serde(default)]
    pub log_include: Option<Vec<Json>>,
    /// Partial entries none of which may match an entry of the task log.
    #[serde(default)]
    pub log_exclude: Option<Vec<Json>>,
    /// The task log holds at most this many entries (the host's retention at work).
    #[serde(default)]
    pub log_entries_at_most: Option<u64>,
    /// Where each effective setting comes from, by dotted path: a partial object of
    /// `{group, policy, revision, profile, locked, overrides}` that must match, or `null`
    /// for a setting no policy sets.
    #[serde(default)]
    pub provenance: Option<BTreeMap<String, Json>>,
    /// The device's status as the server shows it.
    #[serde(default)]
    pub status: Option<Status>,
    /// How many events of each importance the server's store holds from the device since
    /// the last `reset_counters` (each count given must be exact).
    #[serde(default)]
    pub events: Option<EventCounts>,
}

#[derive(Deserialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct EventCounts {
    #[serde(default)]
    pub critical: Option<u64>,
    #[serde(default)]
    pub functional_failure: Option<u64>,
    #[serde(default)]
    pub warning: Option<u64>,
    #[serde(default)]
    pub info: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Deserialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ReceivedExpect {
    #[serde(default)]
    pub files: Option<u64>,
    #[serde(default)]
    pub urls: Option<u64>,
    #[serde(default)]
    pub statistics: Option<u64>,
    #[serde(default)]
    pub kmp: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Deserialises `value` as `T`, naming the place of an error below `path`.
fn strict<T: DeserializeOwned>(value: &Json, path: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut place = path.to_string();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    place.push_str(&format!("[{index}]"))
                }
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => place = join(&place, key),
                serde_path_to_error::Segment::Unknown => place.push_str(".?"),
            }
        }
        if place.is_empty() {
            place = "scenario".into();
        }
        one_line(&format!("{place}: {}", e.inner()))
    })
}

/// A scenario document's fields, and its steps parsed one at a time as the text is read:
/// a step is a tree of values only while it is parsed, so that a long scenario's peak
/// memory is its text and its parsed steps, not a tree of the whole document.
struct Document {
    fields: serde_json::Map<String, Json>,
    steps: Option<StepsField>,
}

enum StepsField {
    /// An array: its steps, or the first step's error.
    Parsed(Result<Vec<Step>, String>),
    /// Anything else, for the head to refuse.
    Other(Json),
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Document;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scenario object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Document, A::Error> {
                let mut doc = Document {
                    fields: serde_json::Map::new(),
                    steps: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if doc.fields.contains_key(&key) || key == "steps" && doc.steps.is_some() {
                        return Err(serde::de::Error::custom(format_args!(
                            "the key {key:?} is given twice"
                        )));
                    }
                    if key == "steps" {
                        doc.steps = Some(map.next_value::<StepsField>()?);
                    } else {
                        let crate::json::Unique(value) = map.next_value()?;
                        doc.fields.insert(key, value);
                    }
                }
                Ok(doc)
            }
        }
        d.deserialize_map(Fields)
    }
}

impl<'de> Deserialize<'de> for StepsField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Steps;
        impl<'de> serde::de::Visitor<'de> for Steps {
            type Value = StepsField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of steps")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StepsField, A::Error> {
                let mut steps = Vec::new();
                let mut index = 0;
                while let Some(crate::json::Unique(raw)) = seq.next_element()? {
                    match parse_step(&raw, &format!("steps[{index}]")) {
                        Ok(step) => steps.push(step),
                        Err(e) => {
                            // The rest is read (it must be JSON), not parsed.
                            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                            return Ok(StepsField::Parsed(Err(e)));
                        }
                    }
                    index += 1;
                }
                Ok(StepsField::Parsed(Ok(steps)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StepsField, A::Error> {
                Json::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(StepsField::Other)
            }
            fn visit_bool<E>(self, v: bool) -> Result<StepsField, E> {
                Ok(StepsField::Other(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StepsField, E> {
                Ok(StepsField::Other(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StepsField, E> {
                Ok(StepsField::Other(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<StepsField, E> {
                Ok(StepsField::Other(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<StepsField, E> {
                Ok(StepsField::Other(v.into()))
            }
            fn visit_unit<E>(self) -> Result<StepsField, E> {
                Ok(StepsField::Other(Json::Null))
            }
        }
        d.deserialize_any(Steps)
    }
}

fn malformed(e: serde_json::Error) -> String {
    // serde_json ends its message with the place; put the place first, once.
    let place = format!("line {} column {}", e.line(), e.column());
    let reason = e.to_string();
    format!(
        "{place}: malformed JSON: {}",
        reason.trim_end_matches(&format!(" at {place}"))
    )
}

/// Parses a scenario document.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let Document { mut fields, steps } = match serde_json::from_str::<Document>(text) {
        Ok(document) => document,
        Err(e) if e.to_string().contains("is given twice") => return Err(malformed(e)),
        Err(_) => {
            // Not an object, or not JSON: the whole tree says which, and where.
            let doc: Json = serde_json::from_str(text).map_err(malformed)?;
            strict::<ScenarioHead>(&doc, "")?;
            return Err("scenario: expected an object".into());
        }
    };
    // The head is checked first, then the steps; anything but an array is the head's to
    // refuse.
    let parsed_steps = match steps {
        Some(StepsField::Parsed(steps)) => {
            fields.insert("steps".into(), Json::Array(Vec::new()));
            steps
        }
        Some(StepsField::Other(value)) => {
            fields.insert("steps".into(), value);
            Ok(Vec::new())
        }
        None => Ok(Vec::new()),
    };
    let head: ScenarioHead = strict(&Json::Object(fields), "")?;
    fn count(groups: &[GroupSpec]) -> usize {
        groups.iter().map(|g| g.devices + count(&g.groups)).sum()
    }
    let in_groups = count(&head.groups);
    let devices = head.devices.unwrap_or(if in_groups > 0 { 0 } else { 1 });
    if devices + in_groups == 0 {
        return Err("devices: must be at least 1 (in the root group or in groups)".into());
    }
    let steps = parsed_steps?;
    for (n, p) in head.plugins.iter().enumerate() {
        if p.devices.is_empty() == p.group.is_none() {
            return Err(format!(
                "plugins[{n}]: name the devices (\"devices\": [n, ...]) or a group (\"group\": path), one of them"
            ));
        }
        if let Some(d) = p.devices.iter().find(|d| **d >= devices + in_groups) {
            return Err(format!(
                "plugins[{n}].devices: no device {d} (the scenario has {} devices, 0 to {})",
                devices + in_groups,
                devices + in_groups - 1
            ));
        }
    }
    let plugins = head
        .plugins
        .iter()
        .map(|p| crate::world::DevicePlugins {
            library: p.library.clone(),
            devices: p.devices.clone(),
            group: p.group.clone(),
        })
        .collect();
    let events = head.server.events.clone();
    let event_rules = match events {
        Some(e) => EventRules {
            cap: e.cap,
            headroom: e.headroom,
            terms_days: e.terms_days,
        },
        None => EventRules::default(),
    };
    Ok(Scenario {
        name: head.name,
        description: head.description,
        devices,
        groups: head.groups,
        event_rules,
        status_rules: head.server.status.unwrap_or_default(),
        sync_interval_ms: head
            .server
            .sync_interval_minutes
            .map_or(admin_server::SYNC_INTERVAL_MS, |m| m.max(1) * 60_000),
        ksn: head.ksn,
        local_lists: head.local_lists,
        launch_control: head.launch_control,
        log_retention: head
            .log_retention
            .map_or(LogRetention::DEFAULT, RetentionSpec::retention),
        host_keeps_events: head.host.keeps_events,
        plugins,
        steps,
    })
}

/// Parses one step (`{"do": ...}` or `{"expect": ...}`); errors name their place below
/// `path`.
pub fn parse_step(raw: &Json, path: &str) -> Result<Step, String> {
    let Some(object) = raw.as_object() else {
        return Err(format!(
            "{path}: a step is an object with \"do\" or \"expect\""
        ));
    };
    match (object.contains_key("do"), object.contains_key("expect")) {
        (true, _) => {
            let mut body = object.clone();
            let expect_error = match body.remove("expect_error") {
                None => None,
                Some(kind) => Some(ExpectedError::read(&kind, &format!("{path}.expect_error"))?),
            };
            let on = match body.remove("on") {
                None => None,
                Some(target) => Some(strict::<Target>(&target, &format!("{path}.on")).map_err(|_| {
                    format!("{path}.on: expected \"all\", {{\"group\": path}}, {{\"device\": n}} or {{\"devices\": [n, ...]}}")
                })?),
            };
            let action: Action = strict(&Json::Object(body), path)
                .map_err(|e| e + &unknown_step_hint(&object["do"]))?;
            action.validate(path)?;
            if on.is_some() && !action.addresses_devices() {
                return Err(format!(
                    "{path}.on: {} changes the server or the network as a whole, not chosen devices: remove \"on\"",
                    action.name()
                ));
            }
            Ok(Step::Do {
                action,
                expect_error,
                on,
            })
        }
        (false, true) => {
            if let Some(extra) = object.keys().find(|k| *k != "expect") {
                return Err(one_line(&format!(
                    "{}: unknown key beside \"expect\"",
                    join(path, extra)
                )));
            }
            let expect: Expect = strict(&object["expect"], &format!("{path}.expect"))?;
            if let Some(received) = &expect.received {
                for service in received.keys() {
                    if !["global", "proxy", "private"].contains(&service.as_str()) {
                        return Err(format!(
                            "{}: unknown service; expected global, proxy or private",
                            join(&format!("{path}.expect.received"), service)
                        ));
                    }
                }
            }
            Ok(Step::Expect(Box::new(expect)))
        }
        (false, false) => Err(format!("{path}: a step needs \"do\" or \"expect\"")),
    }
}

/// "Did you mean …" for a mistyped step name (serde lists the names, but not the nearest).
fn unknown_step_hint(name: &Json) -> String {
    match name.as_str() {
        Some(name) if !Action::NAMES.contains(&name) => {
            did_you_mean(name, Action::NAMES.iter().copied())
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_spec_example_parses() {
        let s = parse(
            r#"{"name": "x", "devices": 1,
                "ksn": {"global": {"files": {"00112233445566778899aabbccddeeff": "untrusted"}, "urls": {}},
                        "private": {"files": {}, "urls": {}}},
                "steps": [
                  {"do": "set_private_ksn", "enabled": true},
                  {"do": "push_policy", "policy": {"settings": {}}},
                  {"do": "start", "expect_error": "statement_not_accepted"},
                  {"expect": {"state": "stopped", "error": null, "network": "none"}},
                  {"do": "check_file", "md5": "00112233445566778899aabbccddeeff", "size_bytes": 10,
                   "expect": {"verdict": "unavailable"}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(s.steps.len(), 5);
        match &s.steps[3] {
            Step::Expect(e) => assert_eq!(e.error, Some(None)),
            other => panic!("{other:?}"),
        }
        match &s.steps[2] {
            Step::Do { expect_error, .. } => {
                assert_eq!(
                    expect_error.map(|e| e.name()),
                    Some("statement_not_accepted")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mistyped_step_gets_the_nearest_name() {
        let e = err(r#"{"name": "x", "steps": [{"do": "strat"}]}"#);
        assert!(
            e.starts_with("steps[0].do: unknown variant `strat`")
                && e.ends_with("; did you mean `start`?"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"do": "chek_url", "url": "u"}]}"#);
        assert!(e.ends_with("; did you mean `check_url`?"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"do": "dance"}]}"#);
        assert!(!e.contains("did you mean"), "{e}");
        // A known step with a bad argument is not a typo of its name.
        let e = err(r#"{"name": "x", "steps": [{"do": "stop", "force": true}]}"#);
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn the_step_names_are_the_actions() {
        let e = err(r#"{"name": "x", "steps": [{"do": "?"}]}"#);
        let (_, listed) = e.split_once("expected one of ").unwrap();
        let listed = listed.split(';').next().unwrap();
        let names: Vec<&str> = listed.split(", ").map(|n| n.trim_matches('`')).collect();
        assert_eq!(names, Action::NAMES);
    }

    #[test]
    fn unknown_steps_and_keys_are_errors_with_their_path() {
        let e = err(r#"{"name": "x", "steps": [{"do": "strat"}]}"#);
        assert!(
            e.starts_with("steps[0]") && e.contains("unknown variant `strat`"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"do": "start", "force": true}]}"#);
        assert!(e.starts_with("steps[0]") && e.contains("force"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"expect": {"colour": 1}}]}"#);
        assert!(
            e.starts_with("steps[0].expect") && e.contains("colour"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"expect": {"state": "flying"}}]}"#);
        assert!(
            e.starts_with("steps[0].expect.state") && e.contains("flying"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"expect": {"received": {"cloud": {}}}}]}"#);
        assert!(e.starts_with("steps[0].expect.received.cloud"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"do": "start", "expect_error": "oops"}]}"#);
        assert!(e.starts_with("steps[0].expect_error"), "{e}");
        let e = err(r#"{"steps": []}"#);
        assert_eq!(e, "scenario: missing field `name`");
        let e = err("null");
        assert!(e.starts_with("scenario: invalid type: null"), "{e}");
        let e = err(r#"{"name": "x", "stepz": []}"#);
        assert!(e.contains("stepz"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{}]}"#);
        assert!(e.starts_with("steps[0]"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"expect": {}, "do": 1}]}"#);
        assert!(e.starts_with("steps[0]"), "{e}");
        let e = err(r#"{"name": "x", "steps": ["#);
        assert!(e.contains("malformed JSON"), "{e}");
        let e =
            err(r#"{"name": "x", "steps": [{"do": "check_file", "md5": "xyz", "size_bytes": 1}]}"#);
        assert!(e.starts_with("steps[0].md5: an MD5 checksum is 32"), "{e}");
        let e = err(
            r#"{"name": "x", "steps": [{"do": "set_network", "service": "none", "up": true}]}"#,
        );
        assert!(e.starts_with("steps[0].service"), "{e}");
        let e = err("{\"name\": \"x\", \"steps\": [{\"expect\": {}, \"\\n\": null}]}");
        assert_eq!(e, r#"steps[0]["\n"]: unknown key beside "expect""#);
        let e = err("{\"name\": \"x\", \"steps\": [{\"expect\": {\"received\": {\"\": {}}}}]}");
        assert!(
            e.starts_with(r#"steps[0].expect.received[""]: unknown service"#),
            "{e}"
        );
        let e = err("{\"name\": \"x\", \"steps\": [{\"do\": \"check_file\", \"md5\": \"0011223344556677889900112233445\\n\", \"size_bytes\": 1}]}");
        assert!(!e.contains('\n') && e.starts_with("steps[0].md5"), "{e}");
        let e = err(r#"{"name": "x", "devices": 0, "steps": []}"#);
        assert!(e.starts_with("devices"), "{e}");
        let e = err(r#"{"name": "x", "ksn": {"global": {"files": {"a": "evil"}}}, "steps": []}"#);
        assert!(e.starts_with("ksn.global.files.a"), "{e}");
    }
}
