//! Group policies: settings with locks, profiles, flags, and a revision for every save.
//! Settings are held by dotted path exactly as the policy document states them; the
//! plugin is the judge of their values (the server checks only the document's shape, and
//! the editor checks a policy against the plugin's schema when no device is there to).

use std::{collections::BTreeMap, sync::Arc};

use plugin_api::documents::path::join;
use serde_json::{json, Map, Value as Json};

use super::{error::ServerError, tree::GroupId};

pub type PolicyId = usize;

/// At most this many profiles in one policy (the vendor's limit).
pub const MOST_PROFILES: usize = 100;

/// One setting as a policy states it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub value: Json,
    pub locked: bool,
    /// The statement versions an acceptance accepts, as the editor stamped them.
    pub versions: Option<Json>,
}

impl Entry {
    /// As the policy document states it: plain when unlocked and unversioned.
    pub fn to_json(&self) -> Json {
        if !self.locked && self.versions.is_none() {
            return self.value.clone();
        }
        let mut object = Map::new();
        object.insert("value".into(), self.value.clone());
        if self.locked {
            object.insert("locked".into(), Json::Bool(true));
        }
        if let Some(versions) = &self.versions {
            object.insert("versions".into(), versions.clone());
        }
        Json::Object(object)
    }
}

/// Settings by dotted path.
pub type Settings = BTreeMap<String, Entry>;

/// When a profile is active on a device: every condition given holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    pub out_of_office: Option<bool>,
    /// The device has every one of these tags.
    pub tags: Vec<String>,
}

impl Condition {
    pub fn holds(&self, out_of_office: bool, tags: &std::collections::BTreeSet<String>) -> bool {
        self.out_of_office.is_none_or(|want| want == out_of_office)
            && self.tags.iter().all(|t| tags.contains(t))
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(o) = self.out_of_office {
            parts.push(format!("out_of_office = {o}"));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags include {}", self.tags.join(", ")));
        }
        if parts.is_empty() {
            "always".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// A named subset of a policy's settings, active on the devices its condition holds for.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub condition: Condition,
    pub settings: Settings,
}

/// What one revision of a policy holds. Profiles are in priority order: the first wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    pub settings: Settings,
    pub profiles: Vec<Profile>,
    /// "Force inheritance of settings in child policies": subgroups cannot opt out.
    pub force_inheritance: bool,
}

/// One save of a policy.
#[derive(Clone, Debug)]
pub struct Revision {
    pub number: u32,
    pub by: String,
    pub time_ms: u64,
    /// What the save was (`created`, `edited`, `rolled back to revision 2`, ...).
    pub what: String,
    pub content: Arc<Content>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub group: GroupId,
    pub active: bool,
    /// Oldest first; never empty.
    pub revisions: Vec<Revision>,
}

impl Policy {
    pub fn current(&self) -> &Revision {
        self.revisions
            .last()
            .expect("a policy has its first revision")
    }

    pub fn revision(&self, number: u32) -> Result<&Revision, ServerError> {
        self.revisions
            .iter()
            .find(|r| r.number == number)
            .ok_or_else(|| {
                ServerError::not_found(format!(
                    "policy {:?} has no revision {number} (revisions 1 to {})",
                    self.name,
                    self.current().number
                ))
            })
    }
}

/// The settings of a policy document's `settings` object (`{section: {key: value |
/// {"value": v, "locked": b, "versions": {...}}}}`), by dotted path; an error names the
/// place below `path` and what is wrong.
pub fn parse_settings(settings: &Json, path: &str) -> Result<Settings, String> {
    let Json::Object(sections) = settings else {
        return Err(format!("{path}: expected an object of sections"));
    };
    let mut parsed = Settings::new();
    for (section, keys) in sections {
        let at = join(path, section);
        let Json::Object(keys) = keys else {
            return Err(format!("{at}: expected an object of settings"));
        };
        for (key, value) in keys {
            let at = join(&at, key);
            parsed.insert(format!("{section}.{key}"), parse_entry(value, &at)?);
        }
    }
    Ok(parsed)
}

fn parse_entry(value: &Json, path: &str) -> Result<Entry, String> {
    let Json::Object(wrapped) = value else {
        return Ok(Entry {
            value: value.clone(),
            locked: false,
            versions: None,
        });
    };
    for key in wrapped.keys() {
        if !["value", "locked", "versions"].contains(&key.as_str()) {
            return Err(format!(
                "{}: unknown field `{key}`, expected `value`, `locked` or `versions`",
                join(path, key)
            ));
        }
    }
    let value = wrapped
        .get("value")
        .cloned()
        .ok_or_else(|| format!("{path}: missing field `value`"))?;
    let locked = match wrapped.get("locked") {
        None => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "{}: expected true or false, got {other}",
                join(path, "locked")
            ))
        }
    };
    Ok(Entry {
        value,
        locked,
        versions: wrapped.get("versions").cloned(),
    })
}

/// The `settings` object of a policy document stating `settings`.
pub fn settings_json(settings: &Settings) -> Json {
    let mut sections = Map::new();
    for (path, entry) in settings {
        let (section, key) = path.split_once('.').unwrap_or(("", path));
        let slot = sections
            .entry(section.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(keys) = slot {
            keys.insert(key.to_string(), entry.to_json());
        }
    }
    Json::Object(sections)
}

/// A policy document stating `settings`.
pub fn document(settings: &Settings) -> Json {
    json!({ "settings": settings_json(settings) })
}

/// An entry as a diff shows it: its value, its lock, and the statement versions an
/// acceptance names (`true (locked; ksn v1)`), so a change of the statement accepted shows.
fn show(entry: Option<&Entry>) -> String {
    let Some(e) = entry else {
        return "not set".into();
    };
    let mut notes = Vec::new();
    if e.locked {
        notes.push("locked".to_string());
    }
    if let Some(versions) = e.versions.as_ref().and_then(Json::as_object) {
        for (statement, version) in versions {
            notes.push(format!("{statement} v{version}"));
        }
    }
    if notes.is_empty() {
        e.value.to_string()
    } else {
        format!("{} ({})", e.value, notes.join("; "))
    }
}

fn diff_settings(prefix: &str, before: &Settings, after: &Settings, lines: &mut Vec<String>) {
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (b, a) = (before.get(path), after.get(path));
        if b != a {
            lines.push(format!("{prefix}{path}: {} → {}", show(b), show(a)));
        }
    }
}

/// What changed from `before` to `after`, a line each.
pub fn diff(before: &Content, after: &Content) -> Vec<String> {
    let mut lines = Vec::new();
    diff_settings("", &before.settings, &after.settings, &mut lines);
    if before.force_inheritance != after.force_inheritance {
        lines.push(format!(
            "force_inheritance: {} → {}",
            before.force_inheritance, after.force_inheritance
        ));
    }
    for (place, profile) in after.profiles.iter().enumerate() {
        match before.profiles.iter().position(|p| p.name == profile.name) {
            None => lines.push(format!(
                "profile {:?} added (priority {}, when {})",
                profile.name,
                place + 1,
                profile.condition.describe()
            )),
            Some(was) => {
                let old = &before.profiles[was];
                if was != place {
                    lines.push(format!(
                        "profile {:?}: priority {} → {}",
                        profile.name,
                        was + 1,
                        place + 1
                    ));
                }
                if old.condition != profile.condition {
                    lines.push(format!(
                        "profile {:?}: when {} → when {}",
                        profile.name,
                        old.condition.describe(),
                        profile.condition.describe()
                    ));
                }
                let prefix = format!("profile {:?}: ", profile.name);
                diff_settings(&prefix, &old.settings, &profile.settings, &mut lines);
            }
        }
    }
    for profile in &before.profiles {
        if !after.profiles.iter().any(|p| p.name == profile.name) {
            lines.push(format!("profile {:?} removed", profile.name));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips_through_its_settings() {
        let doc = json!({"data_handling": {
            "ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}},
            "send_statistics": false,
        }, "task": {"checksum_limit_mb": {"value": 8}}});
        let settings = parse_settings(&doc, "settings").unwrap();
        assert_eq!(settings.len(), 3);
        assert!(settings["data_handling.ksn_statement_accepted"].locked);
        let back = settings_json(&settings);
        assert_eq!(back["task"]["checksum_limit_mb"], json!(8));
        assert_eq!(
            back["data_handling"]["ksn_statement_accepted"],
            doc["data_handling"]["ksn_statement_accepted"]
        );
    }

    #[test]
    fn a_malformed_document_is_refused_with_its_place() {
        for (doc, place) in [
            (json!([]), "settings: expected an object"),
            (json!({"task": 3}), "settings.task: expected an object"),
            (
                json!({"task": {"x": {"value": 1, "lock": true}}}),
                "settings.task.x.lock: unknown field",
            ),
            (
                json!({"task": {"x": {"locked": true}}}),
                "settings.task.x: missing field `value`",
            ),
            (
                json!({"task": {"x": {"value": 1, "locked": 1}}}),
                "settings.task.x.locked: expected",
            ),
        ] {
            let e = parse_settings(&doc, "settings").unwrap_err();
            assert!(e.starts_with(place), "{e}");
        }
    }

    #[test]
    fn a_diff_names_each_change() {
        let entry = |v: Json, locked| Entry {
            value: v,
            locked,
            versions: None,
        };
        let mut before = Content::default();
        before
            .settings
            .insert("task.a".into(), entry(json!(1), false));
        let mut after = before.clone();
        after
            .settings
            .insert("task.a".into(), entry(json!(2), true));
        after.force_inheritance = true;
        after.profiles.push(Profile {
            name: "Away".into(),
            condition: Condition {
                out_of_office: Some(true),
                tags: vec![],
            },
            settings: Settings::new(),
        });
        assert_eq!(
            diff(&before, &after),
            vec![
                "task.a: 1 → 2 (locked)".to_string(),
                "force_inheritance: false → true".into(),
                "profile \"Away\" added (priority 1, when out_of_office = true)".into(),
            ]
        );
        // An acceptance that moved from one statement to the other shows it.
        let accepted = |versions: Json| Entry {
            value: json!(true),
            locked: true,
            versions: Some(versions),
        };
        let mut a = Content::default();
        a.settings
            .insert("d.accepted".into(), accepted(json!({"private_ksn": 1})));
        let mut b = Content::default();
        b.settings
            .insert("d.accepted".into(), accepted(json!({"ksn": 1})));
        assert_eq!(
            diff(&a, &b),
            vec!["d.accepted: true (locked; private_ksn v1) → true (locked; ksn v1)".to_string()]
        );
        assert_eq!(
            diff(&after, &before).last().unwrap(),
            "profile \"Away\" removed"
        );
    }
}
