//! The host's durable state in one SQLite database file (rusqlite, with SQLite bundled, so
//! nothing is installed by hand): every device's records, and the environment each device
//! was last told, for every simulated host that uses the file (a console session, a fleet,
//! each scenario).
//!
//! Each append and each replacement is one transaction, so a replacement (the plugin's
//! compaction) is atomic: after a crash the key holds the old records or the new ones. The
//! database runs in WAL mode with `synchronous=NORMAL`: a transaction that returned
//! survives a crash of the host process; after a power loss the last few may be missing,
//! never half there.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use plugin_api::LicenseState;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Environment, Storage};

/// One database file, shared by the devices of every host that uses it.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (host, device, key, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS devices (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        private_ksn INTEGER NOT NULL,
        license TEXT NOT NULL,
        PRIMARY KEY (host, device)
    );
    CREATE TABLE IF NOT EXISTS hosts (
        host TEXT PRIMARY KEY,
        clock_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS held_events (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        n INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (host, device, n)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS policies (
        host TEXT PRIMARY KEY,
        document TEXT NOT NULL
    );
";

fn sql(e: rusqlite::Error) -> String {
    format!("the host database: {e}")
}

impl SqliteStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<Arc<Self>, String> {
        let connection = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.busy_timeout(std::time::Duration::from_secs(10)))
            .and_then(|()| connection.execute_batch(SCHEMA))
            .and_then(|()| connection.execute_batch(super::server_events::SCHEMA))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Arc::new(Self {
            connection: Mutex::new(connection),
        }))
    }

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut connection).map_err(sql)
    }

    /// Device `device` of host `host`.
    pub fn device(self: &Arc<Self>, host: &str, device: usize) -> SqliteStorage {
        SqliteStorage {
            store: self.clone(),
            host: host.to_string(),
            device: device as i64,
            read_only: false,
        }
    }

    /// The same, refusing every write: for reading a device without changing it.
    pub fn device_read_only(self: &Arc<Self>, host: &str, device: usize) -> SqliteStorage {
        SqliteStorage {
            read_only: true,
            ..self.device(host, device)
        }
    }

    /// Every (host, device) with records, in order.
    pub fn devices(&self) -> Result<Vec<(String, usize)>, String> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT DISTINCT host, device FROM records ORDER BY host, device")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as usize))
            })?;
            rows.collect()
        })
    }

    /// Forgets everything of `host`: a scenario starts from nothing.
    pub fn clear_host(&self, host: &str) -> Result<(), String> {
        self.with(|c| {
            let tx = c.transaction()?;
            for table in [
                "records",
                "devices",
                "hosts",
                "held_events",
                "policies",
                "server_events",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE host = ?1"), [host])?;
            }
            tx.commit()
        })
    }

    /// The simulated time `host` had reached, if it ran before.
    pub fn clock(&self, host: &str) -> Result<Option<u64>, String> {
        self.with(|c| {
            c.query_row(
                "SELECT clock_ms FROM hosts WHERE host = ?1",
                [host],
                |row| row.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|ms| ms.map(|ms| ms as u64))
    }

    /// The devices of `host` for which the server holds events.
    pub fn devices_holding_events(&self, host: &str) -> Result<Vec<usize>, String> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT DISTINCT device FROM held_events WHERE host = ?1")?;
            let rows = statement.query_map([host], |row| Ok(row.get::<_, i64>(0)? as usize))?;
            rows.collect()
        })
    }

    /// The policy `host` last pushed, as stored (with the statement versions it stamped).
    pub fn policy(&self, host: &str) -> Result<Option<String>, String> {
        self.with(|c| {
            c.query_row(
                "SELECT document FROM policies WHERE host = ?1",
                [host],
                |row| row.get::<_, String>(0),
            )
            .optional()
        })
    }

    pub fn save_policy(&self, host: &str, document: &str) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO policies (host, document) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET document = excluded.document",
                params![host, document],
            )
            .map(|_| ())
        })
    }

    pub fn save_clock(&self, host: &str, ms: u64) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO hosts (host, clock_ms) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET clock_ms = excluded.clock_ms",
                params![host, ms as i64],
            )
            .map(|_| ())
        })
    }
}

/// One device's records in the host database.
pub struct SqliteStorage {
    store: Arc<SqliteStore>,
    host: String,
    device: i64,
    read_only: bool,
}

impl SqliteStorage {
    fn writable(&self) -> Result<(), String> {
        if self.read_only {
            Err("the host database is open for reading only".into())
        } else {
            Ok(())
        }
    }
}

impl Storage for SqliteStorage {
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        self.writable()?;
        self.store.with(|c| {
            c.prepare_cached(
                "INSERT INTO records (host, device, key, seq, bytes)
                 SELECT ?1, ?2, ?3, COALESCE(MAX(seq) + 1, 0), ?4 FROM records
                 WHERE host = ?1 AND device = ?2 AND key = ?3",
            )?
            .execute(params![self.host, self.device, key, record])
            .map(|_| ())
        })
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        self.store.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT bytes FROM records WHERE host = ?1 AND device = ?2 AND key = ?3
                 ORDER BY seq",
            )?;
            let rows = statement.query_map(params![self.host, self.device, key], |row| {
                row.get::<_, Vec<u8>>(0)
            })?;
            rows.collect()
        })
    }

    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        self.writable()?;
        self.store.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM records WHERE host = ?1 AND device = ?2 AND key = ?3",
                params![self.host, self.device, key],
            )?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO records (host, device, key, seq, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (seq, record) in records.iter().enumerate() {
                    insert.execute(params![self.host, self.device, key, seq as i64, record])?;
                }
            }
            tx.commit()
        })
    }

    fn environment(&self) -> Option<Environment> {
        self.store
            .with(|c| {
                c.query_row(
                    "SELECT private_ksn, license FROM devices WHERE host = ?1 AND device = ?2",
                    params![self.host, self.device],
                    |row| Ok((row.get::<_, bool>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()
            })
            .ok()
            .flatten()
            .map(|(private_ksn, license)| Environment {
                private_ksn,
                license: LicenseState::from_name(&license).unwrap_or(LicenseState::UNKNOWN),
            })
    }

    fn save_environment(&self, environment: Environment) {
        if self.read_only {
            return;
        }
        let saved = self.store.with(|c| {
            c.execute(
                "INSERT INTO devices (host, device, private_ksn, license) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host, device) DO UPDATE
                 SET private_ksn = excluded.private_ksn, license = excluded.license",
                params![
                    self.host,
                    self.device,
                    environment.private_ksn,
                    environment.license.as_str()
                ],
            )
        });
        if let Err(e) = saved {
            log::warn!("device {}: the environment was not saved: {e}", self.device);
        }
    }

    fn hold_event(&self, event_json: &str) {
        if self.read_only {
            return;
        }
        let held = self.store.with(|c| {
            c.prepare_cached(
                "INSERT INTO held_events (host, device, n, event)
                 SELECT ?1, ?2, COALESCE(MAX(n) + 1, 0), ?3 FROM held_events
                 WHERE host = ?1 AND device = ?2",
            )?
            .execute(params![self.host, self.device, event_json])?;
            c.prepare_cached(
                "DELETE FROM held_events WHERE host = ?1 AND device = ?2 AND n <=
                 (SELECT MAX(n) FROM held_events WHERE host = ?1 AND device = ?2) - ?3",
            )?
            .execute(params![self.host, self.device, super::HELD_EVENTS as i64])
            .map(|_| ())
        });
        if let Err(e) = held {
            log::warn!(
                "device {}: the server could not keep an event: {e}",
                self.device
            );
        }
    }

    fn held_events(&self) -> Vec<String> {
        self.store
            .with(|c| {
                let mut statement = c.prepare_cached(
                    "SELECT event FROM held_events WHERE host = ?1 AND device = ?2 ORDER BY n",
                )?;
                let rows = statement.query_map(params![self.host, self.device], |row| {
                    row.get::<_, String>(0)
                })?;
                rows.collect()
            })
            .unwrap_or_else(|e| {
                log::warn!(
                    "device {}: the server's events could not be read: {e}",
                    self.device
                );
                Vec::new()
            })
    }

    fn release_held_events(&self) {
        if self.read_only {
            return;
        }
        let released = self.store.with(|c| {
            c.prepare_cached("DELETE FROM held_events WHERE host = ?1 AND device = ?2")?
                .execute(params![self.host, self.device])
                .map(|_| ())
        });
        if let Err(e) = released {
            log::warn!("device {}: {e}", self.device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ksn-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn records_and_environments_survive_reopening_per_host_and_device() {
        let path = temporary("sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            let a = store.device("shell", 0);
            a.append("journal", b"one").unwrap();
            a.append("journal", b"two").unwrap();
            store
                .device("shell", 1)
                .append("journal", b"other device")
                .unwrap();
            store
                .device("fleet", 0)
                .append("journal", b"other host")
                .unwrap();
            a.save_environment(Environment {
                private_ksn: true,
                license: LicenseState::EXPIRED,
            });
            store.save_clock("shell", 60_000).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let a = store.device("shell", 0);
        assert_eq!(
            a.records("journal").unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(
            a.environment(),
            Some(Environment {
                private_ksn: true,
                license: LicenseState::EXPIRED
            })
        );
        assert_eq!(store.clock("shell").unwrap(), Some(60_000));
        a.replace("journal", &[b"base"]).unwrap();
        a.append("journal", b"after").unwrap();
        assert_eq!(
            a.records("journal").unwrap(),
            vec![b"base".to_vec(), b"after".to_vec()]
        );
        assert_eq!(store.devices().unwrap().len(), 3);
        assert!(store
            .device_read_only("shell", 0)
            .append("journal", b"x")
            .is_err());
        store.clear_host("shell").unwrap();
        assert!(a.records("journal").unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_file(&path);
    }
}
