//! A simulated world: the loaded plugin, the clock, the KSN services, and the devices.
//! Scenario steps, console verbs and the fleet story all act through it. Devices are
//! independent, so every step runs on them in parallel.

pub mod admin;
pub mod delivery;
mod device;
mod host;
pub mod plugins;
mod received;
mod unbooted;
mod watchdog;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

pub use admin::GroupSpec;
pub use device::{Arrived, Clock, DeviceState};
pub use host::DeviceHost;
pub use plugins::{DevicePlugins, Loaded};
pub use received::Received;
pub use watchdog::Watchdog;

use plugin_api::{
    abi_stable::sabi_trait::TD_Opaque, documents::PluginDescription, loader::Plugin, ErrorKind,
    FileQuery, HostBox, HostServices_TO, KsnTaskBox, LicenseState, LogRetention, LookupAnswer,
    ObjectRef, Service, TaskError,
};

use crate::{
    consumers::{self, Access, Launch, LaunchControl, LaunchControlSpec},
    network::{Database, DatabaseSpec, KsnSpec, Network},
    storage::{HostStore, Storage},
};
use admin_server::{EventRules, Server, StatusRules};

pub use crate::storage::Environment;

/// The default reputation database, bundled from `tests/data/`.
pub const DEFAULT_DATABASE: &str = include_str!("../../../tests/data/ksn-database.json");

pub fn default_ksn() -> KsnSpec {
    serde_json::from_str(DEFAULT_DATABASE).expect("the bundled database is valid")
}

/// A host's durable state in a database file: its devices' records and environments,
/// and its simulated time, under the host's name in the file.
#[derive(Clone)]
pub struct HostDatabase {
    pub store: Arc<HostStore>,
    pub host: String,
}

/// How a world is set up; `Setup::new(n)` and struct update syntax for the rest.
pub struct Setup {
    /// Devices in the root group ("Managed devices").
    pub devices: usize,
    /// Administration groups below the root, with their devices (numbered after the
    /// root's, depth first, in the order given).
    pub groups: Vec<GroupSpec>,
    /// The server's event store: its cap, headroom and storage terms.
    pub event_rules: EventRules,
    /// The thresholds of device statuses.
    pub status_rules: StatusRules,
    /// Devices synchronise this often, in host time.
    pub sync_interval_ms: u64,
    pub ksn: KsnSpec,
    pub local_lists: DatabaseSpec,
    pub launch_control: LaunchControlSpec,
    /// The server writes each event's text to its host database (`host-sim events`
    /// lists them); a large fleet only counts them.
    pub keep_events: bool,
    /// Each device keeps every event's text since `reset_counters` (`events_include` and
    /// `conform` read them all).
    pub keep_history: bool,
    /// The server keeps each event's description in words (what a console lists).
    pub describe_events: bool,
    /// Device 0 keeps the events of the step in progress for its report.
    pub report_events: bool,
    /// Sleep for the services' latency instead of only accounting for it.
    pub real_latency: bool,
    /// Give up on a call into the plugin after this long, marking its device hung (see
    /// `Watchdog`). `None`: calls run on the caller's thread, for speed (fleet, bench).
    pub watchdog: Option<Duration>,
    /// `None`: each device's records in memory, for this process only.
    pub database: Option<HostDatabase>,
    /// How much of the task log each device's plugin is asked to keep.
    pub retention: LogRetention,
    /// Each device's host answers `events_since` (it keeps the task's events); `false`:
    /// one that keeps none, as the contract allows.
    pub host_keeps_events: bool,
    /// Devices the host starts on another library than its own (a fleet mid-update).
    pub plugins: Vec<DevicePlugins>,
}

impl Setup {
    /// `devices` devices keeping no event's text anywhere: a world that only counts them (a large
    /// fleet, a benchmark).
    pub fn counting(devices: usize) -> Self {
        Self {
            keep_events: false,
            keep_history: false,
            report_events: false,
            describe_events: false,
            ..Self::new(devices)
        }
    }

    /// `devices` devices on the bundled database, keeping events, without a watchdog.
    pub fn new(devices: usize) -> Self {
        Self {
            devices,
            groups: Vec::new(),
            event_rules: EventRules::default(),
            status_rules: StatusRules::default(),
            sync_interval_ms: admin_server::SYNC_INTERVAL_MS,
            ksn: default_ksn(),
            local_lists: DatabaseSpec::default(),
            launch_control: LaunchControlSpec::default(),
            keep_events: true,
            keep_history: true,
            describe_events: true,
            report_events: true,
            real_latency: false,
            watchdog: None,
            database: None,
            retention: LogRetention::DEFAULT,
            host_keeps_events: true,
            plugins: Vec::new(),
        }
    }
}

pub struct World {
    /// The host's own plugin (`--plugin`): what a device runs unless its host started it
    /// on another library or an update installed one.
    pub plugin: Plugin,
    /// Every plugin library loaded, the host's own first; each device runs one of them.
    pub plugins: Vec<Loaded>,
    /// The Administration Server: groups, policies, what each device was sent, events.
    pub server: Server,
    /// The devices the current step addresses (`on`); `None`: all.
    pub selection: Option<Arc<Vec<bool>>>,
    /// The server's newest event at the last `reset_counters`: `expect.events` counts
    /// those after it.
    pub events_from: u64,
    /// The loaded plugin's description (`None` if it gives none): what the policy editor
    /// knows of its settings and statements.
    pub description: Option<PluginDescription>,
    /// The root policy a host database of the first schema kept (its only policy), to be
    /// taken into the server once.
    legacy_policy: Option<String>,
    pub database: Option<HostDatabase>,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    pub local_lists: Arc<Database>,
    pub launch_control: Arc<LaunchControl>,
    pub watchdog: Option<Arc<Watchdog>>,
    pub devices: Vec<Device>,
    /// Changes saved and still to be delivered (the Web Console delivers in the background).
    pub deliveries: delivery::Queue,
    /// The administrator whose change runs now, through a console: revisions and actions
    /// name them, and the events the change causes record them. `None`: a scenario.
    pub actor: Option<Arc<str>>,
    /// Devices something happened to since the console last looked (`take_touched`): their
    /// statuses are computed again, not every device's.
    touched: Touched,
}

/// Which devices something happened to.
#[derive(Debug, Default)]
struct Touched {
    every: bool,
    some: std::collections::BTreeSet<usize>,
}

/// A device with its task instance: a cheap handle, so a call can run on a worker thread.
#[derive(Clone)]
pub struct Device {
    pub state: Arc<DeviceState>,
    pub task: Arc<KsnTaskBox>,
    /// The library it runs (in `World::plugins`).
    pub plugin: usize,
}

impl Device {
    /// Creates the task on the device's state and tells it the environment, then that the
    /// application has started (so a scheduled task starts itself). A storage error of
    /// those calls does not stop the boot (what the host reports takes effect whatever
    /// storage does; records wait), nor does a scheduled start the task refused (the task
    /// is up, stopped): either comes back beside the device.
    pub fn boot(
        plugin: &Plugin,
        state: Arc<DeviceState>,
        library: usize,
    ) -> Result<(Self, Option<TaskError>), TaskError> {
        let host: HostBox = HostServices_TO::from_value(DeviceHost(state.clone()), TD_Opaque);
        let task = plugin.new_task(host)?;
        let env = state.environment();
        let mut waiting = None;
        for outcome in [
            task.set_license(env.license).into_result(),
            task.set_private_ksn(env.private_ksn).into_result(),
        ] {
            match outcome {
                Err(e) if e.kind == ErrorKind::STORAGE_ERROR => waiting = Some(e),
                other => other?,
            }
        }
        match task.application_started().into_result() {
            Err(e) if e.kind == ErrorKind::PLUGIN_PANIC => return Err(e),
            Err(e) => waiting = Some(e),
            Ok(()) => {}
        }
        Ok((
            Self {
                state,
                task: Arc::new(task),
                plugin: library,
            },
            waiting,
        ))
    }
}

/// What one device answered to a step.
#[derive(Debug, Clone)]
pub enum Answer {
    Done,
    /// The step did not address this device (`on`), or the server had nothing to send it
    /// now (not in the group, or not connected: it gets it at its next synchronisation).
    Skipped,
    Lookup(LookupAnswer),
    Access(Access, LookupAnswer),
    Launch(Launch, Option<LookupAnswer>),
    /// The change was saved; the server delivers it to this device in the background.
    Queued,
}

pub type Answers = Vec<Result<Answer, TaskError>>;

/// Threads per core for work that waits on the host database's commits (measured: more
/// makes the batches larger but costs more in switching than it saves).
const WAITING_PER_CORE: usize = 32;

fn threads_for(items: usize, waits: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this, spawning threads costs more than it saves.
    if items < 256 {
        1
    } else if waits {
        (cores * WAITING_PER_CORE).min(items / 16).max(cores)
    } else {
        cores
    }
}

/// Maps `f` over `items` on every core, keeping the order.
pub fn par_map<I: Sync, T: Send>(items: &[I], f: impl Fn(&I) -> T + Sync) -> Vec<T> {
    par_map_on(threads_for(items.len(), false), items, f)
}

/// The same for work that waits on the host database: a device's write returns once its
/// transaction commits, so more threads than cores keep the cores busy while some wait,
/// and each commit takes the writes of every thread waiting (group commit). The threads
/// take the next device from one counter, so the devices in flight are neighbours: their
/// rows share pages, and a commit writes a few pages rather than one per device.
pub fn par_map_waiting<I: Sync, T: Send>(
    waits: bool,
    items: &[I],
    f: impl Fn(&I) -> T + Sync,
) -> Vec<T> {
    let threads = threads_for(items.len(), waits);
    if !waits || threads == 1 {
        return par_map_on(threads, items, f);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let done: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (f, next) = (&f, &next);
                s.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break done };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("device worker"))
            .collect()
    });
    for (i, result) in done.into_iter().flatten() {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every device was taken"))
        .collect()
}

fn par_map_on<I: Sync, T: Send>(threads: usize, items: &[I], f: impl Fn(&I) -> T + Sync) -> Vec<T> {
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || part.iter().map(f).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("device worker"))
            .collect()
    })
}

fn hung(device: &Device) -> TaskError {
    TaskError::invalid_state(format_args!(
        "device {} is hung: an earlier call into the plugin never returned",
        device.state.id
    ))
}

impl World {
    pub fn new(plugin: Plugin, setup: &Setup) -> Result<Self, String> {
        let clock = Arc::new(Clock::default());
        if let Some(db) = &setup.database {
            // The host's time goes on from where it was when the host last ran.
            clock.advance(db.store.clock(&db.host)?.unwrap_or(0));
        }
        let network = Arc::new(Network::new(&setup.ksn, setup.real_latency)?);
        let local_lists = Arc::new(Database::from_spec(&setup.local_lists, "local_lists")?);
        let launch_control = Arc::new(LaunchControl::from_spec(&setup.launch_control)?);
        // A server the database holds is resumed as it was; otherwise it is made as set up.
        let rows = match &setup.database {
            Some(db) => db.store.server_rows(&db.host)?,
            None => Vec::new(),
        };
        let resumed = !rows.is_empty();
        let mut server = if resumed {
            let db = setup.database.as_ref().expect("rows come from a database");
            Server::resume(rows)
                .map_err(|e| format!("{}: server {}: {e}", db.store.location(), db.host))?
        } else {
            let mut server = admin::server_for(setup)?;
            // A database of the first schema kept the devices' records, not the server's:
            // every device it holds comes back, in the root group.
            if let Some(db) = &setup.database {
                let held = db
                    .store
                    .devices()?
                    .into_iter()
                    .filter(|(host, _)| *host == db.host)
                    .map(|(_, device)| device + 1)
                    .max()
                    .unwrap_or(0);
                while server.devices().len() < held {
                    server.add_device(admin_server::Tree::ROOT);
                }
            }
            server
        };
        // Which library each device runs: the one an update installed (a resumed server
        // knows), the one the setup names, or the host's own.
        let mut plugins = vec![Loaded::new(plugin, std::path::PathBuf::new(), None)];
        let mut library = vec![0; server.devices().len()];
        let mut unloadable: std::collections::HashMap<usize, String> = Default::default();
        for (n, chosen) in setup.plugins.iter().enumerate() {
            let at = plugins::load_into(&mut plugins, &chosen.library)
                .map_err(|e| format!("plugins[{n}].library: {e}"))?;
            let group = match &chosen.group {
                Some(path) => Some(
                    server
                        .tree()
                        .find(path)
                        .map_err(|e| format!("plugins[{n}].group: {e}"))?,
                ),
                None => None,
            };
            for (i, d) in server.devices().iter().enumerate() {
                if chosen.devices.contains(&i)
                    || group.is_some_and(|g| server.tree().within(d.group, g))
                {
                    library[i] = at;
                }
            }
            if let Some(d) = chosen.devices.iter().find(|d| **d >= library.len()) {
                return Err(format!(
                    "plugins[{n}].devices: no device {d} (the scenario has {})",
                    library.len()
                ));
            }
        }
        for (i, d) in server.devices().iter().enumerate() {
            if let Some(name) = &d.library {
                match plugins::load_into(&mut plugins, name) {
                    Ok(at) => library[i] = at,
                    Err(e) => {
                        unloadable.insert(
                            i,
                            format!("device {i}: its plugin library {name} cannot be loaded: {e}"),
                        );
                    }
                }
            }
        }
        let ids: Vec<usize> = (0..server.devices().len()).collect();
        let holding: std::collections::HashSet<usize> = match &setup.database {
            Some(db) => db
                .store
                .devices_holding_events(&db.host)?
                .into_iter()
                .collect(),
            None => Default::default(),
        };
        let boot_all = || {
            par_map_waiting(setup.database.is_some(), &ids, |&id| {
                let storage: Option<Arc<dyn Storage>> = setup
                    .database
                    .as_ref()
                    .map(|db| Arc::new(db.store.device(&db.host, id)) as Arc<dyn Storage>);
                let mut state = match storage {
                    Some(storage) => DeviceState::with_storage(
                        id,
                        clock.clone(),
                        network.clone(),
                        local_lists.clone(),
                        storage,
                    ),
                    None => {
                        DeviceState::new(id, clock.clone(), network.clone(), local_lists.clone())
                    }
                };
                // Only a host database keeps the texts the server receives.
                state.keep_events = setup.keep_events && setup.database.is_some();
                state.keep_history = setup.keep_history;
                state.describe_events = setup.describe_events;
                // Step reports show device 0's events.
                state.report_events = setup.report_events;
                state.retention = setup.retention;
                state.keeps_task_events = setup.host_keeps_events;
                // A host that comes back tells each device what it told it last.
                if let Some(environment) = state.storage.environment() {
                    state.set_environment(|e| *e = environment);
                }
                state
                    .holding_events
                    .store(holding.contains(&id), std::sync::atomic::Ordering::Relaxed);
                let state = Arc::new(state);
                if let Some(why) = unloadable.get(&id) {
                    log::warn!("{why}");
                    return Ok(Device {
                        state,
                        task: Arc::new(unbooted::unbooted(TaskError::invalid_state(why))),
                        plugin: 0,
                    });
                }
                Device::boot(&plugins[library[id]].plugin, state, library[id])
                    .map(|(device, waiting)| {
                        if let Some(e) = waiting {
                            log::warn!("device {id}: {e}");
                        }
                        device
                    })
                    .map_err(|e| format!("device {id}: the task could not be created: {e}"))
            })
        };
        // Every device reads its records once, in order: a range of devices at a time.
        let booted = match &setup.database {
            Some(db) => db.store.reading_ahead(&db.host, boot_all),
            None => boot_all(),
        };
        let devices = booted.into_iter().collect::<Result<Vec<_>, _>>()?;
        let legacy_policy = match &setup.database {
            Some(db) if !resumed => db.store.policy(&db.host)?,
            _ => None,
        };
        if !resumed {
            // What the host last told each device (a database of the first schema kept
            // that, not the server's own setting).
            for (i, device) in devices.iter().enumerate() {
                server.resumed_mode(i, device.state.environment().private_ksn);
            }
            server.resumed_server_mode(
                devices
                    .first()
                    .is_some_and(|d| d.state.environment().private_ksn),
            );
        }
        let description = plugin.describe().ok();
        server.set_description(description.clone());
        for (i, d) in devices.iter().enumerate() {
            server.plugin_runs(i, plugins[d.plugin].version.clone());
        }
        let mut world = Self {
            description,
            plugins,
            server,
            selection: None,
            events_from: 0,
            legacy_policy,
            plugin,
            database: setup.database.clone(),
            clock,
            network,
            local_lists,
            launch_control,
            watchdog: setup.watchdog.map(|d| Arc::new(Watchdog::new(d))),
            devices,
            deliveries: delivery::Queue::default(),
            actor: None,
            touched: Touched {
                every: true,
                ..Touched::default()
            },
        };
        if resumed {
            world.restore_events();
            world.agree_at_resume();
        } else {
            world.restore_root_policy();
            world.persist_all()?;
            world.restore_events();
            // Groups with their own KSN proxy setting: their devices get it at once.
            world.synchronise(|_| true, false);
        }
        Ok(world)
    }

    /// Runs `f` on every device, collecting each device's result in device order. With a
    /// watchdog, every call runs on its pool and a device whose call does not return in
    /// time is marked hung (and every later call on it fails at once).
    pub fn each<T: Send + 'static>(
        &self,
        f: impl Fn(&Device) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T, TaskError>> {
        self.each_of(&self.devices, f)
    }

    /// The same on the chosen devices only (`chosen[i]`); the others answer `skipped()`,
    /// and no call is made for them.
    pub fn each_chosen<T: Send + 'static>(
        &self,
        chosen: &[bool],
        skipped: impl Fn() -> T,
        f: impl Fn(&Device) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T, TaskError>> {
        let picked: Vec<Device> = self
            .devices
            .iter()
            .filter(|d| chosen.get(d.state.id).copied().unwrap_or(false))
            .cloned()
            .collect();
        if picked.len() == self.devices.len() {
            return self.each_of(&self.devices, f);
        }
        let mut results = self.each_of(&picked, f).into_iter();
        self.devices
            .iter()
            .map(|d| {
                if chosen.get(d.state.id).copied().unwrap_or(false) {
                    results.next().expect("one result a chosen device")
                } else {
                    Ok(skipped())
                }
            })
            .collect()
    }

    fn each_of<T: Send + 'static>(
        &self,
        devices: &[Device],
        f: impl Fn(&Device) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T, TaskError>> {
        let Some(watchdog) = &self.watchdog else {
            let answers = par_map_waiting(self.database.is_some(), devices, |d| {
                if d.state.hung.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(hung(d));
                }
                f(d)
            });
            self.settle();
            return answers;
        };
        let answers = self.each_under_watchdog(watchdog, devices, f);
        self.settle();
        answers
    }

    /// What the host database was given without waiting (environments) is durable
    /// before a step answers.
    fn settle(&self) {
        if let Some(db) = &self.database {
            if let Err(e) = db.store.settle() {
                log::warn!("the environment was not saved: {e}");
            }
        }
    }

    fn each_under_watchdog<T: Send + 'static>(
        &self,
        watchdog: &Arc<Watchdog>,
        devices: &[Device],
        f: impl Fn(&Device) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T, TaskError>> {
        let until = Instant::now() + watchdog.deadline;
        let pending: Vec<_> = devices
            .iter()
            .map(|d| {
                if d.state.hung.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
                let (device, f) = (d.clone(), f.clone());
                Some(watchdog.submit(move || f(&device)))
            })
            .collect();
        pending
            .into_iter()
            .zip(devices)
            .map(|(pending, d)| {
                let Some(pending) = pending else {
                    return Err(hung(d));
                };
                watchdog.wait(pending, until).unwrap_or_else(|| {
                    d.state.hung.store(true, std::sync::atomic::Ordering::Relaxed);
                    Err(TaskError::invalid_state(format_args!(
                        "device {}: the plugin did not return within {} ms; the device is marked hung",
                        d.state.id,
                        watchdog.deadline.as_millis()
                    )))
                })
            })
            .collect()
    }

    /// Runs a step's `f` on the devices it addresses (`selection`); the others answer
    /// `Skipped`.
    pub fn each_answer(
        &mut self,
        f: impl Fn(&Device) -> Result<Answer, TaskError> + Send + Sync + Clone + 'static,
    ) -> Answers {
        match &self.selection {
            Some(chosen) => {
                let touched = chosen
                    .iter()
                    .enumerate()
                    .filter(|(_, on)| **on)
                    .map(|(i, _)| i);
                self.touched.some.extend(touched);
            }
            None => self.touched.every = true,
        }
        match self.selection.clone() {
            Some(chosen) => self.each_chosen(&chosen, || Answer::Skipped, f),
            None => self.each(f),
        }
    }

    fn each_done(
        &mut self,
        f: impl Fn(&Device) -> Result<(), TaskError> + Send + Sync + Clone + 'static,
    ) -> Answers {
        self.each_answer(move |d| f(d).map(|()| Answer::Done))
    }

    pub fn start(&mut self) -> Answers {
        self.each_done(|d| d.task.start().into_result())
    }

    pub fn stop(&mut self) -> Answers {
        self.each_done(|d| d.task.stop().into_result())
    }

    pub fn set_license(&mut self, license: LicenseState) -> Answers {
        self.each_done(move |d| {
            d.state.set_environment(|e| e.license = license);
            d.state.storage.save_environment(d.state.environment());
            d.task.set_license(license).into_result()
        })
    }

    pub fn set_network(&mut self, service: Service, up: bool, latency_ms: Option<u32>) -> Answers {
        self.network.set_link(service, up, latency_ms);
        self.devices.iter().map(|_| Ok(Answer::Done)).collect()
    }

    /// Each addressed device's storage starts or stops refusing writes.
    pub fn set_storage(&mut self, writable: bool) -> Answers {
        let chosen = self.selection.clone();
        self.devices
            .iter()
            .map(|d| {
                if chosen.as_ref().is_some_and(|c| !c[d.state.id]) {
                    return Ok(Answer::Skipped);
                }
                d.state
                    .storage_refuses
                    .store(!writable, std::sync::atomic::Ordering::Relaxed);
                Ok(Answer::Done)
            })
            .collect()
    }

    pub fn check_file(&mut self, query: FileQuery) -> Answers {
        self.each_answer(move |d| d.task.check_file(query).into_result().map(Answer::Lookup))
    }

    pub fn check_url(&mut self, url: &str) -> Answers {
        let url = url.to_string();
        self.each_answer(move |d| {
            d.task
                .check_url(url.as_str().into())
                .into_result()
                .map(Answer::Lookup)
        })
    }

    /// On-access protection opens a file: each device's own object (its handle numbers
    /// the objects the device's consumers asked about).
    pub fn open_file(&mut self, query: FileQuery) -> Answers {
        self.each_answer(move |d| {
            let (handle, path) = d.state.object("on-access", &query);
            consumers::open_file(&d.task, query, ObjectRef::new(handle, &path))
                .map(|(a, l)| Answer::Access(a, l))
        })
    }

    pub fn launch_app(&mut self, query: FileQuery) -> Answers {
        let control = self.launch_control.clone();
        self.each_answer(move |d| {
            let (handle, path) = d.state.object("launch", &query);
            control
                .launch(&d.task, query, ObjectRef::new(handle, &path))
                .map(|(l, a)| Answer::Launch(l, a))
        })
    }

    /// The devices something happened to since the last call (`None`: every device).
    pub fn take_touched(&mut self) -> Option<Vec<usize>> {
        let touched = std::mem::take(&mut self.touched);
        (!touched.every).then(|| touched.some.into_iter().collect())
    }

    pub(crate) fn touch(&mut self, devices: impl IntoIterator<Item = usize>) {
        self.touched.some.extend(devices);
    }

    pub(crate) fn touch_every(&mut self) {
        self.touched.every = true;
    }

    pub fn reset_counters(&mut self) -> Answers {
        self.collect_events();
        self.events_from = self.server.events().last_id();
        self.each_done(|d| {
            d.state.received.reset();
            d.state.clear_events();
            Ok(())
        })
    }
}
