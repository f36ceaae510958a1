//! The KSN Usage task plugin.
//!
//! `core` is the task itself, pure and host-driven; `abi` is the thin shell that exposes it
//! through the stable-ABI contract of `plugin-api`, and `capi` the flat C API beside it for
//! C and C++ hosts. Built as a cdylib (what hosts load) and an rlib (what the in-process
//! benchmark and unit tests use).

pub mod abi;
pub mod capi;
pub mod core;

pub use crate::core::{Host, Task};

/// The policy documents the tasks of this process read, shared by both shells' tasks (the
/// core holds no statics; this is the one place that does).
pub(crate) fn shared_policies() -> std::sync::Arc<core::doc::LastPolicy> {
    static POLICIES: std::sync::OnceLock<std::sync::Arc<core::doc::LastPolicy>> =
        std::sync::OnceLock::new();
    POLICIES.get_or_init(Default::default).clone()
}

pub const PLUGIN_NAME: &str = "ksn-usage-task";
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

plugin_api::export_ksn_plugin! {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    factory: abi::new_task,
    describe: crate::core::schema::description,
}
