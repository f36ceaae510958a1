//! Property tests: random sequences of what a host and its administrators do to the task
//! (policies with locks and statement versions, local changes, the Private KSN mode, the
//! licence, network outages, lookups, time, storage faults, host restarts, also while
//! records wait for storage), with the product's rules checked after every step.
//!
//! `KSN_PROPTEST_CASES` sets the number of sequences (default `DEFAULT_CASES`).

use std::fmt;

use plugin_api::{ErrorKind, FileQuery, LicenseState, Service, TaskError, TaskState, Verdict};
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::{json, Value as Json};

use plugin_api::testing::TestHost;

use super::Task;

const DEFAULT_CASES: u32 = 2000;

const KSN_BOX: &str = "data_handling.ksn_statement_accepted";
const KMP_BOX: &str = "data_handling.kmp_statement_accepted";
const SCHEDULE: &str = "task.schedule";

/// How a setting's values are generated.
#[derive(Clone, Copy)]
enum Kind {
    /// An acceptance box: mostly accepting, so that the task gets to run.
    Statement,
    Bool,
    Int(u32, u32),
    Choice(&'static [&'static str]),
}

/// The twelve settings of SPEC §2.
const SETTINGS: [(&str, Kind); 12] = [
    (KSN_BOX, Kind::Statement),
    ("data_handling.send_scanned_files_data", Kind::Bool),
    ("data_handling.send_scanned_urls_data", Kind::Bool),
    ("data_handling.send_statistics", Kind::Bool),
    (KMP_BOX, Kind::Statement),
    ("task.action_on_untrusted", Kind::Choice(&["delete", "log"])),
    ("task.checksum_limit_enabled", Kind::Bool),
    ("task.checksum_limit_mb", Kind::Int(1, 1024)),
    ("task.use_ksc_as_ksn_proxy", Kind::Bool),
    ("task.use_ksn_if_proxy_unavailable", Kind::Bool),
    (SCHEDULE, Kind::Choice(&["manual", "at_application_start"])),
    ("task.lookup_timeout_ms", Kind::Int(100, 60000)),
];

/// The Global-KSN boxes, unavailable in Private KSN mode.
const SEND_BOXES: [&str; 3] = [
    "data_handling.send_scanned_files_data",
    "data_handling.send_scanned_urls_data",
    "data_handling.send_statistics",
];

const URLS: [&str; 3] = [
    "http://good.example/",
    "http://bad.example/",
    "http://unknown.example/",
];

/// One value of a policy or a local change.
#[derive(Clone)]
struct Entry {
    path: &'static str,
    value: Json,
    /// Whether the value is of the setting's type and range.
    valid: bool,
    /// Policies only: `None` for a plain value, else `{"value": v, "locked": b}`.
    locked: Option<bool>,
    /// Policies only, an acceptance: the statement versions it names.
    versions: Versions,
}

/// The versions a policy's acceptance names.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Versions {
    /// Both of the KSN box's statements (and Managed Protection's), as shipped.
    Shipped,
    /// Only the statement of Global KSN mode.
    KsnOnly,
    /// Another version than the one shipped: not in force.
    Stale,
    /// None: refused (`invalid_settings`).
    Missing,
}

impl Versions {
    fn json(self, path: &str) -> Option<Json> {
        let kmp = path == KMP_BOX;
        match (self, kmp) {
            (Versions::Missing, _) => None,
            (Versions::Stale, true) => Some(json!({"kmp": 9})),
            (_, true) => Some(json!({"kmp": 1})),
            (Versions::Shipped, false) => Some(json!({"ksn": 1, "private_ksn": 1})),
            (Versions::KsnOnly, false) => Some(json!({"ksn": 1})),
            (Versions::Stale, false) => Some(json!({"ksn": 9, "private_ksn": 9})),
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path, self.value)?;
        match self.locked {
            Some(true) => write!(f, " locked"),
            Some(false) => write!(f, " unlocked"),
            None => Ok(()),
        }?;
        if self.value == json!(true)
            && matches!(
                SETTINGS.iter().find(|(p, _)| *p == self.path),
                Some((_, Kind::Statement))
            )
            && self.locked.is_some()
        {
            write!(f, " {:?}", self.versions)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    PushPolicy(Vec<Entry>),
    SetLocal(Vec<Entry>),
    SetPrivateKsn(bool),
    SetLicense(LicenseState),
    SetLink {
        service: Service,
        up: bool,
        latency_ms: u32,
    },
    Start,
    Stop,
    CheckFile {
        md5: u8,
        big: bool,
    },
    CheckUrl(usize),
    /// Host time passes, then the task's periodic work runs.
    Advance(u64),
    /// The host goes down and comes back: a new task over the same storage, which works
    /// again first (`mended`) or still refuses writes. The old task is dropped, or the
    /// process `killed` (the task never dropped); the new one's host keeps the task's
    /// events or none (`keeps_events`).
    Restart {
        mended: bool,
        killed: bool,
        keeps_events: bool,
    },
    /// The host's storage starts or stops refusing writes.
    Storage {
        fails: bool,
    },
    /// A detection whose host action is held while the consent is narrowed and widened
    /// again; what it counts must not be queued under the new consent.
    HeldDetection(Narrowing),
}

#[derive(Clone, Copy, Debug)]
enum Narrowing {
    Withdrawal,
    Statistics,
    PrivateKsnOn,
}

fn value(kind: Kind) -> BoxedStrategy<(Json, bool)> {
    let valid = match kind {
        Kind::Statement => prop_oneof![3 => Just(true), 1 => Just(false)]
            .prop_map(Json::from)
            .boxed(),
        Kind::Bool => any::<bool>().prop_map(Json::from).boxed(),
        Kind::Int(min, max) => prop_oneof![Just(min), Just(max), min..=max]
            .prop_map(Json::from)
            .boxed(),
        Kind::Choice(options) => proptest::sample::select(options)
            .prop_map(Json::from)
            .boxed(),
    };
    let invalid = match kind {
        Kind::Int(min, max) => proptest::sample::select(vec![
            json!(min - 1),
            json!(max + 1),
            json!(-1),
            json!(min.to_string()),
        ])
        .boxed(),
        Kind::Choice(_) => proptest::sample::select(vec![json!("quarantine"), json!(1)]).boxed(),
        _ => proptest::sample::select(vec![json!("yes"), json!(1), Json::Null]).boxed(),
    };
    prop_oneof![
        25 => valid.prop_map(|v| (v, true)),
        1 => invalid.prop_map(|v| (v, false)),
    ]
    .boxed()
}

/// Random distinct settings among `indices`, each with a random value (and lock, for a
/// policy).
fn entries(indices: Vec<usize>, max: usize, policy: bool) -> BoxedStrategy<Vec<Entry>> {
    proptest::sample::subsequence(indices, 0..=max)
        .prop_flat_map(move |chosen| {
            chosen
                .into_iter()
                .map(|i| {
                    let (path, kind) = SETTINGS[i];
                    let locked = if policy {
                        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))].boxed()
                    } else {
                        Just(None).boxed()
                    };
                    let versions = prop_oneof![
                        6 => Just(Versions::Shipped),
                        2 => Just(Versions::KsnOnly),
                        1 => Just(Versions::Stale),
                        1 => Just(Versions::Missing),
                    ];
                    (value(kind), locked, versions).prop_map(
                        move |((value, valid), mut locked, versions)| {
                            let acceptance =
                                policy && matches!(kind, Kind::Statement) && value == json!(true);
                            // A policy's acceptance is an object with its versions.
                            if acceptance {
                                locked = Some(locked.unwrap_or(false));
                            }
                            Entry {
                                path,
                                valid: valid && !(acceptance && versions == Versions::Missing),
                                value,
                                locked,
                                versions,
                            }
                        },
                    )
                })
                .collect::<Vec<_>>()
        })
        .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let all: Vec<usize> = (0..SETTINGS.len()).collect();
    // Local changes favour the boxes: acceptance, withdrawal, partial withdrawal.
    let accept = Entry {
        path: KSN_BOX,
        value: json!(true),
        valid: true,
        locked: None,
        versions: Versions::Shipped,
    };
    let local = prop_oneof![
        2 => Just(vec![accept]),
        3 => entries(vec![0, 1, 2, 3, 4], 3, false),
        2 => entries(all.clone(), 4, false),
    ];
    let service = proptest::sample::select(vec![Service::GLOBAL, Service::PROXY, Service::PRIVATE]);
    let latency = proptest::sample::select(vec![1u32, 80, 150, 5_000, 70_000]);
    let licence = prop_oneof![
        2 => Just(LicenseState::VALID),
        1 => Just(LicenseState::EXPIRED),
        1 => Just(LicenseState::NO_KSN),
    ];
    let ms = proptest::sample::select(vec![500u64, 30_000, 61_000, 400_000, 3_700_000]);
    prop_oneof![
        3 => entries(all, 6, true).prop_map(Op::PushPolicy),
        5 => local.prop_map(Op::SetLocal),
        1 => any::<bool>().prop_map(Op::SetPrivateKsn),
        1 => licence.prop_map(Op::SetLicense),
        2 => (service, prop_oneof![3 => Just(true), 1 => Just(false)], latency)
            .prop_map(|(service, up, latency_ms)| Op::SetLink { service, up, latency_ms }),
        4 => Just(Op::Start),
        1 => Just(Op::Stop),
        5 => (0u8..5, prop_oneof![4 => Just(false), 1 => Just(true)])
            .prop_map(|(md5, big)| Op::CheckFile { md5, big }),
        3 => (0..URLS.len()).prop_map(Op::CheckUrl),
        2 => ms.prop_map(Op::Advance),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(mended, killed, keeps_events)| Op::Restart { mended, killed, keeps_events }
        ),
        1 => any::<bool>().prop_map(|fails| Op::Storage { fails }),
        1 => prop_oneof![
            Just(Narrowing::Withdrawal),
            Just(Narrowing::Statistics),
            Just(Narrowing::PrivateKsnOn),
        ]
        .prop_map(Op::HeldDetection),
    ]
}

fn policy_json(entries: &[Entry]) -> String {
    let mut settings = json!({});
    for e in entries {
        let (section, key) = e.path.split_once('.').expect("paths are section.key");
        settings[section][key] = match e.locked {
            None => e.value.clone(),
            Some(locked) => {
                let mut wrapped = json!({ "value": e.value, "locked": locked });
                if let (Kind::Statement, Some(versions)) =
                    (kind_of(e.path), e.versions.json(e.path))
                {
                    wrapped["versions"] = versions;
                }
                wrapped
            }
        };
    }
    json!({ "settings": settings }).to_string()
}

fn kind_of(path: &str) -> Kind {
    SETTINGS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, k)| *k)
        .expect("a setting of the table")
}

fn local_json(entries: &[Entry]) -> String {
    let mut doc = json!({});
    for e in entries {
        let (section, key) = e.path.split_once('.').expect("paths are section.key");
        doc[section][key] = e.value.clone();
    }
    doc.to_string()
}

/// What the host sees of the task between two steps.
#[derive(Clone)]
struct Seen {
    settings: Json,
    state: TaskState,
    error: Option<ErrorKind>,
}

impl Seen {
    /// Whether `explain` says that part of a change waits for storage.
    fn shows_waiting(&self) -> bool {
        self.settings["details"].as_object().is_some_and(|d| {
            d.values()
                .any(|v| v["why"].as_str().is_some_and(|w| w.contains("waits:")))
        })
    }

    fn value(&self, path: &str) -> &Json {
        &self.settings["details"][path]["value"]
    }

    fn accepted(&self) -> bool {
        self.value(KSN_BOX) == &json!(true)
    }

    fn locked(&self) -> Vec<&str> {
        self.settings["locked"]
            .as_array()
            .expect("locked is a list")
            .iter()
            .map(|p| p.as_str().expect("locked paths are strings"))
            .collect()
    }
}

/// One step, as the checks see it.
struct Step<'a> {
    op: &'a Op,
    before: Seen,
    after: Seen,
    outcome: Result<(), TaskError>,
    /// Task-log entries appended during the step.
    logged: Vec<Json>,
    /// Requests the KSN services received during the step.
    delivered: Vec<Service>,
    /// Whether Private KSN was on before and after the step (it changes only by
    /// `SetPrivateKsn`, which sends nothing itself).
    private_ksn: (bool, bool),
    licence: LicenseState,
    /// The statement (`ksn` or `private_ksn`) of the latest acceptance in the whole log.
    last_acceptance: Option<String>,
    /// Whether storage refused writes at the end of the step.
    storage_fails: bool,
    /// A restart over a host that keeps no events while storage refused writes: what
    /// waited for storage is lost (the task fails closed instead).
    lossy_restart: bool,
    /// Whether part of an earlier change waited for storage when the step began: it may
    /// apply during any operation (in order, before it).
    rest_waiting: bool,
}

impl Step<'_> {
    fn private_ksn_during(&self) -> bool {
        self.private_ksn.0 || self.private_ksn.1
    }

    fn logged_of<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Json> + 's {
        self.logged.iter().filter(move |e| e["type"] == kind)
    }
}

/// The host side of one device, and what it knows: the licence and mode it reports.
struct Device {
    host: TestHost,
    task: Option<Task<TestHost>>,
    licence: LicenseState,
    private_ksn: bool,
    seen: Seen,
    /// The number of the last log entry seen, and every consent record seen (they are
    /// never dropped: the audit trail).
    last_seq: Option<u64>,
    consent_records: Vec<String>,
    last_acceptance: Option<String>,
    /// What the last policy accepted set each Global-KSN box to (value, locked), and
    /// whether a local change accepted since touched the box.
    policy_sends: [Option<(Json, bool)>; 3],
    changed_locally: [bool; 3],
    /// A rule broken inside an operation (`held_detection`).
    violation: Option<String>,
    /// By permission (`PERMISSIONS`): the step that last withdrew it.
    withdrawn_at: [Option<usize>; 5],
    /// The step whose change left a part waiting for storage (its acceptances count from
    /// then), until a restart loses it.
    rest_at: Option<usize>,
    /// Which Global-KSN boxes the policy in force names, when the model knows (not while
    /// part of a change waits, or after a restart lost what waited).
    policy_names: Option<[bool; 3]>,
    steps: usize,
}

/// What the administrator's consent allows, as the host sees it: the statement, each
/// Global-KSN category (in Global KSN mode) and Managed Protection.
const PERMISSIONS: [&str; 5] = [
    KSN_BOX,
    "data_handling.send_scanned_files_data",
    "data_handling.send_scanned_urls_data",
    "data_handling.send_statistics",
    KMP_BOX,
];

fn permission(seen: &Seen, private_ksn: bool, path: &str) -> bool {
    match path {
        KSN_BOX | KMP_BOX => seen.value(path) == &json!(true),
        category => seen.accepted() && !private_ksn && seen.value(category) == &json!(true),
    }
}

impl Device {
    fn new() -> Result<Self, TestCaseError> {
        let host = TestHost::default();
        // A short retention (more than any one step logs), so that the journal is
        // compacted every few steps.
        *host.0.retention.lock().unwrap() = Some(plugin_api::LogRetention {
            max_entries: 24,
            max_age_ms: 0,
        });
        // File 0 is on the local allow list; the services know files 1 to 3 (the Private
        // KSN database overrides file 1) and the first two URLs; file 4 is unknown.
        let w = &host.0;
        let files = [
            (&w.local_files, 0, Verdict::TRUSTED),
            (&w.local_files, 5, Verdict::UNTRUSTED),
            (&w.ksn_files, 1, Verdict::UNTRUSTED),
            (&w.ksn_files, 2, Verdict::TRUSTED),
            (&w.private_files, 1, Verdict::TRUSTED),
            (&w.private_files, 3, Verdict::UNTRUSTED),
        ];
        for (list, md5, verdict) in files {
            list.lock().unwrap().insert([md5; 16], verdict);
        }
        let mut urls = w.ksn_urls.lock().unwrap();
        urls.insert(URLS[0].into(), Verdict::TRUSTED);
        urls.insert(URLS[1].into(), Verdict::UNTRUSTED);
        drop(urls);
        let mut device = Self {
            host,
            task: None,
            licence: LicenseState::VALID,
            private_ksn: false,
            seen: Seen {
                settings: Json::Null,
                state: TaskState::STOPPED,
                error: None,
            },
            last_seq: None,
            consent_records: Vec::new(),
            last_acceptance: None,
            policy_sends: Default::default(),
            changed_locally: [false; 3],
            violation: None,
            withdrawn_at: [None; 5],
            rest_at: None,
            policy_names: Some([false; 3]),
            steps: 0,
        };
        device.boot().map_err(|e| fail("the first start", e))?;
        device.seen = device.see();
        device.read_log(false)?;
        Ok(device)
    }

    fn task(&self) -> &Task<TestHost> {
        self.task.as_ref().expect("the task exists between steps")
    }

    /// What a host does at each start: a task over its storage, then the licence and the
    /// mode, then "the application has started".
    fn boot(&mut self) -> Result<(), TaskError> {
        self.task = None;
        let created = match Task::new(self.host.clone()) {
            // Over a host that keeps no events, a task whose first record storage refuses
            // is not created: the host tries again once storage works.
            Err(e)
                if e.kind == ErrorKind::STORAGE_ERROR && e.message.contains("keeps no events") =>
            {
                self.storage(false);
                Task::new(self.host.clone())?
            }
            other => other?,
        };
        let task = self.task.insert(created);
        // What the host reports takes effect whatever storage does: a storage error only
        // says that its record waits.
        let reported = |r: Result<(), TaskError>| match r {
            Err(e) if e.kind == ErrorKind::STORAGE_ERROR => Ok(()),
            other => other,
        };
        reported(task.set_license(self.licence))?;
        reported(task.set_private_ksn(self.private_ksn))?;
        // A scheduled start that is refused says so, and the task stays stopped.
        match reported(task.application_started()) {
            Err(e) if e.message.starts_with("the scheduled start was refused") => {
                if task.status().state == TaskState::RUNNING {
                    return Err(TaskError::invalid_state(format_args!(
                        "application_started answered {e} but the task runs"
                    )));
                }
                Ok(())
            }
            other => other,
        }
    }

    fn see(&self) -> Seen {
        let task = self.task();
        let status = task.status();
        Seen {
            settings: serde_json::from_str(&task.settings_json()).expect("settings are JSON"),
            state: status.state,
            error: status.error.into_option(),
        }
    }

    /// The entries appended to the task log since the last call. The journal is compacted
    /// (the host keeps a short retention here, so it is, often): what was there may go, but
    /// for the consent records, which stay byte for byte; new entries follow the old ones.
    fn read_log(&mut self, may_lose: bool) -> Result<Vec<Json>, TestCaseError> {
        let text = self
            .task()
            .task_log_json()
            .map_err(|e| fail("task_log_json", e))?;
        let entries: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&text).expect("the log is JSON");
        let seq = |raw: &serde_json::value::RawValue| {
            serde_json::from_str::<Json>(raw.get()).expect("entries are JSON")["seq"]
                .as_u64()
                .expect("entries are numbered")
        };
        let seqs: Vec<u64> = entries.iter().map(|e| seq(e)).collect();
        prop_assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "the log is out of order: {seqs:?}"
        );
        // A record reconciled after a restart (storage had not taken it) has a new number.
        let unnumbered = |text: &str| {
            let mut entry: Json = serde_json::from_str(text).expect("entries are JSON");
            entry
                .as_object_mut()
                .expect("entries are objects")
                .remove("seq");
            entry
        };
        let kept: Vec<Json> = entries.iter().map(|e| unnumbered(e.get())).collect();
        let mut lost = Vec::new();
        for consent in &self.consent_records {
            if !(entries.iter().any(|e| e.get() == consent) || kept.contains(&unnumbered(consent)))
            {
                lost.push(consent.clone());
            }
        }
        // Only over a host that keeps no events can a restart lose a record that storage
        // never took (a withdrawal made while it refused writes); the task then fails
        // closed: no acceptance is in force after it (rule 12, `unverified_restart`).
        if !lost.is_empty() {
            prop_assert!(
                may_lose && self.seen.value(KSN_BOX) == &json!(false),
                "consent records were dropped: {lost:?}"
            );
            self.consent_records.retain(|c| !lost.contains(c));
        }
        let logged: Vec<Json> = entries
            .iter()
            .filter(|e| self.last_seq.is_none_or(|last| seq(e) > last))
            .map(|e| serde_json::from_str(e.get()).expect("entries are JSON"))
            .collect();
        if let Some(last) = seqs.last() {
            self.last_seq = Some(*last);
        }
        for e in &logged {
            if e["type"] == "consent_changed" {
                let raw = entries
                    .iter()
                    .find(|r| seq(r) == e["seq"].as_u64().unwrap_or(u64::MAX))
                    .expect("a logged entry is in the log");
                self.consent_records.push(raw.get().to_string());
            }
        }
        for e in &logged {
            let statement = e["statement"].as_str().unwrap_or_default();
            if e["type"] == "consent_changed"
                && e["accepted"] == true
                && e.get("category").is_none()
                && (statement == "ksn" || statement == "private_ksn")
            {
                self.last_acceptance = Some(statement.to_string());
            }
        }
        Ok(logged)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TaskError> {
        let task = self.task.as_ref().expect("the task exists between steps");
        match op {
            Op::PushPolicy(entries) => task.push_policy(&policy_json(entries)),
            Op::SetLocal(entries) => task.set_local(&local_json(entries)),
            Op::SetPrivateKsn(enabled) => {
                self.private_ksn = *enabled;
                task.set_private_ksn(*enabled)
            }
            Op::SetLicense(licence) => {
                self.licence = *licence;
                task.set_license(*licence)
            }
            Op::SetLink {
                service,
                up,
                latency_ms,
            } => {
                self.host.set_link(*service, *up, *latency_ms);
                Ok(())
            }
            Op::Start => task.start(),
            Op::Stop => task.stop(),
            Op::CheckFile { md5, big } => {
                task.check_file(FileQuery {
                    md5: [*md5; 16],
                    size_bytes: if *big { 3 << 20 } else { 1000 },
                });
                Ok(())
            }
            Op::CheckUrl(i) => {
                task.check_url(URLS[*i]).unwrap();
                Ok(())
            }
            Op::Advance(ms) => {
                self.host.advance(*ms);
                task.tick();
                Ok(())
            }
            Op::Restart {
                mended,
                killed,
                keeps_events,
            } => {
                // Storage mended first: what waited is written before the task goes.
                if *mended {
                    self.storage(false);
                    task.tick();
                }
                if *killed {
                    std::mem::forget(self.task.take());
                }
                self.host
                    .0
                    .forget_events
                    .store(!keeps_events, std::sync::atomic::Ordering::SeqCst);
                // A host that keeps no events has none to answer later either.
                if !keeps_events {
                    self.host.0.events.lock().unwrap().clear();
                }
                self.boot()
            }
            Op::Storage { fails } => {
                self.storage(*fails);
                Ok(())
            }
            Op::HeldDetection(narrowing) => self.held_detection(*narrowing),
        }
    }

    fn storage(&self, fails: bool) {
        self.host
            .0
            .refuse_writes
            .store(fails, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs a detection of the locally denied file 5 whose host action is held while the
    /// consent is narrowed and then widened again (accepted, and started); once let go,
    /// nothing it counted may be queued.
    fn held_detection(&mut self, narrowing: Narrowing) -> Result<(), TaskError> {
        let task = self.task.as_ref().expect("the task exists between steps");
        // The action is held only if there is one: a file is deleted, with a backup.
        if task.status().state != TaskState::RUNNING
            || self.seen.value("task.action_on_untrusted") != "delete"
        {
            return Ok(());
        }
        let (reached, release) = self.host.hold("backup_and_delete");
        let accept =
            r#"{"data_handling": {"ksn_statement_accepted": true, "send_statistics": true}}"#;
        let outcome = std::thread::scope(|s| {
            let lookup = s.spawn(|| {
                task.check_file(FileQuery {
                    md5: [5; 16],
                    size_bytes: 10,
                })
            });
            if reached
                .recv_timeout(std::time::Duration::from_secs(20))
                .is_err()
            {
                // The task did not reach the action (no delete configured): nothing held.
                *self.host.0.hold.lock().unwrap() = None;
                let _ = lookup.join();
                return false;
            }
            let narrowed = match narrowing {
                Narrowing::Withdrawal => {
                    task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#)
                }
                Narrowing::Statistics => {
                    task.set_local(r#"{"data_handling": {"send_statistics": false}}"#)
                }
                Narrowing::PrivateKsnOn => {
                    self.private_ksn = !self.private_ksn;
                    task.set_private_ksn(self.private_ksn)
                }
            };
            let took_effect = took_effect(&narrowed);
            let widened = task
                .set_local(accept)
                .and_then(|()| match task.status().state {
                    TaskState::RUNNING => Ok(()),
                    _ => task.start(),
                });
            let _ = release.send(());
            let _ = lookup.join();
            let _ = widened;
            took_effect
        });
        if !outcome {
            // Refused (a lock, say): the consent did not change, nor should the queue.
            return Ok(());
        }
        let counters = task.counters();
        let queued = match narrowing {
            // Managed Protection's consent did not change: its item stays queued.
            Narrowing::Statistics => counters.queued_statistics,
            _ => counters.queued_statistics + counters.queued_kmp,
        };
        if queued != 0 {
            self.violation = Some(format!(
                "{queued} item(s) counted under the consent before the {narrowing:?} are queued under the one after"
            ));
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before = self.seen.clone();
        let private_before = self.private_ksn;
        let received_before = self.host.0.received.lock().unwrap().len();
        let storage_failed_before = self
            .host
            .0
            .refuse_writes
            .load(std::sync::atomic::Ordering::SeqCst);
        // (A killed host loses what waited even if storage works again: nothing wrote it.)
        let lossy_restart = matches!(
            op,
            Op::Restart {
                mended: false,
                keeps_events: false,
                killed,
            } if storage_failed_before || *killed
        );
        let outcome = self.apply(op);
        if matches!(op, Op::Restart { .. }) {
            prop_assert!(outcome.is_ok(), "the restart failed: {outcome:?}");
        }
        self.seen = self.see();
        let may_lose = matches!(
            op,
            Op::Restart {
                keeps_events: false,
                ..
            }
        );
        let logged = self.read_log(may_lose)?;
        let delivered = self.host.0.received.lock().unwrap()[received_before..]
            .iter()
            .map(|(service, _, _)| *service)
            .collect();
        let step = Step {
            op,
            before,
            after: self.seen.clone(),
            outcome,
            logged,
            delivered,
            private_ksn: (private_before, self.private_ksn),
            licence: self.licence,
            last_acceptance: self.last_acceptance.clone(),
            storage_fails: self
                .host
                .0
                .refuse_writes
                .load(std::sync::atomic::Ordering::SeqCst),
            rest_waiting: self.rest_at.is_some(),
            lossy_restart,
        };
        if let Some(violation) = self.violation.take() {
            return Err(TestCaseError::fail(violation));
        }
        self.no_narrowed_permission_comes_back(&step)?;
        if waits(&step.outcome)
            || step.after.shows_waiting()
            || (matches!(op, Op::Restart { .. }) && step.storage_fails)
            || step.lossy_restart
        {
            // Part of the change waits (or a restart lost what waited with the settings it
            // set): the model no longer knows which policy values are in force.
            self.policy_sends = Default::default();
        } else if took_effect(&step.outcome) || matches!(op, Op::HeldDetection(_)) {
            self.remember_send_boxes(op);
        }
        self.the_last_policy_s_send_boxes_are_in_force()?;
        self.released_locks_restore_nothing(&step)?;
        no_policy_is_credited_with_an_acceptance_it_did_not_give(&step)?;
        running_needs_the_statement_of_the_mode(&step)?;
        nothing_reaches_global_ksn_or_the_proxy_in_private_mode(&step)?;
        nothing_leaves_after_full_withdrawal(&step)?;
        locked_settings_are_not_changed_locally(&step)?;
        every_change_is_in_the_task_log(&step)?;
        a_restart_keeps_the_state(&step)?;
        a_refusal_changes_nothing(&step)?;
        invalid_documents_are_refused_whole(&step)
    }
}

impl Device {
    /// 9. No permission is in force that a narrowing change since its last acceptance took
    ///    away (SPEC §3.12): a permission comes back only by a change that accepts it (one
    ///    that succeeded now, or the waiting part of one made after the withdrawal), never
    ///    by a restart, a reconciliation, a report of the host's or a lookup.
    fn no_narrowed_permission_comes_back(&mut self, s: &Step) -> Result<(), TestCaseError> {
        let step = self.steps;
        self.steps += 1;
        let accepting = matches!(
            s.op,
            Op::PushPolicy(_) | Op::SetLocal(_) | Op::HeldDetection(_)
        ) && s.outcome.is_ok();
        for (i, path) in PERMISSIONS.iter().enumerate() {
            let was = permission(&s.before, s.private_ksn.0, path);
            let is = permission(&s.after, s.private_ksn.1, path);
            if !was && is && !accepting {
                let rest_after_withdrawal = self
                    .rest_at
                    .is_some_and(|rest| self.withdrawn_at[i].is_none_or(|w| rest > w));
                prop_assert!(
                    rest_after_withdrawal,
                    "{} came back by {:?} without an acceptance since it was withdrawn (step {:?}); logged: {:?}",
                    path,
                    s.op,
                    self.withdrawn_at[i],
                    s.logged
                );
            }
            if was && !is {
                self.withdrawn_at[i] = Some(step);
            }
        }
        // (A held detection calls into the task only when it runs.)
        let resumes = !matches!(
            s.op,
            Op::CheckFile { .. }
                | Op::CheckUrl(_)
                | Op::SetLink { .. }
                | Op::Storage { .. }
                | Op::HeldDetection(_)
        );
        // (A restart keeps what waits for a record of its own: Private KSN's deferred
        // values; `explain` says so. A held detection's own changes may wait too: their
        // outcomes are its, not the step's.)
        let waits_inside = matches!(s.op, Op::Restart { .. } | Op::HeldDetection(_));
        if waits(&s.outcome) || (waits_inside && s.after.shows_waiting()) {
            self.rest_at = Some(step);
        } else if matches!(s.op, Op::Restart { .. })
            || s.logged_of("change_dropped").next().is_some()
            || (resumes && !s.storage_fails)
        {
            self.rest_at = None;
        }
        Ok(())
    }

    fn remember_send_boxes(&mut self, op: &Op) {
        for (i, path) in SEND_BOXES.iter().enumerate() {
            match op {
                Op::PushPolicy(entries) => {
                    self.policy_sends[i] = entries
                        .iter()
                        .find(|e| e.path == *path)
                        .map(|e| (e.value.clone(), e.locked == Some(true)));
                    self.changed_locally[i] = false;
                }
                Op::SetLocal(entries) if entries.iter().any(|e| e.path == *path) => {
                    self.changed_locally[i] = true;
                }
                // It sets send_statistics locally to widen the consent again.
                Op::HeldDetection(_) if *path == "data_handling.send_statistics" => {
                    self.changed_locally[i] = true;
                }
                _ => {}
            }
        }
    }

    /// 10. A released lock restores nothing, in every mode (docs/behaviour.md, "Locked settings"): a
    ///     policy push leaves every Global-KSN box it does not name as it read, whatever
    ///     the previous policy locked, and so does a switch of the Private KSN mode, but
    ///     for the boxes the policy in force names (its values wait for Private KSN to go
    ///     off, as if pushed then).
    fn released_locks_restore_nothing(&mut self, s: &Step) -> Result<(), TestCaseError> {
        let names_before = self.policy_names;
        let unsure = waits(&s.outcome)
            || s.after.shows_waiting()
            || s.rest_waiting
            || (matches!(s.op, Op::Restart { .. }) && s.storage_fails)
            || s.lossy_restart;
        if let (Op::PushPolicy(entries), true) = (s.op, took_effect(&s.outcome)) {
            self.policy_names = Some(std::array::from_fn(|i| {
                entries.iter().any(|e| e.path == SEND_BOXES[i])
            }));
        }
        if unsure {
            self.policy_names = None;
            return Ok(());
        }
        let named: [bool; 3] = match (s.op, took_effect(&s.outcome)) {
            (Op::PushPolicy(_), true) => self.policy_names.unwrap_or([true; 3]),
            (Op::SetPrivateKsn(_), _) => match names_before {
                Some(names) => names,
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        for (i, path) in SEND_BOXES.iter().enumerate() {
            if !named[i] {
                prop_assert_eq!(
                    s.before.value(path),
                    s.after.value(path),
                    "{} changed by {:?}, which does not name it; logged: {:?}",
                    path,
                    s.op,
                    s.logged
                );
            }
        }
        Ok(())
    }

    /// 8. The policy in force is in force in every mode (SPEC §3.2): in Global KSN mode every
    ///    Global-KSN box the last policy set has its value, unless (unlocked) it was changed
    ///    locally since, wherever the mode was when the policy was pushed.
    fn the_last_policy_s_send_boxes_are_in_force(&self) -> Result<(), TestCaseError> {
        if self.private_ksn {
            return Ok(());
        }
        for (i, path) in SEND_BOXES.iter().enumerate() {
            if let Some((value, locked)) = &self.policy_sends[i] {
                if *locked || !self.changed_locally[i] {
                    prop_assert_eq!(
                        self.seen.value(path),
                        value,
                        "{} is not the last policy's value (locked: {})",
                        path,
                        locked
                    );
                }
            }
        }
        Ok(())
    }
}

/// Where two `settings_json` documents differ, for failure messages.
fn differences(before: &Json, after: &Json) -> Vec<String> {
    let mut out = Vec::new();
    for (key, was) in before.as_object().expect("settings are an object") {
        let is = &after[key];
        if key == "details" {
            for (path, _) in SETTINGS {
                for (field, w) in was[path].as_object().expect("details are objects") {
                    if &is[path][field] != w {
                        out.push(format!("{path}.{field}: {w} -> {}", is[path][field]));
                    }
                }
            }
        } else if was != is {
            out.push(format!("{key}: {was} -> {is}"));
        }
    }
    out
}

fn fail(what: &str, error: TaskError) -> TestCaseError {
    TestCaseError::fail(format!("{what} failed: {error}"))
}

/// 1. Never running without the statement the current mode needs (SPEC §3.1, §3.2): the
///    box reads accepted, and the acceptance in force is of this mode's statement.
fn running_needs_the_statement_of_the_mode(s: &Step) -> Result<(), TestCaseError> {
    if s.after.state != TaskState::RUNNING {
        return Ok(());
    }
    prop_assert!(
        s.after.accepted(),
        "running while {KSN_BOX} reads {}",
        s.after.value(KSN_BOX)
    );
    let needed = if s.private_ksn.1 {
        "private_ksn"
    } else {
        "ksn"
    };
    prop_assert_eq!(
        s.last_acceptance.as_deref(),
        Some(needed),
        "running in {} mode, but the latest acceptance in the log is of another statement",
        needed
    );
    Ok(())
}

/// 2. Nothing reaches Global KSN or the proxy while Private KSN is on (SPEC §3.2).
fn nothing_reaches_global_ksn_or_the_proxy_in_private_mode(s: &Step) -> Result<(), TestCaseError> {
    if s.private_ksn_during() {
        prop_assert!(
            !s.delivered
                .iter()
                .any(|d| *d == Service::GLOBAL || *d == Service::PROXY),
            "in Private KSN mode, requests reached {:?}",
            s.delivered
        );
    }
    Ok(())
}

/// 3. After full withdrawal nothing leaves until a new acceptance (SPEC §3.4). Accepting
///    and withdrawing send nothing themselves, so a step that starts and ends withdrawn
///    must deliver nothing.
fn nothing_leaves_after_full_withdrawal(s: &Step) -> Result<(), TestCaseError> {
    if !s.before.accepted() && !s.after.accepted() {
        prop_assert!(
            s.delivered.is_empty(),
            "with no statement accepted, requests reached {:?}",
            s.delivered
        );
    }
    Ok(())
}

/// 4. A locked setting is never changed locally (SPEC §3.5); a local change to another
///    value than the enforced one is refused with `locked_by_policy`.
///
/// Two consequences the product chose are not counted as local changes of a locked value:
/// - re-stating the enforced value of a locked acceptance box whose acceptance lapsed (a
///   mode change) accepts the new mode's statement: the box moves to the enforced value
///   (docs/behaviour.md, "Locked settings");
/// - withdrawing the (unlocked) KSN statement ends Managed Protection with it, even when a
///   policy locks the KMP box, since KMP needs the KSN statement and withdrawal is allowed
///   at any moment (SPEC §3.4; `control.rs`, `end_ksn`).
fn locked_settings_are_not_changed_locally(s: &Step) -> Result<(), TestCaseError> {
    let Op::SetLocal(entries) = s.op else {
        return Ok(());
    };
    // A waiting policy applies before the change, and may release locks.
    if s.rest_waiting {
        return Ok(());
    }
    let details = &s.before.settings["details"];
    for path in s.before.locked() {
        let (was, is) = (s.before.value(path), s.after.value(path));
        let enforced = &details[path]["policy_value"];
        let kmp_ended_with_ksn = path == KMP_BOX && s.before.accepted() && !s.after.accepted();
        prop_assert!(
            was == is || is == enforced || kmp_ended_with_ksn,
            "locked {path} changed locally from {was} to {is} (enforced: {enforced})"
        );
    }
    let touches_locked = entries
        .iter()
        .any(|e| s.before.locked().contains(&e.path) && details[e.path]["policy_value"] != e.value);
    if touches_locked {
        prop_assert!(
            s.outcome.is_err(),
            "a local change to another value of a locked setting was accepted"
        );
        // Other reasons to refuse the document may be reported first.
        let other_reason = entries.iter().any(|e| !e.valid)
            || (s.private_ksn.0 && entries.iter().any(|e| SEND_BOXES.contains(&e.path)));
        if let (Err(e), false) = (&s.outcome, other_reason) {
            prop_assert_eq!(e.kind, ErrorKind::LOCKED_BY_POLICY, "{}", e.message);
        }
    }
    Ok(())
}

/// 5. Every change is in the task log (SPEC §3.6): each effective value that changed, in a
///    `settings_changed` entry with its values before and after; each state change in a
///    `state_changed` entry; each new error in a `task_error` entry.
fn every_change_is_in_the_task_log(s: &Step) -> Result<(), TestCaseError> {
    if s.lossy_restart {
        // What storage never took is gone with the host's events it did not keep: the
        // values it changed read as recorded, and no acceptance is in force.
        prop_assert!(
            !s.after.accepted(),
            "accepted after a restart that lost records"
        );
        return Ok(());
    }
    for (path, _) in SETTINGS {
        let (was, is) = (s.before.value(path), s.after.value(path));
        if was != is {
            // One entry, or a chain of them (a waiting change applied before this one).
            let chain: Vec<&Json> = s
                .logged_of("settings_changed")
                .filter(|e| e["after"].get(path).is_some())
                .collect();
            prop_assert!(
                chain.first().is_some_and(|e| &e["before"][path] == was)
                    && chain.last().is_some_and(|e| &e["after"][path] == is),
                "{path} changed from {was} to {is} with no settings_changed entry; logged: {:?}",
                s.logged
            );
        }
    }
    // A restarted task comes back stopped (docs/behaviour.md, "Restart"): its state changes count
    // from there.
    let from = match s.op {
        Op::Restart { .. } => TaskState::STOPPED,
        _ => s.before.state,
    };
    if from != s.after.state {
        prop_assert!(
            s.logged_of("state_changed")
                .any(|e| e["from"] == from.as_str() && e["to"] == s.after.state.as_str()),
            "state went from {from} to {} with no state_changed entry; logged: {:?}",
            s.after.state,
            s.logged
        );
    }
    if let Some(kind) = s.after.error {
        if s.after.error != s.before.error || s.after.state != s.before.state {
            prop_assert!(
                s.logged_of("task_error")
                    .any(|e| e["kind"] == kind.as_str()),
                "error {kind} with no task_error entry; logged: {:?}",
                s.logged
            );
        }
    }
    Ok(())
}

/// 6. Settings, consent and the log survive a restart (SPEC §3.9): the settings read the
///    same, the log only grows (checked at every step), and the task comes back stopped, or
///    running exactly when `task.schedule` is `at_application_start` and it may start.
fn a_restart_keeps_the_state(s: &Step) -> Result<(), TestCaseError> {
    if !matches!(s.op, Op::Restart { .. }) {
        return Ok(());
    }
    if s.lossy_restart || s.logged.iter().any(|e| e["source"] == "unverified_restart") {
        // Over a host that keeps no events, after a session that did not end cleanly: the
        // acceptance ended, failing closed, and nothing started.
        prop_assert!(!s.after.accepted(), "accepted after an unverified restart");
        prop_assert_eq!(s.after.state, TaskState::STOPPED);
        return Ok(());
    }
    let killed = matches!(s.op, Op::Restart { killed: true, .. });
    if s.storage_fails || s.rest_waiting || killed {
        // A restart while storage refuses writes keeps every narrowing of consent (checked
        // by `no_narrowed_permission_comes_back`), not the locks of the unrecorded changes;
        // and the scheduled start, a widening, cannot be recorded. Once storage works, what
        // waited applies: the settings move on. A killed host never wrote what still
        // waited for storage, even if storage works again: the same holds.
        if s.storage_fails {
            prop_assert_eq!(s.after.state, TaskState::STOPPED);
        }
        return Ok(());
    }
    let mut before = s.before.settings.clone();
    let mut after = s.after.settings.clone();
    // The KMP box's explanation describes the running task ("takes effect at the next
    // start"), which a restart legitimately changes.
    for settings in [&mut before, &mut after] {
        settings["details"][KMP_BOX]
            .as_object_mut()
            .expect("details are objects")
            .remove("why");
    }
    prop_assert!(
        before == after,
        "the settings changed across a restart: {:?}",
        differences(&before, &after)
    );
    let scheduled = s.after.value(SCHEDULE) == "at_application_start";
    let may_start = s.after.accepted() && s.licence == LicenseState::VALID;
    let expected = if scheduled && may_start {
        TaskState::RUNNING
    } else {
        TaskState::STOPPED
    };
    prop_assert_eq!(
        s.after.state,
        expected,
        "after a restart (schedule {}, statement accepted {}, licence {})",
        s.after.value(SCHEDULE),
        s.after.accepted(),
        s.licence
    );
    Ok(())
}

/// 11. An acceptance of a statement version the plugin does not ship is never in force
///     (SPEC §3.13), whatever came before: after a push whose acceptance names another
///     version (or, in Private KSN mode, only the Global statement), the box reads false,
///     or true only by a local acceptance, never by a policy.
fn no_policy_is_credited_with_an_acceptance_it_did_not_give(s: &Step) -> Result<(), TestCaseError> {
    let (Op::PushPolicy(entries), Ok(())) = (s.op, &s.outcome) else {
        return Ok(());
    };
    for path in [KSN_BOX, KMP_BOX] {
        let Some(entry) = entries.iter().find(|e| e.path == path) else {
            continue;
        };
        let not_in_force = entry.value == json!(true)
            && (entry.versions == Versions::Stale
                || (path == KSN_BOX && entry.versions == Versions::KsnOnly && s.private_ksn.1));
        let details = &s.after.settings["details"][path];
        if not_in_force && details["value"] == json!(true) {
            prop_assert_eq!(
                &details["source"],
                &json!("local"),
                "{} reads true by {} after a policy whose acceptance is not in force: {}",
                path,
                details["source"],
                details["why"]
            );
        }
    }
    Ok(())
}

/// Whether part of an operation waits for storage (its narrowing part took effect).
fn waits(outcome: &Result<(), TaskError>) -> bool {
    matches!(outcome, Err(e) if e.kind == ErrorKind::STORAGE_ERROR && e.message.contains("waits"))
}

/// Whether an operation took effect: it succeeded, or it narrowed what may leave and so
/// took effect although storage refused to record it.
fn took_effect(outcome: &Result<(), TaskError>) -> bool {
    match outcome {
        Ok(()) => true,
        Err(e) => e.kind == ErrorKind::STORAGE_ERROR && e.message.contains("took effect"),
    }
}

/// 7. A refused operation changes nothing (SPEC §3.5, docs/behaviour.md "Refused operations").
fn a_refusal_changes_nothing(s: &Step) -> Result<(), TestCaseError> {
    // (What waited from an earlier change applies before the operation, refused or not.)
    if matches!(s.op, Op::HeldDetection(_)) || took_effect(&s.outcome) || s.rest_waiting {
        return Ok(());
    }
    if let Err(e) = &s.outcome {
        prop_assert!(
            s.before.settings == s.after.settings,
            "refused ({}: {}) but the settings changed: {:?}",
            e.kind,
            e.message,
            differences(&s.before.settings, &s.after.settings)
        );
        prop_assert_eq!(
            (s.before.state, s.before.error),
            (s.after.state, s.after.error),
            "refused ({}: {}) but the state changed",
            e.kind,
            &e.message
        );
    }
    Ok(())
}

/// A document with a value of the wrong type or out of range is refused whole with
/// `invalid_settings` (SPEC §3.5); rule 7 checks that nothing of it was applied.
fn invalid_documents_are_refused_whole(s: &Step) -> Result<(), TestCaseError> {
    let (Op::PushPolicy(entries) | Op::SetLocal(entries)) = s.op else {
        return Ok(());
    };
    if let Some(bad) = entries.iter().find(|e| !e.valid) {
        match &s.outcome {
            Ok(()) => return Err(TestCaseError::fail(format!("{bad:?} was accepted"))),
            Err(e) => prop_assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS, "{}", e.message),
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("KSN_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // No regression files in the source tree; a failure prints its minimal sequence.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_rules_hold_after_every_step(ops in proptest::collection::vec(op(), 1..40)) {
        let mut device = Device::new()?;
        for (i, op) in ops.iter().enumerate() {
            device
                .step(op)
                .map_err(|e| TestCaseError::fail(format!("step {i} ({op:?}): {e}")))?;
        }
    }
}

fn entry(path: &'static str, value: Json, locked: Option<bool>) -> Entry {
    Entry {
        path,
        value,
        valid: true,
        locked,
        versions: Versions::Shipped,
    }
}

/// Sequences the random search once found, kept as they were shrunk.
#[test]
fn found_sequences_keep_the_rules() {
    let urls = "data_handling.send_scanned_urls_data";
    let sequences = vec![
        vec![
            Op::PushPolicy(vec![entry(urls, json!(false), None)]),
            Op::SetLocal(vec![entry(KSN_BOX, json!(true), None)]),
            Op::PushPolicy(vec![
                entry(urls, json!(true), Some(true)),
                entry(
                    "task.use_ksn_if_proxy_unavailable",
                    json!(false),
                    Some(true),
                ),
            ]),
            Op::Storage { fails: true },
            Op::PushPolicy(vec![]),
            Op::Storage { fails: false },
            Op::SetLocal(vec![entry(KSN_BOX, json!(true), None)]),
        ],
        vec![
            Op::SetLocal(vec![entry(KSN_BOX, json!(true), None)]),
            Op::Storage { fails: true },
            Op::PushPolicy(vec![
                entry("data_handling.send_statistics", json!(false), None),
                entry(KMP_BOX, json!(true), Some(false)),
                entry("task.checksum_limit_mb", json!(1), None),
                entry("task.lookup_timeout_ms", json!(100), None),
            ]),
            Op::Storage { fails: false },
            Op::PushPolicy(vec![
                entry("data_handling.send_statistics", json!(true), Some(true)),
                entry(KMP_BOX, json!(true), Some(true)),
                entry("task.checksum_limit_enabled", json!(false), None),
                entry("task.checksum_limit_mb", json!(270), Some(true)),
            ]),
        ],
        vec![
            Op::SetPrivateKsn(true),
            Op::PushPolicy(vec![
                entry(KSN_BOX, json!(true), Some(false)),
                entry(urls, json!(false), None),
            ]),
            Op::Start,
            Op::Storage { fails: true },
            Op::HeldDetection(Narrowing::PrivateKsnOn),
            Op::Restart {
                mended: true,
                killed: false,
                keeps_events: true,
            },
            Op::PushPolicy(vec![]),
        ],
    ];
    for ops in sequences {
        let mut device = Device::new().unwrap();
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = device.step(op) {
                panic!("step {i} ({op:?}): {e}");
            }
        }
    }
}
