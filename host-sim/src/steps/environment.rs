//! Steps that change the device's world: the mode and the licence the Administration
//! Server reports, the network, storage, and time.

use plugin_api::{LicenseState, Service};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{no_fields, number, usage, StepError, StepKind};
use crate::world::{Answers, World};

/// The Administration Server's KSN proxy settings switch Private KSN on or off (or a
/// group's own, with `group`): connected devices get it at once, the others at their next
/// synchronisation.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetPrivateKsn {
    pub enabled: bool,
    #[serde(default)]
    pub group: Option<String>,
}

impl StepKind for SetPrivateKsn {
    const NAME: &'static str = "set_private_ksn";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "on|off [group]";
    const HELP: &'static str = "the Administration Server (or a group) switches Private KSN";
    const COMPLETE: &'static [&'static [&'static str]] = &[&["on", "off"]];

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        let (switch, group) = match words {
            [switch] => (switch, None),
            [switch, group] => (switch, Some(*group)),
            _ => return Err(usage::<Self>()),
        };
        let enabled = match *switch {
            "on" | "true" => true,
            "off" | "false" => false,
            _ => return Err(usage::<Self>()),
        };
        let mut fields = Map::from_iter([("enabled".into(), Json::from(enabled))]);
        if let Some(group) = group {
            fields.insert("group".into(), Json::from(group));
        }
        Ok(fields)
    }

    fn arguments(&self) -> String {
        match &self.group {
            Some(group) => format!("enabled={} in group {group}", self.enabled),
            None => format!("enabled={}", self.enabled),
        }
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.set_private_ksn_of(self.group.as_deref(), self.enabled)?)
    }
}

/// The licence changes: `valid`, `expired`, or `no_ksn` (valid, but not covering KSN).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetLicense {
    pub state: LicenseState,
}

impl StepKind for SetLicense {
    const NAME: &'static str = "set_license";
    const USAGE: &'static str = "valid|expired|no_ksn";
    const HELP: &'static str = "the licence changes";
    const COMPLETE: &'static [&'static [&'static str]] = &[&["valid", "expired", "no_ksn"]];

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [state] => Ok(Map::from_iter([("state".into(), Json::from(*state))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("state={}", self.state)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.set_license(self.state))
    }
}

/// A KSN service goes down or up, or gets slower or faster.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetNetwork {
    #[schemars(schema_with = "crate::schemas::service")]
    pub service: Service,
    pub up: bool,
    #[serde(default)]
    pub latency_ms: Option<u32>,
}

impl StepKind for SetNetwork {
    const NAME: &'static str = "set_network";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "global|proxy|private up|down [latency_ms]";
    const HELP: &'static str = "a KSN service goes down, up, slower or faster";
    const COMPLETE: &'static [&'static [&'static str]] =
        &[&["global", "proxy", "private"], &["up", "down"]];

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        let [service, state, rest @ ..] = words else {
            return Err(usage::<Self>());
        };
        let up = match *state {
            "up" => true,
            "down" => false,
            other => return Err(format!("set_network: expected up or down, got {other}")),
        };
        let mut fields = Map::from_iter([
            ("service".into(), Json::from(*service)),
            ("up".into(), Json::from(up)),
        ]);
        if let Some(latency) = rest.first() {
            fields.insert("latency_ms".into(), Json::from(number(latency)?));
        }
        Ok(fields)
    }

    fn validate(&self, path: &str) -> Result<(), String> {
        if self.service == Service::NONE {
            return Err(format!("{path}.service: expected global, proxy or private"));
        }
        Ok(())
    }

    fn arguments(&self) -> String {
        match self.latency_ms {
            Some(ms) => format!("{} up={} latency={ms}ms", self.service, self.up),
            None => format!("{} up={}", self.service, self.up),
        }
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.set_network(self.service, self.up, self.latency_ms))
    }
}

/// Every device's storage refuses writes (as a full disk would), or takes them again.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetStorage {
    pub writable: bool,
}

impl StepKind for SetStorage {
    const NAME: &'static str = "set_storage";
    const USAGE: &'static str = "writable|full";
    const HELP: &'static str = "the devices' storage refuses writes (full) or takes them again";
    const COMPLETE: &'static [&'static [&'static str]] = &[&["writable", "full"]];

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        let writable = match words {
            ["writable"] => true,
            ["full"] => false,
            _ => return Err(usage::<Self>()),
        };
        Ok(Map::from_iter([("writable".into(), Json::from(writable))]))
    }

    fn arguments(&self) -> String {
        format!("writable={}", self.writable)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.set_storage(self.writable))
    }
}

/// Simulated time passes: the task's periodic work runs (statistics batches go out).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AdvanceTime {
    pub ms: u64,
}

impl StepKind for AdvanceTime {
    const NAME: &'static str = "advance_time";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<ms>";
    const HELP: &'static str = "simulated time passes (statistics batches go out)";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [ms] => Ok(Map::from_iter([("ms".into(), Json::from(number(ms)?))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("{}ms", self.ms)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.advance_time(self.ms))
    }
}

/// Clears what the services received and the event record.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ResetCounters {}

impl StepKind for ResetCounters {
    const NAME: &'static str = "reset_counters";
    const USAGE: &'static str = "";
    const HELP: &'static str = "clear the services' counts and the event record";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        no_fields::<Self>(words)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.reset_counters())
    }
}
