//! The stable-ABI contract between the KSN Usage task plugin and its host.
//!
//! Both sides of the boundary, and nothing else:
//!
//! - what crosses it: the root module ([`KsnPlugin`]), the task ([`KsnTask`]) and the
//!   host's services ([`HostServices`]) as stable-ABI trait objects, the typed values of
//!   the lookup path, and every JSON document as a serde type ([`documents`]);
//! - the plugin's side: [`TaskImpl`], what a plugin implements, and
//!   [`export_ksn_plugin!`], which exports it with the log forwarder installed first and
//!   every panic turned into `plugin_panic`;
//! - the host's side: [`loader`], which finds and loads a plugin and says in one line why
//!   one cannot be loaded.
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
pub mod guard;
pub mod host;
pub mod kinds;
pub mod loader;
pub mod lookup;
pub mod module;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;

pub use abi_stable;

pub use error::TaskError;
pub use guard::Guarded;
pub use host::{
    HostBox, HostServices, HostServices_TO, LogRetention, LogSink, LogSinkBox, LogSink_TO,
    KEEPS_NO_EVENTS,
};
pub use kinds::{
    AnswerSource, DataCategory, ErrorKind, LicenseState, LogLevel, ObjectAction, Operation,
    Service, TaskState, TransportFailure, Verdict,
};
pub use lookup::{
    CallOutcome, ControlCall, FileQuery, KsnReply, LookupAnswer, ObjectAnswer, ObjectRef,
    TaskStatus,
};
pub use module::{KsnPlugin, KsnPluginRef, PluginInfo, CONTRACT_MINOR, CONTRACT_VERSION};
pub use task::{KsnTask, KsnTaskBox, KsnTask_TO, TaskImpl};
