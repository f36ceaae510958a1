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

/// The story's instructions per device, counted by callgrind (`valgrind --tool=callgrind`)
/// running `host-sim fleet --devices N` (the host-sim beside this executable) in memory:
/// repeatable across runs and machines, where its seconds are not.
pub fn instructions_per_device(plugin_path: &Path, devices: usize) -> Result<f64, String> {
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("host-sim");
    let out_file = std::env::temp_dir().join(format!("ksn-bench-callgrind-{}", std::process::id()));
    let out = Command::new("valgrind")
        .args(["--tool=callgrind"])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .arg("--plugin")
        .arg(plugin_path)
        .args(["fleet", "--devices", &devices.to_string()])
        .output()
        .map_err(|e| format!("valgrind (needed for the story's instruction count): {e}"))?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("the story under callgrind failed: {stderr}"));
    }
    // "==PID== Collected : N"
    let collected = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("callgrind reported no count: {stderr}"))?;
    Ok(collected as f64 / devices.max(1) as f64)
}
