//! The host's persistent storage for one device: the plugin's records by key, and the
//! environment the host last reported to the device (so that a host that comes back
//! reports the same).

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

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

/// Storage in files, one per key, that survives the process and a crash at any moment.
///
/// Each record is framed as `length (u32 LE) | CRC-32 (u32 LE) | bytes`, written with one
/// `write` and made durable with `fsync` before `append` returns. A crash mid-write leaves
/// a torn last frame; reading stops at the first frame that is incomplete or fails its
/// checksum and cuts the file there, so the next append follows the last whole record.
pub struct FileStorage {
    dir: PathBuf,
    lock: Mutex<()>,
}

const FRAME_HEADER: usize = 8;

impl FileStorage {
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, String> {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(format!(
                "storage key {key:?}: only a-z, 0-9 and _ are allowed"
            ));
        }
        Ok(self.dir.join(format!("{key}.log")))
    }
}

fn frame(record: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(record.len()).map_err(|_| "record larger than 4 GiB".to_string())?;
    let mut out = Vec::with_capacity(FRAME_HEADER + record.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
    out.extend_from_slice(record);
    Ok(out)
}

/// The whole records in `bytes`, and how many bytes they take.
fn unframe(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + FRAME_HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        records.push(body.to_vec());
        at += FRAME_HEADER + len;
    }
    (records, at)
}

impl Storage for FileStorage {
    fn append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        let path = self.path(key)?;
        let frame = frame(record)?;
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(&frame)
            .and_then(|_| file.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        let path = self.path(key)?;
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => file
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let (records, whole) = unframe(&bytes);
        if whole < bytes.len() {
            log::warn!(
                "{}: dropping {} bytes of a record torn by a crash",
                path.display(),
                bytes.len() - whole
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.set_len(whole as u64)
                .and_then(|_| file.sync_data())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(records)
    }

    /// Writes the new records to a temporary file, makes it durable, and renames it over
    /// the old one: a rename is atomic, so a crash leaves one file or the other.
    fn replace(&self, key: &str, records: &[&[u8]]) -> Result<(), String> {
        let path = self.path(key)?;
        let temporary = path.with_extension("log.new");
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend_from_slice(&frame(record)?);
        }
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let io = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut file = File::create(&temporary).map_err(io)?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        fs::rename(&temporary, &path).map_err(io)?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ksn-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_come_back_in_order_across_instances() {
        let dir = temp_dir("order");
        let storage = FileStorage::open(&dir).unwrap();
        storage.append("journal", b"one").unwrap();
        storage.append("journal", b"").unwrap();
        storage.append("journal", b"three").unwrap();
        let again = FileStorage::open(&dir).unwrap();
        assert_eq!(
            again.records("journal").unwrap(),
            vec![b"one".to_vec(), vec![], b"three".to_vec()]
        );
        assert!(again.records("other").unwrap().is_empty());
        assert!(again.append("../escape", b"x").is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_cut_at_every_length() {
        let whole = [frame(b"first").unwrap(), frame(b"second record").unwrap()].concat();
        let first_len = FRAME_HEADER + 5;
        for cut in 0..=whole.len() {
            let (records, used) = unframe(&whole[..cut]);
            let expected = if cut == whole.len() {
                2
            } else if cut >= first_len {
                1
            } else {
                0
            };
            assert_eq!(records.len(), expected, "cut at {cut}");
            assert!(used <= cut);
        }
        let dir = temp_dir("torn");
        let storage = FileStorage::open(&dir).unwrap();
        storage.append("journal", b"first").unwrap();
        let path = dir.join("journal.log");
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&frame(b"torn away").unwrap()[..10]);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(storage.records("journal").unwrap(), vec![b"first".to_vec()]);
        storage.append("journal", b"next").unwrap();
        assert_eq!(
            storage.records("journal").unwrap(),
            vec![b"first".to_vec(), b"next".to_vec()]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupted_record_ends_the_log_there() {
        let mut bytes = [
            frame(b"good").unwrap(),
            frame(b"flipped").unwrap(),
            frame(b"after").unwrap(),
        ]
        .concat();
        bytes[FRAME_HEADER + 4 + FRAME_HEADER] ^= 0xff;
        let (records, _) = unframe(&bytes);
        assert_eq!(records, vec![b"good".to_vec()]);
    }
}
