//! `host-sim audit`: each device's consent history, read from a host database, as the
//! record an administrator shows an auditor: every acceptance and withdrawal, when, of
//! which statement and version, and who made it. The plugin keeps consent records for
//! ever; the history is read through it (its task log, page by page) without writing
//! anything to the database.

use std::sync::Arc;

use plugin_api::{
    abi_stable::sabi_trait::TD_Opaque,
    documents::{read_document, Event, LogPage, Source, Statement},
    loader::Plugin,
    DataCategory, HostServices_TO,
};
use serde::Serialize;

use crate::{
    network::{Database, KsnSpec, Network},
    serde_name as name,
    storage::HostStore,
    world::{Clock, DeviceHost, DeviceState},
};

/// One acceptance or withdrawal.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ConsentRecord {
    pub seq: u64,
    pub time_ms: u64,
    pub statement: Statement,
    pub version: u32,
    pub accepted: bool,
    pub source: Source,
    /// For a partial withdrawal or re-acceptance: the category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<DataCategory>,
}

/// One device's history.
#[derive(Serialize, Debug, Clone)]
pub struct History {
    /// Its server's name.
    pub host: String,
    pub device: usize,
    pub records: Vec<ConsentRecord>,
}

/// The consent history of every device in `store`.
pub fn histories(plugin: Plugin, store: &Arc<HostStore>) -> Result<Vec<History>, String> {
    let network = Arc::new(Network::new(&KsnSpec::default(), false)?);
    let mut out = Vec::new();
    let names = store.server_names()?;
    for (id, device) in store.devices()? {
        let host = names.get(&id).cloned().unwrap_or_else(|| id.clone());
        let state = DeviceState::with_storage(
            device,
            Arc::new(Clock::default()),
            network.clone(),
            Arc::new(Database::default()),
            Arc::new(store.device_read_only(&id, device)),
        );
        let services = HostServices_TO::from_value(DeviceHost(Arc::new(state)), TD_Opaque);
        let task = plugin
            .new_task(services)
            .map_err(|e| format!("{host}, device {device}: {e}"))?;
        let records =
            consent_records(&task).map_err(|e| format!("{host}, device {device}: {e}"))?;
        out.push(History {
            host,
            device,
            records,
        });
    }
    Ok(out)
}

/// Every acceptance and withdrawal a task's log holds, oldest first, read page by page.
pub fn consent_records(task: &plugin_api::KsnTaskBox) -> Result<Vec<ConsentRecord>, String> {
    let mut records = Vec::new();
    let mut from = 0;
    loop {
        let text = task
            .task_log_page(from, 1000)
            .into_result()
            .map_err(|e| e.to_string())?;
        let page: LogPage = read_document("task_log_page", &text).map_err(|e| e.to_string())?;
        for entry in &page.entries {
            if let Event::ConsentChanged {
                statement,
                version,
                accepted,
                source,
                category,
                ..
            } = &entry.event
            {
                records.push(ConsentRecord {
                    seq: entry.seq,
                    time_ms: entry.time_ms,
                    statement: *statement,
                    version: *version,
                    accepted: *accepted,
                    source: *source,
                    category: *category,
                });
            }
        }
        if page.entries.is_empty() || page.next_seq <= from {
            break;
        }
        from = page.next_seq;
    }
    Ok(records)
}

/// The histories as CSV, a record a row (RFC 4180; every field plain words or numbers).
pub fn csv(histories: &[History]) -> String {
    let mut out =
        String::from("host,device,seq,time_ms,statement,version,accepted,source,category\n");
    for h in histories {
        for r in &h.records {
            let host = h.host.replace('"', "\"\"");
            out.push_str(&format!(
                "\"{host}\",{},{},{},{},{},{},{},{}\n",
                h.device,
                r.seq,
                r.time_ms,
                name(&r.statement),
                r.version,
                r.accepted,
                name(&r.source),
                r.category.map(|c| c.as_str()).unwrap_or("")
            ));
        }
    }
    out
}

pub fn text(histories: &[History]) -> String {
    let mut out = String::new();
    for h in histories {
        out.push_str(&format!("{}, device {}\n", h.host, h.device));
        if h.records.is_empty() {
            out.push_str("  no acceptance or withdrawal recorded\n");
            continue;
        }
        out.push_str(&format!(
            "  {:>6} {:>12}  {:<12} {:>7}  {:<10} {:<18} {}\n",
            "log#", "time (ms)", "statement", "version", "consent", "source", "category"
        ));
        for r in &h.records {
            out.push_str(&format!(
                "  {:>6} {:>12}  {:<12} {:>7}  {:<10} {:<18} {}\n",
                r.seq,
                r.time_ms,
                r.statement.as_str(),
                r.version,
                if r.accepted { "accepted" } else { "withdrawn" },
                name(&r.source),
                r.category.map(|c| c.to_string()).unwrap_or_default(),
            ));
        }
    }
    out
}
