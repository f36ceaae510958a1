//! `host-sim shell`: a console on one simulated device or a fleet. Its verbs are the
//! scenario steps (`steps`: the same definitions, run by the same code as scenario
//! files), plus the read-only views of `views`. A line that starts with `{` is a scenario
//! step in JSON (so `expect` works too). When standard input is not a terminal, commands
//! are read line by line, so a session can be scripted (`console`).

mod console;
mod server_views;
pub mod views;

use std::time::Duration;

use plugin_api::{documents::path::nearest, loader::Plugin, LogRetention};
use serde_json::{json, Value as Json};

pub use console::run;

use crate::{
    scenario::{
        model::{parse_step, Step},
        runner::{run_step, Failure},
    },
    steps::{json_argument, Action},
    world::{HostDatabase, Setup, World},
};

/// The console's own verbs: name, arguments, what it does. The steps' come from
/// `Action::VERBS`.
const VIEWS: &[(&str, &str, &str)] = &[
    (
        "status",
        "",
        "each device's state, error, network, mode and licence",
    ),
    (
        "statuses",
        "",
        "each device's status as the server shows it (OK, Warning, Critical) and why",
    ),
    (
        "groups",
        "",
        "the administration groups, their devices' statuses and active policies",
    ),
    (
        "policies",
        "",
        "every group policy: group, active, revision, profiles, settings",
    ),
    (
        "diff",
        "<policy> [<a> <b>]",
        "what changed between two revisions of a policy (default the last two)",
    ),
    (
        "events",
        "[importance|type] [N]",
        "the newest N events of the server's store (default 20)",
    ),
    (
        "settings",
        "",
        "every setting's effective value, source and lock",
    ),
    (
        "explain",
        "<setting>",
        "a setting's value, where it comes from, lock, and whether it applies now",
    ),
    (
        "log",
        "[N]",
        "the last N entries of the task log (device 0; default 20)",
    ),
    (
        "received",
        "",
        "what each simulated KSN service received, counted by the host",
    ),
    (
        "ledger",
        "[N]",
        "the last N items the task sent, with the consent that allowed each (device 0)",
    ),
    ("counters", "", "the task's counters (device 0)"),
    (
        "statement",
        "[ksn|private_ksn|kmp]",
        "the text of a statement and its version (default: the one the current mode accepts)",
    ),
    (
        "expect",
        "<json>",
        "check an expectation, as in a scenario file",
    ),
    ("help", "", "this list"),
    ("quit", "", "leave (also: exit, end of input)"),
];

/// Every verb, steps first.
fn verbs() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    Action::VERBS.iter().chain(VIEWS)
}

pub struct Shell {
    world: World,
    /// Setting paths, from the plugin's description of itself, for completion.
    paths: Vec<String>,
    /// Whether any `expect` failed (the exit status of an interactive session).
    pub expectations_failed: bool,
}

impl Shell {
    pub fn new(
        plugin: Plugin,
        devices: usize,
        database: Option<HostDatabase>,
        retention: LogRetention,
    ) -> Result<Self, String> {
        let paths = plugin
            .describe()
            .map(|d| d.settings.into_iter().map(|s| s.path).collect())
            .unwrap_or_default();
        let world = World::new(
            plugin,
            &Setup {
                watchdog: Some(Duration::from_secs(10)),
                database,
                retention,
                ..Setup::new(devices)
            },
        )?;
        Ok(Self {
            world,
            paths,
            expectations_failed: false,
        })
    }

    /// A console on a world already made (a scenario's, for `serve`).
    pub fn on_world(world: World) -> Self {
        let paths = world
            .plugin
            .describe()
            .map(|d| d.settings.into_iter().map(|s| s.path).collect())
            .unwrap_or_default();
        Self {
            world,
            paths,
            expectations_failed: false,
        }
    }

    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs one command line; the text to show, or one line saying what was wrong.
    pub fn execute(&mut self, line: &str) -> Result<String, String> {
        let line = line.trim();
        if line.starts_with('{') {
            let raw: Json =
                crate::json::parse(line).map_err(|e| format!("malformed JSON step: {e}"))?;
            return self.step(&raw);
        }
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let Some(step) = Action::from_console(verb, &words, rest) {
            return self.step(&step?);
        }
        let count = |default: usize| match words.as_slice() {
            [] => Ok(default),
            [n] => crate::steps::number(n).map(|n| n as usize),
            _ => Err("expected at most one number".to_string()),
        };
        match verb {
            "help" | "?" => Ok(help()),
            "status" => Ok(views::status(&self.world)),
            "statuses" => Ok(server_views::statuses(&self.world)),
            "groups" => Ok(server_views::groups(&self.world)),
            "policies" => Ok(server_views::policies(&self.world)),
            "diff" => server_views::diff(&self.world, &words),
            "events" => server_views::events(&self.world, &words),
            "settings" => views::settings(&self.world),
            "explain" => views::explain(&self.world, rest.trim(), &self.paths),
            "log" => views::log(&self.world, count(20)?),
            "received" => Ok(views::received(&self.world)),
            "ledger" => views::ledger(&self.world, count(20)?),
            "counters" => views::counters(&self.world),
            "statement" => views::statement(&self.world, &words),
            "expect" => self.step(&json!({"expect": json_argument(rest)?})),
            "" => Ok(String::new()),
            other => Err(unknown_command(other)),
        }
    }

    /// Runs a scenario step on every device and shows its result and the events it caused.
    fn step(&mut self, raw: &Json) -> Result<String, String> {
        let place = raw["do"]
            .as_str()
            .unwrap_or(if raw.get("expect").is_some() {
                "expect"
            } else {
                "step"
            });
        let step = parse_step(raw, place)?;
        let (_, done, events) = run_step(&mut self.world, &step);
        let events = events.into_iter().map(|e| format!("  · {e}"));
        match done.result {
            Ok(summary) => {
                let summary = match step {
                    Step::Expect(_) => "ok: as expected".to_string(),
                    Step::Do { .. } => summary,
                };
                Ok(std::iter::once(summary)
                    .chain(events)
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            Err(failure) => {
                if matches!(step, Step::Expect(_)) {
                    self.expectations_failed = true;
                }
                Err(std::iter::once(failure_line(&failure))
                    .chain(events)
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
    }

    fn prompt(&self) -> String {
        views::prompt(&self.world)
    }
}

fn failure_line(failure: &Failure) -> String {
    let device = failure
        .device
        .map(|d| format!("device {d}: "))
        .unwrap_or_default();
    if failure.expected.is_empty() || failure.what == "result" {
        let what = if failure.found.is_empty() {
            &failure.what
        } else {
            &failure.found
        };
        format!("error: {device}{what}")
    } else {
        format!(
            "error: {device}{}: expected {}, found {}",
            failure.what, failure.expected, failure.found
        )
    }
}

fn help() -> String {
    let mut out = String::from("commands (the scenario steps, then views):\n");
    for (verb, args, what) in verbs() {
        out.push_str(&format!("  {verb:<16} {args:<42} {what}\n"));
    }
    out.push_str("  {...}            a scenario step in JSON, e.g. {\"do\": \"start\", \"expect_error\": \"statement_not_accepted\"}");
    out
}

fn unknown_command(word: &str) -> String {
    match nearest(word, verbs().map(|(verb, _, _)| *verb)) {
        Some(verb) => format!("unknown command `{word}`; did you mean `{verb}`?"),
        None => format!("unknown command `{word}`; `help` lists them"),
    }
}
