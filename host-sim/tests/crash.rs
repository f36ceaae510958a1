//! Crash safety: the host is killed with SIGKILL at random moments while it streams
//! settings changes to its SQLite database (and the plugin compacts its journal every 16
//! changes, so kills land in compactions too), then started again. Every time, the state
//! loads, and it is the state after a prefix of the changes: all the acknowledged ones,
//! and at most the one being written when the host died.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use host_sim::crash;

/// A small deterministic generator, so a failing round can be replayed from its seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_killed_host_always_restarts_on_a_prefix_of_the_accepted_changes() {
    let rounds: usize = std::env::var("KSN_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let dir = std::env::temp_dir().join(format!("ksn-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("host.db");
    let plugin = common::plugin();
    let mut acknowledged = 0;
    let mut killed_mid_stream = 0;
    for round in 0..rounds {
        let mut writer = common::host_sim()
            .args(["crash-writer", "--db"])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = writer.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.parse::<u64>().ok())
                .last()
        });
        std::thread::sleep(Duration::from_millis(30 + next(&mut seed) % 170));
        writer.kill().unwrap(); // SIGKILL
        let status = writer.wait().unwrap();
        let last = reader.join().unwrap();
        if !status.success() {
            killed_mid_stream += 1;
        }
        if let Some(last) = last {
            assert!(
                last > acknowledged,
                "round {round}: the stream went backwards"
            );
            acknowledged = last;
        }

        let device = crash::device(&plugin, &db)
            .unwrap_or_else(|e| panic!("round {round}: the state does not load: {e}"));
        let settings = device.task.settings_json().into_result().unwrap();
        let applied = crash::applied(&settings).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            applied == acknowledged || applied == acknowledged + 1,
            "round {round}: {acknowledged} changes acknowledged, the state shows {applied}"
        );
        // The log loads too, and its last settings change is the state's.
        let log: serde_json::Value =
            serde_json::from_str(&device.task.task_log_json().into_result().unwrap()).unwrap();
        if applied > 0 {
            let last_change = log
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|e| e["type"] == "settings_changed")
                .unwrap();
            let expected: serde_json::Value =
                serde_json::from_str(&crash::change(applied)).unwrap();
            assert_eq!(
                last_change["after"]["task.checksum_limit_mb"],
                expected["task"]["checksum_limit_mb"]
            );
        }
        acknowledged = applied;
    }
    eprintln!("{rounds} rounds, {acknowledged} changes accepted in all");
    assert!(acknowledged > 0, "the writer never got going");
    assert!(killed_mid_stream == rounds, "every round ended by SIGKILL");
    std::fs::remove_dir_all(&dir).unwrap();
}
