//! The Administration Server's policy editor. An administrator who ticks an acceptance box
//! accepts the statements the editor shows: for a policy whose groups are all in one mode,
//! the statement the box accepts in that mode; for a policy that covers groups in both
//! modes (a group with its own Private KSN setting below it), both statements; and for a
//! policy over devices of several plugin versions, the statement of each version, each with
//! its version, as those plugins describe them. A policy saved with an acceptance that
//! names no version is stamped with those; a version given is kept as given. Where one
//! statement is shown in several versions, the acceptance names them all
//! (`{"ksn": [1, 2]}`); a device is sent the one its version ships, if the acceptance
//! names it (`narrow`), so an acceptance is in force on a device only where the
//! administrator read its version. The server stores the stamped document and sends it
//! unchanged whenever it sends that policy again (a group that changes mode, or a device
//! that is updated, later needs a new save). Generic: the editor knows acceptance boxes
//! only from the plugins' `describe` (the settings whose `accepts` lists statements).

use std::collections::{BTreeMap, BTreeSet};

use plugin_api::documents::{PluginDescription, Statement};
use serde_json::{json, Map, Value as Json};

use crate::policy::{Entry, Settings};

/// `policy` with every unversioned acceptance stamped with the statement each of
/// `descriptions` shows in each mode of `modes` (`[Global, Private]`); unchanged when no
/// plugin describes versioned statements (an older plugin, whose policies carry none), or
/// when the document is not a policy at all (the plugin will say why).
pub fn stamp(policy: &Json, descriptions: &[&PluginDescription], modes: [bool; 2]) -> Json {
    let mut stamped = policy.clone();
    // Each acceptance box, by path: the versions of each statement it is shown with.
    let mut boxes: BTreeMap<(String, String), BTreeMap<&'static str, BTreeSet<u32>>> =
        BTreeMap::new();
    for description in descriptions {
        for setting in description
            .settings
            .iter()
            .filter(|s| !s.accepts.is_empty())
        {
            let shown = boxes
                .entry((setting.section().to_string(), setting.key().to_string()))
                .or_default();
            for private in [false, true].into_iter().filter(|m| modes[usize::from(*m)]) {
                let Some(statement) = setting.statement_in_mode(private) else {
                    continue;
                };
                if let Some(text) = description.statement(statement) {
                    shown
                        .entry(statement.as_str())
                        .or_default()
                        .insert(text.version);
                }
            }
        }
    }
    for ((section, key), shown) in boxes {
        if shown.is_empty() {
            continue;
        }
        let versions: Map<String, Json> = shown
            .into_iter()
            .map(|(statement, versions)| {
                let versions: Vec<u32> = versions.into_iter().collect();
                let named = match versions.as_slice() {
                    [one] => json!(one),
                    several => json!(several),
                };
                (statement.to_string(), named)
            })
            .collect();
        let Some(value) = stamped
            .get_mut("settings")
            .and_then(|s| s.get_mut(&section))
            .and_then(|s| s.get_mut(&key))
        else {
            continue;
        };
        let versions = Json::Object(versions);
        match value {
            Json::Bool(true) => *value = json!({"value": true, "versions": versions}),
            Json::Object(wrapped)
                if wrapped.get("value") == Some(&Json::Bool(true))
                    && !wrapped.contains_key("versions") =>
            {
                wrapped.insert("versions".into(), versions);
            }
            _ => {}
        }
    }
    stamped
}

/// An acceptance's versions as one plugin version takes them: of each statement, the
/// version that plugin ships where the acceptance names it, else the first it names (which
/// that plugin finds not in force, and says so).
fn narrow_versions(versions: &Json, description: &PluginDescription) -> Json {
    let Some(named) = versions.as_object() else {
        return versions.clone();
    };
    let narrowed = named
        .iter()
        .map(|(statement, given)| {
            let ships = serde_json::from_value::<Statement>(Json::String(statement.clone()))
                .ok()
                .and_then(|s| description.statement(s))
                .map(|t| u64::from(t.version));
            let one = match given {
                Json::Array(list) => list
                    .iter()
                    .find(|v| v.as_u64().is_some() && v.as_u64() == ships)
                    .or(list.first())
                    .cloned()
                    .unwrap_or(Json::Null),
                other => other.clone(),
            };
            (statement.clone(), one)
        })
        .collect();
    Json::Object(narrowed)
}

/// What a device of the version `description` describes is sent of `settings`: each
/// acceptance naming the one version of each statement it can take, and no setting that
/// another version of the fleet knows and this one does not (`elsewhere`): those are not
/// managed on it. A setting no version knows is sent as it is, for the plugin to refuse.
pub fn narrow(
    settings: &Settings,
    description: Option<&PluginDescription>,
    elsewhere: impl Fn(&str) -> bool,
) -> Settings {
    let Some(description) = description else {
        return settings.clone();
    };
    settings
        .iter()
        .filter(|(path, _)| description.setting(path).is_some() || !elsewhere(path))
        .map(|(path, entry)| {
            let versions = entry
                .versions
                .as_ref()
                .map(|v| narrow_versions(v, description));
            (
                path.clone(),
                Entry {
                    versions,
                    ..entry.clone()
                },
            )
        })
        .collect()
}

/// A policy document as `description`'s version would be sent it (for its schema's check).
fn narrow_document(policy: &Json, description: &PluginDescription) -> Json {
    let mut narrowed = policy.clone();
    let Some(sections) = narrowed.get_mut("settings").and_then(Json::as_object_mut) else {
        return narrowed;
    };
    for (section, keys) in sections.iter_mut() {
        let Some(keys) = keys.as_object_mut() else {
            continue;
        };
        keys.retain(|key, _| description.setting(&format!("{section}.{key}")).is_some());
        for value in keys.values_mut() {
            if let Some(versions) = value.get("versions").cloned() {
                value["versions"] = narrow_versions(&versions, description);
            }
        }
    }
    sections.retain(|_, keys| keys.as_object().is_none_or(|k| !k.is_empty()));
    narrowed
}

/// The settings of a policy document the server can hold (`{"settings": {...}}` and
/// nothing else); `None` for anything else, which only the plugin can say why it refuses.
pub fn holdable(doc: &Json) -> Option<crate::Settings> {
    let object = doc.as_object()?;
    if object.keys().any(|k| k != "settings") {
        return None;
    }
    crate::policy::parse_settings(object.get("settings")?, "settings").ok()
}

/// The modes of a server whose groups are all in the server's.
pub fn one_mode(private_ksn: bool) -> [bool; 2] {
    let mut modes = [false; 2];
    modes[usize::from(private_ksn)] = true;
    modes
}

/// Checks a stamped policy against the policy schema of each plugin version it is for, as
/// the editor does before it saves a group policy (its devices may not be there to refuse
/// it): each version is checked on what it would be sent; a setting no version knows is
/// refused. The first error, with its place (`settings.task.checksum_limit_mb: 5000 is
/// greater than ...`), and the version where there are several.
pub fn check(policy: &Json, descriptions: &[(String, &PluginDescription)]) -> Result<(), String> {
    if descriptions.is_empty() {
        return Ok(());
    }
    if let Some(sections) = policy.get("settings").and_then(Json::as_object) {
        for (section, keys) in sections {
            for key in keys.as_object().into_iter().flat_map(|k| k.keys()) {
                let path = format!("{section}.{key}");
                if descriptions.iter().all(|(_, d)| d.setting(&path).is_none()) {
                    let known: Vec<&str> = descriptions
                        .iter()
                        .flat_map(|(_, d)| d.settings.iter().map(|s| s.path.as_str()))
                        .collect();
                    return Err(format!(
                        "settings.{path}: no plugin version this policy reaches knows it{}",
                        plugin_api::documents::path::did_you_mean(&path, known.into_iter())
                    ));
                }
            }
        }
    }
    for (label, description) in descriptions {
        // A schema that does not compile says nothing; the plugin still judges the document.
        let Ok(validator) = jsonschema::validator_for(&description.policy_schema) else {
            continue;
        };
        let sent = narrow_document(policy, description);
        let first = validator.iter_errors(&sent).next().map(|error| {
            let place = error
                .instance_path
                .to_string()
                .trim_start_matches('/')
                .replace('/', ".");
            let of = if descriptions.len() > 1 {
                format!(" (for {label})")
            } else {
                String::new()
            };
            if place.is_empty() {
                format!("{error}{of}")
            } else {
                format!("{place}: {error}{of}")
            }
        });
        if let Some(error) = first {
            return Err(error);
        }
    }
    Ok(())
}

/// The policy as the editor takes it (a scenario's `push_policy`): the plugin's own schema,
/// but for acceptance boxes, whose versions the editor stamps when they are not given.
pub fn policy_schema(description: &PluginDescription) -> Json {
    let mut schema = description.policy_schema.clone();
    for setting in description
        .settings
        .iter()
        .filter(|s| !s.accepts.is_empty())
    {
        let Some(slot) = schema.pointer_mut(&format!(
            "/properties/settings/properties/{}/properties/{}",
            setting.section(),
            setting.key()
        )) else {
            continue;
        };
        let statements: Vec<&str> = setting.accepts.iter().map(|s| s.as_str()).collect();
        let versions = json!({
            "type": "object",
            "propertyNames": {"enum": statements},
            // A version, or several where the editor showed the statement of several
            // plugin versions (each device is sent the one it ships).
            "additionalProperties": {"oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "uniqueItems": true},
            ]},
        });
        let mut relaxed = json!({"oneOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "properties": {
                    "value": {"type": "boolean"},
                    "locked": {"type": "boolean"},
                    "versions": versions,
                },
                "required": ["value"],
                "additionalProperties": false,
            },
        ]});
        for key in ["description", "default"] {
            if let Some(kept) = slot.get(key) {
                relaxed[key] = kept.clone();
            }
        }
        *slot = relaxed;
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::documents::{
        SettingDescription, SettingRole, Statement, StatementText, ValueType,
    };

    fn description() -> PluginDescription {
        let text = |statement, version| StatementText {
            statement,
            version,
            title: String::new(),
            text: String::new(),
        };
        PluginDescription {
            settings: vec![SettingDescription {
                path: "data_handling.ksn_statement_accepted".into(),
                value_type: ValueType::Boolean,
                default: json!(false),
                role: SettingRole::Statement,
                meaning: String::new(),
                accepts: vec![Statement::Ksn, Statement::PrivateKsn],
            }],
            policy_schema: json!({}),
            local_schema: json!({}),
            statements: vec![text(Statement::Ksn, 2), text(Statement::PrivateKsn, 1)],
        }
    }

    fn policy(value: Json) -> Json {
        json!({"settings": {"data_handling": {"ksn_statement_accepted": value}}})
    }

    #[test]
    fn an_acceptance_is_of_the_statement_shown_in_the_server_s_mode() {
        let d = description();
        assert_eq!(
            stamp(&policy(json!(true)), &[&d], one_mode(false)),
            policy(json!({"value": true, "versions": {"ksn": 2}}))
        );
        assert_eq!(
            stamp(
                &policy(json!({"value": true, "locked": true})),
                &[&d],
                one_mode(true)
            ),
            policy(json!({"value": true, "locked": true, "versions": {"private_ksn": 1}}))
        );
    }

    #[test]
    fn a_policy_over_groups_in_both_modes_names_a_version_of_each_statement() {
        let d = description();
        assert_eq!(
            stamp(&policy(json!(true)), &[&d], [true, true]),
            policy(json!({"value": true, "versions": {"ksn": 2, "private_ksn": 1}}))
        );
    }

    #[test]
    fn versions_given_withdrawals_and_older_plugins_are_left_as_they_are() {
        let d = description();
        let given = policy(json!({"value": true, "versions": {"ksn": 1}}));
        assert_eq!(stamp(&given, &[&d], one_mode(false)), given);
        for value in [json!(false), json!({"value": false, "locked": true})] {
            assert_eq!(
                stamp(&policy(value.clone()), &[&d], one_mode(false)),
                policy(value)
            );
        }
        assert_eq!(
            stamp(&policy(json!(true)), &[], one_mode(false)),
            policy(json!(true))
        );
        assert_eq!(stamp(&json!([1]), &[&d], one_mode(false)), json!([1]));
    }

    fn updated() -> PluginDescription {
        let mut d = description();
        d.statements[0].version = 3;
        d
    }

    #[test]
    fn a_policy_over_two_versions_names_the_statement_of_each_and_each_device_gets_its_own() {
        let (old, new) = (description(), updated());
        let stamped = stamp(&policy(json!(true)), &[&old, &new], one_mode(false));
        assert_eq!(
            stamped,
            policy(json!({"value": true, "versions": {"ksn": [2, 3]}}))
        );
        let settings = crate::policy::parse_settings(&stamped["settings"], "settings").unwrap();
        let sent = |d: &PluginDescription| {
            narrow(&settings, Some(d), |_| true)["data_handling.ksn_statement_accepted"]
                .versions
                .clone()
        };
        assert_eq!(sent(&old), Some(json!({"ksn": 2})));
        assert_eq!(sent(&new), Some(json!({"ksn": 3})));
        // An acceptance of the old version only: the new one is sent it, and finds it not
        // in force.
        let read_old = crate::policy::parse_settings(
            &policy(json!({"value": true, "versions": {"ksn": [2]}}))["settings"],
            "settings",
        )
        .unwrap();
        assert_eq!(
            narrow(&read_old, Some(&new), |_| true)["data_handling.ksn_statement_accepted"]
                .versions,
            Some(json!({"ksn": 2}))
        );
    }

    #[test]
    fn a_device_is_sent_only_the_settings_its_version_knows() {
        let d = description();
        let settings = crate::policy::parse_settings(
            &json!({"data_handling": {"ksn_statement_accepted": false}, "task": {"new_in_2": 5}}),
            "settings",
        )
        .unwrap();
        let sent = narrow(&settings, Some(&d), |path| path == "task.new_in_2");
        assert_eq!(
            sent.keys().collect::<Vec<_>>(),
            ["data_handling.ksn_statement_accepted"]
        );
        let unknown_everywhere = narrow(&settings, Some(&d), |_| false);
        assert_eq!(
            unknown_everywhere, settings,
            "sent for the plugin to refuse"
        );
        assert_eq!(
            narrow(&settings, None, |_| true),
            settings,
            "a plugin that does not describe itself"
        );
        // The check: a setting no version knows is refused; one some version knows is not.
        let mut with_new = d.clone();
        with_new
            .settings
            .push(plugin_api::documents::SettingDescription {
                path: "task.new_in_2".into(),
                ..d.settings[0].clone()
            });
        let doc = json!({"settings": {"task": {"new_in_2": true}}});
        assert!(check(&doc, &[("old".into(), &d)])
            .unwrap_err()
            .contains("no plugin version"));
        assert!(check(&doc, &[("old".into(), &d), ("new".into(), &with_new)]).is_ok());
    }
}
