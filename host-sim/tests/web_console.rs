//! The Web Console in a real browser (Debian's chromium, driven through chromedriver by
//! fantoccini, headless): an administrator's whole round (groups, devices, a named policy
//! with a profile, revisions compared, the Private KSN story, consent, actions, events)
//! and an auditor refused a change; and `host-sim serve` itself over a socket (the
//! token it prints, background delivery). Screenshots go to docs/ (the README shows
//! them).

mod common;

use std::{
    io::{Read, Write},
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
    serve_with(scenario, &[])
}

/// The same, with more arguments.
fn serve_with(scenario: &Path, more: &[&std::ffi::OsStr]) -> (Running, String) {
    let mut child = common::host_sim()
        .args(["serve", "--port", "0"])
        .args(more)
        .arg(scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("host-sim serve starts");
    let url = common::console_url(&mut child);
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

fn repo() -> PathBuf {
    common::repo_root()
}

/// The page's load time: it changes when the page reloads.
async fn loaded_at(client: &Client) -> Value {
    client
        .execute("return performance.timeOrigin", vec![])
        .await
        .unwrap()
}

/// Waits for the page to reload after a step (failing on an error answer).
async fn reloaded(client: &Client, before: Value, what: &str) {
    let started = Instant::now();
    loop {
        let answer = client
            .execute("const a = document.getElementById('answer'); return a ? a.className + ':' + a.textContent : ''", vec![])
            .await
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert!(!answer.starts_with("error:"), "{what}: {answer}");
        let now: Value = client
            .execute("return performance.timeOrigin", vec![])
            .await
            .unwrap_or(Value::Null);
        if now != before && !now.is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: the page did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("main"))
        .await
        .unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css} cannot be clicked: {e}"));
}

/// Clicks and waits for the page the step reloads.
async fn click_and_reload(client: &Client, css: &str) {
    let before = loaded_at(client).await;
    click(client, css).await;
    reloaded(client, before, css).await;
}

/// Clicks a change that asks for a confirmation: the question names `says`; it is
/// accepted, and the page reloads. Returns the question.
async fn confirm_and_reload(client: &Client, css: &str, says: &str) -> String {
    let before = loaded_at(client).await;
    click(client, css).await;
    let started = Instant::now();
    let question = loop {
        if let Ok(text) = client.get_alert_text().await {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{css}: no confirmation was asked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(question.contains(says), "{css}: {question}");
    client.accept_alert().await.unwrap();
    reloaded(client, before, css).await;
    question
}

/// Types `text` into the field `css` (replacing what it held).
async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Sets a field's value the way a choice in a list does.
async fn choose(client: &Client, css: &str, value: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1]",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

fn screenshot(name: &str, png: Vec<u8>) {
    std::fs::write(repo().join("docs").join(name), png).unwrap();
}

/// `host-sim user add NAME --role ROLE --db DB`: the token it printed.
fn add_user(db: &Path, name: &str, role: &str) -> String {
    let out = common::host_sim()
        .args(["user", "add", name, "--role", role, "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// An administrator's whole round, in the browser: groups, devices moved and tagged, a
/// named policy with a profile, two revisions compared, the Private KSN story, the
/// fleet's consent, the actions and events; then an auditor who reads and is refused a
/// change. The README's screenshots are taken on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_round_plays_in_the_browser() {
    let dir = std::env::temp_dir().join(format!("ksn-round-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("host.db");
    let alice = add_user(&db, "alice", "administrator");
    let ada = add_user(&db, "ada", "auditor");
    let (_server, url) = serve_with(
        &repo().join("tests/console/administrator_round.json"),
        &["--db".as_ref(), db.as_os_str()],
    );
    let base = url.split("/?").next().unwrap().to_string();
    assert!(
        url.contains("YOUR-TOKEN"),
        "named users sign in with their own tokens: {url}"
    );
    let (_driver, port) = chromedriver();
    let profile = Profile(dir.join("browser"));
    let client = browser(port, &profile.0).await;

    // alice signs in; the token moves to a cookie; the console says who she is.
    client
        .goto(&format!("{base}/?token={alice}"))
        .await
        .unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/devices");
    let who = text(&client, "#signed-in").await;
    assert!(
        who.contains("alice") && who.contains("administrator"),
        "{who}"
    );

    // Groups: Servers under the root, a Staging group renamed then deleted.
    client.goto(&format!("{base}/groups")).await.unwrap();
    let root_add = "tr[data-group='/'] form[data-step*='create_group']";
    type_into(&client, &format!("{root_add} input"), "Servers").await;
    click_and_reload(&client, &format!("{root_add} button")).await;
    type_into(&client, &format!("{root_add} input"), "Staging").await;
    click_and_reload(&client, &format!("{root_add} button")).await;
    type_into(
        &client,
        "tr[data-group='Staging'] form[data-step*='rename_group'] input",
        "Lab",
    )
    .await;
    click_and_reload(
        &client,
        "tr[data-group='Staging'] form[data-step*='rename_group'] button",
    )
    .await;
    confirm_and_reload(
        &client,
        "tr[data-group='Lab'] form[data-step*='delete_group'] button",
        "devices move up",
    )
    .await;
    assert!(
        client
            .find(Locator::Css("tr[data-group='Lab']"))
            .await
            .is_err(),
        "Lab is gone"
    );

    // Devices 0 and 1 move to Servers at once; device 1 is tagged web.
    client.goto(&format!("{base}/devices")).await.unwrap();
    click(&client, "input[name=device][value='0']").await;
    click(&client, "input[name=device][value='1']").await;
    choose(
        &client,
        "#bulk form[data-step*='move_devices'] select",
        "Servers",
    )
    .await;
    click_and_reload(&client, "#bulk form[data-step*='move_devices'] button").await;
    click(&client, "input[name=device][value='1']").await;
    type_into(&client, "#bulk input[data-field=tags]", "web").await;
    click_and_reload(&client, "#bulk form:has(input[data-field=tags]) button").await;
    let devices = text(&client, "#devices").await;
    assert!(devices.contains("web"), "{devices}");
    client.goto(&format!("{base}/groups")).await.unwrap();
    assert!(text(&client, "tr[data-group='Servers']")
        .await
        .contains('2'));

    // The server switches to Private KSN: the confirmation says how many devices it reaches.
    client.goto(&format!("{base}/server")).await.unwrap();
    confirm_and_reload(
        &client,
        "form[data-step*='set_private_ksn'] button",
        "reaches 4 of 4 devices",
    )
    .await;
    assert_eq!(text(&client, "#server-private-ksn").await, "on");

    // A named policy for Servers, its acceptance read, ticked and locked.
    client
        .goto(&format!("{base}/policies?group=Servers"))
        .await
        .unwrap();
    type_into(
        &client,
        "#new-policy input[data-field=name]",
        "Servers baseline",
    )
    .await;
    click_and_reload(&client, "#new-policy button").await;
    let box_ = "#policy-form [data-value='data_handling.ksn_statement_accepted']";
    let disabled = client
        .find(Locator::Css(box_))
        .await
        .unwrap()
        .prop("disabled")
        .await
        .unwrap();
    assert_eq!(
        disabled.as_deref(),
        Some("true"),
        "the box waits for a statement to be read"
    );
    // Both statements are offered, each with its version.
    let offered = client
        .find_all(Locator::Css(
            "#policy-form details[data-for='data_handling.ksn_statement_accepted']",
        ))
        .await
        .unwrap();
    assert_eq!(
        offered.len(),
        2,
        "the Global and the Private KSN statements"
    );
    click(&client, "#policy-form details[data-statement='private_ksn'][data-for='data_handling.ksn_statement_accepted'] summary").await;
    for css in [
        "#policy-form [data-set='data_handling.ksn_statement_accepted']",
        box_,
        "#policy-form [data-lock='data_handling.ksn_statement_accepted']",
    ] {
        click(&client, css).await;
    }
    confirm_and_reload(&client, "#save-policy", "It reaches 2 devices").await;
    // A second save: the schedule.
    click(&client, "#policy-form [data-set='task.schedule']").await;
    choose(
        &client,
        "#policy-form [data-value='task.schedule']",
        "at_application_start",
    )
    .await;
    confirm_and_reload(&client, "#save-policy", "Servers baseline").await;
    // A profile for the web servers.
    type_into(&client, "#profile-form input[name=profile_name]", "Web").await;
    type_into(&client, "#profile-form input[name=tags]", "web").await;
    click(&client, "#profile-form [data-set='task.checksum_limit_mb']").await;
    choose(
        &client,
        "#profile-form [data-value='task.checksum_limit_mb']",
        "16",
    )
    .await;
    click_and_reload(&client, "#save-profile").await;
    assert!(text(&client, "tr[data-profile-row='Web']")
        .await
        .contains("web"));
    // Revisions 2 and 3 compared, then 1 and 2: the acceptance with its statement's version.
    choose(&client, "#compare select[name=a]", "2").await;
    choose(&client, "#compare select[name=b]", "3").await;
    click_and_reload(&client, "#compare button").await;
    let diff = text(&client, "#diff").await;
    assert!(
        diff.contains("task.schedule") && !diff.contains("ksn_statement_accepted"),
        "{diff}"
    );
    choose(&client, "#compare select[name=a]", "1").await;
    choose(&client, "#compare select[name=b]", "2").await;
    click_and_reload(&client, "#compare button").await;
    let diff = text(&client, "#diff").await;
    assert!(
        diff.contains("ksn_statement_accepted: not set → true (locked; private_ksn v"),
        "{diff}"
    );
    screenshot("console-policy.png", client.screenshot().await.unwrap());

    // The story. Device 0: accepted, locked by the policy; the task starts: OK.
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    let padlock = text(
        &client,
        "[data-lock-of='data_handling.ksn_statement_accepted']",
    )
    .await;
    assert!(
        padlock.contains("Servers baseline") && padlock.contains("revision"),
        "{padlock}"
    );
    assert!(text(&client, "#statement-title")
        .await
        .contains("Private Security Network"));
    for category in client
        .find_all(Locator::Css("[data-category]"))
        .await
        .unwrap()
    {
        assert_eq!(
            category.attr("class").await.unwrap().as_deref(),
            Some("unavailable")
        );
    }
    click_and_reload(&client, "form[data-step*='\"start\"'] button").await;
    assert_eq!(text(&client, "#task-state").await, "running");
    assert!(text(&client, "#device-status").await.contains("OK"));
    screenshot(
        "console-data-handling.png",
        client.screenshot().await.unwrap(),
    );
    // The fleet's consent: the acceptance in force through alice's policy.
    client
        .goto(&format!("{base}/consent?group=Servers"))
        .await
        .unwrap();
    let consent = text(&client, "#consent").await;
    assert!(
        consent.contains("alice (through the console): policy \"Servers baseline\", revision 2"),
        "{consent}"
    );
    screenshot("console-consent.png", client.screenshot().await.unwrap());

    // Private KSN switched off under the task: it stops with license_violation, Critical.
    client.goto(&format!("{base}/server")).await.unwrap();
    confirm_and_reload(
        &client,
        "form[data-step*='set_private_ksn'] button",
        "license_violation",
    )
    .await;
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    assert_eq!(text(&client, "#task-error").await, "license_violation");
    assert!(text(&client, "#device-status").await.contains("Critical"));
    // The lock of the Private KSN acceptance is not in force in Global mode: no padlock.
    assert!(client
        .find(Locator::Css(
            "[data-lock-of='data_handling.ksn_statement_accepted']"
        ))
        .await
        .is_err());
    client.goto(&format!("{base}/devices")).await.unwrap();
    assert_eq!(text(&client, "#count-critical").await, "1");
    screenshot("console-devices.png", client.screenshot().await.unwrap());

    // The Global statement accepted in the Data handling window, the task restarted: OK.
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
    assert!(text(&client, "#consent-history")
        .await
        .contains("private_ksn"));

    // The consent now: the Private KSN statement out of force with the mode, the Global
    // one accepted in the window, each by alice.
    client
        .goto(&format!("{base}/consent?group=Servers"))
        .await
        .unwrap();
    let consent = text(&client, "#consent").await;
    assert!(
        consent.contains("alice (through the console): local"),
        "{consent}"
    );
    assert!(consent.contains("mode change"), "{consent}");
    assert!(text(&client, "#consent-totals")
        .await
        .contains("private_ksn"));

    // The events, filtered with the form's empty fields, in words; the actions, alice's.
    client.goto(&format!("{base}/events")).await.unwrap();
    click_and_reload(&client, "#event-filter button").await;
    let events = text(&client, "#events").await;
    assert!(
        events.contains("license_violation") && events.contains("alice"),
        "{events}"
    );
    client.goto(&format!("{base}/actions")).await.unwrap();
    let actions = text(&client, "#actions").await;
    assert!(
        actions.contains("create_policy \"Servers baseline\"") && actions.contains("alice"),
        "{actions}"
    );

    // ada, an auditor, reads every page and is refused a change.
    client.goto(&format!("{base}/?token={ada}")).await.unwrap();
    assert!(text(&client, "#signed-in").await.contains("auditor"));
    client.goto(&format!("{base}/devices/0")).await.unwrap();
    click(&client, "form[data-step*='\"stop\"'] button").await;
    let started = Instant::now();
    let refused = loop {
        let answer = client
            .execute("const a = document.getElementById('answer'); return a.className + ':' + a.textContent", vec![])
            .await
            .unwrap();
        let answer = answer.as_str().unwrap_or("").to_string();
        if answer.starts_with("error:") {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no refusal: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.contains("auditor"), "{refused}");
    assert_eq!(
        text(&client, "#task-state").await,
        "running",
        "nothing changed"
    );
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `host-sim serve` over a real socket: without the token, with a wrong CSRF token, or
/// under another host name, refused, each with a page that says what to do; with the
/// token it prints, a change is answered once saved and delivered in the background.
/// (The router's every answer is tested in-process: tests/console_router.rs.)
#[test]
fn serve_guards_its_socket_and_delivers_in_the_background() {
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
