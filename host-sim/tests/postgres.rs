//! The host database in PostgreSQL, against a real server: a throwaway cluster started from
//! PostgreSQL's binaries (initdb, pg_ctl) in a temporary folder, on a Unix socket only, and
//! removed after. Without the binaries the test fails, naming the Debian package.
//!
//! One test, so one cluster: its checks run one after the other.

mod common;

use std::path::Path;

use host_sim::{
    pg_cluster::{TempCluster, DEBIAN_PACKAGE},
    storage::{Environment, HostStore, Storage},
};
use plugin_api::LicenseState;

fn host_sim(args: &[&str], input: &str) -> (i32, String, String) {
    common::host_sim_with_input(args, input)
}

fn the_store_keeps_records_environments_and_order(url: &str) {
    {
        let store = HostStore::open(Path::new(url)).unwrap();
        let a = store.device("shell", 0);
        a.append("journal", b"one").unwrap();
        a.append("journal", b"two").unwrap();
        store
            .device("shell", 1)
            .append("journal", b"other")
            .unwrap();
        a.save_environment(Environment {
            private_ksn: true,
            license: LicenseState::EXPIRED,
        });
        store.save_clock("shell", 60_000).unwrap();
        // Many devices at once: each write committed, in its device's order, through
        // enough records for the dictionaries to be made and used.
        std::thread::scope(|s| {
            for device in 10..42 {
                let store = store.clone();
                s.spawn(move || {
                    let storage = store.device("fleet", device);
                    for i in 0..100 {
                        let record = format!("{{\"device\":{device},\"change\":{i}}}");
                        storage.append("journal", record.as_bytes()).unwrap();
                    }
                    let records = storage.records("journal").unwrap();
                    assert_eq!(records.len(), 100);
                    assert_eq!(
                        records[99],
                        format!("{{\"device\":{device},\"change\":99}}").as_bytes()
                    );
                });
            }
        });
    }
    let store = HostStore::open(Path::new(url)).unwrap();
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
    assert_eq!(store.devices().unwrap().len(), 2 + 32);
    assert!(store
        .device_read_only("shell", 0)
        .append("journal", b"x")
        .is_err());
    store.clear_host("shell").unwrap();
    assert!(a.records("journal").unwrap().is_empty());
    assert_eq!(
        store.device("fleet", 20).records("journal").unwrap().len(),
        100
    );
    assert!(store.size_bytes().unwrap() > 0);
}

fn a_second_session_finds_the_acceptance_and_audit_and_events_read_it(url: &str) {
    let (code, out, err) = host_sim(
        &["shell", "--db", url],
        "set_private_ksn on\nset_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\nstart\nset_license expired\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = host_sim(
        &["shell", "--db", url],
        "status\nexpect {\"state\": \"stopped\", \"settings\": {\"data_handling.ksn_statement_accepted\": true}}\n",
    );
    assert_eq!(code, 0, "the acceptance came back: {out}");
    let (code, audit, err) = host_sim(&["audit", "--json", "--db", url], "");
    assert_eq!(code, 0, "{err}");
    let histories: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(histories[0]["host"], "shell");
    assert_eq!(histories[0]["records"][0]["statement"], "private_ksn");
    let (code, events, err) = host_sim(
        &[
            "events",
            "--db",
            url,
            "--importance",
            "critical",
            "--type",
            "task_error",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(events.ends_with("1 events\n"), "{events}");
}

fn the_fleet_story_and_a_hierarchy_run_on_it(cluster: &TempCluster) {
    let url = cluster.url("fleet_test");
    let (code, out, err) = host_sim(&["fleet", "--devices", "400", "--json", "--db", &url], "");
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["passed"], true);
    let (code, out, err) = host_sim(
        &[
            "fleet",
            "--servers",
            "3",
            "--devices",
            "900",
            "--json",
            "--db",
            &cluster.url("x"),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["devices"], 900, "{report}");
    assert_eq!(report["passed"], true);
    // Every device ends Critical (the licence lapsed), as each server's database says.
    assert_eq!(report["statuses"][2], 900);
    let secondaries = report["secondaries"].as_array().unwrap();
    assert_eq!(secondaries.len(), 3);
    for s in secondaries {
        assert_eq!(s["devices"], 300);
        assert!(s["consent_changes"].as_u64().unwrap() >= 300, "{s}");
        assert!(s["events"][0].as_u64().unwrap() >= 300, "{s}");
    }
    // Each secondary in its own schema: the primary's reading of one is that one's.
    let store = HostStore::open(Path::new(&cluster.url("server_02"))).unwrap();
    let counts = store
        .status_counts(&store.server_id("server_02").unwrap())
        .unwrap();
    assert_eq!(counts, vec![("critical".to_string(), 300)]);
}

/// A server in a schema resumes in a later session, backs up while open into a file, and
/// restores into another schema that then shows the same.
fn a_server_resumes_backs_up_and_restores(cluster: &TempCluster) {
    let url = cluster.url("resume_src");
    let steps = "create_group Servers\n\
        {\"do\": \"create_policy\", \"name\": \"P\", \"group\": \"Servers\", \"policy\": {\"settings\": {\"task\": {\"checksum_limit_mb\": {\"value\": 8, \"locked\": true}}}}}\n\
        {\"do\": \"move_devices\", \"group\": \"Servers\", \"on\": {\"device\": 1}}\n\
        set_private_ksn on\n";
    let (code, out, err) = host_sim(&["shell", "--devices", "2", "--db", &url], steps);
    assert_eq!(code, 0, "{out}{err}");
    let look = "groups\npolicies\nstatus\nsettings\n";
    let (code, before, err) = host_sim(&["shell", "--db", &url], look);
    assert_eq!(code, 0, "{before}{err}");
    assert!(
        before.contains("Servers: 1 device") && before.contains("Private KSN on"),
        "{before}"
    );
    let dir = std::env::temp_dir().join(format!("ksn-pg-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("backup.db");
    let (code, out, err) = host_sim(&["backup", "--db", &url, file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}{err}");
    let dest = cluster.url("resume_dst");
    let (code, out, err) = host_sim(&["restore", "--db", &dest, file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, after, err) = host_sim(&["shell", "--db", &dest], look);
    assert_eq!(code, 0, "{after}{err}");
    assert_eq!(after, before);
    // The backup restores into an SQLite file just as well.
    let (code, out, err) = host_sim(
        &[
            "restore",
            "--db",
            dir.join("local.db").to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, local, _) = host_sim(
        &["shell", "--db", dir.join("local.db").to_str().unwrap()],
        look,
    );
    assert_eq!(local, before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A schema written by a newer build is refused, naming both versions; one of the first
/// schema (before servers had identities) is migrated.
fn a_newer_schema_is_refused_and_an_older_one_migrated(cluster: &TempCluster) {
    let newer = cluster.url("newer");
    drop(HostStore::open(Path::new(&newer)).unwrap());
    let mut client = postgres::Client::connect(
        &format!("host={} user=ksn dbname=postgres", cluster.dir().display()),
        postgres::NoTls,
    )
    .unwrap();
    client
        .batch_execute("UPDATE newer.schema_version SET version = 99")
        .unwrap();
    let refused = HostStore::open(Path::new(&newer)).err().unwrap();
    assert!(
        refused.contains("version 99") && refused.contains("up to 4"),
        "{refused}"
    );
    // Schema 3, before events kept their wall clock: the column is added, version 4.
    let third = cluster.url("third");
    drop(HostStore::open(Path::new(&third)).unwrap());
    client
        .batch_execute(
            "ALTER TABLE third.server_events DROP COLUMN wall_ms;
             UPDATE third.schema_version SET version = 3",
        )
        .unwrap();
    drop(HostStore::open(Path::new(&third)).unwrap());
    let version: i64 = client
        .query_one("SELECT version FROM third.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 4);
    let columns: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_schema = 'third' AND table_name = 'server_events' AND column_name = 'wall_ms'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(columns, 1);
    // The first schema: tables keyed by a command's name, no version.
    client
        .batch_execute(
            "CREATE SCHEMA first; CREATE TABLE first.records (host TEXT NOT NULL, device BIGINT NOT NULL,
             key TEXT NOT NULL, seq BIGINT NOT NULL, bytes BYTEA NOT NULL, codec BIGINT NOT NULL DEFAULT 0,
             PRIMARY KEY (host, device, key, seq));
             INSERT INTO first.records VALUES ('shell', 0, 'journal', 0, 'one', 0);",
        )
        .unwrap();
    let store = HostStore::open(Path::new(&cluster.url("first"))).unwrap();
    let id = store.server_id("shell").unwrap();
    assert_eq!(
        store.device(&id, 0).records("journal").unwrap(),
        vec![b"one".to_vec()]
    );
}

#[test]
fn the_host_database_in_postgresql() {
    // Without the binaries: one error, naming the package to install.
    std::env::set_var("KSN_PG_BIN", "/no/such/postgresql/bin");
    let missing = TempCluster::start("missing").err().unwrap();
    std::env::remove_var("KSN_PG_BIN");
    assert!(missing.contains(DEBIAN_PACKAGE), "{missing}");

    let cluster = TempCluster::start("test").unwrap_or_else(|e| panic!("{e}"));
    the_store_keeps_records_environments_and_order(&cluster.url("store_test"));
    a_second_session_finds_the_acceptance_and_audit_and_events_read_it(
        &cluster.url("session_test"),
    );
    the_fleet_story_and_a_hierarchy_run_on_it(&cluster);
    a_server_resumes_backs_up_and_restores(&cluster);
    a_newer_schema_is_refused_and_an_older_one_migrated(&cluster);
    // A bad schema name is refused before anything is written.
    let bad = HostStore::open(Path::new(&cluster.url("x;drop")))
        .err()
        .unwrap();
    assert!(bad.contains("schema=x;drop"), "{bad}");
}
