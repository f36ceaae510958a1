//! Local settings changes (`parse_local`): never a panic; every error names its place (a
//! non-empty JSON path) and a reason, on one line; the same text always gives the same result.

#![no_main]

use ksn_plugin::core::doc::{parse_local, DocError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes text: input that is not UTF-8 never reaches it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse_local(text);
    assert_eq!(first, parse_local(text), "parse_local is not deterministic");
    if let Err(e) = &first {
        check(e);
    }
});

/// Panics (so libFuzzer records the input) when the error is not well formed.
fn check(e: &DocError) {
    assert!(!e.path.is_empty(), "error with no place: {e:?}");
    assert!(!e.reason.is_empty(), "error with no reason: {e:?}");
    assert!(
        !e.to_string().contains(['\n', '\r']),
        "error on more than one line: {e:?}"
    );
}
