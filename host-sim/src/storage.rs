//! The host's persistent storage for one device: append-only record logs by key.

use std::{collections::HashMap, sync::Mutex};

pub trait Storage: Send + Sync {
    /// Appends one record atomically.
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String>;
    /// Every record under `key`, oldest first.
    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String>;
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
        logs.entry(key.to_string())
            .or_default()
            .push(record.to_vec());
        Ok(())
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(logs.get(key).cloned().unwrap_or_default())
    }
}
