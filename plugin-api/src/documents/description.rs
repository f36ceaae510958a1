//! What a plugin says about itself through the root module's `describe`: its settings (so a
//! host needs no change when a newer plugin adds one), the schemas of its settings
//! documents, and the texts of the statements the administrator accepts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::settings::Statement;

/// A plugin's description of itself.
///
/// ```
/// use plugin_api::documents::{read_document, PluginDescription, ValueType};
///
/// let description: PluginDescription = read_document("describe", r#"{
///   "settings": [{"path": "task.checksum_limit_mb",
///                 "value_type": {"type": "integer", "minimum": 1, "maximum": 1024},
///                 "default": 2, "role": "plain", "meaning": "the checksum size limit, in MB"}],
///   "policy_schema": {"type": "object"},
///   "local_schema": {"type": "object"},
///   "statements": [{"statement": "ksn", "version": 1, "title": "KSN Statement", "text": "…"}]
/// }"#).unwrap();
/// let limit = description.setting("task.checksum_limit_mb").unwrap();
/// assert_eq!(limit.value_type, ValueType::Integer { minimum: 1, maximum: 1024 });
/// assert_eq!((limit.section(), limit.key()), ("task", "checksum_limit_mb"));
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PluginDescription {
    /// Every setting, in the plugin's order.
    pub settings: Vec<SettingDescription>,
    /// The JSON Schema of a policy (`push_policy`).
    pub policy_schema: Json,
    /// The JSON Schema of a local change (`set_local`).
    pub local_schema: Json,
    /// The statements the administrator reads and accepts, each with its version.
    pub statements: Vec<StatementText>,
}

impl PluginDescription {
    pub fn setting(&self, path: &str) -> Option<&SettingDescription> {
        self.settings.iter().find(|s| s.path == path)
    }

    pub fn statement(&self, statement: Statement) -> Option<&StatementText> {
        self.statements.iter().find(|s| s.statement == statement)
    }
}

/// One setting: its path, type and range, default and meaning.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SettingDescription {
    /// `section.key`.
    pub path: String,
    pub value_type: ValueType,
    pub default: Json,
    pub role: SettingRole,
    /// What the setting does, in a sentence.
    pub meaning: String,
    /// For an acceptance box, the statements it accepts, each in its mode
    /// ([`Statement::in_mode`]): a policy's acceptance names the version of each it
    /// accepts. Empty for other settings, and for plugins older than 1.3.0 (whose policies
    /// carry no versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepts: Vec<Statement>,
}

impl SettingDescription {
    pub fn section(&self) -> &str {
        self.path.split_once('.').map_or("", |(section, _)| section)
    }

    pub fn key(&self) -> &str {
        self.path.split_once('.').map_or(&self.path, |(_, key)| key)
    }

    /// The statement this box accepts in a mode, if it accepts one then.
    pub fn statement_in_mode(&self, private_ksn: bool) -> Option<Statement> {
        self.accepts
            .iter()
            .copied()
            .find(|s| s.in_mode(private_ksn))
    }
}

/// The type of a setting's values.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ValueType {
    Boolean,
    Integer { minimum: u64, maximum: u64 },
    Choice { options: Vec<String> },
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueType::Boolean => write!(f, "true or false"),
            ValueType::Integer { minimum, maximum } => {
                write!(f, "an integer from {minimum} to {maximum}")
            }
            ValueType::Choice { options } => {
                let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                write!(f, "one of {}", quoted.join(", "))
            }
        }
    }
}

/// What a setting is, beyond its value.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SettingRole {
    Plain,
    /// An acceptance box: its value is a consent record.
    Statement,
    /// A Global KSN data-handling box: unavailable while Private KSN is on.
    GlobalOnly,
    /// How requests reach Global KSN: not applied while Private KSN is on.
    GlobalRouting,
}

/// A statement as the administrator reads it before accepting.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct StatementText {
    pub statement: Statement,
    /// Acceptances are of one version; a new version needs a new acceptance.
    pub version: u32,
    pub title: String,
    pub text: String,
}
