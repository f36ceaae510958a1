//! The Web Console's router in-process (axum's `oneshot`, no socket): the guard, the two
//! roles, every page's and endpoint's answers and errors, the OpenAPI document against
//! the answers, the security headers, the names and the time the server refuses or stops
//! at; and, over real sockets, the bounds on connections.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode},
    Router,
};
use host_sim::{
    shell::Shell,
    storage::HostStore,
    web::{self, people::Auth, Console},
    world::HostDatabase,
};
use plugin_api::LogRetention;
use serde_json::{json, Value};
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:8080";

struct Server {
    app: Router,
    admin: String,
    auditor: String,
    csrf: String,
    console: Arc<Console>,
    _dir: Dir,
}

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A console over 6 devices, with a database holding an administrator (`alice`) and an
/// auditor (`ada`).
fn server(name: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("ksn-router-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<HostStore> = HostStore::open(&dir.join("host.db")).unwrap();
    let admin = store.add_user("alice", "administrator").unwrap();
    let auditor = store.add_user("ada", "auditor").unwrap();
    let host = store.create_server("router").unwrap();
    let shell = Shell::new(
        common::plugin(),
        6,
        Some(HostDatabase {
            store: store.clone(),
            host,
        }),
        LogRetention::DEFAULT,
    )
    .unwrap();
    let auth = Auth::for_store(Some(&store), "unused".into()).unwrap();
    let csrf = "c".repeat(32);
    let console = Console::new(shell, auth, csrf.clone(), vec![HOST.into()]);
    Server {
        app: web::router(console.clone()),
        admin,
        auditor,
        csrf,
        console,
        _dir: Dir(dir),
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Server {
    async fn get(&self, path: &str) -> Answer {
        let bearer = format!("Bearer {}", self.admin);
        call(&self.app, "GET", path, &[("authorization", &bearer)], "").await
    }

    async fn step(&self, step: Value) -> Answer {
        let bearer = format!("Bearer {}", self.admin);
        call(
            &self.app,
            "POST",
            "/api/steps?wait=true",
            &[("authorization", &bearer)],
            &step.to_string(),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_lets_in_only_who_belongs_and_every_answer_is_hardened() {
    let s = server("guard");
    let cookie = format!("ksn_console={}", s.admin);
    // No token: a page that says how to sign in; the API says it as JSON.
    let a = call(&s.app, "GET", "/devices", &[], "").await;
    assert_eq!(a.status, 401);
    assert!(
        a.body.contains("your own token") && a.body.contains("<nav") | a.body.contains("<header"),
        "{}",
        a.body
    );
    let a = call(&s.app, "GET", "/api/devices", &[], "").await;
    assert_eq!(a.status, 401);
    assert!(a.json()["error"].as_str().unwrap().contains("token"));
    // A wrong token, by cookie or bearer.
    for (k, v) in [
        ("cookie", "ksn_console=00".to_string()),
        ("authorization", "Bearer 00".into()),
    ] {
        assert_eq!(
            call(&s.app, "GET", "/devices", &[(k, &v)], "").await.status,
            401
        );
    }
    // The token once in the address: it moves to a cookie, and out of the address.
    let a = call(
        &s.app,
        "GET",
        &format!("/events?token={}&type=x", s.admin),
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.headers["location"], "/events?type=x");
    let set = a.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    // With the cookie a page answers; a change needs the CSRF token too.
    assert_eq!(
        call(&s.app, "GET", "/devices", &[("cookie", &cookie)], "")
            .await
            .status,
        200
    );
    let stop = r#"{"do":"stop"}"#;
    let a = call(&s.app, "POST", "/api/steps", &[("cookie", &cookie)], stop).await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("CSRF"));
    let a = call(
        &s.app,
        "POST",
        "/api/steps",
        &[("cookie", &cookie), ("x-csrf-token", "nope")],
        stop,
    )
    .await;
    assert_eq!(a.status, 403);
    let a = call(
        &s.app,
        "POST",
        "/api/steps",
        &[("cookie", &cookie), ("x-csrf-token", &s.csrf)],
        stop,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Another origin, another host name (DNS rebinding): refused with the right token.
    let bearer = format!("Bearer {}", s.admin);
    let a = call(
        &s.app,
        "GET",
        "/api/devices",
        &[
            ("authorization", &bearer),
            ("origin", "http://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    let request = Request::builder()
        .uri("/api/devices")
        .header("host", "rebind.example:80")
        .header("authorization", &bearer)
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.app.clone().oneshot(request).await.unwrap().status(), 403);
    // The style sheet and the script need no token (an error page uses them).
    for (path, kind) in [
        ("/assets/console.css", "text/css"),
        ("/assets/console.js", "text/javascript"),
    ] {
        let a = call(&s.app, "GET", path, &[], "").await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    // Every answer, refused or not, page or API: no framing, no inline script or style.
    for a in [
        call(&s.app, "GET", "/devices", &[], "").await,
        s.get("/devices").await,
        s.get("/api/devices").await,
        s.get("/no/such/page").await,
        call(&s.app, "GET", "/assets/console.js", &[], "").await,
    ] {
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(a.headers["x-frame-options"], "DENY");
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
    }
    // No page carries an inline script or style the policy would need to allow.
    for page in [
        "/devices",
        "/devices/0",
        "/groups",
        "/policies",
        "/events",
        "/consent",
        "/actions",
        "/server",
    ] {
        let a = s.get(page).await;
        assert_eq!(a.status, 200, "{page}: {}", a.body);
        assert!(
            !a.body.contains("<script>")
                && !a.body.contains("<style")
                && !a.body.contains(" style="),
            "{page} has inline script or style"
        );
        assert!(
            a.body.contains(r#"<script src="/assets/console.js">"#),
            "{page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_everything_and_changes_nothing_and_every_change_names_its_administrator()
{
    let s = server("roles");
    let auditor = format!("Bearer {}", s.auditor);
    let me = call(&s.app, "GET", "/api/me", &[("authorization", &auditor)], "")
        .await
        .json();
    assert_eq!(me, json!({"name": "ada", "role": "auditor"}));
    for path in [
        "/devices",
        "/groups",
        "/policies",
        "/events",
        "/consent",
        "/actions",
        "/server",
        "/api/devices",
        "/api/consent",
        "/api/actions",
    ] {
        let a = call(&s.app, "GET", path, &[("authorization", &auditor)], "").await;
        assert_eq!(a.status, 200, "{path}");
    }
    let page = call(
        &s.app,
        "GET",
        "/devices",
        &[("authorization", &auditor)],
        "",
    )
    .await
    .body;
    assert!(
        page.contains("signed in as <b>ada</b> (auditor)"),
        "the console shows who is signed in"
    );
    let before = s.get("/api/groups").await.body;
    let a = call(
        &s.app,
        "POST",
        "/api/steps",
        &[("authorization", &auditor)],
        r#"{"do":"create_group","group":"Audited"}"#,
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.json()["error"].as_str().unwrap().contains("auditor"));
    assert_eq!(s.get("/api/groups").await.body, before, "nothing changed");

    // alice's changes: the revision, the action, and the consent the devices report.
    let a = s
        .step(json!({"do": "create_group", "group": "Servers"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    s.step(json!({"do": "move_devices", "group": "Servers", "on": {"devices": [0, 1]}}))
        .await;
    let a = s.step(json!({"do": "create_policy", "name": "Servers baseline", "group": "Servers",
        "policy": {"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}}}}})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let refused = s
        .step(json!({"do": "rename_group", "group": "Servers", "name": "bad\u{202e}name"}))
        .await;
    assert_eq!(refused.status, 422);
    let policies = s.get("/api/policies").await.json();
    let baseline = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Servers baseline")
        .unwrap();
    assert_eq!(baseline["revisions"][0]["by"], "alice");
    let actions = s.get("/api/actions").await.json();
    let actions = actions.as_array().unwrap();
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert!(actions.iter().all(|a| a["user"] == "alice"));
    let refusal = actions[0]["outcome"].as_str().unwrap();
    assert!(
        refusal.contains("U+202E"),
        "a refused action keeps its reason: {refusal}"
    );
    let typed = actions[0]["what"].as_str().unwrap();
    assert!(
        typed.to_lowercase().contains("bad\\u{202e}name"),
        "what was typed is shown with its hidden characters written out: {typed}"
    );
    assert_eq!(actions[1]["outcome"], "ok");
    assert!(
        actions[1]["target"]
            .as_str()
            .unwrap()
            .contains("Servers baseline"),
        "{:?}",
        actions[1]
    );
    assert!(
        actions[1]["at"].as_str().unwrap().ends_with('Z'),
        "RFC 3339, UTC"
    );
    let csv = s.get("/api/actions?format=csv").await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(csv
        .body
        .starts_with("id,at,time_ms,user,what,target,outcome"));
    assert_eq!(csv.body.lines().count(), 5);
    // The devices report the acceptance the policy brought: by alice, through the policy.
    let consent = s.get("/api/consent?group=Servers").await.json();
    let rows = consent["rows"].as_array().unwrap();
    let ksn: Vec<&Value> = rows
        .iter()
        .filter(|r| r["statement"] == "ksn" && r["category"].is_null())
        .collect();
    assert_eq!(ksn.len(), 2, "{consent}");
    for r in ksn {
        assert_eq!(r["accepted"], true);
        let by = r["by"].as_str().unwrap();
        assert!(
            by.contains("alice") && by.contains("Servers baseline") && by.contains("revision 1"),
            "{by}"
        );
    }
    let ksn_total = consent["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["statement"] == "ksn" && t["category"].is_null())
        .unwrap()
        .clone();
    assert_eq!(ksn_total["in_force"], 2);
    // The events the change caused name alice too, with words and a wall clock.
    let events = s
        .get("/api/events?type=consent_changed&importance=&group=&device=&since=&until=")
        .await;
    assert_eq!(
        events.status, 200,
        "empty filter fields mean any: {}",
        events.body
    );
    let events = events.json();
    let first = &events.as_array().unwrap()[0];
    assert_eq!(first["by"], "alice");
    let words = first["description"].as_str().unwrap();
    assert!(words.contains("ksn") || words.contains("KSN"), "{words}");
    assert!(first["at"].as_str().unwrap().len() >= 20);
    let page = s.get("/actions").await.body;
    assert!(page.contains("Servers baseline") && page.contains("alice"));
    drop(s.console);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_endpoint_answers_and_each_error_says_what_to_do() {
    let s = server("answers");
    s.step(json!({"do": "create_group", "group": "Servers"}))
        .await;
    s.step(json!({"do": "create_group", "group": "Servers/Web"}))
        .await;
    s.step(json!({"do": "move_devices", "group": "Servers/Web", "on": {"devices": [2, 3]}}))
        .await;
    s.step(
        json!({"do": "create_policy", "name": "P", "group": "Servers",
        "policy": {"settings": {"task": {"checksum_limit_mb": {"value": 8, "locked": true}}}}}),
    )
    .await;
    s.step(json!({"do": "edit_policy", "name": "P",
        "policy": {"settings": {"task": {"checksum_limit_mb": {"value": 9, "locked": true}}}}}))
        .await;
    s.step(json!({"do": "set_profile", "name": "P", "profile": {"name": "Away", "when": {"out_of_office": true}, "settings": {"task": {"checksum_limit_mb": 4}}}})).await;

    // Pages, with what each shows.
    for (page, shows) in [
        ("/devices", vec!["device 5", "Servers/Web"]),
        ("/devices?group=Servers&status=&page=", vec!["device 2"]),
        ("/devices/3", vec!["Data handling", "Consent history"]),
        ("/groups", vec!["Servers/Web", "Delete", "Rename"]),
        (
            "/policies?group=Servers",
            vec![
                "Revisions of P",
                "Profiles of P",
                "Away",
                "data-statement=\"ksn\"",
                "data-statement=\"private_ksn\"",
            ],
        ),
        (
            "/policies?group=Servers&policy=P&a=1&b=3",
            vec![
                "From revision 1 to revision 3",
                "task.checksum_limit_mb: 8 (locked) → 9 (locked)",
                "Away",
            ],
        ),
        (
            "/policies?group=Servers&policy=P&profile=Away",
            vec!["Profile Away"],
        ),
        (
            "/events?importance=&type=&group=&device=&since=&until=",
            vec!["Events"],
        ),
        ("/consent?group=Servers", vec!["In force, over 2 devices"]),
        ("/actions", vec!["create_policy"]),
        (
            "/server",
            vec!["Switch Private KSN on", "This reaches 6 of 6 devices"],
        ),
    ] {
        let a = s.get(page).await;
        assert_eq!(a.status, 200, "{page}: {}", a.body);
        assert!(a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        for words in shows {
            assert!(a.body.contains(words), "{page} does not show {words:?}");
        }
    }
    // The groups page counts a group's subtree (as the shell does).
    let groups = s.get("/api/groups").await.json();
    let servers = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["path"] == "Servers")
        .unwrap();
    assert_eq!(servers["devices"], 2);
    assert_eq!(servers["own_devices"], 0);
    let root = &groups[0];
    assert_eq!(
        (
            root["path"].as_str(),
            root["devices"].as_u64(),
            root["depth"].as_u64()
        ),
        (Some("/"), Some(6), Some(0))
    );

    // The shell renders the same rows: the same subtree counts, the same event window.
    let shell_groups = s.console.shell().execute("groups").unwrap();
    assert!(
        shell_groups.contains("  Servers: 2 devices (2 Warning), 0 in the group itself"),
        "{shell_groups}"
    );
    assert!(
        shell_groups.contains("/ (Managed devices): 6 devices"),
        "{shell_groups}"
    );
    let shell_events = s.console.shell().execute("events").unwrap();
    let shown: Vec<u64> = shell_events
        .lines()
        .filter_map(|l| l.strip_prefix('#')?.split(' ').next()?.parse().ok())
        .collect();
    let listed: Vec<u64> = s
        .get("/api/events")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(shown, listed, "the shell and the API list the same events");

    // Errors: each with its status and a sentence, never a panic.
    for (path, status, says) in [
        ("/devices/99", 404, "devices 0 to 5"),
        ("/devices?status=purple", 400, "status"),
        ("/policies?group=Nowhere", 400, "no group"),
        ("/policies?group=Servers&policy=Q", 400, "no policy"),
        ("/policies?group=Servers&policy=P&a=1&b=9", 400, "9"),
        ("/events?device=x", 400, "device"),
        ("/consent?group=Nowhere", 400, "no group"),
        ("/no/such/page", 404, "Devices, Groups, Policies"),
        ("/api/devices?status=purple", 400, "status"),
        ("/api/devices/99", 404, "99"),
        ("/api/events?device=-1", 400, "device"),
        ("/api/events?since=soon", 400, "since"),
        ("/api/consent?page=x", 400, "page"),
        ("/api/actions?limit=many", 400, "limit"),
        ("/api/diff?policy=P&a=1&b=7", 404, "7"),
        ("/api/diff?policy=P&a=one&b=2", 400, "a"),
        ("/api/nothing", 404, "openapi"),
    ] {
        let a = s.get(path).await;
        assert_eq!(a.status.as_u16(), status, "{path}: {}", a.body);
        assert!(a.body.contains(says), "{path}: {}", a.body);
        assert!(!a.body.contains("panicked"));
        if !path.starts_with("/api/") {
            assert!(
                a.body.contains("href=\"/devices\""),
                "{path}: an error page leads back"
            );
        }
    }
    // Steps: not JSON, a key given twice, an unknown step, a name too long or with
    // control characters; each refused, nothing changed.
    let before = s.get("/api/groups").await.body;
    let bearer = format!("Bearer {}", s.admin);
    for (body, status, says) in [
        ("{not json".to_string(), 400, "not JSON"),
        (
            r#"{"do":"create_group","group":"A","group":"B"}"#.to_string(),
            400,
            "twice",
        ),
        (r#"{"do":"no_such_step"}"#.to_string(), 422, "no_such_step"),
        (
            json!({"do": "create_group", "group": "x".repeat(1 << 20)}).to_string(),
            422,
            "256",
        ),
        (
            json!({"do": "create_group", "group": "a\u{0}b"}).to_string(),
            422,
            "control",
        ),
        (
            json!({"do": "create_group", "group": "a\u{202e}b"}).to_string(),
            422,
            "bidi",
        ),
        (
            json!({"do": "set_device", "tags": ["t\u{7}"], "on": {"device": 0}}).to_string(),
            422,
            "control",
        ),
        (
            json!({"do": "create_policy", "name": "y".repeat(257)}).to_string(),
            422,
            "256",
        ),
        ("[1]".to_string(), 400, "object"),
    ] {
        let a = call(
            &s.app,
            "POST",
            "/api/steps",
            &[("authorization", &bearer)],
            &body,
        )
        .await;
        assert_eq!(
            a.status.as_u16(),
            status,
            "{}: {}",
            &body[..body.len().min(60)],
            a.body
        );
        assert!(
            a.body.contains(says),
            "{}: {}",
            &body[..body.len().min(60)],
            a.body
        );
    }
    assert_eq!(s.get("/api/groups").await.body, before);
    // The actions log shows what was typed, never a hidden character that would reorder
    // the page.
    let actions = s.get("/api/actions").await.body;
    assert!(
        !actions.contains('\u{202e}') && !actions.contains("\\u0000"),
        "{actions}"
    );
    assert!(actions.contains("a\\\\u{202E}b"), "{actions}");

    // Time stops at 2^53 − 1 ms, and the database keeps it as it is.
    let a = s.step(json!({"do": "advance_time", "ms": u64::MAX})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s.step(json!({"do": "advance_time", "ms": 1000})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        s.get("/api/server").await.json()["time_ms"],
        json!(9_007_199_254_740_991u64)
    );
    let events = s.get("/api/events?limit=1").await;
    assert_eq!(events.status, 200);
}

/// A fleet mid-update in the console: each device's plugin, the devices of a version, the
/// versions counted with their acceptances, an update installed from the console, and a
/// policy editor that offers the statement of each version its devices run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_fleet_of_two_versions_and_installs_an_update() {
    let s = server("versions");
    s.step(
        json!({"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": true}}}),
    )
    .await;
    let a = s.step(json!({"do": "install_plugin", "plugin": "fixture_updated_plugin", "on": {"devices": [4, 5]}})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let updated = s.get("/api/devices?plugin=1.1.0").await.json();
    assert_eq!(updated["total"], 2, "{updated}");
    assert_eq!(updated["devices"][0]["plugin"], "ksn-usage-task");
    assert_eq!(updated["devices"][0]["plugin_version"], "1.1.0");
    assert_eq!(updated["devices"][0]["contract"], "1.4.0");
    let a = s.get("/api/devices?plugin=9.9.9").await;
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("ksn-usage-task 1.0.0"),
        "names what the fleet runs: {}",
        a.body
    );
    let plugins = s.get("/api/server").await.json()["plugins"].clone();
    let count = |version: &str| {
        plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["version"] == version)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            count("1.0.0")["devices"].as_u64(),
            count("1.0.0")["accepted"].as_u64()
        ),
        (Some(4), Some(4))
    );
    assert_eq!(
        (
            count("1.1.0")["devices"].as_u64(),
            count("1.1.0")["accepted"].as_u64()
        ),
        (Some(2), Some(0)),
        "{plugins}"
    );
    // The updated devices: Warning, naming the version to accept.
    let device = s.get("/api/devices/4").await.json();
    let reasons = device["device"]["reasons"].to_string();
    assert!(
        reasons.contains("accept version 2 of the KSN statement"),
        "{reasons}"
    );
    let page = s.get("/devices/4").await.body;
    assert!(
        page.contains("ksn-usage-task 1.1.0"),
        "the device page names its plugin"
    );
    let page = s.get("/devices?plugin=ksn-usage-task+1.1.0").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("device 4") && !page.body.contains("device 0<"),
        "filtered by version"
    );
    // The policy editor offers version 1 and version 2 of the KSN statement.
    s.step(json!({"do": "create_policy", "name": "All"})).await;
    let page = s.get("/policies?group=/&policy=All").await.body;
    assert!(
        page.contains(r#"data-statement="ksn" data-version="1""#)
            && page.contains(r#"data-statement="ksn" data-version="2""#),
        "both versions offered"
    );
    assert!(
        page.contains("ksn-usage-task 1.0.0 and ksn-usage-task 1.1.0"),
        "the editor names the versions"
    );
    // Saved with both read, every device accepts the version it ships.
    let a = s.step(json!({"do": "edit_policy", "name": "All", "policy": {"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": [1, 2]}}}}}})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let plugins = s.get("/api/server").await.json()["plugins"].clone();
    assert_eq!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["accepted"].as_u64().unwrap())
            .sum::<u64>(),
        6,
        "{plugins}"
    );
    // An update that cannot be installed: saved and delivered; the device keeps its
    // version, its delivery counts it refused, and the server's event says why.
    let a = s
        .step(json!({"do": "install_plugin", "plugin": "no_such_plugin", "on": {"device": 0}}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let delivery = a.json()["delivery"].as_u64().unwrap();
    let deliveries = s.get("/api/deliveries").await.json();
    let d = deliveries
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == delivery)
        .unwrap();
    assert_eq!(
        (d["failed"].as_u64(), d["by"].as_str()),
        (Some(1), Some("alice")),
        "{d}"
    );
    assert_eq!(
        s.get("/api/devices/0").await.json()["device"]["plugin_version"],
        "1.0.0"
    );
    let events = s.get("/api/events?type=plugin_update_failed").await.json();
    let why = events[0]["description"].as_str().unwrap();
    assert!(
        why.contains("no_such_plugin") && why.contains("keeps ksn-usage-task 1.0.0"),
        "{why}"
    );
    assert_eq!(events[0]["importance"], "functional_failure");
    let events = s.get("/api/events?type=plugin_updated").await.json();
    assert_eq!(
        events.as_array().unwrap().len(),
        2,
        "devices 4 and 5: {events}"
    );
}

/// Every `GET /api/...` route is in the OpenAPI document, and what each answers is what
/// the document says it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_answer() {
    let s = server("openapi");
    s.step(json!({"do": "create_policy", "name": "P", "policy": {"settings": {"task": {"checksum_limit_mb": 8}}}})).await;
    s.step(json!({"do": "edit_policy", "name": "P", "policy": {"settings": {"task": {"checksum_limit_mb": 9}}}})).await;
    let doc = s.get("/api/openapi.json").await.json();
    let components = doc["components"].clone();
    let paths = doc["paths"].as_object().unwrap();
    for (path, query) in [
        ("/api/devices", ""),
        ("/api/devices/{id}", ""),
        ("/api/groups", ""),
        ("/api/policies", ""),
        ("/api/events", ""),
        ("/api/server", ""),
        ("/api/deliveries", ""),
        ("/api/consent", ""),
        ("/api/actions", ""),
        ("/api/me", ""),
        ("/api/diff", "?policy=P&a=1&b=2"),
        ("/api/describe", ""),
    ] {
        let documented = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"))["get"]["responses"]["200"];
        let schema = &documented["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{path}: {documented}");
        let a = s
            .get(&format!("{}{query}", path.replace("{id}", "0")))
            .await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let mut schema = schema.clone();
        schema["components"] = components.clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let answer = a.json();
        let errors: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
    }
    // The one change, documented with its refusals.
    let step = &paths["/api/steps"]["post"]["responses"];
    for status in ["200", "400", "401", "403", "422"] {
        assert!(
            !step[status].is_null(),
            "POST /api/steps documents {status}"
        );
    }
}

/// A client that connects and sends nothing, or stops half-way through its headers, or
/// leaves a kept-alive connection idle, is disconnected; the server still answers others.
#[test]
fn idle_and_half_open_connections_are_closed() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let limits = web::listen::Limits {
        header_read: Duration::from_millis(400),
        idle: Duration::from_millis(600),
        connections: 4,
    };
    runtime.spawn(web::listen::serve(listener, app, limits));
    let closed_within = |mut stream: TcpStream, limit: Duration| {
        stream.set_read_timeout(Some(limit)).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "the server closed it (not our timeout): {read:?}"
        );
        started.elapsed()
    };
    // Nothing sent at all.
    let silent = TcpStream::connect(address).unwrap();
    // Half a request's headers.
    let mut half = TcpStream::connect(address).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // A whole request, then the connection kept alive and idle.
    let mut kept = TcpStream::connect(address).unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    for stream in [silent, half, kept] {
        let took = closed_within(stream, Duration::from_secs(10));
        assert!(took < Duration::from_secs(5), "closed after {took:?}");
    }
    // And the server answers a new client.
    let mut fresh = TcpStream::connect(address).unwrap();
    fresh
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    fresh.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer}"
    );
}

/// More clients than the bound wait to be accepted; the ones served go on.
#[test]
fn connections_are_bounded() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let limits = web::listen::Limits {
        header_read: Duration::from_secs(30),
        idle: Duration::from_secs(30),
        connections: 2,
    };
    runtime.spawn(web::listen::serve(listener, app, limits));
    // Two idle connections take both places.
    let _a = TcpStream::connect(address).unwrap();
    let _b = TcpStream::connect(address).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(address).unwrap(); // the kernel's backlog takes it
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        third.read(&mut buf).is_err(),
        "not served while two are open"
    );
    drop(_a);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "served once a place is free: {answer}"
    );
}
