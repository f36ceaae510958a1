//! `host-sim serve`: the simulated Administration Server's Web Console. Its pages are
//! generated from the loaded plugin's `describe`, so any plugin of the contract gets them
//! without a change here; every page action is a JSON API call (`api.rs`, documented by
//! its OpenAPI document), and every change is a scenario step run by the same console
//! the text shell is (`Shell::execute`), so the task's own rules apply unchanged.
//!
//! No one in who does not belong (`guard.rs`): loopback unless told otherwise, a random
//! access token printed at start (then kept in a cookie), a CSRF token on every change,
//! and the Host and Origin headers checked against DNS rebinding.

mod api;
mod guard;
pub mod listen;
mod pages;
pub mod people;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::{routing::get, routing::post, Router};

use crate::shell::Shell;
pub use crate::views::{sample, Sample, SERVICES};
use admin_server::Status;

/// Each device's status and the reasons for it.
pub type Statuses = Arc<Vec<(Status, Vec<String>)>>;

/// How many devices a share of a background delivery reaches: the console's lock is
/// held for one share at a time, so pages and changes go on meanwhile.
pub const DELIVERY_SHARE: usize = 500;

pub struct Console {
    shell: Mutex<Shell>,
    /// Woken when a change queued a delivery.
    deliveries: (Mutex<bool>, std::sync::Condvar),
    /// Each device's status and reasons, as of the last change (a page of 100,000
    /// devices counts them without asking every task again).
    statuses: Mutex<Statuses>,
    history: Mutex<Vec<Sample>>,
    /// Who may sign in, and as what.
    pub auth: people::Auth,
    /// The administrators' actions through the console.
    pub actions: people::Actions,
    pub csrf: String,
    /// The Host header values a request may carry (`127.0.0.1:PORT`, `localhost:PORT`, ...).
    pub hosts: Vec<String>,
}

impl Console {
    /// The console over `shell`; the host database (if any) is read here, so this runs
    /// off the async threads.
    pub fn new(
        mut shell: Shell,
        auth: people::Auth,
        csrf: String,
        hosts: Vec<String>,
    ) -> Arc<Self> {
        // A change is answered once it is saved; the devices get it in the background.
        shell.world_mut().deliveries.background = true;
        let actions = people::Actions::new(
            shell
                .world()
                .database
                .as_ref()
                .map(|db| (&db.store, db.host.as_str())),
        );
        let console = Arc::new(Self {
            shell: Mutex::new(shell),
            deliveries: (Mutex::new(false), std::sync::Condvar::new()),
            statuses: Mutex::new(Arc::new(Vec::new())),
            history: Mutex::new(Vec::new()),
            auth,
            actions,
            csrf,
            hosts,
        });
        console.changed();
        let worker = Arc::downgrade(&console);
        std::thread::Builder::new()
            .name("deliveries".into())
            .spawn(move || deliver_in_the_background(worker))
            .expect("a thread for deliveries");
        console
    }

    /// The server's host database, if it has one.
    fn database(&self) -> Option<(Arc<crate::storage::HostStore>, String)> {
        let shell = self.shell();
        shell
            .world()
            .database
            .as_ref()
            .map(|db| (db.store.clone(), db.host.clone()))
    }

    /// Keeps an administrator's action (in the host database first, when there is one).
    pub fn record_action(&self, row: crate::storage::ActionRow) -> Result<(), String> {
        let db = self.database();
        self.actions
            .record(db.as_ref().map(|(s, h)| (s, h.as_str())), row)
    }

    /// The administrators' actions, newest first.
    pub fn action_rows(&self, limit: usize) -> Result<Vec<crate::storage::ActionRow>, String> {
        let db = self.database();
        self.actions
            .list(db.as_ref().map(|(s, h)| (s, h.as_str())), limit)
    }

    /// Wakes the delivery thread: a change may have queued a delivery.
    pub fn deliver(&self) {
        *self.deliveries.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.deliveries.1.notify_one();
    }

    /// Delivers, a share at a time, until nothing waits; whether something was delivered.
    pub fn deliver_pending(&self) -> bool {
        let mut any = false;
        loop {
            let more = {
                let mut shell = self.shell();
                let world = shell.world_mut();
                if world.deliveries.is_idle() {
                    break;
                }
                any = true;
                world.deliver_some(DELIVERY_SHARE)
            };
            self.changed();
            if !more {
                break;
            }
        }
        any
    }

    pub fn shell(&self) -> MutexGuard<'_, Shell> {
        self.shell.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn statuses(&self) -> Statuses {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn history(&self) -> Vec<Sample> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a change: the statuses of the devices it touched again (every device's at
    /// first, or after time passed), and a sample of what the services received.
    pub fn changed(&self) {
        let mut shell = self.shell();
        let touched = shell.world_mut().take_touched();
        let world = shell.world();
        let mut statuses = self.statuses();
        match touched {
            Some(devices) if statuses.len() == world.devices.len() => {
                if !devices.is_empty() {
                    let all = Arc::make_mut(&mut statuses);
                    for i in devices {
                        all[i] = world.status_of(i);
                    }
                }
            }
            _ => {
                statuses = Arc::new(
                    (0..world.devices.len())
                        .map(|i| world.status_of(i))
                        .collect(),
                );
            }
        }
        let sample = sample(world);
        drop(shell);
        *self.statuses.lock().unwrap_or_else(|e| e.into_inner()) = statuses;
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history
            .last()
            .is_some_and(|last| last.time_ms == sample.time_ms)
        {
            history.pop();
        }
        history.push(sample);
    }
}

/// The delivery thread: waits for a change that queued a delivery, delivers it, and ends
/// with the console.
fn deliver_in_the_background(console: std::sync::Weak<Console>) {
    loop {
        let Some(c) = console.upgrade() else {
            return;
        };
        {
            let (woken, bell) = &c.deliveries;
            let mut woken = woken.lock().unwrap_or_else(|e| e.into_inner());
            while !*woken {
                let (guard, timeout) = bell
                    .wait_timeout(woken, std::time::Duration::from_millis(500))
                    .unwrap_or_else(|e| e.into_inner());
                woken = guard;
                if timeout.timed_out() && std::sync::Arc::strong_count(&c) == 1 {
                    return;
                }
            }
            *woken = false;
        }
        c.deliver_pending();
    }
}

/// The console's routes, behind the guard.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/devices", get(pages::devices))
        .route("/devices/{id}", get(pages::device))
        .route("/policies", get(pages::policies))
        .route("/events", get(pages::events))
        .route("/server", get(pages::server))
        .route("/groups", get(pages::groups))
        .route("/consent", get(pages::consent))
        .route("/actions", get(pages::actions))
        .route("/assets/console.css", get(pages::style))
        .route("/assets/console.js", get(pages::script))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/describe", get(api::describe))
        .route("/api/devices", get(api::devices))
        .route("/api/devices/{id}", get(api::device))
        .route("/api/devices/{id}/audit", get(api::audit))
        .route("/api/groups", get(api::groups))
        .route("/api/policies", get(api::policies))
        .route("/api/events", get(api::events))
        .route("/api/server", get(api::server))
        .route("/api/deliveries", get(api::deliveries))
        .route("/api/consent", get(api::consent))
        .route("/api/actions", get(api::actions))
        .route("/api/me", get(api::me))
        .route("/api/diff", get(api::diff))
        .route("/api/steps", post(api::step))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn(guard::errors))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(console)
}

/// Where to listen, and how to introduce the console.
pub struct Options {
    pub bind: std::net::IpAddr,
    pub port: u16,
    pub limits: listen::Limits,
}

/// A random token of 128 bits, as hexadecimal.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the access token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serves the console until the process ends; `ready` gets the URL to open (with the
/// access token) once it listens.
pub fn serve(shell: Shell, options: Options, ready: impl FnOnce(&str)) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    // (The host database is read synchronously: before the runtime runs, and in the
    // guard off its threads.)
    let token = random_token()?;
    let store = shell.world().database.as_ref().map(|db| db.store.clone());
    let auth = people::Auth::for_store(store.as_ref(), token.clone())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(options.bind, options.port))
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on {}:{}: {e} (choose another --port)",
                    options.bind, options.port
                )
            })?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("cannot read the address listened on: {e}"))?;
        let port = address.port();
        let mut hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        if !options.bind.is_loopback() && !options.bind.is_unspecified() {
            hosts.push(format!("{}:{port}", options.bind));
        }
        let named = auth.named_users();
        let csrf = random_token()?;
        let console = tokio::task::block_in_place(|| Console::new(shell, auth, csrf, hosts));
        if named {
            ready(&format!("http://127.0.0.1:{port}/?token=YOUR-TOKEN"));
        } else {
            ready(&format!("http://127.0.0.1:{port}/?token={token}"));
        }
        listen::serve(listener, router(console), options.limits).await;
        Ok(())
    })
}
