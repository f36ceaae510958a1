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
    /// Who or what ended it: `local`, `policy`, `mode_change`, `statement_changed` (for
    /// Managed Protection ended with the KSN statement, how that one ended).
    pub source: Source,
    pub time_ms: u64,
    /// The task-log sequence number of the `consent_changed` entry that recorded it.
    pub record: u64,
    /// Managed Protection only: it ended because the KSN statement did (its prerequisite).
    #[serde(default)]
    pub with_ksn: bool,
}

/// A policy's acceptance that is not in force: it named another version of the statement
/// than the one shipped, or no version of the statement of the device's mode.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct NotInForce {
    pub statement: Statement,
    /// The version the policy named, if it named one of this statement.
    pub version: Option<u32>,
    pub source: Source,
    pub time_ms: u64,
    /// The `acceptance_not_in_force` entry that recorded it.
    pub record: u64,
}

impl NotInForce {
    /// Why, naming both versions.
    pub fn words(&self, current_version: u32) -> String {
        let at = format!("(log #{}, t={} ms)", self.record, self.time_ms);
        match self.version {
            Some(version) => format!(
                "the policy's acceptance is of version {version}, and this plugin ships version {current_version} {at}: the administrator must read version {current_version} and accept it in the policy, or accept it locally"
            ),
            None => format!(
                "the policy's acceptance names no version of it (only the other mode's statement) {at}: the administrator must read version {current_version} and accept it in the policy, or accept it locally"
            ),
        }
    }
}

/// A data category withdrawn by a change whose settings are not in force yet (they wait
/// for storage, or were lost with a restart before storage took them): the category stays
/// withdrawn until a policy push or a local change of its box decides it again.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Withheld {
    pub source: Source,
    pub time_ms: u64,
    /// The `consent_changed` entry that recorded the withdrawal.
    pub record: u64,
}

/// The data categories of the Global-KSN boxes, in table order.
pub const CATEGORIES: usize = 3;

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
    /// The last policy acceptance of the box that was not in force, until the box is
    /// accepted or withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksn_not_in_force: Option<NotInForce>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmp_not_in_force: Option<NotInForce>,
    /// Categories withdrawn whatever the settings layers say, by category.
    #[serde(default, skip_serializing_if = "no_category_withheld")]
    pub withheld: [Option<Withheld>; CATEGORIES],
}

fn no_category_withheld(withheld: &[Option<Withheld>; CATEGORIES]) -> bool {
    withheld.iter().all(Option::is_none)
}

impl Consent {
    pub fn ksn_accepted(&self) -> bool {
        self.ksn.is_some()
    }

    pub fn kmp_accepted(&self) -> bool {
        self.ksn.is_some() && self.kmp.is_some()
    }
}
