//! The Web Console in a real browser (Debian's chromium, driven through chromedriver by
//! fantoccini, headless): the Private KSN story as an administrator plays it, the guard
//! (token, CSRF, Host), and the API against its OpenAPI document. Screenshots of the
//! Data handling window and the devices page are written to docs/ (the README shows
//! them).

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A tool from Debian's packages, or a failure naming the package to install.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is not installed: install Debian's {package} (`apt-get install -y chromium chromium-driver`; the README's test command does it)"
    );
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The browser's profile folder: when dropped (a test that fails included), every browser
/// process started on it is ended and the folder removed.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-f", "--"])
            .arg(format!("--user-data-dir={}", self.0.display()))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `host-sim serve` on `scenario`, and the address it printed (with its token).
fn serve(scenario: &Path) -> (Running, String) {
    let mut child = common::host_sim()
        .args(["serve", "--port", "0"])
        .arg(scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("host-sim serve starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // The rest is drained, so the server never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .to_string();
    (Running(child), url)
}

fn chromedriver() -> (Running, u16) {
    let port = free_port();
    let child = Command::new(tool("chromedriver", "chromium-driver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running(child), port)
}

async fn browser(port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": tool("chromium", "chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

/// A raw HTTP request to the console: status and body.
fn http(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut stream = TcpStream::connect(&authority).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn text(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Clicks and waits for the page the step reloads.
async fn click_and_reload(client: &Client, css: &str) {
    let before: Value = client
        .execute("return performance.timeOrigin", vec![])
        .await
        .unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let answer = client
            .execute("const a = document.getElementById('answer'); return a ? a.className + ':' + a.textContent : ''", vec![])
            .await
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert!(!answer.starts_with("error:"), "{css}: {answer}");
        let now: Value = client
            .execute("return performance.timeOrigin", vec![])
            .await
            .unwrap_or(Value::Null);
        if now != before && !now.is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{css}: the page did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("main"))
        .await
        .unwrap();
}

fn repo() -> PathBuf {
    common::repo_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_ksn_story_plays_in_the_browser() {
    let scenario = repo().join("tests/console/private_ksn_story.json");
    let (_server, url) = serve(&scenario);
    let (_driver, port) = chromedriver();
    let profile = Profile(std::env::temp_dir().join(format!("ksn-console-{}", std::process::id())));
    let client = browser(port, &profile.0).await;
    let base = url.split("/?").next().unwrap().to_string();

    // The token lets the browser in, and moves to a cookie.
    client.goto(&url).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/devices");
    assert!(text(&client, "#devices").await.contains("device 0"));

    // The group's policy: the Private KSN statement is read before the box can be ticked,
    // and the acceptance is locked.
    client
        .goto(&format!("{base}/policies?group=Servers"))
        .await
        .unwrap();
    let accept = "[data-value='data_handling.ksn_statement_accepted']";
    assert!(
        client
            .find(Locator::Css(accept))
            .await
            .unwrap()
            .prop("disabled")
            .await
            .unwrap()
            == Some("true".into()),
        "the acceptance box waits for the statement to be read"
    );
    client
        .find(Locator::Css(
            "details[data-unlocks='data_handling.ksn_statement_accepted'] summary",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for css in [
        "[data-set='data_handling.ksn_statement_accepted']",
        accept,
        "[data-lock='data_handling.ksn_statement_accepted']",
    ] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    click_and_reload(&client, "#save-policy").await;
    assert!(text(&client, ".revisions").await.contains("1"));

    // Device 0 in that group: the box reads accepted, locked, the padlock names the policy.
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    let padlock = text(
        &client,
        "[data-lock-of='data_handling.ksn_statement_accepted']",
    )
    .await;
    assert!(
        padlock.contains("Policy of Servers") && padlock.contains("revision 1"),
        "{padlock}"
    );
    assert!(text(&client, "#statement-title")
        .await
        .contains("Private Security Network"));
    // The category boxes are greyed out in Private KSN mode, with the reason.
    let categories = client
        .find_all(Locator::Css("[data-category]"))
        .await
        .unwrap();
    assert!(!categories.is_empty());
    for category in &categories {
        assert_eq!(
            category.attr("class").await.unwrap().as_deref(),
            Some("unavailable")
        );
        let input = category.find(Locator::Css("input")).await.unwrap();
        assert_eq!(
            input.prop("disabled").await.unwrap().as_deref(),
            Some("true")
        );
        assert!(!category
            .find(Locator::Css(".reason"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .is_empty());
    }
    click_and_reload(&client, "form[data-step*='\"start\"'] button").await;
    assert_eq!(text(&client, "#task-state").await, "running");
    assert!(text(&client, "#device-status").await.contains("OK"));
    std::fs::write(
        repo().join("docs/console-data-handling.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The server switches Private KSN off: the task stops with license_violation, Critical.
    client.goto(&format!("{base}/server")).await.unwrap();
    click_and_reload(&client, "form[data-step*='set_private_ksn'] button").await;
    assert_eq!(text(&client, "#server-private-ksn").await, "off");
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    assert_eq!(text(&client, "#task-error").await, "license_violation");
    assert!(text(&client, "#device-status").await.contains("Critical"));
    client.goto(&format!("{base}/devices")).await.unwrap();
    assert_eq!(
        text(&client, "#count-critical").await,
        "1",
        "the device that was running"
    );
    std::fs::write(
        repo().join("docs/console-devices.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The Global statement accepted in the Data handling window, the task started: OK.
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    assert_eq!(
        text(&client, "#statement-title").await,
        "Kaspersky Security Network Statement"
    );
    click_and_reload(
        &client,
        "input[data-local='data_handling.ksn_statement_accepted']",
    )
    .await;
    click_and_reload(&client, "form[data-step*='\"start\"'] button").await;
    assert_eq!(text(&client, "#task-state").await, "running");
    assert!(text(&client, "#device-status").await.contains("OK"));
    assert!(text(&client, "#consent-history")
        .await
        .contains("private_ksn"));

    // A local change to a box the policy locks is refused, the policy named.
    client.goto(&format!("{base}/devices/1")).await.unwrap();
    let refused: Value = client
        .execute_async(
            "const done = arguments[0]; fetch('/api/steps', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}, body: JSON.stringify({do: 'set_local', on: {device: 1}, settings: {data_handling: {ksn_statement_accepted: false}}})}).then(r => r.json().then(b => done([r.status, b.error])))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused[0], 422, "{refused}");
    let error = refused[1].as_str().unwrap();
    assert!(
        error.contains("locked_by_policy") && error.contains("\"Policy of Servers\", revision 1"),
        "{error}"
    );

    // A change without the CSRF token, from the browser's own session, is refused.
    let forged: Value = client
        .execute_async(
            "const done = arguments[0]; fetch('/api/steps', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{\"do\": \"stop\"}'}).then(r => done(r.status))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forged, 403);

    // A second save is revision 2, shown with its diff; rolling back to 1 saves revision 3.
    client
        .goto(&format!("{base}/policies?group=Servers"))
        .await
        .unwrap();
    client
        .find(Locator::Css("[data-set='task.schedule']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .execute("document.querySelector(\"[data-value='task.schedule']\").value = 'at_application_start'", vec![])
        .await
        .unwrap();
    click_and_reload(&client, "#save-policy").await;
    let diff: Value = client
        .execute(
            "return document.querySelector('details.diff pre').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(diff.as_str().unwrap().contains("task.schedule"), "{diff}");
    click_and_reload(&client, "form[data-step*='roll_back_policy'] button").await;
    let rows = client
        .find_all(Locator::Css(".revisions tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "a heading and revisions 1, 2 and 3");
    let third = rows[3].text().await.unwrap();
    assert!(third.starts_with('3') && third.contains('1'), "{third}");
    client.close().await.unwrap();
}

/// Without the token, with a wrong CSRF token, or under another host name: refused, each
/// with a page that says what to do; with the token, the API answers as its OpenAPI
/// document says.
#[test]
fn the_guard_refuses_who_does_not_belong_and_the_api_keeps_its_document() {
    let scenario = repo().join("tests/console/private_ksn_story.json");
    let (_server, url) = serve(&scenario);
    let token = url.split("token=").nth(1).unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let cookie = format!("ksn_console={token}");

    let (status, page) = http(&url, "GET", "/devices", &[], "");
    assert_eq!(status, 401);
    assert!(page.contains("access token") && !page.contains("panicked"));
    let (status, _) = http(
        &url,
        "GET",
        "/devices",
        &[("Cookie", "ksn_console=0000")],
        "",
    );
    assert_eq!(status, 401);
    let (status, page) = http(
        &url,
        "POST",
        "/api/steps",
        &[("Cookie", &cookie), ("X-CSRF-Token", "nope")],
        r#"{"do":"stop"}"#,
    );
    assert_eq!(status, 403);
    assert!(page.contains("CSRF"));
    let (status, _) = http(
        &url,
        "POST",
        "/api/steps",
        &[("Cookie", &cookie)],
        r#"{"do":"stop"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        &url,
        "GET",
        "/api/devices",
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        "",
    );
    assert_eq!(status, 403);
    // DNS rebinding: the right token under another name.
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    write!(stream, "GET /api/devices HTTP/1.1\r\nHost: rebind.example:80\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");

    // Bad input: one clear error, nothing changed.
    let (status, body) = http(
        &url,
        "POST",
        "/api/steps",
        &[("Authorization", &bearer)],
        "{not json",
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &url,
        "POST",
        "/api/steps",
        &[("Authorization", &bearer)],
        r#"{"do":"no_such_step"}"#,
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = http(
        &url,
        "GET",
        "/api/devices?status=purple",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 400);
    assert!(body.contains("status"));

    // Every answer of the API as its document describes it.
    let (_, doc) = http(
        &url,
        "GET",
        "/api/openapi.json",
        &[("Authorization", &bearer)],
        "",
    );
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let components = doc["components"].clone();
    for (path, schema) in [
        (
            "/api/devices",
            json!({"$ref": "#/components/schemas/DevicePage"}),
        ),
        (
            "/api/devices/0",
            json!({"$ref": "#/components/schemas/DeviceDetail"}),
        ),
        (
            "/api/groups",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/GroupRow"}}),
        ),
        (
            "/api/policies",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/PolicyRow"}}),
        ),
        (
            "/api/events",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/EventRow"}}),
        ),
        (
            "/api/server",
            json!({"$ref": "#/components/schemas/ServerView"}),
        ),
        (
            "/api/deliveries",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/DeliveryRow"}}),
        ),
    ] {
        let documented =
            doc["paths"][path.replace("/0", "/{id}")]["get"]["responses"]["200"].clone();
        assert!(!documented.is_null(), "{path} is in the document");
        let (status, body) = http(&url, "GET", path, &[("Authorization", &bearer)], "");
        assert_eq!(status, 200, "{path}: {body}");
        let mut schema = schema;
        schema["components"] = components.clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let answer: Value = serde_json::from_str(&body).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}");
    }
    let (status, csv) = http(
        &url,
        "GET",
        "/api/devices/0/audit?format=csv",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 200);
    assert!(csv.starts_with("host,device,seq,time_ms,statement"));

    // A change is answered once saved, and delivered in the background: its delivery
    // shows how far it is, and ends with every device it reaches.
    let (status, body) = http(
        &url,
        "POST",
        "/api/steps",
        &[("Authorization", &bearer)],
        r#"{"do":"create_policy","name":"Limit","group":"/","policy":{"settings":{"task":{"checksum_limit_mb":{"value":8,"locked":true}}}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let id = answer["delivery"].as_u64().expect("a delivery");
    assert!(
        answer["output"]
            .as_str()
            .unwrap()
            .contains("delivered in the background"),
        "{answer}"
    );
    let mut done = false;
    for _ in 0..200 {
        let (_, list) = http(
            &url,
            "GET",
            "/api/deliveries",
            &[("Authorization", &bearer)],
            "",
        );
        let list: Value = serde_json::from_str(&list).unwrap();
        let d = list
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()
            .clone();
        assert!(d["delivered"].as_u64() <= d["total"].as_u64());
        if d["done"] == true {
            assert_eq!(d["delivered"], d["total"]);
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(done, "the delivery ends");
    let (_, device) = http(
        &url,
        "GET",
        "/api/devices/0",
        &[("Authorization", &bearer)],
        "",
    );
    assert!(device.contains("checksum_limit_mb"), "{device}");
    // ?wait=true answers once the devices have it.
    let (status, body) = http(
        &url,
        "POST",
        "/api/steps?wait=true",
        &[("Authorization", &bearer)],
        r#"{"do":"edit_policy","name":"Limit","policy":{"settings":{"task":{"checksum_limit_mb":{"value":9,"locked":true}}}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["delivery"]
        .as_u64()
        .unwrap();
    let (_, list) = http(
        &url,
        "GET",
        "/api/deliveries",
        &[("Authorization", &bearer)],
        "",
    );
    let list: Value = serde_json::from_str(&list).unwrap();
    let d = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap();
    assert_eq!(d["done"], true, "{d}");
}
