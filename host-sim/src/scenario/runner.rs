//! Runs a scenario against a world and reports each step, the events it caused, and the
//! first difference between what was expected and what was found. Each step costs the
//! same however long the scenario has run, in time and in memory: it takes only its own
//! events, and the timeline keeps what the report asked for (`Timeline`).

use std::time::{Duration, Instant};

use plugin_api::{loader::Plugin, ErrorKind};
use serde::Serialize;

pub use super::outcome::{unreadable, Failure, Outcome, StepReport, Timeline};
use super::{
    expect,
    model::{Action, Scenario, Step},
    summary::summarise,
};
use crate::{
    network::KsnSpec,
    world::{admin::Target, Answer, HostDatabase, Setup, World},
};

/// How long a call into the plugin may take before the device is declared hung.
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(10);

/// How a scenario is run: the watchdog, and where devices keep their records.
#[derive(Clone, Default)]
pub struct Options {
    pub watchdog: Option<Duration>,
    /// Keep the devices' records in a host database (`--db`), under the scenario's name.
    pub database: Option<std::sync::Arc<crate::storage::HostStore>>,
    /// Keep every step's report (`--steps`, `--json`, `--junit`), not only the last ones.
    pub whole_timeline: bool,
}

pub fn run(
    plugin: Plugin,
    scenario: &Scenario,
    file: &str,
    default_ksn: &KsnSpec,
    options: &Options,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        name: scenario.name.clone(),
        file: file.to_string(),
        passed: false,
        duration_ms: 0,
        statuses: [0; 3],
        steps: Timeline::recent(),
        failure: None,
    };
    if options.whole_timeline {
        match Timeline::whole() {
            Ok(timeline) => outcome.steps = timeline,
            Err(e) => {
                outcome.failure = Some(Failure::setup(e));
                return outcome;
            }
        }
    }
    let setup = setup_of(scenario, file, default_ksn, options);
    if let Some(db) = &setup.database {
        // A scenario starts from nothing, however often it ran before on this file.
        if let Err(e) = db.store.clear_host(&db.host) {
            outcome.failure = Some(Failure::setup(e));
            return outcome;
        }
    }
    let mut world = match World::new(plugin, &setup) {
        Ok(world) => world,
        Err(e) => {
            outcome.failure = Some(Failure::setup(e));
            outcome.duration_ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        let (label, result, events) = run_step(&mut world, step);
        let kept = outcome.steps.push(StepReport {
            index,
            step: label,
            result: match &result {
                Ok(summary) => summary.clone(),
                Err(_) => "FAILED".into(),
            },
            events,
        });
        if let Err(e) = kept {
            outcome.failure = Some(Failure {
                step: Some(index),
                ..Failure::setup(e)
            });
            break;
        }
        if let Err(mut failure) = result {
            failure.step = Some(index);
            outcome.failure = Some(failure);
            break;
        }
    }
    outcome.passed = outcome.failure.is_none();
    world.collect_events();
    outcome.statuses = world.status_counts();
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    outcome
}

/// The world a scenario's head describes: devices, groups, KSN services, the server's
/// rules, and where records are kept (`file` names the host in a database).
pub fn setup_of(
    scenario: &Scenario,
    file: &str,
    default_ksn: &KsnSpec,
    options: &Options,
) -> Setup {
    Setup {
        ksn: scenario.ksn.as_ref().unwrap_or(default_ksn).clone(),
        local_lists: scenario.local_lists.clone(),
        launch_control: scenario.launch_control.clone(),
        watchdog: options.watchdog,
        retention: scenario.log_retention,
        host_keeps_events: scenario.host_keeps_events,
        database: options.database.as_ref().map(|store| HostDatabase {
            store: store.clone(),
            host: file.to_string(),
        }),
        // Every event is kept only where an expectation reads them all.
        keep_history: scenario.reads_every_event(),
        groups: scenario.groups.clone(),
        event_rules: scenario.event_rules.clone(),
        status_rules: scenario.status_rules,
        sync_interval_ms: scenario.sync_interval_ms,
        ..Setup::new(scenario.devices)
    }
}

/// Runs one step: how it reads, what came of it, and the events device 0 emitted in it.
pub fn run_step(world: &mut World, step: &Step) -> (String, Result<String, Failure>, Vec<String>) {
    // (Events between steps belong to none.)
    drop(world.devices[0].state.take_step_events());
    let (label, result) = match step {
        Step::Do {
            action,
            expect_error,
            on,
        } => {
            let label = match on {
                Some(target) => format!("{} on {}", action.describe(), describe_target(target)),
                None => action.describe(),
            };
            let result = match on.as_ref().map(|t| world.select(t)).transpose() {
                Ok(selection) => {
                    world.selection = selection.map(std::sync::Arc::new);
                    let result = perform(world, action, *expect_error);
                    world.selection = None;
                    result
                }
                Err(e) => Err(Failure::setup(e)),
            };
            (label, result)
        }
        Step::Expect(expected) => {
            world.collect_events();
            (
                "expect".to_string(),
                expect::check(world, expected).map(|()| "ok".to_string()),
            )
        }
    };
    let events = world.devices[0]
        .state
        .take_step_events()
        .iter()
        .map(|e| summarise(e))
        .collect();
    (label, result, events)
}

/// Performs a `do` step on every device: a summary of the answers, or what differed.
pub fn perform(
    world: &mut World,
    action: &Action,
    expect_error: Option<ErrorKind>,
) -> Result<String, Failure> {
    let results = action.perform(world).map_err(Failure::setup)?;
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
            // Not addressed, or nothing to send it now: nothing to check.
            (Ok(Answer::Skipped), _) => {
                if summary.is_empty() {
                    summary = describe_answer(&Answer::Skipped);
                }
            }
            (Ok(_), Some(kind)) => return Err(fail("error", kind.to_string(), "success".into())),
            (Err(e), Some(kind)) if e.kind != kind => {
                return Err(fail("error", kind.to_string(), e.to_string()))
            }
            (Err(e), Some(_)) => summary = format!("refused as expected: {e}"),
            (Err(e), None) => return Err(fail("result", "success".into(), e.to_string())),
            (Ok(answer), None) => {
                action
                    .check(&answer)
                    .map_err(|(what, expected, found)| fail(what, expected, found))?;
                summary = describe_answer(&answer);
            }
        }
    }
    Ok(summary)
}

/// A step's `on`, in a few words.
pub fn describe_target(target: &Target) -> String {
    match target {
        Target::All(_) => "all".into(),
        Target::Group { group } => format!("group {group}"),
        Target::Device { device } => format!("device {device}"),
        Target::Devices { devices } => format!(
            "devices {}",
            devices
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn name_of(value: &impl Serialize) -> String {
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

pub fn describe_answer(answer: &Answer) -> String {
    match answer {
        Answer::Done => "ok".into(),
        Answer::Skipped => {
            "ok: nothing to send it now (not addressed, not affected, or not connected)".into()
        }
        Answer::Lookup(a) => describe_lookup(a),
        Answer::Access(access, a) => format!("{}: {}", name_of(access), describe_lookup(a)),
        Answer::Launch(decision, Some(a)) => {
            format!("{}: {}", name_of(decision), describe_lookup(a))
        }
        Answer::Launch(decision, None) => format!("{} by rule", name_of(decision)),
    }
}
