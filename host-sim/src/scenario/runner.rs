//! Runs a scenario against a world and reports each step, the events it caused, and the
//! first difference between what was expected and what was found. Each step costs the
//! same however long the scenario has run, in time and in memory: it takes only its own
//! events, and the timeline keeps what the report asked for (`Timeline`).

use std::time::{Duration, Instant};

use plugin_api::loader::Plugin;
use serde::Serialize;

pub use super::outcome::{unreadable, Failure, Outcome, StepReport, Timeline};
use super::{
    devices::{self, Group},
    expect,
    model::{Action, ExpectedError, Scenario, Step},
    summary::summarise,
};
use crate::{
    network::KsnSpec,
    steps::StepError,
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
        log: Default::default(),
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
    let mut setup = setup_of(scenario, file, default_ksn, options);
    if let Some(db) = &mut setup.database {
        // A scenario starts from nothing: a new server of its own, named by its file.
        match db.store.create_server(file) {
            Ok(id) => db.host = id,
            Err(e) => {
                outcome.failure = Some(Failure::setup(e));
                return outcome;
            }
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
        let (label, done, events) = run_step(&mut world, step);
        let result = done.result;
        let kept = outcome.steps.push(StepReport {
            index,
            step: label,
            result: match &result {
                Ok(summary) => summary.clone(),
                Err(_) => "FAILED".into(),
            },
            outcomes: done.outcomes,
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
        // A run reports events by the steps; a console describes them (`serve` sets it).
        describe_events: false,
        groups: scenario.groups.clone(),
        event_rules: scenario.event_rules.clone(),
        status_rules: scenario.status_rules,
        sync_interval_ms: scenario.sync_interval_ms,
        plugins: scenario.plugins.clone(),
        ..Setup::new(scenario.devices)
    }
}

/// What came of a step: its result in words, every device's outcome grouped, or what
/// differed.
pub struct Done {
    pub result: Result<String, Failure>,
    pub outcomes: Vec<Group>,
}

/// Runs one step: how it reads, what came of it, and the events its devices emitted in it.
pub fn run_step(world: &mut World, step: &Step) -> (String, Done, Vec<String>) {
    // (Events between steps belong to none.)
    for d in &world.devices {
        drop(d.state.take_step_events());
    }
    let (label, done) = match step {
        Step::Do {
            action,
            expect_error,
            on,
        } => {
            let label = match on {
                Some(target) => format!("{} on {}", action.describe(), describe_target(target)),
                None => action.describe(),
            };
            let done = match on.as_ref().map(|t| world.select(t)).transpose() {
                Ok(selection) => {
                    world.selection = selection.map(std::sync::Arc::new);
                    let done = perform(world, action, *expect_error);
                    world.selection = None;
                    done
                }
                Err(e) => Done {
                    result: Err(Failure::setup(e)),
                    outcomes: Vec::new(),
                },
            };
            (label, done)
        }
        Step::Expect(expected) => {
            world.collect_events();
            (
                "expect".to_string(),
                Done {
                    result: expect::check(world, expected).map(|()| "ok".to_string()),
                    outcomes: Vec::new(),
                },
            )
        }
    };
    let by_device = world
        .devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let events = d.state.take_step_events();
            (!events.is_empty()).then(|| (i, events.iter().map(|e| summarise(e)).collect()))
        })
        .collect();
    (label, done, devices::events(by_device, world.devices.len()))
}

/// Performs a `do` step on every device it addresses: each device's outcome, grouped, and
/// whether every one is what the step expects (its `expect_error`, or success and its own
/// `expect`); a refusal of the server's is the server's, of its own kind.
pub fn perform(world: &mut World, action: &Action, expect_error: Option<ExpectedError>) -> Done {
    let results = match action.perform(world) {
        Ok(results) => results,
        Err(StepError::Refused(refusal)) => {
            let found = format!("the server refused it: {refusal}");
            let result = match expect_error {
                Some(kind) if kind.is_servers(refusal.kind) => {
                    Ok(format!("refused by the server as expected: {refusal}"))
                }
                Some(kind) => Err(Failure {
                    what: "error".into(),
                    expected: kind.to_string(),
                    found,
                    ..Failure::setup("")
                }),
                None => Err(Failure {
                    what: "result".into(),
                    expected: "success".into(),
                    found,
                    ..Failure::setup("")
                }),
            };
            return Done {
                result,
                outcomes: Vec::new(),
            };
        }
        Err(StepError::Invalid(e)) => {
            return Done {
                result: Err(Failure::setup(e)),
                outcomes: Vec::new(),
            }
        }
    };
    let devices = results.len();
    // Each device: its outcome and answer in words, and what differed from the step's
    // expectation, if anything.
    let mut first_wrong: Option<(usize, &'static str, String)> = None;
    let mut expected_words = String::new();
    let mut outcomes = Vec::with_capacity(devices);
    for (device, result) in results.into_iter().enumerate() {
        let (outcome, answer, wrong) = match (result, expect_error) {
            // Not addressed, or nothing to send it now: nothing to check.
            (Ok(Answer::Skipped), _) => ("not_sent", describe_answer(&Answer::Skipped), None),
            (Ok(answer), Some(kind)) => {
                expected_words = kind.to_string();
                ("ok", describe_answer(&answer), Some("error"))
            }
            (Err(e), Some(kind)) if !kind.is_plugins(e.kind) => {
                expected_words = kind.to_string();
                ("refused", e.to_string(), Some("error"))
            }
            (Err(e), Some(_)) => ("refused", format!("refused as expected: {e}"), None),
            (Err(e), None) => {
                expected_words = "success".into();
                ("refused", e.to_string(), Some("result"))
            }
            (Ok(answer), None) => match action.check(&answer) {
                Ok(()) => ("ok", describe_answer(&answer), None),
                Err((what, expected, found)) => {
                    if first_wrong.is_none() {
                        first_wrong = Some((device, what, found.clone()));
                        expected_words = expected;
                    }
                    ("ok", found, None)
                }
            },
        };
        if let (Some(what), None) = (wrong, &first_wrong) {
            first_wrong = Some((device, what, answer.clone()));
        }
        outcomes.push((device, outcome, answer));
    }
    let shown = if outcomes
        .iter()
        .all(|(_, outcome, _)| *outcome == "not_sent")
    {
        outcomes
    } else {
        outcomes
            .into_iter()
            .filter(|(_, outcome, _)| *outcome != "not_sent")
            .collect()
    };
    let groups = devices::group(shown);
    let words = devices::words(&groups, devices);
    let result = match first_wrong {
        None => Ok(words),
        Some((device, what, found)) => Err(Failure {
            step: None,
            device: Some(device),
            what: what.to_string(),
            expected: expected_words,
            found: if groups.len() > 1 || devices > 1 {
                format!("{found} (every device: {words})")
            } else {
                found
            },
        }),
    };
    Done {
        result,
        outcomes: if devices > 1 { groups } else { Vec::new() },
    }
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
        Answer::Queued => "saved; delivered in the background".into(),
    }
}
