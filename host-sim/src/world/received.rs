//! What the simulated KSN services received from one device, counted on the host side:
//! what a scenario checks to prove what left the device, whatever the plugin says. Counts
//! only, so a device that runs for months costs the same memory.

use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::{DataCategory, Service};

#[derive(Default)]
pub struct Received {
    counts: [[AtomicU64; 5]; 4],
}

impl Received {
    pub fn add(&self, service: Service, category: DataCategory, items: u32) {
        if let Some(cell) = self
            .counts
            .get(usize::from(service.0))
            .and_then(|row| row.get(usize::from(category.0)))
        {
            cell.fetch_add(u64::from(items), Ordering::Relaxed);
        }
    }

    pub fn count(&self, service: Service, category: DataCategory) -> u64 {
        self.counts
            .get(usize::from(service.0))
            .and_then(|row| row.get(usize::from(category.0)))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn total(&self, service: Service) -> u64 {
        self.counts
            .get(usize::from(service.0))
            .map_or(0, |row| row.iter().map(|c| c.load(Ordering::Relaxed)).sum())
    }

    pub fn reset(&self) {
        for row in &self.counts {
            for cell in row {
                cell.store(0, Ordering::Relaxed);
            }
        }
    }
}
