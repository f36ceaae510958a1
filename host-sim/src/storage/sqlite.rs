//! The host store in one SQLite file (rusqlite, with SQLite bundled, so nothing is
//! installed by hand). WAL mode with `synchronous=FULL`: each group commit ends with an
//! fsync of the log, so a committed transaction survives a crash of the host process and a
//! power cut alike (a power cut loses at most the batch being committed, which no caller
//! was answered for). One connection writes (the writer's); a few read beside it, as WAL
//! allows.

use std::path::{Path, PathBuf};

use plugin_api::{documents::Importance, LicenseState};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use admin_server::{records::revision_keys, Kind, Record};

use super::{
    backend::{
        ActionRow, Backend, Committer, DeviceRecord, EventRow, Op, Owner, ServerInfo, StateRow,
        UserRow, SCHEMA_VERSION, TABLES,
    },
    codec::Encoded,
    pool::Pool,
    Environment, LEGACY_TABLES,
};

pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        codec INTEGER NOT NULL DEFAULT 0,
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
    CREATE TABLE IF NOT EXISTS server_events (
        host TEXT NOT NULL,
        id INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        device INTEGER NOT NULL,
        grp TEXT NOT NULL,
        importance TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT,
        by_user TEXT,
        wall_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (host, id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS statuses (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (host, device)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS dictionaries (
        id INTEGER PRIMARY KEY,
        bytes BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS servers (
        host TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS server_state (
        host TEXT NOT NULL,
        kind TEXT NOT NULL,
        key INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (host, kind, key)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS actions (
        host TEXT NOT NULL,
        id INTEGER NOT NULL,
        wall_ms INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        user TEXT NOT NULL,
        what TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (host, id)
    ) WITHOUT ROWID;
";

/// Brings the tables to this build's schema version, in one transaction: a database of
/// the first schema (no version, hosts keyed by a scenario's path or a command's name)
/// gains a server identity for each of its hosts; one written by a newer build is refused.
pub(super) fn migrate(c: &mut Connection, path: &Path) -> Result<(), String> {
    let failed = failed(path);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&failed)?;
    let version: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(&failed)?;
    let legacy_hosts = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<Vec<String>> {
        let union = LEGACY_TABLES
            .iter()
            .map(|t| format!("SELECT host FROM {t}"))
            .collect::<Vec<_>>()
            .join(" UNION ");
        let mut statement = tx.prepare(&format!(
            "SELECT DISTINCT host FROM ({union}) ORDER BY host"
        ))?;
        let hosts = statement.query_map([], |r| r.get(0))?.collect();
        hosts
    };
    match version {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(format!(
                "{}: the host database's schema is version {v}, and this host-sim reads versions up to {SCHEMA_VERSION}: open it with the newer host-sim that wrote it",
                path.display()
            ))
        }
        Some(SCHEMA_VERSION) => return Ok(()),
        _ => {}
    }
    // 2 → 3: the user an event was caused by (the new tables are made with the others);
    // 3 → 4: the wall clock of an event.
    for (column, kind) in [
        ("by_user", "TEXT"),
        ("wall_ms", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        let has: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('server_events') WHERE name = ?1",
                [column],
                |row| row.get(0),
            )
            .map_err(&failed)?;
        if !has {
            tx.execute_batch(&format!(
                "ALTER TABLE server_events ADD COLUMN {column} {kind}"
            ))
            .map_err(&failed)?;
        }
    }
    if matches!(version, Some(2 | 3)) {
        tx.execute("DELETE FROM schema_version", [])
            .map_err(&failed)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .map_err(&failed)?;
        return tx.commit().map_err(&failed);
    }
    // Version 1 (or no version: a new file, or one of the first schema).
    let hosts = legacy_hosts(&tx).map_err(&failed)?;
    let now = super::wall_clock_ms() as i64;
    for host in hosts {
        let id = super::new_server_id()?;
        tx.execute(
            "INSERT INTO servers (host, name, created_ms) VALUES (?1, ?2, ?3)",
            params![id, host, now],
        )
        .map_err(&failed)?;
        for table in LEGACY_TABLES {
            tx.execute(
                &format!("UPDATE {table} SET host = ?1 WHERE host = ?2"),
                params![id, host],
            )
            .map_err(&failed)?;
        }
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(&failed)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(&failed)?;
    tx.commit().map_err(&failed)
}

/// The writer's page cache: larger costs more at every commit's end than it saves.
const WRITER_CACHE_KIB: i64 = 8192;

/// Readers beside the writer.
const READERS: usize = 4;

pub struct SqliteBackend {
    path: PathBuf,
    readers: Pool<Connection>,
}

fn failed(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Creates the file readable and writable by its owner only (0600), if it is new: it
/// holds every device's consent records and the server's policies. SQLite gives its
/// journal files the same permissions.
pub(super) fn create_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn connect(path: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(connection)
}

impl SqliteBackend {
    /// Opens (or creates) the file and its tables; a file written before records were
    /// compressed gains their codec column (its records read as given).
    pub fn open(path: &Path) -> Result<Self, String> {
        create_private(path)?;
        let mut connection = connect(path, 2048).map_err(failed(path))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.execute_batch(SCHEMA))
            .and_then(|()| {
                let has_codec: bool = connection.query_row(
                    "SELECT COUNT(*) > 0 FROM pragma_table_info('records') WHERE name = 'codec'",
                    [],
                    |row| row.get(0),
                )?;
                if !has_codec {
                    connection.execute_batch(
                        "ALTER TABLE records ADD COLUMN codec INTEGER NOT NULL DEFAULT 0",
                    )?;
                }
                Ok(())
            })
            .map_err(failed(path))?;
        migrate(&mut connection, path)?;
        let owned = path.to_path_buf();
        Ok(Self {
            path: path.to_path_buf(),
            readers: Pool::new(READERS, move || {
                let c = connect(&owned, 8192).map_err(failed(&owned))?;
                c.pragma_update(None, "query_only", true)
                    .map_err(failed(&owned))?;
                Ok(c)
            }),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        self.readers
            .with(|c| f(c).map_err(|e| format!("the host database {}: {e}", self.path.display())))
    }
}

struct SqliteCommitter {
    connection: Connection,
}

fn apply(c: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Append {
            owner,
            key,
            record,
            seq: Some(seq),
        } => {
            c.prepare_cached(
                "INSERT INTO records (host, device, key, seq, codec, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                &*owner.host,
                owner.device,
                &**key,
                seq,
                record.codec,
                record.bytes
            ])?;
        }
        Op::Append {
            owner,
            key,
            record,
            seq: None,
        } => {
            c.prepare_cached(
                "INSERT INTO records (host, device, key, seq, codec, bytes) VALUES (?1, ?2, ?3,
                 (SELECT COALESCE(MAX(seq) + 1, 0) FROM records
                  WHERE host = ?1 AND device = ?2 AND key = ?3), ?4, ?5)",
            )?
            .execute(params![
                &*owner.host,
                owner.device,
                &**key,
                record.codec,
                record.bytes
            ])?;
        }
        Op::Replace {
            owner,
            key,
            records,
        } => {
            c.prepare_cached("DELETE FROM records WHERE host = ?1 AND device = ?2 AND key = ?3")?
                .execute(params![&*owner.host, owner.device, &**key])?;
            let mut insert = c.prepare_cached(
                "INSERT INTO records (host, device, key, seq, codec, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, record) in records.iter().enumerate() {
                insert.execute(params![
                    &*owner.host,
                    owner.device,
                    &**key,
                    seq as i64,
                    record.codec,
                    record.bytes
                ])?;
            }
        }
        Op::Environment { owner, environment } => {
            c.prepare_cached(
                "INSERT INTO devices (host, device, private_ksn, license) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host, device) DO UPDATE
                 SET private_ksn = excluded.private_ksn, license = excluded.license",
            )?
            .execute(params![
                &*owner.host,
                owner.device,
                environment.private_ksn,
                environment.license.as_str()
            ])?;
        }
        Op::HoldEvent { owner, event, keep } => {
            c.prepare_cached(
                "INSERT INTO held_events (host, device, n, event)
                 SELECT ?1, ?2, COALESCE(MAX(n) + 1, 0), ?3 FROM held_events
                 WHERE host = ?1 AND device = ?2",
            )?
            .execute(params![&*owner.host, owner.device, event])?;
            c.prepare_cached(
                "DELETE FROM held_events WHERE host = ?1 AND device = ?2 AND n <=
                 (SELECT MAX(n) FROM held_events WHERE host = ?1 AND device = ?2) - ?3",
            )?
            .execute(params![&*owner.host, owner.device, *keep as i64])?;
        }
        Op::ReleaseHeldEvents { owner } => {
            c.prepare_cached("DELETE FROM held_events WHERE host = ?1 AND device = ?2")?
                .execute(params![&*owner.host, owner.device])?;
        }
        Op::Dictionary { id, bytes } => {
            c.prepare_cached("INSERT OR IGNORE INTO dictionaries (id, bytes) VALUES (?1, ?2)")?
                .execute(params![id, bytes])?;
        }
        Op::Events {
            host,
            rows,
            oldest_kept,
        } => {
            let mut insert = c.prepare_cached(
                "INSERT OR REPLACE INTO server_events
                 (host, id, time_ms, device, grp, importance, type, body, by_user, wall_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in rows {
                insert.execute(params![
                    host,
                    r.id as i64,
                    r.time_ms as i64,
                    r.device as i64,
                    r.group,
                    r.importance.as_str(),
                    r.kind,
                    r.body,
                    r.by,
                    r.wall_ms as i64
                ])?;
            }
            c.prepare_cached("DELETE FROM server_events WHERE host = ?1 AND id < ?2")?
                .execute(params![host, *oldest_kept as i64])?;
        }
        Op::ExpireEvents {
            host,
            kind,
            before_ms,
        } => {
            c.prepare_cached(
                "DELETE FROM server_events WHERE host = ?1 AND type = ?2 AND time_ms < ?3",
            )?
            .execute(params![host, kind, *before_ms as i64])?;
        }
        Op::Policy { host, document } => {
            c.prepare_cached(
                "INSERT INTO policies (host, document) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET document = excluded.document",
            )?
            .execute(params![host, document])?;
        }
        Op::Clock { host, ms } => {
            c.prepare_cached(
                "INSERT INTO hosts (host, clock_ms) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET clock_ms = excluded.clock_ms",
            )?
            .execute(params![host, *ms as i64])?;
        }
        Op::Statuses { host, rows } => {
            c.prepare_cached("DELETE FROM statuses WHERE host = ?1")?
                .execute([host])?;
            let mut insert = c.prepare_cached(
                "INSERT INTO statuses (host, device, status) VALUES (?1, ?2, ?3)",
            )?;
            for (device, status) in rows {
                insert.execute(params![host, device, status])?;
            }
        }
        Op::ClearHost { host } => {
            for table in TABLES {
                c.execute(&format!("DELETE FROM {table} WHERE host = ?1"), [host])?;
            }
        }
        Op::NewServer {
            host,
            name,
            created_ms,
        } => {
            c.prepare_cached("INSERT INTO servers (host, name, created_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![host, name, *created_ms as i64])?;
        }
        Op::User(u) => {
            c.prepare_cached(
                "INSERT INTO users (name, role, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![u.name, u.role, u.token_hash, u.created_ms as i64])?;
        }
        Op::RemoveUser { name } => {
            c.prepare_cached("DELETE FROM users WHERE name = ?1")?
                .execute([name])?;
        }
        Op::Action { host, row } => {
            c.prepare_cached(
                "INSERT INTO actions (host, id, wall_ms, time_ms, user, what, target, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                host,
                row.id as i64,
                row.wall_ms as i64,
                row.time_ms as i64,
                row.user,
                row.what,
                row.target,
                row.outcome
            ])?;
        }
        Op::ServerRows { host, records } => {
            for record in records {
                match record {
                    Record::Put { kind, key, body } => {
                        c.prepare_cached(
                            "INSERT INTO server_state (host, kind, key, body) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (host, kind, key) DO UPDATE SET body = excluded.body",
                        )?
                        .execute(params![host, kind.as_str(), key, body])?;
                    }
                    Record::DeletePolicy { policy } => {
                        let (from, to) = revision_keys(*policy);
                        c.prepare_cached(
                            "DELETE FROM server_state WHERE host = ?1 AND
                             ((kind = 'policy' AND key = ?2) OR (kind = 'revision' AND key >= ?3 AND key < ?4))",
                        )?
                        .execute(params![host, *policy as i64, from, to])?;
                    }
                }
            }
        }
    }
    Ok(())
}

impl Committer for SqliteCommitter {
    fn commit(&mut self, ops: &[Op]) -> Result<(), String> {
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| format!("the host database: {e}"))?;
        for op in ops {
            apply(&tx, op).map_err(|e| format!("the host database: {e}"))?;
        }
        tx.commit().map_err(|e| format!("the host database: {e}"))
    }
}

impl Backend for SqliteBackend {
    fn committer(&self) -> Result<Box<dyn Committer>, String> {
        let connection = connect(&self.path, WRITER_CACHE_KIB).map_err(failed(&self.path))?;
        connection
            // The log is on disk before any caller of a batch is answered.
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed(&self.path))?;
        Ok(Box::new(SqliteCommitter { connection }))
    }

    fn records(&self, owner: &Owner, key: &str) -> Result<Vec<Encoded>, String> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT codec, bytes FROM records WHERE host = ?1 AND device = ?2 AND key = ?3
                 ORDER BY seq",
            )?;
            let rows = statement.query_map(params![&*owner.host, owner.device, key], |row| {
                Ok(Encoded {
                    codec: row.get(0)?,
                    bytes: row.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    fn records_of(&self, host: &str, from: i64, to: i64) -> Result<Vec<DeviceRecord>, String> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT device, key, codec, bytes FROM records
                 WHERE host = ?1 AND device >= ?2 AND device < ?3 ORDER BY device, key, seq",
            )?;
            let rows = statement.query_map(params![host, from, to], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    Encoded {
                        codec: row.get(2)?,
                        bytes: row.get(3)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }

    fn environments_of(
        &self,
        host: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Environment)>, String> {
        let rows: Vec<(i64, bool, String)> = self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT device, private_ksn, license FROM devices
                 WHERE host = ?1 AND device >= ?2 AND device < ?3",
            )?;
            let rows = statement.query_map(params![host, from, to], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .map(|(device, private_ksn, license)| {
                (
                    device,
                    Environment {
                        private_ksn,
                        license: LicenseState::from_name(&license).unwrap_or(LicenseState::UNKNOWN),
                    },
                )
            })
            .collect())
    }

    fn environment(&self, owner: &Owner) -> Result<Option<Environment>, String> {
        let found = self.read(|c| {
            c.prepare_cached(
                "SELECT private_ksn, license FROM devices WHERE host = ?1 AND device = ?2",
            )?
            .query_row(params![&*owner.host, owner.device], |row| {
                Ok((row.get::<_, bool>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
        })?;
        Ok(found.map(|(private_ksn, license)| Environment {
            private_ksn,
            license: LicenseState::from_name(&license).unwrap_or(LicenseState::UNKNOWN),
        }))
    }

    fn held_events(&self, owner: &Owner) -> Result<Vec<String>, String> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT event FROM held_events WHERE host = ?1 AND device = ?2 ORDER BY n",
            )?;
            let rows =
                statement.query_map(params![&*owner.host, owner.device], |row| row.get(0))?;
            rows.collect()
        })
    }

    fn devices(&self) -> Result<Vec<(String, usize)>, String> {
        self.read(|c| {
            let mut statement =
                c.prepare("SELECT DISTINCT host, device FROM records ORDER BY host, device")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as usize))
            })?;
            rows.collect()
        })
    }

    fn clock(&self, host: &str) -> Result<Option<u64>, String> {
        self.read(|c| {
            c.query_row(
                "SELECT clock_ms FROM hosts WHERE host = ?1",
                [host],
                |row| row.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|ms| ms.map(|ms| ms as u64))
    }

    fn devices_holding_events(&self, host: &str) -> Result<Vec<usize>, String> {
        self.read(|c| {
            let mut statement =
                c.prepare("SELECT DISTINCT device FROM held_events WHERE host = ?1")?;
            let rows = statement.query_map([host], |row| Ok(row.get::<_, i64>(0)? as usize))?;
            rows.collect()
        })
    }

    fn policy(&self, host: &str) -> Result<Option<String>, String> {
        self.read(|c| {
            c.query_row(
                "SELECT document FROM policies WHERE host = ?1",
                [host],
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn events(&self, host: Option<&str>) -> Result<Vec<EventRow>, String> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT host, id, time_ms, device, grp, importance, type, body, by_user, wall_ms
                 FROM server_events WHERE ?1 IS NULL OR host = ?1 ORDER BY host, id",
            )?;
            let rows = statement.query_map([host], |row| {
                let importance: String = row.get(5)?;
                Ok(EventRow {
                    host: row.get(0)?,
                    id: row.get::<_, i64>(1)? as u64,
                    time_ms: row.get::<_, i64>(2)? as u64,
                    device: row.get::<_, i64>(3)? as usize,
                    group: row.get(4)?,
                    importance: Importance::from_name(&importance).unwrap_or(Importance::Info),
                    kind: row.get(6)?,
                    body: row.get(7)?,
                    by: row.get(8)?,
                    wall_ms: row.get::<_, i64>(9)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    fn dictionaries(&self) -> Result<Vec<(u32, Vec<u8>)>, String> {
        self.read(|c| {
            let mut statement = c.prepare("SELECT id, bytes FROM dictionaries")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    fn status_counts(&self, host: &str) -> Result<Vec<(String, u64)>, String> {
        self.read(|c| {
            let mut statement =
                c.prepare("SELECT status, COUNT(*) FROM statuses WHERE host = ?1 GROUP BY status")?;
            let rows = statement.query_map([host], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        })
    }

    fn event_counts(&self, host: &str) -> Result<Vec<(String, String, u64)>, String> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT importance, type, COUNT(*) FROM server_events WHERE host = ?1
                 GROUP BY importance, type ORDER BY importance, type",
            )?;
            let rows = statement.query_map([host], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
            })?;
            rows.collect()
        })
    }

    fn size_bytes(&self) -> Result<u64, String> {
        self.read(|c| {
            c.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get::<_, i64>(0),
            )
        })
        .map(|n| n as u64)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn servers(&self) -> Result<Vec<ServerInfo>, String> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT s.host, s.name, s.created_ms,
                    (SELECT COUNT(*) FROM server_state d WHERE d.host = s.host AND d.kind = 'device')
                 FROM servers s ORDER BY s.created_ms, s.name",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(ServerInfo {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    created_ms: row.get::<_, i64>(2)? as u64,
                    devices: row.get::<_, i64>(3)? as usize,
                })
            })?;
            rows.collect()
        })
    }

    fn users(&self) -> Result<Vec<UserRow>, String> {
        self.read(|c| {
            let mut statement =
                c.prepare("SELECT name, role, token_hash, created_ms FROM users ORDER BY name")?;
            let rows = statement.query_map([], |row| {
                Ok(UserRow {
                    name: row.get(0)?,
                    role: row.get(1)?,
                    token_hash: row.get(2)?,
                    created_ms: row.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    fn actions(&self, host: &str, limit: usize) -> Result<Vec<ActionRow>, String> {
        self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, wall_ms, time_ms, user, what, target, outcome FROM actions
                 WHERE host = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![host, limit as i64], |row| {
                Ok(ActionRow {
                    id: row.get::<_, i64>(0)? as u64,
                    wall_ms: row.get::<_, i64>(1)? as u64,
                    time_ms: row.get::<_, i64>(2)? as u64,
                    user: row.get(3)?,
                    what: row.get(4)?,
                    target: row.get(5)?,
                    outcome: row.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    fn server_rows(&self, host: &str) -> Result<Vec<StateRow>, String> {
        let rows: Vec<(String, i64, String)> = self.read(|c| {
            let mut statement = c.prepare_cached(
                "SELECT kind, key, body FROM server_state WHERE host = ?1 ORDER BY kind, key",
            )?;
            let rows =
                statement.query_map([host], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(kind, key, body)| {
                Kind::parse(&kind).map(|k| (k, key, body)).ok_or_else(|| {
                    format!(
                        "{}: a server row of unknown kind {kind:?}",
                        self.path.display()
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Environment, HostStore, Storage};
    use plugin_api::LicenseState;

    fn temporary(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ksn-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn records_and_environments_survive_reopening_per_host_and_device() {
        let path = temporary("sqlite");
        {
            let store = HostStore::open(&path).unwrap();
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
        let store = HostStore::open(&path).unwrap();
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

    /// A file written before records were compressed opens, and its records read as given.
    #[test]
    fn a_file_of_the_earlier_schema_gains_the_codec_column() {
        let path = temporary("sqlite-v1");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE records (host TEXT NOT NULL, device INTEGER NOT NULL,
                 key TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL,
                 PRIMARY KEY (host, device, key, seq)) WITHOUT ROWID;
                 INSERT INTO records VALUES ('shell', 0, 'journal', 0, x'6f6e65');",
            )
            .unwrap();
        }
        let store = HostStore::open(&path).unwrap();
        // The host of the first schema is a server now, named as the host was.
        let id = store.server_id("shell").unwrap();
        assert_ne!(id, "shell");
        let a = store.device(&id, 0);
        a.append("journal", b"two").unwrap();
        assert_eq!(
            a.records("journal").unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        drop(store);
        let _ = std::fs::remove_file(&path);
    }

    /// An event's wall clock is kept; a file of schema 3 (which had none) gains the
    /// column, its events at 0, and keeps the wall clock of the events written after.
    #[test]
    fn an_event_s_wall_clock_is_kept_and_a_file_of_schema_3_gains_it() {
        let path = temporary("sqlite-v3");
        let event = |id: u64, wall_ms: u64| super::EventRow {
            host: "h".into(),
            id,
            time_ms: id * 1000,
            device: 0,
            group: "/".into(),
            importance: plugin_api::documents::Importance::Info,
            kind: "policy_applied".into(),
            body: None,
            by: None,
            wall_ms,
        };
        {
            let store = HostStore::open(&path).unwrap();
            store
                .save_events("h", &[event(1, 1_700_000_000_123)], 1)
                .unwrap();
            assert_eq!(
                store.events(Some("h")).unwrap()[0].wall_ms,
                1_700_000_000_123
            );
        }
        // As schema 3 left it.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "ALTER TABLE server_events DROP COLUMN wall_ms;
                 UPDATE schema_version SET version = 3;",
            )
            .unwrap();
        let store = HostStore::open(&path).unwrap();
        store
            .save_events("h", &[event(2, 1_700_000_000_456)], 1)
            .unwrap();
        let walls: Vec<u64> = store
            .events(Some("h"))
            .unwrap()
            .iter()
            .map(|e| e.wall_ms)
            .collect();
        assert_eq!(walls, [0, 1_700_000_000_456]);
        drop(store);
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, super::SCHEMA_VERSION);
        let _ = std::fs::remove_file(&path);
    }

    /// A file written by a newer build is refused, naming both versions, and left as it is.
    #[test]
    fn a_file_of_a_newer_schema_is_refused_naming_both_versions() {
        let path = temporary("sqlite-newer");
        drop(HostStore::open(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_version SET version = 7", [])
            .unwrap();
        let e = HostStore::open(&path).err().unwrap();
        assert!(
            e.contains("version 7") && e.contains(&format!("up to {}", super::SCHEMA_VERSION)),
            "{e}"
        );
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 7);
        let _ = std::fs::remove_file(&path);
    }

    /// A boot reading ahead answers each device's records and environment as stored, a
    /// range of devices at a time, and what a device wrote since its range was read.
    #[test]
    fn a_boot_reading_ahead_reads_what_each_device_stored() {
        let path = temporary("sqlite-ahead");
        let store = HostStore::open(&path).unwrap();
        for device in 0..1500 {
            let storage = store.device("fleet", device);
            for i in 0..=(device % 3) {
                storage
                    .append("journal", format!("{device}:{i}").as_bytes())
                    .unwrap();
            }
            if device % 2 == 0 {
                storage.save_environment(Environment {
                    private_ksn: true,
                    license: LicenseState::EXPIRED,
                });
            }
        }
        store.settle().unwrap();
        store.reading_ahead("fleet", || {
            for device in 0..1500 {
                let storage = store.device("fleet", device);
                assert_eq!(
                    storage.environment().map(|e| e.private_ksn),
                    (device % 2 == 0).then_some(true),
                    "device {device}"
                );
                let records = storage.records("journal").unwrap();
                assert_eq!(records.len(), device % 3 + 1, "device {device}");
                assert!(storage.records("ledger").unwrap().is_empty());
                // A write, then a read again: the database's answer, with the write.
                storage.append("journal", b"after").unwrap();
                let again = storage.records("journal").unwrap();
                assert_eq!(again.len(), device % 3 + 2, "device {device}");
                assert_eq!(again.last().unwrap(), b"after");
            }
            // A device of a range read before it wrote.
            store
                .device("fleet", 1400)
                .append("journal", b"late")
                .unwrap();
            assert_eq!(
                store
                    .device("fleet", 1400)
                    .records("journal")
                    .unwrap()
                    .last()
                    .unwrap(),
                b"late"
            );
        });
        drop(store);
        let _ = std::fs::remove_file(&path);
    }

    /// Many devices writing at once: every write is there after its call returned, in its
    /// device's order, and they shared transactions.
    #[test]
    fn writes_from_many_threads_are_each_committed_in_order() {
        let path = temporary("sqlite-group");
        let store = HostStore::open(&path).unwrap();
        std::thread::scope(|s| {
            for device in 0..32 {
                let store = store.clone();
                s.spawn(move || {
                    let storage = store.device("fleet", device);
                    for i in 0..200 {
                        let record =
                            format!("{{\"device\":{device},\"change\":{i},\"state\":\"running\"}}");
                        storage.append("journal", record.as_bytes()).unwrap();
                        // Read back at once: committed before the call returned.
                        let records = storage.records("journal").unwrap();
                        assert_eq!(records.len(), i + 1);
                        assert_eq!(records[i], record.as_bytes());
                    }
                });
            }
        });
        // 6,400 records: two dictionaries were made, and the records read back through them.
        let records = store.device("fleet", 7).records("journal").unwrap();
        assert_eq!(records.len(), 200);
        assert!(records[199].starts_with(b"{\"device\":7,\"change\":199"));
        drop(store);
        let store = HostStore::open(&path).unwrap();
        assert_eq!(
            store.device("fleet", 31).records("journal").unwrap().len(),
            200
        );
        drop(store);
        let _ = std::fs::remove_file(&path);
    }
}
