//! The host simulator: loads the KSN Usage task plugin (through plugin-api's loader, never
//! linking it), plays the management host and the KSN services, and drives scenarios on
//! one device or a fleet.

pub mod audit;
pub mod conform;
pub mod consumers;
pub mod crash;
pub mod fleet;
pub mod hierarchy;
pub mod json;
pub mod logs;
pub mod network;
pub mod pg_cluster;
pub mod reference;
pub mod resume;
pub mod scenario;
pub(crate) mod schemas;
pub mod shell;
pub mod steps;
pub mod storage;
pub mod views;
pub mod web;
pub mod world;

/// The name a value of the contract's vocabularies serialises to (`policy`,
/// `mode_change`), for text: one place, not one per view.
pub fn serde_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
