//! The smallest honest KSN Usage task: a second plugin for the contract in `plugin-api`,
//! written from the contract alone. `docs/writing-a-plugin.md` walks through it.
//!
//! What it does:
//!
//! - four settings (`settings.rs`): the KSN statement's acceptance box, the files box,
//!   the lookup timeout and the schedule, described through `describe` with the schemas of
//!   policies and local changes and the statement's text;
//! - policies and local changes read whole and strictly (an error names its JSON path, and
//!   changes nothing); locked settings refused locally (`locked_by_policy`);
//! - the start gate: the KSN statement accepted and a licence covering KSN;
//! - one lookup path: `check_file` asks Global KSN while running and the files category is
//!   allowed; `check_url` answers from the device's list or `unknown`;
//! - the task log and the settings in the host's storage (`task.rs`), so both survive a
//!   restart of the host; every entry is also emitted as an event, in order;
//! - the ledger of what it sent, and the counters.
//!
//! What it leaves out, on purpose: Private KSN (while the host reports it in use the task
//! does not run, and sends nothing), statistics and Managed Protection data, the proxy,
//! a verdict cache, deleting untrusted files (it logs them).

mod settings;
mod task;

pub use settings::{description, KSN_ACCEPTED, LOOKUP_TIMEOUT, SCHEDULE, SEND_FILES};
pub use task::{MinimalTask, JOURNAL};

plugin_api::export_ksn_plugin! {
    name: "minimal-ksn-usage-task",
    version: env!("CARGO_PKG_VERSION"),
    factory: MinimalTask::new,
    describe: description,
}

#[cfg(test)]
mod tests;
