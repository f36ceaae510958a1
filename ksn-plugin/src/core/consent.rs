//! Consent: which statement is accepted, since when, by whom.

use serde::{Deserialize, Serialize};

/// A statement the administrator can accept.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Statement {
    Ksn,
    PrivateKsn,
    Kmp,
}

impl Statement {
    /// The statement the KSN acceptance box accepts in the device's current mode.
    pub fn for_mode(private_ksn: bool) -> Self {
        if private_ksn {
            Statement::PrivateKsn
        } else {
            Statement::Ksn
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Statement::Ksn => "the KSN statement",
            Statement::PrivateKsn => "the Private KSN statement",
            Statement::Kmp => "the Managed Protection statement",
        }
    }
}

/// Where a value or a consent decision came from.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Default,
    Policy,
    Local,
    /// The Private KSN mode changed, so the acceptance of the other mode's statement lapsed.
    ModeChange,
}

/// An acceptance in force.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Acceptance {
    pub statement: Statement,
    pub source: Source,
    pub time_ms: u64,
    /// The task-log sequence number of the `consent_changed` entry that recorded it.
    pub record: u64,
}

/// The acceptances in force. The KSN box holds at most one acceptance, of the statement
/// of the mode the device was in when it was given; a mode change ends it.
#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Consent {
    pub ksn: Option<Acceptance>,
    pub kmp: Option<Acceptance>,
}

impl Consent {
    pub fn ksn_accepted(&self) -> bool {
        self.ksn.is_some()
    }

    pub fn kmp_accepted(&self) -> bool {
        self.ksn.is_some() && self.kmp.is_some()
    }
}
