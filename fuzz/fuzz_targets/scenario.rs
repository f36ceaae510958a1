//! Scenario files (`host_sim::scenario::parse`): never a panic; every error reads
//! "<place>: <reason>", both non-empty, on one line; the same text always gives the same
//! result.

#![no_main]

use host_sim::scenario::{parse, Scenario};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes text: input that is not UTF-8 never reaches it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse(text).map(|s| comparable(&s));
    let again = parse(text).map(|s| comparable(&s));
    assert_eq!(first, again, "scenario::parse is not deterministic");
    if let Err(e) = &first {
        check(e);
    }
});

/// The parts of a scenario whose `Debug` text is stable. The `ksn` and `local_lists`
/// sections are hash maps, whose iteration order differs from one map to the next.
fn comparable(s: &Scenario) -> String {
    format!(
        "{:?} {:?} {} {:?} {:?}",
        s.name, s.description, s.devices, s.launch_control, s.steps
    )
}

/// Panics (so libFuzzer records the input) when the error is not well formed.
fn check(e: &str) {
    assert!(
        !e.contains(['\n', '\r']),
        "error on more than one line: {e:?}"
    );
    let Some((place, reason)) = e.split_once(": ") else {
        panic!("error not of the form \"<place>: <reason>\": {e:?}");
    };
    assert!(!place.is_empty(), "error with no place: {e:?}");
    assert!(!reason.is_empty(), "error with no reason: {e:?}");
}
