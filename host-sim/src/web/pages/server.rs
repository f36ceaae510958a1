//! The server's own settings (its KSN proxy, the licence), the simulated KSN services
//! with what each received over host time, and the deliveries under way.

use std::sync::Arc;

use axum::{extract::State, response::Response};
use maud::{html, Markup};
use serde_json::json;

use super::{confirmed_form, licence_words, page, step_form, Who};
use crate::{
    views as v,
    web::{Console, Sample, SERVICES},
    world::World,
};

/// How many devices follow the server's KSN proxy setting (no group of theirs has its own).
fn following_the_server(world: &World) -> usize {
    let tree = world.server.tree();
    world
        .server
        .devices()
        .iter()
        .filter(|d| tree.private_ksn(d.group, true) != tree.private_ksn(d.group, false))
        .count()
}

pub async fn server(State(console): State<Arc<Console>>, who: Who) -> Response {
    page(console, who.0, move |console, world| {
        let view = v::server_view(world);
        let history = console.history();
        let following = following_the_server(world);
        let body = html! {
            div.panel {
                h2 { "KSN proxy settings" }
                div.row {
                    "Private KSN: " b #server-private-ksn { @if view.private_ksn { "on" } @else { "off" } } " "
                    @let switch_to = !view.private_ksn;
                    (confirmed_form(json!({"do": "set_private_ksn", "enabled": switch_to}),
                        if switch_to { "Switch Private KSN on" } else { "Switch Private KSN off" },
                        &format!("Switch Private KSN {} for the whole server? This reaches {following} of {} devices (the others are in groups with their own setting).{}",
                            if switch_to { "on" } else { "off" }, view.devices,
                            if switch_to { "" } else { " A task that runs with Private KSN stops with license_violation." })))
                }
                div.row {
                    "Licence: " b #server-licence { (licence_words(&view.license)) } " "
                    @for state in ["valid", "expired", "no_ksn"] {
                        @if state != view.license {
                            (confirmed_form(json!({"do": "set_license", "state": state}), &format!("Make it {}", licence_words(state)),
                                &format!("Make the licence {} on all {} devices?", licence_words(state), view.devices)))
                            " "
                        }
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
                                form.inline data-step=(json!({"do": "set_network", "service": s.service, "up": true}).to_string()) {
                                    input.narrow type="number" data-field="latency_ms" min="0" value=(s.latency_ms);
                                    " ms " button type="submit" { "Set latency" }
                                }
                            }
                        }
                    }
                }
                h3 { "Received over host time" }
                (chart(&history))
            }
            div.panel #plugins {
                h2 { "Plugin versions" }
                table {
                    tr { th { "plugin" } th { "version" } th { "contract" } th { "devices" } th { "statement accepted" } th { "updates waiting" } }
                    @for p in &view.plugins {
                        tr data-plugin=(format!("{} {}", p.name, p.version)) {
                            td { (p.name) } td { b { (p.version) } } td { (p.contract) }
                            td { a href=(format!("/devices?plugin={} {}", p.name, p.version)) { (p.devices) } }
                            td { (p.accepted) } td { (p.installing) }
                        }
                    }
                }
                form.inline #install data-step=(json!({"do": "install_plugin"}).to_string())
                    data-confirm="Install this plugin library on every device of the group? Those switched on get it at once, the others at their next synchronisation; a device where it cannot be installed keeps its version." {
                    "Update: install " input data-field="plugin" placeholder="library name or path" required;
                    " on the devices of "
                    select data-field="on" data-json="" {
                        @for g in v::group_rows(world, &[]) {
                            option value=(json!({"group": g.path}).to_string()) { (g.path) " (" (g.devices) " devices)" }
                        }
                    }
                    " " button type="submit" { "Install" }
                }
                p.why { "An update installs a version of the plugin a device runs; the updated devices are sent their policy again for it. A new statement version needs accepting on them (the old acceptance ends at the update)." }
            }
            div.panel {
                h2 { "Deliveries" }
                p { "A change is saved at once and delivered to the devices it reaches in the background, in order." }
                table #deliveries {
                    tr { th { "#" } th { "change" } th { "delivered" } th { "refused" } th { "state" } }
                    @for d in v::delivery_rows(world) {
                        tr {
                            td { (d.id) } td.wrap { (d.what) } td { (d.delivered) " of " (d.total) }
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
            @for (i, service) in SERVICES.iter().enumerate() {
                @let points: Vec<String> = history.iter().map(|s| format!("{:.1},{:.1}", x(s.time_ms), y(s.received[i]))).collect();
                polyline fill="none" stroke=(colours[i]) stroke-width="2" points=(points.join(" ")) {}
                text x=(w - pad - 80.0) y=(pad + 14.0 * i as f64) font-size="11" fill=(colours[i]) { (service.to_string()) }
            }
        }
    }
}
