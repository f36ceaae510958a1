//! A simulated world: the loaded plugin, the clock, the KSN services, and the devices.
//! Scenario steps, shell verbs and the fleet story all act through it. Devices are
//! independent, so every step runs on them in parallel, one chunk per core.

use std::{sync::Arc, time::Duration};

use plugin_api::{FileQuery, LicenseState, LookupAnswer, Service, TaskError};

use crate::{
    consumers::{self, Access, Launch, LaunchControl, LaunchControlSpec},
    device::{Clock, Device, DeviceState},
    loader::Plugin,
    network::{Database, DatabaseSpec, KsnSpec, Network},
};

/// The default reputation database, bundled from `tests/data/`.
pub const DEFAULT_DATABASE: &str = include_str!("../../tests/data/ksn-database.json");

pub fn default_ksn() -> KsnSpec {
    serde_json::from_str(DEFAULT_DATABASE).expect("the bundled database is valid")
}

/// How a world is set up; `Setup::new(n)` and struct update syntax for the rest.
pub struct Setup {
    pub devices: usize,
    pub ksn: KsnSpec,
    pub local_lists: DatabaseSpec,
    pub launch_control: LaunchControlSpec,
    /// Keep each event's text (scenarios check them); a large fleet only counts them.
    pub keep_events: bool,
    /// Sleep for the services' latency instead of only accounting for it.
    pub real_latency: bool,
    /// Run each call into the plugin on a thread of its own and give up on it after this
    /// long, marking the device hung (see `Device::call`). `None` for speed (fleet, bench).
    pub watchdog: Option<Duration>,
}

impl Setup {
    /// `devices` devices on the bundled database, keeping events, without a watchdog.
    pub fn new(devices: usize) -> Self {
        Self {
            devices,
            ksn: default_ksn(),
            local_lists: DatabaseSpec::default(),
            launch_control: LaunchControlSpec::default(),
            keep_events: true,
            real_latency: false,
            watchdog: None,
        }
    }
}

pub struct World {
    pub plugin: Plugin,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    pub local_lists: Arc<Database>,
    pub launch_control: Arc<LaunchControl>,
    pub watchdog: Option<Duration>,
    pub devices: Vec<Device>,
}

/// What one device answered to a step.
#[derive(Debug, Clone)]
pub enum Answer {
    Done,
    Lookup(LookupAnswer),
    Access(Access, LookupAnswer),
    Launch(Launch, Option<LookupAnswer>),
}

fn threads_for(items: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this, spawning threads costs more than it saves.
    if items < 256 {
        1
    } else {
        cores
    }
}

/// Maps `f` over `items` on every core, keeping the order.
fn par_map<I: Sync, T: Send>(items: &[I], f: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let threads = threads_for(items.len());
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

impl World {
    pub fn new(plugin: Plugin, setup: &Setup) -> Result<Self, String> {
        let clock = Arc::new(Clock::default());
        let network = Arc::new(Network::new(&setup.ksn, setup.real_latency)?);
        let local_lists = Arc::new(Database::from_spec(&setup.local_lists, "local_lists")?);
        let launch_control = Arc::new(LaunchControl::from_spec(&setup.launch_control)?);
        let ids: Vec<usize> = (0..setup.devices).collect();
        let devices = par_map(&ids, |&id| {
            let mut state =
                DeviceState::new(id, clock.clone(), network.clone(), local_lists.clone());
            state.keep_events = setup.keep_events;
            Device::boot(&plugin, Arc::new(state))
                .map_err(|e| format!("device {id}: the task could not be created: {e}"))
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            plugin,
            clock,
            network,
            local_lists,
            launch_control,
            watchdog: setup.watchdog,
            devices,
        })
    }

    /// Runs `f` on every device (under the watchdog, if any), collecting each device's
    /// result in device order.
    pub fn each<T: Send + 'static>(
        &self,
        f: impl Fn(&Device) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T, TaskError>> {
        let watchdog = self.watchdog;
        par_map(&self.devices, |d| {
            let f = f.clone();
            d.call(watchdog, move |d| f(d))
        })
    }

    pub fn push_policy(&mut self, policy_json: &str) -> Vec<Result<Answer, TaskError>> {
        let text = policy_json.to_string();
        self.each(move |d| {
            d.task
                .push_policy(text.as_str().into())
                .into_result()
                .map(|_| Answer::Done)
        })
    }

    pub fn set_local(&mut self, settings_json: &str) -> Vec<Result<Answer, TaskError>> {
        let text = settings_json.to_string();
        self.each(move |d| {
            d.task
                .set_local(text.as_str().into())
                .into_result()
                .map(|_| Answer::Done)
        })
    }

    pub fn start(&mut self) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| d.task.start().into_result().map(|_| Answer::Done))
    }

    pub fn stop(&mut self) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| d.task.stop().into_result().map(|_| Answer::Done))
    }

    pub fn set_private_ksn(&mut self, enabled: bool) -> Vec<Result<Answer, TaskError>> {
        self.each(move |d| {
            d.state
                .environment
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .private_ksn = enabled;
            d.task
                .set_private_ksn(enabled)
                .into_result()
                .map(|_| Answer::Done)
        })
    }

    pub fn set_license(&mut self, license: LicenseState) -> Vec<Result<Answer, TaskError>> {
        self.each(move |d| {
            d.state
                .environment
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .license = license;
            d.task
                .set_license(license)
                .into_result()
                .map(|_| Answer::Done)
        })
    }

    pub fn set_network(
        &mut self,
        service: Service,
        up: bool,
        latency_ms: Option<u32>,
    ) -> Vec<Result<Answer, TaskError>> {
        self.network.set_link(service, up, latency_ms);
        self.devices.iter().map(|_| Ok(Answer::Done)).collect()
    }

    pub fn check_file(&mut self, query: FileQuery) -> Vec<Result<Answer, TaskError>> {
        self.each(move |d| d.task.check_file(query).into_result().map(Answer::Lookup))
    }

    pub fn check_url(&mut self, url: &str) -> Vec<Result<Answer, TaskError>> {
        let url = url.to_string();
        self.each(move |d| {
            d.task
                .check_url(url.as_str().into())
                .into_result()
                .map(Answer::Lookup)
        })
    }

    pub fn open_file(&mut self, query: FileQuery) -> Vec<Result<Answer, TaskError>> {
        self.each(move |d| consumers::open_file(&d.task, query).map(|(a, l)| Answer::Access(a, l)))
    }

    pub fn launch_app(&mut self, query: FileQuery) -> Vec<Result<Answer, TaskError>> {
        let control = self.launch_control.clone();
        self.each(move |d| {
            control
                .launch(&d.task, query)
                .map(|(l, a)| Answer::Launch(l, a))
        })
    }

    /// Drops every task instance and boots a new one on the same device state.
    pub fn restart_host(&mut self) -> Vec<Result<Answer, TaskError>> {
        let plugin = self.plugin;
        let booted = self.each(move |d| Device::boot(&plugin, d.state.clone()));
        booted
            .into_iter()
            .enumerate()
            .map(|(i, result)| {
                result.map(|fresh| {
                    self.devices[i] = fresh;
                    Answer::Done
                })
            })
            .collect()
    }

    pub fn advance_time(&mut self, ms: u64) -> Vec<Result<Answer, TaskError>> {
        self.clock.advance(ms);
        self.each(|d| d.task.tick().into_result().map(|_| Answer::Done))
    }

    pub fn reset_counters(&mut self) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| {
            d.state.received.reset();
            d.state.clear_events();
            Ok(Answer::Done)
        })
    }
}
