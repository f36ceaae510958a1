//! Fail closed, through the loaded library: a host whose callbacks stop until the test
//! lets them go (no sleeps), that answers what the plugin does not know, whose clock goes
//! back, and whose storage refuses writes or holds a damaged journal.

mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    time::Duration,
};

use plugin_api::{
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec},
    },
    DataCategory, ErrorKind, FileQuery, HostServices, HostServices_TO, KsnReply, KsnTaskBox,
    LicenseState, Service, TaskState, TransportFailure, Verdict,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// A callback held: it says when it is reached and waits to be let go.
struct Hold {
    point: &'static str,
    reached: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

#[derive(Default)]
struct Scripted {
    now: AtomicU64,
    journal: Mutex<Vec<Vec<u8>>>,
    refuse_writes: AtomicBool,
    hold: Mutex<Option<Hold>>,
    verdict: Mutex<Option<Verdict>>,
    failure: Mutex<Option<TransportFailure>>,
    received: Mutex<Vec<(Service, DataCategory, u32)>>,
    events: Mutex<Vec<String>>,
    local_files: Mutex<HashMap<[u8; 16], Verdict>>,
}

#[derive(Clone, Default)]
struct ScriptedHost(Arc<Scripted>);

impl ScriptedHost {
    fn hold(&self, point: &'static str) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.0.hold.lock().unwrap() = Some(Hold {
            point,
            reached: reached_tx,
            release: release_rx,
        });
        (reached, release)
    }

    fn checkpoint(&self, point: &'static str) {
        let held = {
            let mut hold = self.0.hold.lock().unwrap();
            match hold.as_ref() {
                Some(h) if h.point == point => hold.take(),
                _ => None,
            }
        };
        if let Some(hold) = held {
            let _ = hold.reached.send(());
            let _ = hold.release.recv();
        }
    }

    fn deliver(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
    ) -> Result<u32, TransportFailure> {
        if let Some(failure) = *self.0.failure.lock().unwrap() {
            return Err(failure);
        }
        self.0
            .received
            .lock()
            .unwrap()
            .push((service, category, items));
        Ok(1)
    }

    fn received(&self, category: DataCategory) -> u32 {
        self.0
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c, _)| *c == category)
            .map(|(_, _, n)| n)
            .sum()
    }

    fn task(&self) -> KsnTaskBox {
        let host = HostServices_TO::from_value(self.clone(), TD_Opaque);
        common::plugin().new_task(host).unwrap()
    }
}

impl HostServices for ScriptedHost {
    fn emit_event(&self, event: RStr<'_>) {
        self.0.events.lock().unwrap().push(event.to_string());
    }
    fn now_ms(&self) -> u64 {
        self.0.now.load(Ordering::SeqCst)
    }
    fn storage_append(&self, _: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString> {
        if self.0.refuse_writes.load(Ordering::SeqCst) {
            return RErr("disk full".into());
        }
        self.0.journal.lock().unwrap().push(record.to_vec());
        ROk(())
    }
    fn storage_records(&self, _: RStr<'_>) -> RResult<RVec<RVec<u8>>, RString> {
        ROk(self
            .0
            .journal
            .lock()
            .unwrap()
            .iter()
            .map(|r| RVec::from(r.clone()))
            .collect())
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        self.0
            .local_files
            .lock()
            .unwrap()
            .get(&query.md5)
            .copied()
            .unwrap_or(Verdict::UNKNOWN)
    }
    fn local_url_verdict(&self, _: RStr<'_>) -> Verdict {
        Verdict::UNKNOWN
    }
    fn ksn_file(
        &self,
        service: Service,
        _: FileQuery,
        _: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.checkpoint("ksn_file");
        let verdict = self.0.verdict.lock().unwrap().unwrap_or(Verdict::TRUSTED);
        self.deliver(service, DataCategory::FILES, 1)
            .map(|latency_ms| KsnReply {
                ksn: verdict,
                private_database: Verdict::UNKNOWN,
                latency_ms,
            })
            .into()
    }
    fn ksn_url(
        &self,
        service: Service,
        _: RStr<'_>,
        _: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.checkpoint("ksn_url");
        self.deliver(service, DataCategory::URLS, 1)
            .map(|latency_ms| KsnReply {
                ksn: Verdict::UNKNOWN,
                private_database: Verdict::UNKNOWN,
                latency_ms,
            })
            .into()
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        _: u32,
    ) -> RResult<u32, TransportFailure> {
        self.deliver(service, category, items).into()
    }
    fn backup_and_delete(&self, _: FileQuery) -> RResult<(), RString> {
        self.checkpoint("backup_and_delete");
        ROk(())
    }
}

const ACCEPT: &str = r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}, "task": {"use_ksc_as_ksn_proxy": false}}"#;

fn running(host: &ScriptedHost) -> KsnTaskBox {
    let task = host.task();
    task.set_license(LicenseState::VALID).into_result().unwrap();
    task.set_local(ACCEPT.into()).into_result().unwrap();
    task.start().into_result().unwrap();
    task
}

fn ok(result: RResult<(), plugin_api::TaskError>) {
    result.into_result().unwrap()
}

#[test]
fn a_detection_held_across_a_withdrawal_sends_nothing_under_the_new_consent() {
    let host = ScriptedHost::default();
    host.0
        .local_files
        .lock()
        .unwrap()
        .insert([8; 16], Verdict::UNTRUSTED);
    let task = running(&host);
    let (reached, release) = host.hold("backup_and_delete");
    std::thread::scope(|s| {
        let lookup = s.spawn(|| {
            task.check_file(FileQuery {
                md5: [8; 16],
                size_bytes: 10,
            })
        });
        reached
            .recv_timeout(DEADLINE)
            .expect("held in the host's action");
        ok(task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#.into()));
        ok(task.set_local(ACCEPT.into()));
        ok(task.start());
        release.send(()).unwrap();
        assert_eq!(
            lookup.join().unwrap().into_result().unwrap().verdict,
            Verdict::UNTRUSTED
        );
    });
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    assert_eq!(
        host.received(DataCategory::STATISTICS) + host.received(DataCategory::KMP),
        0
    );
}

#[test]
fn a_files_only_withdrawal_does_not_wait_for_a_url_request_in_flight() {
    let host = ScriptedHost::default();
    let task = running(&host);
    let (reached, release) = host.hold("ksn_url");
    std::thread::scope(|s| {
        let lookup = s.spawn(|| task.check_url("https://slow.example/".into()));
        reached.recv_timeout(DEADLINE).unwrap();
        let (done_tx, done) = mpsc::channel();
        let task = &task;
        s.spawn(move || {
            ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#.into()));
            done_tx.send(()).unwrap();
        });
        done.recv_timeout(DEADLINE)
            .expect("the withdrawal returned while the URL request was held");
        release.send(()).unwrap();
        lookup.join().unwrap().into_result().unwrap();
    });
}

#[test]
fn a_withdrawal_takes_effect_while_storage_refuses_it_and_is_recorded_after() {
    let host = ScriptedHost::default();
    let task = running(&host);
    host.0.refuse_writes.store(true, Ordering::SeqCst);
    let err = task
        .set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#.into())
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
    assert_eq!(task.status().state, TaskState::STOPPED);
    let before = host.0.received.lock().unwrap().len();
    task.check_file(FileQuery {
        md5: [1; 16],
        size_bytes: 10,
    })
    .into_result()
    .unwrap();
    assert_eq!(host.0.received.lock().unwrap().len(), before);
    host.0.refuse_writes.store(false, Ordering::SeqCst);
    ok(task.tick());
    assert!(host
        .0
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains("storage_recovered")));
    drop(task);
    let restored = host.task();
    assert!(restored
        .settings_json()
        .into_result()
        .unwrap()
        .contains(r#""data_handling.ksn_statement_accepted":{"value":false"#));
}

#[test]
fn a_damaged_journal_is_reported_naming_the_record_never_a_panic() {
    let host = ScriptedHost::default();
    drop(running(&host));
    let good = host.0.journal.lock().unwrap().clone();
    for (index, damage) in [
        (
            good.len() - 1,
            b"00000000 {\"next_seq\":0,\"entries\":5}".to_vec(),
        ),
        (0, b"{\"first_seq\":0,\"entries\":5}".to_vec()),
        (good.len() - 1, good[good.len() - 1][..20].to_vec()),
    ] {
        let mut journal = good.clone();
        journal[index] = damage;
        let damaged = ScriptedHost::default();
        *damaged.0.journal.lock().unwrap() = journal;
        let host_box = HostServices_TO::from_value(damaged.clone(), TD_Opaque);
        match common::plugin().new_task(host_box) {
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::STORAGE_ERROR, "{e}");
                assert!(
                    e.message.contains(&format!("journal record {index}")),
                    "{e}"
                );
            }
            Ok(task) => {
                // Damage before the last snapshot: the state is whole, the log says so.
                let err = task.task_log_json().into_result().unwrap_err();
                assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
                assert!(
                    err.message.contains(&format!("journal record {index}")),
                    "{err}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_verdict_is_unknown_and_an_unknown_failure_is_not_delivered() {
    let host = ScriptedHost::default();
    let task = running(&host);
    *host.0.verdict.lock().unwrap() = Some(Verdict(99));
    let answer = task
        .check_file(FileQuery {
            md5: [3; 16],
            size_bytes: 10,
        })
        .into_result()
        .unwrap();
    assert_eq!(answer.verdict, Verdict::UNKNOWN);
    *host.0.failure.lock().unwrap() = Some(TransportFailure(42));
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    let counters: serde_json::Value =
        serde_json::from_str(&task.counters_json().into_result().unwrap()).unwrap();
    assert_eq!(counters["queued_statistics"], 1, "not taken as delivered");
}

#[test]
fn a_clock_that_goes_back_does_not_stop_the_batches() {
    let host = ScriptedHost::default();
    host.0.now.store(10 * 86_400_000, Ordering::SeqCst);
    let task = running(&host);
    task.check_file(FileQuery {
        md5: [4; 16],
        size_bytes: 10,
    })
    .into_result()
    .unwrap();
    host.0.now.fetch_sub(86_400_000, Ordering::SeqCst);
    ok(task.tick());
    host.0.now.fetch_add(60_000, Ordering::SeqCst);
    ok(task.tick());
    assert_eq!(host.received(DataCategory::STATISTICS), 1);
}
