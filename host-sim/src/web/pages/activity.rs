//! What happened and what holds: the server's events, the fleet's consent, and the
//! administrators' actions, each filtered as its API is and exported as CSV.

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    response::Response,
};
use maud::html;

use super::{failed, page, Who};
use crate::{
    views::{self as v, ConsentQuery, EventQuery},
    web::Console,
};

/// The query string of a filter form's fields, for the CSV link beside it.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (k, v)))
        .map(|(k, v)| format!("{k}={}", urlencoding(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencoding(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn events(
    State(console): State<Arc<Console>>,
    who: Who,
    Query(query): Query<EventQuery>,
) -> Response {
    page(console, who.0, move |_, world| {
        let rows = v::event_rows(world, &query)?;
        let groups = v::group_rows(world, &[]);
        let csv = query_string(&[
            ("importance", query.importance.as_deref()),
            ("type", query.kind.as_deref()),
            ("group", query.group.as_deref()),
            ("device", query.device.as_deref()),
            ("since", query.since.as_deref()),
            ("until", query.until.as_deref()),
            ("limit", query.limit.as_deref()),
            ("format", Some("csv")),
        ]);
        let body = html! {
            form.panel #event-filter method="get" action="/events" {
                "importance " select name="importance" {
                    option value="" { "any" }
                    @for i in ["critical", "functional_failure", "warning", "info"] {
                        option value=(i) selected[query.importance.as_deref() == Some(i)] { (i.replace('_', " ")) }
                    }
                }
                " type " input name="type" value=(query.kind.clone().unwrap_or_default()) size="16" placeholder="any";
                " group " select name="group" {
                    option value="" { "any" }
                    @for g in &groups { option value=(g.path) selected[query.group.as_deref() == Some(g.path.as_str())] { (g.path) } }
                }
                " device " input.narrow name="device" type="number" min="0" value=(query.device.clone().unwrap_or_default());
                " host time from " input.narrow name="since" type="number" min="0" value=(query.since.clone().unwrap_or_default());
                " to " input.narrow name="until" type="number" min="0" value=(query.until.clone().unwrap_or_default()) " ms";
                " " button type="submit" { "Filter" }
                " · " a href=(format!("/api/events?{csv}")) { "CSV" }
            }
            p.why { "The newest " (rows.len()) " events the filter selects (newest first; the CSV has the same)." }
            table #events {
                tr { th { "#" } th { "at" } th { "host time (ms)" } th { "importance" } th { "type" } th { "what happened" } th { "device" } th { "group" } th { "by" } }
                @for e in &rows {
                    tr class=(format!("importance-{}", e.importance)) {
                        td { (e.id) } td.nowrap { (e.at) } td { (e.time_ms) } td { (e.importance.replace('_', " ")) } td { (e.kind) }
                        td.wrap { (e.description) }
                        td { a href=(format!("/devices/{}", e.device)) { (e.device) } } td { (e.group) }
                        td { (e.by.clone().unwrap_or_default()) }
                    }
                }
            }
        };
        Ok(("Events".into(), body))
    })
    .await
}

pub async fn consent(
    State(console): State<Arc<Console>>,
    who: Who,
    Query(query): Query<ConsentQuery>,
) -> Response {
    page(console, who.0, move |_, world| {
        let listing = v::consent_page(world, &query, false)?;
        let groups = v::group_rows(world, &[]);
        let group = query.group.clone().unwrap_or_default();
        let pages = listing.devices.div_ceil(100).max(1);
        let link = |page: usize| format!("/consent?group={group}&page={page}");
        let body = html! {
            form.panel method="get" action="/consent" {
                "Group " select name="group" {
                    option value="" { "every device" }
                    @for g in &groups { option value=(g.path) selected[group == g.path] { (g.path) } }
                }
                " " button type="submit" { "Show" }
                " · " a href=(format!("/api/consent?{}", query_string(&[("group", Some(group.as_str())), ("format", Some("csv"))]))) { "CSV of every device" }
            }
            div.panel {
                h2 { "In force, over " (listing.devices) " devices" }
                table #consent-totals {
                    tr { th { "statement" } th { "data category" } th { "in force" } th { "not in force" } th { "not reported" } }
                    @for t in &listing.totals {
                        tr {
                            td { (t.statement) } td { (t.category.clone().unwrap_or_default()) }
                            td { b { (t.in_force) } } td { (t.reported - t.in_force) } td { (listing.devices - t.reported) }
                        }
                    }
                }
                @if listing.totals.is_empty() { p { "No device has reported its consent yet (devices report when they synchronise)." } }
            }
            table #consent {
                tr { th { "device" } th { "group" } th { "statement" } th { "data category" } th { "in force" } th { "version" } th { "since (ms)" } th { "by" } }
                @for r in &listing.rows {
                    tr {
                        td { a href=(format!("/devices/{}", r.device)) { (r.device) } } td { (r.group) }
                        td { (r.statement) } td { (r.category.clone().unwrap_or_default()) }
                        td { @if r.accepted { b { "yes" } } @else { "no" } } td { (r.version) } td { (r.since_ms) }
                        td.wrap { (r.by) }
                    }
                }
            }
            p {
                "page " (listing.page + 1) " of " (pages) " "
                @if listing.page > 0 { a href=(link(listing.page - 1)) { "previous" } " " }
                @if listing.page + 1 < pages { a href=(link(listing.page + 1)) { "next" } }
            }
        };
        Ok(("The fleet's consent".into(), body))
    })
    .await
}

/// How many actions the page shows.
const ACTIONS_SHOWN: usize = 200;

pub async fn actions(State(console): State<Arc<Console>>, who: Who) -> Response {
    // Read from the database first: a page holds the console's lock while it renders.
    let reader = console.clone();
    let rows = tokio::task::spawn_blocking(move || reader.action_rows(ACTIONS_SHOWN)).await;
    let rows = match rows {
        Ok(Ok(rows)) => v::action_views(rows),
        Ok(Err(e)) => {
            return failed(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "The actions cannot be read",
                e,
            )
        }
        Err(_) => {
            return failed(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "The actions cannot be read",
                "Reload the page; if it fails again, the server's log says why.".into(),
            )
        }
    };
    page(console, who.0, move |_, _| {
        let body = html! {
            p {
                "What the administrators did through the console, newest first (the last " (ACTIONS_SHOWN) "). "
                a href="/api/actions?format=csv" { "CSV" }
            }
            table #actions {
                tr { th { "#" } th { "at" } th { "host time (ms)" } th { "who" } th { "what" } th { "on" } th { "outcome" } }
                @for a in &rows {
                    tr {
                        td { (a.id) } td.nowrap { (a.at) } td { (a.time_ms) } td { b { (a.user) } }
                        td.wrap { (a.what) } td { (a.target) } td.wrap { (a.outcome) }
                    }
                }
            }
            @if rows.is_empty() { p { "No action yet." } }
        };
        Ok(("Administrators' actions".into(), body))
    })
    .await
}
