//! Steps that change settings: a policy push and a local change.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{json_argument, StepError, StepKind};
use crate::world::{Answers, World};

/// The administrator saves a policy and the Administration Server pushes it, replacing the
/// previous one. The policy editor stamps every acceptance that names no statement version
/// with the version the plugin shows now ("the administrator accepts the statement as shown
/// now"); the server stores the document so stamped.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PushPolicy {
    #[schemars(schema_with = "crate::schemas::policy")]
    pub policy: Json,
}

impl StepKind for PushPolicy {
    const NAME: &'static str = "push_policy";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<json> | @file";
    const HELP: &'static str = "push a policy";

    fn fields(_: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        Ok(Map::from_iter([("policy".into(), json_argument(rest)?)]))
    }

    fn arguments(&self) -> String {
        compact(&self.policy)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.push_policy(&self.policy.to_string())?)
    }
}

/// Synchronisation: the Administration Server sends every device its stored policy again,
/// unchanged, as it does at every sync (an acceptance stays of the version read then).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Resync {}

impl StepKind for Resync {
    const NAME: &'static str = "resync";
    const USAGE: &'static str = "";
    const HELP: &'static str = "the server sends every device its stored policy again, unchanged";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        super::no_fields::<Self>(words)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.resync())
    }
}

/// A local change on every device, e.g. `{"task": {"action_on_untrusted": "log"}}`.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetLocal {
    #[schemars(schema_with = "crate::schemas::local")]
    pub settings: Json,
}

impl StepKind for SetLocal {
    const NAME: &'static str = "set_local";
    const USAGE: &'static str = "<json> | @file";
    const HELP: &'static str = "a local settings change";

    fn fields(_: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        Ok(Map::from_iter([("settings".into(), json_argument(rest)?)]))
    }

    fn arguments(&self) -> String {
        compact(&self.settings)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.set_local(&self.settings.to_string()))
    }
}

/// A document in at most 120 characters.
fn compact(json: &Json) -> String {
    let text = json.to_string();
    match text.char_indices().nth(117) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}
