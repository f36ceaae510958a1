//! Steps that change settings: a policy push and a local change.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{json_argument, StepKind};
use crate::world::{Answers, World};

/// The Administration Server pushes a policy, replacing the previous one.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PushPolicy {
    #[schemars(schema_with = "crate::schemas::policy")]
    pub policy: Json,
}

impl StepKind for PushPolicy {
    const NAME: &'static str = "push_policy";
    const USAGE: &'static str = "<json> | @file";
    const HELP: &'static str = "push a policy";

    fn fields(_: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        Ok(Map::from_iter([("policy".into(), json_argument(rest)?)]))
    }

    fn arguments(&self) -> String {
        compact(&self.policy)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, String> {
        Ok(world.push_policy(&self.policy.to_string()))
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

    fn perform(&self, world: &mut World) -> Result<Answers, String> {
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
