//! Schema pieces for fields whose type says less than their rule (an MD5's digits, a
//! service that must not be `none`, a reputation that is not `unavailable`), used by the
//! scenario format's types. The vocabularies' own schemas come with them from plugin-api.

use plugin_api::{ErrorKind, Verdict};
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Value as Json};

pub(crate) fn schema(value: Json) -> Schema {
    Schema::try_from(value).expect("a schema is a JSON object")
}

pub(crate) fn policy(_: &mut SchemaGenerator) -> Schema {
    schema(
        json!({"description": "a policy (`host-sim schema policy`); checked against it unless the step has expect_error"}),
    )
}

pub(crate) fn policy_or_null(_: &mut SchemaGenerator) -> Schema {
    schema(
        json!({"description": "a policy (`host-sim schema policy`), replacing the policy's settings; absent or null: they stay"}),
    )
}

pub(crate) fn local(_: &mut SchemaGenerator) -> Schema {
    schema(
        json!({"description": "a local settings change (`host-sim schema local`); checked against it unless the step has expect_error"}),
    )
}

pub(crate) fn service(_: &mut SchemaGenerator) -> Schema {
    schema(json!({"type": "string", "enum": ["global", "proxy", "private"]}))
}

pub(crate) fn error_or_null(_: &mut SchemaGenerator) -> Schema {
    let mut kinds: Vec<Json> = ErrorKind::names().into_iter().map(Json::from).collect();
    kinds.push(Json::Null);
    schema(json!({"enum": kinds}))
}

pub(crate) fn md5(_: &mut SchemaGenerator) -> Schema {
    schema(json!({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}))
}

/// The verdicts a database may hold: `unavailable` is not a reputation.
pub(crate) fn reputations() -> Vec<&'static str> {
    Verdict::names()
        .into_iter()
        .filter(|v| *v != Verdict::UNAVAILABLE.as_str())
        .collect()
}

pub(crate) fn file_verdicts(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "object",
        "propertyNames": {"pattern": "^[0-9a-fA-F]{32}$"},
        "additionalProperties": {"enum": reputations()},
    }))
}

pub(crate) fn url_verdicts(_: &mut SchemaGenerator) -> Schema {
    schema(json!({"type": "object", "additionalProperties": {"enum": reputations()}}))
}
