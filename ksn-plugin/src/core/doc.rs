//! Policy and local-settings documents: parsed and checked whole, with the JSON path and
//! the reason of the first problem. Nothing here changes state.

use std::fmt;

use serde_json::{Map, Value as Json};

use super::table::{describe, Setting, Value, SECTIONS};

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

/// One value a policy sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyEntry {
    pub setting: Setting,
    pub value: Value,
    /// Enforced: a local change to another value is refused.
    pub locked: bool,
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
}

pub fn parse_json(text: &str) -> Result<Json, DocError> {
    serde_json::from_str(text).map_err(|e| {
        let place = format!("line {} column {}", e.line(), e.column());
        let reason = e.to_string();
        let reason = reason.trim_end_matches(&format!(" at {place}")).to_string();
        DocError::at(place, format!("malformed JSON: {reason}"))
    })
}

/// A policy document: `{"settings": {section: {key: value | {"value": v, "locked": b}}}}`.
pub fn parse_policy(text: &str) -> Result<Policy, DocError> {
    policy_from_json(&parse_json(text)?)
}

pub fn policy_from_json(doc: &Json) -> Result<Policy, DocError> {
    let top = as_object(doc, "policy")?;
    let mut entries = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "settings" => walk_sections(value, "settings", &mut |setting, json| {
                let (value, locked) = policy_value(setting, json)?;
                entries.push(PolicyEntry {
                    setting,
                    value,
                    locked,
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
        if json.is_object() {
            return Err(DocError::at(
                setting.path(),
                "a local change takes plain values; {\"value\", \"locked\"} exists only in policies",
            ));
        }
        let value = setting
            .parse_value(json)
            .map_err(|r| DocError::at(setting.path(), r))?;
        entries.push(LocalEntry { setting, value });
        Ok(())
    })?;
    entries.sort_by_key(|e| e.setting);
    Ok(entries)
}

fn as_object<'a>(json: &'a Json, path: &str) -> Result<&'a Map<String, Json>, DocError> {
    json.as_object()
        .ok_or_else(|| DocError::at(path, format!("expected an object, got {}", describe(json))))
}

/// A key as a path segment: bare when it is a plain name, else quoted (`[""]`, `["a b"]`),
/// so that every place can be read back.
pub fn segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        key.to_string()
    } else {
        format!(
            "[{}]",
            serde_json::to_string(key).expect("strings serialise")
        )
    }
}

/// `prefix` and then `key` as a path segment.
pub fn join(prefix: &str, key: &str) -> String {
    let segment = segment(key);
    match (prefix.is_empty(), segment.starts_with('[')) {
        (true, _) => segment,
        (false, true) => format!("{prefix}{segment}"),
        (false, false) => format!("{prefix}.{segment}"),
    }
}

/// Errors are one line: control characters (from the document's own keys and strings) are
/// written as escapes.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
                format!("unknown section; expected one of: {}", SECTIONS.join(", ")),
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
                        "unknown setting; {section} has: {}",
                        Setting::keys_of(section).join(", ")
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

fn policy_value(setting: Setting, json: &Json) -> Result<(Value, bool), DocError> {
    let path = setting.path();
    let Some(wrapper) = json.as_object() else {
        let value = setting
            .parse_value(json)
            .map_err(|r| DocError::at(path, r))?;
        return Ok((value, false));
    };
    let mut value = None;
    let mut locked = false;
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
            "locked" => {
                locked = inner.as_bool().ok_or_else(|| {
                    DocError::at(
                        inner_path(),
                        format!("expected true or false, got {}", describe(inner)),
                    )
                })?
            }
            _ => {
                return Err(DocError::at(
                    inner_path(),
                    "unknown key; a policy value is {\"value\": v, \"locked\": true|false}",
                ))
            }
        }
    }
    let value = value.ok_or_else(|| DocError::at(path, "missing \"value\""))?;
    Ok((value, locked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_values_plain_and_locked() {
        let p = parse_policy(
            r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}},
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
    fn local_changes_take_plain_values_only() {
        let entries = parse_local(r#"{"task": {"action_on_untrusted": "log"}}"#).unwrap();
        assert_eq!(
            entries,
            vec![LocalEntry {
                setting: Setting::ActionOnUntrusted,
                value: Value::Choice("log")
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
