use std::fmt;

use abi_stable::{std_types::RString, StableAbi};

use crate::kinds::ErrorKind;

/// An error that crosses the ABI: a stable kind and a one-line message for people.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl TaskError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: RString::from(message.to_string()),
        }
    }

    pub fn invalid_state(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::INVALID_STATE, message)
    }

    pub fn invalid_settings(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::INVALID_SETTINGS, message)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TaskError {}
