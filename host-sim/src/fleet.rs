//! The Private KSN story on a fleet in administration groups: every device goes through
//! it, each phase is timed, and each phase's outcome is checked on every device. Ten groups
//! share the devices; half of the tenth's sit in its subgroup "Private KSN", whose own KSN
//! proxy setting keeps them in Private KSN mode whatever the server's, so the server's
//! switches reach some devices and not others. The report counts devices by status.

use std::time::Instant;

use plugin_api::{
    loader::Plugin, ErrorKind, LicenseState, Service, TaskError, TaskState, TaskStatus,
};
use serde::{Deserialize, Serialize};

use crate::world::{GroupSpec, HostDatabase, Setup, World};
use admin_server::Status;

/// The administrator's policy: participation accepted and locked, and the task started
/// with the application. The editor stamps the acceptance with the statements it shows
/// (of each mode and each plugin version of the fleet) at each save.
pub const FLEET_POLICY: &str = r#"{"settings": {
    "data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}},
    "task": {"schedule": {"value": "at_application_start", "locked": true}}}}"#;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Phase {
    pub name: std::borrow::Cow<'static, str>,
    pub ms: f64,
    pub us_per_device: f64,
    /// Devices whose state after the phase was not the expected one.
    pub wrong: usize,
    /// The process's resident memory as the phase ended (MiB).
    #[serde(default)]
    pub rss_mib: f64,
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
    /// Devices by status at the end, as the server shows them: OK, Warning, Critical.
    #[serde(default)]
    pub statuses: [usize; 3],
    /// Devices by the plugin version they run at the end (`ksn-usage-task 1.0.0`).
    #[serde(default)]
    pub versions: std::collections::BTreeMap<String, usize>,
    pub peak_rss_mib: f64,
    pub passed: bool,
}

/// Peak resident set size of this process so far, from /proc (Linux).
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident set size of this process now.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

type Expectation = (TaskState, Option<ErrorKind>, Service);

/// How many groups share the fleet's devices.
pub const GROUPS: usize = 10;

/// The fleet's tree: ten groups of a tenth of the devices each (the rest in the root), the
/// tenth's devices half in its subgroup "Private KSN", which uses Private KSN.
pub fn groups(devices: usize) -> (usize, Vec<GroupSpec>) {
    let each = devices / GROUPS;
    let group = |name: String, devices, groups| GroupSpec {
        name,
        devices,
        inherit: true,
        private_ksn: None,
        groups,
    };
    let mut tree: Vec<GroupSpec> = (1..GROUPS)
        .map(|g| group(format!("Group {g:02}"), each, Vec::new()))
        .collect();
    let private = each / 2;
    let mut subgroup = group("Private KSN".into(), private, Vec::new());
    subgroup.private_ksn = Some(true);
    tree.push(group(
        format!("Group {GROUPS:02}"),
        each - private,
        vec![subgroup],
    ));
    (devices - each * GROUPS, tree)
}

/// How many phases the story has (for progress), without an update.
pub const PHASES: usize = 10;

/// The group an update reaches half-way (a tenth of the fleet).
pub const UPDATED_GROUP: &str = "Group 01";

struct Story<'a> {
    world: World,
    phases: Vec<Phase>,
    on_phase: &'a dyn Fn(&'static str),
}

impl Story<'_> {
    /// A phase: `act`, then every device checked against `expect` (by whether its group
    /// keeps it in Private KSN mode).
    fn phase<T>(
        &mut self,
        name: &'static str,
        expect: impl Fn(bool) -> Expectation,
        act: impl FnOnce(&mut World) -> Vec<Result<T, plugin_api::TaskError>>,
    ) {
        (self.on_phase)(name);
        let started = Instant::now();
        let results = act(&mut self.world);
        // The server files what the devices sent, as part of the phase.
        self.world.collect_events();
        let elapsed = started.elapsed().as_secs_f64();
        let private: Vec<bool> = (0..self.world.devices.len())
            .map(|i| {
                let group = self.world.server.devices()[i].group;
                self.world.server.tree().private_ksn(group, false)
            })
            .collect();
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
            let expect = expect(private[i]);
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
            rss_mib: rss_mib(),
            example,
        });
    }
}

/// The administrator saves the fleet's policy; a refusal of the server's (it has none to
/// give for this one) is every device's.
fn push_fleet_policy(w: &mut World) -> crate::world::Answers {
    match w.push_policy(FLEET_POLICY) {
        Ok(answers) => answers,
        Err(e) => w
            .devices
            .iter()
            .map(|_| Err(TaskError::invalid_state(e.to_string())))
            .collect(),
    }
}

/// Runs the story on `devices` devices, telling `on_phase` as each phase begins.
pub fn run(
    plugin: Plugin,
    devices: usize,
    database: Option<HostDatabase>,
    on_phase: &dyn Fn(&'static str),
) -> Result<FleetReport, String> {
    run_updating(plugin, devices, database, None, on_phase)
}

/// The story, with `update` (a plugin library) installed half-way on a tenth of the
/// fleet (`Group 01`): the updated devices go on as the others do, each accepting the
/// statement its version ships at the policy's next save.
pub fn run_updating(
    plugin: Plugin,
    devices: usize,
    database: Option<HostDatabase>,
    update: Option<&str>,
    on_phase: &dyn Fn(&'static str),
) -> Result<FleetReport, String> {
    on_phase("boot: create the task on every device");
    let (in_root, groups) = groups(devices);
    let setup = Setup {
        database,
        groups,
        ..Setup::counting(in_root)
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
            rss_mib: rss_mib(),
            example: None,
        }],
        on_phase,
    };
    let stopped = |_| (TaskState::STOPPED, None, Service::NONE);
    let failed = |kind| (TaskState::FAILED, Some(kind), Service::NONE);
    // A device of the Private KSN subgroup runs on through the server's switches.
    let unless_private = move |private: bool, other: Expectation| {
        if private {
            (TaskState::RUNNING, None, Service::PRIVATE)
        } else {
            other
        }
    };
    story.phase(
        "push policy: accept KSN (locked)",
        stopped,
        push_fleet_policy,
    );
    story.phase(
        "start",
        |p| unless_private(p, (TaskState::RUNNING, None, Service::PROXY)),
        |w| w.start(),
    );
    story.phase(
        "Private KSN on",
        |p| unless_private(p, failed(ErrorKind::STATEMENT_NOT_ACCEPTED)),
        |w| w.set_private_ksn(true),
    );
    story.phase(
        "push policy: accepts the Private KSN statement",
        |p| unless_private(p, failed(ErrorKind::STATEMENT_NOT_ACCEPTED)),
        push_fleet_policy,
    );
    story.phase(
        "start where not running",
        |_| (TaskState::RUNNING, None, Service::PRIVATE),
        start_where_not_running,
    );
    if let Some(library) = update {
        let library = library.to_string();
        story.phase(
            "update a tenth of the fleet (Group 01)",
            |_| (TaskState::RUNNING, None, Service::PRIVATE),
            move |w| install_on_group(w, UPDATED_GROUP, &library),
        );
    }
    story.phase(
        "Private KSN off",
        |p| unless_private(p, failed(ErrorKind::LICENSE_VIOLATION)),
        |w| w.set_private_ksn(false),
    );
    story.phase(
        "push policy: accepts the Global KSN statement",
        |p| unless_private(p, failed(ErrorKind::LICENSE_VIOLATION)),
        push_fleet_policy,
    );
    story.phase(
        "restart host: starts at application start",
        |p| unless_private(p, (TaskState::RUNNING, None, Service::PROXY)),
        |w| w.restart_host(None),
    );
    // The licence lapses everywhere at once.
    story.phase(
        "licence expires",
        |_| failed(ErrorKind::LICENSE_VIOLATION),
        |w| w.set_license(LicenseState::EXPIRED),
    );

    let story_s = story.phases.iter().map(|p| p.ms).sum::<f64>() / 1e3;
    debug_assert_eq!(story.phases.len(), PHASES + usize::from(update.is_some()));
    let mut versions = std::collections::BTreeMap::new();
    for i in 0..story.world.devices.len() {
        *versions
            .entry(story.world.plugin_of(i).version.label())
            .or_insert(0) += 1;
    }
    let passed = story.phases.iter().all(|p| p.wrong == 0);
    let statuses = story.world.status_counts();
    // The server's statuses, for a primary server reading this one's database.
    if let Some(db) = &story.world.database {
        let rows = (0..story.world.devices.len())
            .map(|i| (i, story.world.status_of(i).0.as_str()))
            .collect();
        db.store.save_statuses(&db.host, rows)?;
    }
    Ok(FleetReport {
        devices,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        phases: story.phases,
        story_s,
        statuses,
        versions,
        peak_rss_mib: peak_rss_mib(),
        passed,
    })
}

/// The administrator installs `library` on every device of `group`; a refusal of the
/// server's is every device's.
fn install_on_group(world: &mut World, group: &str, library: &str) -> crate::world::Answers {
    let op = match world.server.tree().find(group) {
        Ok(g) => {
            let chosen = world.server.in_group(g);
            admin_server::Operation::InstallPlugin {
                devices: (0..chosen.len()).filter(|&i| chosen[i]).collect(),
                library: library.to_string(),
            }
        }
        Err(e) => {
            return world
                .devices
                .iter()
                .map(|_| Err(TaskError::invalid_state(e.to_string())))
                .collect()
        }
    };
    match world.apply(&op, None) {
        Ok(answers) => answers,
        Err(e) => world
            .devices
            .iter()
            .map(|_| Err(TaskError::invalid_state(e.to_string())))
            .collect(),
    }
}

/// The administrator starts the task where it is not running.
fn start_where_not_running(world: &mut World) -> crate::world::Answers {
    let stopped: Vec<bool> = world
        .devices
        .iter()
        .map(|d| d.task.status().state != TaskState::RUNNING)
        .collect();
    world.selection = Some(std::sync::Arc::new(stopped));
    let answers = world.start();
    world.selection = None;
    answers
}

pub fn text(report: &FleetReport) -> String {
    let mut out = format!(
        "Private KSN story on {} devices ({} threads)\n{:<52} {:>10} {:>12} {:>7} {:>8}\n",
        report.devices, report.threads, "phase", "ms", "µs/device", "wrong", "RSS MiB"
    );
    for p in &report.phases {
        out.push_str(&format!(
            "{:<52} {:>10.1} {:>12.2} {:>7} {:>8.0}\n",
            p.name, p.ms, p.us_per_device, p.wrong, p.rss_mib
        ));
        if let Some(example) = &p.example {
            out.push_str(&format!("    e.g. {example}\n"));
        }
    }
    let [ok, warning, critical] = report.statuses;
    out.push_str(&format!(
        "statuses: {ok} {}, {warning} {}, {critical} {}\n",
        Status::Ok,
        Status::Warning,
        Status::Critical
    ));
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
