//! The JSON Schema of scenario files, derived with schemars from the parser's own types,
//! with the loaded plugin's policy and local-change schemas (from its `describe`) in the
//! steps that carry those documents. `host-sim schema` prints it.

use plugin_api::documents::PluginDescription;
use serde_json::{json, Value as Json};

use super::model::{ExpectedError, ScenarioHead};

fn without_header(mut value: Json) -> Json {
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    value
}

/// The scenario format, for a plugin described by `description`. Every `do` step may also
/// carry `expect_error`, which the parser takes off before reading the step; the schema
/// adds it to each step kind.
pub fn scenario_schema(description: &PluginDescription) -> Json {
    let mut root = schemars::schema_for!(ScenarioHead).to_value();
    root["title"] = json!("KSN Usage task: host-sim scenario");
    // Devices in the root group, at least one unless groups hold them.
    root["if"] = json!({"not": {"required": ["groups"]}});
    root["then"] = json!({"properties": {"devices": {"minimum": 1}}});
    let expect_error = json!({"enum": ExpectedError::names(), "description": "the step must fail with exactly this kind: the plugin's error kind, or the server's refusal (not_found, name_taken, invalid_name, invalid_settings, limit_exceeded, not_allowed)"});
    let on = schemars::schema_for!(crate::world::admin::Target).to_value();
    let on = without_header(on);
    if let Some(variants) = root["$defs"]["Action"]["oneOf"].as_array_mut() {
        for variant in variants {
            variant["properties"]["expect_error"] = expect_error.clone();
            variant["properties"]["on"] = on.clone();
            // A step that expects an error may carry a broken document on purpose; one that
            // does not must carry a valid one.
            for (field, strict) in [
                // As the policy editor takes it: it stamps the versions not given.
                ("policy", admin_server::editor::policy_schema(description)),
                ("settings", description.local_schema.clone()),
            ] {
                if variant["properties"].get(field).is_some() {
                    variant["if"] = json!({"required": ["expect_error"]});
                    variant["else"] = json!({"properties": {field: without_header(strict)}});
                }
            }
        }
    }
    root
}
