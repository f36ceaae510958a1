//! The three parsers of untrusted input (policy documents and local settings changes, as
//! the loaded plugin takes them through the ABI, and scenario files) against arbitrary JSON
//! and arbitrary text.
//!
//! Properties, for every input:
//! - no parser panics (a plugin that did would answer `plugin_panic`);
//! - every error is one line, non-empty, and names its place: `<place>: <reason>`, both
//!   non-empty;
//! - parsing is deterministic: the same text gives the same result.
//!
//! The generators draw object keys mostly from the formats' own vocabulary, so that inputs
//! get past the first `unknown key` and deep into the parsers, and partly from random
//! strings (including the empty string, newlines and other awkward characters).
//!
//! `KSN_PROPTEST_CASES` sets the total number of cases for this file (default 2000), shared
//! evenly among its properties.

use std::{collections::BTreeMap, collections::HashMap, fmt::Debug};

mod common;

use host_sim::scenario::{self, Scenario};
use plugin_api::{ErrorKind, TaskError};
use proptest::{prelude::*, sample::select, test_runner::TestCaseError};

/// Properties in this file, to share the case budget.
const PROPERTIES: u32 = 4;

fn config() -> ProptestConfig {
    let total = std::env::var("KSN_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases: (total / PROPERTIES).max(1),
        // A failure prints its minimal input; no regression file is written into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Vocabulary

const SECTIONS: &[&str] = &["data_handling", "task"];

/// The twelve settings of SPEC §2 (keys within their sections).
const SETTING_KEYS: &[&str] = &[
    "ksn_statement_accepted",
    "send_scanned_files_data",
    "send_scanned_urls_data",
    "send_statistics",
    "kmp_statement_accepted",
    "action_on_untrusted",
    "checksum_limit_enabled",
    "checksum_limit_mb",
    "use_ksc_as_ksn_proxy",
    "use_ksn_if_proxy_unavailable",
    "schedule",
    "lookup_timeout_ms",
];

const POLICY_KEYS: &[&str] = &["settings", "value", "locked"];

const SCENARIO_KEYS: &[&str] = &[
    "name",
    "description",
    "devices",
    "ksn",
    "local_lists",
    "launch_control",
    "steps",
    "do",
    "expect",
    "expect_error",
];

const STEP_NAMES: &[&str] = &[
    "push_policy",
    "set_local",
    "start",
    "stop",
    "set_private_ksn",
    "set_license",
    "set_network",
    "check_file",
    "check_url",
    "open_file",
    "launch_app",
    "restart_host",
    "advance_time",
    "reset_counters",
];

/// Parameters of `do` steps.
const STEP_PARAMS: &[&str] = &[
    "policy",
    "settings",
    "enabled",
    "state",
    "service",
    "up",
    "latency_ms",
    "md5",
    "size_bytes",
    "url",
    "ms",
    "expect",
];

/// Keys of `expect` steps, of a lookup's `expect`, of `received` and of the spec sections.
const EXPECT_KEYS: &[&str] = &[
    "state",
    "error",
    "network",
    "settings",
    "locked",
    "received",
    "events_include",
    "log_include",
    "verdict",
    "action",
    "source",
    "cached",
    "access",
    "decision",
    "global",
    "proxy",
    "private",
    "files",
    "urls",
    "statistics",
    "kmp",
    "total",
    "deny_untrusted_by_ksn",
    "allow_trusted_by_ksn",
    "allow",
    "deny",
];

/// String values the formats know: choices, kinds, states, verdicts, services, ...
const WORDS: &[&str] = &[
    "delete",
    "log",
    "manual",
    "at_application_start",
    "stopped",
    "running",
    "failed",
    "statement_not_accepted",
    "license_violation",
    "locked_by_policy",
    "unavailable_in_private_ksn",
    "invalid_settings",
    "invalid_state",
    "plugin_panic",
    "ksn_unavailable",
    "storage_error",
    "unknown",
    "trusted",
    "untrusted",
    "unavailable",
    "none",
    "deleted",
    "logged",
    "global",
    "proxy",
    "private",
    "valid",
    "expired",
    "no_ksn",
    "local_list",
    "private_database",
    "ksn",
    "allowed",
    "blocked",
    "allowed_and_logged",
    "denied",
    "data_handling.ksn_statement_accepted",
    "task.checksum_limit_mb",
    "00112233445566778899aabbccddeeff",
    "https://example.com/",
];

/// Keys that have tripped, or could trip, path spelling: empty, separators, line breaks.
const AWKWARD: &[&str] = &[
    "", " ", ".", "a.b", "steps[0]", ": ", "\n", "a\r\nb", "\0", "é",
];

/// Number literals at the edges: beyond i64/u64, beyond f64, negative zero, exponents.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "2.0",
    "1E2",
    "1e400",
    "-1e400",
    "1e-400",
    "4294967296",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
];

fn all_keys() -> Vec<&'static str> {
    [
        SECTIONS,
        SETTING_KEYS,
        POLICY_KEYS,
        SCENARIO_KEYS,
        STEP_NAMES,
        STEP_PARAMS,
        EXPECT_KEYS,
    ]
    .concat()
}

// ---------------------------------------------------------------------------------------
// JSON built as a tree and written as text, so numbers can be any literal (serde_json's
// `Value` cannot hold `1e400`) and objects can repeat a key.

#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    /// The literal, as written.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn obj(fields: impl IntoIterator<Item = (String, J)>) -> J {
        J::Obj(fields.into_iter().collect())
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let quote = |s: &str| serde_json::to_string(s).expect("strings serialise");
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&quote(s)),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(key));
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

// Strategies are boxed: unboxed, their nested types make stack frames (in a debug build)
// big enough to overflow a test thread's 2 MiB stack while generating.

/// Any string: `(?s)` lets `.` match line breaks too.
fn random_string() -> BoxedStrategy<String> {
    "(?s).{0,12}".boxed()
}

/// Object keys: mostly the formats' vocabulary, some awkward, some random.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(all_keys()).prop_map(String::from),
        1 => select(AWKWARD).prop_map(String::from),
        1 => "[a-z_]{0,10}",
        1 => random_string(),
    ]
    .boxed()
}

/// A key no format has: awkward or random. For the places where a parser repeats an
/// unknown key in its error.
fn odd_key() -> BoxedStrategy<String> {
    prop_oneof![select(AWKWARD).prop_map(String::from), random_string()].boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        // Around the settings' ranges (1..=1024, 100..=60000).
        3 => (0u32..70_000).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        1 => select(EDGE_NUMBERS).prop_map(String::from),
    ]
    .boxed()
}

fn string_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(WORDS).prop_map(String::from),
        1 => select(AWKWARD).prop_map(String::from),
        1 => random_string(),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number().prop_map(J::Num),
        string_value().prop_map(J::Str),
    ]
    .boxed()
}

/// Arbitrary JSON with vocabulary keys.
fn json() -> BoxedStrategy<J> {
    leaf()
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
                prop::collection::vec((key(), inner), 0..6).prop_map(J::Obj),
            ]
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Documents shaped like the formats, each level sometimes replaced by arbitrary JSON, so
// the parsers get past their first checks.

/// A setting's value in a policy: plain, `{"value", "locked"}` (keys in any mix), or junk.
fn policy_value() -> BoxedStrategy<J> {
    let wrapper_key = prop_oneof![
        4 => select(&["value", "locked"][..]).prop_map(String::from),
        1 => key(),
    ];
    prop_oneof![
        3 => leaf(),
        3 => prop::collection::vec((wrapper_key, leaf()), 0..3).prop_map(J::Obj),
        1 => json(),
    ]
    .boxed()
}

/// `{key: value}` inside one section.
fn section_body() -> BoxedStrategy<J> {
    let setting_key = prop_oneof![
        6 => select(SETTING_KEYS).prop_map(String::from),
        1 => key(),
    ];
    prop::collection::vec((setting_key, policy_value()), 0..5)
        .prop_map(J::Obj)
        .boxed()
}

/// `{section: {key: value}}`: a local change, or a policy's `settings`.
fn sections() -> BoxedStrategy<J> {
    let section_key = prop_oneof![
        6 => select(SECTIONS).prop_map(String::from),
        1 => key(),
    ];
    let body = prop_oneof![8 => section_body(), 1 => json()];
    prop::collection::vec((section_key, body), 0..3)
        .prop_map(J::Obj)
        .boxed()
}

fn policy() -> BoxedStrategy<J> {
    let extra = prop::option::weighted(0.1, (key(), json()));
    prop_oneof![
        6 => (sections(), extra).prop_map(|(settings, extra)| {
            J::obj(std::iter::once(("settings".to_string(), settings)).chain(extra))
        }),
        1 => json(),
    ]
    .boxed()
}

/// The value of an `expect` key, or of a step parameter.
fn expect_value() -> BoxedStrategy<J> {
    let counts = prop::collection::vec((key(), number().prop_map(J::Num)), 0..3).prop_map(J::Obj);
    prop_oneof![
        4 => leaf(),
        1 => prop::collection::vec(string_value().prop_map(J::Str), 0..3).prop_map(J::Arr),
        1 => prop::collection::vec((key(), leaf()), 0..4).prop_map(J::Obj),
        1 => prop::collection::vec((key(), counts), 0..3).prop_map(J::Obj),
        1 => json(),
    ]
    .boxed()
}

fn expect_object() -> BoxedStrategy<J> {
    let expect_key = prop_oneof![
        6 => select(EXPECT_KEYS).prop_map(String::from),
        1 => key(),
    ];
    prop::collection::vec((expect_key, expect_value()), 0..4)
        .prop_map(J::Obj)
        .boxed()
}

fn do_step() -> BoxedStrategy<J> {
    let name = prop_oneof![
        6 => select(STEP_NAMES).prop_map(|s| J::Str(s.to_string())),
        1 => leaf(),
    ];
    let param_key = prop_oneof![
        6 => select(STEP_PARAMS).prop_map(String::from),
        1 => key(),
    ];
    let param_value = prop_oneof![
        4 => leaf(),
        1 => policy(),
        1 => sections(),
        1 => expect_object(),
    ];
    let expect_error = prop::option::weighted(
        0.2,
        prop_oneof![4 => select(WORDS).prop_map(|s| J::Str(s.to_string())), 1 => leaf()],
    );
    (
        name,
        prop::collection::vec((param_key, param_value), 0..4),
        expect_error,
    )
        .prop_map(|(name, params, expect_error)| {
            let mut fields = vec![("do".to_string(), name)];
            fields.extend(params);
            fields.extend(expect_error.map(|e| ("expect_error".to_string(), e)));
            J::Obj(fields)
        })
        .boxed()
}

/// A word of the formats' vocabulary as a JSON string, now and then something else.
fn word() -> BoxedStrategy<J> {
    prop_oneof![
        6 => select(WORDS).prop_map(|w| J::Str(w.to_string())),
        1 => leaf(),
    ]
    .boxed()
}

fn typed_bool() -> BoxedStrategy<J> {
    prop_oneof![6 => any::<bool>().prop_map(J::Bool), 1 => leaf()].boxed()
}

fn md5() -> BoxedStrategy<String> {
    // The right length with one wrong character, which gets past the length check.
    let one_off =
        (0..32usize, select(&['\n', '\r', '`', '"', ' ', 'g'][..])).prop_map(|(at, c)| {
            let mut md5 = "00112233445566778899aabbccddeeff".to_string();
            md5.replace_range(at..=at, &c.to_string());
            md5
        });
    prop_oneof![
        3 => "[0-9a-fA-F]{32}",
        1 => one_off,
        1 => "[0-9a-z]{0,34}",
        1 => random_string(),
    ]
    .boxed()
}

fn url() -> BoxedStrategy<String> {
    prop_oneof![3 => "https://[a-z]{1,8}\\.com/[a-z]{0,4}", 1 => random_string()].boxed()
}

/// Keeps each field whose flag is set (optional fields come and go; required ones too,
/// now and then, so that `missing field` errors are covered).
fn keep(fields: Vec<(&str, J)>, flags: &[bool]) -> Vec<(String, J)> {
    fields
        .into_iter()
        .zip(flags.iter().chain(std::iter::repeat(&true)))
        .filter(|(_, keep)| **keep)
        .map(|((k, v), _)| (k.to_string(), v))
        .collect()
}

/// Whether to keep each of up to eight fields, each with probability `p`.
fn flags(p: f64) -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(prop::bool::weighted(p), 8)
}

/// The `expect` of a lookup step: each of `fields` present half the time (the first is
/// required, so its absence is an error too), with values of their types most of the time.
fn answer_expect(fields: &'static [&'static str]) -> BoxedStrategy<J> {
    let value = prop_oneof![4 => word(), 1 => typed_bool()];
    (prop::collection::vec(value, fields.len()), flags(0.5))
        .prop_map(move |(values, flags)| {
            J::Obj(keep(fields.iter().copied().zip(values).collect(), &flags))
        })
        .boxed()
}

/// A `do` step with the parameters its name takes, of the right types most of the time,
/// so that parsing gets past the step's shape to its values.
fn typed_do_step() -> BoxedStrategy<J> {
    let values = (
        (policy(), sections(), typed_bool(), word(), word(), word()),
        (number(), md5(), number(), url(), number()),
        (
            answer_expect(&["verdict", "action", "source", "cached"]),
            answer_expect(&["access"]),
            answer_expect(&["decision"]),
        ),
    );
    let expect_error = prop::option::weighted(0.2, word());
    (select(STEP_NAMES), values, expect_error, flags(0.85))
        .prop_map(|(name, values, expect_error, flags)| {
            let ((policy, settings, enabled, state, service, up), rest, expects) = values;
            let (latency, md5, size, url, ms) = rest;
            let (lookup, access, decision) = expects;
            let (md5, size) = (J::Str(md5), J::Num(size));
            let fields = match name {
                "push_policy" => vec![("policy", policy)],
                "set_local" => vec![("settings", settings)],
                "set_private_ksn" => vec![("enabled", enabled)],
                "set_license" => vec![("state", state)],
                "set_network" => {
                    vec![
                        ("service", service),
                        ("up", up),
                        ("latency_ms", J::Num(latency)),
                    ]
                }
                "check_file" => vec![("md5", md5), ("size_bytes", size), ("expect", lookup)],
                "open_file" => vec![("md5", md5), ("size_bytes", size), ("expect", access)],
                "launch_app" => vec![("md5", md5), ("size_bytes", size), ("expect", decision)],
                "check_url" => vec![("url", J::Str(url)), ("expect", lookup)],
                "advance_time" => vec![("ms", J::Num(ms))],
                _ => vec![],
            };
            let mut fields = keep(fields, &flags);
            fields.insert(0, ("do".to_string(), J::Str(name.to_string())));
            fields.extend(expect_error.map(|e| ("expect_error".to_string(), e)));
            J::Obj(fields)
        })
        .boxed()
}

/// An `expect` step's body: a few of its keys, each with a value of its type most of the
/// time.
fn typed_expect() -> BoxedStrategy<J> {
    let paths = prop_oneof![
        4 => (select(SECTIONS), select(SETTING_KEYS)).prop_map(|(s, k)| format!("{s}.{k}")),
        1 => key(),
    ];
    let settings = prop::collection::vec((paths.clone(), leaf()), 0..3).prop_map(J::Obj);
    let locked = prop::collection::vec(paths.prop_map(J::Str), 0..3).prop_map(J::Arr);
    let service = prop_oneof![
        4 => select(&["global", "proxy", "private"][..]).prop_map(String::from),
        1 => odd_key(),
    ];
    let count_key = prop_oneof![
        4 => select(&["files", "urls", "statistics", "kmp", "total"][..]).prop_map(String::from),
        1 => key(),
    ];
    let counts =
        prop::collection::vec((count_key, number().prop_map(J::Num)), 0..3).prop_map(J::Obj);
    let received = prop::collection::vec((service, counts), 0..3).prop_map(J::Obj);
    let partial = prop::collection::vec((key(), leaf()), 0..3).prop_map(J::Obj);
    let partials = prop::collection::vec(partial, 0..3).prop_map(J::Arr);
    let values = (
        (word(), word(), word(), settings, locked),
        (received, partials.clone(), partials),
    );
    (values, flags(0.4))
        .prop_map(|(values, flags)| {
            let ((state, error, network, settings, locked), rest) = values;
            let (received, events, log) = rest;
            let fields = vec![
                ("state", state),
                ("error", error),
                ("network", network),
                ("settings", settings),
                ("locked", locked),
                ("received", received),
                ("events_include", events),
                ("log_include", log),
            ];
            // A few of them, as a scenario writer checks a few things at a time.
            J::Obj(keep(fields, &flags))
        })
        .boxed()
}

fn step() -> BoxedStrategy<J> {
    let extra = prop::option::weighted(0.25, (prop_oneof![key(), odd_key()], leaf()));
    let expect = prop_oneof![3 => typed_expect(), 1 => expect_object()];
    prop_oneof![
        4 => typed_do_step(),
        2 => do_step(),
        3 => (expect, extra).prop_map(|(expect, extra)| {
            J::obj(std::iter::once(("expect".to_string(), expect)).chain(extra))
        }),
        1 => json(),
    ]
    .boxed()
}

/// `{files: {md5: verdict}, urls: {url: verdict}}`, as in `ksn.global` or `local_lists`.
fn database() -> BoxedStrategy<J> {
    let verdict = prop_oneof![
        4 => select(&["unknown", "trusted", "untrusted", "unavailable"][..])
            .prop_map(|v| J::Str(v.to_string())),
        1 => word(),
    ];
    let entries = |k: BoxedStrategy<String>| {
        prop::collection::vec((k, verdict.clone()), 0..3).prop_map(J::Obj)
    };
    let (md5, url) = (md5(), url());
    prop_oneof![
        4 => (entries(md5), entries(url)).prop_map(|(files, urls)| {
            J::obj([("files".to_string(), files), ("urls".to_string(), urls)])
        }),
        1 => json(),
    ]
    .boxed()
}

fn scenario_doc() -> BoxedStrategy<J> {
    let name = prop_oneof![9 => string_value().prop_map(J::Str), 1 => leaf()];
    let devices = prop_oneof![4 => (0u32..20).prop_map(|n| J::Num(n.to_string())), 1 => leaf()];
    let steps = prop_oneof![
        8 => prop::collection::vec(step(), 0..6).prop_map(J::Arr),
        1 => json(),
    ];
    let ksn = prop_oneof![
        3 => (database(), database()).prop_map(|(global, private)| {
            J::obj([("global".to_string(), global), ("private".to_string(), private)])
        }),
        1 => json(),
    ];
    let md5s = prop::collection::vec(md5().prop_map(J::Str), 0..3).prop_map(J::Arr);
    let launch_control = (typed_bool(), typed_bool(), md5s.clone(), md5s, flags(0.5)).prop_map(
        |(deny_untrusted, allow_trusted, allow, deny, flags)| {
            let fields = vec![
                ("deny_untrusted_by_ksn", deny_untrusted),
                ("allow_trusted_by_ksn", allow_trusted),
                ("allow", allow),
                ("deny", deny),
            ];
            J::Obj(keep(fields, &flags))
        },
    );
    // Every part optional, so missing `name` or `steps` is covered too.
    (
        prop::option::weighted(0.9, name),
        prop::option::weighted(0.2, devices),
        prop::option::weighted(0.2, ksn),
        prop::option::weighted(0.1, database()),
        prop::option::weighted(0.1, launch_control),
        prop::option::weighted(0.9, steps),
        prop::option::weighted(0.1, (key(), json())),
    )
        .prop_map(
            |(name, devices, ksn, local_lists, launch_control, steps, extra)| {
                let named = [
                    ("name", name),
                    ("devices", devices),
                    ("ksn", ksn),
                    ("local_lists", local_lists),
                    ("launch_control", launch_control),
                    ("steps", steps),
                ];
                J::obj(
                    named
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                        .chain(extra),
                )
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Text that is not (or not quite) JSON.

/// Pieces of JSON (and near-JSON) to glue together at random.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\"", "null", "true", "fals", "1e400", "-", "0", "\\",
    "\\u", "\\ud800", "\"settings\"", "\"steps\"", "\"do\"", "\"task\"", " ", "\n", "\u{feff}",
];

fn malformed_text() -> BoxedStrategy<String> {
    prop_oneof![
        // Arbitrary unicode.
        "(?s).{0,64}",
        // Arbitrary bytes, as a host reading a file lossily would see them.
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // JSON-ish token soup.
        prop::collection::vec(select(TOKENS), 0..24).prop_map(|t| t.concat()),
        // Nesting around serde_json's recursion limit (128).
        (
            1usize..300,
            select(&["[", "{\"settings\":", "{\"a\":"][..]),
            any::<bool>()
        )
            .prop_map(|(depth, open, close)| {
                let mut text = open.repeat(depth);
                if close {
                    text.push_str("null");
                    let closer = if open == "[" { "]" } else { "}" };
                    text.push_str(&closer.repeat(depth));
                }
                text
            }),
        // A shaped document cut short, or with one character spliced in.
        (
            prop_oneof![policy(), scenario_doc()].prop_map(|j| j.text()),
            any::<prop::sample::Index>(),
            prop::option::of(any::<char>()),
        )
            .prop_map(|(text, at, insert)| {
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                match insert {
                    None => text[..cut].to_string(),
                    Some(c) => format!("{}{c}{}", &text[..cut], &text[cut..]),
                }
            }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// The properties.

fn one_line(message: &str) -> bool {
    !message.contains(['\n', '\r'])
}

/// What is wrong with the plugin's refusal of a document, if anything: no panic, and the
/// message reads `<place>: <reason>`.
fn document_error_faults(e: &TaskError) -> Vec<&'static str> {
    let mut faults = error_faults(e.message.as_str());
    if e.kind == ErrorKind::PLUGIN_PANIC {
        faults.push("a panic");
    }
    faults
}

/// What is wrong with an error, if anything: it must read `<place>: <reason>`.
fn error_faults(e: &str) -> Vec<&'static str> {
    let mut faults = Vec::new();
    match e.split_once(": ") {
        None => faults.push("not of the form \"<place>: <reason>\""),
        Some((place, reason)) => {
            if place.is_empty() {
                faults.push("no place (nothing before \": \")");
            }
            if reason.is_empty() {
                faults.push("no reason");
            }
        }
    }
    if !one_line(e) {
        faults.push("more than one line");
    }
    faults
}

/// A parsed scenario as comparable text; its hash maps are sorted first, since two maps
/// with the same entries can iterate in different orders.
fn canonical(s: &Scenario) -> String {
    fn sorted<V: Debug>(map: &HashMap<String, V>) -> BTreeMap<&String, &V> {
        map.iter().collect()
    }
    let ksn = s.ksn.as_ref().map(|k| {
        [
            sorted(&k.global.files),
            sorted(&k.global.urls),
            sorted(&k.private.files),
            sorted(&k.private.urls),
        ]
    });
    let lists = [sorted(&s.local_lists.files), sorted(&s.local_lists.urls)];
    format!(
        "{:?} {:?} {} {ksn:?} {lists:?} {:?} {:?}",
        s.name, s.description, s.devices, s.launch_control, s.steps
    )
}

/// Runs all three parsers on `text`, twice each, and lists every property violated, so a
/// failure shows all that is wrong with its input at once. A panic propagates.
fn violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();

    // The plugin's parsers, through the ABI, each on a fresh device.
    type DocParser = fn(&plugin_api::KsnTaskBox, &str) -> Result<(), TaskError>;
    let doc_parsers: [(&str, DocParser); 2] = [
        ("push_policy", |task, t| {
            task.push_policy(t.into()).into_result()
        }),
        ("set_local", |task, t| {
            task.set_local(t.into()).into_result()
        }),
    ];
    for (method, parse) in doc_parsers {
        let first = parse(&common::device().task, text);
        let again = parse(&common::device().task, text);
        if first != again {
            found.push(format!(
                "{method}: not deterministic: {first:?} then {again:?}"
            ));
        }
        if let Err(e) = &first {
            for fault in document_error_faults(e) {
                found.push(format!("{method}: error with {fault}: {e:?}"));
            }
        }
    }

    let first = scenario::parse(text).map(|s| canonical(&s));
    let again = scenario::parse(text).map(|s| canonical(&s));
    if first != again {
        found.push(format!(
            "scenario::parse: not deterministic: {first:?} then {again:?}"
        ));
    }
    if let Err(e) = &first {
        for fault in error_faults(e) {
            found.push(format!("scenario::parse: error with {fault}: {e:?}"));
        }
    }
    found
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let found = violations(text);
    if found.is_empty() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "input {text:?}:\n  {}",
            found.join("\n  ")
        )))
    }
}

proptest! {
    #![proptest_config(config())]

    // Every input goes to all three parsers: a document given to the wrong one (a policy
    // as a scenario, ...) is as likely as a broken one.

    /// Arbitrary JSON.
    #[test]
    fn arbitrary_json(text in json().prop_map(|j| j.text())) {
        check(&text)?;
    }

    /// Policy-shaped documents (and, as `settings` bodies, local changes).
    #[test]
    fn policy_shaped(text in prop_oneof![policy(), sections()].prop_map(|j| j.text())) {
        check(&text)?;
    }

    /// Scenario-shaped documents.
    #[test]
    fn scenario_shaped(text in scenario_doc().prop_map(|j| j.text())) {
        check(&text)?;
    }

    /// Arbitrary text and bytes: mostly malformed JSON.
    #[test]
    fn malformed(text in malformed_text()) {
        check(&text)?;
    }
}
