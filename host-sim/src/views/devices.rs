//! Devices as the consoles show them: a row of the list, a page of it, and one device's
//! task with every setting, where it comes from, and why.
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::world::World;
use admin_server::status::Status;
use plugin_api::documents::SettingsView;

/// One device, as the devices list shows it.
#[derive(Serialize, ToSchema, Clone)]
pub struct DeviceRow {
    pub id: usize,
    pub group: String,
    #[schema(value_type = String, example = "ok")]
    pub status: Status,
    pub reasons: Vec<String>,
    pub state: String,
    pub error: Option<String>,
    pub network: String,
    pub private_ksn: bool,
    pub license: String,
    pub tags: Vec<String>,
    pub out_of_office: bool,
    /// Whether the device is connected to the server (a disconnected one gets nothing).
    pub connected: bool,
    /// The plugin it runs: name, version, the contract it was built against.
    pub plugin: String,
    pub plugin_version: String,
    pub contract: String,
    /// A library an update is to install at its next synchronisation.
    pub install: Option<String>,
}

pub fn device_row(world: &World, statuses: &[(Status, Vec<String>)], id: usize) -> DeviceRow {
    let task = world.devices[id].task.status();
    let (status, reasons) = statuses
        .get(id)
        .cloned()
        .unwrap_or_else(|| world.status_of(id));
    let managed = world.server.device(id);
    let runs = &world.plugin_of(id).version;
    DeviceRow {
        id,
        group: world.server.tree().path(managed.group),
        status,
        reasons,
        state: task.state.to_string(),
        error: task.error.into_option().map(|e| e.to_string()),
        network: task.network.to_string(),
        private_ksn: task.private_ksn,
        license: task.license.to_string(),
        tags: managed.tags.iter().cloned().collect(),
        out_of_office: managed.out_of_office,
        connected: managed.connected,
        plugin: runs.name.clone(),
        plugin_version: runs.version.clone(),
        contract: runs.contract.clone(),
        install: managed.install.clone(),
    }
}

/// Which devices a list shows.
#[derive(Deserialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Only this group and its subgroups (a path such as `Servers`).
    pub group: Option<String>,
    /// Only devices of this status: `ok`, `warning` or `critical`.
    pub status: Option<String>,
    /// Only devices running this plugin version (`1.1.0`, or `ksn-usage-task 1.1.0`).
    pub plugin: Option<String>,
    /// The page, from 0.
    #[serde(default, deserialize_with = "super::blank_is_none")]
    pub page: Option<usize>,
    /// Devices per page (at most 500; default 50).
    #[serde(default, deserialize_with = "super::blank_is_none")]
    pub per_page: Option<usize>,
}

/// A page of devices, and the counts of all the list selects.
#[derive(Serialize, ToSchema)]
pub struct DevicePage {
    pub total: usize,
    /// OK, Warning, Critical, of every device the list selects.
    pub counts: [usize; 3],
    pub page: usize,
    pub per_page: usize,
    pub devices: Vec<DeviceRow>,
}

pub fn device_page(
    world: &World,
    statuses: &[(Status, Vec<String>)],
    query: &DeviceQuery,
) -> Result<DevicePage, String> {
    let group = match query.group.as_deref().filter(|g| !g.is_empty()) {
        Some(path) => Some(world.server.tree().find(path)?),
        None => None,
    };
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Some(
            Status::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| format!("status: expected ok, warning or critical, got `{name}`"))?,
        ),
        None => None,
    };
    let plugin = match query
        .plugin
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(wanted) => {
            let versions = &world.plugins;
            let matching: Vec<usize> = (0..versions.len())
                .filter(|&v| {
                    versions[v].version.version == wanted || versions[v].version.label() == wanted
                })
                .collect();
            if matching.is_empty() {
                let known: Vec<String> = versions.iter().map(|v| v.version.label()).collect();
                return Err(format!(
                    "plugin: no device runs {wanted:?} (the fleet runs {})",
                    known.join(", ")
                ));
            }
            Some(matching)
        }
        None => None,
    };
    let per_page = query.per_page.unwrap_or(50).clamp(1, 500);
    let mut counts = [0; 3];
    let mut selected = Vec::new();
    for (id, record) in world.server.devices().iter().enumerate() {
        if group.is_some_and(|g| !world.server.tree().within(record.group, g)) {
            continue;
        }
        if plugin
            .as_ref()
            .is_some_and(|p| !p.contains(&world.devices[id].plugin))
        {
            continue;
        }
        let found = statuses.get(id).map_or(Status::Ok, |s| s.0);
        counts[found as usize] += 1;
        if status.is_none_or(|s| s == found) {
            selected.push(id);
        }
    }
    // Past the last page: the last page.
    let last = selected.len().saturating_sub(1) / per_page;
    let page = query.page.unwrap_or(0).min(last);
    let devices = selected
        .iter()
        .skip(page * per_page)
        .take(per_page)
        .map(|&id| device_row(world, statuses, id))
        .collect();
    Ok(DevicePage {
        total: selected.len(),
        counts,
        page,
        per_page,
        devices,
    })
}

/// One setting of a device's task: its value, where it comes from, and why.
#[derive(Serialize, ToSchema)]
pub struct SettingRow {
    pub path: String,
    pub value: Value,
    pub source: String,
    pub locked: bool,
    /// The policy's value, if the policy in force sets it (a locked box may be set to it
    /// locally, re-stating it, when it reads otherwise).
    pub policy_value: Option<Value>,
    pub applies: bool,
    pub why: String,
    pub meaning: String,
    /// The policy that sets it, its revision and group (and profile), if one does.
    pub policy: Option<String>,
    pub revision: Option<u32>,
    pub policy_group: Option<String>,
    pub profile: Option<String>,
    /// What `explain` prints for it.
    pub explain: String,
}

/// A device's KSN Usage task: its status, settings, and last log entries.
#[derive(Serialize, ToSchema)]
pub struct DeviceDetail {
    pub device: DeviceRow,
    pub settings: Vec<SettingRow>,
    /// Settings its policy sets that its plugin version does not know (another version of
    /// the fleet does): not managed on it.
    pub not_managed: Vec<String>,
    pub log: Vec<String>,
}

pub fn device_detail(
    world: &World,
    statuses: &[(Status, Vec<String>)],
    id: usize,
) -> Result<DeviceDetail, String> {
    if id >= world.devices.len() {
        return Err(format!(
            "no device {id} (devices 0 to {})",
            world.devices.len().saturating_sub(1)
        ));
    }
    let view: SettingsView = super::task::settings_view(world, id)?;
    let effective = world.server.effective(id);
    let paths: Vec<String> = view.details.keys().cloned().collect();
    let order: Vec<String> = world
        .description_of(id)
        .map(|d| d.settings.iter().map(|s| s.path.clone()).collect())
        .unwrap_or_else(|| paths.clone());
    let settings = order
        .iter()
        .filter_map(|path| {
            let d = view.details.get(path)?;
            let from = effective.get(path);
            let policy = from.and_then(|e| world.server.policy_by_id(e.provenance.policy));
            Some(SettingRow {
                path: path.clone(),
                value: d.value.clone(),
                source: crate::serde_name(&d.source),
                locked: d.locked,
                policy_value: d.policy_value.clone(),
                applies: d.applies,
                why: d.why.clone(),
                meaning: d.meaning.clone(),
                policy: policy.map(|p| p.name.clone()),
                revision: from.map(|e| e.provenance.revision),
                policy_group: from.map(|e| world.server.tree().path(e.provenance.group)),
                profile: from.and_then(|e| e.provenance.profile.clone()),
                explain: super::task::explain_on(world, id, path, &paths).unwrap_or_else(|e| e),
            })
        })
        .collect();
    Ok(DeviceDetail {
        device: device_row(world, statuses, id),
        settings,
        not_managed: super::task::not_managed_paths(world, id),
        log: super::task::log_lines(world, id, 50)?,
    })
}

/// The statement device `id`'s acceptance box accepts now, with its text (of the version
/// its plugin ships).
pub fn statement_now(world: &World, id: usize, private_ksn: bool) -> Option<Value> {
    let d = world.description_of(id)?;
    let statement = plugin_api::documents::Statement::for_mode(private_ksn);
    let text = d.statement(statement)?;
    Some(
        json!({"statement": statement, "version": text.version, "title": text.title, "text": text.text}),
    )
}
