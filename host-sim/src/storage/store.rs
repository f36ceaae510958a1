//! The host database: every device's records, the environment each device was last told,
//! the server's events, policy and time, for every simulated host that uses it (a console
//! session, a fleet, each scenario), in one SQLite file (the embedded default) or in a
//! PostgreSQL database (`postgres://…`).
//!
//! Writes go through one writer that commits them in groups (`writer.rs`); a write returns
//! once committed, so "a change is current only once recorded" still means durable. Records
//! are kept compressed (`codec.rs`).

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, Mutex, OnceLock},
};

use admin_server::Record;

use super::{
    backend::{ActionRow, Backend, EventRow, Op, Owner, ServerInfo, StateRow, UserRow},
    codec::{Codec, Encoded},
    writer::Writer,
    Environment, Storage,
};

pub struct HostStore {
    backend: Arc<dyn Backend>,
    // Dropped before the backend's other connections: the last commits finish first.
    writer: Writer,
    codec: Codec,
    /// While a host boots its devices: their records read a range of devices at a time.
    ahead: Mutex<Option<ReadAhead>>,
}

/// Devices a range read covers: one statement (and, on PostgreSQL, one round trip) where
/// a boot would make three a device.
const AHEAD_DEVICES: i64 = 1024;

/// The read-ahead of one host's boot: ranges of devices read once, each answered to its
/// device's first read of a key and then forgotten.
struct ReadAhead {
    host: Arc<str>,
    ranges: HashMap<i64, Arc<OnceLock<Option<Range>>>>,
}

/// What a range read found, as its devices have not read it yet.
#[derive(Default)]
struct Range {
    unread: Mutex<Unread>,
}

#[derive(Default)]
struct Unread {
    records: HashMap<(i64, Box<str>), Vec<Encoded>>,
    environments: HashMap<i64, Environment>,
    /// (device, key) already answered (`""`: the environment), and devices that wrote
    /// since the range was read: the database answers them.
    answered: HashSet<(i64, Box<str>)>,
    wrote: HashSet<i64>,
}

/// Whether `location` names a PostgreSQL database rather than a file.
pub fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

impl HostStore {
    /// Opens (or creates) the database: a file, or a `postgres://` URL (with an optional
    /// `schema=NAME` parameter: the schema the tables live in, `public` by default).
    pub fn open(location: &Path) -> Result<Arc<Self>, String> {
        let text = location.to_string_lossy();
        let backend: Arc<dyn Backend> = if is_postgres(&text) {
            Arc::new(super::postgres::PostgresBackend::connect(&text)?)
        } else {
            Arc::new(super::sqlite::SqliteBackend::open(location)?)
        };
        let writer = Writer::start(backend.committer()?)?;
        let codec = Codec::new(true);
        for (id, bytes) in backend.dictionaries()? {
            codec.know(id, &bytes);
        }
        Ok(Arc::new(Self {
            backend,
            writer,
            codec,
            ahead: Mutex::new(None),
        }))
    }

    fn write(&self, op: Op) -> Result<(), String> {
        self.writer.write(op)
    }

    /// Waits until every write queued so far (environments saved without waiting) has
    /// committed; answers the failures of those.
    pub fn settle(&self) -> Result<(), String> {
        self.writer.settle()
    }

    /// Runs `boot` (which reads every device of `host` once, in order) with the devices'
    /// records and environments read a range of devices at a time.
    pub fn reading_ahead<T>(&self, host: &str, boot: impl FnOnce() -> T) -> T {
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(ReadAhead {
            host: host.into(),
            ranges: HashMap::new(),
        });
        let result = boot();
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result
    }

    /// The range read holding `owner`'s rows, read now if it was not (`None`: no boot is
    /// reading ahead for this host, or the range could not be read).
    fn range(&self, owner: &Owner) -> Option<Arc<OnceLock<Option<Range>>>> {
        let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        let ahead = ahead.as_mut().filter(|a| a.host == owner.host)?;
        let first = owner.device - owner.device.rem_euclid(AHEAD_DEVICES);
        Some(ahead.ranges.entry(first).or_default().clone())
    }

    fn read_range(&self, host: &str, first: i64) -> Option<Range> {
        let last = first + AHEAD_DEVICES;
        let read = self
            .backend
            .records_of(host, first, last)
            .and_then(|records| Ok((records, self.backend.environments_of(host, first, last)?)));
        let (records, environments) = match read {
            Ok(read) => read,
            Err(e) => {
                log::warn!("devices {first} to {last} could not be read together ({e}): each is read alone");
                return None;
            }
        };
        let mut unread = Unread::default();
        for (device, key, record) in records {
            unread
                .records
                .entry((device, key.into()))
                .or_default()
                .push(record);
        }
        unread.environments = environments.into_iter().collect();
        Some(Range {
            unread: Mutex::new(unread),
        })
    }

    /// `owner`'s first read of `key` (`""`: its environment) during a boot reading ahead:
    /// what the range read found. `None`: read it from the database.
    fn ahead<T>(&self, owner: &Owner, key: &str, take: impl FnOnce(&mut Unread) -> T) -> Option<T> {
        let range = self.range(owner)?;
        let first = owner.device - owner.device.rem_euclid(AHEAD_DEVICES);
        let range = range
            .get_or_init(|| self.read_range(&owner.host, first))
            .as_ref()?;
        let mut unread = range.unread.lock().unwrap_or_else(|e| e.into_inner());
        if unread.wrote.contains(&owner.device)
            || !unread.answered.insert((owner.device, key.into()))
        {
            return None;
        }
        Some(take(&mut unread))
    }

    /// `owner` wrote (and the write returned): what a range read found of it may be out
    /// of date. A read of its range under way is waited for, so none is missed.
    fn wrote(&self, owner: &Owner) {
        let Some(range) = self.range(owner) else {
            return;
        };
        let first = owner.device - owner.device.rem_euclid(AHEAD_DEVICES);
        if let Some(range) = range.get_or_init(|| self.read_range(&owner.host, first)) {
            let mut unread = range.unread.lock().unwrap_or_else(|e| e.into_inner());
            unread.wrote.insert(owner.device);
            unread
                .records
                .retain(|(device, _), _| *device != owner.device);
        }
    }

    /// Device `device` of host `host`.
    pub fn device(self: &Arc<Self>, host: &str, device: usize) -> DeviceStorage {
        DeviceStorage {
            store: self.clone(),
            owner: Owner {
                host: host.into(),
                device: device as i64,
            },
            read_only: false,
            counts: Mutex::default(),
        }
    }

    /// The same, refusing every write: for reading a device without changing it.
    pub fn device_read_only(self: &Arc<Self>, host: &str, device: usize) -> DeviceStorage {
        DeviceStorage {
            read_only: true,
            ..self.device(host, device)
        }
    }

    /// Every (host, device) with records, in order.
    pub fn devices(&self) -> Result<Vec<(String, usize)>, String> {
        self.backend.devices()
    }

    /// Forgets everything of `host`: a scenario starts from nothing.
    pub fn clear_host(&self, host: &str) -> Result<(), String> {
        self.write(Op::ClearHost { host: host.into() })
    }

    /// The servers the database holds, oldest first.
    pub fn servers(&self) -> Result<Vec<ServerInfo>, String> {
        self.backend.servers()
    }

    /// Each server's name by its identity (a server of the first schema had none: its
    /// identity is its name).
    pub fn server_names(&self) -> Result<std::collections::HashMap<String, String>, String> {
        Ok(self
            .servers()?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect())
    }

    /// The administrators of the database's servers.
    pub fn users(&self) -> Result<Vec<UserRow>, String> {
        self.backend.users()
    }

    /// A new administrator: `role` is `administrator` (everything) or `auditor` (reads
    /// everything, changes nothing). Its token, which the database keeps only as a hash.
    pub fn add_user(&self, name: &str, role: &str) -> Result<String, String> {
        admin_server::names::check("user", name).map_err(|e| e.message)?;
        if !super::ROLES.contains(&role) {
            return Err(format!(
                "--role: expected administrator or auditor, got {role:?}"
            ));
        }
        if self.users()?.iter().any(|u| u.name == name) {
            return Err(format!("a user named {name:?} already exists"));
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.write(Op::User(UserRow {
            name: name.into(),
            role: role.into(),
            token_hash: super::token_hash(&token),
            created_ms: super::wall_clock_ms(),
        }))?;
        Ok(token)
    }

    pub fn remove_user(&self, name: &str) -> Result<(), String> {
        if !self.users()?.iter().any(|u| u.name == name) {
            return Err(format!("no user named {name:?}"));
        }
        self.write(Op::RemoveUser { name: name.into() })
    }

    /// The administrator whose token this is.
    pub fn user_of(&self, token: &str) -> Result<Option<UserRow>, String> {
        let hash = super::token_hash(token);
        Ok(self.users()?.into_iter().find(|u| u.token_hash == hash))
    }

    /// Keeps an administrator's action on server `host`; returns once durable.
    pub fn save_action(&self, host: &str, row: ActionRow) -> Result<(), String> {
        self.write(Op::Action {
            host: host.into(),
            row,
        })
    }

    /// Server `host`'s actions, newest first, at most `limit`.
    pub fn actions(&self, host: &str, limit: usize) -> Result<Vec<ActionRow>, String> {
        self.backend.actions(host, limit)
    }

    /// The identity of the server named (or identified by) `wanted`.
    pub fn server_id(&self, wanted: &str) -> Result<String, String> {
        let servers = self.servers()?;
        servers
            .iter()
            .find(|s| s.id == wanted || s.name == wanted)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "{} holds no server {wanted:?} (it holds {})",
                    self.location(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            })
    }

    /// A new server named `name`: its identity, once the database holds it.
    pub fn create_server(&self, name: &str) -> Result<String, String> {
        let id = super::new_server_id()?;
        self.write(Op::NewServer {
            host: id.clone(),
            name: name.into(),
            created_ms: super::wall_clock_ms(),
        })?;
        Ok(id)
    }

    /// Every row of what server `host` knows (none: a server that stored none yet).
    pub fn server_rows(&self, host: &str) -> Result<Vec<StateRow>, String> {
        self.backend.server_rows(host)
    }

    /// Writes rows of what server `host` knows, in one transaction; returns once durable.
    pub fn save_server(&self, host: &str, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(Op::ServerRows {
            host: host.into(),
            records,
        })
    }

    /// The same, queued: it commits before anything written after it; `settle` waits
    /// for it.
    pub fn queue_server(&self, host: &str, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.writer.queue(Op::ServerRows {
            host: host.into(),
            records,
        })
    }

    /// The simulated time `host` had reached, if it ran before.
    pub fn clock(&self, host: &str) -> Result<Option<u64>, String> {
        self.backend.clock(host)
    }

    pub fn save_clock(&self, host: &str, ms: u64) -> Result<(), String> {
        self.write(Op::Clock {
            host: host.into(),
            ms,
        })
    }

    /// The devices of `host` for which the server holds events.
    pub fn devices_holding_events(&self, host: &str) -> Result<Vec<usize>, String> {
        self.backend.devices_holding_events(host)
    }

    /// The policy `host` last pushed, as stored (with the statement versions it stamped).
    pub fn policy(&self, host: &str) -> Result<Option<String>, String> {
        self.backend.policy(host)
    }

    pub fn save_policy(&self, host: &str, document: &str) -> Result<(), String> {
        self.write(Op::Policy {
            host: host.into(),
            document: document.into(),
        })
    }

    /// Adds `rows` (of one host) in one transaction, then deletes that host's events
    /// numbered below `oldest_kept` (the cap at work).
    pub fn save_events(
        &self,
        host: &str,
        rows: &[EventRow],
        oldest_kept: u64,
    ) -> Result<(), String> {
        self.write(Op::Events {
            host: host.into(),
            rows: rows.to_vec(),
            oldest_kept,
        })
    }

    /// The same, queued (see `queue_server`).
    pub fn queue_events(
        &self,
        host: &str,
        rows: Vec<EventRow>,
        oldest_kept: u64,
    ) -> Result<(), String> {
        self.writer.queue(Op::Events {
            host: host.into(),
            rows,
            oldest_kept,
        })
    }

    /// Deletes `host`'s events of type `kind` older than `before_ms` (a storage term).
    pub fn expire_events(&self, host: &str, kind: &str, before_ms: u64) -> Result<(), String> {
        self.write(Op::ExpireEvents {
            host: host.into(),
            kind: kind.into(),
            before_ms,
        })
    }

    /// The events the database keeps, of one host or of all, oldest first.
    pub fn events(&self, host: Option<&str>) -> Result<Vec<EventRow>, String> {
        self.backend.events(host)
    }

    /// Saves every device's status as the server shows it now.
    pub fn save_statuses(
        &self,
        host: &str,
        rows: Vec<(usize, &'static str)>,
    ) -> Result<(), String> {
        self.write(Op::Statuses {
            host: host.into(),
            rows: rows.into_iter().map(|(d, s)| (d as i64, s)).collect(),
        })
    }

    /// How many devices of `host` had each status when last saved.
    pub fn status_counts(&self, host: &str) -> Result<Vec<(String, u64)>, String> {
        self.backend.status_counts(host)
    }

    /// How many events of `host` the server keeps, by importance and type.
    pub fn event_counts(&self, host: &str) -> Result<Vec<(String, String, u64)>, String> {
        self.backend.event_counts(host)
    }

    /// The bytes the database takes now.
    pub fn size_bytes(&self) -> Result<u64, String> {
        self.backend.size_bytes()
    }

    /// Where the database is, as messages show it (a URL without its password).
    pub fn location(&self) -> String {
        super::redacted(&self.backend.location())
    }

    fn encode(&self, record: &[u8]) -> Result<super::codec::Encoded, String> {
        let (encoded, trained) = self.codec.encode(record);
        if let Some((id, bytes)) = trained {
            // Stored before any record uses it.
            match self.write(Op::Dictionary {
                id,
                bytes: bytes.clone(),
            }) {
                Ok(()) => self.codec.adopt(id, &bytes),
                Err(e) => log::warn!("a record dictionary was not stored: {e}"),
            }
        }
        Ok(encoded)
    }

    fn decode_all(&self, encoded: Vec<super::codec::Encoded>) -> Result<Vec<Vec<u8>>, String> {
        if encoded.iter().any(|e| !self.codec.knows(e.codec)) {
            // Another process stored a dictionary since this one opened the database.
            for (id, bytes) in self.backend.dictionaries()? {
                if !self.codec.knows(id) {
                    self.codec.know(id, &bytes);
                }
            }
        }
        encoded
            .into_iter()
            .map(|e| self.codec.decode(e))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", self.backend.location()))
    }
}

/// One device's records in the host database.
pub struct DeviceStorage {
    store: Arc<HostStore>,
    owner: Owner,
    read_only: bool,
    /// How many records each key holds, once read or written whole: the next record's
    /// number (records are numbered from 0 without gaps), so an append need not look up
    /// the highest. Held while a read or write of the device's records is under way, so
    /// numbers follow the order of commits. One `DeviceStorage` a device writes.
    counts: Mutex<Vec<(Box<str>, i64)>>,
}

fn count_of<'a>(counts: &'a mut [(Box<str>, i64)], key: &str) -> Option<&'a mut i64> {
    counts.iter_mut().find(|(k, _)| &**k == key).map(|(_, n)| n)
}

fn set_count(counts: &mut Vec<(Box<str>, i64)>, key: &str, n: i64) {
    match count_of(counts, key) {
        Some(count) => *count = n,
        None => counts.push((key.into(), n)),
    }
}

impl DeviceStorage {
    fn writable(&self) -> Result<(), String> {
        if self.read_only {
            Err("the host database is open for reading only".into())
        } else {
            Ok(())
        }
    }

    fn warn(&self, what: &str, e: String) {
        log::warn!("device {}: {what}: {e}", self.owner.device);
    }
}

impl Storage for DeviceStorage {
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        self.writable()?;
        let record = self.store.encode(record)?;
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let seq = count_of(&mut counts, key).map(|n| *n);
        let written = self.store.write(Op::Append {
            owner: self.owner.clone(),
            key: key.into(),
            record,
            seq,
        });
        match (&written, count_of(&mut counts, key)) {
            (Ok(()), Some(count)) => *count += 1,
            // Not committed: what the database holds is not known here.
            (Err(_), Some(_)) => counts.retain(|(k, _)| &**k != key),
            _ => {}
        }
        drop(counts);
        self.store.wrote(&self.owner);
        written
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let encoded = match self.store.ahead(&self.owner, key, |unread| {
            unread
                .records
                .remove(&(self.owner.device, key.into()))
                .unwrap_or_default()
        }) {
            Some(encoded) => encoded,
            None => self.store.backend.records(&self.owner, key)?,
        };
        set_count(&mut counts, key, encoded.len() as i64);
        drop(counts);
        self.store.decode_all(encoded)
    }

    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        self.writable()?;
        let records: Vec<Encoded> = records
            .iter()
            .map(|r| self.store.encode(r))
            .collect::<Result<_, _>>()?;
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = records.len() as i64;
        let written = self.store.write(Op::Replace {
            owner: self.owner.clone(),
            key: key.into(),
            records,
        });
        match written {
            Ok(()) => set_count(&mut counts, key, n),
            Err(_) => counts.retain(|(k, _)| &**k != key),
        }
        drop(counts);
        self.store.wrote(&self.owner);
        written
    }

    fn environment(&self) -> Option<Environment> {
        if let Some(found) = self.store.ahead(&self.owner, "", |unread| {
            unread.environments.remove(&self.owner.device)
        }) {
            return found;
        }
        self.store
            .backend
            .environment(&self.owner)
            .unwrap_or_else(|e| {
                self.warn("the environment could not be read", e);
                None
            })
    }

    fn save_environment(&self, environment: Environment) {
        if self.read_only {
            return;
        }
        // Not waited for here: the device's next record commits after it, and the step
        // settles the rest before it answers.
        if let Err(e) = self.store.writer.queue(Op::Environment {
            owner: self.owner.clone(),
            environment,
        }) {
            self.warn("the environment was not saved", e);
        }
    }

    fn hold_event(&self, event_json: &str) {
        if self.read_only {
            return;
        }
        if let Err(e) = self.store.write(Op::HoldEvent {
            owner: self.owner.clone(),
            event: event_json.into(),
            keep: super::HELD_EVENTS,
        }) {
            self.warn("the server could not keep an event", e);
        }
    }

    fn held_events(&self) -> Vec<String> {
        self.store
            .backend
            .held_events(&self.owner)
            .unwrap_or_else(|e| {
                self.warn("the server's events could not be read", e);
                Vec::new()
            })
    }

    fn release_held_events(&self) {
        if self.read_only {
            return;
        }
        if let Err(e) = self.store.write(Op::ReleaseHeldEvents {
            owner: self.owner.clone(),
        }) {
            self.warn("the held events were not released", e);
        }
    }
}
