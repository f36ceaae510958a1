//! Consent: which statement is accepted, since when, by whom.

use serde::{Deserialize, Serialize};

pub use plugin_api::documents::{Source, Statement};

/// An acceptance in force.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Acceptance {
    pub statement: Statement,
    /// The version of the statement's text that was accepted.
    #[serde(default = "first_version")]
    pub version: u32,
    pub source: Source,
    pub time_ms: u64,
    /// The task-log sequence number of the `consent_changed` entry that recorded it.
    pub record: u64,
}

fn first_version() -> u32 {
    1
}

/// How the last acceptance of a box ended: what `explain` tells when the box reads false.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ended {
    pub statement: Statement,
    pub version: u32,
    /// Who or what ended it: `local`, `policy`, `mode_change`, `statement_changed`.
    pub source: Source,
    pub time_ms: u64,
    /// The task-log sequence number of the `consent_changed` entry that recorded it.
    pub record: u64,
    /// Managed Protection only: it ended because the KSN statement did (its prerequisite).
    #[serde(default)]
    pub with_ksn: bool,
}

/// The acceptances in force, and how the last ones ended. The KSN box holds at most one
/// acceptance, of the statement of the mode the device was in when it was given; a mode
/// change ends it.
#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Consent {
    pub ksn: Option<Acceptance>,
    pub kmp: Option<Acceptance>,
    #[serde(default)]
    pub ksn_ended: Option<Ended>,
    #[serde(default)]
    pub kmp_ended: Option<Ended>,
}

impl Consent {
    pub fn ksn_accepted(&self) -> bool {
        self.ksn.is_some()
    }

    pub fn kmp_accepted(&self) -> bool {
        self.ksn.is_some() && self.kmp.is_some()
    }
}
