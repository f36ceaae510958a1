//! A simulated world: the loaded plugin, the clock, the KSN services, and the devices.
//! Scenario steps, shell verbs and the fleet story all act through it.

use std::sync::Arc;

use plugin_api::{FileQuery, LicenseState, LookupAnswer, Service, TaskError};

use crate::{
    consumers::{self, Access, Launch, LaunchControl},
    device::{Clock, Device, DeviceState, LocalLists, LocalListsSpec},
    loader::Plugin,
    network::{KsnSpec, Network},
};

/// The default reputation database, bundled from `tests/data/`.
pub const DEFAULT_DATABASE: &str = include_str!("../../tests/data/ksn-database.json");

pub fn default_ksn() -> KsnSpec {
    serde_json::from_str(DEFAULT_DATABASE).expect("the bundled database is valid")
}

pub struct World {
    pub plugin: Plugin,
    pub clock: Arc<Clock>,
    pub network: Arc<Network>,
    pub local_lists: Arc<LocalLists>,
    pub launch_control: LaunchControl,
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

impl World {
    pub fn new(
        plugin: Plugin,
        devices: usize,
        ksn: &KsnSpec,
        lists: &LocalListsSpec,
        launch_control: &consumers::LaunchControlSpec,
    ) -> Result<Self, String> {
        let clock = Arc::new(Clock::default());
        let network = Arc::new(Network::new(ksn, false)?);
        let local_lists = Arc::new(LocalLists::from_spec(lists)?);
        let mut world = Self {
            plugin,
            clock,
            network,
            local_lists,
            launch_control: LaunchControl::from_spec(launch_control)?,
            devices: Vec::with_capacity(devices),
        };
        for id in 0..devices {
            let state = Arc::new(DeviceState::new(
                id,
                world.clock.clone(),
                world.network.clone(),
                world.local_lists.clone(),
            ));
            let device = Device::boot(&world.plugin, state)
                .map_err(|e| format!("device {id}: the task could not be created: {e}"))?;
            world.devices.push(device);
        }
        Ok(world)
    }

    /// Runs `f` on every device, in order, collecting each device's result.
    pub fn each<T>(
        &mut self,
        f: impl FnMut(&mut Device) -> Result<T, TaskError>,
    ) -> Vec<Result<T, TaskError>> {
        self.devices.iter_mut().map(f).collect()
    }

    pub fn push_policy(&mut self, policy_json: &str) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| {
            d.task
                .push_policy(policy_json.into())
                .into_result()
                .map(|_| Answer::Done)
        })
    }

    pub fn set_local(&mut self, settings_json: &str) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| {
            d.task
                .set_local(settings_json.into())
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
        self.each(|d| {
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
        self.each(|d| {
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
        self.each(|d| d.task.check_file(query).into_result().map(Answer::Lookup))
    }

    pub fn check_url(&mut self, url: &str) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| {
            d.task
                .check_url(url.into())
                .into_result()
                .map(Answer::Lookup)
        })
    }

    pub fn open_file(&mut self, query: FileQuery) -> Vec<Result<Answer, TaskError>> {
        self.each(|d| consumers::open_file(&d.task, query).map(|(a, l)| Answer::Access(a, l)))
    }

    pub fn launch_app(&mut self, query: FileQuery) -> Vec<Result<Answer, TaskError>> {
        let control = &self.launch_control;
        self.devices
            .iter_mut()
            .map(|d| {
                control
                    .launch(&d.task, query)
                    .map(|(l, a)| Answer::Launch(l, a))
            })
            .collect()
    }

    pub fn restart_host(&mut self) -> Vec<Result<Answer, TaskError>> {
        let plugin = self.plugin;
        self.each(|d| d.restart(&plugin).map(|_| Answer::Done))
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
