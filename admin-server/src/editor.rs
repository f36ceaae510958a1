//! The Administration Server's policy editor. An administrator who ticks an acceptance box
//! accepts the statements the editor shows: for a policy whose groups are all in one mode,
//! the statement the box accepts in that mode; for a policy that covers groups in both
//! modes (a group with its own Private KSN setting below it), both statements, each with
//! its version, as the loaded plugin describes them. A policy saved with an acceptance
//! that names no version is stamped with those; a version given is kept as given. The
//! server stores the stamped document and sends it unchanged whenever it sends that policy
//! again, so an acceptance is in force on a device only where it names the version of the
//! statement of the device's mode (a group that changes mode later needs a new save).
//! Generic: the editor knows acceptance boxes only from the plugin's `describe` (the
//! settings whose `accepts` lists statements).

use plugin_api::documents::PluginDescription;
use serde_json::{json, Map, Value as Json};

/// `policy` with every unversioned acceptance stamped with the statement of each mode in
/// `modes` (`[Global, Private]`); unchanged when the plugin describes no versioned
/// statements (an older plugin, whose policies carry none), or when the document is not a
/// policy at all (the plugin will say why).
pub fn stamp(policy: &Json, description: Option<&PluginDescription>, modes: [bool; 2]) -> Json {
    let mut stamped = policy.clone();
    let Some(description) = description else {
        return stamped;
    };
    for setting in description
        .settings
        .iter()
        .filter(|s| !s.accepts.is_empty())
    {
        let mut versions = Map::new();
        for private in [false, true].into_iter().filter(|m| modes[usize::from(*m)]) {
            let Some(statement) = setting.statement_in_mode(private) else {
                continue;
            };
            if let Some(shown) = description.statement(statement) {
                versions.insert(statement.as_str().into(), json!(shown.version));
            }
        }
        if versions.is_empty() {
            continue;
        }
        let Some(value) = stamped
            .get_mut("settings")
            .and_then(|s| s.get_mut(setting.section()))
            .and_then(|s| s.get_mut(setting.key()))
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

/// Checks a stamped policy against the plugin's own policy schema, as the editor does
/// before it saves a group policy (its devices may not be there to refuse it): the first
/// error, with its place (`settings.task.checksum_limit_mb: 5000 is greater than ...`).
pub fn check(policy: &Json, description: Option<&PluginDescription>) -> Result<(), String> {
    let Some(description) = description else {
        return Ok(());
    };
    // A schema that does not compile says nothing; the plugin still judges the document.
    let Ok(validator) = jsonschema::validator_for(&description.policy_schema) else {
        return Ok(());
    };
    let first = validator.iter_errors(policy).next().map(|error| {
        let place = error
            .instance_path
            .to_string()
            .trim_start_matches('/')
            .replace('/', ".");
        if place.is_empty() {
            error.to_string()
        } else {
            format!("{place}: {error}")
        }
    });
    first.map_or(Ok(()), Err)
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
            "additionalProperties": {"type": "integer", "minimum": 1},
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
            stamp(&policy(json!(true)), Some(&d), one_mode(false)),
            policy(json!({"value": true, "versions": {"ksn": 2}}))
        );
        assert_eq!(
            stamp(
                &policy(json!({"value": true, "locked": true})),
                Some(&d),
                one_mode(true)
            ),
            policy(json!({"value": true, "locked": true, "versions": {"private_ksn": 1}}))
        );
    }

    #[test]
    fn a_policy_over_groups_in_both_modes_names_a_version_of_each_statement() {
        let d = description();
        assert_eq!(
            stamp(&policy(json!(true)), Some(&d), [true, true]),
            policy(json!({"value": true, "versions": {"ksn": 2, "private_ksn": 1}}))
        );
    }

    #[test]
    fn versions_given_withdrawals_and_older_plugins_are_left_as_they_are() {
        let d = description();
        let given = policy(json!({"value": true, "versions": {"ksn": 1}}));
        assert_eq!(stamp(&given, Some(&d), one_mode(false)), given);
        for value in [json!(false), json!({"value": false, "locked": true})] {
            assert_eq!(
                stamp(&policy(value.clone()), Some(&d), one_mode(false)),
                policy(value)
            );
        }
        assert_eq!(
            stamp(&policy(json!(true)), None, one_mode(false)),
            policy(json!(true))
        );
        assert_eq!(stamp(&json!([1]), Some(&d), one_mode(false)), json!([1]));
    }
}
