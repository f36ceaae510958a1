//! Policy and local-settings documents: parsed and checked whole, with the JSON path and
//! the reason of the first problem. Nothing here changes state.
//!
//! A key given twice is an error (it could both accept and withdraw in one document), and
//! an error quotes at most `path::QUOTE_CHARS` characters of a key or a value, however
//! long the document's own.

use std::{cell::RefCell, fmt};

use plugin_api::documents::path::{did_you_mean, join, one_line, segment};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use plugin_api::documents::Statement;

use super::{
    statements::Shipped,
    table::{describe, Role, Setting, Value, SECTIONS},
};

/// Where a document is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError {
    pub path: String,
    pub reason: String,
}

impl DocError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: one_line(&path.into()),
            reason: one_line(&reason.into()),
        }
    }
}

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// The statement versions an acceptance names, by statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions([Option<u32>; 3]);

impl Versions {
    pub fn get(&self, statement: Statement) -> Option<u32> {
        self.0[statement as usize]
    }

    pub fn set(&mut self, statement: Statement, version: u32) {
        self.0[statement as usize] = Some(version);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The statements named, with their versions, in `Statement` order.
    pub fn named(&self) -> impl Iterator<Item = (Statement, u32)> + '_ {
        [Statement::Ksn, Statement::PrivateKsn, Statement::Kmp]
            .into_iter()
            .filter_map(|s| self.get(s).map(|v| (s, v)))
    }
}

impl serde::Serialize for Versions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.named().map(|(statement, v)| (statement.as_str(), v)))
    }
}

impl<'de> serde::Deserialize<'de> for Versions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let named = std::collections::BTreeMap::<Statement, u32>::deserialize(d)?;
        let mut versions = Versions::default();
        for (statement, version) in named {
            versions.set(statement, version);
        }
        Ok(versions)
    }
}

/// One value a policy sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyEntry {
    pub setting: Setting,
    pub value: Value,
    /// Enforced: a local change to another value is refused.
    pub locked: bool,
    /// For an acceptance, the versions of the statements the administrator read.
    pub versions: Versions,
}

/// A parsed policy: at most one entry per setting, in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub entries: Vec<PolicyEntry>,
}

impl Policy {
    pub fn get(&self, setting: Setting) -> Option<&PolicyEntry> {
        self.entries.iter().find(|e| e.setting == setting)
    }

    pub fn locked(&self, setting: Setting) -> Option<Value> {
        self.get(setting).filter(|e| e.locked).map(|e| e.value)
    }

    pub fn locked_paths(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter(|e| e.locked)
            .map(|e| e.setting.path())
            .collect()
    }
}

/// One value a local change sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEntry {
    pub setting: Setting,
    pub value: Value,
    /// For an acceptance, the versions it names, if it names any (it accepts the version
    /// the device shows either way).
    pub versions: Versions,
}

/// Parses JSON, refusing a key given twice in one object (naming its path).
pub fn parse_json(text: &str) -> Result<Json, DocError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        at: At::Root,
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|json| deserializer.end().map(|()| json));
    if let Some(path) = duplicate.into_inner() {
        return Err(DocError::at(path, "the key is given twice"));
    }
    parsed.map_err(|e| {
        let place = format!("line {} column {}", e.line(), e.column());
        let reason = e.to_string();
        let reason = reason.trim_end_matches(&format!(" at {place}")).to_string();
        DocError::at(place, format!("malformed JSON: {reason}"))
    })
}

/// A JSON value that remembers where it is, so that a duplicate key can be named.
struct Strict<'a> {
    at: At<'a>,
    duplicate: &'a RefCell<Option<String>>,
}

/// Where a value is, as a chain of borrowed steps: the path text is built only for an
/// error, not for every key of every valid document.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn path(&self) -> String {
        match self {
            At::Root => String::new(),
            At::Key(parent, key) => join(&parent.path(), key),
            At::Index(parent, index) => format!("{}[{index}]", parent.path()),
        }
    }
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
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Strict {
                at: At::Index(&self.at, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(At::Key(&self.at, &key).path());
                return Err(A::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(Strict {
                at: At::Key(&self.at, &key),
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Json::Object(object))
    }
}

/// A policy document: `{"settings": {section: {key: value | {"value": v, "locked": b}}}}`.
/// The last policy document read and what it read to, for the tasks that share it: a
/// management host sends one group's policy to the task of every device it manages, and
/// reading is a function of the text alone, so one reading serves them all. Only a
/// document that reads is kept; a refused one is read (and refused) again.
#[derive(Default)]
pub struct LastPolicy(std::sync::Mutex<Option<(Box<str>, Policy)>>);

impl LastPolicy {
    pub fn parse(&self, text: &str) -> Result<Policy, DocError> {
        let last = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read, policy)) = &*last() {
            if **read == *text {
                return Ok(policy.clone());
            }
        }
        let policy = parse_policy(text)?;
        *last() = Some((text.into(), policy.clone()));
        Ok(policy)
    }
}

pub fn parse_policy(text: &str) -> Result<Policy, DocError> {
    policy_from_json(&parse_json(text)?)
}

pub fn policy_from_json(doc: &Json) -> Result<Policy, DocError> {
    let top = as_object(doc, "policy")?;
    let mut entries = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "settings" => walk_sections(value, "settings", &mut |setting, json| {
                let (value, locked, versions) = policy_value(setting, json)?;
                entries.push(PolicyEntry {
                    setting,
                    value,
                    locked,
                    versions,
                });
                Ok(())
            })?,
            other => {
                return Err(DocError::at(
                    segment(other),
                    "unknown key; a policy has only \"settings\"",
                ))
            }
        }
    }
    entries.sort_by_key(|e| e.setting);
    Ok(Policy { entries })
}

/// A local change: `{section: {key: value}}`.
pub fn parse_local(text: &str) -> Result<Vec<LocalEntry>, DocError> {
    local_from_json(&parse_json(text)?)
}

pub fn local_from_json(doc: &Json) -> Result<Vec<LocalEntry>, DocError> {
    let mut entries = Vec::new();
    walk_sections(doc, "", &mut |setting, json| {
        let (value, versions) = local_value(setting, json)?;
        entries.push(LocalEntry {
            setting,
            value,
            versions,
        });
        Ok(())
    })?;
    entries.sort_by_key(|e| e.setting);
    Ok(entries)
}

fn as_object<'a>(json: &'a Json, path: &str) -> Result<&'a Map<String, Json>, DocError> {
    json.as_object()
        .ok_or_else(|| DocError::at(path, format!("expected an object, got {}", describe(json))))
}

type Visit<'v> = dyn FnMut(Setting, &Json) -> Result<(), DocError> + 'v;

/// Visits every setting of a `{section: {key: value}}` object found at `prefix`. Paths are
/// only spelt out for errors; a visitor's error names the setting's own path, and this
/// adds the prefix.
fn walk_sections(doc: &Json, prefix: &str, visit: &mut Visit<'_>) -> Result<(), DocError> {
    let root = if prefix.is_empty() {
        "settings"
    } else {
        prefix
    };
    for (section, body) in as_object(doc, root)? {
        if !SECTIONS.contains(&section.as_str()) {
            return Err(DocError::at(
                join(prefix, section),
                format!(
                    "unknown section; expected one of: {}{}",
                    SECTIONS.join(", "),
                    did_you_mean(section, SECTIONS.iter().copied())
                ),
            ));
        }
        let body = body.as_object().ok_or_else(|| {
            DocError::at(
                join(prefix, section),
                format!("expected an object, got {}", describe(body)),
            )
        })?;
        for (key, json) in body {
            let setting = Setting::find(section, key).ok_or_else(|| {
                DocError::at(
                    join(&join(prefix, section), key),
                    format!(
                        "unknown setting; {section} has: {}{}",
                        Setting::keys_of(section).join(", "),
                        did_you_mean(key, Setting::keys_of(section))
                    ),
                )
            })?;
            visit(setting, json).map_err(|mut e| {
                if !prefix.is_empty() {
                    e.path = format!("{prefix}.{}", e.path);
                }
                e
            })?;
        }
    }
    Ok(())
}

fn policy_value(setting: Setting, json: &Json) -> Result<(Value, bool, Versions), DocError> {
    let path = setting.path();
    let (value, locked, versions) = match json.as_object() {
        None => {
            let value = setting
                .parse_value(json)
                .map_err(|r| DocError::at(path, r))?;
            (value, false, Versions::default())
        }
        Some(wrapper) => wrapped_value(setting, wrapper, true)?,
    };
    if setting.descriptor().role == Role::Statement && value.as_bool() && versions.is_empty() {
        return Err(DocError::at(path, unversioned_acceptance(setting)));
    }
    Ok((value, locked, versions))
}

/// Why a policy's acceptance without versions is refused, and what to write instead.
fn unversioned_acceptance(setting: Setting) -> String {
    let each: Vec<String> = setting
        .accepts()
        .iter()
        .map(|s| format!("\"{}\": {}", s.as_str(), s.current_version()))
        .collect();
    format!(
        "an acceptance in a policy names the version of each statement the administrator read: \
         write {{\"value\": true, \"versions\": {{{}}}}} (this plugin ships {})",
        each.join(", "),
        setting
            .accepts()
            .iter()
            .map(|s| format!("{} version {}", s.as_str(), s.current_version()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A local change's value: plain, or for an acceptance `{"value": v, "versions": {...}}`.
fn local_value(setting: Setting, json: &Json) -> Result<(Value, Versions), DocError> {
    match json.as_object() {
        Some(wrapper) if setting.descriptor().role == Role::Statement => {
            let (value, _, versions) = wrapped_value(setting, wrapper, false)?;
            Ok((value, versions))
        }
        Some(_) => Err(DocError::at(
            setting.path(),
            "a local change takes plain values; {\"value\", \"locked\"} exists only in policies",
        )),
        None => Ok((
            setting
                .parse_value(json)
                .map_err(|r| DocError::at(setting.path(), r))?,
            Versions::default(),
        )),
    }
}

/// `{"value": v, "locked": b, "versions": {...}}`; `locked` only in a policy, `versions`
/// only for an acceptance box.
fn wrapped_value(
    setting: Setting,
    wrapper: &Map<String, Json>,
    policy: bool,
) -> Result<(Value, bool, Versions), DocError> {
    let path = setting.path();
    let shape = if policy {
        "{\"value\": v, \"locked\": true|false}, and for an acceptance \"versions\""
    } else {
        "{\"value\": true|false, \"versions\": {...}}"
    };
    let mut value = None;
    let mut locked = false;
    let mut versions = Versions::default();
    for (key, inner) in wrapper {
        let inner_path = || join(path, key);
        match key.as_str() {
            "value" => {
                value = Some(
                    setting
                        .parse_value(inner)
                        .map_err(|r| DocError::at(inner_path(), r))?,
                )
            }
            "locked" if policy => {
                locked = inner.as_bool().ok_or_else(|| {
                    DocError::at(
                        inner_path(),
                        format!("expected true or false, got {}", describe(inner)),
                    )
                })?
            }
            "versions" if setting.descriptor().role == Role::Statement => {
                versions = statement_versions(setting, inner, &inner_path())?
            }
            "versions" => {
                return Err(DocError::at(
                    inner_path(),
                    "only an acceptance box names statement versions",
                ))
            }
            _ => {
                let keys: &[&str] = if policy {
                    &["value", "locked", "versions"]
                } else {
                    &["value", "versions"]
                };
                return Err(DocError::at(
                    inner_path(),
                    format!(
                        "unknown key; the value is {shape}{}",
                        did_you_mean(key, keys.iter().copied())
                    ),
                ));
            }
        }
    }
    let value = value.ok_or_else(|| DocError::at(path, "missing \"value\""))?;
    Ok((value, locked, versions))
}

/// `{"ksn": 1, "private_ksn": 1}`: statements this box accepts, each a version from 1.
fn statement_versions(setting: Setting, json: &Json, path: &str) -> Result<Versions, DocError> {
    let names: Vec<&str> = setting.accepts().iter().map(|s| s.as_str()).collect();
    let object = json.as_object().ok_or_else(|| {
        DocError::at(
            path,
            format!(
                "expected an object of statement versions ({{\"{}\": 1}}), got {}",
                names[0],
                describe(json)
            ),
        )
    })?;
    let mut versions = Versions::default();
    for (name, version) in object {
        let statement = setting
            .accepts()
            .iter()
            .copied()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                DocError::at(
                    join(path, name),
                    format!(
                        "this box accepts {}{}",
                        names.join(" or "),
                        did_you_mean(name, names.iter().copied())
                    ),
                )
            })?;
        let version = version
            .as_u64()
            .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
            .ok_or_else(|| {
                DocError::at(
                    join(path, name),
                    format!(
                        "expected a version number from 1, got {}",
                        describe(version)
                    ),
                )
            })?;
        versions.set(statement, version as u32);
    }
    if versions.is_empty() {
        return Err(DocError::at(
            path,
            format!("names no statement; expected {}", names.join(" or ")),
        ));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared reading reads as `parse_policy` does, a new text anew, and keeps no
    /// refusal.
    #[test]
    fn a_shared_reading_is_the_reading_of_the_same_text() {
        let last = LastPolicy::default();
        let lock = r#"{"settings": {"task": {"schedule": {"value": "at_application_start", "locked": true}}}}"#;
        let other = r#"{"settings": {"task": {"checksum_limit_mb": {"value": 7}}}}"#;
        let bad = r#"{"settings": {"task": {"schedule": {"value": "hourly"}}}}"#;
        for text in [lock, lock, other, lock, bad, lock, bad] {
            assert_eq!(
                last.parse(text).map_err(|e| e.to_string()),
                parse_policy(text).map_err(|e| e.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn policy_values_plain_and_locked() {
        let p = parse_policy(
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}}},
                             "task": {"checksum_limit_mb": 5, "schedule": {"value": "at_application_start"}}}}"#,
        )
        .unwrap();
        assert_eq!(p.entries.len(), 3);
        assert_eq!(
            p.locked(Setting::KsnStatementAccepted),
            Some(Value::Bool(true))
        );
        assert_eq!(
            p.get(Setting::ChecksumLimitMb).unwrap().value,
            Value::Int(5)
        );
        assert!(!p.get(Setting::ChecksumLimitMb).unwrap().locked);
        assert!(!p.get(Setting::Schedule).unwrap().locked);
        assert_eq!(
            p.locked_paths(),
            vec!["data_handling.ksn_statement_accepted"]
        );
        assert_eq!(parse_policy("{}").unwrap(), Policy::default());
    }

    fn policy_err(text: &str) -> DocError {
        parse_policy(text).unwrap_err()
    }

    #[test]
    fn policy_errors_name_the_path() {
        let e = policy_err(r#"{"settings": {"task": {"checksum_limit_mb": 2000}}}"#);
        assert_eq!(e.path, "settings.task.checksum_limit_mb");
        assert!(e.reason.contains("from 1 to 1024"), "{e}");

        let e = policy_err(r#"{"settings": {"task": {"checksum_limit_mb": {"value": "big"}}}}"#);
        assert_eq!(e.path, "settings.task.checksum_limit_mb.value");

        let e = policy_err(
            r#"{"settings": {"task": {"checksum_limit_mb": {"value": 3, "lock": true}}}}"#,
        );
        assert_eq!(e.path, "settings.task.checksum_limit_mb.lock");

        let e = policy_err(r#"{"settings": {"task": {"checksum_limit_mb": {"locked": true}}}}"#);
        assert_eq!(e.path, "settings.task.checksum_limit_mb");
        assert!(e.reason.contains("missing"));

        let e = policy_err(r#"{"settings": {"task": {"colour": "red"}}}"#);
        assert_eq!(e.path, "settings.task.colour");
        assert!(e.reason.contains("unknown setting"));

        let e = policy_err(r#"{"settings": {"network": {}}}"#);
        assert_eq!(e.path, "settings.network");

        let e = policy_err(r#"{"setings": {}}"#);
        assert_eq!(e.path, "setings");

        let e = policy_err(r#"{"settings": {"task": []}}"#);
        assert_eq!(e.path, "settings.task");

        let e = policy_err(r#"{"settings": {"data_handling": {"send_statistics": "yes"}}}"#);
        assert_eq!(e.path, "settings.data_handling.send_statistics");

        let e = policy_err(r#"{"settings": {"task": {"#);
        assert!(e.path.starts_with("line 1 column"), "{e}");
        assert!(e.reason.starts_with("malformed JSON"));

        let e = policy_err("[]");
        assert_eq!(e.path, "policy");
    }

    #[test]
    fn odd_keys_are_quoted_and_errors_stay_on_one_line() {
        let e = policy_err(r#"{"": 1}"#);
        assert_eq!(e.path, r#"[""]"#);
        let e = policy_err("{\"settings\": {\"task\": {\"a\\nb\": 1}}}");
        assert_eq!(e.path, r#"settings.task["a\nb"]"#);
        let e = policy_err(r#"{"settings": {"task": {"schedule": "x\ny"}}}"#);
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(e.reason.ends_with(r#"got "x\ny""#), "{e}");
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        let e = parse_local(
            r#"{"data_handling": {"ksn_statement_accepted": true, "ksn_statement_accepted": false}}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "data_handling.ksn_statement_accepted");
        assert_eq!(e.reason, "the key is given twice");
        let e = policy_err(r#"{"settings": {"task": {}}, "settings": {}}"#);
        assert_eq!(e.path, "settings");
        let e = policy_err(
            r#"{"settings": {"task": {"schedule": {"value": "manual", "locked": true, "locked": false}}}}"#,
        );
        assert_eq!(e.path, "settings.task.schedule.locked");
        let e = policy_err(r#"[{"a": 1, "a": 2}]"#);
        assert_eq!(e.path, "[0].a");
    }

    #[test]
    fn errors_quote_long_keys_and_values_short() {
        let key = "k".repeat(1 << 20);
        let e = policy_err(&format!(r#"{{"settings": {{"task": {{"{key}": 1}}}}}}"#));
        assert!(e.to_string().len() < 400, "{} bytes", e.to_string().len());
        let value = "v".repeat(1 << 20);
        let e = policy_err(&format!(
            r#"{{"settings": {{"task": {{"schedule": "{value}"}}}}}}"#
        ));
        assert!(e.reason.contains("(1048576 characters)"), "{e}");
        assert!(e.to_string().len() < 400);
    }

    #[test]
    fn a_mistyped_key_gets_the_nearest() {
        let e = policy_err(r#"{"settings": {"task": {"checksum_limit_m": 3}}}"#);
        assert!(
            e.reason.ends_with("did you mean `checksum_limit_mb`?"),
            "{e}"
        );
        let e = parse_local(r#"{"data_handlin": {}}"#).unwrap_err();
        assert!(e.reason.ends_with("did you mean `data_handling`?"), "{e}");
    }

    #[test]
    fn local_changes_take_plain_values_only() {
        let entries = parse_local(r#"{"task": {"action_on_untrusted": "log"}}"#).unwrap();
        assert_eq!(
            entries,
            vec![LocalEntry {
                setting: Setting::ActionOnUntrusted,
                value: Value::Choice("log"),
                versions: Versions::default(),
            }]
        );
        let e = parse_local(r#"{"task": {"action_on_untrusted": {"value": "log"}}}"#).unwrap_err();
        assert_eq!(e.path, "task.action_on_untrusted");
        let e = parse_local(r#"{"settings": {}}"#).unwrap_err();
        assert_eq!(e.path, "settings");
        let e = parse_local(r#"{"task": {"lookup_timeout_ms": 5}}"#).unwrap_err();
        assert_eq!(e.path, "task.lookup_timeout_ms");
        let e = parse_local(r#"{"task": {"lookup_timeout_ms": null}}"#).unwrap_err();
        assert!(e.reason.contains("null"), "{e}");
    }
}
