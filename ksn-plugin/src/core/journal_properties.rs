//! Property test: any mutation of a stored journal, byte by byte or JSON value by value,
//! gives either the very state the intact journal restores to, or `storage_error` naming
//! the damage; never a panic, never another state. A record forged whole (its checksum
//! recomputed) may restore to another valid state, but never panics.

use plugin_api::{ErrorKind, FileQuery, LicenseState, Verdict};
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::Value as Json;

use plugin_api::testing::TestHost;

use super::journal::JOURNAL_KEY;

use super::Task;

/// A journal with policies, consent, a mode change, detections and a restart in it.
fn journal() -> Vec<Vec<u8>> {
    let host = TestHost::default();
    host.0
        .ksn_files
        .lock()
        .unwrap()
        .insert([1; 16], Verdict::UNTRUSTED);
    let task = Task::new(host.clone()).unwrap();
    task.set_license(LicenseState::VALID).unwrap();
    task.push_policy(r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}}}, "task": {"checksum_limit_mb": 9}}}"#).unwrap();
    task.set_local(r#"{"task": {"action_on_untrusted": "log"}}"#)
        .unwrap();
    task.start().unwrap();
    task.check_file(FileQuery {
        md5: [1; 16],
        size_bytes: 10,
    });
    task.set_private_ksn(true).unwrap();
    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)
        .unwrap();
    drop(task);
    let task = Task::new(host.clone()).unwrap();
    task.set_local(r#"{"task": {"lookup_timeout_ms": 4000}}"#)
        .unwrap();
    drop(task);
    host.records(JOURNAL_KEY)
}

/// What a host sees of a restored task: its settings, or the error.
fn restored(records: &[Vec<u8>]) -> Result<String, plugin_api::TaskError> {
    let host = TestHost::default();
    host.set_records(JOURNAL_KEY, records.to_vec());
    // Reading only: a restore that would write is refused, so the journal is not changed.
    host.0
        .refuse_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let task = Task::new(host)?;
    let _ = task.task_log_json();
    Ok(task.settings_json())
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    /// Replaces the `node`-th JSON value of the record (in document order) with `with`.
    Value {
        node: usize,
        with: Json,
        forge: bool,
    },
}

fn json_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        "[a-z_]{0,12}".prop_map(Json::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!([{"seq": 0}])),
        Just(serde_json::json!({"seq": 1, "time_ms": 2, "type": "state_changed"})),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    prop_oneof![
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at.clone(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (at.clone(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        at.clone().prop_map(|at| Mutation::Truncate { at }),
        (at, json_value(), any::<bool>()).prop_map(|(node, with, forge)| Mutation::Value {
            node,
            with,
            forge
        }),
    ]
}

/// Visits every value of `json` in document order; replaces the `n`-th with `with`.
fn replace_node(json: &mut Json, n: &mut usize, with: &Json) -> bool {
    if *n == 0 {
        *json = with.clone();
        return true;
    }
    *n -= 1;
    match json {
        Json::Array(items) => items.iter_mut().any(|i| replace_node(i, n, with)),
        Json::Object(fields) => fields.values_mut().any(|v| replace_node(v, n, with)),
        _ => false,
    }
}

fn count_nodes(json: &Json) -> usize {
    1 + match json {
        Json::Array(items) => items.iter().map(count_nodes).sum(),
        Json::Object(fields) => fields.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies the mutation to one record; answers whether its checksum was forged.
fn mutate(record: &mut Vec<u8>, mutation: &Mutation) -> bool {
    let len = record.len().max(1);
    match mutation {
        Mutation::Flip { at, bit } => {
            let at = at % len;
            if let Some(b) = record.get_mut(at) {
                *b ^= 1 << bit;
            }
        }
        Mutation::Insert { at, byte } => record.insert(at % (record.len() + 1), *byte),
        Mutation::Delete { at, len: n } => {
            let at = at % len;
            let end = (at + n).min(record.len());
            record.drain(at.min(end)..end);
        }
        Mutation::Truncate { at } => record.truncate(at % len),
        Mutation::Value { node, with, forge } => {
            let Ok(mut json) = serde_json::from_slice::<Json>(&record[9..]) else {
                return false;
            };
            let mut n = node % count_nodes(&json);
            replace_node(&mut json, &mut n, with);
            let body = serde_json::to_vec(&json).unwrap();
            let sum = if *forge {
                format!("{:08x}", crc32fast::hash(&body))
            } else {
                String::from_utf8_lossy(&record[..8]).into_owned()
            };
            *record = [sum.as_bytes(), b" ", &body].concat();
            return *forge;
        }
    }
    false
}

fn cases() -> u32 {
    std::env::var("KSN_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_mutated_journal_restores_to_the_same_state_or_is_reported(
        which in any::<prop::sample::Index>(),
        mutation in mutation(),
    ) {
        let records = journal();
        let intact = restored(&records).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut mutated = records.clone();
        let index = which.index(mutated.len());
        let forged = mutate(&mut mutated[index], &mutation);
        match restored(&mutated) {
            Ok(state) if !forged => prop_assert_eq!(
                &state, &intact, "record {} mutated by {:?} restored to another state", index, mutation
            ),
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(e.kind, ErrorKind::STORAGE_ERROR, "{}", e.message);
                prop_assert!(e.message.contains("journal record"), "{}", e.message);
            }
        }
    }
}
