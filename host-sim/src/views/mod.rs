//! The read model: what the consoles show, computed once from the world and rendered by
//! each face (the text console's lines, the Web Console's pages, the JSON API), so the
//! faces agree on every count and every list.

pub mod actions;
pub mod consent;
pub mod csv;
pub mod devices;
pub mod events;
pub mod groups;
pub mod policies;
pub mod server;
pub mod task;

pub use actions::*;
pub use consent::*;
pub use devices::*;
pub use events::*;
pub use groups::*;
pub use policies::*;
pub use server::*;
