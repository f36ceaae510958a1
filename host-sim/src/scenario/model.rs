//! The scenario file format (SPEC §4): parsed strictly, every unknown step or key an error
//! that names its place.

use std::collections::BTreeMap;

use plugin_api::{
    AnswerSource, ErrorKind, LicenseState, ObjectAction, Service, TaskState, Verdict,
};
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::Value as Json;

use crate::{
    consumers::{Access, Launch, LaunchControlSpec},
    device::LocalListsSpec,
    network::KsnSpec,
};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ScenarioHead {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "one")]
    devices: usize,
    #[serde(default)]
    ksn: Option<KsnSpec>,
    #[serde(default)]
    local_lists: LocalListsSpec,
    #[serde(default)]
    launch_control: LaunchControlSpec,
    steps: Vec<Json>,
}

fn one() -> usize {
    1
}

#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub devices: usize,
    /// `None`: the bundled default database.
    pub ksn: Option<KsnSpec>,
    pub local_lists: LocalListsSpec,
    /// The rules of the simulated application launch control task.
    pub launch_control: LaunchControlSpec,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Do {
        action: Action,
        expect_error: Option<ErrorKind>,
    },
    Expect(Box<Expect>),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    PushPolicy {
        policy: Json,
    },
    SetLocal {
        settings: Json,
    },
    Start {},
    Stop {},
    SetPrivateKsn {
        enabled: bool,
    },
    SetLicense {
        state: LicenseState,
    },
    SetNetwork {
        service: Service,
        up: bool,
        #[serde(default)]
        latency_ms: Option<u32>,
    },
    CheckFile {
        md5: String,
        size_bytes: u64,
        #[serde(default)]
        expect: Option<AnswerExpect>,
    },
    CheckUrl {
        url: String,
        #[serde(default)]
        expect: Option<AnswerExpect>,
    },
    /// On-access protection opens a file.
    OpenFile {
        md5: String,
        size_bytes: u64,
        #[serde(default)]
        expect: Option<AccessExpect>,
    },
    /// Application launch control is asked to start an application.
    LaunchApp {
        md5: String,
        size_bytes: u64,
        #[serde(default)]
        expect: Option<LaunchExpect>,
    },
    RestartHost {},
    AdvanceTime {
        ms: u64,
    },
    ResetCounters {},
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::PushPolicy { .. } => "push_policy",
            Action::SetLocal { .. } => "set_local",
            Action::Start {} => "start",
            Action::Stop {} => "stop",
            Action::SetPrivateKsn { .. } => "set_private_ksn",
            Action::SetLicense { .. } => "set_license",
            Action::SetNetwork { .. } => "set_network",
            Action::CheckFile { .. } => "check_file",
            Action::CheckUrl { .. } => "check_url",
            Action::OpenFile { .. } => "open_file",
            Action::LaunchApp { .. } => "launch_app",
            Action::RestartHost {} => "restart_host",
            Action::AdvanceTime { .. } => "advance_time",
            Action::ResetCounters {} => "reset_counters",
        }
    }
}

/// What a lookup must answer.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AnswerExpect {
    pub verdict: Verdict,
    #[serde(default)]
    pub action: Option<ObjectAction>,
    /// Which merge layer decided (`local_list`, `private_database`, `ksn`, `none`).
    #[serde(default)]
    pub source: Option<AnswerSource>,
    /// Whether the answer came from the cache.
    #[serde(default)]
    pub cached: Option<bool>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AccessExpect {
    pub access: Access,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LaunchExpect {
    pub decision: Launch,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub state: Option<TaskState>,
    /// `Some(None)`: the key was there with `null` (no error).
    #[serde(default, deserialize_with = "present")]
    pub error: Option<Option<ErrorKind>>,
    #[serde(default)]
    pub network: Option<Service>,
    #[serde(default)]
    pub settings: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    pub locked: Option<Vec<String>>,
    #[serde(default)]
    pub received: Option<BTreeMap<String, ReceivedExpect>>,
    #[serde(default)]
    pub events_include: Option<Vec<Json>>,
    /// Partial entries that must be in the task log as the plugin reads it back from
    /// storage (which, unlike the host's event record, survives `restart_host`).
    #[serde(default)]
    pub log_include: Option<Vec<Json>>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ReceivedExpect {
    #[serde(default)]
    pub files: Option<u64>,
    #[serde(default)]
    pub urls: Option<u64>,
    #[serde(default)]
    pub statistics: Option<u64>,
    #[serde(default)]
    pub kmp: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Deserialises `value` as `T`, naming the place of an error below `path`.
fn strict<T: DeserializeOwned>(value: &Json, path: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let place = if inner == "." || inner.is_empty() {
            path.to_string()
        } else if path.is_empty() {
            inner
        } else {
            format!("{path}.{inner}")
        };
        format!("{place}: {}", e.inner())
    })
}

/// Parses a scenario document.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let doc: Json = serde_json::from_str(text).map_err(|e| {
        // serde_json ends its message with the place; put the place first, once.
        let place = format!("line {} column {}", e.line(), e.column());
        let reason = e.to_string();
        format!(
            "{place}: malformed JSON: {}",
            reason.trim_end_matches(&format!(" at {place}"))
        )
    })?;
    let head: ScenarioHead = strict(&doc, "")?;
    if head.devices == 0 {
        return Err("devices: must be at least 1".into());
    }
    let mut steps = Vec::with_capacity(head.steps.len());
    for (index, raw) in head.steps.iter().enumerate() {
        steps.push(parse_step(raw, &format!("steps[{index}]"))?);
    }
    Ok(Scenario {
        name: head.name,
        description: head.description,
        devices: head.devices,
        ksn: head.ksn,
        local_lists: head.local_lists,
        launch_control: head.launch_control,
        steps,
    })
}

/// Parses one step (`{"do": ...}` or `{"expect": ...}`); errors name their place below
/// `path`.
pub fn parse_step(raw: &Json, path: &str) -> Result<Step, String> {
    let Some(object) = raw.as_object() else {
        return Err(format!(
            "{path}: a step is an object with \"do\" or \"expect\""
        ));
    };
    match (object.contains_key("do"), object.contains_key("expect")) {
        (true, _) => {
            let mut body = object.clone();
            let expect_error = match body.remove("expect_error") {
                None => None,
                Some(kind) => Some(strict::<ErrorKind>(&kind, &format!("{path}.expect_error"))?),
            };
            let action: Action = strict(&Json::Object(body), path)?;
            Ok(Step::Do {
                action,
                expect_error,
            })
        }
        (false, true) => {
            if let Some(extra) = object.keys().find(|k| *k != "expect") {
                return Err(format!("{path}.{extra}: unknown key beside \"expect\""));
            }
            let expect: Expect = strict(&object["expect"], &format!("{path}.expect"))?;
            if let Some(received) = &expect.received {
                for service in received.keys() {
                    if !["global", "proxy", "private"].contains(&service.as_str()) {
                        return Err(format!(
                            "{path}.expect.received.{service}: unknown service; expected global, proxy or private"
                        ));
                    }
                }
            }
            Ok(Step::Expect(Box::new(expect)))
        }
        (false, false) => Err(format!("{path}: a step needs \"do\" or \"expect\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_spec_example_parses() {
        let s = parse(
            r#"{"name": "x", "devices": 1,
                "ksn": {"global": {"files": {"00112233445566778899aabbccddeeff": "untrusted"}, "urls": {}},
                        "private": {"files": {}, "urls": {}}},
                "steps": [
                  {"do": "set_private_ksn", "enabled": true},
                  {"do": "push_policy", "policy": {"settings": {}}},
                  {"do": "start", "expect_error": "statement_not_accepted"},
                  {"expect": {"state": "stopped", "error": null, "network": "none"}},
                  {"do": "check_file", "md5": "00112233445566778899aabbccddeeff", "size_bytes": 10,
                   "expect": {"verdict": "unavailable"}}
                ]}"#,
        )
        .unwrap();
        assert_eq!(s.steps.len(), 5);
        match &s.steps[3] {
            Step::Expect(e) => assert_eq!(e.error, Some(None)),
            other => panic!("{other:?}"),
        }
        match &s.steps[2] {
            Step::Do { expect_error, .. } => {
                assert_eq!(*expect_error, Some(ErrorKind::STATEMENT_NOT_ACCEPTED))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_steps_and_keys_are_errors_with_their_path() {
        let e = err(r#"{"name": "x", "steps": [{"do": "strat"}]}"#);
        assert!(
            e.starts_with("steps[0]") && e.contains("unknown variant `strat`"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"do": "start", "force": true}]}"#);
        assert!(e.starts_with("steps[0]") && e.contains("force"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"expect": {"colour": 1}}]}"#);
        assert!(
            e.starts_with("steps[0].expect") && e.contains("colour"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"expect": {"state": "flying"}}]}"#);
        assert!(
            e.starts_with("steps[0].expect.state") && e.contains("flying"),
            "{e}"
        );
        let e = err(r#"{"name": "x", "steps": [{"expect": {"received": {"cloud": {}}}}]}"#);
        assert!(e.starts_with("steps[0].expect.received.cloud"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"do": "start", "expect_error": "oops"}]}"#);
        assert!(e.starts_with("steps[0].expect_error"), "{e}");
        let e = err(r#"{"name": "x", "stepz": []}"#);
        assert!(e.contains("stepz"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{}]}"#);
        assert!(e.starts_with("steps[0]"), "{e}");
        let e = err(r#"{"name": "x", "steps": [{"expect": {}, "do": 1}]}"#);
        assert!(e.starts_with("steps[0]"), "{e}");
        let e = err(r#"{"name": "x", "steps": ["#);
        assert!(e.contains("malformed JSON"), "{e}");
        let e = err(r#"{"name": "x", "devices": 0, "steps": []}"#);
        assert!(e.starts_with("devices"), "{e}");
        let e = err(r#"{"name": "x", "ksn": {"global": {"files": {"a": "evil"}}}, "steps": []}"#);
        assert!(e.starts_with("ksn.global.files.a"), "{e}");
    }
}
