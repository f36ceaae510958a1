//! What left the device, and the task's counters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kinds::{DataCategory, Service};

/// One item (or batch) that left the device, with the consent that allowed it.
///
/// ```
/// use plugin_api::{documents::{LedgerItem, LedgerOutcome}, DataCategory, Service};
/// let item: LedgerItem = serde_json::from_str(r#"{"seq": 0, "time_ms": 5,
///     "category": "files", "service": "proxy", "items": 1, "bytes": 24,
///     "consent_record": 3, "outcome": "answered"}"#).unwrap();
/// assert_eq!((item.category, item.service), (DataCategory::FILES, Service::PROXY));
/// assert_eq!(item.outcome, LedgerOutcome::Answered);
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct LedgerItem {
    /// Numbered from 0 in the order sent, for the life of the task's storage (a plugin
    /// that keeps its ledger across restarts; one that does not, for the life of the
    /// instance).
    pub seq: u64,
    pub time_ms: u64,
    #[serde(deserialize_with = "DataCategory::lenient")]
    pub category: DataCategory,
    #[serde(deserialize_with = "Service::lenient")]
    pub service: Service,
    /// Items carried: 1 for a lookup, the batch size for statistics and KMP data.
    pub items: u32,
    pub bytes: u64,
    /// Task-log number of the acceptance that allowed it.
    pub consent_record: u64,
    pub outcome: LedgerOutcome,
}

/// How a send ended, once it reached its service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOutcome {
    Answered,
    /// Delivered, with no answer in time.
    TimedOut,
}

/// One page of the ledger (`ledger_page`): the items from a sequence number on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct LedgerPage {
    pub items: Vec<LedgerItem>,
    /// Where the next page starts.
    pub next_seq: u64,
    /// The oldest item still kept (older ones were dropped by the ledger's retention).
    pub oldest_seq: u64,
}

/// The task's counters (`counters_json`). A newer plugin may add counters; hosts ignore
/// what they do not know.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Verdicts in the cache.
    pub cache_entries: u64,
    /// Statistics items waiting for the next batch.
    pub queued_statistics: u64,
    /// Managed Protection items waiting for the next batch.
    pub queued_kmp: u64,
    /// Items in the ledger.
    pub ledger_items: u64,
}
