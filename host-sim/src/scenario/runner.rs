//! Runs a scenario against a world and reports each step, the events it caused, and the
//! first difference between what was expected and what was found.

use std::{collections::BTreeSet, time::Duration};

use plugin_api::{DataCategory, ErrorKind, FileQuery, Service, TaskError};
use serde::Serialize;
use serde_json::Value as Json;

use super::model::{Action, AnswerExpect, Expect, Scenario, Step};
use crate::{
    loader::Plugin,
    network::KsnSpec,
    world::{Answer, Setup, World},
};

#[derive(Serialize, Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub duration_ms: u64,
    pub steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

#[derive(Serialize, Debug, Clone)]
pub struct StepReport {
    pub index: usize,
    pub step: String,
    pub result: String,
    /// Events device 0 emitted during the step, summarised.
    pub events: Vec<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Failure {
    /// Index into `steps`; `None` when the scenario could not be set up.
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl Failure {
    fn setup(what: impl Into<String>) -> Self {
        Self {
            step: None,
            device: None,
            what: what.into(),
            expected: String::new(),
            found: String::new(),
        }
    }
}

/// A scenario file that could not be read or parsed is a failed scenario.
pub fn unreadable(file: &str, error: String) -> Outcome {
    Outcome {
        name: file.to_string(),
        file: file.to_string(),
        passed: false,
        duration_ms: 0,
        steps: Vec::new(),
        failure: Some(Failure::setup(error)),
    }
}

/// How long a call into the plugin may take before the device is declared hung.
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(10);

pub fn run(
    plugin: Plugin,
    scenario: &Scenario,
    file: &str,
    default_ksn: &KsnSpec,
    watchdog: Option<Duration>,
) -> Outcome {
    let started = std::time::Instant::now();
    let mut outcome = Outcome {
        name: scenario.name.clone(),
        file: file.to_string(),
        passed: false,
        duration_ms: 0,
        steps: Vec::new(),
        failure: None,
    };
    let ksn = scenario.ksn.as_ref().unwrap_or(default_ksn);
    let setup = Setup {
        ksn: ksn.clone(),
        local_lists: scenario.local_lists.clone(),
        launch_control: scenario.launch_control.clone(),
        watchdog,
        ..Setup::new(scenario.devices)
    };
    let mut world = match World::new(plugin, &setup) {
        Ok(world) => world,
        Err(e) => {
            outcome.failure = Some(Failure::setup(e));
            outcome.duration_ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        let before = world.devices[0].state.event_count();
        let (label, result) = match step {
            Step::Do {
                action,
                expect_error,
            } => (describe(action), perform(&mut world, action, *expect_error)),
            Step::Expect(expect) => (
                "expect".to_string(),
                check(&world, expect).map(|_| "ok".to_string()),
            ),
        };
        let caused = world.devices[0]
            .state
            .events_since(before)
            .iter()
            .map(|e| summarise(e))
            .collect();
        match result {
            Ok(result) => outcome.steps.push(StepReport {
                index,
                step: label,
                result,
                events: caused,
            }),
            Err(mut failure) => {
                failure.step = Some(index);
                outcome.steps.push(StepReport {
                    index,
                    step: label,
                    result: "FAILED".into(),
                    events: caused,
                });
                outcome.failure = Some(failure);
                outcome.duration_ms = started.elapsed().as_millis() as u64;
                return outcome;
            }
        }
    }
    outcome.passed = true;
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    outcome
}

/// A step in a few words, for reports and the shell.
pub fn describe(action: &Action) -> String {
    let args = match action {
        Action::PushPolicy { policy } => compact(policy),
        Action::SetLocal { settings } => compact(settings),
        Action::SetPrivateKsn { enabled } => format!("enabled={enabled}"),
        Action::SetLicense { state } => format!("state={state}"),
        Action::SetNetwork {
            service,
            up,
            latency_ms,
        } => match latency_ms {
            Some(ms) => format!("{service} up={up} latency={ms}ms"),
            None => format!("{service} up={up}"),
        },
        Action::CheckFile {
            md5, size_bytes, ..
        }
        | Action::OpenFile {
            md5, size_bytes, ..
        }
        | Action::LaunchApp {
            md5, size_bytes, ..
        } => format!("{md5} ({size_bytes} bytes)"),
        Action::CheckUrl { url, .. } => url.clone(),
        Action::AdvanceTime { ms } => format!("{ms}ms"),
        Action::RestartHost {
            plugin: Some(plugin),
        } => format!("with {plugin}"),
        Action::Start {}
        | Action::Stop {}
        | Action::RestartHost { .. }
        | Action::ResetCounters {} => String::new(),
    };
    if args.is_empty() {
        action.name().to_string()
    } else {
        format!("{} {args}", action.name())
    }
}

fn compact(json: &Json) -> String {
    let text = json.to_string();
    if text.len() > 120 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(117).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

/// Performs a `do` step on every device: a summary of the answers, or what differed.
pub fn perform(
    world: &mut World,
    action: &Action,
    expect_error: Option<ErrorKind>,
) -> Result<String, Failure> {
    let results = match action {
        Action::PushPolicy { policy } => world.push_policy(&policy.to_string()),
        Action::SetLocal { settings } => world.set_local(&settings.to_string()),
        Action::Start {} => world.start(),
        Action::Stop {} => world.stop(),
        Action::SetPrivateKsn { enabled } => world.set_private_ksn(*enabled),
        Action::SetLicense { state } => world.set_license(*state),
        Action::SetNetwork {
            service,
            up,
            latency_ms,
        } => {
            if *service == Service::NONE {
                return Err(Failure::setup("service: expected global, proxy or private"));
            }
            world.set_network(*service, *up, *latency_ms)
        }
        Action::CheckFile {
            md5, size_bytes, ..
        } => {
            let md5 = FileQuery::parse_md5(md5).map_err(|e| Failure::setup(format!("md5: {e}")))?;
            world.check_file(FileQuery {
                md5,
                size_bytes: *size_bytes,
            })
        }
        Action::CheckUrl { url, .. } => world.check_url(url),
        Action::OpenFile {
            md5, size_bytes, ..
        } => {
            let md5 = FileQuery::parse_md5(md5).map_err(|e| Failure::setup(format!("md5: {e}")))?;
            world.open_file(FileQuery {
                md5,
                size_bytes: *size_bytes,
            })
        }
        Action::LaunchApp {
            md5, size_bytes, ..
        } => {
            let md5 = FileQuery::parse_md5(md5).map_err(|e| Failure::setup(format!("md5: {e}")))?;
            world.launch_app(FileQuery {
                md5,
                size_bytes: *size_bytes,
            })
        }
        Action::RestartHost { plugin: None } => world.restart_host(),
        Action::RestartHost {
            plugin: Some(plugin),
        } => {
            let path = crate::loader::locate_library(plugin);
            let update =
                crate::loader::load(&path).map_err(|e| Failure::setup(format!("plugin: {e}")))?;
            world.plugin = update;
            world.restart_host()
        }
        Action::AdvanceTime { ms } => world.advance_time(*ms),
        Action::ResetCounters {} => world.reset_counters(),
    };
    let mut summary = String::new();
    for (device, result) in results.into_iter().enumerate() {
        let fail = |what: &str, expected: String, found: String| Failure {
            step: None,
            device: Some(device),
            what: what.to_string(),
            expected,
            found,
        };
        match (result, expect_error) {
            (Ok(_), Some(kind)) => return Err(fail("error", kind.to_string(), "success".into())),
            (Err(e), Some(kind)) if e.kind != kind => {
                return Err(fail("error", kind.to_string(), e.to_string()))
            }
            (Err(e), Some(_)) => summary = format!("refused as expected: {e}"),
            (Err(e), None) => return Err(fail("result", "success".into(), e.to_string())),
            (Ok(answer), None) => {
                check_result(action, &answer)
                    .map_err(|(what, expected, found)| fail(what, expected, found))?;
                summary = describe_answer(&answer);
            }
        }
    }
    Ok(summary)
}

type Mismatch = (&'static str, String, String);

/// Compares a step's answer with the step's own `expect`, if it has one.
fn check_result(action: &Action, answer: &Answer) -> Result<(), Mismatch> {
    match (action, answer) {
        (
            Action::CheckFile {
                expect: Some(e), ..
            }
            | Action::CheckUrl {
                expect: Some(e), ..
            },
            Answer::Lookup(found),
        ) => check_answer(found, e),
        (
            Action::OpenFile {
                expect: Some(e), ..
            },
            Answer::Access(access, _),
        ) if *access != e.access => Err(("access", name_of(&e.access), name_of(access))),
        (
            Action::LaunchApp {
                expect: Some(e), ..
            },
            Answer::Launch(decision, _),
        ) if *decision != e.decision => Err(("decision", name_of(&e.decision), name_of(decision))),
        _ => Ok(()),
    }
}

fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn describe_lookup(a: &plugin_api::LookupAnswer) -> String {
    format!(
        "{} (action {}, from {}{})",
        a.verdict,
        a.action,
        a.source,
        if a.cached { ", cached" } else { "" }
    )
}

fn describe_answer(answer: &Answer) -> String {
    match answer {
        Answer::Done => "ok".into(),
        Answer::Lookup(a) => describe_lookup(a),
        Answer::Access(access, a) => format!("{}: {}", name_of(access), describe_lookup(a)),
        Answer::Launch(decision, Some(a)) => {
            format!("{}: {}", name_of(decision), describe_lookup(a))
        }
        Answer::Launch(decision, None) => format!("{} by rule", name_of(decision)),
    }
}

fn check_answer(found: &plugin_api::LookupAnswer, expect: &AnswerExpect) -> Result<(), Mismatch> {
    if found.verdict != expect.verdict {
        return Err((
            "verdict",
            expect.verdict.to_string(),
            found.verdict.to_string(),
        ));
    }
    if let Some(action) = expect.action {
        if found.action != action {
            return Err(("action", action.to_string(), found.action.to_string()));
        }
    }
    if let Some(source) = expect.source {
        if found.source != source {
            return Err(("source", source.to_string(), found.source.to_string()));
        }
    }
    if let Some(cached) = expect.cached {
        if found.cached != cached {
            return Err(("cached", cached.to_string(), found.cached.to_string()));
        }
    }
    Ok(())
}

/// Checks an `expect` step on every device.
pub fn check(world: &World, expect: &Expect) -> Result<(), Failure> {
    let expect = expect.clone();
    let results = world.each(move |device| Ok(check_device(device, &expect)));
    for (index, result) in results.into_iter().enumerate() {
        let mismatch = match result {
            Ok(Ok(())) => continue,
            Ok(Err(mismatch)) => mismatch,
            Err(e) => ("device".to_string(), "an answer".to_string(), e.to_string()),
        };
        let (what, expected, found) = mismatch;
        return Err(Failure {
            step: None,
            device: Some(index),
            what,
            expected,
            found,
        });
    }
    Ok(())
}

type DeviceMismatch = (String, String, String);

fn check_device(device: &crate::device::Device, expect: &Expect) -> Result<(), DeviceMismatch> {
    let status = device.task.status();
    let differ =
        |what: &str, expected: String, found: String| Err((what.to_string(), expected, found));
    if let Some(state) = expect.state {
        if status.state != state {
            return differ("state", state.to_string(), status.state.to_string());
        }
    }
    if let Some(error) = expect.error {
        let found = status.error.into_option();
        if found != error {
            let name = |e: Option<ErrorKind>| e.map_or("null".to_string(), |k| k.to_string());
            return differ("error", name(error), name(found));
        }
    }
    if let Some(network) = expect.network {
        if status.network != network {
            return differ("network", network.to_string(), status.network.to_string());
        }
    }
    if expect.settings.is_some() || expect.locked.is_some() {
        let settings = settings_of(device).map_err(|e| {
            (
                "settings".to_string(),
                "readable settings".into(),
                e.to_string(),
            )
        })?;
        for (path, value) in expect.settings.iter().flatten() {
            match settings["details"].get(path.as_str()) {
                None => {
                    return differ(
                        &format!("settings.{path}"),
                        "a setting".into(),
                        unknown_setting(path, &settings),
                    )
                }
                Some(detail) if detail["value"] != *value => {
                    return differ(
                        &format!("settings.{path}"),
                        value.to_string(),
                        detail["value"].to_string(),
                    )
                }
                Some(_) => {}
            }
        }
        if let Some(locked) = &expect.locked {
            let want: BTreeSet<&str> = locked.iter().map(String::as_str).collect();
            let have: BTreeSet<&str> = settings["locked"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect();
            if want != have {
                return differ("locked", format!("{want:?}"), format!("{have:?}"));
            }
        }
    }
    for (service_name, counts) in expect.received.iter().flatten() {
        let service = Service::from_name(service_name).unwrap_or(Service::NONE);
        let received = &device.state.received;
        let rows = [
            (
                "files",
                counts.files,
                received.count(service, DataCategory::FILES),
            ),
            (
                "urls",
                counts.urls,
                received.count(service, DataCategory::URLS),
            ),
            (
                "statistics",
                counts.statistics,
                received.count(service, DataCategory::STATISTICS),
            ),
            (
                "kmp",
                counts.kmp,
                received.count(service, DataCategory::KMP),
            ),
            ("total", counts.total, received.total(service)),
        ];
        for (name, want, have) in rows {
            if let Some(want) = want {
                if want != have {
                    return differ(
                        &format!("received.{service_name}.{name}"),
                        want.to_string(),
                        have.to_string(),
                    );
                }
            }
        }
    }
    if let Some(wanted) = &expect.events_include {
        let events: Vec<Json> = device
            .state
            .events()
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect();
        find_all("events_include", &events, wanted)?;
    }
    if let Some(wanted) = &expect.log_include {
        let text = device.task.task_log_json().into_result().map_err(|e| {
            (
                "log_include".to_string(),
                "a readable task log".to_string(),
                e.to_string(),
            )
        })?;
        let log: Vec<Json> = serde_json::from_str(&text).map_err(|e| {
            (
                "log_include".to_string(),
                "a JSON task log".to_string(),
                e.to_string(),
            )
        })?;
        find_all("log_include", &log, wanted)?;
    }
    Ok(())
}

/// What an `expect.settings` key that is no setting path gets: the nearest path, and all
/// of them (the plugin's own, the keys of `details`).
fn unknown_setting(path: &str, settings: &Json) -> String {
    let paths: Vec<&str> = settings["details"]
        .as_object()
        .into_iter()
        .flat_map(|details| details.keys().map(String::as_str))
        .collect();
    format!(
        "no such setting{} (settings: {})",
        plugin_api::documents::path::did_you_mean(path, paths.iter().copied()),
        paths.join(", ")
    )
}

fn find_all(what: &str, entries: &[Json], wanted: &[Json]) -> Result<(), DeviceMismatch> {
    for want in wanted {
        if !entries.iter().any(|e| includes(e, want)) {
            return Err((what.to_string(), want.to_string(), nearest(entries, want)));
        }
    }
    Ok(())
}

/// How many entries a failed `events_include` or `log_include` shows.
const NEAREST: usize = 5;
/// How alike an entry must be to what was wanted to count as a near miss rather than noise
/// (`task_eror` for `task_error` is; `license_changed` for `state_changed` is not).
const ALIKE: f64 = 0.8;

/// What was there instead of `want`: how many entries, and the few nearest to it in log
/// order; never the whole log, which after a long run is thousands of entries.
fn nearest(entries: &[Json], want: &Json) -> String {
    if entries.is_empty() {
        return "no entries".into();
    }
    // Most wanted keys matched, then alike at the wanted keys (a typo), then the latest.
    let mut ranked: Vec<(usize, usize, f64)> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let alike = alike(entry, want);
            let alike = if alike >= ALIKE { alike } else { 0.0 };
            (index, matched_keys(entry, want), alike)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(b.0.cmp(&a.0)));
    let mut shown: Vec<usize> = ranked.iter().take(NEAREST).map(|r| r.0).collect();
    shown.sort_unstable();
    let lines: Vec<String> = shown.iter().map(|&i| entry_line(&entries[i])).collect();
    let count = match entries.len() {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    format!("{count}, none matching; nearest: [{}]", lines.join(", "))
}

/// How many of the wanted keys the entry has with the wanted value.
fn matched_keys(entry: &Json, want: &Json) -> usize {
    let Some(want) = want.as_object() else {
        return 0;
    };
    want.iter()
        .filter(|(k, v)| entry.get(k.as_str()).is_some_and(|e| includes(e, v)))
        .count()
}

/// How alike the entry is to `want` at the wanted keys (0 to 1).
fn alike(entry: &Json, want: &Json) -> f64 {
    let Some(want) = want.as_object() else {
        return 0.0;
    };
    let at_wanted_keys: serde_json::Map<String, Json> = want
        .keys()
        .filter_map(|k| entry.get(k.as_str()).map(|v| (k.clone(), v.clone())))
        .collect();
    strsim::normalized_levenshtein(
        &Json::Object(at_wanted_keys).to_string(),
        &Json::Object(want.clone()).to_string(),
    )
}

/// An entry in a few words, with its sequence number when it has one.
fn entry_line(entry: &Json) -> String {
    match entry.get("seq") {
        Some(seq) => format!("#{seq} {}", summarise_value(entry)),
        None => summarise_value(entry),
    }
}

fn settings_of(device: &crate::device::Device) -> Result<Json, TaskError> {
    let text = device.task.settings_json().into_result()?;
    serde_json::from_str(&text)
        .map_err(|e| TaskError::invalid_state(format_args!("settings_json is not JSON: {e}")))
}

/// Whether `actual` has every key of `partial` with an equal (or, for objects, including)
/// value.
pub fn includes(actual: &Json, partial: &Json) -> bool {
    match (actual, partial) {
        (Json::Object(a), Json::Object(p)) => p
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| includes(av, v))),
        _ => actual == partial,
    }
}

/// One event in a few words, for reports.
pub fn summarise(event_json: &str) -> String {
    match serde_json::from_str::<Json>(event_json) {
        Ok(e) => summarise_value(&e),
        Err(_) => event_json.to_string(),
    }
}

/// One event (or task log entry), already parsed, in a few words.
pub fn summarise_value(e: &Json) -> String {
    let s = |k: &str| e.get(k).and_then(Json::as_str).unwrap_or("?").to_string();
    let kind = s("type");
    match kind.as_str() {
        "state_changed" => format!("state {}→{}", s("from"), s("to")),
        "task_error" => format!("task_error {}", s("kind")),
        "consent_changed" => {
            let what = match e.get("category").and_then(Json::as_str) {
                Some(category) => format!("{} {category}", s("statement")),
                None => s("statement"),
            };
            let verb = if e["accepted"] == Json::Bool(true) {
                "accepted"
            } else {
                "withdrawn"
            };
            format!("{what} {verb} ({})", s("source"))
        }
        "settings_changed" => {
            let after = e["after"].as_object().cloned().unwrap_or_default();
            let changes: Vec<String> = after
                .iter()
                .map(|(k, v)| format!("{k} {}→{v}", e["before"][k]))
                .collect();
            format!("settings ({}) {}", s("source"), changes.join(", "))
        }
        "policy_applied" => {
            let locked = e["locked"].as_array().map_or(0, Vec::len);
            format!("policy applied ({locked} locked)")
        }
        "object_untrusted" => {
            let object = e
                .get("md5")
                .or(e.get("url"))
                .and_then(Json::as_str)
                .unwrap_or("?");
            format!("untrusted {object} → {}", s("action"))
        }
        "ksn_unavailable" => format!("{} unavailable ({})", s("service"), s("reason")),
        "ksn_restored" => format!("{} restored", s("service")),
        "private_ksn_changed" => format!("private_ksn {}", e["enabled"]),
        "license_changed" => format!("licence {}", s("license")),
        "operation_refused" => format!("{} refused: {}", s("operation"), s("kind")),
        "egress_refused" => format!("egress refused: {} to {}", s("category"), s("service")),
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partial_events_match_by_inclusion() {
        let event =
            json!({"type": "task_error", "kind": "license_violation", "message": "m", "seq": 3});
        assert!(includes(
            &event,
            &json!({"type": "task_error", "kind": "license_violation"})
        ));
        assert!(!includes(
            &event,
            &json!({"type": "task_error", "kind": "invalid_state"})
        ));
        assert!(!includes(
            &event,
            &json!({"type": "task_error", "extra": 1})
        ));
        let nested = json!({"type": "settings_changed", "after": {"a": 1, "b": 2}});
        assert!(includes(&nested, &json!({"after": {"a": 1}})));
    }
}
