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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::Console;
use crate::{views::*, world::World};

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

/// Every group policy, with its revisions.
#[utoipa::path(get, path = "/api/policies", responses((status = 200, body = [PolicyRow])))]
pub async fn policies(State(console): State<Arc<Console>>) -> Json<Vec<PolicyRow>> {
    Json(view(console, |_, world| policy_rows(world)).await)
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
