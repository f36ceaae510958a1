//! The Web Console's pages, rendered on the server from the read model (`views`) and the
//! loaded plugin's `describe`. Every action is a form whose step the one script
//! (`assets/console.js`, served from this origin: no inline script, no inline style, so
//! the Content-Security-Policy allows neither) posts to `/api/steps`.

mod activity;
mod devices;
mod groups;
mod policies;
mod server;

use std::sync::Arc;

use axum::{
    http::{header, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Extension,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

pub use activity::{actions, consent, events};
pub use devices::{device, devices};
pub use groups::groups;
pub use policies::policies;
pub use server::server;

use super::{api, people::Identity, Console};
use crate::world::World;
use admin_server::Status;

const STYLE: &str = include_str!("../assets/console.css");
const SCRIPT: &str = include_str!("../assets/console.js");

/// The console's style sheet.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The console's one script.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// The pages, in the order the header lists them.
const NAV: [(&str, &str); 8] = [
    ("/devices", "Devices"),
    ("/groups", "Groups"),
    ("/policies", "Policies"),
    ("/events", "Events"),
    ("/consent", "Consent"),
    ("/actions", "Actions"),
    ("/server", "Server"),
    ("/api/openapi.json", "API"),
];

fn layout(console: &Console, who: &Identity, title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="csrf" content=(console.csrf);
                    title { (title) " · host-sim console" }
                    link rel="stylesheet" href="/assets/console.css";
                }
                body {
                    header {
                        strong { "Administration Server (host-sim)" }
                        @for (href, label) in NAV { a href=(href) { (label) } }
                        span.who #signed-in { "signed in as " b { (who.name) } " (" (who.role.as_str()) ")" }
                    }
                    main {
                        h1 { (title) }
                        div #answer role="status" {}
                        (body)
                    }
                    script src="/assets/console.js" {}
                }
            }
        }
        .into_string(),
    )
}

/// An error as a page: what happened, what to do, and the way back.
pub fn error_page(title: &str, what_to_do: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href="/assets/console.css"; }
                body {
                    header {
                        strong { "Administration Server (host-sim)" }
                        @for (href, label) in NAV { a href=(href) { (label) } }
                    }
                    main { h1 { (title) } p { (what_to_do) } p { a href="/devices" { "Back to the devices" } } }
                }
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
        "The console has Devices, Groups, Policies, Events, Consent, Actions and Server pages; the API is under /api.".into(),
    )
}

pub async fn home() -> Redirect {
    Redirect::to("/devices")
}

fn mark(status: Status) -> Markup {
    html! { span class=(format!("mark {}", status.as_str())) {} (status.to_string()) }
}

/// A page: rendered off the async threads, over the console's world.
async fn page(
    console: Arc<Console>,
    who: Identity,
    f: impl FnOnce(&Console, &World) -> Result<(String, Markup), String> + Send + 'static,
) -> Response {
    let rendered = tokio::task::spawn_blocking(move || {
        let shell = console.shell();
        f(&console, shell.world()).map(|(title, body)| layout(&console, &who, &title, body))
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

/// A button that posts `step`.
fn step_form(step: Value, label: &str) -> Markup {
    html! {
        form.inline data-step=(step.to_string()) { button type="submit" { (label) } }
    }
}

/// The same, after a confirmation that says what the change reaches.
fn confirmed_form(step: Value, label: &str, confirm: &str) -> Markup {
    html! {
        form.inline data-step=(step.to_string()) data-confirm=(confirm) { button type="submit" { (label) } }
    }
}

/// A padlock, drawn (no font on a server need have the emoji).
const PADLOCK: PreEscaped<&str> = PreEscaped(
    r##"<svg width="11" height="13" viewBox="0 0 11 13" aria-label="locked" role="img"><rect x="0.5" y="5.5" width="10" height="7" rx="1" fill="#8a5a00"/><path d="M2.5 5.5V3.8a3 3 0 0 1 6 0v1.7" fill="none" stroke="#8a5a00" stroke-width="1.6"/></svg>"##,
);

/// A licence state in words.
fn licence_words(state: &str) -> &str {
    match state {
        "valid" => "valid",
        "expired" => "expired",
        "no_ksn" => "does not cover KSN",
        "unknown" => "not reported yet",
        other => other,
    }
}

/// How many devices are in `path` and below, for a confirmation.
fn devices_in(world: &World, path: &str) -> usize {
    world
        .server
        .tree()
        .find(path)
        .map(|g| world.server.in_group(g).iter().filter(|x| **x).count())
        .unwrap_or(0)
}

/// Extracts the identity the guard put on every request.
pub type Who = Extension<Identity>;
