//! A stream of settings changes for the crash test: change `i` sets three settings at once,
//! so the state after any prefix of the stream can be recognised, and a change applied in
//! part would show. `host-sim crash-writer` applies them with storage in a host database
//! until it is killed, acknowledging each accepted change on stdout. The device keeps a
//! short log, so the plugin compacts its journal every few changes and kills land in
//! compactions too.

use std::{io::Write, path::Path, sync::Arc};

use plugin_api::{loader::Plugin, LogRetention};

use crate::{
    network::{Database, KsnSpec, Network},
    storage::HostStore,
    world::{Clock, Device, DeviceState},
};

const LIMITS: u64 = 1024;
const TIMEOUTS: u64 = 59_901;

/// The local change number `i` (from 1).
pub fn change(i: u64) -> String {
    serde_json::json!({"task": {
        "checksum_limit_mb": i % LIMITS + 1,
        "lookup_timeout_ms": 100 + (i / LIMITS) % TIMEOUTS,
        "action_on_untrusted": if i.is_multiple_of(2) { "delete" } else { "log" },
    }})
    .to_string()
}

/// How many changes of the stream a task's settings show: 0 for none, or an error if they
/// are not the state after any prefix (a change applied in part).
pub fn applied(settings_json: &str) -> Result<u64, String> {
    let settings: serde_json::Value =
        serde_json::from_str(settings_json).map_err(|e| e.to_string())?;
    let detail = |path: &str| settings["details"][path].clone();
    let sources: Vec<_> = [
        "task.checksum_limit_mb",
        "task.lookup_timeout_ms",
        "task.action_on_untrusted",
    ]
    .iter()
    .map(|p| detail(p)["source"].as_str().unwrap_or("?").to_string())
    .collect();
    if sources.iter().all(|s| s == "default") {
        return Ok(0);
    }
    if sources.iter().any(|s| s != "local") {
        return Err(format!(
            "some settings were never written by the stream: {sources:?}"
        ));
    }
    let limit = detail("task.checksum_limit_mb")["value"]
        .as_u64()
        .ok_or("no checksum limit")?;
    let timeout = detail("task.lookup_timeout_ms")["value"]
        .as_u64()
        .ok_or("no timeout")?;
    let i = (timeout - 100) * LIMITS + (limit - 1);
    let action = detail("task.action_on_untrusted")["value"].clone();
    let expected = if i.is_multiple_of(2) { "delete" } else { "log" };
    if action != expected {
        return Err(format!("torn state: change {i} with action {action}"));
    }
    Ok(i)
}

/// Boots one device on the host database `db`, keeping a short log (16 entries), so that
/// its journal is compacted every 16 changes.
pub fn device(plugin: &Plugin, db: &Path) -> Result<Device, String> {
    let storage = HostStore::open(db)?.device("crash", 0);
    let mut state = DeviceState::with_storage(
        0,
        Arc::new(Clock::default()),
        Arc::new(Network::new(&KsnSpec::default(), false)?),
        Arc::new(Database::default()),
        Arc::new(storage),
    );
    state.retention = LogRetention {
        max_entries: 16,
        max_age_ms: 0,
    };
    Device::boot(plugin, Arc::new(state), 0)
        .map(|(device, _)| device)
        .map_err(|e| e.to_string())
}

/// Applies the stream from where the storage left off, printing each accepted change's
/// number, until killed (or `limit` changes).
pub fn write(plugin: &Plugin, db: &Path, limit: Option<u64>) -> Result<(), String> {
    let device = device(plugin, db)?;
    let settings = device
        .task
        .settings_json()
        .into_result()
        .map_err(|e| e.to_string())?;
    let mut i = applied(&settings)?;
    let mut out = std::io::stdout().lock();
    while limit.is_none_or(|l| i < l) {
        i += 1;
        device
            .task
            .set_local(change(i).as_str().into())
            .into_result()
            .map_err(|e| format!("change {i}: {e}"))?;
        writeln!(out, "{i}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_recovered_from_the_settings() {
        for i in [1, 2, 1023, 1024, 1025, 5_000_000] {
            let c: serde_json::Value = serde_json::from_str(&change(i)).unwrap();
            let settings = serde_json::json!({"details": {
                "task.checksum_limit_mb": {"value": c["task"]["checksum_limit_mb"], "source": "local"},
                "task.lookup_timeout_ms": {"value": c["task"]["lookup_timeout_ms"], "source": "local"},
                "task.action_on_untrusted": {"value": c["task"]["action_on_untrusted"], "source": "local"},
            }});
            assert_eq!(applied(&settings.to_string()), Ok(i));
        }
        let torn = serde_json::json!({"details": {
            "task.checksum_limit_mb": {"value": 2, "source": "local"},
            "task.lookup_timeout_ms": {"value": 100, "source": "local"},
            "task.action_on_untrusted": {"value": "delete", "source": "local"},
        }});
        assert!(applied(&torn.to_string()).unwrap_err().contains("torn"));
    }
}
