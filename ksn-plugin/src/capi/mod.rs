//! The C ABI: a flat C API over the same core `Task` as the Rust contract (`abi`), for C
//! and C++ hosts. Declared in `include/ksn_usage_task.h`, generated from this module by
//! cbindgen; described for host authors in `docs/loading-from-c.md`.
//!
//! Versioned both ways: every struct starts with its size, and fields and functions are
//! only ever appended. Errors are the Rust contract's kinds, as integers, with a message.
//! No panic crosses: every function contains it, and a task that panicked stays failed.

pub mod agreement;
pub mod call;
pub mod entry;
pub mod handle;
pub mod host;
pub mod logger;
pub mod plugin;
pub mod signatures;
pub mod sized;
pub mod strings;
pub mod types;
pub mod versions;

pub use entry::*;
pub use handle::KsnTask;
pub use logger::ksn_install_logger;
pub use plugin::{ksn_describe, ksn_document_schema, ksn_error_kind_name, ksn_plugin_info};
pub use signatures::*;
pub use strings::{ksn_error_free, ksn_string_free};
pub use types::*;
