//! Small closed-for-now vocabularies that cross the ABI as integers.
//!
//! Each is a `#[repr(transparent)]` newtype with named constants rather than a Rust enum:
//! a later contract may add a value, and an older host must be able to receive it without
//! undefined behaviour (it shows as `unrecognised`).

use std::fmt;

use abi_stable::StableAbi;

macro_rules! abi_vocabulary {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($repr:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// Every value this contract version knows.
            pub const ALL: &'static [Self] = &[$(Self::$konst),*];

            /// What a name from a newer contract reads as in a document from a plugin
            /// (`lenient`): shown as `unrecognised`.
            pub const UNRECOGNISED: Self = Self(<$repr>::MAX);

            /// Reads a name leniently, for documents a plugin writes: a name a newer
            /// contract added is `UNRECOGNISED`, so one new value does not make a whole
            /// task log unreadable to an older host. Input a person writes (scenarios)
            /// is read strictly.
            pub fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::from_name(&text).unwrap_or(Self::UNRECOGNISED))
            }

            /// `lenient`, for an optional value.
            pub fn lenient_option<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Option<Self>, D::Error> {
                let text =
                    <Option<std::borrow::Cow<'de, str>> as serde::Deserialize>::deserialize(d)?;
                Ok(text.map(|t| Self::from_name(&t).unwrap_or(Self::UNRECOGNISED)))
            }

            /// The stable snake_case name (SPEC vocabulary).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$konst => $text, )*
                    _ => "unrecognised",
                }
            }

            /// The value with this name, if this contract version knows it.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some(Self::$konst), )*
                    _ => None,
                }
            }

            /// The names this contract version knows, for error messages.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": Self::names()})
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_name(&text).ok_or_else(|| {
                    serde::de::Error::custom(format_args!(
                        "unknown {} `{}`, expected one of: {}",
                        stringify!($name),
                        text,
                        Self::names().join(", ")
                    ))
                })
            }
        }
    };
}

abi_vocabulary! {
    /// Why an operation failed (SPEC §3, "Error kinds").
    pub struct ErrorKind(u8) {
        STATEMENT_NOT_ACCEPTED = 1 => "statement_not_accepted",
        LICENSE_VIOLATION = 2 => "license_violation",
        LOCKED_BY_POLICY = 3 => "locked_by_policy",
        UNAVAILABLE_IN_PRIVATE_KSN = 4 => "unavailable_in_private_ksn",
        INVALID_SETTINGS = 5 => "invalid_settings",
        INVALID_STATE = 6 => "invalid_state",
        PLUGIN_PANIC = 7 => "plugin_panic",
        KSN_UNAVAILABLE = 8 => "ksn_unavailable",
        /// The host's storage refused a write or holds a damaged record.
        STORAGE_ERROR = 9 => "storage_error",
        /// The plugin does not implement this method of the contract.
        NOT_IMPLEMENTED = 10 => "not_implemented",
        /// The host's mistake: an argument the plugin cannot use (a null or misaligned
        /// pointer, a `struct_size` too small, a missing callback, a URL that is empty,
        /// malformed or holds a NUL, a value of a vocabulary the contract does not know).
        /// Nothing changed (added in 1.3.0).
        INVALID_ARGUMENT = 11 => "invalid_argument",
    }
}

abi_vocabulary! {
    /// The task's state.
    pub struct TaskState(u8) {
        STOPPED = 0 => "stopped",
        RUNNING = 1 => "running",
        FAILED = 2 => "failed",
    }
}

abi_vocabulary! {
    /// A reputation answer.
    pub struct Verdict(u8) {
        UNKNOWN = 0 => "unknown",
        TRUSTED = 1 => "trusted",
        UNTRUSTED = 2 => "untrusted",
        /// No answer could be had (task not running, network unreachable, timeout):
        /// the asking task fails open.
        UNAVAILABLE = 3 => "unavailable",
    }
}

abi_vocabulary! {
    /// What was done to an object found untrusted.
    pub struct ObjectAction(u8) {
        NONE = 0 => "none",
        DELETED = 1 => "deleted",
        LOGGED = 2 => "logged",
        /// The object was to be deleted, but the host's `backup_and_delete` failed: it is
        /// still there (the event says why). Added in 1.3.0.
        DELETE_FAILED = 3 => "delete_failed",
    }
}

abi_vocabulary! {
    /// A control call (`KsnTask::control`), each the method of the same name.
    pub struct Operation(u8) {
        PUSH_POLICY = 1 => "push_policy",
        SET_LOCAL = 2 => "set_local",
        SET_PRIVATE_KSN = 3 => "set_private_ksn",
        SET_LICENSE = 4 => "set_license",
        APPLICATION_STARTED = 5 => "application_started",
        START = 6 => "start",
        STOP = 7 => "stop",
    }
}

abi_vocabulary! {
    /// A reputation service, or none.
    pub struct Service(u8) {
        NONE = 0 => "none",
        GLOBAL = 1 => "global",
        PROXY = 2 => "proxy",
        PRIVATE = 3 => "private",
    }
}

abi_vocabulary! {
    /// The licence as the host reports it.
    pub struct LicenseState(u8) {
        /// The host has not said yet; the task treats it as not covering KSN.
        UNKNOWN = 0 => "unknown",
        VALID = 1 => "valid",
        EXPIRED = 2 => "expired",
        /// A valid licence whose terms do not include KSN.
        NO_KSN = 3 => "no_ksn",
    }
}

abi_vocabulary! {
    /// Why the host's transport could not deliver a request.
    pub struct TransportFailure(u8) {
        /// Connection refused or no route: nothing was delivered.
        UNREACHABLE = 1 => "unreachable",
        /// Delivered, but no answer within the time allowed.
        TIMED_OUT = 2 => "timed_out",
    }
}

abi_vocabulary! {
    /// A category of data that leaves the device; each needs its own consent.
    pub struct DataCategory(u8) {
        FILES = 1 => "files",
        URLS = 2 => "urls",
        STATISTICS = 3 => "statistics",
        KMP = 4 => "kmp",
    }
}

abi_vocabulary! {
    /// Which layer of the merge gave the verdict; for an answer no layer could give, why
    /// (from 1.4.0; an older plugin answers `none`).
    pub struct AnswerSource(u8) {
        /// Nothing was asked (a file over the checksum limit, an overlong URL).
        NONE = 0 => "none",
        LOCAL_LIST = 1 => "local_list",
        PRIVATE_DATABASE = 2 => "private_database",
        KSN = 3 => "ksn",
        /// `unavailable`: the task is not running (stopped or failed: its status says
        /// why). Added in 1.4.0.
        NOT_RUNNING = 4 => "not_running",
        /// `unknown`: the category's data may not leave (its box is cleared, or its
        /// withdrawal is in force), so only the local list and the cache were asked.
        /// Added in 1.4.0.
        NOT_CONSENTED = 5 => "not_consented",
        /// `unavailable`: no service answered (unreachable, or not within the lookup
        /// timeout): a KSN outage. Added in 1.4.0.
        SERVICE_DOWN = 6 => "service_down",
    }
}

abi_vocabulary! {
    /// Log levels, numbered as in the `log` crate.
    pub struct LogLevel(u8) {
        OFF = 0 => "off",
        ERROR = 1 => "error",
        WARN = 2 => "warn",
        INFO = 3 => "info",
        DEBUG = 4 => "debug",
        TRACE = 5 => "trace",
    }
}

impl LogLevel {
    pub fn to_log(self) -> Option<log::Level> {
        match self {
            Self::ERROR => Some(log::Level::Error),
            Self::WARN => Some(log::Level::Warn),
            Self::INFO => Some(log::Level::Info),
            Self::DEBUG => Some(log::Level::Debug),
            Self::TRACE => Some(log::Level::Trace),
            _ => None,
        }
    }

    pub fn from_filter(filter: log::LevelFilter) -> Self {
        Self(filter as usize as u8)
    }

    pub fn to_filter(self) -> log::LevelFilter {
        match self.to_log() {
            Some(level) => level.to_level_filter(),
            None => log::LevelFilter::Off,
        }
    }
}

impl From<log::Level> for LogLevel {
    fn from(level: log::Level) -> Self {
        Self(level as usize as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(ErrorKind(200).as_str(), "unrecognised");
        assert_eq!(Verdict::from_name("trusted"), Some(Verdict::TRUSTED));
        assert_eq!(Verdict::from_name("Trusted"), None);
    }

    #[test]
    fn log_levels_match_the_log_crate() {
        assert_eq!(LogLevel::from(log::Level::Warn), LogLevel::WARN);
        assert_eq!(LogLevel::WARN.to_log(), Some(log::Level::Warn));
        assert_eq!(LogLevel::from_filter(log::LevelFilter::Off), LogLevel::OFF);
        assert_eq!(LogLevel::TRACE.to_filter(), log::LevelFilter::Trace);
    }
}
