//! What came of a scenario: each step's report, and the first difference between what
//! was expected and what was found.

use serde::Serialize;

pub use super::timeline::{StepReport, Timeline};

#[derive(Serialize, Debug)]
pub struct Outcome {
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub duration_ms: u64,
    /// Devices by status as the server showed them at the end: OK, Warning, Critical.
    pub statuses: [usize; 3],
    pub steps: Timeline,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// What the plugin and the host logged while it ran (its last lines).
    #[serde(skip_serializing_if = "no_lines")]
    pub log: crate::logs::Captured,
}

fn no_lines(log: &crate::logs::Captured) -> bool {
    log.total == 0
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Failure {
    /// Index into `steps`; `None` when the scenario could not be set up.
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl Failure {
    pub fn setup(what: impl Into<String>) -> Self {
        Self {
            step: None,
            device: None,
            what: what.into(),
            expected: String::new(),
            found: String::new(),
        }
    }
}

/// A scenario file that could not be read or parsed is a failed scenario.
pub fn unreadable(file: &str, error: String) -> Outcome {
    Outcome {
        name: file.to_string(),
        file: file.to_string(),
        passed: false,
        duration_ms: 0,
        statuses: [0; 3],
        steps: Timeline::recent(),
        failure: Some(Failure::setup(error)),
        log: Default::default(),
    }
}
