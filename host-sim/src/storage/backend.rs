//! What a database engine does for the host store: the writes it commits in batches (one
//! list, `Op`) and the reads. SQLite and PostgreSQL implement it with the same tables.

use std::sync::Arc;

use plugin_api::documents::Importance;

use admin_server::{Kind, Record};

use super::{codec::Encoded, Environment};

/// The version of the tables this build writes. 1: the tables before servers had an
/// identity of their own (keyed by a scenario's path or a command's name), and before the
/// server's state (groups, policies, devices) was stored. 2: before named administrators,
/// their actions, and the user an event was caused by.
pub const SCHEMA_VERSION: i64 = 4;

/// A server a database holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerInfo {
    /// Its identity: the key of its rows.
    pub id: String,
    pub name: String,
    pub created_ms: u64,
    pub devices: usize,
}

/// A device's record as a range read answers it: the device, its key, the record.
pub type DeviceRecord = (i64, String, Encoded);

/// One stored row of a server's state.
pub type StateRow = (Kind, i64, String);

/// An administrator of the database's servers: a name, a role, the hash of a token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRow {
    pub name: String,
    /// `administrator` or `auditor`.
    pub role: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_ms: u64,
}

/// An administrator's action on a server, as kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionRow {
    pub id: u64,
    /// The wall clock, in milliseconds since 1970.
    pub wall_ms: u64,
    /// The server's simulated time.
    pub time_ms: u64,
    pub user: String,
    /// What was done, as the step reads (`create_policy "Servers" in Servers`).
    pub what: String,
    /// What it was done to: a group, a policy, devices.
    pub target: String,
    /// `ok`, or the refusal with its kind.
    pub outcome: String,
}

/// A device of a host: whose records a row holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub host: Arc<str>,
    pub device: i64,
}

/// One stored event as the database holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    pub host: String,
    pub id: u64,
    pub time_ms: u64,
    pub device: usize,
    /// The device's group (its path) when the event arrived.
    pub group: String,
    pub importance: Importance,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The administrator whose change caused it, when a change through a console did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The wall clock when it arrived, in milliseconds since 1970 (0: not known, an event
    /// stored before schema version 4).
    pub wall_ms: u64,
}

/// Every write, committed by the writer in batches, in the order given.
#[derive(Debug)]
pub enum Op {
    /// One record after the others under `key`: numbered `seq` when the device's storage
    /// knows its count, else after the highest stored.
    Append {
        owner: Owner,
        key: Box<str>,
        record: Encoded,
        seq: Option<i64>,
    },
    /// Every record under `key` replaced, atomically.
    Replace {
        owner: Owner,
        key: Box<str>,
        records: Vec<Encoded>,
    },
    Environment {
        owner: Owner,
        environment: Environment,
    },
    /// An event the server keeps for a device; at most `keep` are kept.
    HoldEvent {
        owner: Owner,
        event: String,
        keep: usize,
    },
    ReleaseHeldEvents {
        owner: Owner,
    },
    Dictionary {
        id: u32,
        bytes: Vec<u8>,
    },
    /// The server's events of `host`, then those numbered below `oldest_kept` deleted.
    Events {
        host: String,
        rows: Vec<EventRow>,
        oldest_kept: u64,
    },
    ExpireEvents {
        host: String,
        kind: String,
        before_ms: u64,
    },
    Policy {
        host: String,
        document: String,
    },
    Clock {
        host: String,
        ms: u64,
    },
    ClearHost {
        host: String,
    },
    /// Every device's status as the server shows it (replacing the host's last).
    Statuses {
        host: String,
        rows: Vec<(i64, &'static str)>,
    },
    /// A new server in the database, by its identity (`host`) and name.
    NewServer {
        host: String,
        name: String,
        created_ms: u64,
    },
    /// Rows of what the server knows: its settings, groups, policies, revisions, devices.
    ServerRows {
        host: String,
        records: Vec<Record>,
    },
    User(UserRow),
    RemoveUser {
        name: String,
    },
    Action {
        host: String,
        row: ActionRow,
    },
}

/// The tables a store clears for a host, and the ones it creates.
pub const TABLES: [&str; 10] = [
    "actions",
    "servers",
    "server_state",
    "statuses",
    "records",
    "devices",
    "hosts",
    "held_events",
    "policies",
    "server_events",
];

/// The writer's connection: runs a batch as one transaction.
pub trait Committer: Send {
    fn commit(&mut self, ops: &[Op]) -> Result<(), String>;
}

/// A database engine holding the host store's tables.
pub trait Backend: Send + Sync {
    /// The connection the writer thread commits on.
    fn committer(&self) -> Result<Box<dyn Committer>, String>;
    fn records(&self, owner: &Owner, key: &str) -> Result<Vec<Encoded>, String>;
    /// Every record of the devices `from..to` of `host`, by device, key and order: one
    /// read where a boot would make one a device.
    fn records_of(&self, host: &str, from: i64, to: i64) -> Result<Vec<DeviceRecord>, String>;
    /// The environments of the devices `from..to` of `host` that have one.
    fn environments_of(
        &self,
        host: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Environment)>, String>;
    fn environment(&self, owner: &Owner) -> Result<Option<Environment>, String>;
    fn held_events(&self, owner: &Owner) -> Result<Vec<String>, String>;
    /// Every (host, device) with records, in order.
    fn devices(&self) -> Result<Vec<(String, usize)>, String>;
    fn clock(&self, host: &str) -> Result<Option<u64>, String>;
    fn devices_holding_events(&self, host: &str) -> Result<Vec<usize>, String>;
    fn policy(&self, host: &str) -> Result<Option<String>, String>;
    fn events(&self, host: Option<&str>) -> Result<Vec<EventRow>, String>;
    fn dictionaries(&self) -> Result<Vec<(u32, Vec<u8>)>, String>;
    /// How many devices of `host` have each status (as last saved).
    fn status_counts(&self, host: &str) -> Result<Vec<(String, u64)>, String>;
    /// How many events of `host` the server keeps, by importance and type.
    fn event_counts(&self, host: &str) -> Result<Vec<(String, String, u64)>, String>;
    /// The bytes the database takes on disk now, for the tables of this store.
    fn size_bytes(&self) -> Result<u64, String>;
    /// The servers the database holds.
    fn servers(&self) -> Result<Vec<ServerInfo>, String>;
    /// Every row of a server's state.
    fn server_rows(&self, host: &str) -> Result<Vec<StateRow>, String>;
    /// The administrators, by name.
    fn users(&self) -> Result<Vec<UserRow>, String>;
    /// A server's actions, newest first, at most `limit`.
    fn actions(&self, host: &str, limit: usize) -> Result<Vec<ActionRow>, String>;
    /// Where the data is, for messages.
    fn location(&self) -> String;
}
