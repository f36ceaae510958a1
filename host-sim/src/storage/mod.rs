//! The host's persistent storage for one device: the plugin's records by key, and the
//! environment the host last reported to the device (so that a host that comes back
//! reports the same).

mod sqlite;

use std::{collections::HashMap, sync::Mutex};

pub use sqlite::{SqliteStorage, SqliteStore};

/// The environment the Administration Server reports to a device's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Environment {
    pub private_ksn: bool,
    pub license: plugin_api::LicenseState,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            private_ksn: false,
            license: plugin_api::LicenseState::VALID,
        }
    }
}

pub trait Storage: Send + Sync {
    /// Appends one record atomically: after a crash it is there whole or not at all.
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String>;
    /// Every record under `key`, oldest first.
    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String>;
    /// Replaces every record under `key`, atomically: after a crash, the old records or
    /// the new ones, whole.
    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String>;
    /// The environment saved last, if this storage outlives the process.
    fn environment(&self) -> Option<Environment> {
        None
    }
    /// Saves the environment, if this storage outlives the process.
    fn save_environment(&self, _: Environment) {}
}

/// Storage that survives `restart_host` (the device state outlives the task instance) but
/// not the process.
#[derive(Default)]
pub struct MemoryStorage {
    logs: Mutex<HashMap<String, Vec<Vec<u8>>>>,
}

impl Storage for MemoryStorage {
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        match logs.get_mut(key) {
            Some(records) => records.push(record.to_vec()),
            None => {
                logs.insert(key.to_string(), vec![record.to_vec()]);
            }
        }
        Ok(())
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(logs.get(key).cloned().unwrap_or_default())
    }

    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.insert(
            key.to_string(),
            records.iter().map(|r| r.to_vec()).collect(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_appends_and_replaces() {
        let storage = MemoryStorage::default();
        storage.append("journal", b"one").unwrap();
        storage.append("journal", b"two").unwrap();
        assert_eq!(storage.records("journal").unwrap().len(), 2);
        storage.replace("journal", &[b"base"]).unwrap();
        assert_eq!(storage.records("journal").unwrap(), vec![b"base".to_vec()]);
        assert!(storage.records("other").unwrap().is_empty());
    }
}
