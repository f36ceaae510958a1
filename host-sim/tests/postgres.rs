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
    // A bad schema name is refused before anything is written.
    let bad = HostStore::open(Path::new(&cluster.url("x;drop")))
        .err()
        .unwrap();
    assert!(bad.contains("schema=x;drop"), "{bad}");
}
