//! The settings of the task (SPEC §2): one table, the single source of truth for paths,
//! types, ranges, defaults and roles. Parsing, layering, explanations and the schema all
//! read it.

use std::fmt;

use plugin_api::documents::Statement;

/// One setting of the task.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Setting {
    KsnStatementAccepted,
    SendScannedFilesData,
    SendScannedUrlsData,
    SendStatistics,
    KmpStatementAccepted,
    ActionOnUntrusted,
    ChecksumLimitEnabled,
    ChecksumLimitMb,
    UseKscAsKsnProxy,
    UseKsnIfProxyUnavailable,
    Schedule,
    LookupTimeoutMs,
}

pub const SETTING_COUNT: usize = 12;

/// The type of a setting's value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int { min: u32, max: u32 },
    Choice(&'static [&'static str]),
}

/// What a setting is, beyond its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Plain,
    /// An acceptance box: its value is a consent record, not a stored value.
    Statement,
    /// A Global KSN data-handling box: unavailable while Private KSN is on (a local change
    /// is refused; a policy's value is kept and applied when Private KSN goes off).
    GlobalOnly,
    /// How requests reach Global KSN (the proxy): not applied while Private KSN is on, when
    /// the task talks only to the Private KSN service.
    GlobalRouting,
}

impl Role {
    /// Whether settings of this role govern the task while Private KSN is on.
    pub fn applies_in_private_ksn(self) -> bool {
        !matches!(self, Role::GlobalOnly | Role::GlobalRouting)
    }
}

/// A setting's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Value {
    Bool(bool),
    Int(u32),
    Choice(&'static str),
}

pub struct Descriptor {
    pub setting: Setting,
    pub section: &'static str,
    pub key: &'static str,
    pub path: &'static str,
    pub kind: Kind,
    pub default: Value,
    pub role: Role,
    pub summary: &'static str,
}

pub const ACTIONS: &[&str] = &["delete", "log"];
pub const SCHEDULES: &[&str] = &["manual", "at_application_start"];

macro_rules! descriptor {
    ($setting:ident, $section:literal, $key:literal, $kind:expr, $default:expr, $role:ident, $summary:literal) => {
        Descriptor {
            setting: Setting::$setting,
            section: $section,
            key: $key,
            path: concat!($section, ".", $key),
            kind: $kind,
            default: $default,
            role: Role::$role,
            summary: $summary,
        }
    };
}

/// In `Setting` order.
pub const TABLE: [Descriptor; SETTING_COUNT] = [
    descriptor!(KsnStatementAccepted, "data_handling", "ksn_statement_accepted", Kind::Bool, Value::Bool(false), Statement,
        "I confirm that I have fully read, understood, and accept the terms of participation in KSN (in Private KSN mode: the Private KSN statement)"),
    descriptor!(SendScannedFilesData, "data_handling", "send_scanned_files_data", Kind::Bool, Value::Bool(true), GlobalOnly,
        "send data about scanned files (file reputation requests carry the file's checksum)"),
    descriptor!(SendScannedUrlsData, "data_handling", "send_scanned_urls_data", Kind::Bool, Value::Bool(true), GlobalOnly,
        "send data about scanned URLs (URL reputation requests carry the URL)"),
    descriptor!(SendStatistics, "data_handling", "send_statistics", Kind::Bool, Value::Bool(true), GlobalOnly,
        "send statistics"),
    descriptor!(KmpStatementAccepted, "data_handling", "kmp_statement_accepted", Kind::Bool, Value::Bool(false), Statement,
        "accept the Managed Protection statement (needs the KSN statement; takes effect at the next task start)"),
    descriptor!(ActionOnUntrusted, "task", "action_on_untrusted", Kind::Choice(ACTIONS), Value::Choice("delete"), Plain,
        "delete: remove the object and keep a backup copy; log: only record it in the task log"),
    descriptor!(ChecksumLimitEnabled, "task", "checksum_limit_enabled", Kind::Bool, Value::Bool(true), Plain,
        "compute no MD5 checksum (so make no reputation request) for files larger than the limit"),
    descriptor!(ChecksumLimitMb, "task", "checksum_limit_mb", Kind::Int { min: 1, max: 1024 }, Value::Int(2), Plain,
        "the checksum size limit, in MB"),
    descriptor!(UseKscAsKsnProxy, "task", "use_ksc_as_ksn_proxy", Kind::Bool, Value::Bool(true), GlobalRouting,
        "send requests through the Administration Server's KSN proxy"),
    descriptor!(UseKsnIfProxyUnavailable, "task", "use_ksn_if_proxy_unavailable", Kind::Bool, Value::Bool(true), GlobalRouting,
        "when the proxy is down, use Global KSN directly (never in Private KSN mode)"),
    descriptor!(Schedule, "task", "schedule", Kind::Choice(SCHEDULES), Value::Choice("manual"), Plain,
        "at_application_start: the task starts by itself when the host starts, if it may"),
    descriptor!(LookupTimeoutMs, "task", "lookup_timeout_ms", Kind::Int { min: 100, max: 60000 }, Value::Int(10000), Plain,
        "a lookup that takes longer is answered unavailable (fail open)"),
];

pub const SECTIONS: &[&str] = &["data_handling", "task"];

impl Setting {
    pub const ALL: [Setting; SETTING_COUNT] = [
        Setting::KsnStatementAccepted,
        Setting::SendScannedFilesData,
        Setting::SendScannedUrlsData,
        Setting::SendStatistics,
        Setting::KmpStatementAccepted,
        Setting::ActionOnUntrusted,
        Setting::ChecksumLimitEnabled,
        Setting::ChecksumLimitMb,
        Setting::UseKscAsKsnProxy,
        Setting::UseKsnIfProxyUnavailable,
        Setting::Schedule,
        Setting::LookupTimeoutMs,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The statements an acceptance box accepts (each in its mode), and none for others.
    pub fn accepts(self) -> &'static [Statement] {
        match self {
            Setting::KsnStatementAccepted => &[Statement::Ksn, Statement::PrivateKsn],
            Setting::KmpStatementAccepted => &[Statement::Kmp],
            _ => &[],
        }
    }

    /// The statement this acceptance box accepts in a mode.
    pub fn statement_in_mode(self, private_ksn: bool) -> Option<Statement> {
        self.accepts()
            .iter()
            .copied()
            .find(|s| s.in_mode(private_ksn))
    }

    /// The data category a Global-KSN box governs, by its index among them.
    pub fn category_index(self) -> Option<usize> {
        match self {
            Setting::SendScannedFilesData => Some(0),
            Setting::SendScannedUrlsData => Some(1),
            Setting::SendStatistics => Some(2),
            _ => None,
        }
    }

    pub fn descriptor(self) -> &'static Descriptor {
        &TABLE[self.index()]
    }

    pub fn path(self) -> &'static str {
        self.descriptor().path
    }

    pub fn from_path(path: &str) -> Option<Setting> {
        TABLE.iter().find(|d| d.path == path).map(|d| d.setting)
    }

    pub fn find(section: &str, key: &str) -> Option<Setting> {
        TABLE
            .iter()
            .find(|d| d.section == section && d.key == key)
            .map(|d| d.setting)
    }

    pub fn keys_of(section: &str) -> Vec<&'static str> {
        TABLE
            .iter()
            .filter(|d| d.section == section)
            .map(|d| d.key)
            .collect()
    }

    /// Checks a JSON value against the setting's type; the error says what was expected.
    pub fn parse_value(self, json: &serde_json::Value) -> Result<Value, String> {
        match (self.descriptor().kind, json) {
            (Kind::Bool, serde_json::Value::Bool(b)) => Ok(Value::Bool(*b)),
            (Kind::Bool, other) => Err(format!("expected true or false, got {}", describe(other))),
            (Kind::Int { min, max }, serde_json::Value::Number(n)) => match n.as_u64() {
                Some(v) if v >= u64::from(min) && v <= u64::from(max) => Ok(Value::Int(v as u32)),
                _ => Err(format!("expected an integer from {min} to {max}, got {n}")),
            },
            (Kind::Int { min, max }, other) => Err(format!(
                "expected an integer from {min} to {max}, got {}",
                describe(other)
            )),
            (Kind::Choice(options), serde_json::Value::String(s)) => options
                .iter()
                .find(|o| **o == s.as_str())
                .map(|o| Value::Choice(o))
                .ok_or_else(|| {
                    format!(
                        "expected one of {}, got {}",
                        quoted(options),
                        json_string(s)
                    )
                }),
            (Kind::Choice(options), other) => Err(format!(
                "expected one of {}, got {}",
                quoted(options),
                describe(other)
            )),
        }
    }
}

impl Value {
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Choice(s) => serde_json::Value::from(s),
        }
    }

    pub fn as_bool(self) -> bool {
        matches!(self, Value::Bool(true))
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_u32(*i),
            Value::Choice(c) => s.serialize_str(c),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Choice(s) => write!(f, "\"{s}\""),
        }
    }
}

/// How a JSON value reads in an error message.
pub fn describe(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => format!("the string {}", json_string(s)),
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

/// A string as an error quotes it: as JSON, cut short when long.
fn json_string(s: &str) -> String {
    plugin_api::documents::path::quote(s)
}

fn quoted(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_in_setting_order_and_paths_are_unique() {
        for (i, d) in TABLE.iter().enumerate() {
            assert_eq!(d.setting.index(), i, "{}", d.path);
            assert_eq!(Setting::from_path(d.path), Some(d.setting));
            assert!(SECTIONS.contains(&d.section));
        }
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let default = |s: Setting| s.descriptor().default;
        assert_eq!(default(Setting::KsnStatementAccepted), Value::Bool(false));
        assert_eq!(default(Setting::SendScannedFilesData), Value::Bool(true));
        assert_eq!(default(Setting::SendScannedUrlsData), Value::Bool(true));
        assert_eq!(default(Setting::SendStatistics), Value::Bool(true));
        assert_eq!(default(Setting::KmpStatementAccepted), Value::Bool(false));
        assert_eq!(default(Setting::ActionOnUntrusted), Value::Choice("delete"));
        assert_eq!(default(Setting::ChecksumLimitEnabled), Value::Bool(true));
        assert_eq!(default(Setting::ChecksumLimitMb), Value::Int(2));
        assert_eq!(default(Setting::UseKscAsKsnProxy), Value::Bool(true));
        assert_eq!(
            default(Setting::UseKsnIfProxyUnavailable),
            Value::Bool(true)
        );
        assert_eq!(default(Setting::Schedule), Value::Choice("manual"));
        assert_eq!(default(Setting::LookupTimeoutMs), Value::Int(10000));
        for d in &TABLE {
            assert!(
                d.setting.parse_value(&d.default.to_json()).is_ok(),
                "{}",
                d.path
            );
        }
    }

    #[test]
    fn values_are_checked_against_type_and_range() {
        let mb = Setting::ChecksumLimitMb;
        assert_eq!(mb.parse_value(&json!(1)), Ok(Value::Int(1)));
        assert_eq!(mb.parse_value(&json!(1024)), Ok(Value::Int(1024)));
        assert!(mb
            .parse_value(&json!(0))
            .unwrap_err()
            .contains("from 1 to 1024"));
        assert!(mb.parse_value(&json!(1025)).is_err());
        assert!(mb.parse_value(&json!(-3)).is_err());
        assert!(mb.parse_value(&json!(2.5)).is_err());
        assert!(mb
            .parse_value(&json!("2"))
            .unwrap_err()
            .contains("the string"));
        let timeout = Setting::LookupTimeoutMs;
        assert!(timeout.parse_value(&json!(99)).is_err());
        assert_eq!(timeout.parse_value(&json!(60000)), Ok(Value::Int(60000)));
        assert!(Setting::SendStatistics
            .parse_value(&json!(1))
            .unwrap_err()
            .contains("true or false"));
        assert_eq!(
            Setting::ActionOnUntrusted.parse_value(&json!("log")),
            Ok(Value::Choice("log"))
        );
        assert!(Setting::ActionOnUntrusted
            .parse_value(&json!("quarantine"))
            .unwrap_err()
            .contains("\"delete\", \"log\""));
        assert!(Setting::Schedule.parse_value(&json!(null)).is_err());
    }
}
