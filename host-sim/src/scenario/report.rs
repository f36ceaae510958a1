//! Scenario reports: a readable timeline (styled; `anstream` drops the styles when the
//! output is not a terminal or `NO_COLOR` is set), JSON for machines, and JUnit XML for CI.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::runner::Outcome;

const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const STEP: Style = Style::new().dimmed();
const EVENTS: Style = AnsiColor::Cyan.on_default();
const PROBLEM: Style = AnsiColor::Red.on_default();

fn styled(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// The timeline of each scenario (every step when `steps`, else only failures'), then a
/// summary line.
pub fn text(outcomes: &[Outcome], steps: bool) -> String {
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
            for s in &o.steps {
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
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let summary = format!("{passed} of {} scenarios passed", outcomes.len());
    let style = if passed == outcomes.len() { PASS } else { FAIL };
    let _ = writeln!(out, "{}", styled(style, summary));
    out
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

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML, as CI systems read it: one test case per scenario, its timeline as output.
pub fn junit(outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| !o.passed).count();
    let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let total: u64 = outcomes.iter().map(|o| o.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"host-sim\" tests=\"{}\" failures=\"{failures}\" time=\"{}\">",
        outcomes.len(),
        seconds(total)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"scenarios\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
        outcomes.len(),
        seconds(total)
    );
    for o in outcomes {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">",
            xml(&o.file),
            xml(&o.name),
            seconds(o.duration_ms)
        );
        if let Some(failure) = failure_line(o) {
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"scenario\"/>",
                xml(&failure)
            );
        }
        let timeline: Vec<String> = o
            .steps
            .iter()
            .map(|s| {
                let events = if s.events.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", s.events.join("; "))
                };
                format!("steps[{}] {} → {}{events}", s.index, s.step, s.result)
            })
            .collect();
        if !timeline.is_empty() {
            let _ = write!(
                out,
                "\n      <system-out>{}</system-out>\n    ",
                xml(&timeline.join("\n"))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
