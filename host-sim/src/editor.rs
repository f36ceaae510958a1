//! The Administration Server's policy editor. An administrator who ticks an acceptance box
//! accepts the statement the editor shows: its version, of the statement the box accepts
//! in the server's Private KSN mode, as the loaded plugin describes it. A policy saved
//! with an acceptance that names no version is stamped with that one; a version given is
//! kept as given. The server stores the stamped document and sends it unchanged whenever
//! it sends that policy again. Generic: the editor knows acceptance boxes only from the
//! plugin's `describe` (the settings whose `accepts` lists statements).

use plugin_api::documents::PluginDescription;
use serde_json::{json, Value as Json};

/// `policy` with every unversioned acceptance stamped; unchanged when the plugin describes
/// no versioned statements (an older plugin, whose policies carry none), or when the
/// document is not a policy at all (the plugin will say why).
pub fn stamp(policy: &Json, description: Option<&PluginDescription>, private_ksn: bool) -> Json {
    let mut stamped = policy.clone();
    let Some(description) = description else {
        return stamped;
    };
    for setting in description
        .settings
        .iter()
        .filter(|s| !s.accepts.is_empty())
    {
        let Some(statement) = setting.statement_in_mode(private_ksn) else {
            continue;
        };
        let Some(shown) = description.statement(statement) else {
            continue;
        };
        let Some(value) = stamped
            .get_mut("settings")
            .and_then(|s| s.get_mut(setting.section()))
            .and_then(|s| s.get_mut(setting.key()))
        else {
            continue;
        };
        let versions = json!({ statement.as_str(): shown.version });
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
            stamp(&policy(json!(true)), Some(&d), false),
            policy(json!({"value": true, "versions": {"ksn": 2}}))
        );
        assert_eq!(
            stamp(
                &policy(json!({"value": true, "locked": true})),
                Some(&d),
                true
            ),
            policy(json!({"value": true, "locked": true, "versions": {"private_ksn": 1}}))
        );
    }

    #[test]
    fn versions_given_withdrawals_and_older_plugins_are_left_as_they_are() {
        let d = description();
        let given = policy(json!({"value": true, "versions": {"ksn": 1}}));
        assert_eq!(stamp(&given, Some(&d), false), given);
        for value in [json!(false), json!({"value": false, "locked": true})] {
            assert_eq!(
                stamp(&policy(value.clone()), Some(&d), false),
                policy(value)
            );
        }
        assert_eq!(
            stamp(&policy(json!(true)), None, false),
            policy(json!(true))
        );
        assert_eq!(stamp(&json!([1]), Some(&d), false), json!([1]));
    }
}
