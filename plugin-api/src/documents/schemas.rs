//! The JSON Schema of every document that crosses the boundary, by name, for hosts that
//! validate what they receive (a C or C++ host cannot read the serde types): generated
//! from the types themselves, so they cannot drift. A plugin answers them through the root
//! module's `document_schema` (and the C API's `ksn_document_schema`), its own policy and
//! local-change schemas in place of the contract's general ones.

use schemars::schema_for;
use serde_json::Value as Json;

use super::{
    Counters, LedgerItem, LedgerPage, LocalChange, LogEntry, LogPage, PluginDescription,
    PolicyDocument, SettingsView,
};

/// A document: its name, what carries it, and its schema.
pub struct Document {
    pub name: &'static str,
    pub carried_by: &'static str,
    pub schema: fn() -> Json,
}

macro_rules! documents {
    ($($name:literal, $by:literal => $t:ty;)*) => {
        /// Every document, in the order the contract's documentation lists them.
        pub const DOCUMENTS: &[Document] = &[$(
            Document { name: $name, carried_by: $by, schema: || schema_for!($t).to_value() },
        )*];
    };
}

documents! {
    "policy", "push_policy (in)" => PolicyDocument;
    "local_change", "set_local (in)" => LocalChange;
    "settings", "settings_json" => SettingsView;
    "event", "HostServices::emit_event, events_since (out); each entry of the task log" => LogEntry;
    "log", "task_log_json" => Vec<LogEntry>;
    "log_page", "task_log_page" => LogPage;
    "ledger", "ledger_json" => Vec<LedgerItem>;
    "ledger_page", "ledger_page" => LedgerPage;
    "counters", "counters_json" => Counters;
    "description", "the root module's describe" => PluginDescription;
}

/// The schema of the document `name`, if there is one.
pub fn schema(name: &str) -> Option<Json> {
    DOCUMENTS
        .iter()
        .find(|d| d.name == name)
        .map(|d| (d.schema)())
}

/// Every document's name.
pub fn names() -> Vec<&'static str> {
    DOCUMENTS.iter().map(|d| d.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_its_schema_and_a_newer_one_is_admitted() {
        let event = schema("event").unwrap();
        let variants = event["oneOf"].as_array().unwrap();
        let types: Vec<&str> = variants
            .iter()
            .filter_map(|v| v.pointer("/properties/type/const").and_then(Json::as_str))
            .collect();
        for t in [
            "state_changed",
            "consent_changed",
            "object_untrusted",
            "journal_reconciled",
        ] {
            assert!(types.contains(&t), "{t}: {types:?}");
        }
        assert!(variants.last().unwrap()["properties"]["type"]["not"].is_object());
        assert!(schema("no such document").is_none());
        assert_eq!(names().len(), DOCUMENTS.len());
    }
}
