//! The console's JSON API, documented by its OpenAPI document (`GET /api/openapi.json`).
//! Reads are views of the world; the one change is `POST /api/steps`: a scenario step, run
//! by the console as `host-sim shell` runs it.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use plugin_api::documents::{Importance, SettingsView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{Console, SERVICES};
use crate::{shell::views, world::World};
use admin_server::{events::Filter, status::Status};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "host-sim Web Console",
        description = "The simulated Administration Server's console: devices, their KSN Usage task, policies, events and the server. Authenticate with the access token host-sim serve prints (`Authorization: Bearer <token>`, or the console's cookie with an `X-CSRF-Token` header on changes)."
    ),
    paths(
        describe, devices, device, audit, groups, policies, events, server, deliveries, step
    ),
    components(schemas(
        DeviceRow,
        DevicePage,
        DeviceDetail,
        SettingRow,
        GroupRow,
        PolicyRow,
        RevisionRow,
        EventRow,
        ServerView,
        ServiceRow,
        DeliveryRow,
        StepAnswer,
        Problem
    ))
)]
pub struct Doc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(Doc::openapi())
}

/// An error, in a sentence that says what to do.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    pub error: String,
}

pub fn problem(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(Problem {
            error: error.into(),
        }),
    )
        .into_response()
}

/// Runs a view of the world off the async threads.
async fn view<T: Send + 'static>(
    console: Arc<Console>,
    f: impl FnOnce(&Console, &World) -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || {
        let shell = console.shell();
        f(&console, shell.world())
    })
    .await
    .expect("a view does not panic")
}

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
}

pub fn device_row(world: &World, statuses: &[(Status, Vec<String>)], id: usize) -> DeviceRow {
    let task = world.devices[id].task.status();
    let (status, reasons) = statuses
        .get(id)
        .cloned()
        .unwrap_or_else(|| world.status_of(id));
    DeviceRow {
        id,
        group: world.server.tree().path(world.server.devices()[id].group),
        status,
        reasons,
        state: task.state.to_string(),
        error: task.error.into_option().map(|e| e.to_string()),
        network: task.network.to_string(),
        private_ksn: task.private_ksn,
        license: task.license.to_string(),
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
    /// The page, from 0.
    pub page: Option<usize>,
    /// Devices per page (at most 500; default 50).
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
    let per_page = query.per_page.unwrap_or(50).clamp(1, 500);
    let mut counts = [0; 3];
    let mut selected = Vec::new();
    for (id, record) in world.server.devices().iter().enumerate() {
        if group.is_some_and(|g| !world.server.tree().within(record.group, g)) {
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

/// The plugin's description of itself: settings, schemas, statements with their texts.
#[utoipa::path(get, path = "/api/describe", responses((status = 200, description = "The plugin's `describe`", body = Object)))]
pub async fn describe(State(console): State<Arc<Console>>) -> Response {
    view(console, |_, world| match &world.description {
        Some(d) => Json(serde_json::to_value(d).unwrap_or(Value::Null)).into_response(),
        None => problem(
            StatusCode::NOT_IMPLEMENTED,
            "the plugin does not describe itself",
        ),
    })
    .await
}

/// The devices, a page at a time, with the counts of each status.
#[utoipa::path(get, path = "/api/devices", params(DeviceQuery), responses((status = 200, body = DevicePage), (status = 400, body = Problem)))]
pub async fn devices(
    State(console): State<Arc<Console>>,
    Query(query): Query<DeviceQuery>,
) -> Response {
    view(console, move |console, world| {
        match device_page(world, &console.statuses(), &query) {
            Ok(page) => Json(page).into_response(),
            Err(e) => problem(StatusCode::BAD_REQUEST, e),
        }
    })
    .await
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
    let view: SettingsView = views::settings_view(world, id)?;
    let effective = world.server.effective(id);
    let paths: Vec<String> = view.details.keys().cloned().collect();
    let order: Vec<String> = world
        .description
        .as_ref()
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
                explain: views::explain_on(world, id, path, &paths).unwrap_or_else(|e| e),
            })
        })
        .collect();
    Ok(DeviceDetail {
        device: device_row(world, statuses, id),
        settings,
        log: views::log_lines(world, id, 50)?,
    })
}

/// A device's task: status, settings with their sources, padlocks and reasons, its log.
#[utoipa::path(get, path = "/api/devices/{id}", params(("id" = usize, Path, description = "The device")), responses((status = 200, body = DeviceDetail), (status = 404, body = Problem)))]
pub async fn device(State(console): State<Arc<Console>>, Path(id): Path<usize>) -> Response {
    view(console, move |console, world| {
        match device_detail(world, &console.statuses(), id) {
            Ok(detail) => Json(detail).into_response(),
            Err(e) => problem(StatusCode::NOT_FOUND, e),
        }
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A device's consent history, as `host-sim audit` prints it: every acceptance and
/// withdrawal, when, of which statement and version, and who made it.
#[utoipa::path(get, path = "/api/devices/{id}/audit", params(("id" = usize, Path, description = "The device"), AuditQuery), responses((status = 200, description = "The history, as JSON or CSV"), (status = 400, description = "An unknown format", body = Problem), (status = 404, description = "No such device", body = Problem)))]
pub async fn audit(
    State(console): State<Arc<Console>>,
    Path(id): Path<usize>,
    Query(query): Query<AuditQuery>,
) -> Response {
    view(console, move |_, world| {
        let Some(device) = world.devices.get(id) else {
            return problem(StatusCode::NOT_FOUND, format!("no device {id}"));
        };
        let records = match crate::audit::consent_records(&device.task) {
            Ok(records) => records,
            Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        let history = crate::audit::History {
            host: "serve".into(),
            device: id,
            records,
        };
        match query.format.as_deref() {
            Some("csv") => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"device-{id}-consent.csv\""),
                    ),
                ],
                crate::audit::csv(&[history]),
            )
                .into_response(),
            None | Some("json") => Json(history).into_response(),
            Some(other) => problem(
                StatusCode::BAD_REQUEST,
                format!("format: expected json or csv, got `{other}`"),
            ),
        }
    })
    .await
}

/// An administration group.
#[derive(Serialize, ToSchema)]
pub struct GroupRow {
    pub path: String,
    pub inherit: bool,
    pub private_ksn: Option<bool>,
    pub devices: usize,
    /// OK, Warning, Critical, of the group's own devices and its subgroups'.
    pub counts: [usize; 3],
    pub active_policy: Option<String>,
}

pub fn group_rows(world: &World, statuses: &[(Status, Vec<String>)]) -> Vec<GroupRow> {
    let tree = &world.server.tree();
    tree.live()
        .map(|id| {
            let mut counts = [0; 3];
            let mut devices = 0;
            for (i, d) in world.server.devices().iter().enumerate() {
                if tree.within(d.group, id) {
                    devices += 1;
                    counts[statuses.get(i).map_or(0, |s| s.0 as usize)] += 1;
                }
            }
            let group = tree.group(id);
            GroupRow {
                path: tree.path(id),
                inherit: group.inherit,
                private_ksn: group.private_ksn,
                devices,
                counts,
                active_policy: world.server.active_policy(id).map(|p| p.name.clone()),
            }
        })
        .collect()
}

/// The administration groups, with each one's status counts and active policy.
#[utoipa::path(get, path = "/api/groups", responses((status = 200, body = [GroupRow])))]
pub async fn groups(State(console): State<Arc<Console>>) -> Json<Vec<GroupRow>> {
    Json(
        view(console, |console, world| {
            group_rows(world, &console.statuses())
        })
        .await,
    )
}

/// One save of a policy.
#[derive(Serialize, ToSchema)]
pub struct RevisionRow {
    pub number: u32,
    pub by: String,
    pub time_ms: u64,
    pub what: String,
    /// The settings document of this revision.
    pub policy: Value,
    pub force_inheritance: bool,
    pub profiles: Vec<String>,
}

/// A group policy, with its revisions, newest last.
#[derive(Serialize, ToSchema)]
pub struct PolicyRow {
    pub name: String,
    pub group: String,
    pub active: bool,
    pub revisions: Vec<RevisionRow>,
}

pub fn policy_rows(world: &World) -> Vec<PolicyRow> {
    world
        .server
        .policies()
        .iter()
        .map(|p| PolicyRow {
            name: p.name.clone(),
            group: world.server.tree().path(p.group),
            active: p.active,
            revisions: p
                .revisions
                .iter()
                .map(|r| RevisionRow {
                    number: r.number,
                    by: r.by.clone(),
                    time_ms: r.time_ms,
                    what: r.what.clone(),
                    policy: admin_server::policy::document(&r.content.settings),
                    force_inheritance: r.content.force_inheritance,
                    profiles: r.content.profiles.iter().map(|p| p.name.clone()).collect(),
                })
                .collect(),
        })
        .collect()
}

/// Every group policy, with its revisions.
#[utoipa::path(get, path = "/api/policies", responses((status = 200, body = [PolicyRow])))]
pub async fn policies(State(console): State<Arc<Console>>) -> Json<Vec<PolicyRow>> {
    Json(view(console, |_, world| policy_rows(world)).await)
}

/// Which events a list shows.
#[derive(Deserialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// `critical`, `functional_failure`, `warning` or `info`.
    pub importance: Option<String>,
    /// The event's type, such as `task_error`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only the devices of this group and its subgroups.
    pub group: Option<String>,
    pub device: Option<usize>,
    /// From this host time on (ms).
    pub since: Option<u64>,
    /// Up to this host time (ms).
    pub until: Option<u64>,
    /// At most this many, newest first (default 200).
    pub limit: Option<usize>,
}

/// One event the server keeps.
#[derive(Serialize, ToSchema)]
pub struct EventRow {
    pub id: u64,
    pub time_ms: u64,
    pub device: usize,
    pub group: String,
    pub importance: String,
    #[serde(rename = "type")]
    pub kind: String,
}

pub fn event_rows(world: &World, query: &EventQuery) -> Result<Vec<EventRow>, String> {
    let blank = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let importance = match blank(&query.importance) {
        Some(name) => Some(Importance::from_name(&name).ok_or_else(|| {
            format!(
                "importance: expected critical, functional_failure, warning or info, got `{name}`"
            )
        })?),
        None => None,
    };
    let n = world.devices.len();
    let devices = match (blank(&query.group), query.device) {
        (Some(group), _) => Some(world.server.in_group(world.server.tree().find(&group)?)),
        (None, Some(d)) => Some((0..n).map(|i| i == d).collect()),
        (None, None) => None,
    };
    let filter = Filter {
        devices,
        importance,
        kind: blank(&query.kind),
        since_ms: query.since,
        until_ms: query.until,
        ..Filter::default()
    };
    let limit = query.limit.unwrap_or(200);
    let mut rows: Vec<EventRow> = world
        .server
        .events()
        .query(&filter)
        .map(|e| EventRow {
            id: e.id,
            time_ms: e.time_ms,
            device: e.device,
            group: world.server.tree().path(e.group),
            importance: e.importance.as_str().to_string(),
            kind: e.kind.to_string(),
        })
        .collect();
    rows.reverse();
    rows.truncate(limit);
    Ok(rows)
}

/// The server's events, newest first, by importance, type, group, device and time.
#[utoipa::path(get, path = "/api/events", params(EventQuery), responses((status = 200, body = [EventRow]), (status = 400, body = Problem)))]
pub async fn events(
    State(console): State<Arc<Console>>,
    Query(query): Query<EventQuery>,
) -> Response {
    view(console, move |_, world| match event_rows(world, &query) {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    })
    .await
}

/// A KSN service as the simulation plays it.
#[derive(Serialize, ToSchema)]
pub struct ServiceRow {
    pub service: String,
    pub up: bool,
    pub latency_ms: u32,
    /// Items received from every device so far.
    pub received: u64,
}

/// The server: Private KSN, the licence, the services, the host time.
#[derive(Serialize, ToSchema)]
pub struct ServerView {
    pub private_ksn: bool,
    pub license: String,
    pub time_ms: u64,
    pub devices: usize,
    pub services: Vec<ServiceRow>,
}

pub fn server_view(world: &World) -> ServerView {
    ServerView {
        private_ksn: world.server.private_ksn(),
        license: world.devices.first().map_or("valid".to_string(), |d| {
            d.state.environment().license.to_string()
        }),
        time_ms: world.clock.now_ms(),
        devices: world.devices.len(),
        services: SERVICES
            .iter()
            .zip(super::sample(world).received)
            .map(|(&service, received)| {
                let (up, latency_ms) = world.network.link(service);
                ServiceRow {
                    service: service.to_string(),
                    up,
                    latency_ms,
                    received,
                }
            })
            .collect(),
    }
}

/// The server's Private KSN setting, the licence and each KSN service.
#[utoipa::path(get, path = "/api/server", responses((status = 200, body = ServerView)))]
pub async fn server(State(console): State<Arc<Console>>) -> Json<ServerView> {
    Json(view(console, |_, world| server_view(world)).await)
}

/// How a step is answered.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StepQuery {
    /// Answer once the change reached the devices it reaches now (by default, once it is
    /// saved: the devices get it in the background).
    pub wait: Option<bool>,
}

/// One change's delivery to the devices it reaches now.
#[derive(Serialize, ToSchema)]
pub struct DeliveryRow {
    /// Numbered in the order the changes were saved.
    pub id: u64,
    /// What was saved.
    pub what: String,
    /// The devices it reaches now (connected ones; the others get it at their next
    /// synchronisation).
    pub total: usize,
    pub delivered: usize,
    /// Devices whose task refused it.
    pub failed: usize,
    pub done: bool,
}

pub fn delivery_rows(world: &World) -> Vec<DeliveryRow> {
    world
        .deliveries
        .progress()
        .into_iter()
        .map(|p| DeliveryRow {
            id: p.id,
            what: p.what,
            total: p.total,
            delivered: p.delivered,
            failed: p.failed,
            done: p.done,
        })
        .collect()
}

/// Each change's delivery to the devices, newest first: a change is answered once saved,
/// and delivered in the background, in order.
#[utoipa::path(get, path = "/api/deliveries", responses((status = 200, body = [DeliveryRow])))]
pub async fn deliveries(State(console): State<Arc<Console>>) -> Json<Vec<DeliveryRow>> {
    Json(view(console, |_, world| delivery_rows(world)).await)
}

/// What a step did.
#[derive(Serialize, ToSchema)]
pub struct StepAnswer {
    /// The step's result and the events it caused, as the console prints them.
    pub output: String,
    /// The change was saved, and is delivered in the background: this delivery's number
    /// in `/api/deliveries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u64>,
}

/// Runs one scenario step (as in a scenario file, with `on` to address a group or
/// devices), as `host-sim shell` runs it: every change of the console is one.
#[utoipa::path(post, path = "/api/steps", params(StepQuery), request_body(content = Object, description = "A scenario step, e.g. `{\"do\": \"start\", \"on\": {\"device\": 0}}`"), responses((status = 200, body = StepAnswer), (status = 400, description = "Not a JSON object", body = Problem), (status = 401, description = "No access token", body = Problem), (status = 403, description = "A wrong CSRF token, host or origin", body = Problem), (status = 422, description = "The step was refused (the plugin's or the server's reason)", body = Problem)))]
pub async fn step(
    State(console): State<Arc<Console>>,
    Query(query): Query<StepQuery>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(step) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the body is not JSON: send one scenario step, e.g. {\"do\": \"start\"}",
        );
    };
    if !step.is_object() {
        return problem(StatusCode::BAD_REQUEST, "a step is a JSON object");
    }
    let line = step.to_string();
    tokio::task::spawn_blocking(move || {
        let before = console.shell().world().deliveries.last_id();
        let result = console.shell().execute(&line);
        let after = console.shell().world().deliveries.last_id();
        let delivery = (after > before).then_some(after);
        let result = result.map_err(|e| {
            let shell = console.shell();
            with_locking_policies(shell.world(), &step, e)
        });
        console.changed();
        if query.wait == Some(true) {
            // The caller waits for the devices it reaches now, as a scenario step does.
            console.deliver_pending();
        } else {
            console.deliver();
        }
        match result {
            Ok(output) => Json(StepAnswer { output, delivery }).into_response(),
            Err(e) => problem(StatusCode::UNPROCESSABLE_ENTITY, e),
        }
    })
    .await
    .unwrap_or_else(|_| problem(StatusCode::INTERNAL_SERVER_ERROR, "the step did not finish"))
}

/// A refusal of a local change to locked settings, with the policies that lock them (the
/// plugin knows a lock; the server knows whose it is).
fn with_locking_policies(world: &World, step: &Value, error: String) -> String {
    if !error.contains("locked_by_policy") {
        return error;
    }
    let device = step["on"]["device"]
        .as_u64()
        .or_else(|| step["on"]["devices"][0].as_u64())
        .unwrap_or(0) as usize;
    if device >= world.devices.len() {
        return error;
    }
    let effective = world.server.effective(device);
    let mut named = Vec::new();
    if let Some(sections) = step["settings"].as_object() {
        for (section, keys) in sections {
            for key in keys.as_object().into_iter().flat_map(|k| k.keys()) {
                let path = format!("{section}.{key}");
                let Some(setting) = effective.get(&path).filter(|s| s.entry.locked) else {
                    continue;
                };
                let p = &setting.provenance;
                if let Some(policy) = world.server.policy_by_id(p.policy) {
                    named.push(format!(
                        "{path} is locked by the policy \"{}\", revision {}, of group {}",
                        policy.name,
                        p.revision,
                        world.server.tree().path(p.group)
                    ));
                }
            }
        }
    }
    if named.is_empty() {
        error
    } else {
        format!("{error}\n{}", named.join("\n"))
    }
}

/// The statement a device's acceptance box accepts now, with its text.
pub fn statement_now(world: &World, private_ksn: bool) -> Option<Value> {
    let d = world.description.as_ref()?;
    let statement = plugin_api::documents::Statement::for_mode(private_ksn);
    let text = d.statement(statement)?;
    Some(
        json!({"statement": statement, "version": text.version, "title": text.title, "text": text.text}),
    )
}
