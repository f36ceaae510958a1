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
        }
    }
}
