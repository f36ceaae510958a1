//! The plugin libraries a host has loaded, and which one each device runs. A library is
//! loaded once and never unloaded (a task made from it must not outlive its code); each
//! device runs the library its host started it on, or the one an update installed.
//!
//! An update installs a version of the plugin a device runs: a library that cannot be
//! loaded, that this host refuses (its contract, its layout), or that is another plugin
//! fails on that device, which keeps its version; so does one whose task cannot be made
//! over the device's storage (a journal it refuses: a downgrade it does not support), the
//! old version's task made again on the same storage. Never a device without a task.

use std::{path::PathBuf, sync::Arc};

use admin_server::PluginVersion;
use plugin_api::{
    documents::PluginDescription,
    loader::{self, Plugin},
    ErrorKind, TaskError,
};

use super::{par_map_waiting, unbooted, Answer, Answers, Device, DeviceState, World};

/// A loaded plugin library.
#[derive(Clone)]
pub struct Loaded {
    pub path: PathBuf,
    /// As a scenario or an update named it (`fixture_updated_plugin`); `None`: the host's
    /// own (`--plugin`).
    pub library: Option<String>,
    pub plugin: Plugin,
    /// Its name, version, contract and description, as the server keeps them.
    pub version: PluginVersion,
}

impl Loaded {
    pub fn new(plugin: Plugin, path: PathBuf, library: Option<String>) -> Self {
        let version = PluginVersion::new(
            plugin.info.name.as_str(),
            plugin.info.version.as_str(),
            plugin.contract.version.as_str(),
            plugin.describe().ok(),
        );
        Self {
            path,
            library,
            plugin,
            version,
        }
    }

    pub fn description(&self) -> Option<&PluginDescription> {
        self.version.description.as_deref()
    }
}

/// Where a library name or path leads (`fixture_updated_plugin` is looked for the way the
/// host's own plugin is).
fn resolve(library: &str) -> PathBuf {
    let path = loader::locate_library(library);
    path.canonicalize().unwrap_or(path)
}

/// The plugin `library` names, loaded into `plugins` once: its place there.
pub fn load_into(plugins: &mut Vec<Loaded>, library: &str) -> Result<usize, String> {
    let path = resolve(library);
    if let Some(at) = plugins.iter().position(|p| p.path == path) {
        return Ok(at);
    }
    let plugin = loader::load(&path).map_err(|e| e.to_string())?;
    plugins.push(Loaded::new(plugin, path, Some(library.to_string())));
    Ok(plugins.len() - 1)
}

/// Which devices a host starts on a library other than its own (a scenario's `plugins`,
/// `fleet --updated`): by number, or every device of a group.
#[derive(Clone, Debug, Default)]
pub struct DevicePlugins {
    pub library: String,
    pub devices: Vec<usize>,
    pub group: Option<String>,
}

impl World {
    /// The plugin `library` names, loaded once.
    pub fn load_library(&mut self, library: &str) -> Result<usize, String> {
        load_into(&mut self.plugins, library)
    }

    /// The library device `i` runs.
    pub fn plugin_of(&self, i: usize) -> &Loaded {
        &self.plugins[self.devices[i].plugin]
    }

    /// What device `i`'s plugin says of itself.
    pub fn description_of(&self, i: usize) -> Option<&PluginDescription> {
        self.plugin_of(i).description()
    }

    /// Tells the server which version each of `devices` runs.
    pub(crate) fn report_versions(&mut self, devices: impl IntoIterator<Item = usize>) {
        for i in devices {
            let version = self.plugins[self.devices[i].plugin].version.clone();
            self.server.plugin_runs(i, version);
        }
    }

    /// The host restarts the addressed devices: their task instances are made again from
    /// storage, with `library` when given (another build of the plugin, recorded as the
    /// device's, so that a resumed server starts it on it) and each device's own otherwise.
    /// Without `on`, `library` becomes the host's own plugin too.
    ///
    /// A device whose calls left records waiting for storage (it refuses writes) answers
    /// that `storage_error`, booted all the same.
    pub fn restart_host(&mut self, library: Option<usize>) -> Answers {
        let chosen = self.selection.clone();
        let addressed = |i: usize| chosen.as_ref().is_none_or(|c| c[i]);
        if let Some(at) = library {
            if chosen.is_none() {
                self.plugin = self.plugins[at].plugin;
                self.description = self.plugins[at].description().cloned();
                self.server.set_description(self.description.clone());
            }
            let name = self.plugins[at].library.clone();
            for i in (0..self.devices.len()).filter(|i| addressed(*i)) {
                self.devices[i].plugin = at;
                self.server.set_library(i, name.clone());
            }
        }
        let picked: Vec<usize> = (0..self.devices.len()).filter(|i| addressed(*i)).collect();
        self.touch(picked.iter().copied());
        // The old instances end first, as in a host that restarts: what they could still
        // write is written before the new ones read storage. They end in parallel, so
        // their last records share commits.
        let waits = self.database.is_some();
        let old: Vec<std::sync::Mutex<Option<Device>>> = picked
            .iter()
            .map(|&i| std::sync::Mutex::new(Some(self.devices[i].clone())))
            .collect();
        for &i in &picked {
            self.devices[i].task = Arc::new(unbooted::unbooted(TaskError::invalid_state(
                "the host is restarting",
            )));
        }
        let plugins: Vec<Plugin> = self.plugins.iter().map(|p| p.plugin).collect();
        let states: Vec<(Arc<DeviceState>, Plugin)> = par_map_waiting(waits, &old, |slot| {
            let ending = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            // Taken once: each slot is visited once.
            ending.map(|d| (d.state.clone(), plugins[d.plugin]))
        })
        .into_iter()
        .flatten()
        .collect();
        drop(old);
        let boot_all = || {
            par_map_waiting(waits, &states, |(state, plugin)| {
                Device::boot(plugin, state.clone(), 0)
            })
        };
        // Every device reads its records once, in order: a range of devices at a time.
        let booted = match &self.database {
            Some(db) => db.store.reading_ahead(&db.host, boot_all),
            None => boot_all(),
        };
        let mut answers: Answers = (0..self.devices.len())
            .map(|_| Ok(Answer::Skipped))
            .collect();
        for (&i, result) in picked.iter().zip(booted) {
            let plugin = self.devices[i].plugin;
            answers[i] = match result {
                Ok((fresh, waiting)) => {
                    self.devices[i] = Device { plugin, ..fresh };
                    waiting.map_or(Ok(Answer::Done), Err)
                }
                Err(e) => {
                    self.devices[i].task = Arc::new(unbooted::unbooted(e.clone()));
                    Err(e)
                }
            };
        }
        if library.is_some() {
            self.persist_devices(picked.iter().copied());
        }
        self.report_versions(picked);
        answers
    }

    /// Whether device `i` may take `library`: loaded, and a version of the plugin it runs.
    /// Its place in `plugins`, or why not.
    fn installable(&mut self, i: usize, library: &str) -> Result<usize, TaskError> {
        let refused = |why: String| TaskError::new(ErrorKind::INVALID_ARGUMENT, why);
        let old = self.devices[i].plugin;
        let keeps = self.plugins[old].version.label();
        let at = self.load_library(library).map_err(|e| {
            refused(format!(
                "device {i}: the update was not installed: {e}; the device keeps {keeps}"
            ))
        })?;
        let (running, offered) = (&self.plugins[old].version, &self.plugins[at].version);
        if running.name != offered.name {
            return Err(refused(format!(
                "device {i}: {} is another plugin than the {} it runs: an update installs a version of the plugin a device runs; the device keeps {keeps}",
                offered.label(),
                running.name
            )));
        }
        Ok(at)
    }

    /// The updates waiting for the selected devices, installed (in parallel, each library
    /// loaded once): on each device the old task ends, then the new version's is made over
    /// its storage; where it cannot be, the old version's is made again and the device
    /// says why. The server learns of each. Each device's outcome, where it had an update.
    pub(crate) fn install_waiting(
        &mut self,
        selected: impl Fn(usize) -> bool,
    ) -> Vec<(usize, Result<(), TaskError>)> {
        let installs = self.server.installs(selected);
        if installs.is_empty() {
            return Vec::new();
        }
        let previous: std::collections::HashMap<usize, String> = installs
            .iter()
            .map(|(i, _)| (*i, self.plugin_of(*i).version.label()))
            .collect();
        let mut outcomes: Vec<(usize, Result<(), TaskError>)> = Vec::new();
        let mut jobs: Vec<(usize, usize, usize, Arc<DeviceState>)> = Vec::new();
        for (i, library) in &installs {
            match self.installable(*i, library) {
                Err(e) => outcomes.push((*i, Err(e))),
                Ok(at) if at == self.devices[*i].plugin => outcomes.push((*i, Ok(()))),
                Ok(at) => {
                    let old = self.devices[*i].plugin;
                    // The old task ends first: what it could still write is written.
                    self.devices[*i].task = Arc::new(unbooted::unbooted(TaskError::invalid_state(
                        "an update is being installed",
                    )));
                    jobs.push((*i, old, at, self.devices[*i].state.clone()));
                }
            }
        }
        let plugins: Vec<Plugin> = self.plugins.iter().map(|p| p.plugin).collect();
        let booted =
            par_map_waiting(
                self.database.is_some(),
                &jobs,
                |(_, old, at, state)| match Device::boot(&plugins[*at], state.clone(), *at) {
                    Ok((fresh, waiting)) => (Ok(fresh), waiting),
                    Err(e) => (
                        Err((e, Device::boot(&plugins[*old], state.clone(), *old))),
                        None,
                    ),
                },
            );
        for ((i, old, at, state), (result, waiting)) in jobs.into_iter().zip(booted) {
            if let Some(e) = waiting {
                log::warn!("device {i}: {e}");
            }
            match result {
                Ok(fresh) => {
                    self.devices[i] = fresh;
                    outcomes.push((i, Ok(())));
                }
                Err((e, back)) => {
                    self.devices[i] = match back {
                        Ok((again, _)) => again,
                        Err(e) => Device {
                            state,
                            task: Arc::new(unbooted::unbooted(e)),
                            plugin: old,
                        },
                    };
                    outcomes.push((
                        i,
                        Err(TaskError::new(
                            e.kind,
                            format!(
                                "device {i}: {} refused the device's storage ({}); the device keeps {}",
                                self.plugins[at].version.label(),
                                e.message,
                                self.plugins[old].version.label()
                            ),
                        )),
                    ));
                }
            }
        }
        for (i, outcome) in &outcomes {
            self.server.installed(*i, outcome.is_ok());
        }
        self.file_update_events(&outcomes, &previous);
        let done: Vec<usize> = outcomes.iter().map(|(i, _)| *i).collect();
        self.report_versions(done.iter().copied());
        self.touch(done.iter().copied());
        self.persist_devices(done);
        outcomes
    }

    /// The server's own events of an update, one a device: `plugin_updated` (info), or
    /// `plugin_update_failed` (a functional failure) with the reason, so that the console's
    /// Events page says what became of each device.
    fn file_update_events(
        &mut self,
        outcomes: &[(usize, Result<(), TaskError>)],
        previous: &std::collections::HashMap<usize, String>,
    ) {
        use plugin_api::documents::Importance;
        let first_new = self.server.events().last_id() + 1;
        let now = self.clock.now_ms();
        let wall_ms = crate::storage::wall_clock_ms();
        let mut bodies = Vec::new();
        for (i, outcome) in outcomes {
            let runs = self.plugin_of(*i).version.label();
            let was = previous.get(i).cloned().unwrap_or_default();
            let (importance, kind, description) = match outcome {
                Ok(()) => (
                    Importance::Info,
                    "plugin_updated",
                    format!("device {i} runs {runs} (it ran {was})"),
                ),
                Err(e) => (
                    Importance::FunctionalFailure,
                    "plugin_update_failed",
                    e.message.to_string(),
                ),
            };
            let body = serde_json::json!({
                "type": kind, "time_ms": now, "importance": importance,
                "plugin": runs, "was": was, "description": description,
            });
            if self.server.file_event(admin_server::Arriving {
                time_ms: now,
                device: *i,
                group: 0,
                importance,
                kind: kind.into(),
                by: self.actor.clone(),
                wall_ms,
                description: Some(description.into()),
            }) {
                bodies.push(Some(body.to_string().into_boxed_str()));
            }
        }
        self.save_events(first_new, bodies);
    }
}
