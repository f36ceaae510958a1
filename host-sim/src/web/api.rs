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

use super::{people::Identity, Console};
use crate::{views::*, world::World};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "host-sim Web Console",
        description = "The simulated Administration Server's console: devices, their KSN Usage task, policies, events and the server. Authenticate with the access token host-sim serve prints (`Authorization: Bearer <token>`, or the console's cookie with an `X-CSRF-Token` header on changes)."
    ),
    paths(
        describe, devices, device, audit, groups, policies, events, server, deliveries, step,
        consent, actions, me, diff
    ),
    components(schemas(
        DeviceRow,
        DevicePage,
        DeviceDetail,
        SettingRow,
        GroupRow,
        PolicyRow,
        RevisionRow,
        ProfileRow,
        EventRow,
        ServerView,
        ServiceRow,
        PluginCount,
        DeliveryRow,
        ConsentPage,
        ConsentRow,
        ConsentTotal,
        ActionView,
        Me,
        DiffView,
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
        Ok(rows) if query.format.as_deref() == Some("csv") => csv(events_csv(&rows), "events"),
        Ok(rows) => Json(rows).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    })
    .await
}

/// A CSV file to save.
fn csv(body: String, name: &str) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The fleet's consent: for every device of a group (and its subgroups), each statement
/// and data category in force or not, since when, by whom, which version; a page of 100
/// devices, or every one as CSV.
#[utoipa::path(get, path = "/api/consent", params(ConsentQuery), responses((status = 200, body = ConsentPage), (status = 400, body = Problem)))]
pub async fn consent(
    State(console): State<Arc<Console>>,
    Query(query): Query<ConsentQuery>,
) -> Response {
    view(console, move |_, world| {
        let every = query.format.as_deref() == Some("csv");
        match consent_page(world, &query, every) {
            Ok(page) if every => csv(consent_csv(&page.rows), "consent"),
            Ok(page) => Json(page).into_response(),
            Err(e) => problem(StatusCode::BAD_REQUEST, e),
        }
    })
    .await
}

/// How the actions are listed.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// At most this many, newest first (default 200).
    pub limit: Option<String>,
    /// `csv` for a CSV file.
    pub format: Option<String>,
}

/// The administrators' actions through the console, newest first: who, when, what, on
/// what, and how it ended.
#[utoipa::path(get, path = "/api/actions", params(ActionQuery), responses((status = 200, body = [ActionView]), (status = 400, body = Problem)))]
pub async fn actions(
    State(console): State<Arc<Console>>,
    Query(query): Query<ActionQuery>,
) -> Response {
    let limit = match query
        .limit
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        None => 200,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("limit: expected a whole number, got {l:?}"),
                )
            }
        },
    };
    tokio::task::spawn_blocking(move || match console.action_rows(limit) {
        Ok(rows) => {
            let rows = action_views(rows);
            if query.format.as_deref() == Some("csv") {
                csv(actions_csv(&rows), "actions")
            } else {
                Json(rows).into_response()
            }
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    })
    .await
    .unwrap_or_else(|_| problem(StatusCode::INTERNAL_SERVER_ERROR, "the list failed"))
}

/// Who is signed in.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    #[schema(value_type = String, example = "administrator")]
    pub role: super::people::Role,
}

/// The signed-in user and their role.
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Me)))]
pub async fn me(axum::Extension(who): axum::Extension<Identity>) -> Json<Me> {
    Json(Me {
        name: who.name.to_string(),
        role: who.role,
    })
}

/// Which two revisions to compare.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    pub policy: String,
    pub a: u32,
    pub b: u32,
}

/// What changed from one revision of a policy to another (any two).
#[derive(Serialize, ToSchema)]
pub struct DiffView {
    pub policy: String,
    pub a: u32,
    pub b: u32,
    /// A line a change: `path: before → after`, statement versions included.
    pub lines: Vec<String>,
}

/// Any two revisions of a policy compared.
#[utoipa::path(get, path = "/api/diff", params(DiffQuery), responses((status = 200, body = DiffView), (status = 404, body = Problem)))]
pub async fn diff(State(console): State<Arc<Console>>, Query(q): Query<DiffQuery>) -> Response {
    view(console, move |_, world| {
        match revisions_diff(world, &q.policy, q.a, q.b) {
            Ok(lines) => Json(DiffView {
                policy: q.policy.clone(),
                a: q.a,
                b: q.b,
                lines,
            })
            .into_response(),
            Err(e) => problem(StatusCode::NOT_FOUND, e),
        }
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
    axum::Extension(who): axum::Extension<Identity>,
    Query(query): Query<StepQuery>,
    body: axum::body::Bytes,
) -> Response {
    let step = match crate::json::parse_slice(&body) {
        Ok(step) => step,
        Err(e) if e.contains("given twice") => {
            return problem(StatusCode::BAD_REQUEST, format!("the step: {e}"))
        }
        Err(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "the body is not JSON: send one scenario step, e.g. {\"do\": \"start\"}",
            )
        }
    };
    if !step.is_object() {
        return problem(StatusCode::BAD_REQUEST, "a step is a JSON object");
    }
    let line = step.to_string();
    tokio::task::spawn_blocking(move || {
        let (result, delivery, time_ms) = {
            let mut shell = console.shell();
            let before = shell.world().deliveries.last_id();
            // The change is this user's: revisions, actions and the events it causes say so.
            shell.world_mut().actor = Some(who.name.clone());
            let result = shell.execute(&line);
            shell.world_mut().actor = None;
            let after = shell.world().deliveries.last_id();
            let result = result.map_err(|e| with_locking_policies(shell.world(), &step, e));
            (
                result,
                (after > before).then_some(after),
                shell.world().clock.now_ms(),
            )
        };
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.lines().next().unwrap_or("refused").to_string(),
        };
        // What was typed is kept as typed, its hidden characters written out.
        let visible = admin_server::names::visible;
        let row = crate::storage::ActionRow {
            id: 0,
            wall_ms: 0,
            time_ms,
            user: who.name.to_string(),
            what: visible(&action_words(&step)),
            target: visible(&target_words(&step)),
            outcome: visible(&outcome),
        };
        if let Err(e) = console.record_action(row) {
            log::warn!("an action was not kept: {e}");
        }
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

/// What a step does, in a few words: its kind and its main argument.
fn action_words(step: &Value) -> String {
    let kind = step["do"].as_str().unwrap_or("step");
    let named = ["name", "group", "service", "state"]
        .iter()
        .find_map(|k| step[*k].as_str().map(|v| format!(" {v:?}")))
        .unwrap_or_default();
    let enabled = step["enabled"]
        .as_bool()
        .map(|on| if on { " on" } else { " off" })
        .unwrap_or_default();
    format!("{kind}{named}{enabled}")
}

/// What a step was done to: its devices (`on`), group, policy, profile.
fn target_words(step: &Value) -> String {
    let mut parts = Vec::new();
    match &step["on"] {
        Value::Null => {}
        Value::String(all) => parts.push(all.clone()),
        on => {
            if let Some(g) = on["group"].as_str() {
                parts.push(format!("group {g}"));
            }
            if let Some(d) = on["device"].as_u64() {
                parts.push(format!("device {d}"));
            }
            if let Some(list) = on["devices"].as_array() {
                let ids: Vec<String> = list.iter().map(|d| d.to_string()).collect();
                parts.push(format!("devices {}", ids.join(", ")));
            }
        }
    }
    if let Some(g) = step["group"].as_str() {
        parts.push(format!("group {g}"));
    }
    if step["do"]
        .as_str()
        .is_some_and(|d| d.contains("policy") || d.contains("profile"))
    {
        if let Some(n) = step["name"].as_str() {
            parts.push(format!("policy {n:?}"));
        }
    }
    if let Some(p) = step["profile"]["name"]
        .as_str()
        .or(step["profile"].as_str())
    {
        parts.push(format!("profile {p:?}"));
    }
    if parts.is_empty() {
        "the server".into()
    } else {
        parts.join(", ")
    }
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
