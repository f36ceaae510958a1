//! Lookups, and the two tasks of the application that ask for them: on-access file
//! protection and application launch control.

use plugin_api::{
    documents::path::one_line, AnswerSource, FileQuery, LookupAnswer, ObjectAction, Verdict,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{lookup_of, number, usage, Mismatch, StepError, StepKind};
use crate::{
    consumers::{Access, Launch},
    world::{Answer, Answers, World},
};

/// What a lookup must answer.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AnswerExpect {
    pub verdict: Verdict,
    #[serde(default)]
    pub action: Option<ObjectAction>,
    /// Which merge layer decided (`local_list`, `private_database`, `ksn`, `none`).
    #[serde(default)]
    pub source: Option<AnswerSource>,
    /// Whether the answer came from the cache.
    #[serde(default)]
    pub cached: Option<bool>,
}

#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AccessExpect {
    pub access: Access,
}

#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LaunchExpect {
    pub decision: Launch,
}

fn query(md5: &str, size_bytes: u64) -> Result<FileQuery, String> {
    Ok(FileQuery {
        md5: FileQuery::parse_md5(md5).map_err(|e| format!("md5: {e}"))?,
        size_bytes,
    })
}

fn valid_md5(md5: &str, path: &str) -> Result<(), String> {
    FileQuery::parse_md5(md5)
        .map(|_| ())
        .map_err(|e| one_line(&format!("{path}.md5: {e}")))
}

/// `<md5> [size_bytes]`, 4096 bytes by default.
fn file_fields(words: &[&str]) -> Option<Result<Map<String, Json>, String>> {
    let [md5, size @ ..] = words else { return None };
    Some(size.first().map(|s| number(s)).transpose().map(|size| {
        Map::from_iter([
            ("md5".into(), Json::from(*md5)),
            ("size_bytes".into(), Json::from(size.unwrap_or(4096))),
        ])
    }))
}

fn check_answer(found: &LookupAnswer, expect: &AnswerExpect) -> Result<(), Mismatch> {
    if found.verdict != expect.verdict {
        return Err((
            "verdict",
            expect.verdict.to_string(),
            found.verdict.to_string(),
        ));
    }
    if let Some(action) = expect.action.filter(|a| *a != found.action) {
        return Err(("action", action.to_string(), found.action.to_string()));
    }
    if let Some(source) = expect.source.filter(|s| *s != found.source) {
        return Err(("source", source.to_string(), found.source.to_string()));
    }
    if let Some(cached) = expect.cached.filter(|c| *c != found.cached) {
        return Err(("cached", cached.to_string(), found.cached.to_string()));
    }
    Ok(())
}

/// File reputation: `expect` checks `verdict`, `action`, `source`, `cached`.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    #[schemars(schema_with = "crate::schemas::md5")]
    pub md5: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub expect: Option<AnswerExpect>,
}

impl StepKind for CheckFile {
    const NAME: &'static str = "check_file";
    const USAGE: &'static str = "<md5> [size_bytes]";
    const HELP: &'static str = "file reputation";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        file_fields(words).unwrap_or_else(|| Err(usage::<Self>()))
    }

    fn validate(&self, path: &str) -> Result<(), String> {
        valid_md5(&self.md5, path)
    }

    fn arguments(&self) -> String {
        format!("{} ({} bytes)", self.md5, self.size_bytes)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.check_file(query(&self.md5, self.size_bytes)?))
    }

    fn check(&self, answer: &Answer) -> Result<(), Mismatch> {
        match (&self.expect, lookup_of(answer)) {
            (Some(expect), Some(found)) => check_answer(found, expect),
            _ => Ok(()),
        }
    }
}

/// URL reputation: `expect` checks `verdict`, `source`, `cached`.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CheckUrl {
    pub url: String,
    #[serde(default)]
    pub expect: Option<AnswerExpect>,
}

impl StepKind for CheckUrl {
    const NAME: &'static str = "check_url";
    const USAGE: &'static str = "<url>";
    const HELP: &'static str = "URL reputation";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [url] => Ok(Map::from_iter([("url".into(), Json::from(*url))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        self.url.clone()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.check_url(&self.url))
    }

    fn check(&self, answer: &Answer) -> Result<(), Mismatch> {
        match (&self.expect, lookup_of(answer)) {
            (Some(expect), Some(found)) => check_answer(found, expect),
            _ => Ok(()),
        }
    }
}

fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// On-access protection opens a file: `allowed`, `blocked` (untrusted and deleted), or
/// `allowed_and_logged`; no answer fails open.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct OpenFile {
    #[schemars(schema_with = "crate::schemas::md5")]
    pub md5: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub expect: Option<AccessExpect>,
}

impl StepKind for OpenFile {
    const NAME: &'static str = "open_file";
    const USAGE: &'static str = "<md5> [size_bytes]";
    const HELP: &'static str = "on-access protection opens a file";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        file_fields(words).unwrap_or_else(|| Err(usage::<Self>()))
    }

    fn validate(&self, path: &str) -> Result<(), String> {
        valid_md5(&self.md5, path)
    }

    fn arguments(&self) -> String {
        format!("{} ({} bytes)", self.md5, self.size_bytes)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.open_file(query(&self.md5, self.size_bytes)?))
    }

    fn check(&self, answer: &Answer) -> Result<(), Mismatch> {
        match (&self.expect, answer) {
            (Some(e), Answer::Access(access, _)) if *access != e.access => {
                Err(("access", name_of(&e.access), name_of(access)))
            }
            _ => Ok(()),
        }
    }
}

/// Application launch control is asked to start an application (default deny: an allow
/// rule or a trusted verdict allows, an untrusted verdict denies, a deny rule always wins).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LaunchApp {
    #[schemars(schema_with = "crate::schemas::md5")]
    pub md5: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub expect: Option<LaunchExpect>,
}

impl StepKind for LaunchApp {
    const NAME: &'static str = "launch_app";
    const USAGE: &'static str = "<md5> [size_bytes]";
    const HELP: &'static str = "application launch control starts an application";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        file_fields(words).unwrap_or_else(|| Err(usage::<Self>()))
    }

    fn validate(&self, path: &str) -> Result<(), String> {
        valid_md5(&self.md5, path)
    }

    fn arguments(&self) -> String {
        format!("{} ({} bytes)", self.md5, self.size_bytes)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        Ok(world.launch_app(query(&self.md5, self.size_bytes)?))
    }

    fn check(&self, answer: &Answer) -> Result<(), Mismatch> {
        match (&self.expect, answer) {
            (Some(e), Answer::Launch(decision, _)) if *decision != e.decision => {
                Err(("decision", name_of(&e.decision), name_of(decision)))
            }
            _ => Ok(()),
        }
    }
}
