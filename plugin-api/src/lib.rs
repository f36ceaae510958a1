//! The stable-ABI contract between the KSN Usage task plugin and its host.
//!
//! Nothing here has behaviour of its own: it is the set of types, trait objects and the
//! root module both sides agree on, plus the export helper every plugin uses
//! (`export_ksn_plugin!`), which installs the log forwarder and turns panics into
//! `plugin_panic` errors.
//!
//! Compatibility: fields of the root module and methods of the trait objects are only ever
//! appended, after the `last_prefix_field` marker, each with a default, so a host built
//! against this contract loads plugins built against an older or newer contract of the
//! same major version; a different major version, or a changed layout, is refused at load.

// `#[sabi_trait]` expands to impl blocks that current rustc reports as non-local.
#![allow(non_local_definitions)]

pub mod documents;
pub mod error;
pub mod export;
pub mod host;
pub mod kinds;
pub mod lookup;
pub mod module;
pub mod task;

pub use abi_stable;

pub use error::TaskError;
pub use export::{Guarded, TaskImpl};
pub use host::{
    HostBox, HostServices, HostServices_TO, LogRetention, LogSink, LogSinkBox, LogSink_TO,
};
pub use kinds::{
    AnswerSource, DataCategory, ErrorKind, LicenseState, LogLevel, ObjectAction, Service,
    TaskState, TransportFailure, Verdict,
};
pub use lookup::{FileQuery, KsnReply, LookupAnswer, TaskStatus};
pub use module::{KsnPlugin, KsnPluginRef, PluginInfo, CONTRACT_MINOR, CONTRACT_VERSION};
pub use task::{KsnTask, KsnTaskBox, KsnTask_TO};
