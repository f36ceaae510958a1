//! Settings documents: what a host sends (policies, local changes) and what it reads back
//! (the settings view).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Where a setting's value, or a consent decision, came from.
///
/// Read strictly by default (what people write); the documents a plugin writes read it
/// with [`Source::lenient`], so that a source a newer contract adds shows as
/// `Unrecognised` instead of making the whole document unreadable (from 1.4.0).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The setting's default (or, for a statement, never accepted).
    Default,
    /// The administrator's policy.
    Policy,
    /// A local change on the device.
    Local,
    /// The Private KSN mode changed, so the acceptance of the other mode's statement lapsed.
    ModeChange,
    /// A plugin update brought a new version of the statement, so the acceptance of the old
    /// one no longer counts.
    StatementChanged,
    /// The task was created after a session that may have ended (killed, or with a
    /// narrowing still waiting for storage) without recording every narrowing, over a host
    /// that keeps no events to prove otherwise: the acceptance ended, failing closed, and
    /// must be confirmed again (added in 1.4.0).
    UnverifiedRestart,
    /// A source this contract does not know, read leniently from a newer plugin's
    /// document. No plugin writes it.
    #[schemars(skip)]
    Unrecognised,
}

impl Source {
    /// Every source this contract version knows.
    pub const ALL: [Source; 6] = [
        Source::Default,
        Source::Policy,
        Source::Local,
        Source::ModeChange,
        Source::StatementChanged,
        Source::UnverifiedRestart,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Policy => "policy",
            Source::Local => "local",
            Source::ModeChange => "mode_change",
            Source::StatementChanged => "statement_changed",
            Source::UnverifiedRestart => "unverified_restart",
            Source::Unrecognised => "unrecognised",
        }
    }

    /// Reads a source a plugin wrote: a name this contract does not know (a newer
    /// plugin's) is `Unrecognised`, not an error.
    pub fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        Ok(Source::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(Source::Unrecognised))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement the administrator can accept.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Statement {
    /// The KSN Statement (Global KSN, directly or through the Administration Server's proxy).
    Ksn,
    /// The Private KSN Statement: every category of data to the Private KSN services.
    PrivateKsn,
    /// The Managed Protection statement; needs the KSN statement.
    Kmp,
}

impl Statement {
    /// The statement the KSN acceptance box accepts in a mode.
    pub fn for_mode(private_ksn: bool) -> Self {
        if private_ksn {
            Statement::PrivateKsn
        } else {
            Statement::Ksn
        }
    }

    /// Whether an acceptance box accepts this statement in a mode: the KSN statement in
    /// Global KSN mode, the Private KSN statement in Private KSN mode, Managed Protection
    /// in both.
    pub fn in_mode(self, private_ksn: bool) -> bool {
        match self {
            Statement::Ksn => !private_ksn,
            Statement::PrivateKsn => private_ksn,
            Statement::Kmp => true,
        }
    }

    /// How the statement reads in a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Statement::Ksn => "the KSN statement",
            Statement::PrivateKsn => "the Private KSN statement",
            Statement::Kmp => "the Managed Protection statement",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Statement::Ksn => "ksn",
            Statement::PrivateKsn => "private_ksn",
            Statement::Kmp => "kmp",
        }
    }
}

/// The version of each statement an acceptance accepts, by statement: `{"ksn": 1}`, or
/// `{"ksn": 1, "private_ksn": 1}` for a box that accepts the Private KSN statement in
/// Private KSN mode and the administrator read both.
pub type StatementVersions = BTreeMap<Statement, u32>;

/// A policy, as `push_policy` takes it: settings by section and key, each a plain value
/// (applied at each push, changeable locally until the next) or `{"value": v, "locked":
/// true}` (enforced: a local change to another value is refused).
///
/// **An acceptance names what was read.** A policy value of an acceptance box (a setting
/// whose description has the role `statement`) that accepts (`true`) carries `"versions"`:
/// the version of each statement the administrator read in the policy editor, as the
/// editor showed it when the box was ticked. A plugin refuses an acceptance without it
/// (`invalid_settings`, naming the path and the version to state), and an acceptance of a
/// version other than the one it ships, or of no statement of the device's mode, is not in
/// force: the box reads false until an acceptance of the shipped version arrives. A host
/// stores the document with its versions and re-sends it unchanged.
///
/// Which sections, keys and values a plugin accepts is in its own schema
/// ([`PluginDescription::policy_schema`](super::PluginDescription)); which statements a box
/// accepts is in its description ([`SettingDescription::accepts`](super::SettingDescription)).
///
/// ```
/// use plugin_api::documents::{PolicyDocument, PolicyValue, Statement};
///
/// let policy: PolicyDocument = serde_json::from_str(r#"{"settings": {"data_handling": {
///     "ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}},
///     "send_statistics": false}}}"#).unwrap();
/// let accepted = &policy.settings["data_handling"]["ksn_statement_accepted"];
/// assert_eq!((accepted.value(), accepted.locked()), (&serde_json::json!(true), true));
/// assert_eq!(accepted.versions().unwrap()[&Statement::Ksn], 1);
/// assert!(!policy.settings["data_handling"]["send_statistics"].locked());
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default, deserialize_with = "super::strict::sections")]
    pub settings: BTreeMap<String, BTreeMap<String, PolicyValue>>,
}

/// One value of a policy. Read strictly: an object is `{"value": v, "locked": b,
/// "versions": {...}}` and nothing else (`locked` defaults to false, `versions` is for
/// acceptances), so `{"value": true, "lockd": true}` is an error, not an unlocked value.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum PolicyValue {
    /// `{"value": v, "locked": b}`, and for an acceptance `"versions"`.
    Wrapped {
        value: Json,
        /// Enforced: a local change to another value is refused.
        #[serde(default)]
        locked: bool,
        /// An acceptance's statement versions, as the policy editor showed them (added in
        /// 1.3.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        versions: Option<StatementVersions>,
    },
    /// A plain value: applied at each push, changeable locally until the next.
    Plain(Json),
}

impl PolicyValue {
    pub fn value(&self) -> &Json {
        match self {
            PolicyValue::Wrapped { value, .. } | PolicyValue::Plain(value) => value,
        }
    }

    pub fn locked(&self) -> bool {
        matches!(self, PolicyValue::Wrapped { locked: true, .. })
    }

    /// The statement versions an acceptance names, if any.
    pub fn versions(&self) -> Option<&StatementVersions> {
        match self {
            PolicyValue::Wrapped { versions, .. } => versions.as_ref(),
            PolicyValue::Plain(_) => None,
        }
    }
}

/// A local change, as `set_local` takes it: plain values by section and key. A local
/// acceptance (`true` in an acceptance box) accepts the version of the statement the
/// device shows; it may name it, as `{"value": true, "versions": {"ksn": 2}}`, and a plugin
/// refuses one naming another version.
///
/// ```
/// use plugin_api::documents::LocalChange;
/// let change: LocalChange =
///     serde_json::from_str(r#"{"data_handling": {"ksn_statement_accepted": false}}"#).unwrap();
/// assert_eq!(change.0["data_handling"]["ksn_statement_accepted"], false);
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
pub struct LocalChange(
    #[serde(deserialize_with = "super::strict::sections")]
    pub  BTreeMap<String, BTreeMap<String, Json>>,
);

/// The settings as the host reads them (`settings_json`): the effective values, and for
/// each setting where its value comes from, whether it is locked and applies now, and why.
///
/// ```
/// use plugin_api::documents::{read_document, SettingsView, Source};
///
/// let view: SettingsView = read_document("settings_json", r#"{
///   "private_ksn": false,
///   "settings": {"task": {"schedule": "manual"}},
///   "locked": [],
///   "details": {"task.schedule": {
///     "value": "manual", "source": "default", "locked": false, "applies": true,
///     "why": "default value", "policy_value": null, "default": "manual",
///     "meaning": "at_application_start: the task starts by itself when the host starts"}}
/// }"#).unwrap();
/// let schedule = view.setting("task.schedule").unwrap();
/// assert_eq!((schedule.source, schedule.locked), (Source::Default, false));
/// ```
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SettingsView {
    /// Whether Private KSN is in use (the Global-KSN settings do not apply then).
    pub private_ksn: bool,
    /// The effective values, by section and key: a valid local change as it is.
    pub settings: BTreeMap<String, BTreeMap<String, Json>>,
    /// The paths the policy in force locks.
    pub locked: Vec<String>,
    /// Every setting, by dotted path.
    pub details: BTreeMap<String, SettingView>,
}

impl SettingsView {
    /// One setting by dotted path (`data_handling.send_statistics`).
    pub fn setting(&self, path: &str) -> Option<&SettingView> {
        self.details.get(path)
    }

    /// Every setting's dotted path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.details.keys().map(String::as_str)
    }
}

/// One setting in the settings view.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SettingView {
    /// The effective value.
    pub value: Json,
    /// Where it comes from; for an acceptance box, who accepted (or ended the acceptance).
    #[serde(deserialize_with = "Source::lenient")]
    pub source: Source,
    /// Locked by the policy in force.
    pub locked: bool,
    /// Whether it governs the task in the current mode.
    pub applies: bool,
    /// The reason for all of the above, in words.
    pub why: String,
    /// The policy's value, locked or not, if the policy in force sets it.
    pub policy_value: Option<Json>,
    pub default: Json,
    /// What the setting does.
    pub meaning: String,
}
