//! Scenario reports: readable text, or JSON for machines.

use std::fmt::Write;

use super::runner::Outcome;

pub fn text(outcomes: &[Outcome], steps: bool) -> String {
    let mut out = String::new();
    for o in outcomes {
        let mark = if o.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "{mark}  {}  ({})", o.name, o.file);
        if steps || !o.passed {
            for s in &o.steps {
                let _ = write!(out, "      steps[{}] {} → {}", s.index, s.step, s.result);
                if !s.events.is_empty() {
                    let _ = write!(out, "  [{}]", s.events.join("; "));
                }
                out.push('\n');
            }
        }
        if let Some(f) = &o.failure {
            let place = match (f.step, f.device) {
                (Some(step), Some(device)) => format!("steps[{step}], device {device}"),
                (Some(step), None) => format!("steps[{step}]"),
                _ => "setup".to_string(),
            };
            if f.expected.is_empty() && f.found.is_empty() {
                let _ = writeln!(out, "      failed at {place}: {}", f.what);
            } else {
                let _ = writeln!(
                    out,
                    "      failed at {place}: {}: expected {}, found {}",
                    f.what, f.expected, f.found
                );
            }
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let _ = writeln!(out, "{passed} of {} scenarios passed", outcomes.len());
    out
}

pub fn json(outcomes: &[Outcome]) -> String {
    serde_json::to_string_pretty(outcomes).expect("outcomes serialise")
}
