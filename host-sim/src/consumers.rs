//! Two of the application's tasks that ask the KSN Usage task for reputation, the way the
//! real ones do: on-access file protection and application launch control.

use std::collections::HashSet;

use plugin_api::{
    FileQuery, KsnTaskBox, LookupAnswer, ObjectAction, ObjectRef, TaskError, Verdict,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What on-access protection did with a file being opened.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Opened (trusted, unknown, or no answer: protection fails open).
    Allowed,
    /// The file was untrusted and deleted; the open fails.
    Blocked,
    /// The file was untrusted and only logged; the open goes ahead.
    AllowedAndLogged,
}

/// On-access file protection: every file opened is looked up, as the object being opened;
/// the KSN Usage task applies the configured action to that object when it is untrusted.
pub fn open_file(
    task: &KsnTaskBox,
    query: FileQuery,
    object: ObjectRef<'_>,
) -> Result<(Access, LookupAnswer), TaskError> {
    let answer = task.check_object(query, object).into_result()?.answer;
    let access = match (answer.verdict, answer.action) {
        (Verdict::UNTRUSTED, ObjectAction::DELETED) => Access::Blocked,
        (Verdict::UNTRUSTED, _) => Access::AllowedAndLogged,
        _ => Access::Allowed,
    };
    Ok((access, answer))
}

/// Application launch control's rules and its use of KSN.
#[derive(Deserialize, JsonSchema, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct LaunchControlSpec {
    /// Deny applications KSN says are untrusted.
    #[serde(default)]
    pub deny_untrusted_by_ksn: bool,
    /// Allow applications KSN says are trusted.
    #[serde(default)]
    pub allow_trusted_by_ksn: bool,
    /// Allow rules (MD5 checksums).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Deny rules (MD5 checksums); a deny rule always wins.
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Launch {
    Allowed,
    Denied,
}

pub struct LaunchControl {
    deny_untrusted_by_ksn: bool,
    allow_trusted_by_ksn: bool,
    allow: HashSet<[u8; 16]>,
    deny: HashSet<[u8; 16]>,
}

impl LaunchControl {
    pub fn from_spec(spec: &LaunchControlSpec) -> Result<Self, String> {
        let parse = |list: &[String], name: &str| {
            list.iter()
                .enumerate()
                .map(|(i, md5)| {
                    FileQuery::parse_md5(md5)
                        .map_err(|e| format!("launch_control.{name}[{i}]: {e}"))
                })
                .collect::<Result<HashSet<_>, _>>()
        };
        Ok(Self {
            deny_untrusted_by_ksn: spec.deny_untrusted_by_ksn,
            allow_trusted_by_ksn: spec.allow_trusted_by_ksn,
            allow: parse(&spec.allow, "allow")?,
            deny: parse(&spec.deny, "deny")?,
        })
    }

    /// Default deny: an application runs if a rule or KSN allows it and nothing denies it.
    /// A deny rule always wins; KSN is asked only when it can change the decision.
    pub fn launch(
        &self,
        task: &KsnTaskBox,
        query: FileQuery,
        object: ObjectRef<'_>,
    ) -> Result<(Launch, Option<LookupAnswer>), TaskError> {
        if self.deny.contains(&query.md5) {
            return Ok((Launch::Denied, None));
        }
        let ruled_allowed = self.allow.contains(&query.md5);
        if !self.deny_untrusted_by_ksn && (ruled_allowed || !self.allow_trusted_by_ksn) {
            return Ok((
                if ruled_allowed {
                    Launch::Allowed
                } else {
                    Launch::Denied
                },
                None,
            ));
        }
        let answer = task.check_object(query, object).into_result()?.answer;
        let decision = match answer.verdict {
            Verdict::UNTRUSTED if self.deny_untrusted_by_ksn => Launch::Denied,
            Verdict::TRUSTED if self.allow_trusted_by_ksn => Launch::Allowed,
            _ if ruled_allowed => Launch::Allowed,
            _ => Launch::Denied,
        };
        Ok((decision, Some(answer)))
    }
}
