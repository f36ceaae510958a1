//! The console's pages, rendered on the server (maud) from the plugin's `describe` and the
//! world's views. Their actions are forms whose step the page's one script posts to
//! `/api/steps` with the CSRF token; the page then shows the answer, or reloads.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use plugin_api::documents::{SettingDescription, SettingRole, Statement, ValueType};
use serde_json::{json, Value};

use super::{api, Console, Sample};
use crate::{
    views::{self as v, DeviceQuery, EventQuery},
    world::World,
};
use admin_server::Status;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
header { background: #1f3a4d; color: #fff; padding: 10px 20px; display: flex; gap: 24px; align-items: center; }
header a { color: #cfe3f1; text-decoration: none; } header a:hover { color: #fff; }
header strong { font-size: 16px; }
main { padding: 16px 20px; max-width: 1200px; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e1e6ea; vertical-align: top; }
th { background: #e9eef2; font-weight: 600; }
.mark { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 5px; vertical-align: -1px; }
.ok { background: #2e9d4f; } .warning { background: #e0a100; } .critical { background: #d03434; }
.counts span { margin-right: 18px; }
.panel { background: #fff; border: 1px solid #d5dde3; border-radius: 4px; padding: 12px 16px; margin-bottom: 14px; }
.statement { max-height: 180px; overflow: auto; white-space: pre-wrap; background: #fafbfc; border: 1px solid #e1e6ea; padding: 8px; }
.unavailable { color: #7b8794; }
.lock { color: #8a5a00; font-size: 12px; margin-left: 6px; }
.why { color: #55606b; font-size: 12px; }
.row { margin: 8px 0; }
#answer { white-space: pre-wrap; padding: 8px 12px; margin-bottom: 12px; border-radius: 4px; display: none; }
#answer.error { display: block; background: #fde8e8; border: 1px solid #d03434; }
#answer.done { display: block; background: #e6f4ea; border: 1px solid #2e9d4f; }
.tree a { text-decoration: none; } .tree ul { margin: 0; padding-left: 16px; list-style: none; }
.layout { display: grid; grid-template-columns: 260px 1fr; gap: 16px; }
button { cursor: pointer; }
"#;

/// Posts a form's step; a step may take its settings from the form's fields.
const SCRIPT: &str = r#"
const csrf = document.querySelector('meta[name=csrf]').content;
function show(kind, text) { const a = document.getElementById('answer'); a.className = kind; a.textContent = text; }
async function post(step) {
  const r = await fetch('/api/steps', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(step) });
  const body = await r.json().catch(() => ({ error: 'the server answered ' + r.status }));
  if (!r.ok) { show('error', body.error); return; }
  show('done', body.output);
  if (body.delivery) await delivered(body.delivery, body.output);
  setTimeout(() => location.reload(), 400);
}
async function delivered(id, output) {
  for (;;) {
    const list = await (await fetch('/api/deliveries')).json().catch(() => []);
    const d = list.find((x) => x.id === id);
    if (!d || d.done) return;
    show('done', output + '\ndelivering: ' + d.delivered + ' of ' + d.total + ' devices');
    await new Promise((ok) => setTimeout(ok, 200));
  }
}
function put(settings, path, value) { const [s, k] = path.split('.'); (settings[s] = settings[s] || {})[k] = value; }
function read(input) {
  if (input.type === 'checkbox') return input.checked;
  if (input.type === 'number') return Number(input.value);
  return input.value;
}
document.addEventListener('submit', (e) => {
  const form = e.target; if (!form.dataset.step) return; e.preventDefault();
  const step = JSON.parse(form.dataset.step);
  if (form.dataset.policy !== undefined) {
    const settings = {};
    form.querySelectorAll('[data-set]').forEach((set) => {
      if (!set.checked) return;
      const path = set.dataset.set, input = form.querySelector('[data-value="' + path + '"]');
      const entry = { value: read(input), locked: form.querySelector('[data-lock="' + path + '"]').checked };
      if (input.dataset.versions && entry.value === true) entry.versions = JSON.parse(input.dataset.versions);
      put(settings, path, entry);
    });
    step.policy = { settings };
    const force = form.querySelector('[name=force_inheritance]'); if (force) step.force_inheritance = force.checked;
  }
  form.querySelectorAll('[data-field]').forEach((input) => { step[input.dataset.field] = read(input); });
  form.querySelectorAll('[data-local]').forEach((input) => {
    const settings = {}; let value = read(input);
    if (input.dataset.versions && value === true) value = { value, versions: JSON.parse(input.dataset.versions) };
    put(settings, input.dataset.local, value); step.settings = settings;
  });
  post(step);
});
document.addEventListener('change', (e) => { if (e.target.dataset.local && e.target.type === 'checkbox') e.target.form.requestSubmit(); });
document.querySelectorAll('details[data-unlocks]').forEach((d) => d.addEventListener('toggle', () => {
  if (d.open) document.querySelectorAll('[data-needs-reading="' + d.dataset.unlocks + '"]').forEach((i) => { i.disabled = false; i.title = ''; });
}));
"#;

fn layout(console: &Console, title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="csrf" content=(console.csrf);
                    title { (title) " · host-sim console" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        strong { "Administration Server (host-sim)" }
                        a href="/devices" { "Devices" }
                        a href="/policies" { "Policies" }
                        a href="/events" { "Events" }
                        a href="/server" { "Server" }
                        a href="/api/openapi.json" { "API" }
                    }
                    main {
                        h1 { (title) }
                        div #answer role="status" {}
                        (body)
                    }
                    script { (PreEscaped(SCRIPT)) }
                }
            }
        }
        .into_string(),
    )
}

/// An error as a page: what happened, and what to do.
pub fn error_page(title: &str, what_to_do: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (title) } style { (PreEscaped(STYLE)) } }
                body { main { h1 { (title) } p { (what_to_do) } } }
            }
        }
        .into_string(),
    )
}

fn failed(status: StatusCode, title: &str, what: String) -> Response {
    (status, error_page(title, &what)).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return api::problem(
            StatusCode::NOT_FOUND,
            format!(
                "no such address {}: /api/openapi.json lists the API",
                uri.path()
            ),
        );
    }
    failed(
        StatusCode::NOT_FOUND,
        "No such page",
        "The console has Devices, Policies, Events and Server pages; the API is under /api.".into(),
    )
}

pub async fn home() -> Redirect {
    Redirect::to("/devices")
}

fn mark(status: Status) -> Markup {
    html! { span class=(format!("mark {}", status.as_str())) {} (status.to_string()) }
}

async fn page(
    console: Arc<Console>,
    f: impl FnOnce(&Console, &World) -> Result<(String, Markup), String> + Send + 'static,
) -> Response {
    let rendered = tokio::task::spawn_blocking(move || {
        let shell = console.shell();
        f(&console, shell.world()).map(|(title, body)| layout(&console, &title, body))
    })
    .await;
    match rendered {
        Ok(Ok(html)) => html.into_response(),
        Ok(Err(e)) => failed(StatusCode::BAD_REQUEST, "That cannot be shown", e),
        Err(_) => failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page failed",
            "Reload it; if it fails again, the server's log says why.".into(),
        ),
    }
}

fn step_form(step: Value, label: &str) -> Markup {
    html! {
        form data-step=(step.to_string()) style="display:inline" { button type="submit" { (label) } }
    }
}

pub async fn devices(
    State(console): State<Arc<Console>>,
    Query(query): Query<DeviceQuery>,
) -> Response {
    page(console, move |console, world| {
        let statuses = console.statuses();
        let listing = v::device_page(world, &statuses, &query)?;
        let groups = v::group_rows(world, &statuses);
        let [ok, warning, critical] = listing.counts;
        let pages = listing.total.div_ceil(listing.per_page).max(1);
        let link = |page: usize| {
            format!(
                "/devices?group={}&status={}&page={page}",
                query.group.clone().unwrap_or_default(),
                query.status.clone().unwrap_or_default()
            )
        };
        let body = html! {
            div.layout {
                div.panel.tree {
                    strong { "Administration groups" }
                    ul {
                        @for g in &groups {
                            li style=(format!("padding-left:{}px", 12 * g.path.matches('/').count().saturating_sub(usize::from(g.path == "/")))) {
                                a href=(format!("/devices?group={}", g.path)) { (g.path) }
                                " " span.why { (g.devices) " · " (g.counts[2]) " critical" }
                                @if let Some(p) = &g.active_policy { br; span.why { "policy " (p) } }
                            }
                        }
                    }
                }
                div {
                    div.panel.counts {
                        span { (mark(Status::Ok)) ": " b #count-ok { (ok) } }
                        span { (mark(Status::Warning)) ": " b #count-warning { (warning) } }
                        span { (mark(Status::Critical)) ": " b #count-critical { (critical) } }
                        form method="get" action="/devices" style="display:inline" {
                            input type="hidden" name="group" value=(query.group.clone().unwrap_or_default());
                            select name="status" {
                                option value="" { "every status" }
                                @for s in Status::ALL {
                                    option value=(s.as_str()) selected[query.status.as_deref() == Some(s.as_str())] { (s.to_string()) }
                                }
                            }
                            button type="submit" { "Filter" }
                        }
                    }
                    table #devices {
                        tr { th { "device" } th { "group" } th { "status" } th { "task" } th { "network" } th { "Private KSN" } th { "licence" } }
                        @for d in &listing.devices {
                            tr data-device=(d.id) {
                                td { a href=(format!("/devices/{}", d.id)) { "device " (d.id) } }
                                td { (d.group) }
                                td.status title=(d.reasons.join("; ")) { (mark(d.status)) }
                                td { (d.state) @if let Some(e) = &d.error { " (" (e) ")" } }
                                td { (d.network) }
                                td { @if d.private_ksn { "on" } @else { "off" } }
                                td { (d.license) }
                            }
                        }
                    }
                    p {
                        "page " (listing.page + 1) " of " (pages) " (" (listing.total) " devices) "
                        @if listing.page > 0 { a href=(link(listing.page - 1)) { "previous" } " " }
                        @if listing.page + 1 < pages { a href=(link(listing.page + 1)) { "next" } }
                    }
                }
            }
        };
        Ok(("Devices".into(), body))
    })
    .await
}

/// A padlock, drawn (no font on a server need have the emoji).
const PADLOCK: PreEscaped<&str> = PreEscaped(
    r##"<svg width="11" height="13" viewBox="0 0 11 13" aria-label="locked" role="img" style="vertical-align:-2px"><rect x="0.5" y="5.5" width="10" height="7" rx="1" fill="#8a5a00"/><path d="M2.5 5.5V3.8a3 3 0 0 1 6 0v1.7" fill="none" stroke="#8a5a00" stroke-width="1.6"/></svg>"##,
);

/// The padlock of a locked setting: which policy, revision and group lock it.
fn padlock(row: &v::SettingRow) -> Markup {
    html! {
        @if row.locked {
            span.lock data-lock-of=(row.path) {
                (PADLOCK) " locked by policy " (row.policy.clone().unwrap_or_else(|| "?".into()))
                @if let Some(r) = row.revision { ", revision " (r) }
                @if let Some(g) = &row.policy_group { " (group " (g) ")" }
            }
        }
    }
}

/// One setting's local control: a box, a number or a choice, disabled where it is locked
/// or does not apply in this mode.
fn local_control(
    id: usize,
    row: &v::SettingRow,
    description: Option<&SettingDescription>,
    versions: Option<Value>,
) -> Markup {
    // A lock leaves one local change: re-stating the policy's value where the box reads
    // otherwise (the plugin's rule; it refuses any other).
    let restates = row.policy_value.as_ref().is_some_and(|v| *v != row.value);
    let disabled = (row.locked && !restates) || !row.applies;
    let step = json!({"do": "set_local", "on": {"device": id}});
    html! {
        form data-step=(step.to_string()) style="display:inline" {
            @match description.map(|d| &d.value_type) {
                Some(ValueType::Integer { minimum, maximum }) => {
                    input type="number" data-local=(row.path) min=(minimum) max=(maximum) value=(row.value) disabled[disabled];
                    button type="submit" disabled[disabled] { "Save" }
                }
                Some(ValueType::Choice { options }) => {
                    select data-local=(row.path) disabled[disabled] {
                        @for o in options { option selected[row.value == o.as_str()] { (o) } }
                    }
                    button type="submit" disabled[disabled] { "Save" }
                }
                _ => {
                    input type="checkbox" data-local=(row.path) id=(format!("local-{}", row.path))
                        checked[row.value == Value::Bool(true)] disabled[disabled]
                        data-versions=[versions.map(|v| v.to_string())];
                }
            }
        }
    }
}

pub async fn device(State(console): State<Arc<Console>>, Path(id): Path<usize>) -> Response {
    let devices = console.statuses().len();
    if id >= devices {
        return failed(
            StatusCode::NOT_FOUND,
            "No such device",
            format!(
                "This server manages devices 0 to {}.",
                devices.saturating_sub(1)
            ),
        );
    }
    page(console, move |console, world| {
        let detail = v::device_detail(world, &console.statuses(), id)?;
        let d = &detail.device;
        let describe = world.description.as_ref();
        let setting = |path: &str| describe.and_then(|x| x.setting(path));
        let statement = v::statement_now(world, d.private_ksn);
        let kmp = describe.and_then(|x| x.statement(Statement::Kmp));
        let role = |path: &str| setting(path).map(|s| s.role);
        let boxes: Vec<&v::SettingRow> = detail.settings.iter().filter(|r| role(&r.path) == Some(SettingRole::Statement)).collect();
        let categories: Vec<&v::SettingRow> = detail.settings.iter().filter(|r| role(&r.path) == Some(SettingRole::GlobalOnly)).collect();
        let others: Vec<&v::SettingRow> = detail.settings.iter().filter(|r| !matches!(role(&r.path), Some(SettingRole::Statement | SettingRole::GlobalOnly))).collect();
        let history = crate::audit::consent_records(&world.devices[id].task)?;
        let body = html! {
            div.panel {
                "Device " (id) " in group " b { (d.group) } " · " span #device-status { (mark(d.status)) }
                @if !d.reasons.is_empty() { " — " span.why #status-reasons { (d.reasons.join("; ")) } }
                br;
                "KSN Usage task: " b #task-state { (d.state) } @if let Some(e) = &d.error { " (" span #task-error { (e) } ")" }
                " · network " (d.network) " · Private KSN " b #private-ksn { @if d.private_ksn { "on" } @else { "off" } } " · licence " (d.license) " "
                (step_form(json!({"do": "start", "on": {"device": id}}), "Start"))
                " "
                (step_form(json!({"do": "stop", "on": {"device": id}}), "Stop"))
            }
            div.panel #data-handling {
                h2 { "Data handling" }
                @if let Some(s) = &statement {
                    p { b #statement-title { (s["title"].as_str().unwrap_or("")) } " · version " span #statement-version { (s["version"]) } }
                    div.statement #statement-text { (s["text"].as_str().unwrap_or("")) }
                }
                @for row in &boxes {
                    @let accepts = setting(&row.path).and_then(|s| s.statement_in_mode(d.private_ksn));
                    @let version = accepts.and_then(|st| describe?.statement(st)).map(|t| t.version);
                    @let versions = accepts.zip(version).map(|(st, v)| json!({ st.as_str(): v }));
                    div.row {
                        (local_control(id, row, setting(&row.path), versions))
                        label for=(format!("local-{}", row.path)) { " " (row.meaning) }
                        (padlock(row))
                        details { summary.why { "explain" } pre { (row.explain) } }
                    }
                }
                h3 { "What the task sends to KSN" }
                @for row in &categories {
                    div class=[(!row.applies).then_some("unavailable")] data-category=(row.path) {
                        (local_control(id, row, setting(&row.path), None))
                        label for=(format!("local-{}", row.path)) { " " (row.meaning) }
                        (padlock(row))
                        @if !row.applies { br; span.why.reason { (row.why) } }
                        details { summary.why { "explain" } pre { (row.explain) } }
                    }
                }
                @if let Some(k) = kmp {
                    details { summary { (k.title) " (version " (k.version) ")" } div.statement { (k.text) } }
                }
            }
            div.panel {
                h2 { "Other settings" }
                table {
                    tr { th { "setting" } th { "value" } th { "source" } th { "explain" } }
                    @for row in &others {
                        tr {
                            td { (row.path) br; span.why { (row.meaning) } }
                            td { (local_control(id, row, setting(&row.path), None)) (padlock(row)) }
                            td { (row.source) }
                            td { details { summary.why { "explain" } pre { (row.explain) } } }
                        }
                    }
                }
            }
            div.panel {
                h2 { "Consent history" }
                p { a href=(format!("/api/devices/{id}/audit?format=csv")) { "CSV" } " · " a href=(format!("/api/devices/{id}/audit?format=json")) { "JSON" } }
                table #consent-history {
                    tr { th { "#" } th { "time (ms)" } th { "statement" } th { "version" } th { "accepted" } th { "by" } th { "category" } }
                    @for r in &history {
                        tr {
                            td { (r.seq) } td { (r.time_ms) } td { (r.statement.as_str()) } td { (r.version) }
                            td { (r.accepted) } td { (crate::serde_name(&r.source)) }
                            td { (r.category.map(|c| c.as_str()).unwrap_or("")) }
                        }
                    }
                }
            }
            div.panel {
                h2 { "Task log" }
                pre #task-log { (detail.log.join("\n")) }
            }
        };
        Ok((format!("Device {id}: KSN Usage task"), body))
    })
    .await
}

#[derive(serde::Deserialize)]
pub struct GroupQuery {
    group: Option<String>,
}

pub async fn policies(
    State(console): State<Arc<Console>>,
    Query(query): Query<GroupQuery>,
) -> Response {
    page(console, move |_, world| {
        let group_path = query.group.clone().filter(|g| !g.is_empty()).unwrap_or_else(|| "/".into());
        let group = world.server.tree().find(&group_path)?;
        let policies = v::policy_rows(world);
        let here: Vec<&v::PolicyRow> = policies.iter().filter(|p| world.server.tree().find(&p.group).ok() == Some(group)).collect();
        let describe = world.description.as_ref().ok_or("the plugin does not describe itself: no settings form")?;
        let editing = here.iter().find(|p| p.active).or(here.first());
        let current = editing.and_then(|p| p.revisions.last());
        let set = |path: &str| -> Option<Value> {
            let (s, k) = path.split_once('.')?;
            current.map(|r| r.policy["settings"][s][k].clone()).filter(|v| !v.is_null())
        };
        let name = editing.map_or_else(|| format!("Policy of {group_path}"), |p| p.name.clone());
        let step = match editing {
            Some(p) => json!({"do": "edit_policy", "name": p.name}),
            None => json!({"do": "create_policy", "name": name, "group": group_path}),
        };
        let private = world.server.private_ksn();
        let groups = v::group_rows(world, &[]);
        let body = html! {
            div.panel {
                "Group: "
                @for g in &groups { a href=(format!("/policies?group={}", g.path)) { (g.path) } " · " }
            }
            @if group != admin_server::tree::Tree::ROOT {
                @let inherit = world.server.tree().group(group).inherit;
                div.panel.row {
                    "Inherit from parent: " b #inherit { @if inherit { "yes" } @else { "no" } } " "
                    (step_form(json!({"do": "set_group", "group": group_path, "inherit": !inherit}), if inherit { "Clear" } else { "Set" }))
                    span.why { " (a parent policy that forces inheritance covers this group either way)" }
                }
            }
            div.panel {
                h2 { "Policies of " (group_path) }
                @if here.is_empty() { p { "None yet: the form below creates one." } }
                @for p in &here {
                    div.row {
                        b { (p.name) } " — " @if p.active { "active" } @else { "inactive" } " "
                        @if p.active { (step_form(json!({"do": "deactivate_policy", "name": p.name}), "Deactivate")) }
                        @else { (step_form(json!({"do": "activate_policy", "name": p.name}), "Activate")) }
                    }
                    table.revisions {
                        tr { th { "revision" } th { "by" } th { "time (ms)" } th { "what" } th { "profiles" } th { "changes" } th {} }
                        @for r in &p.revisions {
                            tr {
                                td { (r.number) } td { (r.by) } td { (r.time_ms) } td { (r.what) } td { (r.profiles.join(", ")) }
                                td { @if r.number > 1 {
                                    details.diff { summary.why { "diff with " (r.number - 1) }
                                        pre { (revision_diff(world, &p.name, r.number).join("\n")) } }
                                } }
                                td { @if Some(r.number) != p.revisions.last().map(|l| l.number) { (step_form(json!({"do": "roll_back_policy", "name": p.name, "revision": r.number}), "Roll back to this")) } }
                            }
                        }
                    }
                }
            }
            div.panel {
                h2 { @if editing.is_some() { "Edit " (name) } @else { "New policy: " (name) } }
                form data-step=(step.to_string()) data-policy="" #policy-form {
                    p { label { input type="checkbox" name="force_inheritance" checked[current.is_some_and(|r| r.force_inheritance)]; " Force inheritance of settings in child policies" } }
                    table {
                        tr { th { "set" } th { "setting" } th { "value" } th { "lock" } }
                        @for s in &describe.settings {
                            @let given = set(&s.path);
                            @let value = given.as_ref().map(|g| g.get("value").cloned().unwrap_or(g.clone())).unwrap_or(s.default.clone());
                            @let locked = given.as_ref().and_then(|g| g.get("locked")).and_then(Value::as_bool).unwrap_or(false);
                            @let statement = s.statement_in_mode(private);
                            @let text = statement.and_then(|st| describe.statement(st));
                            tr {
                                td { input type="checkbox" data-set=(s.path) checked[given.is_some()]; }
                                td {
                                    (s.path) br; span.why { (s.meaning) }
                                    @if let Some(t) = text {
                                        details data-unlocks=(s.path) { summary { "Read " (t.title) " (version " (t.version) ") before accepting" } div.statement { (t.text) } }
                                    }
                                }
                                td {
                                    @match &s.value_type {
                                        ValueType::Integer { minimum, maximum } => { input type="number" data-value=(s.path) min=(minimum) max=(maximum) value=(value); }
                                        ValueType::Choice { options } => {
                                            select data-value=(s.path) { @for o in options { option selected[value == o.as_str()] { (o) } } }
                                        }
                                        ValueType::Boolean => {
                                            @if let (Some(st), Some(t)) = (statement, text) {
                                                input type="checkbox" data-value=(s.path) checked[value == Value::Bool(true)]
                                                    data-versions=(json!({ st.as_str(): t.version }).to_string())
                                                    data-needs-reading=(s.path) disabled title="read the statement first";
                                            } @else {
                                                input type="checkbox" data-value=(s.path) checked[value == Value::Bool(true)];
                                            }
                                        }
                                    }
                                }
                                td { label { input type="checkbox" data-lock=(s.path) checked[locked]; " " (PADLOCK) } }
                            }
                        }
                    }
                    p { button type="submit" #save-policy { "Save policy" } }
                }
            }
        };
        Ok((format!("Policies of {group_path}"), body))
    })
    .await
}

/// What revision `number` of a policy changed from the one before, a line a change.
fn revision_diff(world: &World, name: &str, number: u32) -> Vec<String> {
    let Ok(policy) = world.server.policy(name) else {
        return Vec::new();
    };
    match (policy.revision(number - 1), policy.revision(number)) {
        (Ok(a), Ok(b)) => {
            let lines = admin_server::policy::diff(&a.content, &b.content);
            if lines.is_empty() {
                vec!["the same settings".into()]
            } else {
                lines
            }
        }
        _ => Vec::new(),
    }
}

pub async fn events(
    State(console): State<Arc<Console>>,
    Query(query): Query<EventQuery>,
) -> Response {
    page(console, move |_, world| {
        let rows = v::event_rows(world, &query)?;
        let body = html! {
            form.panel method="get" action="/events" {
                "importance " select name="importance" {
                    option value="" { "any" }
                    @for i in ["critical", "functional_failure", "warning", "info"] {
                        option value=(i) selected[query.importance.as_deref() == Some(i)] { (i) }
                    }
                }
                " type " input name="type" value=(query.kind.clone().unwrap_or_default()) size="16";
                " group " input name="group" value=(query.group.clone().unwrap_or_default()) size="14";
                " device " input name="device" type="number" min="0" value=[query.device];
                " since (ms) " input name="since" type="number" min="0" value=[query.since];
                " until (ms) " input name="until" type="number" min="0" value=[query.until];
                " " button type="submit" { "Filter" }
            }
            table #events {
                tr { th { "#" } th { "time (ms)" } th { "importance" } th { "type" } th { "device" } th { "group" } }
                @for e in &rows {
                    tr { td { (e.id) } td { (e.time_ms) } td { (e.importance) } td { (e.kind) } td { a href=(format!("/devices/{}", e.device)) { (e.device) } } td { (e.group) } }
                }
            }
        };
        Ok(("Events".into(), body))
    })
    .await
}

/// What each service received over host time, as an SVG line chart.
fn chart(history: &[Sample]) -> Markup {
    let (w, h, pad) = (640.0, 220.0, 36.0);
    let t_max = history.iter().map(|s| s.time_ms).max().unwrap_or(0).max(1) as f64;
    let y_max = history
        .iter()
        .flat_map(|s| s.received)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |t: u64| pad + (w - 2.0 * pad) * t as f64 / t_max;
    let y = |v: u64| h - pad - (h - 2.0 * pad) * v as f64 / y_max;
    let colours = ["#1f77b4", "#2ca02c", "#d62728"];
    html! {
        svg #received-chart width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" aria-label="items received by each KSN service over host time" {
            rect x="0" y="0" width=(w) height=(h) fill="#fff" {}
            line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#889" {}
            line x1=(pad) y1=(pad) x2=(pad) y2=(h - pad) stroke="#889" {}
            text x=(pad) y=(h - 10.0) font-size="11" { "0 ms" }
            text x=(w - pad - 60.0) y=(h - 10.0) font-size="11" { (t_max as u64) " ms" }
            text x="4" y=(pad - 8.0) font-size="11" { (y_max as u64) " items" }
            @for (i, service) in super::SERVICES.iter().enumerate() {
                @let points: Vec<String> = history.iter().map(|s| format!("{:.1},{:.1}", x(s.time_ms), y(s.received[i]))).collect();
                polyline fill="none" stroke=(colours[i]) stroke-width="2" points=(points.join(" ")) {}
                text x=(w - pad - 80.0) y=(pad + 14.0 * i as f64) font-size="11" fill=(colours[i]) { (service.to_string()) }
            }
        }
    }
}

pub async fn server(State(console): State<Arc<Console>>) -> Response {
    page(console, move |console, world| {
        let view = v::server_view(world);
        let history = console.history();
        let body = html! {
            div.panel {
                h2 { "KSN proxy settings" }
                div.row {
                    "Private KSN: " b #server-private-ksn { @if view.private_ksn { "on" } @else { "off" } } " "
                    @if view.private_ksn { (step_form(json!({"do": "set_private_ksn", "enabled": false}), "Switch Private KSN off")) }
                    @else { (step_form(json!({"do": "set_private_ksn", "enabled": true}), "Switch Private KSN on")) }
                }
                div.row {
                    "Licence: " b { (view.license) } " "
                    @for state in ["valid", "expired", "no_ksn"] {
                        (step_form(json!({"do": "set_license", "state": state}), state)) " "
                    }
                }
                div.row { "Host time: " (view.time_ms) " ms · " (view.devices) " devices · "
                    (step_form(json!({"do": "advance_time", "ms": 15 * 60 * 1000}), "Advance 15 minutes")) }
            }
            div.panel {
                h2 { "KSN services" }
                table #services {
                    tr { th { "service" } th { "state" } th { "latency" } th { "received" } th {} }
                    @for s in &view.services {
                        tr {
                            td { (s.service) } td { @if s.up { "up" } @else { "down" } } td { (s.latency_ms) " ms" } td { (s.received) }
                            td {
                                (step_form(json!({"do": "set_network", "service": s.service, "up": !s.up}), if s.up { "Take down" } else { "Bring up" }))
                                " "
                                form data-step=(json!({"do": "set_network", "service": s.service, "up": true}).to_string()) style="display:inline" {
                                    input type="number" data-field="latency_ms" min="0" value=(s.latency_ms) style="width:70px";
                                    " ms " button type="submit" { "Set latency" }
                                }
                            }
                        }
                    }
                }
                h3 { "Received over host time" }
                (chart(&history))
            }
            div.panel {
                h2 { "Deliveries" }
                p { "A change is saved at once and delivered to the devices it reaches in the background, in order." }
                table #deliveries {
                    tr { th { "#" } th { "change" } th { "delivered" } th { "refused" } th { "state" } }
                    @for d in v::delivery_rows(world) {
                        tr {
                            td { (d.id) } td { (d.what) } td { (d.delivered) " of " (d.total) }
                            td { (d.failed) } td { @if d.done { "done" } @else { "delivering" } }
                        }
                    }
                }
            }
        };
        Ok(("Server".into(), body))
    })
    .await
}
