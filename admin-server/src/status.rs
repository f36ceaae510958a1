//! A device's status at a glance, as the server shows it: OK, Warning or Critical, from
//! stated conditions, each with the reason it gives.
//!
//! - Critical: the task failed (its error named), or the device does not answer (a call
//!   into its plugin never returned, or its task could not be created).
//! - Warning: the statement is not accepted (the task cannot start); the task is not
//!   running; KSN has been unavailable to the running task for longer than
//!   `ksn_unavailable_minutes`; the device has not synchronised for longer than
//!   `unsynchronised_minutes`.
//! - OK otherwise.

use plugin_api::{ErrorKind, TaskState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;

#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Ok, Status::Warning, Status::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warning => "Warning",
            Status::Critical => "Critical",
        })
    }
}

/// The thresholds of the conditions that take time.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusRules {
    /// KSN unavailable to the running task for longer than this: Warning.
    #[serde(default = "fifteen")]
    pub ksn_unavailable_minutes: u64,
    /// Not synchronised with the server for longer than this: Warning.
    #[serde(default = "a_day")]
    pub unsynchronised_minutes: u64,
}

fn fifteen() -> u64 {
    15
}

fn a_day() -> u64 {
    24 * 60
}

impl Default for StatusRules {
    fn default() -> Self {
        Self {
            ksn_unavailable_minutes: fifteen(),
            unsynchronised_minutes: a_day(),
        }
    }
}

/// What the server knows of a device, for its status.
#[derive(Clone, Debug)]
pub struct Facts {
    /// `None`: the device does not answer.
    pub task: Option<(TaskState, Option<ErrorKind>)>,
    pub accepted: bool,
    /// What to accept where it is not: the statement the device's version ships for its
    /// mode (`version 2 of the KSN statement`).
    pub to_accept: Option<String>,
    pub ksn_unavailable_since: Option<u64>,
    pub last_sync_ms: u64,
    pub now_ms: u64,
}

/// The status and every reason for it (none when OK).
pub fn status(facts: &Facts, rules: &StatusRules) -> (Status, Vec<String>) {
    let Some((state, error)) = facts.task else {
        return (Status::Critical, vec!["the device does not answer".into()]);
    };
    if state == TaskState::FAILED {
        let why = error.map_or("failed".to_string(), |e| format!("failed ({e})"));
        return (Status::Critical, vec![format!("the task {why}")]);
    }
    let mut reasons = Vec::new();
    if !facts.accepted {
        reasons.push(match &facts.to_accept {
            Some(what) => format!("the statement is not accepted: accept {what}"),
            None => "the statement is not accepted".to_string(),
        });
    }
    if state != TaskState::RUNNING {
        reasons.push("the task is not running".into());
    }
    if let Some(since) = facts.ksn_unavailable_since {
        let minutes = facts.now_ms.saturating_sub(since) / MINUTE_MS;
        if state == TaskState::RUNNING && minutes > rules.ksn_unavailable_minutes {
            reasons.push(format!("KSN unavailable for {minutes} minutes"));
        }
    }
    let unsynchronised = facts.now_ms.saturating_sub(facts.last_sync_ms) / MINUTE_MS;
    if unsynchronised > rules.unsynchronised_minutes {
        reasons.push(format!("not synchronised for {unsynchronised} minutes"));
    }
    if reasons.is_empty() {
        (Status::Ok, reasons)
    } else {
        (Status::Warning, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: TaskState) -> Facts {
        Facts {
            task: Some((state, None)),
            accepted: true,
            to_accept: None,
            ksn_unavailable_since: None,
            last_sync_ms: 0,
            now_ms: 0,
        }
    }

    #[test]
    fn each_condition_gives_its_status_and_reason() {
        let rules = StatusRules::default();
        assert_eq!(
            status(&facts(TaskState::RUNNING), &rules),
            (Status::Ok, vec![])
        );
        let mut failed = facts(TaskState::FAILED);
        failed.task = Some((TaskState::FAILED, Some(ErrorKind::LICENSE_VIOLATION)));
        assert_eq!(
            status(&failed, &rules),
            (
                Status::Critical,
                vec!["the task failed (license_violation)".into()]
            )
        );
        let mut gone = facts(TaskState::RUNNING);
        gone.task = None;
        assert_eq!(status(&gone, &rules).0, Status::Critical);
        let mut unaccepted = facts(TaskState::STOPPED);
        unaccepted.accepted = false;
        assert_eq!(
            status(&unaccepted, &rules),
            (
                Status::Warning,
                vec![
                    "the statement is not accepted".into(),
                    "the task is not running".into()
                ]
            )
        );
        let mut outage = facts(TaskState::RUNNING);
        outage.ksn_unavailable_since = Some(0);
        outage.now_ms = 15 * MINUTE_MS;
        assert_eq!(
            status(&outage, &rules).0,
            Status::Ok,
            "not longer than 15 minutes"
        );
        outage.now_ms = 16 * MINUTE_MS;
        assert_eq!(status(&outage, &rules).0, Status::Warning);
        let mut quiet = facts(TaskState::RUNNING);
        quiet.now_ms = (24 * 60 + 1) * MINUTE_MS;
        assert_eq!(
            status(&quiet, &rules).1,
            vec![format!("not synchronised for {} minutes", 24 * 60 + 1)]
        );
    }

    #[test]
    fn an_unaccepted_statement_names_the_version_to_accept() {
        let mut f = facts(TaskState::STOPPED);
        f.accepted = false;
        f.to_accept = Some("version 2 of the KSN statement".into());
        let (status, reasons) = status(&f, &StatusRules::default());
        assert_eq!(status, Status::Warning);
        assert_eq!(
            reasons[0],
            "the statement is not accepted: accept version 2 of the KSN statement"
        );
    }
}
