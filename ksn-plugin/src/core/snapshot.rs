//! The immutable view of the task that the lookup path reads without taking a lock.

use plugin_api::{DataCategory, ErrorKind, LicenseState, Service, TaskState};

use super::{
    control::Control,
    route::Routing,
    table::{Setting, Value},
};

/// The categories that are queued and sent in batches.
pub const QUEUED: [DataCategory; 2] = [DataCategory::STATISTICS, DataCategory::KMP];

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub state: TaskState,
    pub error: Option<ErrorKind>,
    pub private_ksn: bool,
    pub license: LicenseState,
    pub generation: u32,
    /// Task-log number of the acceptance that allows data to leave (KSN or Private KSN).
    pub ksn_record: Option<u64>,
    pub kmp_record: Option<u64>,
    allow_files: bool,
    allow_urls: bool,
    allow_statistics: bool,
    allow_kmp: bool,
    pub delete_untrusted: bool,
    pub checksum_limit_bytes: Option<u64>,
    pub timeout_ms: u32,
    pub routing: Routing,
    /// The generation of each queued category's consent (`QUEUED` order): it moves
    /// on whenever the category's `permit` changes.
    pub queue_generation: [u32; 2],
}

/// Everything that decides whether, where and under which consent a category may leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    allowed: bool,
    consent_record: Option<u64>,
    routing: Routing,
}

impl Snapshot {
    pub fn of(control: &Control) -> Self {
        let value = |s: Setting| control.value(s);
        let running = control.state == TaskState::RUNNING;
        let ksn = running && control.consent.ksn.is_some();
        // In Private KSN mode the accepted statement covers every category of data.
        let category = |s: Setting| ksn && (control.private_ksn || value(s).as_bool());
        let routing = control.routing();
        let limit_mb = match value(Setting::ChecksumLimitMb) {
            Value::Int(mb) => u64::from(mb),
            _ => unreachable!("checksum_limit_mb is an integer"),
        };
        let timeout_ms = match value(Setting::LookupTimeoutMs) {
            Value::Int(ms) => ms,
            _ => unreachable!("lookup_timeout_ms is an integer"),
        };
        Self {
            state: control.state,
            error: control.error,
            private_ksn: control.private_ksn,
            license: control.license,
            generation: control.generation,
            ksn_record: control.consent.ksn.map(|a| a.record),
            kmp_record: control.consent.kmp.map(|a| a.record),
            allow_files: category(Setting::SendScannedFilesData),
            allow_urls: category(Setting::SendScannedUrlsData),
            allow_statistics: category(Setting::SendStatistics),
            allow_kmp: ksn && control.kmp_active && control.consent.kmp.is_some(),
            delete_untrusted: value(Setting::ActionOnUntrusted) == Value::Choice("delete"),
            checksum_limit_bytes: value(Setting::ChecksumLimitEnabled)
                .as_bool()
                .then_some(limit_mb * 1024 * 1024),
            timeout_ms,
            routing,
            queue_generation: [0; 2],
        }
    }

    /// This snapshot as the successor of `before`: the queue generations of the categories
    /// whose permit changed move on.
    pub fn after(mut self, before: &Snapshot) -> Self {
        for (i, category) in QUEUED.iter().enumerate() {
            let changed = before.permit(*category) != self.permit(*category);
            self.queue_generation[i] = before.queue_generation[i].wrapping_add(u32::from(changed));
        }
        self
    }

    pub fn permit(&self, category: DataCategory) -> Permit {
        Permit {
            allowed: self.allows_category(category),
            consent_record: self.consent_record(category),
            routing: self.routing,
        }
    }

    pub fn running(&self) -> bool {
        self.state == TaskState::RUNNING
    }

    pub fn allows_category(&self, category: DataCategory) -> bool {
        match category {
            DataCategory::FILES => self.allow_files,
            DataCategory::URLS => self.allow_urls,
            DataCategory::STATISTICS => self.allow_statistics,
            DataCategory::KMP => self.allow_kmp,
            _ => false,
        }
    }

    /// The egress rule: a category the current consent allows, to a service the current
    /// mode and settings may reach. Nothing reaches Global KSN or the proxy in Private KSN
    /// mode.
    pub fn allows(&self, category: DataCategory, service: Service) -> bool {
        self.allows_category(category) && self.routing.may_reach(service)
    }

    /// The record that allows `category` to leave now.
    pub fn consent_record(&self, category: DataCategory) -> Option<u64> {
        if category == DataCategory::KMP {
            self.kmp_record
        } else {
            self.ksn_record
        }
    }
}

/// What the cache-hit path needs, packed in one word so that a lookup reads it with one
/// atomic load. (An `ArcSwap` load goes through a thread-local, which in a cdylib is a call
/// into the dynamic loader on every lookup.) Published with each snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hot {
    pub running: bool,
    pub allow_files: bool,
    pub allow_urls: bool,
    pub delete_untrusted: bool,
    /// In MB (1..=1024), when the checksum limit is on.
    pub checksum_limit_mb: Option<u16>,
    pub generation: u32,
}

impl Hot {
    pub fn of(snapshot: &Snapshot) -> Self {
        Self {
            running: snapshot.running(),
            allow_files: snapshot.allows_category(DataCategory::FILES),
            allow_urls: snapshot.allows_category(DataCategory::URLS),
            delete_untrusted: snapshot.delete_untrusted,
            checksum_limit_mb: snapshot.checksum_limit_bytes.map(|b| (b >> 20) as u16),
            generation: snapshot.generation,
        }
    }

    pub fn pack(self) -> u64 {
        u64::from(self.running)
            | u64::from(self.allow_files) << 1
            | u64::from(self.allow_urls) << 2
            | u64::from(self.delete_untrusted) << 3
            | u64::from(self.checksum_limit_mb.is_some()) << 4
            | u64::from(self.checksum_limit_mb.unwrap_or(0) & 0x7ff) << 5
            | u64::from(self.generation) << 32
    }

    pub fn unpack(word: u64) -> Self {
        let bit = |n: u32| word >> n & 1 == 1;
        Self {
            running: bit(0),
            allow_files: bit(1),
            allow_urls: bit(2),
            delete_untrusted: bit(3),
            checksum_limit_mb: bit(4).then_some((word >> 5 & 0x7ff) as u16),
            generation: (word >> 32) as u32,
        }
    }

    /// Over the limit no checksum is computed, so there is nothing to look up by.
    pub fn over_checksum_limit(&self, size_bytes: u64) -> bool {
        self.checksum_limit_mb
            .is_some_and(|mb| size_bytes > u64::from(mb) << 20)
    }
}

/// The snapshot in force, replaced whole at each commit. A lock, not an `ArcSwap`: an
/// `ArcSwap` store pays every thread's debts, so its cost grows with the host's threads
/// (14% of a fleet's CPU at 512 device threads); the cache-hit path reads `Hot`, not this.
pub struct Current(std::sync::RwLock<std::sync::Arc<Snapshot>>);

impl Current {
    pub fn new(snapshot: Snapshot) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(snapshot)))
    }

    pub fn load(&self) -> std::sync::Arc<Snapshot> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `snapshot` current; the one it replaces is dropped outside the lock.
    pub fn store(&self, snapshot: std::sync::Arc<Snapshot>) {
        let old = std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|e| e.into_inner()),
            snapshot,
        );
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_word_round_trips() {
        for limit in [None, Some(1), Some(2), Some(1024)] {
            for flags in 0..16u8 {
                let hot = Hot {
                    running: flags & 1 != 0,
                    allow_files: flags & 2 != 0,
                    allow_urls: flags & 4 != 0,
                    delete_untrusted: flags & 8 != 0,
                    checksum_limit_mb: limit,
                    generation: u32::MAX - u32::from(flags),
                };
                assert_eq!(Hot::unpack(hot.pack()), hot);
            }
        }
        let hot = Hot::unpack(
            Hot {
                running: true,
                allow_files: true,
                allow_urls: false,
                delete_untrusted: false,
                checksum_limit_mb: Some(2),
                generation: 0,
            }
            .pack(),
        );
        assert!(!hot.over_checksum_limit(2 << 20));
        assert!(hot.over_checksum_limit((2 << 20) + 1));
    }
}
