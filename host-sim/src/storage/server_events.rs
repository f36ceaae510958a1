//! The server's event store in the host database: every event the server keeps, with its
//! importance, device and group, under the host's name; written in one transaction per
//! batch, deleted as the in-memory store deletes (the cap, the storage terms), and read back
//! when a host comes back and by `host-sim events`.

use plugin_api::documents::Importance;
use rusqlite::params;

use super::SqliteStore;

pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS server_events (
        host TEXT NOT NULL,
        id INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        device INTEGER NOT NULL,
        grp TEXT NOT NULL,
        importance TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT,
        PRIMARY KEY (host, id)
    ) WITHOUT ROWID;
";

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
}

impl SqliteStore {
    /// Adds `rows` (of one host) in one transaction, then deletes that host's events
    /// numbered below `oldest_kept` (the cap at work).
    pub fn save_events(
        &self,
        host: &str,
        rows: &[EventRow],
        oldest_kept: u64,
    ) -> Result<(), String> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO server_events
                     (host, id, time_ms, device, grp, importance, type, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                        r.body
                    ])?;
                }
            }
            tx.execute(
                "DELETE FROM server_events WHERE host = ?1 AND id < ?2",
                params![host, oldest_kept as i64],
            )?;
            tx.commit()
        })
    }

    /// Deletes `host`'s events of type `kind` older than `before_ms` (a storage term).
    pub fn expire_events(&self, host: &str, kind: &str, before_ms: u64) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "DELETE FROM server_events WHERE host = ?1 AND type = ?2 AND time_ms < ?3",
                params![host, kind, before_ms as i64],
            )
            .map(|_| ())
        })
    }

    /// The events the database keeps, of one host or of all, oldest first.
    pub fn events(&self, host: Option<&str>) -> Result<Vec<EventRow>, String> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT host, id, time_ms, device, grp, importance, type, body FROM server_events
                 WHERE ?1 IS NULL OR host = ?1 ORDER BY host, id",
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
                })
            })?;
            rows.collect()
        })
    }
}
