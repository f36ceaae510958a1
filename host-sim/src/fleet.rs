//! The Private KSN story on a fleet: every device goes through it, each phase is timed,
//! and each phase's outcome is checked on every device.

use std::time::Instant;

use plugin_api::{loader::Plugin, ErrorKind, LicenseState, Service, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::world::{HostDatabase, Setup, World};

/// The administrator's policy: participation accepted and locked, and the task started
/// with the application.
pub const FLEET_POLICY: &str = r#"{"settings": {
    "data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1, "private_ksn": 1}}},
    "task": {"schedule": {"value": "at_application_start", "locked": true}}}}"#;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Phase {
    pub name: std::borrow::Cow<'static, str>,
    pub ms: f64,
    pub us_per_device: f64,
    /// Devices whose state after the phase was not the expected one.
    pub wrong: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FleetReport {
    pub devices: usize,
    pub threads: usize,
    pub phases: Vec<Phase>,
    /// The story's phases end to end (checks excluded).
    pub story_s: f64,
    pub peak_rss_mib: f64,
    pub passed: bool,
}

/// Peak resident set size of this process so far, from /proc (Linux).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

type Expectation = (TaskState, Option<ErrorKind>, Service);

/// How many phases the story has (for progress).
pub const PHASES: usize = 10;

struct Story<'a> {
    world: World,
    phases: Vec<Phase>,
    on_phase: &'a dyn Fn(&'static str),
}

impl Story<'_> {
    fn phase<T>(
        &mut self,
        name: &'static str,
        expect: Expectation,
        act: impl FnOnce(&mut World) -> Vec<Result<T, plugin_api::TaskError>>,
    ) {
        (self.on_phase)(name);
        let started = Instant::now();
        let results = act(&mut self.world);
        let elapsed = started.elapsed().as_secs_f64();
        let mut wrong = 0;
        let mut example = None;
        let statuses: Vec<TaskStatus> = self
            .world
            .each(|d| Ok(d.task.status()))
            .into_iter()
            .flatten()
            .collect();
        for (i, (result, status)) in results.iter().zip(&statuses).enumerate() {
            let found = (status.state, status.error.into_option(), status.network);
            let problem = match result {
                Err(e) => Some(format!("device {i}: {e}")),
                Ok(_) if found != expect => {
                    Some(format!("device {i}: expected {expect:?}, found {found:?}"))
                }
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                wrong += 1;
                example.get_or_insert(problem);
            }
        }
        let devices = self.world.devices.len().max(1) as f64;
        self.phases.push(Phase {
            name: name.into(),
            ms: elapsed * 1e3,
            us_per_device: elapsed * 1e6 / devices,
            wrong,
            example,
        });
    }
}

/// Runs the story on `devices` devices, telling `on_phase` as each phase begins.
pub fn run(
    plugin: Plugin,
    devices: usize,
    database: Option<HostDatabase>,
    on_phase: &dyn Fn(&'static str),
) -> Result<FleetReport, String> {
    on_phase("boot: create the task on every device");
    let setup = Setup {
        keep_events: false,
        database,
        ..Setup::new(devices)
    };
    let started = Instant::now();
    let world = World::new(plugin, &setup)?;
    let boot = started.elapsed().as_secs_f64();
    let mut story = Story {
        world,
        phases: vec![Phase {
            name: "boot: create the task on every device".into(),
            ms: boot * 1e3,
            us_per_device: boot * 1e6 / devices.max(1) as f64,
            wrong: 0,
            example: None,
        }],
        on_phase,
    };
    let stopped = (TaskState::STOPPED, None, Service::NONE);
    let failed = |kind| (TaskState::FAILED, Some(kind), Service::NONE);
    story.phase("push policy: accept KSN (locked)", stopped, |w| {
        w.push_policy(FLEET_POLICY)
    });
    story.phase("start", (TaskState::RUNNING, None, Service::PROXY), |w| {
        w.start()
    });
    story.phase(
        "Private KSN on",
        failed(ErrorKind::STATEMENT_NOT_ACCEPTED),
        |w| w.set_private_ksn(true),
    );
    story.phase(
        "push policy: accepts the Private KSN statement",
        failed(ErrorKind::STATEMENT_NOT_ACCEPTED),
        |w| w.push_policy(FLEET_POLICY),
    );
    story.phase("start", (TaskState::RUNNING, None, Service::PRIVATE), |w| {
        w.start()
    });
    story.phase(
        "Private KSN off",
        failed(ErrorKind::LICENSE_VIOLATION),
        |w| w.set_private_ksn(false),
    );
    story.phase(
        "push policy: accepts the Global KSN statement",
        failed(ErrorKind::LICENSE_VIOLATION),
        |w| w.push_policy(FLEET_POLICY),
    );
    story.phase(
        "restart host: starts at application start",
        (TaskState::RUNNING, None, Service::PROXY),
        |w| w.restart_host(None),
    );
    // The licence lapses everywhere at once.
    story.phase(
        "licence expires",
        failed(ErrorKind::LICENSE_VIOLATION),
        |w| w.set_license(LicenseState::EXPIRED),
    );

    let story_s = story.phases.iter().map(|p| p.ms).sum::<f64>() / 1e3;
    debug_assert_eq!(story.phases.len(), PHASES);
    let passed = story.phases.iter().all(|p| p.wrong == 0);
    Ok(FleetReport {
        devices,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        phases: story.phases,
        story_s,
        peak_rss_mib: peak_rss_mib(),
        passed,
    })
}

pub fn text(report: &FleetReport) -> String {
    let mut out = format!(
        "Private KSN story on {} devices ({} threads)\n{:<52} {:>10} {:>12} {:>7}\n",
        report.devices, report.threads, "phase", "ms", "µs/device", "wrong"
    );
    for p in &report.phases {
        out.push_str(&format!(
            "{:<52} {:>10.1} {:>12.2} {:>7}\n",
            p.name, p.ms, p.us_per_device, p.wrong
        ));
        if let Some(example) = &p.example {
            out.push_str(&format!("    e.g. {example}\n"));
        }
    }
    out.push_str(&format!(
        "story: {:.2} s, peak RSS {:.0} MiB, {}\n",
        report.story_s,
        report.peak_rss_mib,
        if report.passed {
            "every device as expected"
        } else {
            "SOME DEVICES WRONG"
        }
    ));
    out
}
