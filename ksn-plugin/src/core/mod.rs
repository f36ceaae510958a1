//! The pure core of the KSN Usage task: no I/O, no clock, no statics. Everything outside
//! comes through the `Host` it is given.

pub mod cache;
pub mod clock;
pub mod consent;
pub mod control;
pub mod doc;
pub mod egress;
pub mod explain;
pub mod host;
pub mod importance;
pub mod journal;
pub mod layers;
pub mod oddities;
pub mod outbox;
pub mod reconcile;
pub mod reputation;
pub mod route;
pub mod schema;
pub mod snapshot;
pub mod statements;
pub mod stored;
pub mod table;
pub mod task;

pub use host::Host;

#[cfg(test)]
mod calls_tests;
#[cfg(test)]
mod fail_closed_tests;
#[cfg(test)]
mod journal_properties;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod statement_tests;
#[cfg(test)]
mod task_tests;
pub use task::Task;
