//! The administration groups: the tree with each subtree's devices and statuses, and
//! what an administrator does to a group (a subgroup, a new name, deletion, inheritance,
//! its own Private KSN).

use std::sync::Arc;

use axum::{extract::State, response::Response};
use maud::html;
use serde_json::json;

use super::{confirmed_form, mark, page, Who};
use crate::{views as v, web::Console};
use admin_server::{tree::Tree, Status};

pub async fn groups(State(console): State<Arc<Console>>, who: Who) -> Response {
    page(console, who.0, move |console, world| {
        let rows = v::group_rows(world, &console.statuses());
        let server_private = world.server.private_ksn();
        let body = html! {
            p.why { "Counts are of each group and every group below it. A subgroup inherits its parent's policies unless its
                     \"inherit\" is cleared (a parent policy that forces inheritance reaches it either way)." }
            table #groups {
                tr {
                    th { "group" } th { "devices" } th { "statuses" } th { "inherit" } th { "Private KSN" }
                    th { "policies" } th { "change" }
                }
                @for g in &rows {
                    @let root = g.path == "/";
                    tr data-group=(g.path) {
                        td class=(format!("indent-{}", g.depth.min(6))) {
                            a href=(format!("/devices?group={}", g.path)) { b { (g.name) } }
                            @if !root { br; span.why { (g.path) } }
                        }
                        td { (g.devices) @if g.own_devices != g.devices { br; span.why { (g.own_devices) " in the group itself" } } }
                        td {
                            @for (s, n) in Status::ALL.into_iter().zip(g.counts) { @if n > 0 { (mark(s)) (n) " " } }
                        }
                        td {
                            @if root { span.why { "(the top)" } }
                            @else {
                                @if g.inherit { "yes " } @else { "no " }
                                (confirmed_form(json!({"do": "set_group", "group": g.path, "inherit": !g.inherit}),
                                    if g.inherit { "Clear" } else { "Set" },
                                    &format!("{} inheriting its parent's policies for {} of {} devices?",
                                        if g.inherit { "Stop" } else { "Start" }, g.path, g.devices)))
                            }
                        }
                        td {
                            @if g.uses_private_ksn { b { "on" } } @else { "off" }
                            " " span.why { @match g.private_ksn {
                                Some(_) => "(its own)",
                                None if root => "(the server's)",
                                None => "(its parent's or the server's)",
                            } }
                            @if !root {
                                br;
                                @for (label, value, words) in [("Own: on", json!(true), "on"), ("Own: off", json!(false), "off"), ("As the server", json!("server"), "as its parent's or the server's")] {
                                    @let current = match g.private_ksn { Some(true) => json!(true), Some(false) => json!(false), None => json!("server") };
                                    @if current != value {
                                        (confirmed_form(json!({"do": "set_group", "group": g.path, "private_ksn": value}), label,
                                            &format!("Set Private KSN of {} {words}? This reaches {} devices; a task running without a Private KSN licence stops with license_violation.", g.path, g.devices)))
                                        " "
                                    }
                                }
                            }
                        }
                        td {
                            @for p in &g.policies {
                                a href=(format!("/policies?group={}&policy={}", g.path, p)) { (p) }
                                @if g.active_policy.as_deref() == Some(p.as_str()) { " " span.why { "(active)" } }
                                br;
                            }
                            a.why href=(format!("/policies?group={}", g.path)) { "new policy…" }
                        }
                        td {
                            form.inline data-step=(json!({"do": "create_group"}).to_string()) data-prefix=(if root { String::new() } else { format!("{}/", g.path) }) {
                                input.narrow data-field="group" data-prefixed="" placeholder="new subgroup" maxlength="256" required;
                                button type="submit" { "Add" }
                            }
                            @if !root {
                                br;
                                form.inline data-step=(json!({"do": "rename_group", "group": g.path}).to_string()) {
                                    input.narrow data-field="name" value=(g.name) maxlength="256" required;
                                    button type="submit" { "Rename" }
                                }
                                " "
                                @let parent = world.server.tree().find(&g.path).ok().and_then(|id| world.server.tree().group(id).parent).unwrap_or(Tree::ROOT);
                                (confirmed_form(json!({"do": "delete_group", "group": g.path}), "Delete",
                                    &format!("Delete group {}? Its {} devices move up to {}; its {} policies are deleted and their locks released (nothing is restored).",
                                        g.path, g.own_devices, world.server.tree().path(parent), g.policies.len())))
                            }
                        }
                    }
                }
            }
            p.why { "The server's own KSN proxy setting is on the " a href="/server" { "Server" } " page (Private KSN "
                    @if server_private { "on" } @else { "off" } ")." }
        };
        Ok(("Administration groups".into(), body))
    })
    .await
}
