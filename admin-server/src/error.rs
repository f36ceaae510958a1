//! What the Administration Server refuses, by kind: scenarios expect a refusal by its kind
//! (`expect_error: not_found`), and the console answers each kind with its own status.

use std::fmt;

/// Why the server refused a change. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ServerError {
    pub kind: ServerErrorKind,
    pub message: String,
}

/// The kinds of the server's refusals (snake_case, stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerErrorKind {
    /// No such group, policy, revision, profile or device.
    NotFound,
    /// The name is already taken (a policy, a sibling group).
    NameTaken,
    /// A name the server does not take (empty, too long, control characters, a '/').
    InvalidName,
    /// The editor refused a policy document (it does not follow the plugin's schema).
    InvalidSettings,
    /// More than the server holds (more than 100 profiles in a policy).
    LimitExceeded,
    /// An operation the server's rules forbid (the root group has no parent to inherit).
    NotAllowed,
    /// The server's database could not record the change, so it was not made.
    NotSaved,
}

impl ServerErrorKind {
    pub const ALL: [ServerErrorKind; 7] = [
        Self::NotFound,
        Self::NameTaken,
        Self::InvalidName,
        Self::InvalidSettings,
        Self::LimitExceeded,
        Self::NotAllowed,
        Self::NotSaved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::NameTaken => "name_taken",
            Self::InvalidName => "invalid_name",
            Self::InvalidSettings => "invalid_settings",
            Self::LimitExceeded => "limit_exceeded",
            Self::NotAllowed => "not_allowed",
            Self::NotSaved => "not_saved",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ServerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ServerError {
    pub fn new(kind: ServerErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ServerErrorKind::NotFound, message)
    }

    pub fn name_taken(message: impl Into<String>) -> Self {
        Self::new(ServerErrorKind::NameTaken, message)
    }

    pub fn invalid_name(message: impl Into<String>) -> Self {
        Self::new(ServerErrorKind::InvalidName, message)
    }

    pub fn invalid_settings(message: impl Into<String>) -> Self {
        Self::new(ServerErrorKind::InvalidSettings, message)
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(ServerErrorKind::NotAllowed, message)
    }
}

/// Views show a refusal as its words.
impl From<ServerError> for String {
    fn from(error: ServerError) -> Self {
        error.to_string()
    }
}
