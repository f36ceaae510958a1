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

pub const PLUGIN_NAME: &str = "ksn-usage-task";
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

plugin_api::export_ksn_plugin! {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    factory: abi::new_task,
    describe: crate::core::schema::description,
}
