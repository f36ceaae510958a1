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

use abi_stable::std_types::RResult;
use plugin_api::{
    testing::TestHost, DataCategory, FileQuery, KsnTaskBox, LicenseState, Service, Verdict,
};

/// What the host has allowed, as the host knows it: widened before the call that widens
/// consent, narrowed after the call that narrows it returns.
#[derive(Default)]
struct Guard {
    global: AtomicBool,
    global_files: AtomicBool,
    private: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl Guard {
    /// Every delivery, as it arrives: allowed at that moment, or a violation.
    fn check(&self, service: Service, category: DataCategory, items: u32) {
        let allowed = match service {
            Service::PRIVATE => self.private.load(Ordering::SeqCst),
            Service::GLOBAL | Service::PROXY => {
                self.global.load(Ordering::SeqCst)
                    && (category != DataCategory::FILES || self.global_files.load(Ordering::SeqCst))
            }
            _ => false,
        };
        if !allowed {
            self.violations
                .lock()
                .unwrap()
                .push(format!("{items} {category} item(s) reached {service}"));
        }
        // A little latency, so withdrawals overlap sends.
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The contract's in-memory host, every delivery checked by `guard`; one file in seven is
/// untrusted (so detections count Managed Protection items too).
fn guarded_host(guard: &Arc<Guard>) -> TestHost {
    let host = TestHost::default();
    let watching = guard.clone();
    *host.0.watcher.lock().unwrap() = Some(Box::new(move |service, category, items| {
        watching.check(service, category, items)
    }));
    let mut files = host.0.ksn_files.lock().unwrap();
    for thread in 0..3u8 {
        for n in (0..300_000u32).step_by(7) {
            files.insert(md5_of(thread, n), Verdict::UNTRUSTED);
        }
    }
    drop(files);
    host
}

fn md5_of(thread: u8, n: u32) -> [u8; 16] {
    let mut md5 = [thread; 16];
    md5[..4].copy_from_slice(&n.to_le_bytes());
    md5
}

fn ok(result: RResult<(), plugin_api::TaskError>) {
    result.into_result().expect("toggler step");
}

const ACCEPT: &str =
    r#"{"data_handling": {"ksn_statement_accepted": true, "kmp_statement_accepted": true}}"#;
const WITHDRAW: &str = r#"{"data_handling": {"ksn_statement_accepted": false}}"#;

/// One round of consent changes, narrowing the host's view only after each call returns.
fn toggle(task: &KsnTaskBox, host: &TestHost, g: &Guard, pause: Duration) {
    // Global mode, accepted, running.
    std::thread::sleep(pause);
    ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": false}}"#.into()));
    g.global_files.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.global_files.store(true, Ordering::SeqCst);
    ok(task.set_local(r#"{"data_handling": {"send_scanned_files_data": true}}"#.into()));
    std::thread::sleep(pause);
    host.advance(60_000);

    ok(task.set_private_ksn(true));
    g.global.store(false, Ordering::SeqCst);
    std::thread::sleep(pause);
    g.private.store(true, Ordering::SeqCst);
    ok(task.set_local(ACCEPT.into()));
    ok(task.start());
    std::thread::sleep(pause);
    host.advance(60_000);

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
    let host = guarded_host(&guard);
    let task = plugin.new_task(host.services()).unwrap();
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
                    let _ = task.check_file(FileQuery {
                        md5: md5_of(thread, n),
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
            toggle(&task, &host, &guard, Duration::from_micros(300));
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

    let received = host.0.received.lock().unwrap().clone();
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
