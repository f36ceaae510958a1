//! Scenario reports: a readable timeline (styled; `anstream` drops the styles when the
//! output is not a terminal or `NO_COLOR` is set), JSON for machines, and JUnit XML for CI.

use std::{fmt::Write, time::Duration};

use anstyle::{AnsiColor, Style};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::runner::Outcome;

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const STEP: Style = Style::new().dimmed();
const EVENTS: Style = AnsiColor::Cyan.on_default();
const PROBLEM: Style = AnsiColor::Red.on_default();

fn styled(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// The timeline of each scenario (every step when `steps`, else only failures'), what was
/// logged while it ran (with `steps` or `verbose`, or when it failed), then a summary line.
pub fn text(outcomes: &[Outcome], steps: bool, verbose: bool) -> String {
    let mut out = String::new();
    for o in outcomes {
        let mark = if o.passed {
            styled(PASS, "PASS")
        } else {
            styled(FAIL, "FAIL")
        };
        let _ = writeln!(
            out,
            "{mark}  {}  ({}, {} ms)",
            o.name, o.file, o.duration_ms
        );
        if steps || !o.passed {
            if o.steps.not_kept() > 0 {
                let _ = writeln!(
                    out,
                    "      {}",
                    styled(
                        STEP,
                        format!(
                            "steps[0] to steps[{}] passed (not kept: --steps shows every step)",
                            o.steps.not_kept() - 1
                        )
                    )
                );
            }
            for s in o.steps.iter() {
                let _ = write!(
                    out,
                    "      {} {} → {}",
                    styled(STEP, format!("steps[{}]", s.index)),
                    s.step,
                    s.result
                );
                if !s.events.is_empty() {
                    let _ = write!(
                        out,
                        "  {}",
                        styled(EVENTS, format!("[{}]", s.events.join("; ")))
                    );
                }
                out.push('\n');
            }
        }
        if let Some(failure) = failure_line(o) {
            let _ = writeln!(out, "      {}", styled(PROBLEM, failure));
        }
        if (steps || verbose || !o.passed) && o.log.total > 0 {
            let _ = writeln!(out, "      {}", log_heading(&o.log));
            for line in &o.log.lines {
                let _ = writeln!(out, "        {}", styled(EVENTS, line));
            }
        }
        if steps || !o.passed {
            let [ok, warning, critical] = o.statuses;
            let _ = writeln!(
                out,
                "      statuses at the end: {ok} OK, {warning} Warning, {critical} Critical"
            );
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let summary = format!("{passed} of {} scenarios passed", outcomes.len());
    let style = if passed == outcomes.len() { PASS } else { FAIL };
    let _ = writeln!(out, "{}", styled(style, summary));
    out
}

/// The heading of what a scenario logged: how many lines, and how many are shown.
fn log_heading(log: &crate::logs::Captured) -> String {
    if log.total > log.lines.len() {
        format!(
            "logged {} lines while it ran (the last {}):",
            log.total,
            log.lines.len()
        )
    } else {
        format!("logged while it ran ({} lines):", log.total)
    }
}

/// Where and how a scenario failed, in one line.
fn failure_line(o: &Outcome) -> Option<String> {
    let f = o.failure.as_ref()?;
    let place = match (f.step, f.device) {
        (Some(step), Some(device)) => format!("steps[{step}], device {device}"),
        (Some(step), None) => format!("steps[{step}]"),
        _ => "setup".to_string(),
    };
    Some(if f.expected.is_empty() && f.found.is_empty() {
        format!("failed at {place}: {}", f.what)
    } else {
        format!(
            "failed at {place}: {}: expected {}, found {}",
            f.what, f.expected, f.found
        )
    })
}

pub fn json(outcomes: &[Outcome]) -> String {
    serde_json::to_string_pretty(outcomes).expect("outcomes serialise")
}

/// JUnit XML (written by quick-junit), as CI systems read it: one test case per scenario,
/// its timeline as output.
pub fn junit(outcomes: &[Outcome]) -> Result<String, String> {
    let mut suite = TestSuite::new("scenarios");
    suite.add_test_cases(outcomes.iter().map(test_case));
    let total = outcomes.iter().map(|o| o.duration_ms).sum();
    suite.set_time(Duration::from_millis(total));
    let mut report = Report::new("host-sim");
    report
        .set_time(Duration::from_millis(total))
        .add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("JUnit XML not written: {e}"))
}

fn test_case(o: &Outcome) -> TestCase {
    let status = match failure_line(o) {
        Some(failure) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(failure).set_type("scenario");
            status
        }
        None => TestCaseStatus::success(),
    };
    let mut case = TestCase::new(o.name.as_str(), status);
    case.set_classname(o.file.as_str())
        .set_time(Duration::from_millis(o.duration_ms));
    if !o.steps.is_empty() {
        case.set_system_out(timeline(o));
    }
    if o.log.total > 0 {
        let mut log = log_heading(&o.log);
        for line in &o.log.lines {
            log.push('\n');
            log.push_str(line);
        }
        case.set_system_err(log);
    }
    case
}

/// The steps as plain lines, as the text report shows them without styles.
fn timeline(o: &Outcome) -> String {
    o.steps
        .iter()
        .map(|s| {
            let events = if s.events.is_empty() {
                String::new()
            } else {
                format!("  [{}]", s.events.join("; "))
            };
            format!("steps[{}] {} → {}{events}", s.index, s.step, s.result)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
