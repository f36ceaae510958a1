//! Steps on the task and the host: start, stop, and a restart of the host.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{no_fields, StepError, StepKind};
use crate::world::{Answers, World};

/// Starts the task.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Start {}

impl StepKind for Start {
    const NAME: &'static str = "start";
    const USAGE: &'static str = "";
    const HELP: &'static str = "start the task";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        no_fields::<Self>(words)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.start())
    }
}

/// Stops the task.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Stop {}

impl StepKind for Stop {
    const NAME: &'static str = "stop";
    const USAGE: &'static str = "";
    const HELP: &'static str = "stop the task";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        no_fields::<Self>(words)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.stop())
    }
}

/// The host restarts: task instances are created again from storage. With `plugin`, the
/// host comes back with another build of the plugin (an update): a library name
/// (`fixture_updated_plugin`), found the way the plugin itself is, or a path.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RestartHost {
    #[serde(default)]
    pub plugin: Option<String>,
}

impl StepKind for RestartHost {
    const NAME: &'static str = "restart_host";
    const USAGE: &'static str = "[plugin]";
    const HELP: &'static str = "restart the host: task instances are created again from storage (with plugin: another build)";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [] => Ok(Map::new()),
            [plugin] => Ok(Map::from_iter([("plugin".into(), Json::from(*plugin))])),
            _ => Err(super::usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        self.plugin
            .as_ref()
            .map(|p| format!("with {p}"))
            .unwrap_or_default()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        let update = match &self.plugin {
            None => None,
            Some(name) => Some(
                world
                    .load_library(name)
                    .map_err(|e| format!("plugin: {e}"))?,
            ),
        };
        Ok(world.restart_host(update))
    }
}
