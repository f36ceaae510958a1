//! Every document that crosses the boundary as JSON text, as serde types with their JSON
//! Schemas (`schemars`). A plugin writes these shapes; a host reads them with
//! [`read_document`], which turns a malformed answer into one line naming the method and
//! the JSON path. The documents a host sends are read strictly: a key given twice is an
//! error, and a policy value given as an object must be exactly `{"value": v, "locked":
//! b}`, so a plugin can read them with these types and refuse what it should.
//!
//! | method | document |
//! |---|---|
//! | `push_policy` (in) | [`PolicyDocument`] |
//! | `set_local` (in) | [`LocalChange`] |
//! | `settings_json` | [`SettingsView`] |
//! | `task_log_json`, `task_log_page` | [`LogEntry`], [`LogPage`] |
//! | `HostServices::emit_event` (out) | [`LogEntry`] |
//! | `ledger_json`, `ledger_page` | [`LedgerItem`], [`LedgerPage`] |
//! | `counters_json` | [`Counters`] |
//! | the root module's `describe` | [`PluginDescription`] |

mod description;
mod log;
mod outbound;
pub mod path;
mod read;
pub mod schemas;
mod settings;
mod strict;

pub use description::{
    PluginDescription, SettingDescription, SettingRole, StatementText, ValueType,
};
pub use log::{Changes, Event, Importance, LogEntry, LogPage};
pub use outbound::{Counters, LedgerItem, LedgerOutcome, LedgerPage};
pub use read::{read_document, DocumentError};
pub use settings::{
    LocalChange, PolicyDocument, PolicyValue, SettingView, SettingsView, Source, Statement,
    StatementVersions,
};
