//! The host's durable state in an SQLite database: a second console session on the same
//! file finds what the first left, `audit` lists the consent history, and the bundled
//! suite passes with its devices' records there.

mod common;

use std::{io::Write, path::Path, process::Stdio};

fn shell(db: &Path, input: &str) -> (i32, String) {
    let args = [
        std::ffi::OsStr::new("shell"),
        "--db".as_ref(),
        db.as_os_str(),
    ];
    let (code, out, _) = common::host_sim_with_input(&args, input);
    (code, out)
}

fn temporary(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ksn-db-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_second_session_on_the_same_database_finds_the_acceptance_and_audit_lists_it() {
    let dir = temporary("session");
    let db = dir.join("host.db");
    let (code, out) = shell(
        &db,
        "set_private_ksn on\nset_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\nstart\nadvance_time 60000\n",
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = shell(
        &db,
        "status\nexpect {\"state\": \"stopped\", \"settings\": {\"data_handling.ksn_statement_accepted\": true}}\nstart\nexpect {\"network\": \"private\"}\n",
    );
    assert_eq!(code, 0, "the acceptance and the mode came back: {out}");
    assert!(out.contains("Private KSN on"), "{out}");

    let header = std::fs::read(&db).unwrap();
    assert!(
        header.starts_with(b"SQLite format 3\0"),
        "an SQLite database"
    );

    let audit = common::host_sim()
        .args(["audit", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(audit.status.success());
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(text.contains("shell, device 0"), "{text}");
    let accepted = text
        .lines()
        .find(|l| l.contains("private_ksn") && l.contains("accepted"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        accepted.contains("local") && accepted.contains(" 1 "),
        "{accepted}"
    );

    let json = common::host_sim()
        .args(["audit", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let histories: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(histories[0]["records"][0]["statement"], "private_ksn");
    assert_eq!(histories[0]["records"][0]["version"], 1);
    // Reading the history wrote nothing.
    let again = common::host_sim()
        .args(["audit", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(json.stdout, again.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_bundled_suite_passes_with_the_devices_records_in_a_database() {
    let dir = temporary("suite");
    let out = common::host_sim()
        .args(["run", "--db"])
        .arg(dir.join("host.db"))
        .arg(common::repo_root().join("tests/scenarios"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_of_a_missing_file_says_so() {
    let out = common::host_sim()
        .args(["audit", "--db", "/no/such/host.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn a_withdrawal_waiting_for_storage_survives_a_sigkill_of_the_host() {
    use std::io::{BufRead, BufReader};
    let dir = temporary("sigkill");
    let db = dir.join("host.db");
    let mut child = common::host_sim()
        .args(["shell", "--db"])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"set_local {\"data_handling\": {\"ksn_statement_accepted\": true}, \"task\": {\"schedule\": \"at_application_start\"}}\n\
              start\nadvance_time 7000\nset_storage full\n\
              set_local {\"data_handling\": {\"ksn_statement_accepted\": false}}\nstatus\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    // Wait until the withdrawal has been answered (the status after it), then kill the
    // host while its record waits for storage; stdin stays open, so the shell is alive.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("device 0:") {
            break;
        }
    }
    assert!(seen.contains("storage_error"), "{seen}");
    assert!(seen.contains("device 0: stopped"), "{seen}");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);

    // The next process: storage works; the withdrawal is reconciled from the server's
    // events, so the scheduled start is refused and the box reads false.
    let (code, out) = shell(
        &db,
        "status\nexpect {\"state\": \"stopped\", \"settings\": {\"data_handling.ksn_statement_accepted\": false}}\n\
         expect {\"log_include\": [{\"type\": \"consent_changed\", \"accepted\": false, \"source\": \"local\", \"time_ms\": 7000}]}\n",
    );
    assert_eq!(code, 0, "{out}");
    let audit = common::host_sim()
        .args(["audit", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let histories: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let records = histories[0]["records"].as_array().unwrap();
    let withdrawal = records
        .iter()
        .find(|r| r["accepted"] == false)
        .unwrap_or_else(|| panic!("{histories}"));
    assert_eq!(
        (&withdrawal["source"], &withdrawal["time_ms"]),
        (&"local".into(), &7000.into())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The server's event store is in the database: kept under its cap and terms, read back by
/// a later session on the same file, and listed with filters by `host-sim events`.
#[test]
fn the_server_s_events_are_kept_in_the_database_and_listed_with_filters() {
    let dir = temporary("server-events");
    let db = dir.join("host.db");
    let (code, out) = shell(
        &db,
        "set_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\nstart\nset_license expired\n",
    );
    assert_eq!(code, 0, "{out}");
    // A later session finds them in its store.
    let (code, out) = shell(&db, "events critical\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("critical: task_error"), "{out}");
    let list = |args: &[&str]| {
        let out = common::host_sim()
            .args(["events", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, all, _) = list(&[]);
    assert_eq!(code, Some(0));
    let (_, critical, _) = list(&["--importance", "critical", "--type", "task_error"]);
    assert!(critical.ends_with("1 events\n"), "{critical}");
    assert!(all.lines().count() > critical.lines().count(), "{all}");
    // Each keeps the wall clock of its arrival, which the console shows after a restart.
    let (_, json, _) = list(&["--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        let wall = row["wall_ms"].as_u64().unwrap_or(0);
        assert!(wall > 1_600_000_000_000, "{row}");
    }
    let (_, none, _) = list(&["--group", "Servers"]);
    assert!(none.ends_with("0 events\n"), "{none}");
    let (code, _, err) = list(&["--importance", "loud"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--importance: expected critical"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// An administrator's work survives a restart: groups, moves, tags, policies with their
/// revisions and profiles, and the server's settings come back in a second session on the
/// same database, which resumes the server without being told anything.
#[test]
fn a_second_session_resumes_the_server_as_the_first_left_it() {
    let dir = temporary("resume");
    let db = dir.join("host.db");
    let steps = [
        r#"{"do": "create_group", "group": "Servers"}"#,
        r#"{"do": "create_group", "group": "Servers/Web", "inherit": false}"#,
        r#"{"do": "move_devices", "group": "Servers", "on": {"devices": [1, 2]}}"#,
        r#"{"do": "move_devices", "group": "Servers/Web", "on": {"device": 2}}"#,
        r#"{"do": "set_device", "tags": ["laptop"], "out_of_office": true, "on": {"device": 1}}"#,
        r#"{"do": "create_policy", "name": "Servers policy", "group": "Servers", "force_inheritance": true, "by": "alice",
            "policy": {"settings": {"task": {"checksum_limit_mb": {"value": 8, "locked": true}}}},
            "profiles": [{"name": "Away", "when": {"out_of_office": true}, "settings": {"task": {"lookup_timeout_ms": {"value": 700, "locked": true}}}}]}"#,
        r#"{"do": "edit_policy", "name": "Servers policy", "by": "bob", "policy": {"settings": {"task": {"checksum_limit_mb": {"value": 16, "locked": true}}}}}"#,
        r#"{"do": "create_policy", "name": "Spare", "group": "Servers", "active": false}"#,
        r#"{"do": "set_private_ksn", "enabled": true}"#,
        r#"{"do": "advance_time", "ms": 60000}"#,
    ];
    let mut first = format!("{}\n", steps.map(|s| s.replace('\n', " ")).join("\n"));
    first.push_str("policies\n");
    let args = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = vec!["shell".into(), "--db".into(), db.clone().into()];
        a.extend(extra.iter().map(|s| s.into()));
        a
    };
    let (code, before, err) = common::host_sim_with_input(&args(&["--devices", "3"]), &first);
    assert_eq!(code, 0, "{before}{err}");

    let check = [
        r#"{"expect": {"on": {"device": 1}, "locked": ["task.checksum_limit_mb", "task.lookup_timeout_ms"], "settings": {"task.checksum_limit_mb": 16, "task.lookup_timeout_ms": 700}, "provenance": {"task.checksum_limit_mb": {"group": "Servers", "policy": "Servers policy", "revision": 2}, "task.lookup_timeout_ms": {"profile": "Away"}}}}"#,
        r#"{"expect": {"on": {"device": 2}, "provenance": {"task.checksum_limit_mb": {"group": "Servers", "revision": 2}}}}"#,
        r#"{"expect": {"on": {"device": 0}, "locked": [], "network": "none"}}"#,
        "status",
        "groups",
        "policies",
        "diff \"Servers policy\" 1 2",
    ];
    let (code, after, err) = common::host_sim_with_input(&args(&[]), &(check.join("\n") + "\n"));
    assert_eq!(code, 0, "{after}{err}");
    assert!(err.contains("resuming the server"), "{err}");
    assert!(after.contains("Private KSN on"), "{after}");
    for needle in [
        "Web: 1 device",
        "inherit cleared",
        "Servers policy",
        "Spare",
        "bob",
        "revision 1 → 2",
    ] {
        assert!(after.contains(needle), "{needle}: {after}");
    }
    // What `policies` showed before and after the restart is the same.
    let listing = |text: &str| {
        text.split("> policies")
            .nth(1)
            .map(|rest| rest.split("\n> ").next().unwrap_or("").trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(listing(&before), listing(&after));
    // The simulated time went on from where it was.
    let (_, later, _) = common::host_sim_with_input(
        &args(&[]),
        "expect {\"state\": \"stopped\"}\nadvance_time 1\n",
    );
    assert!(!later.contains("error"), "{later}");

    // A scenario over a database that holds a server is refused, saying how to go on.
    let scenario = common::repo_root().join("tests/scenarios/server_rollback.json");
    let out = common::host_sim()
        .args(["run", "--db"])
        .arg(&db)
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let refusal = String::from_utf8_lossy(&out.stderr);
    assert!(
        refusal.contains("already holds the server \"shell\"") && refusal.contains("--fresh"),
        "{refusal}"
    );
    let (code, _, err) = common::host_sim_with_input(&args(&["--devices", "2"]), "status\n");
    assert_eq!(code, 2, "--devices over a server resumed: {err}");
    let (code, out, err) =
        common::host_sim_with_input(&args(&["--fresh", "--devices", "2"]), "groups\n");
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Servers"), "a fresh server: {out}");

    // The file is its owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A backup taken while a session has the database open restores into a fresh database
/// that shows the same server; a restore over a database that holds one needs --fresh.
#[test]
fn a_backup_taken_while_the_server_runs_restores_what_it_shows() {
    use std::io::{BufRead, BufReader};
    let dir = temporary("backup");
    let db = dir.join("host.db");
    let mut child = common::host_sim()
        .args(["shell", "--devices", "2", "--db"])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"create_group Servers\n\
              {\"do\": \"create_policy\", \"name\": \"P\", \"group\": \"/\", \"policy\": {\"settings\": {\"task\": {\"checksum_limit_mb\": {\"value\": 8, \"locked\": true}}}}}\n\
              {\"do\": \"move_devices\", \"group\": \"Servers\", \"on\": {\"device\": 1}}\n\
              set_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\n\
              status\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("device 1:") {
            break;
        }
    }
    // The session is alive (its input open) while the backup reads the database.
    let backup = dir.join("backup.db");
    let out = common::host_sim()
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(stdin);
    child.wait().unwrap();

    let shows = |file: &Path| {
        let args = [
            std::ffi::OsStr::new("shell"),
            "--db".as_ref(),
            file.as_os_str(),
        ];
        let (code, out, err) =
            common::host_sim_with_input(&args, "groups\npolicies\nsettings\nlog 5\n");
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let restored = dir.join("restored.db");
    let out = common::host_sim()
        .args(["restore", "--db"])
        .arg(&restored)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(shows(&restored), shows(&db));
    // Over a database that holds a server: refused, unless --fresh.
    let again = common::host_sim()
        .args(["restore", "--db"])
        .arg(&restored)
        .arg(&backup)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--fresh"));
    let fresh = common::host_sim()
        .args(["restore", "--fresh", "--db"])
        .arg(&restored)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(fresh.status.success());
    // A backup never overwrites.
    let over = common::host_sim()
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!over.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database written by the build before servers had identities and their state was
/// stored (kept as a fixture: two devices under a locked Private KSN acceptance, the
/// policy pushed by `push_policy`) opens, is migrated, and resumes as it was.
#[test]
fn a_database_of_the_first_schema_is_migrated_and_resumed() {
    let dir = temporary("migrate");
    let db = dir.join("host.db");
    std::fs::copy(
        common::repo_root().join("tests/fixtures/databases/schema-1.db"),
        &db,
    )
    .unwrap();
    let (code, out) = shell(
        &db,
        "{\"expect\": {\"locked\": [\"data_handling.ksn_statement_accepted\", \"task.checksum_limit_mb\"], \
         \"settings\": {\"data_handling.ksn_statement_accepted\": true, \"task.checksum_limit_mb\": 8}, \
         \"provenance\": {\"task.checksum_limit_mb\": {\"policy\": \"Policy of Managed devices\", \"revision\": 1}}}}\n\
         status\nstart\nexpect {\"state\": \"running\", \"network\": \"private\"}\n",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("device 1: stopped, network none, Private KSN on"),
        "{out}"
    );
    // Migrated once: a later session resumes the same server, now of this schema.
    let (code, out) = shell(&db, "expect {\"state\": \"stopped\"}\npolicies\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("Policy of Managed devices").count(), 1, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A device that had not received a policy's deletion (no connection) when the server
/// stopped: at the server's start, its lock is released by the rule (its value stays) and
/// the server records it, so that no lock names a policy the server no longer holds.
#[test]
fn at_resume_no_device_keeps_a_lock_of_a_policy_the_server_no_longer_holds() {
    let dir = temporary("stale-lock");
    let db = dir.join("host.db");
    let args = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = vec!["shell".into(), "--db".into(), db.clone().into()];
        a.extend(extra.iter().map(|s| s.into()));
        a
    };
    let first = "{\"do\": \"create_policy\", \"name\": \"Limit\", \"policy\": {\"settings\": {\"task\": {\"checksum_limit_mb\": {\"value\": 8, \"locked\": true}}}}}\n\
        {\"do\": \"set_device\", \"connected\": false, \"on\": {\"device\": 1}}\n\
        delete_policy Limit\n\
        {\"expect\": {\"on\": {\"device\": 1}, \"locked\": [\"task.checksum_limit_mb\"]}}\n\
        {\"expect\": {\"on\": {\"device\": 0}, \"locked\": []}}\n";
    let (code, out, err) = common::host_sim_with_input(&args(&["--devices", "2"]), first);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = common::host_sim_with_input(
        &args(&[]),
        "{\"expect\": {\"on\": {\"device\": 1}, \"locked\": [], \"settings\": {\"task.checksum_limit_mb\": 8}}}\nevents\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("locks_released"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Which plugin each device runs survives a restart of the server: an update installed on
/// one device comes back on it, and an update waiting for a device that is switched off
/// is installed when it comes back, after a restart too.
#[test]
fn each_device_s_plugin_and_a_waiting_update_survive_a_restart() {
    let dir = temporary("plugins");
    let db = dir.join("host.db");
    let args = |more: &[&str]| {
        let mut all: Vec<std::ffi::OsString> =
            vec!["shell".into(), "--db".into(), db.clone().into()];
        all.extend(more.iter().map(|m| m.into()));
        all
    };
    let (code, out, err) = common::host_sim_with_input(
        &args(&["--devices", "3"]),
        "{\"do\": \"install_plugin\", \"plugin\": \"fixture_updated_plugin\", \"on\": {\"device\": 1}}\n\
         {\"do\": \"set_device\", \"online\": false, \"on\": {\"device\": 2}}\n\
         {\"do\": \"install_plugin\", \"plugin\": \"fixture_updated_plugin\", \"on\": {\"device\": 2}}\n\
         status\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("device 1: stopped, network none, Private KSN off, licence valid, plugin ksn-usage-task 1.1.0"), "{out}");
    assert!(out.contains("device 2: stopped, network none, Private KSN off, licence valid, plugin ksn-usage-task 1.0.0"), "the switched-off device waits: {out}");
    // The server restarts: device 1 comes back on the update; device 2 gets its update
    // when it is switched on again.
    let (code, out, err) = common::host_sim_with_input(
        &args(&[]),
        "status\n{\"do\": \"set_device\", \"online\": true, \"on\": {\"device\": 2}}\nstatus\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let sessions: Vec<&str> = out.split("device 0:").collect();
    assert_eq!(sessions.len(), 3, "{out}");
    assert!(sessions[1].contains("device 1: stopped, network none, Private KSN off, licence valid, plugin ksn-usage-task 1.1.0"), "{out}");
    assert!(sessions[1].contains("device 2: stopped, network none, Private KSN off, licence valid, plugin ksn-usage-task 1.0.0"), "{out}");
    assert!(sessions[2].contains("device 2: stopped, network none, Private KSN off, licence valid, plugin ksn-usage-task 1.1.0"), "{out}");
}
