//! A group's named policies: creating, renaming, activating, deactivating and deleting
//! them; one policy's revisions, any two compared; its settings editor, which offers each
//! acceptance with every statement it accepts (and its version); and its profiles, in
//! order, with their own editor.

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    response::Response,
};
use maud::{html, Markup};
use plugin_api::documents::{
    PluginDescription, SettingDescription, Statement, StatementText, ValueType,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{confirmed_form, devices_in, page, step_form, Who, PADLOCK};
use crate::{views as v, web::Console, world::World};

#[derive(Deserialize, Default)]
pub struct PolicyQuery {
    group: Option<String>,
    policy: Option<String>,
    /// The profile the profile editor opens (none: a new one).
    profile: Option<String>,
    /// Two revisions to compare.
    a: Option<String>,
    b: Option<String>,
}

fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn revision_number(field: &str, value: &Option<String>) -> Result<Option<u32>, String> {
    given(value)
        .map(|n| {
            n.parse()
                .map_err(|_| format!("{field}: expected a revision number, got {n:?}"))
        })
        .transpose()
}

pub async fn policies(
    State(console): State<Arc<Console>>,
    who: Who,
    Query(query): Query<PolicyQuery>,
) -> Response {
    page(console, who.0, move |_, world| {
        let group_path = given(&query.group).unwrap_or("/").to_string();
        let tree = world.server.tree();
        let group = tree.find(&group_path).map_err(|e| e.to_string())?;
        let group_path = tree.path(group);
        let all = v::policy_rows(world);
        let here: Vec<&v::PolicyRow> = all.iter().filter(|p| p.group == group_path).collect();
        let chosen = match given(&query.policy) {
            Some(name) => Some(
                here.iter()
                    .copied()
                    .find(|p| p.name == name)
                    .ok_or_else(|| format!("policy: group {group_path} has no policy {name:?}"))?,
            ),
            None => here.iter().copied().find(|p| p.active).or(here.first().copied()),
        };
        let reach = devices_in(world, &group_path);
        let groups = v::group_rows(world, &[]);
        let body = html! {
            form.panel method="get" action="/policies" {
                "Group " select name="group" {
                    @for g in &groups { option value=(g.path) selected[g.path == group_path] { (g.path) } }
                }
                " " button type="submit" { "Show its policies" }
                span.why { " · a policy reaches the group's devices and, by inheritance, its subgroups' (" (reach) " devices here)" }
            }
            div.panel {
                h2 { "Policies of " (group_path) }
                @if here.is_empty() { p { "None yet." } }
                table #policies {
                    tr { th { "policy" } th { "state" } th { "revisions" } th { "change" } }
                    @for p in &here {
                        tr data-policy=(p.name) {
                            td { a href=(format!("/policies?group={}&policy={}", group_path, p.name)) { b { (p.name) } } }
                            td { @if p.active { "active" } @else { "inactive" } }
                            td { (p.revisions.len()) }
                            td {
                                @if p.active {
                                    (confirmed_form(json!({"do": "deactivate_policy", "name": p.name}), "Deactivate",
                                        &format!("Deactivate {:?}? Its locks are released on {reach} devices (nothing is restored).", p.name)))
                                } @else {
                                    (confirmed_form(json!({"do": "activate_policy", "name": p.name}), "Activate",
                                        &format!("Activate {:?}? It reaches {reach} devices; the group's active policy becomes inactive.", p.name)))
                                }
                                " "
                                form.inline data-step=(json!({"do": "rename_policy", "name": p.name}).to_string()) {
                                    input.narrow data-field="new_name" value=(p.name) maxlength="256" required;
                                    button type="submit" { "Rename" }
                                }
                                " "
                                (confirmed_form(json!({"do": "delete_policy", "name": p.name}), "Delete",
                                    &format!("Delete {:?} and its {} revisions? {}", p.name, p.revisions.len(),
                                        if p.active { format!("Its locks are released on {reach} devices (nothing is restored).") } else { String::new() })))
                            }
                        }
                    }
                }
                form.inline #new-policy data-step=(json!({"do": "create_policy", "group": group_path}).to_string()) {
                    "New policy " input data-field="name" placeholder="name" maxlength="256" required;
                    " " label { input type="checkbox" data-field="active" checked; " active" }
                    " " button type="submit" { "Create" }
                }
            }
            @if let Some(p) = chosen {
                (revisions(world, p, &query)?)
                (policy_editor(world, p, &group_path)?)
                (profiles(world, p, &query)?)
            }
        };
        Ok((format!("Policies of {group_path}"), body))
    })
    .await
}

/// A policy's revisions, with any two compared.
fn revisions(world: &World, p: &v::PolicyRow, query: &PolicyQuery) -> Result<Markup, String> {
    let last = p.revisions.last().map_or(1, |r| r.number);
    let a = revision_number("a", &query.a)?;
    let b = revision_number("b", &query.b)?;
    let compared = match (a, b) {
        (Some(a), Some(b)) => Some((a, b, v::revisions_diff(world, &p.name, a, b)?)),
        _ => None,
    };
    let (sel_a, sel_b) = match compared {
        Some((a, b, _)) => (a, b),
        None => (last.saturating_sub(1).max(1), last),
    };
    Ok(html! {
        div.panel #revisions {
            h2 { "Revisions of " (p.name) }
            table {
                tr { th { "revision" } th { "by" } th { "time (ms)" } th { "what" } th { "force inheritance" } th { "profiles" } th {} }
                @for r in p.revisions.iter().rev() {
                    tr {
                        td { (r.number) } td { (r.by) } td { (r.time_ms) } td.wrap { (r.what) }
                        td { @if r.force_inheritance { "yes" } @else { "no" } }
                        td { (r.profiles.join(", ")) }
                        td { @if r.number != last {
                            (confirmed_form(json!({"do": "roll_back_policy", "name": p.name, "revision": r.number}), "Roll back to this",
                                &format!("Save revision {}'s settings as a new revision of {:?}?", r.number, p.name)))
                        } }
                    }
                }
            }
            form.inline method="get" action="/policies" #compare {
                input type="hidden" name="group" value=(p.group);
                input type="hidden" name="policy" value=(p.name);
                "Compare revision "
                select name="a" { @for r in &p.revisions { option selected[r.number == sel_a] { (r.number) } } }
                " with "
                select name="b" { @for r in &p.revisions { option selected[r.number == sel_b] { (r.number) } } }
                " " button type="submit" { "Compare" }
            }
            @if let Some((a, b, lines)) = &compared {
                h3 { "From revision " (a) " to revision " (b) }
                pre #diff { @if lines.is_empty() { "the same settings" } @else { (lines.join("\n")) } }
            }
        }
    })
}

/// Which modes the devices a policy of `group` reaches are in, `[Global, Private]`.
fn modes(world: &World, group: &str) -> [bool; 2] {
    let server = &world.server;
    server
        .tree()
        .find(group)
        .map(|g| server.tree().modes_within(g, server.private_ksn()))
        .unwrap_or([true, true])
}

/// A statement an acceptance box offers: which, its version and text, in which modes,
/// and the plugin versions that ship it.
struct Offered<'a> {
    statement: Statement,
    text: &'a StatementText,
    modes: [bool; 2],
    versions: Vec<&'a str>,
}

/// The statements a box offers over the plugin versions of the fleet the policy reaches.
fn offered<'a>(path: &str, editions: &'a [(String, &'a PluginDescription)]) -> Vec<Offered<'a>> {
    let mut all: Vec<Offered> = Vec::new();
    for (label, d) in editions {
        let Some(s) = d.setting(path) else { continue };
        for private in [false, true] {
            let Some((statement, text)) = s
                .statement_in_mode(private)
                .and_then(|st| d.statement(st).map(|t| (st, t)))
            else {
                continue;
            };
            match all
                .iter_mut()
                .find(|o| o.statement == statement && o.text.version == text.version)
            {
                Some(o) => {
                    o.modes[usize::from(private)] = true;
                    if !o.versions.contains(&label.as_str()) {
                        o.versions.push(label);
                    }
                }
                None => {
                    let mut modes = [false; 2];
                    modes[usize::from(private)] = true;
                    all.push(Offered {
                        statement,
                        text,
                        modes,
                        versions: vec![label],
                    });
                }
            }
        }
    }
    all
}

/// The editor of a settings document over the plugin versions the policy reaches: for
/// each setting any of them knows, whether the document sets it, its value and its lock
/// (and the versions that do not manage it). An acceptance box offers every statement it
/// accepts in each version, with its version: reading one enables the box, and an
/// acceptance names the versions of the statements read.
fn settings_table(
    editions: &[(String, &PluginDescription)],
    settings: &Value,
    modes: [bool; 2],
) -> Markup {
    let given = |path: &str| -> Option<Value> {
        let (s, k) = path.split_once('.')?;
        Some(settings.get(s)?.get(k)?.clone())
    };
    let mut rows: Vec<&SettingDescription> = Vec::new();
    for (_, d) in editions {
        for s in &d.settings {
            if !rows.iter().any(|r| r.path == s.path) {
                rows.push(s);
            }
        }
    }
    html! {
        table.settings {
            tr { th { "set" } th { "setting" } th { "value" } th { "lock" } }
            @for s in rows {
                @let entry = given(&s.path);
                @let value = entry.as_ref().map(|g| g.get("value").cloned().unwrap_or(g.clone())).unwrap_or(s.default.clone());
                @let locked = entry.as_ref().and_then(|g| g.get("locked")).and_then(Value::as_bool).unwrap_or(false);
                @let versions = entry.as_ref().and_then(|g| g.get("versions")).and_then(Value::as_object).cloned().unwrap_or_default();
                @let statements = offered(&s.path, editions);
                @let unmanaged: Vec<&str> = editions.iter().filter(|(_, d)| d.setting(&s.path).is_none()).map(|(l, _)| l.as_str()).collect();
                tr {
                    td { input type="checkbox" data-set=(s.path) checked[entry.is_some()] title="set this setting"; }
                    td.wrap {
                        (s.meaning) br; span.why { (s.path) }
                        @if !unmanaged.is_empty() {
                            br; span.why.not-managed data-not-managed=(s.path) { "not managed on " (unmanaged.join(", ")) }
                        }
                        @if !versions.is_empty() {
                            br; span.why.accepted { "accepts "
                                @for (i, (st, version)) in versions.iter().enumerate() { @if i > 0 { ", " } (st) " version " (version) } }
                        }
                        @for o in &statements {
                            details data-statement=(o.statement.as_str()) data-version=(o.text.version) data-for=(s.path) {
                                summary {
                                    "Read " (o.text.title) " (version " (o.text.version) "): accepted where devices use "
                                    @if o.modes == [true, true] { "either mode" } @else if o.modes[1] { "Private KSN" } @else { "Global KSN" }
                                    @if editions.len() > 1 { " on " (o.versions.join(", ")) }
                                    @if !o.modes.iter().zip(modes).any(|(a, b)| *a && b) { span.why { " (no device this policy reaches does now)" } }
                                }
                                div.statement { (o.text.text) }
                            }
                        }
                    }
                    td {
                        @match &s.value_type {
                            ValueType::Integer { minimum, maximum } => { input type="number" data-value=(s.path) min=(minimum) max=(maximum) value=(value); }
                            ValueType::Choice { options } => {
                                select data-value=(s.path) { @for o in options { option selected[value == o.as_str()] { (o) } } }
                            }
                            ValueType::Boolean => {
                                @if statements.is_empty() {
                                    input type="checkbox" data-value=(s.path) checked[value == Value::Bool(true)];
                                } @else {
                                    // The versions an acceptance saved before accepts (kept where no statement is read now).
                                    @let before = if versions.is_empty() || value != Value::Bool(true) { String::new() } else { Value::Object(versions.clone()).to_string() };
                                    input type="checkbox" data-value=(s.path) data-statements=(before) checked[value == Value::Bool(true)]
                                        disabled title="read a statement it accepts first";
                                }
                            }
                        }
                    }
                    td { label { input type="checkbox" data-lock=(s.path) checked[locked]; " " (PADLOCK) } }
                }
            }
        }
    }
}

/// The plugin versions the devices of `group` and below run, each with its description.
fn editions<'a>(
    world: &'a World,
    group: &str,
) -> Result<Vec<(String, &'a PluginDescription)>, String> {
    let id = world.server.tree().find(group).map_err(|e| e.to_string())?;
    let editions = world.server.labelled_descriptions_within(id);
    if editions.is_empty() {
        return Err("the plugin does not describe itself: no settings form".into());
    }
    Ok(editions)
}

fn policy_editor(world: &World, p: &v::PolicyRow, group: &str) -> Result<Markup, String> {
    let editions = editions(world, group)?;
    let current = p.revisions.last().ok_or("a policy without revisions")?;
    let step = json!({"do": "edit_policy", "name": p.name});
    let reach = devices_in(world, group);
    Ok(html! {
        div.panel {
            h2 { "Settings of " (p.name) ", revision " (current.number) }
            form #policy-form data-step=(step.to_string()) data-policy=""
                data-confirm=(format!("Save a new revision of {:?}? {}", p.name,
                    if p.active { format!("It reaches {reach} devices.") } else { "It is inactive: it reaches no device.".into() })) {
                p { label { input type="checkbox" name="force_inheritance" checked[current.force_inheritance];
                    " Force inheritance of settings in child policies (subgroups get them whatever their \"inherit\")" } }
                @if editions.len() > 1 {
                    p.why #editions { "The devices this policy reaches run " (editions.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(" and "))
                        ": each statement is offered in each of their versions, and each device is sent the one its version ships." }
                }
                (settings_table(&editions, &current.policy["settings"], modes(world, group)))
                p { button type="submit" #save-policy { "Save policy" } }
            }
        }
    })
}

fn profiles(world: &World, p: &v::PolicyRow, query: &PolicyQuery) -> Result<Markup, String> {
    let editions = editions(world, &p.group)?;
    let current = p.revisions.last().ok_or("a policy without revisions")?;
    let open = match given(&query.profile) {
        Some(name) => Some(
            current
                .profile_rows
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(|| format!("profile: {:?} has no profile {name:?}", p.name))?,
        ),
        None => None,
    };
    let at = open.and_then(|o| current.profile_rows.iter().position(|r| r.name == o.name));
    let count = current.profile_rows.len();
    let link = |name: &str| {
        format!(
            "/policies?group={}&policy={}&profile={name}",
            p.group, p.name
        )
    };
    Ok(html! {
        div.panel #profiles {
            h2 { "Profiles of " (p.name) }
            p.why { "A profile is active on a device while its conditions hold; where several are, the first listed wins a setting." }
            table {
                tr { th { "order" } th { "profile" } th { "active when" } th { "sets" } th {} }
                @for (i, r) in current.profile_rows.iter().enumerate() {
                    tr data-profile-row=(r.name) {
                        td { (i + 1) }
                        td { a href=(link(&r.name)) { b { (r.name) } } }
                        td.wrap { (r.when) }
                        td.wrap { code { (r.settings.to_string()) } }
                        td {
                            @if i > 0 { (step_form(json!({"do": "set_profile", "name": p.name, "profile": profile_spec(r), "priority": i}), "Up")) " " }
                            @if i + 1 < count { (step_form(json!({"do": "set_profile", "name": p.name, "profile": profile_spec(r), "priority": i + 2}), "Down")) " " }
                            (confirmed_form(json!({"do": "remove_profile", "name": p.name, "profile": r.name}), "Remove",
                                &format!("Remove profile {:?} from {:?} (a new revision)?", r.name, p.name)))
                        }
                    }
                }
            }
            h3 { @if let Some(o) = open { "Profile " (o.name) } @else { "New profile" } }
            form #profile-form data-step=(json!({"do": "set_profile", "name": p.name}).to_string()) data-profile="" {
                p {
                    "Name " input name="profile_name" value=(open.map_or("", |o| o.name.as_str())) maxlength="256" required;
                    " · order " input.narrow name="priority" type="number" min="1" max=(count + 1)
                        value=(at.map_or(count + 1, |i| i + 1));
                }
                p {
                    "Active when out of office is "
                    select name="out_of_office" {
                        option value="" selected[open.is_none_or(|o| o.out_of_office.is_none())] { "either" }
                        option value="true" selected[open.is_some_and(|o| o.out_of_office == Some(true))] { "yes" }
                        option value="false" selected[open.is_some_and(|o| o.out_of_office == Some(false))] { "no" }
                    }
                    " and the device has every tag of "
                    input name="tags" value=(open.map(|o| o.tags.join(", ")).unwrap_or_default()) placeholder="a, b";
                }
                (settings_table(&editions, open.map_or(&Value::Null, |o| &o.settings), modes(world, &p.group)))
                p { button type="submit" #save-profile { "Save profile" } }
            }
        }
    })
}

/// A profile as a `set_profile` step states it.
fn profile_spec(r: &v::ProfileRow) -> Value {
    let mut when = json!({"tags": r.tags});
    if let Some(o) = r.out_of_office {
        when["out_of_office"] = json!(o);
    }
    json!({"name": r.name, "when": when, "settings": r.settings})
}
