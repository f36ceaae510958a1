//! The settings: one table, and everything made from it: the description and the JSON
//! Schemas (`describe`), strict reading of policies and local changes, the layers
//! (defaults < local < locked policy values) and the settings view (`settings_json`).

use std::{borrow::Cow, collections::BTreeMap, fmt};

use plugin_api::documents::{
    path::{cut, did_you_mean, join, one_line, quote},
    Changes, PluginDescription, SettingDescription, SettingRole, SettingView, SettingsView, Source,
    Statement, StatementText, ValueType,
};
use serde::{
    de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer, Serialize,
};
use serde_json::{json, Map, Value as Json};

pub const KSN_ACCEPTED: &str = "data_handling.ksn_statement_accepted";
pub const SEND_FILES: &str = "data_handling.send_scanned_files_data";
pub const LOOKUP_TIMEOUT: &str = "task.lookup_timeout_ms";
pub const SCHEDULE: &str = "task.schedule";

/// The version of the KSN statement's text this plugin ships.
pub const STATEMENT_VERSION: u32 = 1;

const STATEMENT_TEXT: &str = "The application asks Kaspersky Security Network (KSN) for the \
reputation of the files it scans. To do so it sends KSN the MD5 checksum and the size of \
each file, never its contents. You may withdraw this acceptance at any moment; the \
application then stops sending at once. Data already sent is processed as the KSN terms \
describe.";

/// The type and range of a setting's values.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Boolean,
    Integer { minimum: u64, maximum: u64 },
    Choice(&'static [&'static str]),
}

/// A setting's default.
#[derive(Clone, Copy, Debug)]
pub enum Initial {
    Bool(bool),
    Int(u64),
    Text(&'static str),
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    pub path: &'static str,
    pub kind: Kind,
    pub default: Initial,
    pub role: SettingRole,
    pub meaning: &'static str,
}

/// Every setting, in the order the plugin shows them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        path: KSN_ACCEPTED,
        kind: Kind::Boolean,
        default: Initial::Bool(false),
        role: SettingRole::Statement,
        meaning: "I confirm that I have fully read, understood, and accept the terms of the KSN Statement",
    },
    Setting {
        path: SEND_FILES,
        kind: Kind::Boolean,
        default: Initial::Bool(true),
        role: SettingRole::GlobalOnly,
        meaning: "ask Global KSN about the files the application scans (their MD5 checksums and sizes are sent)",
    },
    Setting {
        path: LOOKUP_TIMEOUT,
        kind: Kind::Integer {
            minimum: 100,
            maximum: 30_000,
        },
        default: Initial::Int(5_000),
        role: SettingRole::Plain,
        meaning: "how long a reputation request may wait for Global KSN, in milliseconds",
    },
    Setting {
        path: SCHEDULE,
        kind: Kind::Choice(&["manual", "at_application_start"]),
        default: Initial::Text("manual"),
        role: SettingRole::Plain,
        meaning: "manual: the task runs when started; at_application_start: it starts by itself when the application starts",
    },
];

impl Setting {
    pub fn find(path: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.path == path)
    }

    pub fn section(&self) -> &'static str {
        self.path.split_once('.').map_or("", |(section, _)| section)
    }

    pub fn key(&self) -> &'static str {
        self.path.split_once('.').map_or(self.path, |(_, key)| key)
    }

    pub fn default_json(&self) -> Json {
        match self.default {
            Initial::Bool(b) => Json::Bool(b),
            Initial::Int(n) => Json::from(n),
            Initial::Text(t) => Json::from(t),
        }
    }

    pub fn value_type(&self) -> ValueType {
        match self.kind {
            Kind::Boolean => ValueType::Boolean,
            Kind::Integer { minimum, maximum } => ValueType::Integer { minimum, maximum },
            Kind::Choice(options) => ValueType::Choice {
                options: options.iter().map(|o| o.to_string()).collect(),
            },
        }
    }

    /// Whether `value` is one of this setting's values; the reason when it is not.
    pub fn check(&self, value: &Json) -> Result<(), String> {
        let fits = match self.kind {
            Kind::Boolean => value.is_boolean(),
            Kind::Integer { minimum, maximum } => value
                .as_u64()
                .is_some_and(|n| (minimum..=maximum).contains(&n)),
            Kind::Choice(options) => value.as_str().is_some_and(|v| options.contains(&v)),
        };
        if fits {
            Ok(())
        } else {
            Err(format!(
                "expected {}, got {}",
                self.value_type(),
                shown(value)
            ))
        }
    }

    /// Whether it governs the task in the current mode.
    pub fn applies(&self, private_ksn: bool) -> bool {
        !private_ksn || matches!(self.role, SettingRole::Plain)
    }

    /// The schema of one value, with its default and meaning.
    fn value_schema(&self) -> Json {
        let mut schema = match self.kind {
            Kind::Boolean => json!({"type": "boolean"}),
            Kind::Integer { minimum, maximum } => {
                json!({"type": "integer", "minimum": minimum, "maximum": maximum})
            }
            Kind::Choice(options) => json!({"type": "string", "enum": options}),
        };
        schema["default"] = self.default_json();
        schema["description"] = Json::from(self.meaning);
        schema
    }
}

/// A value as an error quotes it: short, on one line.
fn shown(value: &Json) -> String {
    match value {
        Json::String(text) => quote(text),
        other => cut(&other.to_string()),
    }
}

fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&'static str> = SETTINGS.iter().map(Setting::section).collect();
    sections.dedup();
    sections
}

/// What `describe` answers: the settings, the schemas of the two settings documents, and
/// the statement's text.
pub fn description() -> PluginDescription {
    PluginDescription {
        settings: SETTINGS
            .iter()
            .map(|s| SettingDescription {
                path: s.path.to_string(),
                value_type: s.value_type(),
                default: s.default_json(),
                role: s.role,
                meaning: s.meaning.to_string(),
                // The acceptance box accepts the KSN statement (this plugin has no Private
                // KSN mode of its own): a policy's acceptance names its version.
                accepts: if s.role == SettingRole::Statement {
                    vec![Statement::Ksn]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        policy_schema: policy_schema(),
        local_schema: local_schema(),
        statements: vec![StatementText {
            statement: Statement::Ksn,
            version: STATEMENT_VERSION,
            title: "Kaspersky Security Network Statement".into(),
            text: STATEMENT_TEXT.into(),
        }],
    }
}

/// `{section: {key: schema(setting)}}`, closed at both levels.
fn by_section(schema: impl Fn(&Setting) -> Json) -> Json {
    let mut properties = Map::new();
    for section in sections() {
        let keys: Map<String, Json> = SETTINGS
            .iter()
            .filter(|s| s.section() == section)
            .map(|s| (s.key().to_string(), schema(s)))
            .collect();
        properties.insert(
            section.to_string(),
            json!({"type": "object", "properties": keys, "additionalProperties": false}),
        );
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

fn local_schema() -> Json {
    let mut schema = by_section(Setting::value_schema);
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["title"] = json!("A local change to the minimal KSN Usage task's settings");
    schema
}

fn policy_schema() -> Json {
    let settings = by_section(|s| {
        let locked = json!({"type": "boolean", "default": false,
                            "description": "enforced: a local change to another value is refused"});
        if s.role == SettingRole::Statement {
            // Accepting names the version read: `{"value": true, "versions": {"ksn": 1}}`.
            return json!({"anyOf": [
                {"const": false},
                {
                    "type": "object",
                    "properties": {
                        "value": s.value_schema(),
                        "locked": locked,
                        "versions": {
                            "type": "object",
                            "properties": {"ksn": {"type": "integer", "minimum": 1}},
                            "additionalProperties": false
                        }
                    },
                    "required": ["value"],
                    "additionalProperties": false,
                    "if": {"properties": {"value": {"const": true}}},
                    "then": {"required": ["versions"]}
                }
            ]});
        }
        json!({"anyOf": [
            s.value_schema(),
            {
                "type": "object",
                "properties": {"value": s.value_schema(), "locked": locked},
                "required": ["value"],
                "additionalProperties": false
            }
        ]})
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "A policy for the minimal KSN Usage task",
        "type": "object",
        "properties": {"settings": settings},
        "additionalProperties": false
    })
}

// ---------------------------------------------------------------------------------------
// Reading documents

/// Reads JSON text into a value, refusing a key given twice in one object (which would
/// otherwise silently mean its last value). Errors say where.
fn read_strict(text: &str) -> Result<Json, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Strict { path: "" }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    value.map_err(|e| match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => format!("malformed JSON: {e}"),
    })
}

/// A JSON value read with its place known, so a duplicate key can be named.
struct Strict<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Json;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            match seq.next_element_seed(Strict { path: &path })? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(self.path, &key);
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!("{path}: duplicate key")));
            }
            let value = map.next_value_seed(Strict { path: &path })?;
            object.insert(key, value);
        }
        Ok(Json::Object(object))
    }
}

/// One checked value of a document.
#[derive(Clone, Debug)]
pub struct Entry {
    pub setting: &'static Setting,
    pub value: Json,
    pub locked: bool,
    /// A policy's acceptance: the version of the KSN statement it names.
    pub version: Option<u32>,
}

/// Reads a policy (`{"settings": {section: {key: value | {"value": v, "locked": b}}}}`)
/// whole: every entry, or the first error (`settings.task.lookup_timeout_ms: expected an
/// integer from 100 to 30000, got 0`), on one line.
pub fn read_policy(text: &str) -> Result<Vec<Entry>, String> {
    read_policy_inner(text).map_err(|e| one_line(&e))
}

fn read_policy_inner(text: &str) -> Result<Vec<Entry>, String> {
    let root = read_strict(text)?;
    let Json::Object(root) = root else {
        return Err(format!(
            "a policy is a JSON object {{\"settings\": {{...}}}}, got {}",
            shown(&root)
        ));
    };
    let mut entries = Vec::new();
    for (key, value) in &root {
        if key != "settings" {
            return Err(format!(
                "{}: unknown key; a policy has only \"settings\"{}",
                join("", key),
                did_you_mean(key, ["settings"])
            ));
        }
        for (setting, at, value) in settings_of(value, "settings")? {
            let place = at.clone();
            let (value, locked, version, at) = match value {
                Json::Object(wrapped) => unwrap_policy_value(setting, wrapped, &at)?,
                plain => (plain.clone(), false, None, at),
            };
            setting
                .check(&value)
                .map_err(|why| format!("{at}: {why}"))?;
            if setting.role == SettingRole::Statement && value == json!(true) && version.is_none() {
                return Err(format!(
                    "{place}: an acceptance in a policy names the version of the statement the administrator read: write {{\"value\": true, \"versions\": {{\"ksn\": {STATEMENT_VERSION}}}}}"
                ));
            }
            entries.push(Entry {
                setting,
                value,
                locked,
                version,
            });
        }
    }
    Ok(entries)
}

/// `{"value": v, "locked": b}` (and for the acceptance `"versions": {"ksn": n}`): the
/// value, the lock, the version named, and the place of the value.
fn unwrap_policy_value(
    setting: &Setting,
    wrapped: &Map<String, Json>,
    at: &str,
) -> Result<(Json, bool, Option<u32>, String), String> {
    let acceptance = setting.role == SettingRole::Statement;
    let known = |k: &str| k == "value" || k == "locked" || (acceptance && k == "versions");
    if let Some(key) = wrapped.keys().find(|k| !known(k)) {
        return Err(format!(
            "{}: unknown key; a policy value is a plain value or {{\"value\": v, \"locked\": true|false}}{}",
            join(at, key),
            did_you_mean(key, ["value", "locked"])
        ));
    }
    let version = match wrapped.get("versions") {
        None => None,
        Some(Json::Object(versions)) => {
            if let Some(other) = versions.keys().find(|k| *k != "ksn") {
                return Err(format!(
                    "{}: this box accepts the KSN statement only (\"ksn\")",
                    join(&join(at, "versions"), other)
                ));
            }
            match versions.get("ksn").map(|v| v.as_u64()) {
                Some(Some(v)) if (1..=u64::from(u32::MAX)).contains(&v) => Some(v as u32),
                Some(_) => {
                    return Err(format!(
                        "{}: expected a version number from 1",
                        join(&join(at, "versions"), "ksn")
                    ))
                }
                None => {
                    return Err(format!(
                        "{}: names no statement; expected {{\"ksn\": {STATEMENT_VERSION}}}",
                        join(at, "versions")
                    ))
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "{}: expected {{\"ksn\": {STATEMENT_VERSION}}}, got {}",
                join(at, "versions"),
                shown(other)
            ))
        }
    };
    let locked = match wrapped.get("locked") {
        None => false,
        Some(Json::Bool(locked)) => *locked,
        Some(other) => {
            return Err(format!(
                "{}: expected true or false, got {}",
                join(at, "locked"),
                shown(other)
            ))
        }
    };
    let value = wrapped
        .get("value")
        .ok_or_else(|| format!("{at}: missing \"value\" (a policy value is a plain value or {{\"value\": v, \"locked\": true|false}})"))?;
    Ok((value.clone(), locked, version, join(at, "value")))
}

/// Reads a local change (`{section: {key: value}}`) whole, like `read_policy`.
pub fn read_local(text: &str) -> Result<Vec<Entry>, String> {
    read_local_inner(text).map_err(|e| one_line(&e))
}

fn read_local_inner(text: &str) -> Result<Vec<Entry>, String> {
    let root = read_strict(text)?;
    let mut entries = Vec::new();
    for (setting, at, value) in settings_of(&root, "")? {
        setting.check(value).map_err(|why| format!("{at}: {why}"))?;
        entries.push(Entry {
            setting,
            version: None,
            value: value.clone(),
            locked: false,
        });
    }
    Ok(entries)
}

/// The settings of a `{section: {key: value}}` object at `at`: each known setting with
/// its place and its (unchecked) value.
fn settings_of<'v>(
    value: &'v Json,
    at: &str,
) -> Result<Vec<(&'static Setting, String, &'v Json)>, String> {
    let place = if at.is_empty() { "a local change" } else { at };
    let Json::Object(by_section) = value else {
        return Err(format!(
            "{place}: expected an object of sections ({}), got {}",
            sections().join(", "),
            shown(value)
        ));
    };
    let mut found = Vec::new();
    for (section, keys) in by_section {
        let at = join(at, section);
        if !sections().contains(&section.as_str()) {
            return Err(format!(
                "{at}: unknown section{}; the sections are {}",
                did_you_mean(section, sections()),
                sections().join(", ")
            ));
        }
        let Json::Object(keys) = keys else {
            return Err(format!(
                "{at}: expected an object of settings, got {}",
                shown(keys)
            ));
        };
        let known: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.section() == section)
            .map(Setting::key)
            .collect();
        for (key, value) in keys {
            let at = join(&at, key);
            let setting = SETTINGS
                .iter()
                .find(|s| s.section() == section && s.key() == key)
                .ok_or_else(|| {
                    format!(
                        "{at}: unknown setting{}; {section} has {}",
                        did_you_mean(key, known.iter().copied()),
                        known.join(", ")
                    )
                })?;
            found.push((setting, at, value));
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------
// Layers

/// Where the settings' values come from. Persisted with the task's state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Layers {
    /// Values set on the device, by path, with who set them: a local change, or a policy's
    /// unlocked value (written here at each push, changeable locally until the next).
    pub local: BTreeMap<String, Layered>,
    /// The policy in force, by path.
    pub policy: BTreeMap<String, PolicyValue>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Layered {
    pub value: Json,
    pub source: Source,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PolicyValue {
    pub value: Json,
    pub locked: bool,
}

impl Layers {
    /// The effective value, where it comes from, and whether the policy locks it.
    pub fn effective(&self, setting: &Setting) -> (Json, Source, bool) {
        if let Some(enforced) = self.policy.get(setting.path).filter(|p| p.locked) {
            return (enforced.value.clone(), Source::Policy, true);
        }
        match self.local.get(setting.path) {
            Some(local) => (local.value.clone(), local.source, false),
            None => (setting.default_json(), Source::Default, false),
        }
    }

    pub fn value(&self, path: &str) -> Json {
        Setting::find(path).map_or(Json::Null, |s| self.effective(s).0)
    }

    pub fn flag(&self, path: &str) -> bool {
        self.value(path).as_bool().unwrap_or(false)
    }

    pub fn number(&self, path: &str) -> u64 {
        self.value(path).as_u64().unwrap_or(0)
    }

    /// A new policy replaces the previous one (releasing its locks); its unlocked values
    /// are written to the local layer. A released lock restores nothing: the value it
    /// enforced stays, in the local layer, unless the new policy sets one.
    pub fn apply_policy(&mut self, entries: &[Entry]) {
        let released: Vec<(String, Json)> = std::mem::take(&mut self.policy)
            .into_iter()
            .filter(|(_, p)| p.locked)
            .map(|(path, p)| (path, p.value))
            .collect();
        for (path, value) in released {
            if self.local.get(&path).map(|l| &l.value) != Some(&value) {
                self.local.insert(
                    path,
                    Layered {
                        value,
                        source: Source::Policy,
                    },
                );
            }
        }
        for entry in entries {
            self.policy.insert(
                entry.setting.path.into(),
                PolicyValue {
                    value: entry.value.clone(),
                    locked: entry.locked,
                },
            );
            if !entry.locked {
                self.local.insert(
                    entry.setting.path.into(),
                    Layered {
                        value: entry.value.clone(),
                        source: Source::Policy,
                    },
                );
            }
        }
    }

    /// The first entry of a local change that a lock refuses: re-stating the enforced
    /// value is allowed, another value is not.
    pub fn lock_conflict(&self, entries: &[Entry]) -> Option<String> {
        entries.iter().find_map(|entry| {
            let enforced = self.policy.get(entry.setting.path).filter(|p| p.locked)?;
            (enforced.value != entry.value).then(|| {
                format!(
                    "{}: locked by the policy to {}; a local change may only restate that value",
                    entry.setting.path, enforced.value
                )
            })
        })
    }

    pub fn apply_local(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.local.insert(
                entry.setting.path.into(),
                Layered {
                    value: entry.value.clone(),
                    source: Source::Local,
                },
            );
        }
    }

    /// The effective values that differ between `self` and `after`, before and after.
    pub fn changes(&self, after: &Layers) -> Option<(Changes, Changes)> {
        let (mut before_values, mut after_values) = (Vec::new(), Vec::new());
        for setting in SETTINGS {
            let (was, is) = (self.effective(setting).0, after.effective(setting).0);
            if was != is {
                before_values.push((Cow::Borrowed(setting.path), was));
                after_values.push((Cow::Borrowed(setting.path), is));
            }
        }
        (!before_values.is_empty()).then_some((Changes(before_values), Changes(after_values)))
    }

    /// The settings as the host reads them.
    pub fn view(&self, private_ksn: bool) -> SettingsView {
        let mut settings: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
        let mut details = BTreeMap::new();
        let mut locked = Vec::new();
        for setting in SETTINGS {
            let (value, source, is_locked) = self.effective(setting);
            let applies = setting.applies(private_ksn);
            if is_locked {
                locked.push(setting.path.to_string());
            }
            let mut why = match (is_locked, source) {
                (true, _) => "locked by the policy".to_string(),
                (false, Source::Policy) => {
                    "set by the policy; may be changed locally until the next push".to_string()
                }
                (false, Source::Local) => "set locally".to_string(),
                _ => "default value".to_string(),
            };
            if !applies {
                why.push_str("; does not apply while Private KSN is in use");
            }
            settings
                .entry(setting.section().to_string())
                .or_default()
                .insert(setting.key().to_string(), value.clone());
            details.insert(
                setting.path.to_string(),
                SettingView {
                    value,
                    source,
                    locked: is_locked,
                    applies,
                    why,
                    policy_value: self.policy.get(setting.path).map(|p| p.value.clone()),
                    default: setting.default_json(),
                    meaning: setting.meaning.to_string(),
                },
            );
        }
        SettingsView {
            private_ksn,
            settings,
            locked,
            details,
        }
    }
}
