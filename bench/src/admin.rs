//! The durable Administration Server at a server's size: `host-sim serve --db` with
//! `--devices N` connected devices, in a process of its own (the host-sim beside this
//! executable). A policy edit of the root group is timed from request to answer (saved,
//! not yet delivered), then until its delivery reached every device; then the server is
//! killed and started again on the same database, timed until the console answers.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::report::median;

/// What one run of the durable server measured.
#[derive(Debug, Clone, Default)]
pub struct AdminFigures {
    /// A policy edit on the root group, answered (durable), median over the edits.
    pub change_ms_p50: f64,
    /// The same edit reaching every device, median.
    pub delivery_s: f64,
    /// The server started again on its database, until the console answers.
    pub resume_s: f64,
}

struct Served {
    child: Child,
    authority: String,
    token: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(plugin: &Path, db: &str, extra: &[&str]) -> Result<Served, String> {
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("host-sim");
    let mut child = Command::new(&exe)
        .arg("--plugin")
        .arg(plugin)
        .args(["serve", "--port", "0", "--db", db])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no output")?);
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| format!("serve printed no address: {line:?}"))?;
    Ok(Served {
        authority: url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        token: url.split("token=").nth(1).unwrap_or_default().to_string(),
        child,
    })
}

fn call(s: &Served, method: &str, path: &str, body: &str) -> Result<Value, String> {
    let mut stream = TcpStream::connect(&s.authority).map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.authority,
        s.token,
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{method} {path}: {}",
            &response[..response.len().min(300)]
        ));
    }
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or(""))
        .map_err(|e| format!("{path}: {e}"))
}

fn edit(limit: u64) -> String {
    format!(
        r#"{{"do": "edit_policy", "name": "Root", "policy": {{"settings": {{"task": {{"checksum_limit_mb": {{"value": {limit}, "locked": true}}}}}}}}}}"#
    )
}

/// Measures the server of `devices` devices on the database `db` (a new file, or a URL
/// whose schema the run replaces), `rounds` edits.
pub fn measure(
    plugin: &Path,
    devices: usize,
    db: &str,
    rounds: usize,
) -> Result<AdminFigures, String> {
    let served = serve(plugin, db, &["--fresh", "--devices", &devices.to_string()])?;
    call(
        &served,
        "POST",
        "/api/steps?wait=true",
        r#"{"do": "create_policy", "name": "Root", "group": "/", "policy": {"settings": {}}}"#,
    )?;
    let (mut answers, mut deliveries) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let started = Instant::now();
        let answer = call(&served, "POST", "/api/steps", &edit(2 + round as u64))?;
        answers.push(started.elapsed().as_secs_f64() * 1e3);
        let id = answer["delivery"]
            .as_u64()
            .ok_or("the edit queued no delivery")?;
        loop {
            let list = call(&served, "GET", "/api/deliveries", "")?;
            let done = list
                .as_array()
                .and_then(|l| l.iter().find(|d| d["id"] == id))
                .is_some_and(|d| d["done"] == true);
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        deliveries.push(started.elapsed().as_secs_f64());
    }
    drop(served);
    let started = Instant::now();
    let resumed = serve(plugin, db, &[])?;
    call(&resumed, "GET", "/api/server", "")?;
    let resume_s = started.elapsed().as_secs_f64();
    Ok(AdminFigures {
        change_ms_p50: median(answers),
        delivery_s: median(deliveries),
        resume_s,
    })
}

/// The same measure on SQLite (a new file in a temporary folder) and on PostgreSQL (a
/// schema of `cluster`): the full run's and `ksn-bench admin-edit`'s.
pub fn measure_both(
    plugin: &Path,
    devices: usize,
    edits: usize,
    cluster: &host_sim::pg_cluster::TempCluster,
) -> Result<(AdminFigures, AdminFigures), String> {
    let dir = std::env::temp_dir().join(format!("ksn-bench-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sqlite = measure(
        plugin,
        devices,
        dir.join("server.db").to_str().unwrap_or_default(),
        edits,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let postgres = measure(plugin, devices, &cluster.url("admin"), edits)?;
    Ok((sqlite?, postgres))
}
