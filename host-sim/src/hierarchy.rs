//! A hierarchy of Administration Servers: S secondary servers, each a process of its own
//! with its own devices and its own part of the database (a PostgreSQL schema, or an SQLite
//! file in a folder), all playing the fleet story at once; and the primary, which learns
//! what they hold only through the database: devices by status, the events they keep by
//! importance, and the consent changes among them.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use serde::{Deserialize, Serialize};

use crate::{
    fleet::FleetReport,
    storage::{is_postgres, HostStore},
};
use admin_server::Status;

/// A secondary server manages at most this many devices.
pub const MOST_PER_SERVER: usize = 100_000;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SecondaryReport {
    pub name: String,
    pub devices: usize,
    /// The story on this server, as it timed it.
    pub story_s: f64,
    pub peak_rss_mib: f64,
    pub passed: bool,
    /// Read by the primary from the database: OK, Warning, Critical.
    pub statuses: [u64; 3],
    /// Events kept, by importance: critical, functional failure, warning, info.
    pub events: [u64; 4],
    /// `consent_changed` events among them: the consent audit as the server received it.
    pub consent_changes: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct HierarchyReport {
    pub servers: usize,
    /// Every device the primary counts through the database.
    pub devices: usize,
    /// From the first secondary's start to the last one's end, the primary's reading
    /// included.
    pub story_s: f64,
    /// The largest peak RSS of one server, and the sum over all of them.
    pub peak_rss_mib: f64,
    pub total_rss_mib: f64,
    pub statuses: [u64; 3],
    pub events: [u64; 4],
    pub consent_changes: u64,
    /// What the database holds, over every secondary's part.
    pub db_bytes: u64,
    pub passed: bool,
    pub secondaries: Vec<SecondaryReport>,
}

/// Where secondary `name` keeps its data: schema `name` of the PostgreSQL database, or
/// `<folder>/<name>.db`.
pub fn location_of(db: &Path, name: &str) -> PathBuf {
    let text = db.to_string_lossy();
    if is_postgres(&text) {
        let (base, query) = text.split_once('?').unwrap_or((&text, ""));
        let mut params: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("schema="))
            .map(String::from)
            .collect();
        params.push(format!("schema={name}"));
        PathBuf::from(format!("{base}?{}", params.join("&")))
    } else {
        db.join(format!("{name}.db"))
    }
}

fn name_of(i: usize) -> String {
    format!("server_{:02}", i + 1)
}

/// How `devices` spread over `servers` (the first ones take one more).
pub fn shares(servers: usize, devices: usize) -> Result<Vec<usize>, String> {
    if servers == 0 {
        return Err("--servers: must be at least 1".into());
    }
    let each = devices / servers;
    let shares: Vec<usize> = (0..servers)
        .map(|i| each + usize::from(i < devices % servers))
        .collect();
    if shares[0] > MOST_PER_SERVER {
        return Err(format!(
            "--devices {devices} over --servers {servers}: {} a server, more than the {MOST_PER_SERVER} one server manages; add servers",
            shares[0]
        ));
    }
    if shares.contains(&0) {
        return Err(format!(
            "--devices {devices} over --servers {servers}: a server would have none"
        ));
    }
    Ok(shares)
}

/// Runs the hierarchy: `exe` is host-sim itself (each secondary runs `fleet` in its own
/// process), `plugin` the plugin they load.
pub fn run(
    exe: &Path,
    plugin: Option<&Path>,
    servers: usize,
    devices: usize,
    db: &Path,
    on_done: &dyn Fn(&str),
) -> Result<HierarchyReport, String> {
    let shares = shares(servers, devices)?;
    if !is_postgres(&db.to_string_lossy()) {
        std::fs::create_dir_all(db).map_err(|e| format!("--db {}: {e}", db.display()))?;
    }
    let started = Instant::now();
    let children = shares
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let name = name_of(i);
            let mut command = Command::new(exe);
            if let Some(plugin) = plugin {
                command.arg("--plugin").arg(plugin);
            }
            command
                .args([
                    "fleet",
                    "--json",
                    "--devices",
                    &n.to_string(),
                    "--server",
                    &name,
                    "--fresh",
                ])
                .arg("--db")
                .arg(location_of(db, &name))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = command
                .spawn()
                .map_err(|e| format!("{}: {e}", exe.display()))?;
            Ok((name, child))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut reports = Vec::new();
    for (name, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{name}: {e}"))?;
        let report: FleetReport = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{name} gave no report ({e}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        on_done(&name);
        reports.push((name, report));
    }
    // The primary: only what the database holds.
    let mut secondaries = Vec::new();
    let mut db_bytes = 0;
    for (name, report) in reports {
        let store = HostStore::open(&location_of(db, &name))?;
        // The secondary's server, by the name it was given.
        let id = store
            .servers()?
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.id)
            .ok_or_else(|| format!("{}: holds no server {name:?}", store.location()))?;
        let mut statuses = [0; 3];
        for (status, n) in store.status_counts(&id)? {
            if let Some(at) = Status::ALL.iter().position(|s| s.as_str() == status) {
                statuses[at] += n;
            }
        }
        let mut events = [0; 4];
        let mut consent_changes = 0;
        for (importance, kind, n) in store.event_counts(&id)? {
            let at = ["critical", "functional_failure", "warning", "info"]
                .iter()
                .position(|i| *i == importance);
            if let Some(at) = at {
                events[at] += n;
            }
            if kind == "consent_changed" {
                consent_changes += n;
            }
        }
        db_bytes += store.size_bytes()?;
        secondaries.push(SecondaryReport {
            name,
            devices: report.devices,
            story_s: report.story_s,
            peak_rss_mib: report.peak_rss_mib,
            passed: report.passed,
            statuses,
            events,
            consent_changes,
        });
    }
    let sum3 = |f: &dyn Fn(&SecondaryReport) -> [u64; 3]| {
        secondaries.iter().fold([0; 3], |mut a, s| {
            for (a, b) in a.iter_mut().zip(f(s)) {
                *a += b;
            }
            a
        })
    };
    let statuses = sum3(&|s| s.statuses);
    let mut events = [0; 4];
    for s in &secondaries {
        for (a, b) in events.iter_mut().zip(s.events) {
            *a += b;
        }
    }
    let counted = statuses.iter().sum::<u64>() as usize;
    Ok(HierarchyReport {
        servers,
        devices: counted,
        story_s: started.elapsed().as_secs_f64(),
        peak_rss_mib: secondaries
            .iter()
            .map(|s| s.peak_rss_mib)
            .fold(0.0, f64::max),
        total_rss_mib: secondaries.iter().map(|s| s.peak_rss_mib).sum::<f64>()
            + crate::fleet::peak_rss_mib(),
        statuses,
        events,
        consent_changes: secondaries.iter().map(|s| s.consent_changes).sum(),
        db_bytes,
        passed: counted == devices && secondaries.iter().all(|s| s.passed),
        secondaries,
    })
}

/// The report as a table.
pub fn text(report: &HierarchyReport) -> String {
    let mut out = format!(
        "Private KSN story on {} servers ({} devices)\n{:<12} {:>8} {:>9} {:>9} {:>26} {:>9}\n",
        report.servers,
        report.devices,
        "server",
        "devices",
        "story s",
        "RSS MiB",
        "OK / Warning / Critical",
        "consent"
    );
    for s in &report.secondaries {
        out += &format!(
            "{:<12} {:>8} {:>9.2} {:>9.0} {:>26} {:>9}{}\n",
            s.name,
            s.devices,
            s.story_s,
            s.peak_rss_mib,
            format!("{} / {} / {}", s.statuses[0], s.statuses[1], s.statuses[2]),
            s.consent_changes,
            if s.passed { "" } else { "  (not as expected)" }
        );
    }
    out += &format!(
        "primary: {} devices counted, {} OK, {} Warning, {} Critical; {} events kept \
         ({} critical); {} consent changes; database {:.1} MB ({:.0} bytes a device)\n\
         story: {:.2} s end to end, peak RSS {:.0} MiB a server, {:.0} MiB in all, {}\n",
        report.devices,
        report.statuses[0],
        report.statuses[1],
        report.statuses[2],
        report.events.iter().sum::<u64>(),
        report.events[0],
        report.consent_changes,
        report.db_bytes as f64 / 1e6,
        report.db_bytes as f64 / report.devices.max(1) as f64,
        report.story_s,
        report.peak_rss_mib,
        report.total_rss_mib,
        if report.passed {
            "every device as expected"
        } else {
            "NOT every device as expected"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_spread_evenly_and_no_server_takes_more_than_it_manages() {
        assert_eq!(shares(3, 10).unwrap(), vec![4, 3, 3]);
        assert_eq!(shares(10, 1_000_000).unwrap(), vec![100_000; 10]);
        assert!(shares(2, 200_001).unwrap_err().contains("add servers"));
        assert!(shares(0, 10).is_err());
        assert!(shares(4, 3).unwrap_err().contains("none"));
    }

    #[test]
    fn each_secondary_has_its_own_schema_or_file() {
        assert_eq!(
            location_of(
                Path::new("postgresql:///postgres?host=/tmp/x&schema=a"),
                "server_02"
            ),
            PathBuf::from("postgresql:///postgres?host=/tmp/x&schema=server_02")
        );
        assert_eq!(
            location_of(Path::new("/tmp/servers"), "server_01"),
            PathBuf::from("/tmp/servers/server_01.db")
        );
    }
}
