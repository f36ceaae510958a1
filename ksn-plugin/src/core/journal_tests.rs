use plugin_api::{
    documents::{Importance, Statement},
    LicenseState, Service,
};

use super::*;
use crate::core::{
    consent::{Acceptance, Consent, Source},
    layers::Layers,
    stored::Stored,
    table::{Setting, Value},
};

fn entry(seq: u64, event: Event) -> String {
    let importance = crate::core::importance::importance(&event);
    entry_json(&LogEntry::new(seq, seq * 10, importance, event))
}

fn licence(seq: u64) -> String {
    entry(
        seq,
        Event::LicenseChanged {
            license: LicenseState::VALID,
        },
    )
}

fn consent(seq: u64, accepted: bool) -> String {
    entry(
        seq,
        Event::ConsentChanged {
            statement: Statement::Ksn,
            version: 1,
            accepted,
            source: Source::Local,
            category: None,
            with_statement: None,
        },
    )
}

fn layers() -> Layers {
    let mut layers = Layers::default();
    layers.set_local(Setting::ChecksumLimitMb, Value::Int(7), Source::Local);
    layers
}

fn accepted() -> Consent {
    Consent {
        ksn: Some(Acceptance {
            statement: Statement::Ksn,
            version: 1,
            source: Source::Local,
            time_ms: 3,
            record: 1,
        }),
        ..Consent::default()
    }
}

/// Four records: a snapshot, a second snapshot, entries only, and a state-only change.
fn journal() -> Vec<Vec<u8>> {
    let empty = Consent::default();
    let given = accepted();
    let layers = layers();
    let first = Stored::capture(
        &Layers::default(),
        &empty,
        false,
        LicenseState::UNKNOWN,
        false,
        None,
    );
    let second = Stored::capture(
        &layers,
        &given,
        true,
        LicenseState::VALID,
        true,
        Some(60_000),
    );
    vec![
        change_record(1, None, &[licence(0)], Some(&first)),
        change_record(3, None, &[consent(1, true), licence(2)], Some(&second)),
        change_record(
            4,
            None,
            &[entry(
                3,
                Event::KsnRestored {
                    service: Service::GLOBAL,
                },
            )],
            None,
        ),
        change_record(4, None, &[], Some(&second)),
    ]
}

#[test]
fn restore_takes_the_last_snapshot_and_resumes_numbering() {
    let records = journal();
    let restored = restore(&records).unwrap();
    assert_eq!(
        restored.next_seq, 4,
        "a record without entries keeps the numbering"
    );
    let state = restored.state.unwrap();
    assert_eq!(state.layers().unwrap(), layers());
    assert_eq!(state.consent, accepted());
    assert_eq!(state.last_batch_ms, Some(60_000));
    assert_eq!(restored.last_time_ms, 30);
    assert!(restored.damaged.is_empty());

    let log: Vec<LogEntry> = serde_json::from_str(&log_json(&records).unwrap()).unwrap();
    assert_eq!(log.len(), 4);
    assert!(matches!(log[2].event, Event::LicenseChanged { .. }));
    assert_eq!(log[3].seq, 3);
}

#[test]
fn an_empty_journal_restores_to_defaults() {
    assert_eq!(restore(&[]).unwrap(), Restored::default());
    assert_eq!(log_json(&[]).unwrap(), "[]");
}

#[test]
fn a_damaged_record_is_reported_by_number_and_never_guessed_at() {
    let records = journal();
    // A flipped byte in the last snapshot's record: the state cannot be trusted.
    let mut flipped = records.clone();
    let last = flipped[3].len() - 3;
    flipped[3][last] ^= 1;
    let err = restore(&flipped).unwrap_err();
    assert_eq!(err.record, 3);
    assert!(err.reason.contains("checksum"), "{err}");

    // A record of the wrong shape with a valid checksum: reported, no panic.
    for body in [
        r#"{"next_seq":1,"entries":5}"#,
        r#"{"next_seq":1,"entries":"x"}"#,
        r#"{"next_seq":1,"entries":[{"seq":"a"}]}"#,
        r#"{"next_seq":0,"entries":[{"seq":3,"time_ms":1,"type":"x"}]}"#,
        r#"{"next_seq":1,"base":{},"entries":[]}"#,
        r#"{"next_seq":1,"state":{"private_ksn":1},"entries":[]}"#,
        r#"{"next_seq":1,"entries":[],"extra":true}"#,
        "[]",
    ] {
        let record = format!("{:08x} {body}", crc32fast::hash(body.as_bytes())).into_bytes();
        let err = restore(std::slice::from_ref(&record)).unwrap_err();
        assert_eq!(err.record, 0, "{body}: {err}");
        // Reading the log needs only the entries, but never panics on any of these.
        let _ = log_json(&[record]);
    }

    // Damage before the last snapshot costs the log its entries, not the state.
    let mut early = records.clone();
    early[0][12] ^= 1;
    let restored = restore(&early).unwrap();
    assert_eq!(restored.state.unwrap().consent, accepted());
    assert_eq!(restored.damaged[0].record, 0);
    assert!(log_json(&early).is_err(), "the log says it is damaged");
}

#[test]
fn a_record_missing_from_the_middle_is_noticed() {
    let mut records = journal();
    records.remove(2);
    let err = restore(&records).unwrap_err();
    assert_eq!(err.record, 2);
    assert!(err.reason.contains("do not follow"), "{err}");
}

#[test]
fn pages_cover_the_log_in_order_without_gaps_or_repeats() {
    let records = journal();
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let page = page(&records, from, 3).unwrap();
        if page.entries.is_empty() {
            break;
        }
        assert_eq!(page.oldest_seq, Some(0));
        for e in &page.entries {
            seen.push(serde_json::from_str::<LogEntry>(e).unwrap().seq);
        }
        from = page.next_seq;
    }
    assert_eq!(seen, vec![0, 1, 2, 3]);
    assert_eq!(page(&records, 4, 3).unwrap().next_seq, 4);
    let doc: plugin_api::documents::LogPage =
        serde_json::from_str(&page(&records, 1, 2).unwrap().to_json()).unwrap();
    assert_eq!((doc.entries.len(), doc.next_seq), (2, 3));
}

#[test]
fn compaction_keeps_the_state_every_consent_record_and_the_retained_entries() {
    let mut records = journal();
    // Many more entries, only the newest kept.
    for seq in 4..104 {
        records.push(change_record(seq + 1, None, &[licence(seq)], None));
    }
    let given = accepted();
    let layers = layers();
    let state = Stored::capture(
        &layers,
        &given,
        true,
        LicenseState::VALID,
        true,
        Some(60_000),
    );
    let retention = LogRetention {
        max_entries: 10,
        max_age_ms: 0,
    };
    let base = compact(&records, &state, TaskState::RUNNING, 2_000, retention, None).unwrap();
    let compacted = vec![base.record];
    let restored = restore(&compacted).unwrap();
    assert_eq!(restored.next_seq, 104);
    assert_eq!(restored.last_task_state, Some(TaskState::RUNNING));
    assert_eq!(restored.state.unwrap().layers().unwrap(), layers);
    let log: Vec<LogEntry> = serde_json::from_str(&log_json(&compacted).unwrap()).unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs[0], 1, "the consent record is kept, however old");
    assert_eq!(&seqs[1..], (94..104).collect::<Vec<_>>().as_slice());
    // Later change records follow the base.
    let mut more = compacted.clone();
    more.push(change_record(105, None, &[licence(104)], None));
    assert_eq!(restore(&more).unwrap().next_seq, 105);

    // Retention by age: entries older than a minute go, consent records stay.
    let by_age = LogRetention {
        max_entries: 0,
        max_age_ms: 60,
    };
    let base = compact(&records, &state, TaskState::STOPPED, 1_030, by_age, None).unwrap();
    let log: Vec<LogEntry> = serde_json::from_str(&log_json(&[base.record]).unwrap()).unwrap();
    assert!(
        log.iter().all(|e| e.seq == 1 || e.time_ms >= 970),
        "{log:?}"
    );
}

#[test]
fn a_compaction_that_need_not_read_the_base_gives_what_reading_it_gives() {
    let given = accepted();
    let layers = layers();
    let state = Stored::capture(&layers, &given, true, LicenseState::VALID, true, None);
    let retention = LogRetention {
        max_entries: 10,
        max_age_ms: 0,
    };
    let mut records = journal();
    for seq in 4..30 {
        records.push(change_record(seq + 1, None, &[licence(seq)], None));
    }
    let first = compact(&records, &state, TaskState::RUNNING, 0, retention, None).unwrap();
    let mut journal = vec![first.record.clone()];
    assert_eq!(base_consent(&journal).unwrap(), first.consent);
    // More than the retention keeps after the base: its other entries all go.
    for seq in 30..45 {
        journal.push(change_record(seq + 1, None, &[licence(seq)], None));
    }
    let read = compact(&journal, &state, TaskState::RUNNING, 0, retention, None).unwrap();
    let known = compact(
        &journal,
        &state,
        TaskState::RUNNING,
        0,
        retention,
        Some(&first.consent),
    )
    .unwrap();
    assert_eq!(read.record, known.record);
    // Fewer: the base is read after all, and its newest others kept.
    let short = &journal[..5];
    let read = compact(short, &state, TaskState::RUNNING, 0, retention, None).unwrap();
    let known = compact(
        short,
        &state,
        TaskState::RUNNING,
        0,
        retention,
        Some(&first.consent),
    )
    .unwrap();
    assert_eq!(read.record, known.record);
    let log: Vec<LogEntry> = serde_json::from_str(&log_json(&[known.record]).unwrap()).unwrap();
    assert_eq!(log.len(), 11, "the consent record and the newest ten");
}

#[test]
fn an_entry_s_head_is_read_from_its_first_bytes_or_whole() {
    for raw in [
        r#"{"seq":7,"time_ms":9,"type":"consent_changed","statement":"ksn","version":1,"accepted":false,"source":"local"}"#,
        r#"{"seq":8,"time_ms":10,"type":"state_changed","from":"running","to":"stopped"}"#,
        r#"{"time_ms":10,"seq":8,"type":"license_changed","license":"valid"}"#,
        r#"{"seq":8,"time_ms":10,"type":"k\u0061","x":1}"#,
    ] {
        let quick = entry_head(raw).unwrap();
        let whole: EntryHead<'_> = serde_json::from_str(raw).unwrap();
        assert_eq!(
            (
                quick.seq,
                quick.time_ms,
                quick.kind.as_ref(),
                quick.to,
                quick.accepted.is_some()
            ),
            (
                whole.seq,
                whole.time_ms,
                whole.kind.as_ref(),
                whole.to,
                whole.accepted.is_some()
            ),
            "{raw}"
        );
    }
}

#[test]
fn a_one_entry_record_is_what_change_record_writes() {
    for entry in [
        LogEntry::new(
            41,
            7,
            Importance::Critical,
            Event::ObjectUntrusted {
                md5: Some("44d88612fea8a8f36de82e1278abb02f".into()),
                url: None,
                verdict: plugin_api::Verdict::UNTRUSTED,
                source: plugin_api::AnswerSource::KSN,
                action: plugin_api::ObjectAction::DELETE_FAILED,
                object: Some(3),
                path: Some("C:\\a \"b\".exe".into()),
                reason: Some("in use".into()),
            },
        ),
        LogEntry::new(
            0,
            0,
            Importance::Info,
            Event::KsnRestored {
                service: Service::PROXY,
            },
        ),
    ] {
        for from_seq in [None, Some(entry.seq)] {
            let write = |out: &mut Vec<u8>| serde_json::to_writer(out, &entry.event).unwrap();
            let (record, range) = one_entry_record(
                entry.seq,
                entry.time_ms,
                entry.importance(),
                write,
                from_seq,
            );
            let general = change_record(entry.seq + 1, from_seq, &[entry_json(&entry)], None);
            assert_eq!(
                String::from_utf8_lossy(&record),
                String::from_utf8_lossy(&general)
            );
            let back: LogEntry = serde_json::from_slice(&record[range]).unwrap();
            assert_eq!(back, entry);
        }
    }
}

#[test]
fn an_entry_is_written_as_the_log_entry_serialises() {
    let mut other = serde_json::Map::new();
    other.insert("type".into(), "quantum_scan".into());
    other.insert("qubits".into(), 3.into());
    for (importance, event) in [
        (
            Some(Importance::Warning),
            Event::OperationRefused {
                operation: "set_local".into(),
                kind: plugin_api::ErrorKind::LOCKED_BY_POLICY,
                message: "a \"quoted\"\nmessage".into(),
            },
        ),
        (
            None,
            Event::KsnRestored {
                service: Service::PROXY,
            },
        ),
        (Some(Importance::Info), Event::Other(other)),
    ] {
        let entry = LogEntry {
            seq: 12,
            time_ms: 34,
            importance,
            event,
        };
        assert_eq!(entry_json(&entry), serde_json::to_string(&entry).unwrap());
    }
}

/// `change_record` writes by hand what `RecordOut` serialises to.
#[test]
fn a_change_record_is_what_its_shape_serialises() {
    let (layers, given) = (layers(), accepted());
    let out = Stored::capture(
        &layers,
        &given,
        true,
        LicenseState::VALID,
        false,
        Some(60_000),
    );
    let entries = [licence(4), consent(5, false)];
    let raw: Vec<Box<RawValue>> = entries
        .iter()
        .map(|e| RawValue::from_string(e.clone()).unwrap())
        .collect();
    for (from_seq, with_state) in [(None, None), (Some(4), Some(&out)), (None, Some(&out))] {
        assert_eq!(
            String::from_utf8(change_record(6, from_seq, &entries, with_state)).unwrap(),
            String::from_utf8(encode(&RecordOut::change(6, from_seq, with_state, &raw))).unwrap()
        );
    }
}
