//! The Private KSN story on a fleet, in a process of its own so that its peak RSS is its
//! own.

use std::{path::Path, process::Command};

use host_sim::fleet::FleetReport;

/// Runs `ksn-bench fleet-story` in a child process and reads its report.
pub fn story(plugin_path: &Path, devices: usize) -> Result<FleetReport, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--plugin")
        .arg(plugin_path)
        .args(["fleet-story", "--devices", &devices.to_string()])
        .output()
        .map_err(|e| format!("fleet-story: {e}"))?;
    serde_json::from_slice::<FleetReport>(&out.stdout).map_err(|e| {
        format!(
            "the fleet run failed ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
