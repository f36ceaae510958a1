//! The plugin's description of itself (the contract's `describe`): the settings table, the
//! JSON Schemas of the settings documents generated from it (so that editors and CI can
//! check a policy before it is pushed), and the statements' texts. The task itself
//! validates with `doc`, which also checks what a schema cannot (Managed Protection needs
//! the KSN statement).

use serde_json::{json, Map, Value as Json};

use plugin_api::documents::{PluginDescription, SettingDescription, SettingRole, ValueType};

use super::{
    statements,
    table::{Kind, Role, SECTIONS, TABLE},
};

/// What `describe` answers.
pub fn description() -> PluginDescription {
    PluginDescription {
        settings: TABLE
            .iter()
            .map(|d| SettingDescription {
                path: d.path.to_string(),
                value_type: match d.kind {
                    Kind::Bool => ValueType::Boolean,
                    Kind::Int { min, max } => ValueType::Integer {
                        minimum: min.into(),
                        maximum: max.into(),
                    },
                    Kind::Choice(options) => ValueType::Choice {
                        options: options.iter().map(|o| o.to_string()).collect(),
                    },
                },
                default: d.default.to_json(),
                role: match d.role {
                    Role::Plain => SettingRole::Plain,
                    Role::Statement => SettingRole::Statement,
                    Role::GlobalOnly => SettingRole::GlobalOnly,
                    Role::GlobalRouting => SettingRole::GlobalRouting,
                },
                meaning: d.summary.to_string(),
                accepts: d.setting.accepts().to_vec(),
            })
            .collect(),
        policy_schema: policy_schema(),
        local_schema: local_schema(),
        statements: statements::described(),
    }
}

fn value_schema(kind: Kind) -> Json {
    match kind {
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Choice(options) => json!({"enum": options}),
    }
}

fn sections(entry: impl Fn(&super::table::Descriptor) -> Json) -> Json {
    let mut properties = Map::new();
    for section in SECTIONS {
        let mut keys = Map::new();
        for d in TABLE.iter().filter(|d| d.section == *section) {
            keys.insert(d.key.to_string(), entry(d));
        }
        properties.insert(
            section.to_string(),
            json!({"type": "object", "properties": keys, "additionalProperties": false}),
        );
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

fn described(d: &super::table::Descriptor, mut schema: Json) -> Json {
    schema["description"] = json!(d.summary);
    schema["default"] = d.default.to_json();
    schema
}

/// `{"ksn": 1, ...}`: the statements an acceptance box accepts, each a version from 1.
fn versions_schema(d: &super::table::Descriptor) -> Json {
    let properties: Map<String, Json> = d
        .setting
        .accepts()
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
            )
        })
        .collect();
    json!({
        "type": "object",
        "description": "the version of each statement the administrator read, as shown when the box was ticked",
        "properties": properties,
        "additionalProperties": false,
        "minProperties": 1,
    })
}

/// A local settings change: `{section: {key: value}}`; an acceptance may name the version
/// the device shows (`{"value": true, "versions": {...}}`).
pub fn local_schema() -> Json {
    let mut schema = sections(|d| {
        let plain = value_schema(d.kind);
        if d.role != Role::Statement {
            return described(d, plain);
        }
        described(
            d,
            json!({"oneOf": [
                plain,
                {
                    "type": "object",
                    "properties": {"value": plain, "versions": versions_schema(d)},
                    "required": ["value"],
                    "additionalProperties": false,
                },
            ]}),
        )
    });
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["title"] = json!("KSN Usage task: local settings change");
    schema
}

/// A policy: `{"settings": {section: {key: value | {"value": v, "locked": b}}}}`; an
/// acceptance (`true` in an acceptance box) is `{"value": true, "versions": {...}}`.
pub fn policy_schema() -> Json {
    let settings = sections(|d| {
        let plain = value_schema(d.kind);
        let locked = json!({"type": "boolean", "description": "enforced: a local change to another value is refused"});
        if d.role == Role::Statement {
            // A plain `false` withdraws; accepting needs the object with its versions.
            return described(
                d,
                json!({"oneOf": [
                    {"const": false},
                    {
                        "type": "object",
                        "properties": {"value": plain, "locked": locked, "versions": versions_schema(d)},
                        "required": ["value"],
                        "additionalProperties": false,
                        "if": {"properties": {"value": {"const": true}}},
                        "then": {"required": ["value", "versions"]},
                    },
                ]}),
            );
        }
        described(
            d,
            json!({"oneOf": [
                plain,
                {
                    "type": "object",
                    "properties": {"value": plain, "locked": locked},
                    "required": ["value"],
                    "additionalProperties": false,
                },
            ]}),
        )
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "KSN Usage task: policy",
        "type": "object",
        "properties": {"settings": settings},
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_the_table_is_in_both_schemas() {
        let policy = policy_schema();
        let local = local_schema();
        for d in &TABLE {
            let p = &policy["properties"]["settings"]["properties"][d.section]["properties"][d.key];
            assert_eq!(p["default"], d.default.to_json(), "{}", d.path);
            let l = &local["properties"][d.section]["properties"][d.key];
            assert_eq!(l["description"], d.summary, "{}", d.path);
        }
        let limit = &local["properties"]["task"]["properties"]["checksum_limit_mb"];
        assert_eq!(
            (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
            (Some(1), Some(1024))
        );
    }
}
