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

/// A number in a query string, where an empty field (a form's blank input) means none.
pub fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    use serde::Deserialize;
    let text = Option::<String>::deserialize(deserializer)?;
    match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a whole number, got {t:?}"))),
    }
}
