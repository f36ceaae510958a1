//! The Private KSN story on a fleet, in a process of its own so that its peak RSS is its
//! own.

use std::{path::Path, process::Command};

use host_sim::fleet::FleetReport;

/// Runs `ksn-bench fleet-story` in a child process and reads its report.
pub fn story(plugin_path: &Path, devices: usize) -> Result<FleetReport, String> {
    story_with(plugin_path, devices, None)
}

/// The same, with the devices' records in the host database `database` when given.
pub fn story_with(
    plugin_path: &Path,
    devices: usize,
    database: Option<&Path>,
) -> Result<FleetReport, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.arg("--plugin").arg(plugin_path).args([
        "fleet-story",
        "--devices",
        &devices.to_string(),
    ]);
    if let Some(path) = database {
        command.arg("--db").arg(path);
    }
    let out = command.output().map_err(|e| format!("fleet-story: {e}"))?;
    serde_json::from_slice::<FleetReport>(&out.stdout).map_err(|e| {
        format!(
            "the fleet run failed ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
