//! The host store in PostgreSQL (the `postgres` client): the same tables as the SQLite
//! file, in a schema of their own (`schema=NAME` in the URL, `public` by default), so that
//! one database can hold several servers. The writer commits each batch as one transaction
//! at PostgreSQL's default durability (`synchronous_commit = on`: the commit is on disk
//! before it returns); a run of appends, or of environment saves, is one statement over
//! arrays (`unnest`), so a batch costs a few round trips, not one per write. Reads use a
//! small pool of connections, each with its statements prepared once.

use std::collections::{HashMap, HashSet};

use plugin_api::{documents::Importance, LicenseState};
use postgres::{types::ToSql, Client, Config, NoTls, Statement};

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
        device BIGINT NOT NULL,
        key TEXT NOT NULL,
        seq BIGINT NOT NULL,
        bytes BYTEA NOT NULL,
        codec BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (host, device, key, seq)
    );
    CREATE TABLE IF NOT EXISTS devices (
        host TEXT NOT NULL,
        device BIGINT NOT NULL,
        private_ksn BOOLEAN NOT NULL,
        license TEXT NOT NULL,
        PRIMARY KEY (host, device)
    );
    CREATE TABLE IF NOT EXISTS hosts (
        host TEXT PRIMARY KEY,
        clock_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS held_events (
        host TEXT NOT NULL,
        device BIGINT NOT NULL,
        n BIGINT NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (host, device, n)
    );
    CREATE TABLE IF NOT EXISTS policies (
        host TEXT PRIMARY KEY,
        document TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS server_events (
        host TEXT NOT NULL,
        id BIGINT NOT NULL,
        time_ms BIGINT NOT NULL,
        device BIGINT NOT NULL,
        grp TEXT NOT NULL,
        importance TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT,
        PRIMARY KEY (host, id)
    );
    CREATE TABLE IF NOT EXISTS statuses (
        host TEXT NOT NULL,
        device BIGINT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (host, device)
    );
    CREATE TABLE IF NOT EXISTS dictionaries (
        id BIGINT PRIMARY KEY,
        bytes BYTEA NOT NULL
    );
    CREATE TABLE IF NOT EXISTS schema_version (
        version BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS servers (
        host TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS server_state (
        host TEXT NOT NULL,
        kind TEXT NOT NULL,
        key BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (host, kind, key)
    );
    CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS actions (
        host TEXT NOT NULL,
        id BIGINT NOT NULL,
        wall_ms BIGINT NOT NULL,
        time_ms BIGINT NOT NULL,
        \"user\" TEXT NOT NULL,
        what TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (host, id)
    );
    ALTER TABLE server_events ADD COLUMN IF NOT EXISTS by_user TEXT;
    ALTER TABLE server_events ADD COLUMN IF NOT EXISTS wall_ms BIGINT NOT NULL DEFAULT 0;
";

/// Brings the schema's tables to this build's version, in one transaction (as the SQLite
/// file's `migrate`): hosts of the first schema gain a server identity; a newer schema is
/// refused.
pub(super) fn migrate(client: &mut Client, label: &str) -> Result<(), String> {
    let failed = failed(label);
    let mut tx = client.transaction().map_err(&failed)?;
    // One migration at a time, whoever else opens the schema now.
    tx.batch_execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")
        .map_err(&failed)?;
    let version: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .map_err(&failed)?
        .get(0);
    match version {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(format!(
                "{label}: the host database's schema is version {v}, and this host-sim reads versions up to {SCHEMA_VERSION}: open it with the newer host-sim that wrote it"
            ))
        }
        Some(SCHEMA_VERSION) => return Ok(()),
        // 2 → 3 → 4: the new tables and columns are made with the others.
        Some(2 | 3) => {
            tx.execute("DELETE FROM schema_version", &[]).map_err(&failed)?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&SCHEMA_VERSION])
                .map_err(&failed)?;
            return tx.commit().map_err(&failed);
        }
        _ => {}
    }
    let union = LEGACY_TABLES
        .iter()
        .map(|t| format!("SELECT host FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let hosts: Vec<String> = tx
        .query(
            &format!("SELECT DISTINCT host FROM ({union}) AS h ORDER BY host"),
            &[],
        )
        .map_err(&failed)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let now = super::wall_clock_ms() as i64;
    for host in hosts {
        let id = super::new_server_id()?;
        tx.execute(
            "INSERT INTO servers (host, name, created_ms) VALUES ($1, $2, $3)",
            &[&id, &host, &now],
        )
        .map_err(&failed)?;
        for table in LEGACY_TABLES {
            tx.execute(
                &format!("UPDATE {table} SET host = $1 WHERE host = $2"),
                &[&id, &host],
            )
            .map_err(&failed)?;
        }
    }
    tx.execute("DELETE FROM schema_version", &[])
        .map_err(&failed)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .map_err(&failed)?;
    tx.commit().map_err(&failed)
}

const READERS: usize = 8;

/// A connection with its statements prepared once.
struct Connection {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

impl Connection {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

pub struct PostgresBackend {
    config: Config,
    schema: String,
    label: String,
    readers: Pool<Connection>,
}

/// Splits `schema=NAME` off a URL's parameters (the client does not know it).
pub(super) fn split_schema(url: &str) -> Result<(String, String), String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut schema = "public".to_string();
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("schema=") {
            Some(name) => {
                schema = name.to_string();
                false
            }
            None => true,
        })
        .collect();
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "schema={schema}: a schema name is lower-case letters, digits and _, not starting with a digit"
        ));
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

fn connect(config: &Config, schema: &str, label: &str) -> Result<Connection, String> {
    let mut client = config.connect(NoTls).map_err(|e| {
        format!("{label}: could not connect: {e} (is the server running, and the URL's host and port right?)")
    })?;
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .map_err(|e| format!("{label}: {e}"))?;
    Ok(Connection {
        client,
        prepared: HashMap::new(),
    })
}

fn failed(label: &str) -> impl Fn(postgres::Error) -> String + '_ {
    move |e| match e.as_db_error() {
        Some(db) => format!("{label}: {}", db.message()),
        None => format!("{label}: {e}"),
    }
}

impl PostgresBackend {
    pub fn connect(url: &str) -> Result<Self, String> {
        let (url, schema) = split_schema(url)?;
        let config: Config = url
            .parse()
            .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", super::redacted(&url)))?;
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let label = format!(
            "PostgreSQL database {} on {host}, schema {schema}",
            config.get_dbname().unwrap_or("(default)")
        );
        let mut first = connect(&config, "public", &label)?;
        first
            .client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}; {SCHEMA}"
            ))
            .map_err(failed(&label))?;
        migrate(&mut first.client, &label)?;
        let (c, s, l) = (config.clone(), schema.clone(), label.clone());
        Ok(Self {
            config,
            schema,
            label,
            readers: Pool::new(READERS, move || connect(&c, &s, &l)),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        self.readers.with(|c| f(c).map_err(failed(&self.label)))
    }
}

struct PostgresCommitter {
    connection: Connection,
    label: String,
}

/// A record's number is given (-1: not known, after the highest stored; COALESCE reads
/// no further than the first value that is not null).
const APPEND: &str = "INSERT INTO records (host, device, key, seq, codec, bytes)
    SELECT u.h, u.d, u.k,
        COALESCE(NULLIF(u.s, -1),
            (SELECT MAX(r.seq) + 1 FROM records r
             WHERE r.host = u.h AND r.device = u.d AND r.key = u.k), 0),
        u.c, u.b
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[], $6::bigint[])
        AS u(h, d, k, c, b, s)";

const ENVIRONMENTS: &str = "INSERT INTO devices (host, device, private_ksn, license)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::text[])
    ON CONFLICT (host, device) DO UPDATE
    SET private_ksn = excluded.private_ksn, license = excluded.license";

/// The row an append or environment save writes (one statement cannot write one row
/// twice).
fn row_of(op: &Op) -> (&Owner, &str) {
    match op {
        Op::Append { owner, key, .. } => (owner, key),
        Op::Environment { owner, .. } => (owner, ""),
        _ => unreachable!("only appends and environment saves are grouped"),
    }
}

fn groupable(op: &Op) -> bool {
    matches!(op, Op::Append { .. } | Op::Environment { .. })
}

fn apply_appends(tx: &mut postgres::Transaction<'_>, ops: &[&Op]) -> Result<(), postgres::Error> {
    let (mut hosts, mut devices, mut keys, mut codecs, mut bytes, mut seqs) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for op in ops {
        if let Op::Append {
            owner,
            key,
            record,
            seq,
        } = op
        {
            hosts.push(&*owner.host);
            devices.push(owner.device);
            keys.push(&**key);
            codecs.push(i64::from(record.codec));
            bytes.push(record.bytes.as_slice());
            seqs.push(seq.unwrap_or(-1));
        }
    }
    tx.execute(APPEND, &[&hosts, &devices, &keys, &codecs, &bytes, &seqs])?;
    Ok(())
}

fn apply_environments(
    tx: &mut postgres::Transaction<'_>,
    ops: &[&Op],
) -> Result<(), postgres::Error> {
    let (mut hosts, mut devices, mut private, mut licenses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for op in ops {
        if let Op::Environment { owner, environment } = op {
            hosts.push(&*owner.host);
            devices.push(owner.device);
            private.push(environment.private_ksn);
            licenses.push(environment.license.as_str());
        }
    }
    tx.execute(ENVIRONMENTS, &[&hosts, &devices, &private, &licenses])?;
    Ok(())
}

fn apply(tx: &mut postgres::Transaction<'_>, op: &Op) -> Result<(), postgres::Error> {
    match op {
        Op::Append { .. } => apply_appends(tx, &[op])?,
        Op::Environment { .. } => apply_environments(tx, &[op])?,
        Op::Replace {
            owner,
            key,
            records,
        } => {
            tx.execute(
                "DELETE FROM records WHERE host = $1 AND device = $2 AND key = $3",
                &[&&*owner.host, &owner.device, &&**key],
            )?;
            let seqs: Vec<i64> = (0..records.len() as i64).collect();
            let codecs: Vec<i64> = records.iter().map(|r| i64::from(r.codec)).collect();
            let bytes: Vec<&[u8]> = records.iter().map(|r| r.bytes.as_slice()).collect();
            tx.execute(
                "INSERT INTO records (host, device, key, seq, codec, bytes)
                 SELECT $1::text, $2::bigint, $3::text, u.s, u.c, u.b
                 FROM unnest($4::bigint[], $5::bigint[], $6::bytea[]) AS u(s, c, b)",
                &[
                    &&*owner.host,
                    &owner.device,
                    &&**key,
                    &seqs,
                    &codecs,
                    &bytes,
                ],
            )?;
        }
        Op::HoldEvent { owner, event, keep } => {
            tx.execute(
                "INSERT INTO held_events (host, device, n, event)
                 SELECT $1::text, $2::bigint, COALESCE(MAX(n) + 1, 0), $3::text FROM held_events
                 WHERE host = $1 AND device = $2",
                &[&&*owner.host, &owner.device, event],
            )?;
            tx.execute(
                "DELETE FROM held_events WHERE host = $1 AND device = $2 AND n <=
                 (SELECT MAX(n) FROM held_events WHERE host = $1 AND device = $2) - $3",
                &[&&*owner.host, &owner.device, &(*keep as i64)],
            )?;
        }
        Op::ReleaseHeldEvents { owner } => {
            tx.execute(
                "DELETE FROM held_events WHERE host = $1 AND device = $2",
                &[&&*owner.host, &owner.device],
            )?;
        }
        Op::Dictionary { id, bytes } => {
            tx.execute(
                "INSERT INTO dictionaries (id, bytes) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&i64::from(*id), bytes],
            )?;
        }
        Op::Events {
            host,
            rows,
            oldest_kept,
        } => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id as i64).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.time_ms as i64).collect();
            let devices: Vec<i64> = rows.iter().map(|r| r.device as i64).collect();
            let groups: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
            let importance: Vec<&str> = rows.iter().map(|r| r.importance.as_str()).collect();
            let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
            let bodies: Vec<Option<&str>> = rows.iter().map(|r| r.body.as_deref()).collect();
            let by: Vec<Option<&str>> = rows.iter().map(|r| r.by.as_deref()).collect();
            let walls: Vec<i64> = rows.iter().map(|r| r.wall_ms as i64).collect();
            let params: [&(dyn ToSql + Sync); 10] = [
                host,
                &ids,
                &times,
                &devices,
                &groups,
                &importance,
                &kinds,
                &bodies,
                &by,
                &walls,
            ];
            tx.execute(
                "INSERT INTO server_events (host, id, time_ms, device, grp, importance, type, body, by_user, wall_ms)
                 SELECT $1::text, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
                 ON CONFLICT (host, id) DO UPDATE SET time_ms = excluded.time_ms,
                     device = excluded.device, grp = excluded.grp,
                     importance = excluded.importance, type = excluded.type, body = excluded.body,
                     by_user = excluded.by_user, wall_ms = excluded.wall_ms",
                &params,
            )?;
            tx.execute(
                "DELETE FROM server_events WHERE host = $1 AND id < $2",
                &[host, &(*oldest_kept as i64)],
            )?;
        }
        Op::ExpireEvents {
            host,
            kind,
            before_ms,
        } => {
            tx.execute(
                "DELETE FROM server_events WHERE host = $1 AND type = $2 AND time_ms < $3",
                &[host, kind, &(*before_ms as i64)],
            )?;
        }
        Op::Policy { host, document } => {
            tx.execute(
                "INSERT INTO policies (host, document) VALUES ($1, $2)
                 ON CONFLICT (host) DO UPDATE SET document = excluded.document",
                &[host, document],
            )?;
        }
        Op::Clock { host, ms } => {
            tx.execute(
                "INSERT INTO hosts (host, clock_ms) VALUES ($1, $2)
                 ON CONFLICT (host) DO UPDATE SET clock_ms = excluded.clock_ms",
                &[host, &(*ms as i64)],
            )?;
        }
        Op::Statuses { host, rows } => {
            tx.execute("DELETE FROM statuses WHERE host = $1", &[host])?;
            let devices: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let statuses: Vec<&str> = rows.iter().map(|r| r.1).collect();
            tx.execute(
                "INSERT INTO statuses (host, device, status)
                 SELECT $1::text, * FROM unnest($2::bigint[], $3::text[])",
                &[host, &devices, &statuses],
            )?;
        }
        Op::ClearHost { host } => {
            for table in TABLES {
                tx.execute(&format!("DELETE FROM {table} WHERE host = $1"), &[host])?;
            }
        }
        Op::NewServer {
            host,
            name,
            created_ms,
        } => {
            tx.execute(
                "INSERT INTO servers (host, name, created_ms) VALUES ($1, $2, $3)",
                &[host, name, &(*created_ms as i64)],
            )?;
        }
        Op::User(u) => {
            tx.execute(
                "INSERT INTO users (name, role, token_hash, created_ms) VALUES ($1, $2, $3, $4)",
                &[&u.name, &u.role, &u.token_hash, &(u.created_ms as i64)],
            )?;
        }
        Op::RemoveUser { name } => {
            tx.execute("DELETE FROM users WHERE name = $1", &[name])?;
        }
        Op::Action { host, row } => {
            tx.execute(
                "INSERT INTO actions (host, id, wall_ms, time_ms, \"user\", what, target, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    host,
                    &(row.id as i64),
                    &(row.wall_ms as i64),
                    &(row.time_ms as i64),
                    &row.user,
                    &row.what,
                    &row.target,
                    &row.outcome,
                ],
            )?;
        }
        Op::ServerRows { host, records } => {
            let (mut kinds, mut keys, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
            for record in records {
                match record {
                    Record::Put { kind, key, body } => {
                        kinds.push(kind.as_str());
                        keys.push(*key);
                        bodies.push(body.as_str());
                    }
                    Record::DeletePolicy { policy } => {
                        let (from, to) = revision_keys(*policy);
                        tx.execute(
                            "DELETE FROM server_state WHERE host = $1 AND
                             ((kind = 'policy' AND key = $2) OR (kind = 'revision' AND key >= $3 AND key < $4))",
                            &[host, &(*policy as i64), &from, &to],
                        )?;
                    }
                }
            }
            // A row written twice in one change: the last one.
            let mut last = HashMap::new();
            for (i, (k, key)) in kinds.iter().zip(&keys).enumerate() {
                last.insert((*k, *key), i);
            }
            let mut keep: Vec<usize> = last.into_values().collect();
            keep.sort_unstable();
            let kinds: Vec<&str> = keep.iter().map(|&i| kinds[i]).collect();
            let keys: Vec<i64> = keep.iter().map(|&i| keys[i]).collect();
            let bodies: Vec<&str> = keep.iter().map(|&i| bodies[i]).collect();
            tx.execute(
                "INSERT INTO server_state (host, kind, key, body)
                 SELECT $1::text, * FROM unnest($2::text[], $3::bigint[], $4::text[])
                 ON CONFLICT (host, kind, key) DO UPDATE SET body = excluded.body",
                &[host, &kinds, &keys, &bodies],
            )?;
        }
    }
    Ok(())
}

impl Committer for PostgresCommitter {
    fn commit(&mut self, ops: &[Op]) -> Result<(), String> {
        let label = &self.label;
        let mut tx = self
            .connection
            .client
            .transaction()
            .map_err(failed(label))?;
        let mut at = 0;
        while at < ops.len() {
            // A segment: the appends and environment saves up to the next other write.
            // They write two tables, each row of its own device: one statement a table,
            // and a device's second write to a row in a later one, in order.
            let end = ops[at..]
                .iter()
                .position(|op| !groupable(op))
                .map_or(ops.len(), |n| at + n);
            if end == at {
                apply(&mut tx, &ops[at]).map_err(failed(label))?;
                at += 1;
                continue;
            }
            for appends in [true, false] {
                let mut pending: Vec<&Op> = ops[at..end]
                    .iter()
                    .filter(|op| matches!(op, Op::Append { .. }) == appends)
                    .collect();
                while !pending.is_empty() {
                    let mut seen = HashSet::new();
                    let (now, later): (Vec<&Op>, Vec<&Op>) =
                        pending.into_iter().partition(|op| seen.insert(row_of(op)));
                    if appends {
                        apply_appends(&mut tx, &now).map_err(failed(label))?;
                    } else {
                        apply_environments(&mut tx, &now).map_err(failed(label))?;
                    }
                    pending = later;
                }
            }
            at = end;
        }
        tx.commit().map_err(failed(label))
    }
}

fn environment_of(private_ksn: bool, license: &str) -> Environment {
    Environment {
        private_ksn,
        license: LicenseState::from_name(license).unwrap_or(LicenseState::UNKNOWN),
    }
}

impl Backend for PostgresBackend {
    fn committer(&self) -> Result<Box<dyn Committer>, String> {
        Ok(Box::new(PostgresCommitter {
            connection: connect(&self.config, &self.schema, &self.label)?,
            label: self.label.clone(),
        }))
    }

    fn records(&self, owner: &Owner, key: &str) -> Result<Vec<Encoded>, String> {
        self.read(|c| {
            let s = c.statement(
                "SELECT codec, bytes FROM records WHERE host = $1 AND device = $2 AND key = $3
                 ORDER BY seq",
            )?;
            let rows = c.client.query(&s, &[&&*owner.host, &owner.device, &key])?;
            Ok(rows
                .iter()
                .map(|row| Encoded {
                    codec: row.get::<_, i64>(0) as u32,
                    bytes: row.get(1),
                })
                .collect())
        })
    }

    fn records_of(&self, host: &str, from: i64, to: i64) -> Result<Vec<DeviceRecord>, String> {
        self.read(|c| {
            let s = c.statement(
                "SELECT device, key, codec, bytes FROM records
                 WHERE host = $1 AND device >= $2 AND device < $3 ORDER BY device, key, seq",
            )?;
            let rows = c.client.query(&s, &[&host, &from, &to])?;
            Ok(rows
                .iter()
                .map(|row| {
                    (
                        row.get(0),
                        row.get(1),
                        Encoded {
                            codec: row.get::<_, i64>(2) as u32,
                            bytes: row.get(3),
                        },
                    )
                })
                .collect())
        })
    }

    fn environments_of(
        &self,
        host: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Environment)>, String> {
        self.read(|c| {
            let s = c.statement(
                "SELECT device, private_ksn, license FROM devices
                 WHERE host = $1 AND device >= $2 AND device < $3",
            )?;
            let rows = c.client.query(&s, &[&host, &from, &to])?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), environment_of(row.get(1), row.get(2))))
                .collect())
        })
    }

    fn environment(&self, owner: &Owner) -> Result<Option<Environment>, String> {
        self.read(|c| {
            let s = c.statement(
                "SELECT private_ksn, license FROM devices WHERE host = $1 AND device = $2",
            )?;
            let row = c.client.query_opt(&s, &[&&*owner.host, &owner.device])?;
            Ok(row.map(|row| environment_of(row.get(0), row.get(1))))
        })
    }

    fn held_events(&self, owner: &Owner) -> Result<Vec<String>, String> {
        self.read(|c| {
            let s = c.statement(
                "SELECT event FROM held_events WHERE host = $1 AND device = $2 ORDER BY n",
            )?;
            let rows = c.client.query(&s, &[&&*owner.host, &owner.device])?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn devices(&self) -> Result<Vec<(String, usize)>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT DISTINCT host, device FROM records ORDER BY host, device",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get::<_, i64>(1) as usize))
                .collect())
        })
    }

    fn clock(&self, host: &str) -> Result<Option<u64>, String> {
        self.read(|c| {
            let row = c
                .client
                .query_opt("SELECT clock_ms FROM hosts WHERE host = $1", &[&host])?;
            Ok(row.map(|row| row.get::<_, i64>(0) as u64))
        })
    }

    fn devices_holding_events(&self, host: &str) -> Result<Vec<usize>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT DISTINCT device FROM held_events WHERE host = $1",
                &[&host],
            )?;
            Ok(rows
                .iter()
                .map(|row| row.get::<_, i64>(0) as usize)
                .collect())
        })
    }

    fn policy(&self, host: &str) -> Result<Option<String>, String> {
        self.read(|c| {
            let row = c
                .client
                .query_opt("SELECT document FROM policies WHERE host = $1", &[&host])?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn events(&self, host: Option<&str>) -> Result<Vec<EventRow>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT host, id, time_ms, device, grp, importance, type, body, by_user, wall_ms
                 FROM server_events WHERE $1::text IS NULL OR host = $1 ORDER BY host, id",
                &[&host],
            )?;
            Ok(rows
                .iter()
                .map(|row| EventRow {
                    host: row.get(0),
                    id: row.get::<_, i64>(1) as u64,
                    time_ms: row.get::<_, i64>(2) as u64,
                    device: row.get::<_, i64>(3) as usize,
                    group: row.get(4),
                    importance: Importance::from_name(row.get(5)).unwrap_or(Importance::Info),
                    kind: row.get(6),
                    body: row.get(7),
                    by: row.get(8),
                    wall_ms: row.get::<_, i64>(9) as u64,
                })
                .collect())
        })
    }

    fn dictionaries(&self) -> Result<Vec<(u32, Vec<u8>)>, String> {
        self.read(|c| {
            let rows = c.client.query("SELECT id, bytes FROM dictionaries", &[])?;
            Ok(rows
                .iter()
                .map(|row| (row.get::<_, i64>(0) as u32, row.get(1)))
                .collect())
        })
    }

    fn status_counts(&self, host: &str) -> Result<Vec<(String, u64)>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT status, COUNT(*) FROM statuses WHERE host = $1 GROUP BY status",
                &[&host],
            )?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
                .collect())
        })
    }

    fn event_counts(&self, host: &str) -> Result<Vec<(String, String, u64)>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT importance, type, COUNT(*) FROM server_events WHERE host = $1
                 GROUP BY importance, type ORDER BY importance, type",
                &[&host],
            )?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get::<_, i64>(2) as u64))
                .collect())
        })
    }

    fn size_bytes(&self) -> Result<u64, String> {
        self.read(|c| {
            let row = c.client.query_one(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
                &[&self.schema],
            )?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn location(&self) -> String {
        self.label.clone()
    }

    fn servers(&self) -> Result<Vec<ServerInfo>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT s.host, s.name, s.created_ms,
                    (SELECT COUNT(*) FROM server_state d WHERE d.host = s.host AND d.kind = 'device')
                 FROM servers s ORDER BY s.created_ms, s.name",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|row| ServerInfo {
                    id: row.get(0),
                    name: row.get(1),
                    created_ms: row.get::<_, i64>(2) as u64,
                    devices: row.get::<_, i64>(3) as usize,
                })
                .collect())
        })
    }

    fn users(&self) -> Result<Vec<UserRow>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT name, role, token_hash, created_ms FROM users ORDER BY name",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|row| UserRow {
                    name: row.get(0),
                    role: row.get(1),
                    token_hash: row.get(2),
                    created_ms: row.get::<_, i64>(3) as u64,
                })
                .collect())
        })
    }

    fn actions(&self, host: &str, limit: usize) -> Result<Vec<ActionRow>, String> {
        self.read(|c| {
            let rows = c.client.query(
                "SELECT id, wall_ms, time_ms, \"user\", what, target, outcome FROM actions
                 WHERE host = $1 ORDER BY id DESC LIMIT $2",
                &[&host, &(limit as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|row| ActionRow {
                    id: row.get::<_, i64>(0) as u64,
                    wall_ms: row.get::<_, i64>(1) as u64,
                    time_ms: row.get::<_, i64>(2) as u64,
                    user: row.get(3),
                    what: row.get(4),
                    target: row.get(5),
                    outcome: row.get(6),
                })
                .collect())
        })
    }

    fn server_rows(&self, host: &str) -> Result<Vec<StateRow>, String> {
        let rows: Vec<(String, i64, String)> = self.read(|c| {
            let s = c.statement(
                "SELECT kind, key, body FROM server_state WHERE host = $1 ORDER BY kind, key",
            )?;
            Ok(c.client
                .query(&s, &[&host])?
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect())
        })?;
        rows.into_iter()
            .map(|(kind, key, body)| {
                Kind::parse(&kind)
                    .map(|k| (k, key, body))
                    .ok_or_else(|| format!("{}: a server row of unknown kind {kind:?}", self.label))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn the_schema_parameter_is_taken_off_the_url_and_checked() {
        assert_eq!(
            split_schema("postgres://u@localhost/db?schema=server_01&port=5432").unwrap(),
            (
                "postgres://u@localhost/db?port=5432".into(),
                "server_01".into()
            )
        );
        assert_eq!(
            split_schema("postgres://u@localhost/db").unwrap().1,
            "public"
        );
        let bad = split_schema("postgres://u@h/db?schema=x;drop").unwrap_err();
        assert!(bad.starts_with("schema=x;drop: "), "{bad}");
    }
}
