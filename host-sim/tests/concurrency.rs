//! Lookups on several threads while another thread withdraws consent and toggles Private
//! KSN many times, all through the loaded cdylib. The host knows which consent it has given
//! at every moment and checks each item when it arrives: nothing may arrive that no consent
//! allowed, and the plugin's ledger must agree with what arrived, item for item.

mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROk, RResult, RSlice, RStr, RString, RVec},
};
use plugin_api::{
    DataCategory, FileQuery, HostServices, HostServices_TO, KsnReply, KsnTaskBox, LicenseState,
    Service, TransportFailure, Verdict,
};

#[derive(Default)]
struct Guard {
    now: AtomicU64,
    journal: Mutex<Vec<Vec<u8>>>,
    /// What the host has allowed, as the host knows it: widened before the call that
    /// widens consent, narrowed after the call that narrows it returns.
    global: AtomicBool,
    global_files: AtomicBool,
    private: AtomicBool,
    received: Mutex<Vec<(Service, DataCategory, u32)>>,
    violations: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct GuardHost(Arc<Guard>);

impl GuardHost {
    fn deliver(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
    ) -> Result<u32, TransportFailure> {
        let g = &self.0;
        let allowed = match service {
            Service::PRIVATE => g.private.load(Ordering::SeqCst),
            Service::GLOBAL | Service::PROXY => {
                g.global.load(Ordering::SeqCst)
                    && (category != DataCategory::FILES || g.global_files.load(Ordering::SeqCst))
            }
            _ => false,
        };
        if !allowed {
            g.violations
                .lock()
                .unwrap()
                .push(format!("{items} {category} item(s) reached {service}"));
        }
        g.received.lock().unwrap().push((service, category, items));
        // A little latency, so withdrawals overlap sends.
        std::thread::sleep(Duration::from_micros(50));
        Ok(1)
    }
}

impl HostServices for GuardHost {
    fn emit_event(&self, _: RStr<'_>) {}
    fn now_ms(&self) -> u64 {
        self.0.now.load(Ordering::SeqCst)
    }
    fn storage_append(&self, _: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString> {
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
    fn local_file_verdict(&self, _: FileQuery) -> Verdict {
        Verdict::UNKNOWN
    }
    fn local_url_verdict(&self, _: RStr<'_>) -> Verdict {
        Verdict::UNKNOWN
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        _: u32,
    ) -> RResult<KsnReply, TransportFailure> {
        self.deliver(service, DataCategory::FILES, 1)
            .map(|latency_ms| KsnReply {
                ksn: if query.md5[0].is_multiple_of(7) {
                    Verdict::UNTRUSTED
                } else {
                    Verdict::TRUSTED
                },
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
        ROk(())
    }
}

fn ok(result: RResult<(), plugin_api::TaskError>) {
    result.into_result().expect("toggler step");
}

const ACCEPT: &str =
    r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}}"#;
const WITHDRAW: &str = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;

/// One round of consent changes, narrowing the host's view only after each call returns.
fn toggle(task: &KsnTaskBox, g: &Guard, pause: Duration) {
    // Global mode, accepted, running.
    std::thread::sleep(pause);
    ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#.into()));
    g.global_files.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.global_files.store(true, Ordering::SeqCst);
    ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": true}}"#.into()));
    std::thread::sleep(pause);
    g.now.fetch_add(60_000, Ordering::SeqCst);

    ok(task.set_private_ksn(true));
    g.global.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.private.store(true, Ordering::SeqCst);
    ok(task.set_local(ACCEPT.into()));
    ok(task.start());
    std::thread::sleep(pause);
    g.now.fetch_add(60_000, Ordering::SeqCst);

    ok(task.set_local(WITHDRAW.into()));
    g.private.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.private.store(true, Ordering::SeqCst);
    ok(task.set_local(ACCEPT.into()));
    ok(task.start());
    std::thread::sleep(pause);

    ok(task.set_private_ksn(false));
    g.private.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.global.store(true, Ordering::SeqCst);
    ok(task.set_local(ACCEPT.into()));
    ok(task.start());
}

#[test]
fn nothing_arrives_that_no_consent_allowed_and_the_ledger_agrees() {
    let rounds: usize = std::env::var("KSN_CONCURRENCY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let plugin = common::plugin();
    let guard = Arc::new(Guard::default());
    let host = HostServices_TO::from_value(GuardHost(guard.clone()), TD_Opaque);
    let task = plugin.module.new_task()(host).into_result().unwrap();
    ok(task.set_license(LicenseState::VALID));
    guard.global.store(true, Ordering::SeqCst);
    guard.global_files.store(true, Ordering::SeqCst);
    ok(task.set_local(ACCEPT.into()));
    ok(task.start());

    let done = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    std::thread::scope(|s| {
        for thread in 0..3u8 {
            let (task, done, lookups) = (&task, &done, &lookups);
            s.spawn(move || {
                let mut n: u32 = 0;
                while !done.load(Ordering::SeqCst) {
                    n = n.wrapping_add(1);
                    let mut md5 = [thread; 16];
                    md5[..4].copy_from_slice(&n.to_le_bytes());
                    let _ = task.check_file(FileQuery {
                        md5,
                        size_bytes: 100,
                    });
                    let _ = task.check_url(
                        format!("https://site{thread}.example/{}", n % 50)
                            .as_str()
                            .into(),
                    );
                    if n.is_multiple_of(16) {
                        let _ = task.tick();
                    }
                    lookups.fetch_add(2, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..rounds {
            toggle(&task, &guard, Duration::from_micros(300));
        }
        done.store(true, Ordering::SeqCst);
    });

    let violations = guard.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "{} violations, e.g. {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );

    let received = guard.received.lock().unwrap().clone();
    let mut arrived: HashMap<(String, String, u64), usize> = HashMap::new();
    for (service, category, items) in &received {
        *arrived
            .entry((service.to_string(), category.to_string(), u64::from(*items)))
            .or_default() += 1;
    }
    let ledger: Vec<serde_json::Value> =
        serde_json::from_str(&task.ledger_json().into_result().unwrap()).unwrap();
    let mut entered: HashMap<(String, String, u64), usize> = HashMap::new();
    for item in &ledger {
        let key = (
            item["service"].as_str().unwrap().to_string(),
            item["category"].as_str().unwrap().to_string(),
            item["items"].as_u64().unwrap(),
        );
        *entered.entry(key).or_default() += 1;
    }
    assert_eq!(ledger.len(), received.len());
    assert_eq!(entered, arrived, "ledger and host counts differ");

    // Not vacuous: every service and several categories were exercised.
    let count = |service: Service| received.iter().filter(|(s, _, _)| *s == service).count();
    assert!(
        count(Service::PROXY) > 0 && count(Service::PRIVATE) > 0,
        "{arrived:?}"
    );
    assert!(
        received
            .iter()
            .any(|(_, c, _)| *c == DataCategory::STATISTICS),
        "{arrived:?}"
    );
    assert!(lookups.load(Ordering::Relaxed) > 1000);
}
