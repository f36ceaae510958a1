//! The server killed at random moments (SIGKILL) while an administrator's changes stream
//! in through the console's API: each restart of `serve --db`, given no scenario, resumes
//! exactly the changes that were answered, plus at most the one in flight, and nothing
//! torn. On SQLite and on PostgreSQL; `KSN_CRASH_ROUNDS` runs more rounds (a soak).

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use serde_json::Value;

fn rounds() -> u64 {
    std::env::var("KSN_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12)
}

/// `serve --db DB` (a new server of three devices the first time, resumed after), and the
/// address with its token.
fn serve(db: &str, first: bool) -> (Child, String) {
    let mut command = common::host_sim();
    command.args(["serve", "--port", "0", "--db", db]);
    if first {
        command.args(["--devices", "3"]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("host-sim serve starts");
    let url = common::console_url(&mut child);
    (child, url)
}

/// One request; `None` when the server is gone.
fn http(url: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let authority = url.trim_start_matches("http://").split('/').next()?;
    let token = url.split("token=").nth(1)?;
    let mut stream = TcpStream::connect(authority).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// Change `k` of the stream: an odd one creates group `g{k}`, an even one saves a new
/// revision of policy `P` with the limit `k`.
fn change(k: u64) -> String {
    if k % 2 == 1 {
        format!(r#"{{"do": "create_group", "group": "g{k}"}}"#)
    } else {
        format!(
            r#"{{"do": "edit_policy", "name": "P", "policy": {{"settings": {{"task": {{"checksum_limit_mb": {{"value": {}, "locked": true}}}}}}}}}}"#,
            k % 1000 + 1
        )
    }
}

/// What the resumed server shows: how many changes of the stream it holds, checked whole.
fn changes_held(url: &str) -> u64 {
    let (_, groups) = http(url, "GET", "/api/groups", "").expect("the resumed server answers");
    let groups: Value = serde_json::from_str(&groups).unwrap();
    let mut made: Vec<u64> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["path"].as_str()?.strip_prefix('g')?.parse().ok())
        .collect();
    made.sort_unstable();
    let (_, policies) = http(url, "GET", "/api/policies", "").unwrap();
    let policies: Value = serde_json::from_str(&policies).unwrap();
    let p = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "P")
        .expect("policy P");
    let revisions = p["revisions"].as_array().unwrap();
    // Nothing torn: revisions numbered 1 to n without a gap, each with its content.
    for (i, r) in revisions.iter().enumerate() {
        assert_eq!(r["number"], i as u64 + 1, "{p}");
        assert!(r["policy"]["settings"].is_object(), "{r}");
    }
    let edits = revisions.len() as u64 - 1;
    // The groups made are g1, g3, ... without a gap; the edits as many as the stream says.
    for (i, k) in made.iter().enumerate() {
        assert_eq!(*k, 2 * i as u64 + 1, "groups {made:?}");
    }
    let odd = made.len() as u64;
    // n changes hold (n + 1) / 2 groups and n / 2 edits.
    let n = odd + edits;
    assert!(
        odd == n.div_ceil(2) && edits == n / 2,
        "{odd} groups, {edits} edits"
    );
    if edits > 0 {
        let last = revisions.last().unwrap();
        assert_eq!(
            last["policy"]["settings"]["task"]["checksum_limit_mb"]["value"],
            (2 * edits) % 1000 + 1,
            "{last}"
        );
    }
    n
}

fn crash_rounds(db: &str) {
    let (mut child, mut url) = serve(db, true);
    let (status, body) = http(
        &url,
        "POST",
        "/api/steps",
        r#"{"do": "create_policy", "name": "P", "group": "/", "policy": {"settings": {}}}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut answered = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..rounds() {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(answered));
        let stream = {
            let (url, stop, count) = (url.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let k = count.load(Ordering::Relaxed) + 1;
                    match http(&url, "POST", "/api/steps", &change(k)) {
                        Some((200, _)) => {
                            count.store(k, Ordering::Relaxed);
                        }
                        Some((status, body)) => panic!("change {k}: {status} {body}"),
                        None => return,
                    }
                }
            })
        };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 250));
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        stream.join().unwrap();
        let before = count.load(Ordering::Relaxed);
        let (next, url_next) = serve(db, false);
        child = next;
        let held = changes_held(&url_next);
        assert!(
            held == before || held == before + 1,
            "round {round}: {before} changes answered, {held} held after the restart"
        );
        assert!(
            held >= answered,
            "round {round}: nothing answered earlier is lost"
        );
        // The next round goes on from what the server holds.
        answered = held;
        url = url_next;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered > 0, "changes were made");
}

#[test]
fn an_administrator_s_answered_changes_survive_sigkill_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("ksn-server-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    crash_rounds(dir.join("host.db").to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_administrator_s_answered_changes_survive_sigkill_on_postgresql() {
    let cluster =
        host_sim::pg_cluster::TempCluster::start("crash").unwrap_or_else(|e| panic!("{e}"));
    crash_rounds(&cluster.url("crash"));
}
