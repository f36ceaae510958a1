//! Who may use the console: a request must name an allowed host (against DNS rebinding),
//! come from no other origin, and carry the access token (in `?token=` once, then the
//! cookie it sets, or as `Authorization: Bearer`); a change made with the cookie must also
//! carry the CSRF token the pages hold (`X-CSRF-Token`). Each refusal is a page saying
//! what to do, never a stack trace.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::{pages, Console};

pub const COOKIE: &str = "ksn_console";
pub const CSRF_HEADER: &str = "x-csrf-token";

use super::people::{same, Identity, Role};

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// A refusal: a page, or for the API the same words as JSON (what a page's script shows).
fn refuse_at(api: bool, status: StatusCode, title: &str, what_to_do: &str) -> Response {
    if api {
        super::api::problem(status, format!("{title}: {what_to_do}"))
    } else {
        (status, pages::error_page(title, what_to_do)).into_response()
    }
}

/// What the framework answers itself (a path or query that does not parse, a body too
/// large, a method not allowed) as a page, or JSON for the API, with its reason: never a
/// bare text.
pub async fn errors(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if status.as_u16() < 400 || typed {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let reason = String::from_utf8_lossy(&body).trim().to_string();
    let reason = if reason.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        reason
    };
    refuse_at(
        api,
        status,
        "The request was refused",
        &format!(
            "{reason}. The API's document at /api/openapi.json lists what each address takes."
        ),
    )
}

/// What every answer carries: a page may run only this origin's script and style, and no
/// other page may frame it (a click there would be a change here).
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    response
}

pub async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let refuse = |status, title: &str, what: &str| refuse_at(api, status, title, what);
    let headers = request.headers();
    let host = header(headers, header::HOST).unwrap_or("");
    if !console.hosts.iter().any(|h| h == host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This console does not answer to that host name",
            &format!(
                "Open it as {} (the address host-sim serve printed): other names are refused against DNS rebinding.",
                console.hosts[0]
            ),
        );
    }
    if let Some(origin) = header(headers, header::ORIGIN) {
        let allowed = console
            .hosts
            .iter()
            .any(|h| origin == format!("http://{h}"));
        if !allowed {
            return refuse(
                StatusCode::FORBIDDEN,
                "A page of another site tried to use this console",
                "Use the console from its own pages.",
            );
        }
    }
    // The style sheet and the script are the same for everyone (an error page uses them).
    if request.method() == Method::GET && request.uri().path().starts_with("/assets/") {
        return next.run(request).await;
    }
    // Named administrators are read from the host database, off the async threads.
    let identify = |token: &str| tokio::task::block_in_place(|| console.auth.identify(token));
    let by_cookie = cookie(headers, COOKIE).and_then(identify);
    let by_bearer = header(headers, header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(identify);
    let query_token = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_string)
    });
    if let Some(token) = query_token {
        if request.method() == Method::GET && identify(&token).is_some() {
            // The token moves to a cookie, and out of the address bar and the history.
            let rest: Vec<&str> = request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.starts_with("token=") && !p.is_empty())
                .collect();
            let path = request.uri().path();
            let target = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", rest.join("&"))
            };
            let mut response = Redirect::to(&target).into_response();
            if let Ok(value) =
                format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/").parse()
            {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return response;
        }
    }
    let bearer = by_bearer.is_some();
    let Some(identity) = by_bearer.or(by_cookie) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "This console needs its access token",
            if console.auth.named_users() {
                "Sign in with your own token: open the console's address ending in ?token=<your token> (an administrator gives one with host-sim user add); the console then remembers it in a cookie."
            } else {
                "Open the address host-sim serve printed when it started (it ends in ?token=…); the console then remembers it in a cookie."
            },
        );
    };
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && identity.role == Role::Auditor {
        return refuse(
            StatusCode::FORBIDDEN,
            "An auditor reads; they change nothing",
            &format!(
                "{} is signed in as an auditor: every page and the API's reading answer them, and an administrator makes changes.",
                identity.name
            ),
        );
    }
    if changes && !bearer {
        let csrf = header(request.headers(), CSRF_HEADER).unwrap_or("");
        if !same(csrf, &console.csrf) {
            return refuse(
                StatusCode::FORBIDDEN,
                "This change did not come from the console's own page",
                "Reload the page and make the change again: its CSRF token did not match.",
            );
        }
    }
    let mut request = request;
    request.extensions_mut().insert::<Identity>(identity);
    next.run(request).await
}
