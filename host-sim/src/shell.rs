//! `host-sim shell`: a console on one simulated device or a fleet. Its verbs are the
//! scenario steps (run by the same code as scenario files), plus read-only views:
//! `status`, `settings`, `explain`, `log`, `received`, `ledger`, `counters`. A line that
//! starts with `{` is a scenario step in JSON (so `expect` works too). When standard input
//! is not a terminal, commands are read line by line, so a session can be scripted.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use plugin_api::documents::{read_document, PluginDescription, Statement};
use plugin_api::{DataCategory, Service, TaskState};
use rustyline::{
    completion::{Completer, Pair},
    highlight::Highlighter,
    hint::Hinter,
    history::DefaultHistory,
    validate::Validator,
    Context, Editor, Helper,
};
use serde_json::{json, Value as Json};

use crate::{
    loader::Plugin,
    scenario::{
        model::{parse_step, Step},
        runner::{self, summarise, summarise_value},
    },
    world::{Setup, World},
};

/// The verbs, for `help` and completion: name, arguments, what it does.
const VERBS: &[(&str, &str, &str)] = &[
    (
        "status",
        "",
        "each device's state, error, network, mode and licence",
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
    ("push_policy", "<json> | @file", "push a policy"),
    ("set_local", "<json> | @file", "a local settings change"),
    ("start", "", "start the task"),
    ("stop", "", "stop the task"),
    (
        "set_private_ksn",
        "on|off",
        "the Administration Server switches Private KSN",
    ),
    ("set_license", "valid|expired|no_ksn", "the licence changes"),
    (
        "set_network",
        "global|proxy|private up|down [latency_ms]",
        "a KSN service goes down, up, slower or faster",
    ),
    ("check_file", "<md5> [size_bytes]", "file reputation"),
    ("check_url", "<url>", "URL reputation"),
    (
        "open_file",
        "<md5> [size_bytes]",
        "on-access protection opens a file",
    ),
    (
        "launch_app",
        "<md5> [size_bytes]",
        "application launch control starts an application",
    ),
    (
        "restart_host",
        "",
        "restart the host: task instances are created again from storage",
    ),
    (
        "advance_time",
        "<ms>",
        "simulated time passes (statistics batches go out)",
    ),
    (
        "reset_counters",
        "",
        "clear the services' counts and the event record",
    ),
    (
        "expect",
        "<json>",
        "check an expectation, as in a scenario file",
    ),
    ("help", "", "this list"),
    ("quit", "", "leave (also: exit, end of input)"),
];

pub struct Shell {
    world: World,
    /// Setting paths, from the plugin itself, for completion.
    paths: Vec<String>,
    /// Whether any `expect` failed (the exit status of an interactive session).
    pub expectations_failed: bool,
}

fn setting_paths(world: &World) -> Vec<String> {
    world.devices[0]
        .task
        .settings_json()
        .into_result()
        .ok()
        .and_then(|text| serde_json::from_str::<Json>(&text).ok())
        .and_then(|settings| {
            settings["details"]
                .as_object()
                .map(|d| d.keys().cloned().collect())
        })
        .unwrap_or_default()
}

impl Shell {
    pub fn new(plugin: Plugin, devices: usize) -> Result<Self, String> {
        let world = World::new(
            plugin,
            &Setup {
                watchdog: Some(Duration::from_secs(10)),
                ..Setup::new(devices)
            },
        )?;
        let paths = setting_paths(&world);
        Ok(Self {
            world,
            paths,
            expectations_failed: false,
        })
    }

    /// Runs one command line; the text to show, or one line saying what was wrong.
    pub fn execute(&mut self, line: &str) -> Result<String, String> {
        let line = line.trim();
        if line.starts_with('{') {
            let raw: Json =
                serde_json::from_str(line).map_err(|e| format!("malformed JSON step: {e}"))?;
            return self.step(&raw);
        }
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let words: Vec<&str> = rest.split_whitespace().collect();
        match verb {
            "help" | "?" => Ok(help()),
            "status" => Ok(self.status()),
            "settings" => self.settings(),
            "explain" => self.explain(rest),
            "log" => self.log(count(&words, 20)?),
            "received" => Ok(self.received()),
            "ledger" => self.ledger(count(&words, 20)?),
            "counters" => self.counters(),
            "statement" => self.statement(&words),
            "expect" => self.step(&json!({"expect": parse_json_arg(rest)?})),
            "push_policy" => self.step(&json!({"do": verb, "policy": parse_json_arg(rest)?})),
            "set_local" => self.step(&json!({"do": verb, "settings": parse_json_arg(rest)?})),
            "start" | "stop" | "restart_host" | "reset_counters" => {
                no_arguments(verb, &words)?;
                self.step(&json!({"do": verb}))
            }
            "set_private_ksn" => self.step(&json!({"do": verb, "enabled": on_off(&words)?})),
            "set_license" => self.step(&json!({"do": verb, "state": one(verb, &words)?})),
            "set_network" => {
                let [service, state, rest @ ..] = words.as_slice() else {
                    return Err(
                        "usage: set_network global|proxy|private up|down [latency_ms]".into(),
                    );
                };
                let up = match *state {
                    "up" => true,
                    "down" => false,
                    other => return Err(format!("set_network: expected up or down, got {other}")),
                };
                let mut step = json!({"do": verb, "service": service, "up": up});
                if let Some(latency) = rest.first() {
                    step["latency_ms"] = json!(number(latency)?);
                }
                self.step(&step)
            }
            "check_file" | "open_file" | "launch_app" => {
                let [md5, size @ ..] = words.as_slice() else {
                    return Err(format!("usage: {verb} <md5> [size_bytes]"));
                };
                let size = size.first().map(|s| number(s)).transpose()?.unwrap_or(4096);
                self.step(&json!({"do": verb, "md5": md5, "size_bytes": size}))
            }
            "check_url" => self.step(&json!({"do": verb, "url": one(verb, &words)?})),
            "advance_time" => self.step(&json!({"do": verb, "ms": number(one(verb, &words)?)?})),
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
        let before = self.world.devices[0].state.event_count();
        let result = match &step {
            Step::Do {
                action,
                expect_error,
            } => runner::perform(&mut self.world, action, *expect_error),
            Step::Expect(expect) => {
                runner::check(&self.world, expect).map(|_| "ok: as expected".to_string())
            }
        };
        let events: Vec<String> = self.world.devices[0]
            .state
            .events_since(before)
            .iter()
            .map(|e| format!("  · {}", summarise(e)))
            .collect();
        match result {
            Ok(summary) => Ok(std::iter::once(summary)
                .chain(events)
                .collect::<Vec<_>>()
                .join("\n")),
            Err(failure) => {
                if matches!(step, Step::Expect(_)) {
                    self.expectations_failed = true;
                }
                let device = failure
                    .device
                    .map(|d| format!("device {d}: "))
                    .unwrap_or_default();
                let message = if failure.expected.is_empty() || failure.what == "result" {
                    format!(
                        "error: {device}{}",
                        if failure.found.is_empty() {
                            &failure.what
                        } else {
                            &failure.found
                        }
                    )
                } else {
                    format!(
                        "error: {device}{}: expected {}, found {}",
                        failure.what, failure.expected, failure.found
                    )
                };
                Err(std::iter::once(message)
                    .chain(events)
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
    }

    fn statement(&self, words: &[&str]) -> Result<String, String> {
        let statement = match words {
            [] => Statement::for_mode(self.world.devices[0].task.status().private_ksn),
            [name] => serde_json::from_value(Json::from(*name)).map_err(|_| {
                format!("statement: expected ksn, private_ksn or kmp, got `{name}`")
            })?,
            _ => return Err("usage: statement [ksn|private_ksn|kmp]".into()),
        };
        let text = self.world.plugin.module.describe()()
            .into_result()
            .map_err(|e| format!("error: {e}"))?;
        let description: PluginDescription =
            read_document("describe", &text).map_err(|e| format!("error: {e}"))?;
        let found = description
            .statement(statement)
            .ok_or_else(|| format!("error: the plugin has no text of {}", statement.title()))?;
        Ok(format!(
            "{} (version {})\n\n{}",
            found.title, found.version, found.text
        ))
    }

    fn status(&self) -> String {
        let statuses: Vec<_> = self.world.devices.iter().map(|d| d.task.status()).collect();
        let describe = |s: &plugin_api::TaskStatus| {
            let error = s
                .error
                .into_option()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            format!(
                "{}{error}, network {}, Private KSN {}, licence {}",
                s.state,
                s.network,
                if s.private_ksn { "on" } else { "off" },
                s.license
            )
        };
        if statuses.len() <= 5 {
            return statuses
                .iter()
                .enumerate()
                .map(|(i, s)| format!("device {i}: {}", describe(s)))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for s in &statuses {
            *counts.entry(describe(s)).or_default() += 1;
        }
        counts
            .iter()
            .map(|(d, n)| format!("{n} devices: {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn settings_of_device0(&self) -> Result<Json, String> {
        let text = self.world.devices[0]
            .task
            .settings_json()
            .into_result()
            .map_err(|e| format!("error: {e}"))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("error: the plugin's settings are not JSON: {e}"))
    }

    fn settings(&self) -> Result<String, String> {
        let settings = self.settings_of_device0()?;
        let details = settings["details"].as_object().cloned().unwrap_or_default();
        Ok(details
            .iter()
            .map(|(path, d)| {
                let mut notes = vec![d["source"].as_str().unwrap_or("?").to_string()];
                if d["locked"] == true {
                    notes.push("locked".into());
                }
                if d["applies"] == false {
                    notes.push("not applied in this mode".into());
                }
                format!("{path} = {} ({})", d["value"], notes.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn explain(&self, path: &str) -> Result<String, String> {
        if path.is_empty() {
            return Err(
                "usage: explain <setting>, e.g. explain data_handling.send_statistics".into(),
            );
        }
        let settings = self.settings_of_device0()?;
        let Some(d) = settings["details"].get(path) else {
            return Err(
                match plugin_api::documents::path::nearest(
                    path,
                    self.paths.iter().map(String::as_str),
                ) {
                    Some(near) => format!("no setting `{path}`; did you mean `{near}`?"),
                    None => format!("no setting `{path}`; `settings` lists them"),
                },
            );
        };
        let source = match (d["source"].as_str(), d["locked"] == true) {
            (Some("policy"), true) => "policy (locked)".to_string(),
            (Some("policy"), false) => "policy (unlocked)".to_string(),
            (Some(other), _) => other.to_string(),
            (None, _) => "?".to_string(),
        };
        let mut lines = vec![
            format!("{path} = {}", d["value"]),
            format!("  source:  {source}"),
            format!(
                "  locked:  {}",
                if d["locked"] == true { "yes" } else { "no" }
            ),
            format!(
                "  applies: {}",
                if d["applies"] == true { "yes" } else { "no" }
            ),
            format!("  why:     {}", d["why"].as_str().unwrap_or("")),
        ];
        if !d["policy_value"].is_null() {
            lines.push(format!("  policy value: {}", d["policy_value"]));
        }
        lines.push(format!("  default: {}", d["default"]));
        lines.push(format!(
            "  meaning: {}",
            d["meaning"].as_str().unwrap_or("")
        ));
        Ok(lines.join("\n"))
    }

    fn log(&self, n: usize) -> Result<String, String> {
        let text = self.world.devices[0]
            .task
            .task_log_json()
            .into_result()
            .map_err(|e| format!("error: {e}"))?;
        let log: Vec<Json> = serde_json::from_str(&text)
            .map_err(|e| format!("error: the task log is not JSON: {e}"))?;
        Ok(log[log.len().saturating_sub(n)..]
            .iter()
            .map(|e| format!("#{} t={}ms {}", e["seq"], e["time_ms"], summarise_value(e)))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn received(&self) -> String {
        let categories = [
            ("files", DataCategory::FILES),
            ("urls", DataCategory::URLS),
            ("statistics", DataCategory::STATISTICS),
            ("kmp", DataCategory::KMP),
        ];
        let mut out = format!(
            "{:<8} {:>7} {:>7} {:>11} {:>7} {:>7}",
            "service", "files", "urls", "statistics", "kmp", "total"
        );
        for service in [Service::GLOBAL, Service::PROXY, Service::PRIVATE] {
            let sum = |category: Option<DataCategory>| -> u64 {
                self.world
                    .devices
                    .iter()
                    .map(|d| match category {
                        Some(c) => d.state.received.count(service, c),
                        None => d.state.received.total(service),
                    })
                    .sum()
            };
            let cells: Vec<u64> = categories.iter().map(|(_, c)| sum(Some(*c))).collect();
            out.push_str(&format!(
                "\n{:<8} {:>7} {:>7} {:>11} {:>7} {:>7}",
                service.as_str(),
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                sum(None)
            ));
        }
        out
    }

    fn ledger(&self, n: usize) -> Result<String, String> {
        let text = self.world.devices[0]
            .task
            .ledger_json()
            .into_result()
            .map_err(|e| format!("error: {e}"))?;
        let items: Vec<Json> = serde_json::from_str(&text)
            .map_err(|e| format!("error: the ledger is not JSON: {e}"))?;
        if items.is_empty() {
            return Ok("nothing has been sent".into());
        }
        Ok(items[items.len().saturating_sub(n)..]
            .iter()
            .map(|i| {
                format!(
                    "#{} t={}ms {} × {} to {} ({} bytes, {}) allowed by log #{}",
                    i["seq"],
                    i["time_ms"],
                    i["items"],
                    i["category"].as_str().unwrap_or("?"),
                    i["service"].as_str().unwrap_or("?"),
                    i["bytes"],
                    i["outcome"].as_str().unwrap_or("?"),
                    i["consent_record"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn counters(&self) -> Result<String, String> {
        let text = self.world.devices[0]
            .task
            .counters_json()
            .into_result()
            .map_err(|e| format!("error: {e}"))?;
        let counters: Json = serde_json::from_str(&text)
            .map_err(|e| format!("error: the counters are not JSON: {e}"))?;
        Ok(aligned(&counters))
    }

    fn prompt(&self) -> String {
        let devices = self.world.devices.len();
        let running = self
            .world
            .devices
            .iter()
            .filter(|d| d.task.status().state == TaskState::RUNNING)
            .count();
        if devices == 1 {
            format!("ksn[{}]> ", self.world.devices[0].task.status().state)
        } else {
            format!("ksn[{running}/{devices} running]> ")
        }
    }
}

/// `name value` per line, names padded and values right-aligned like the `received`
/// table; nested objects become dotted names, so a new counter needs no change here.
fn aligned(counters: &Json) -> String {
    let mut rows = Vec::new();
    flatten("", counters, &mut rows);
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, value)| format!("{name:<name_width$}  {value:>value_width$}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn flatten(prefix: &str, value: &Json, rows: &mut Vec<(String, String)>) {
    match value {
        Json::Object(fields) => {
            for (key, value) in fields {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, rows);
            }
        }
        Json::String(text) => rows.push((prefix.to_string(), text.clone())),
        other => rows.push((prefix.to_string(), other.to_string())),
    }
}

fn help() -> String {
    let mut out = String::from("commands (the scenario steps, plus views):\n");
    for (verb, args, what) in VERBS {
        out.push_str(&format!("  {:<16} {:<42} {what}\n", verb, args));
    }
    out.push_str("  {...}            a scenario step in JSON, e.g. {\"do\": \"start\", \"expect_error\": \"statement_not_accepted\"}");
    out
}

fn unknown_command(word: &str) -> String {
    match plugin_api::documents::path::nearest(word, VERBS.iter().map(|(verb, _, _)| *verb)) {
        Some(verb) => format!("unknown command `{word}`; did you mean `{verb}`?"),
        None => format!("unknown command `{word}`; `help` lists them"),
    }
}

/// A JSON document given inline or as `@file`; errors name the file and say why, in one
/// line.
fn parse_json_arg(rest: &str) -> Result<Json, String> {
    match rest.strip_prefix('@') {
        Some(file) => {
            let file = file.trim();
            let text = read_file(file).map_err(|why| format!("@{file}: {why}"))?;
            serde_json::from_str(&text).map_err(|e| format!("@{file}: malformed JSON: {e}"))
        }
        None if rest.is_empty() => Err("expected a JSON document or @file".into()),
        None => serde_json::from_str(rest).map_err(|e| format!("malformed JSON: {e}")),
    }
}

/// A file's text, or why it cannot be had, in the user's words rather than the OS's
/// (`no such file`, not `No such file or directory (os error 2)`).
fn read_file(file: &str) -> Result<String, String> {
    use std::io::ErrorKind;
    if file.is_empty() {
        return Err("no file named".into());
    }
    if std::path::Path::new(file).is_dir() {
        return Err("is a directory".into());
    }
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::InvalidData => "not UTF-8 text".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
    })
}

fn no_arguments(verb: &str, words: &[&str]) -> Result<(), String> {
    if words.is_empty() {
        Ok(())
    } else {
        Err(format!("{verb} takes no arguments"))
    }
}

fn one<'a>(verb: &str, words: &[&'a str]) -> Result<&'a str, String> {
    match words {
        [one] => Ok(one),
        _ => Err(format!(
            "usage: {verb} {}",
            VERBS
                .iter()
                .find(|(v, _, _)| *v == verb)
                .map_or("", |(_, a, _)| a)
        )),
    }
}

fn on_off(words: &[&str]) -> Result<bool, String> {
    match words {
        ["on" | "true"] => Ok(true),
        ["off" | "false"] => Ok(false),
        _ => Err("usage: set_private_ksn on|off".into()),
    }
}

fn number(word: &str) -> Result<u64, String> {
    word.parse()
        .map_err(|_| format!("expected a whole number, got `{word}`"))
}

fn count(words: &[&str], default: usize) -> Result<usize, String> {
    match words {
        [] => Ok(default),
        [n] => number(n).map(|n| n as usize),
        _ => Err("expected at most one number".into()),
    }
}

/// Tab completion of verbs and their arguments.
struct Completion {
    paths: Vec<String>,
}

impl Completion {
    fn candidates(&self, line: &str) -> (usize, Vec<String>) {
        let start = line.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &line[start..];
        let before: Vec<&str> = line[..start].split_whitespace().collect();
        let options: Vec<String> = match before.as_slice() {
            [] => VERBS.iter().map(|(v, _, _)| v.to_string()).collect(),
            ["explain"] => self.paths.clone(),
            ["set_private_ksn"] => vec!["on".into(), "off".into()],
            ["set_license"] => vec!["valid".into(), "expired".into(), "no_ksn".into()],
            ["set_network"] => vec!["global".into(), "proxy".into(), "private".into()],
            ["set_network", _] => vec!["up".into(), "down".into()],
            _ => Vec::new(),
        };
        (
            start,
            options
                .into_iter()
                .filter(|o| o.starts_with(word))
                .collect(),
        )
    }
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(&line[..pos]);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// Runs the console: line editing with history and completion on a terminal, plain lines
/// otherwise. Returns whether the session succeeded: on a terminal, every `expect` held;
/// scripted, every command succeeded (so a script of commands is a test).
pub fn run(mut shell: Shell) -> bool {
    if std::io::stdin().is_terminal() {
        interactive(&mut shell) && !shell.expectations_failed
    } else {
        scripted(&mut shell)
    }
}

fn show(result: Result<String, String>) {
    match result {
        Ok(text) if text.is_empty() => {}
        Ok(text) => println!("{text}"),
        Err(text) => println!("{text}"),
    }
}

fn is_quit(line: &str) -> bool {
    matches!(line.trim(), "quit" | "exit")
}

/// Reads commands line by line; whether every one succeeded (an error line, whether a
/// refusal, a failed `expect` or a typo, fails the session).
fn scripted(shell: &mut Shell) -> bool {
    let stdin = std::io::stdin();
    let mut succeeded = true;
    for line in stdin.lock().lines().map_while(Result::ok) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        println!("> {trimmed}");
        if is_quit(trimmed) {
            break;
        }
        let result = shell.execute(trimmed);
        succeeded &= result.is_ok();
        show(result);
        let _ = std::io::stdout().flush();
    }
    succeeded
}

/// Line editing on a terminal; false only if it fell back to plain lines and one failed.
fn interactive(shell: &mut Shell) -> bool {
    let mut editor: Editor<Completion, DefaultHistory> = match Editor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("host-sim: no line editor ({e}); reading plain lines");
            return scripted(shell);
        }
    };
    editor.set_helper(Some(Completion {
        paths: shell.paths.clone(),
    }));
    println!(
        "KSN Usage task console on {} device(s). `help` lists the commands.",
        shell.world.devices.len()
    );
    loop {
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if is_quit(&line) {
                    break;
                }
                show(shell.execute(&line));
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_aligned_name_value_lines() {
        let counters = json!({"queued_kmp": 0, "cache_entries": 12, "by": {"service": "x"}});
        assert_eq!(
            aligned(&counters),
            "by.service      x\ncache_entries  12\nqueued_kmp      0"
        );
    }

    #[test]
    fn completion_offers_verbs_paths_and_arguments() {
        let c = Completion {
            paths: vec!["task.schedule".into(), "task.checksum_limit_mb".into()],
        };
        assert_eq!(c.candidates("expl"), (0, vec!["explain".to_string()]));
        assert_eq!(
            c.candidates("exp").1,
            vec!["explain".to_string(), "expect".to_string()]
        );
        assert_eq!(
            c.candidates("explain task.s"),
            (8, vec!["task.schedule".to_string()])
        );
        assert_eq!(
            c.candidates("set_network pr").1,
            vec!["proxy".to_string(), "private".to_string()]
        );
        assert_eq!(
            c.candidates("set_network proxy d").1,
            vec!["down".to_string()]
        );
        assert_eq!(
            c.candidates("set_private_ksn o").1,
            vec!["on".to_string(), "off".to_string()]
        );
        assert!(c.candidates("start x").1.is_empty());
    }
}
