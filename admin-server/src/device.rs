//! A managed device as the server sees it: its group, its properties, and what it was
//! last sent.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{delivery::Delivered, tree::GroupId};

/// One managed device as the server sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManagedDevice {
    pub group: GroupId,
    pub out_of_office: bool,
    pub tags: BTreeSet<String>,
    /// Holds a connection to the server: changes reach it at once. Otherwise it gets them
    /// at its next synchronisation.
    pub connected: bool,
    /// Switched on; a device that is not synchronises with nothing until it is again.
    pub online: bool,
    pub delivered: Delivered,
    pub last_sync_ms: u64,
    /// Whether its statement is accepted, as its consent events last said (`None`: not
    /// known yet).
    pub accepted: Option<bool>,
    /// Since when a KSN service has been unavailable to it, as its events say.
    pub ksn_unavailable_since: Option<u64>,
    /// The device's consent, as its consent events last said, one entry a statement and
    /// a category: what an auditor reads first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<Consent>,
    /// The plugin library an update installed on it (`None`: the host's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// A library an update is to install at its next synchronisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<String>,
    /// Which of the server's plugin versions it runs, as its host last said (`None`: not
    /// said yet).
    #[serde(skip)]
    pub runs: Option<usize>,
}

/// A statement (or one data category under it), as a device's last consent event of it
/// said: in force or not, since when, by whom, which version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// `ksn`, `private_ksn` or `kmp`.
    pub statement: String,
    /// A data category withdrawn or given back (`files`, `urls`, `statistics`), or none:
    /// the statement itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub accepted: bool,
    pub version: u32,
    /// Host time of the event.
    pub since_ms: u64,
    /// Who: `local`, `policy`, `mode_change`, `statement_changed`, `unverified_restart`...
    pub source: String,
    /// The administrator whose change through a console caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For a policy's: the policy and revision that set the box then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<(String, u32)>,
}

impl ManagedDevice {
    /// Changes reach it at once: it holds a connection and is switched on.
    pub fn reachable(&self) -> bool {
        self.connected && self.online
    }

    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            out_of_office: false,
            tags: BTreeSet::new(),
            connected: true,
            online: true,
            delivered: Delivered::default(),
            last_sync_ms: 0,
            accepted: None,
            ksn_unavailable_since: None,
            consent: Vec::new(),
            library: None,
            install: None,
            runs: None,
        }
    }
}
