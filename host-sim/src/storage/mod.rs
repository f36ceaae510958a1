//! The host's persistent storage for one device: the plugin's records by key, the
//! environment the host last reported to the device (so that a host that comes back
//! reports the same), and, apart from those, the server's own record of the events the
//! device sent while its storage refused writes. In memory here; in the host database
//! (`store.rs`: SQLite or PostgreSQL, `backend.rs`) when it must outlive the process.

mod backend;
pub mod backup;
mod codec;
mod pool;
mod postgres;
mod sqlite;
mod store;
mod writer;

use std::sync::{Arc, Mutex, OnceLock, Weak};

pub use backend::{ActionRow, EventRow, ServerInfo, StateRow, UserRow, SCHEMA_VERSION};

/// The administrators' roles: every change, or reading only.
pub const ROLES: [&str; 2] = ["administrator", "auditor"];

/// A token as the database keeps it: its SHA-256, in hexadecimal.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
pub use store::{is_postgres, DeviceStorage, HostStore};

/// A new server's identity: 16 hex digits, from the system's randomness.
pub fn new_server_id() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| format!("no randomness for a server's identity: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A database location as messages show it: a URL's password replaced by `***` (in
/// `user:password@` and in a `password=` parameter).
pub fn redacted(location: &str) -> String {
    let mut shown = location.to_string();
    if let Some(scheme_end) = shown.find("://") {
        let rest = &shown[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                shown.replace_range(start..end, "***");
            }
        }
    }
    if let Some(query) = shown.find('?') {
        let (base, params) = shown.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        shown = format!("{base}{}", params.join("&"));
    }
    shown
}

/// The wall clock, in milliseconds since 1970.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The tables of the first schema that held a host's data, keyed by a scenario's path or
/// a command's name: what a migration to server identities renames.
pub(crate) const LEGACY_TABLES: [&str; 7] = [
    "records",
    "devices",
    "hosts",
    "held_events",
    "policies",
    "server_events",
    "statuses",
];

/// The environment the Administration Server reports to a device's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Environment {
    pub private_ksn: bool,
    pub license: plugin_api::LicenseState,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            private_ksn: false,
            license: plugin_api::LicenseState::VALID,
        }
    }
}

pub trait Storage: Send + Sync {
    /// Appends one record atomically: after a crash it is there whole or not at all.
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String>;
    /// Every record under `key`, oldest first.
    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String>;
    /// Replaces every record under `key`, atomically: after a crash, the old records or
    /// the new ones, whole.
    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String>;
    /// The environment saved last, if this storage outlives the process.
    fn environment(&self) -> Option<Environment> {
        None
    }
    /// Saves the environment, if this storage outlives the process.
    fn save_environment(&self, _: Environment) {}
    /// The server keeps an event the device sent (its own table, which `set_storage`
    /// never fails: the server's database is not the device's disk).
    fn hold_event(&self, event_json: &str);
    /// The events held, oldest first.
    fn held_events(&self) -> Vec<String>;
    /// The device's storage took a write: everything it sent before is recorded there.
    fn release_held_events(&self);
}

/// At most this many events are held for one device (the oldest go first): a storage
/// outage longer than that loses the oldest of them from a later reconciliation.
pub const HELD_EVENTS: usize = 100_000;

/// Storage that survives `restart_host` (the device state outlives the task instance) but
/// not the process.
/// Records by key (a device has one or two), each record shared with every other device
/// that wrote the same bytes (`Shared`): a fleet's devices going through the same story
/// write the same records, and 100,000 copies of each would be most of its memory.
type Logs = Vec<(Box<str>, Vec<Arc<[u8]>>)>;

#[derive(Default)]
pub struct MemoryStorage {
    logs: Mutex<Logs>,
    held: Mutex<std::collections::VecDeque<Box<str>>>,
}

/// Records in memory by their bytes: one copy of each, however many devices hold it.
/// Shards keep devices on different threads apart; an entry goes once no device holds
/// its record, swept as a shard doubles its entries or takes as many new bytes as it held
/// (a `Weak` keeps its record's bytes allocated until it is swept, so the sweep follows
/// bytes too, or a device replacing large records would grow without bound).
struct Shared {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    records: std::collections::HashMap<u64, Vec<Weak<[u8]>>>,
    entries: usize,
    sweep_at: usize,
    /// Bytes of records added since the last sweep, and when they call for the next.
    new_bytes: usize,
    sweep_at_bytes: usize,
}

const SHARDS: usize = 64;

/// Records larger than this are a device's own (snapshots, the ledger's batches): not
/// looked up, and freed as soon as their device lets them go.
const SHARED_MOST: usize = 4096;

/// A shard sweeps at least once it took this many new bytes.
const SWEEP_BYTES_LEAST: usize = 16 * 1024;

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
    })
}

impl Shared {
    /// The one copy of `bytes`.
    fn intern(&self, bytes: &[u8]) -> Arc<[u8]> {
        if bytes.len() > SHARED_MOST {
            return bytes.into();
        }
        let hash = fast_hash(bytes);
        let mut shard = self.shards[hash as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let shard = &mut *shard;
        let same = shard.records.entry(hash).or_default();
        if let Some(found) = same
            .iter()
            .filter_map(Weak::upgrade)
            .find(|r| **r == *bytes)
        {
            return found;
        }
        let record: Arc<[u8]> = bytes.into();
        same.push(Arc::downgrade(&record));
        shard.entries += 1;
        shard.new_bytes += bytes.len();
        if shard.entries >= shard.sweep_at || shard.new_bytes >= shard.sweep_at_bytes {
            let mut live_bytes = 0;
            shard.records.retain(|_, same| {
                same.retain(|w| match w.upgrade() {
                    Some(r) => {
                        live_bytes += r.len();
                        true
                    }
                    None => false,
                });
                !same.is_empty()
            });
            shard.entries = shard.records.values().map(Vec::len).sum();
            shard.sweep_at = (shard.entries * 2).max(1024);
            shard.new_bytes = 0;
            shard.sweep_at_bytes = live_bytes.max(SWEEP_BYTES_LEAST);
        }
        record
    }
}

/// A hash of a record's bytes, eight at a time (FxHash's step): records are compared
/// whole when hashes meet, so this need only spread them, and SipHash cost the story 7% of
/// its instructions.
fn fast_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut h = step(0, bytes.len() as u64);
    for chunk in &mut chunks {
        h = step(
            h,
            u64::from_le_bytes(chunk.try_into().expect("eight bytes")),
        );
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    step(h, u64::from_le_bytes(tail))
}

impl MemoryStorage {
    fn under<'a>(logs: &'a mut Logs, key: &str) -> &'a mut Vec<Arc<[u8]>> {
        let at = match logs.iter().position(|(k, _)| &**k == key) {
            Some(at) => at,
            None => {
                logs.push((key.into(), Vec::new()));
                logs.len() - 1
            }
        };
        &mut logs[at].1
    }
}

impl Storage for MemoryStorage {
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        Self::under(&mut logs, key).push(shared().intern(record));
        Ok(())
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(logs
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, records)| records.iter().map(|r| r.to_vec()).collect())
            .unwrap_or_default())
    }

    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        *Self::under(&mut logs, key) = records.iter().map(|r| shared().intern(r)).collect();
        Ok(())
    }

    fn hold_event(&self, event_json: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.len() == HELD_EVENTS {
            held.pop_front();
        }
        held.push_back(event_json.into());
    }

    fn held_events(&self) -> Vec<String> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.iter().map(|e| e.to_string()).collect()
    }

    fn release_held_events(&self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_s_password_never_shows() {
        assert_eq!(
            redacted("postgresql://ksn:s3cret@db.example:5432/postgres?schema=a"),
            "postgresql://ksn:***@db.example:5432/postgres?schema=a"
        );
        assert_eq!(
            redacted("postgres:///postgres?host=/tmp/pg&user=ksn&password=s3cret&schema=a"),
            "postgres:///postgres?host=/tmp/pg&user=ksn&password=***&schema=a"
        );
        assert_eq!(redacted("/var/lib/host.db"), "/var/lib/host.db");
        let e = HostStore::open(std::path::Path::new(
            "postgresql://ksn:s3cret@127.0.0.1:1/postgres?connect_timeout=1",
        ))
        .err()
        .unwrap();
        assert!(!e.contains("s3cret"), "{e}");
    }

    /// Records let go are swept by their bytes as well as their count: a device that keeps
    /// replacing its records (the ledger, snapshots) holds no growing heap of dead ones;
    /// large records are not shared at all.
    #[test]
    fn records_let_go_do_not_pile_up() {
        let shared = Shared {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        };
        let entries = |shared: &Shared| -> usize {
            shared
                .shards
                .iter()
                .map(|s| {
                    s.lock()
                        .unwrap()
                        .records
                        .values()
                        .map(Vec::len)
                        .sum::<usize>()
                })
                .sum()
        };
        for i in 0..40_000u32 {
            let mut record = vec![0u8; 2048];
            record[..4].copy_from_slice(&i.to_le_bytes());
            drop(shared.intern(&record));
        }
        // By count alone no shard would have swept (625 each, under 1,024).
        let most = SHARDS * (SWEEP_BYTES_LEAST / 2048 + 2);
        assert!(entries(&shared) <= most, "{} > {most}", entries(&shared));
        let before = entries(&shared);
        let large = shared.intern(&vec![7u8; SHARED_MOST + 1]);
        assert_eq!(Arc::strong_count(&large), 1);
        assert_eq!(entries(&shared), before);
        // Small records are still one copy.
        let a = shared.intern(b"same");
        let b = shared.intern(b"same");
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn memory_storage_appends_and_replaces() {
        let storage = MemoryStorage::default();
        storage.append("journal", b"one").unwrap();
        storage.append("journal", b"two").unwrap();
        assert_eq!(storage.records("journal").unwrap().len(), 2);
        storage.replace("journal", &[b"base"]).unwrap();
        assert_eq!(storage.records("journal").unwrap(), vec![b"base".to_vec()]);
        assert!(storage.records("other").unwrap().is_empty());
    }

    #[test]
    fn devices_that_write_the_same_record_share_one_copy() {
        let (a, b) = (MemoryStorage::default(), MemoryStorage::default());
        a.append("journal", b"the same record").unwrap();
        b.append("journal", b"the same record").unwrap();
        b.append("journal", b"another").unwrap();
        let first = |s: &MemoryStorage| s.logs.lock().unwrap()[0].1[0].clone();
        assert!(Arc::ptr_eq(&first(&a), &first(&b)));
        assert_eq!(b.records("journal").unwrap()[1], b"another");
        // Each device's records stay its own.
        a.replace("journal", &[b"base"]).unwrap();
        assert_eq!(b.records("journal").unwrap()[0], b"the same record");
    }
}
