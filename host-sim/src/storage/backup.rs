//! Backup and restore of a host database, while its server runs. A backup is always one
//! SQLite file of this build's schema: of an SQLite database, SQLite's online backup (pages
//! copied while writers go on, a consistent whole at the end); of a PostgreSQL schema, its
//! tables read in one repeatable-read transaction (one moment of the database) and written
//! to a new file. A restore copies a backup into a database that holds no server (or,
//! with `fresh`, whose servers it replaces): an SQLite file page by page, a PostgreSQL
//! schema row by row in one transaction.

use std::path::Path;

use postgres::{types::ToSql, Client, Config, NoTls};
use rusqlite::{types::Value, Connection};

use super::{is_postgres, redacted, sqlite, SCHEMA_VERSION};

/// A column's type, as both engines store it.
#[derive(Clone, Copy)]
enum Column {
    Text,
    Int,
    Blob,
    Bool,
}

use Column::{Blob, Bool, Int, Text};

/// Every table of the schema, with its columns, in the order a restore writes them.
const TABLES: [(&str, &[(&str, Column)]); 13] = [
    ("schema_version", &[("version", Int)]),
    ("dictionaries", &[("id", Int), ("bytes", Blob)]),
    (
        "servers",
        &[("host", Text), ("name", Text), ("created_ms", Int)],
    ),
    (
        "server_state",
        &[("host", Text), ("kind", Text), ("key", Int), ("body", Text)],
    ),
    (
        "records",
        &[
            ("host", Text),
            ("device", Int),
            ("key", Text),
            ("seq", Int),
            ("bytes", Blob),
            ("codec", Int),
        ],
    ),
    (
        "devices",
        &[
            ("host", Text),
            ("device", Int),
            ("private_ksn", Bool),
            ("license", Text),
        ],
    ),
    ("hosts", &[("host", Text), ("clock_ms", Int)]),
    (
        "held_events",
        &[("host", Text), ("device", Int), ("n", Int), ("event", Text)],
    ),
    ("policies", &[("host", Text), ("document", Text)]),
    (
        "server_events",
        &[
            ("host", Text),
            ("id", Int),
            ("time_ms", Int),
            ("device", Int),
            ("grp", Text),
            ("importance", Text),
            ("type", Text),
            ("body", Text),
            ("by_user", Text),
            ("wall_ms", Int),
        ],
    ),
    (
        "users",
        &[
            ("name", Text),
            ("role", Text),
            ("token_hash", Text),
            ("created_ms", Int),
        ],
    ),
    (
        "actions",
        &[
            ("host", Text),
            ("id", Int),
            ("wall_ms", Int),
            ("time_ms", Int),
            ("\"user\"", Text),
            ("what", Text),
            ("target", Text),
            ("outcome", Text),
        ],
    ),
    (
        "statuses",
        &[("host", Text), ("device", Int), ("status", Text)],
    ),
];

/// What a backup or a restore copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub servers: usize,
    pub rows: u64,
}

fn sqlite_failed(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// A new, empty backup file of this build's schema (refused if `file` exists).
fn new_file(file: &Path) -> Result<Connection, String> {
    if file.exists() {
        return Err(format!(
            "{}: exists; a backup is written to a new file",
            file.display()
        ));
    }
    sqlite::create_private(file)?;
    Connection::open(file).map_err(sqlite_failed(file))
}

fn pg_client(url: &str) -> Result<(Client, String), String> {
    let (url, schema) = super::postgres::split_schema(url)?;
    let config: Config = url
        .parse()
        .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", redacted(&url)))?;
    let client = config
        .connect(NoTls)
        .map_err(|e| format!("{}: could not connect: {e}", redacted(&url)))?;
    Ok((client, schema))
}

fn pg_failed(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

fn count_servers(c: &Connection, path: &Path) -> Result<usize, String> {
    c.query_row("SELECT COUNT(*) FROM servers", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
        .map_err(sqlite_failed(path))
}

/// Backs up the database at `source` (a file or a postgres:// URL) into the new SQLite file
/// `file`.
pub fn backup(source: &Path, file: &Path) -> Result<Copied, String> {
    let text = source.to_string_lossy();
    if is_postgres(&text) {
        return backup_postgres(&text, file);
    }
    if !source.exists() {
        return Err(format!("{}: no such file", source.display()));
    }
    // Opened as a host database first: an older schema is migrated, a newer one refused.
    drop(super::HostStore::open(source)?);
    let from = Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_failed(source))?;
    let mut to = new_file(file)?;
    copy_sqlite(&from, &mut to, file)
}

fn backup_postgres(url: &str, file: &Path) -> Result<Copied, String> {
    // Opened as a host database first: an older schema is migrated, a newer one refused.
    drop(super::HostStore::open(Path::new(url))?);
    let (mut client, schema) = pg_client(url)?;
    let mut to = new_file(file)?;
    to.execute_batch(sqlite::SCHEMA)
        .map_err(sqlite_failed(file))?;
    sqlite::migrate(&mut to, file)?;
    let tx = to.transaction().map_err(sqlite_failed(file))?;
    let mut from = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_failed)?;
    from.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .map_err(pg_failed)?;
    let mut rows = 0;
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            (1..=names.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // (The new file's own version row gives way to the database's.)
        tx.execute(&format!("DELETE FROM {table}"), [])
            .map_err(sqlite_failed(file))?;
        let mut statement = tx.prepare(&insert).map_err(sqlite_failed(file))?;
        for row in from.query(&select, &[]).map_err(pg_failed)? {
            let values: Vec<Value> = columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| match kind {
                    Text => row
                        .get::<_, Option<String>>(i)
                        .map_or(Value::Null, Value::Text),
                    Int => row
                        .get::<_, Option<i64>>(i)
                        .map_or(Value::Null, Value::Integer),
                    Blob => row
                        .get::<_, Option<Vec<u8>>>(i)
                        .map_or(Value::Null, Value::Blob),
                    Bool => row
                        .get::<_, Option<bool>>(i)
                        .map_or(Value::Null, |b| Value::Integer(i64::from(b))),
                })
                .collect();
            statement
                .execute(rusqlite::params_from_iter(values))
                .map_err(sqlite_failed(file))?;
            rows += 1;
        }
    }
    from.commit().map_err(pg_failed)?;
    tx.commit().map_err(sqlite_failed(file))?;
    Ok(Copied {
        servers: count_servers(&to, file)?,
        rows,
    })
}

/// Restores the backup `file` into the database at `dest` (a file or a postgres:// URL);
/// a database that holds a server is refused unless `fresh`, whose servers are replaced.
pub fn restore(file: &Path, dest: &Path, fresh: bool) -> Result<Copied, String> {
    if !file.exists() {
        return Err(format!("{}: no such file", file.display()));
    }
    // The backup read as a host database: a backup of an older schema is migrated first
    // (in the backup file), one of a newer schema refused.
    drop(super::HostStore::open(file)?);
    let from = Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_failed(file))?;
    let version: i64 = from
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(sqlite_failed(file))?;
    if version != SCHEMA_VERSION {
        return Err(format!(
            "{}: a backup of schema version {version}, and this host-sim restores version {SCHEMA_VERSION}",
            file.display()
        ));
    }
    let text = dest.to_string_lossy();
    // The destination holds no server, or gives its servers up.
    let held = super::HostStore::open(dest)?.servers()?;
    if !held.is_empty() && !fresh {
        return Err(format!(
            "{} holds {} server(s) ({}): a restore replaces them only with --fresh",
            redacted(&text),
            held.len(),
            held.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if is_postgres(&text) {
        return restore_postgres(&from, file, &text);
    }
    let mut to = Connection::open(dest).map_err(sqlite_failed(dest))?;
    copy_sqlite(&from, &mut to, dest)
}

/// Copies one SQLite database into another with SQLite's online backup, and counts what
/// arrived at `to` (named `place` in errors).
fn copy_sqlite(from: &Connection, to: &mut Connection, place: &Path) -> Result<Copied, String> {
    {
        let copy = rusqlite::backup::Backup::new(from, to).map_err(sqlite_failed(place))?;
        copy.run_to_completion(256, std::time::Duration::from_millis(5), None)
            .map_err(sqlite_failed(place))?;
    }
    let rows = TABLES
        .iter()
        .map(|(t, _)| {
            to.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        })
        .sum::<rusqlite::Result<u64>>()
        .map_err(sqlite_failed(place))?;
    Ok(Copied {
        servers: count_servers(to, place)?,
        rows,
    })
}

fn restore_postgres(from: &Connection, file: &Path, url: &str) -> Result<Copied, String> {
    let (mut client, schema) = pg_client(url)?;
    let mut tx = client.transaction().map_err(pg_failed)?;
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .map_err(pg_failed)?;
    let mut rows = 0;
    for (table, columns) in TABLES {
        tx.execute(&format!("DELETE FROM {table}"), &[])
            .map_err(pg_failed)?;
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            (1..=names.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let statement = tx.prepare(&insert).map_err(pg_failed)?;
        let mut select = from
            .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
            .map_err(sqlite_failed(file))?;
        let mut read = select.query([]).map_err(sqlite_failed(file))?;
        while let Some(row) = read.next().map_err(sqlite_failed(file))? {
            let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
            for (i, (_, kind)) in columns.iter().enumerate() {
                let read = |e| sqlite_failed(file)(e);
                values.push(match kind {
                    Text => Box::new(row.get::<_, Option<String>>(i).map_err(read)?),
                    Int => Box::new(row.get::<_, Option<i64>>(i).map_err(read)?),
                    Blob => Box::new(row.get::<_, Option<Vec<u8>>>(i).map_err(read)?),
                    Bool => Box::new(row.get::<_, Option<i64>>(i).map_err(read)?.map(|b| b != 0)),
                });
            }
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            tx.execute(&statement, &refs).map_err(pg_failed)?;
            rows += 1;
        }
    }
    let servers: i64 = tx
        .query_one("SELECT COUNT(*) FROM servers", &[])
        .map_err(pg_failed)?
        .get(0);
    tx.commit().map_err(pg_failed)?;
    Ok(Copied {
        servers: servers as usize,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_backup_file_has_this_version_s_tables() {
        let file = std::env::temp_dir().join(format!("ksn-backup-new-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let mut to = new_file(&file).unwrap();
        to.execute_batch(sqlite::SCHEMA).unwrap();
        sqlite::migrate(&mut to, &file).unwrap();
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
            to.prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
                .unwrap_or_else(|e| panic!("{table}: {e}"));
        }
        drop(to);
        let _ = std::fs::remove_file(&file);
    }
}
