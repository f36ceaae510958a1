//! What the simulated KSN services received from one device, counted on the host side:
//! what a scenario checks to prove what left the device, whatever the plugin says.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use plugin_api::{DataCategory, Service};

#[derive(Default)]
pub struct Received {
    counts: [[AtomicU64; 5]; 4],
    items: Mutex<Vec<ReceivedItem>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedItem {
    pub service: Service,
    pub category: DataCategory,
    pub items: u32,
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
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ReceivedItem {
                service,
                category,
                items,
            });
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

    /// Every delivery since the last reset, in order.
    pub fn items(&self) -> Vec<ReceivedItem> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        for row in &self.counts {
            for cell in row {
                cell.store(0, Ordering::Relaxed);
            }
        }
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
