//! Reading a plugin's answer: a malformed document is one line naming the method and the
//! JSON path, never a blank view.

use std::fmt;

use serde::de::DeserializeOwned;

use super::path::{join, one_line};

/// A document a plugin answered with that does not have the contract's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The method whose answer it was (`settings_json`).
    pub method: String,
    /// Where in the document (`details["task.schedule"].value`); empty for the whole.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.method, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.method, self.path, self.reason)
        }
    }
}

impl std::error::Error for DocumentError {}

/// Parses the document `method` answered as `T`.
///
/// ```
/// use plugin_api::documents::{read_document, Counters};
///
/// let counters: Counters = read_document(
///     "counters_json",
///     r#"{"cache_entries": 3, "queued_statistics": 0, "queued_kmp": 0, "ledger_items": 7}"#,
/// )
/// .unwrap();
/// assert_eq!(counters.ledger_items, 7);
///
/// let err = read_document::<Counters>("counters_json", r#"{"cache_entries": "three"}"#)
///     .unwrap_err();
/// assert_eq!(err.path, "cache_entries");
/// assert!(err.to_string().starts_with("counters_json: cache_entries: invalid type"));
/// ```
pub fn read_document<T: DeserializeOwned>(method: &str, text: &str) -> Result<T, DocumentError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|e| {
        let mut path = String::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => path = join(&path, key),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        DocumentError {
            method: method.to_string(),
            path: one_line(&path),
            reason: one_line(&e.inner().to_string()),
        }
    })?;
    deserializer.end().map_err(|e| DocumentError {
        method: method.to_string(),
        path: String::new(),
        reason: one_line(&e.to_string()),
    })?;
    Ok(value)
}
