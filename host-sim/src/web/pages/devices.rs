//! The devices: the list by group with statuses, what an administrator does to several at
//! once, and one device's KSN Usage task in its Data handling window.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use maud::{html, Markup};
use plugin_api::documents::{SettingDescription, SettingRole, Statement, ValueType};
use serde_json::{json, Value};

use super::{failed, licence_words, mark, page, step_form, Who, PADLOCK};
use crate::{
    views::{self as v, DeviceQuery},
    web::Console,
};
use admin_server::Status;

pub async fn devices(
    State(console): State<Arc<Console>>,
    who: Who,
    Query(query): Query<DeviceQuery>,
) -> Response {
    page(console, who.0, move |console, world| {
        let statuses = console.statuses();
        let listing = v::device_page(world, &statuses, &query)?;
        let groups = v::group_rows(world, &statuses);
        let plugins = v::plugin_counts(world);
        let [ok, warning, critical] = listing.counts;
        let pages = listing.total.div_ceil(listing.per_page).max(1);
        let link = |page: usize| {
            format!(
                "/devices?group={}&status={}&plugin={}&page={page}",
                query.group.clone().unwrap_or_default(),
                query.status.clone().unwrap_or_default(),
                query.plugin.clone().unwrap_or_default()
            )
        };
        let body = html! {
            div.layout {
                div.panel.tree {
                    strong { "Administration groups" }
                    ul {
                        @for g in &groups {
                            li class=(format!("indent-{}", g.depth.min(6))) {
                                a href=(format!("/devices?group={}", g.path)) { (g.name) }
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
                        form.inline method="get" action="/devices" {
                            input type="hidden" name="group" value=(query.group.clone().unwrap_or_default());
                            select name="status" {
                                option value="" { "every status" }
                                @for s in Status::ALL {
                                    option value=(s.as_str()) selected[query.status.as_deref() == Some(s.as_str())] { (s.to_string()) }
                                }
                            }
                            select name="plugin" {
                                option value="" { "every plugin version" }
                                @for p in &plugins {
                                    @let label = format!("{} {}", p.name, p.version);
                                    option value=(label) selected[query.plugin.as_deref() == Some(label.as_str())] { (label) " (" (p.devices) ")" }
                                }
                            }
                            button type="submit" { "Filter" }
                        }
                    }
                    div.panel #bulk {
                        strong { "The selected devices: " }
                        form.inline data-step=(json!({"do": "move_devices"}).to_string()) data-selected="" {
                            "move to " select data-field="group" {
                                @for g in &groups { option value=(g.path) { (g.path) } }
                            }
                            " " button type="submit" { "Move" }
                        }
                        " · "
                        form.inline data-step=(json!({"do": "set_device"}).to_string()) data-selected="" {
                            "tags " input.narrow data-field="tags" data-list="" placeholder="a, b";
                            " " button type="submit" { "Set tags" }
                        }
                        " · "
                        @for (label, field, on) in [("Out of office", "out_of_office", true), ("In the office", "out_of_office", false),
                                                   ("Connect", "connected", true), ("Disconnect", "connected", false)] {
                            form.inline data-step=(json!({"do": "set_device", field: on}).to_string()) data-selected="" {
                                button type="submit" { (label) }
                            }
                            " "
                        }
                        " · "
                        form.inline data-step=(json!({"do": "install_plugin"}).to_string()) data-selected=""
                            data-confirm="Install this plugin library on the selected devices? Those switched on get it at once, the others at their next synchronisation." {
                            "update to " input.narrow data-field="plugin" placeholder="library" required;
                            " " button type="submit" { "Install" }
                        }
                        " · "
                        form.inline data-step=(json!({"do": "start"}).to_string()) data-selected="" { button type="submit" { "Start" } }
                        " "
                        form.inline data-step=(json!({"do": "stop"}).to_string()) data-selected="" { button type="submit" { "Stop" } }
                    }
                    table #devices {
                        tr {
                            th { input type="checkbox" #select-all title="select every device of this page"; }
                            th { "device" } th { "group" } th { "status" } th { "task" } th { "network" }
                            th { "Private KSN" } th { "licence" } th { "plugin" } th { "tags" } th { "connection" }
                        }
                        @for d in &listing.devices {
                            tr data-device=(d.id) {
                                td { input type="checkbox" name="device" value=(d.id); }
                                td { a href=(format!("/devices/{}", d.id)) { "device " (d.id) } }
                                td { (d.group) }
                                td.status title=(d.reasons.join("; ")) { (mark(d.status)) }
                                td { (d.state) @if let Some(e) = &d.error { " (" (e) ")" } }
                                td { (d.network) }
                                td { @if d.private_ksn { "on" } @else { "off" } }
                                td { (licence_words(&d.license)) }
                                td { (d.plugin_version) @if let Some(l) = &d.install { br; span.why { "update: " (l) } } }
                                td { (d.tags.join(", ")) @if d.out_of_office { br; span.why { "out of office" } } }
                                td { @if d.connected { "connected" } @else { "not connected" } }
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

/// The padlock of a setting a policy locks, naming the policy, revision and group; where
/// the lock is not in force (the box reads other than the policy's value: an acceptance of
/// the other mode's statement, or of another version), it says so instead.
fn padlock(row: &v::SettingRow) -> Markup {
    let in_force = row.policy_value.as_ref().is_none_or(|p| *p == row.value);
    html! {
        @if row.locked && in_force {
            span.lock data-lock-of=(row.path) {
                (PADLOCK) " locked by policy " (row.policy.clone().unwrap_or_else(|| "?".into()))
                @if let Some(r) = row.revision { ", revision " (r) }
                @if let Some(g) = &row.policy_group { " (group " (g) ")" }
            }
        } @else if row.locked {
            span.not-in-force data-lock-not-in-force=(row.path) {
                "the policy " (row.policy.clone().unwrap_or_else(|| "?".into()))
                " locks it to " (row.policy_value.clone().unwrap_or(Value::Null)) ", not in force here (see explain)"
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
        form.inline data-step=(step.to_string()) {
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
                    // Withdrawing an acceptance stops what the task sends: asked first.
                    @let withdraw = versions.is_some().then(|| format!(
                        "Withdraw this acceptance on device {id}? The task stops using KSN until it is accepted again."));
                    input type="checkbox" data-local=(row.path) id=(format!("local-{}", row.path))
                        checked[row.value == Value::Bool(true)] disabled[disabled]
                        data-versions=[versions.map(|v| v.to_string())] data-withdraw=[withdraw];
                }
            }
        }
    }
}

/// A setting's label: what `describe` says it means, its path beneath.
fn label(row: &v::SettingRow) -> Markup {
    html! { (row.meaning) br; span.why { (row.path) } }
}

pub async fn device(
    State(console): State<Arc<Console>>,
    who: Who,
    Path(id): Path<usize>,
) -> Response {
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
    page(console, who.0, move |console, world| {
        let detail = v::device_detail(world, &console.statuses(), id)?;
        let d = &detail.device;
        let describe = world.description_of(id);
        let setting = |path: &str| describe.and_then(|x| x.setting(path));
        let statement = v::statement_now(world, id, d.private_ksn);
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
                " · network " (d.network) " · Private KSN " b #private-ksn { @if d.private_ksn { "on" } @else { "off" } }
                " · licence " (licence_words(&d.license))
                " · plugin " b #device-plugin { (d.plugin) " " (d.plugin_version) } span.why { " (contract " (d.contract) ")" }
                @if let Some(library) = &d.install { " · " span.why #installing { "update to " (library) " at its next synchronisation" } }
                " "
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
            @if !detail.not_managed.is_empty() {
                div.panel #not-managed {
                    h2 { "Not managed on " (d.plugin) " " (d.plugin_version) }
                    p.why { "Its policy sets these; this device's plugin version does not know them, so the server does not send them (another version of the fleet does)." }
                    ul { @for path in &detail.not_managed { li { code { (path) } } } }
                }
            }
            div.panel {
                h2 { "Other settings" }
                table {
                    tr { th { "setting" } th { "value" } th { "source" } th { "explain" } }
                    @for row in &others {
                        tr {
                            td { (label(row)) }
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
