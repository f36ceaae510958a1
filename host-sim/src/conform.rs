//! `host-sim conform`: the contract conformance check any plugin must pass. It loads the
//! plugin, calls every method of the contract, reads every document it answers as the
//! contract's type, and checks the behaviour every host relies on: the settings it
//! describes are the ones it shows, their schemas hold its defaults, a refused operation
//! changes nothing, events arrive in order and are the task log, and the log and the
//! settings survive a restart through the host's storage. Then the rules of consent every
//! host relies on: a released lock restores nothing, in either mode; no restart brings
//! back a withdrawal's narrowing over a host that keeps no events; and what a call caused
//! is in its answer (a scheduled start refused, a start before the licence is reported, a
//! lookup on a task that is not running). A check whose subject the plugin does not have
//! (no Global-KSN box, no schedule) says "not applicable" and why. Each call runs under the
//! watchdog, so a plugin that hangs fails a check instead of the host.

use std::time::Duration;

use std::sync::Arc;

use plugin_api::{
    abi_stable::sabi_trait::TD_Opaque,
    documents::{
        read_document, Counters, Event, LedgerItem, LedgerPage, LogEntry, LogPage,
        PluginDescription, SettingRole, SettingsView, ValueType,
    },
    loader::Plugin,
    AnswerSource, ErrorKind, FileQuery, HostServices_TO, KsnTaskBox, LicenseState, TaskError,
    TaskState, Verdict,
};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use crate::world::{Device, DeviceHost, Setup, World};

/// One check: its name, whether it held, and why not. A check whose subject the plugin
/// does not have is not applicable: it holds, and says so (`applicable` false).
#[derive(Serialize, Debug, Clone)]
pub struct Check {
    pub check: &'static str,
    pub passed: bool,
    pub applicable: bool,
    pub reason: String,
}

/// What a check answers that does not apply to this plugin starts with this.
const NOT_APPLICABLE: &str = "not applicable: ";

#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub plugin: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

type Outcome = Result<String, String>;

/// Runs every check on `plugin`, each call into it given `deadline`.
pub fn run(plugin: Plugin, deadline: Duration) -> Report {
    let mut checks = Vec::new();
    let mut check = |name: &'static str, outcome: Outcome| {
        let (passed, reason) = match outcome {
            Ok(note) => (true, note),
            Err(reason) => (false, reason),
        };
        checks.push(Check {
            check: name,
            passed,
            applicable: !reason.starts_with(NOT_APPLICABLE),
            reason,
        });
    };
    let description = plugin.describe().map_err(|e| e.to_string());
    check(
        "describes itself",
        description
            .as_ref()
            .map(|d| {
                format!(
                    "{} settings, {} statements",
                    d.settings.len(),
                    d.statements.len()
                )
            })
            .map_err(Clone::clone),
    );
    if let Ok(description) = &description {
        check(
            "its schemas hold its defaults",
            schemas_hold_defaults(description),
        );
    }
    let setup = Setup {
        watchdog: Some(deadline),
        // It reads every event (`events`), and runs no step that would report them.
        report_events: false,
        ..Setup::new(1)
    };
    // The rules of consent, each on a world of its own (a fresh device over fresh
    // storage), so that no earlier check's policy or state decides them.
    let fresh = |host_keeps_events: bool| {
        World::new(
            plugin,
            &Setup {
                watchdog: Some(deadline),
                report_events: false,
                host_keeps_events,
                ..Setup::new(1)
            },
        )
    };
    let mut world = match World::new(plugin, &setup) {
        Ok(world) => world,
        Err(e) => {
            check("creates a task", Err(e));
            return report(plugin, checks);
        }
    };
    check("creates a task", Ok(String::new()));
    check("answers every method", every_method(&world));
    // The rest needs to know the plugin's settings.
    let Ok(description) = description else {
        return report(plugin, checks);
    };
    check(
        "shows the settings it describes",
        shows_described(&world, &description),
    );
    check(
        "an acceptance names what was read",
        versioned_acceptance(&mut world, &description),
    );
    check(
        "accepts by policy and starts",
        accepts_and_starts(&mut world, &description),
    );
    check(
        "a refused change changes nothing",
        refusal_changes_nothing(&mut world, &description),
    );
    check("events arrive in order, as logged", events_in_order(&world));
    check("the log survives a restart", survives_restart(&mut world));
    check(
        "a released lock restores nothing, in either mode",
        released_lock_restores_nothing(&fresh, &description),
    );
    check(
        "no restart brings back a withdrawal (host keeps no events)",
        withdrawal_survives_restart(&fresh, &description),
    );
    check(
        "what a call caused is in its answer",
        calls_answer_what_they_caused(&fresh, plugin, &description),
    );
    report(plugin, checks)
}

fn report(plugin: Plugin, checks: Vec<Check>) -> Report {
    Report {
        plugin: format!("{} {}", plugin.info.name, plugin.info.version),
        checks,
    }
}

/// One call on the device, under the watchdog; a panic or a missing method is a failure.
fn call<T: Send + 'static>(
    world: &World,
    method: &'static str,
    f: impl Fn(&KsnTaskBox) -> Result<T, TaskError> + Send + Sync + Clone + 'static,
) -> Result<Result<T, TaskError>, String> {
    let result = world
        .each(move |d| Ok(f(&d.task)))
        .remove(0)
        .map_err(|e| format!("{method}: {e}"))?;
    match &result {
        Err(e) if e.kind == ErrorKind::PLUGIN_PANIC => Err(format!("{method} panicked: {e}")),
        Err(e) if e.kind == ErrorKind::NOT_IMPLEMENTED => Err(format!("{method}: {e}")),
        _ => Ok(result),
    }
}

/// A document a method answered, read as the contract's type.
fn document<T: serde::de::DeserializeOwned + Send + 'static>(
    world: &World,
    method: &'static str,
    f: impl Fn(&KsnTaskBox) -> Result<String, TaskError> + Send + Sync + Clone + 'static,
) -> Result<T, String> {
    let text = call(world, method, move |t| f(t))?.map_err(|e| format!("{method}: {e}"))?;
    read_document(method, &text).map_err(|e| e.to_string())
}

fn settings(world: &World) -> Result<SettingsView, String> {
    document(world, "settings_json", |t| {
        t.settings_json().into_result().map(String::from)
    })
}

fn log(world: &World) -> Result<Vec<LogEntry>, String> {
    document(world, "task_log_json", |t| {
        t.task_log_json().into_result().map(String::from)
    })
}

/// The schemas compile, and a document of every default validates against each.
fn schemas_hold_defaults(description: &PluginDescription) -> Outcome {
    let mut local = Map::new();
    for setting in &description.settings {
        local
            .entry(setting.section().to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("a section that is not an object")?
            .insert(setting.key().to_string(), setting.default.clone());
    }
    let local = Json::Object(local);
    let policy = json!({ "settings": local.clone() });
    for (name, schema, instance) in [
        ("policy", &description.policy_schema, &policy),
        ("local-change", &description.local_schema, &local),
    ] {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| format!("the {name} schema does not compile: {e}"))?;
        let first = validator
            .iter_errors(instance)
            .next()
            .map(|error| format!("{error} at {}", error.instance_path));
        if let Some(error) = first {
            return Err(format!(
                "the defaults do not validate against the {name} schema: {error}"
            ));
        }
        // A schema tied to the settings list admits nothing it does not describe, so a
        // host validating with it refuses what the plugin would refuse.
        for (path, extra) in undescribed(instance, name == "policy") {
            if validator.is_valid(&extra) {
                return Err(format!(
                    "the {name} schema admits {path}, which is not among the settings described"
                ));
            }
        }
    }
    Ok(format!(
        "{} defaults; nothing undescribed admitted",
        description.settings.len()
    ))
}

/// `instance` with one undescribed key added: in its first section, and as a section of
/// its own (below `settings` for a policy).
fn undescribed(instance: &Json, policy: bool) -> Vec<(String, Json)> {
    const NAME: &str = "not_a_described_setting";
    let with = |section: Option<&str>| {
        let mut doc = instance.clone();
        let sections = if policy {
            doc.get_mut("settings")
        } else {
            Some(&mut doc)
        };
        if let Some(Json::Object(sections)) = sections {
            match section {
                Some(section) => {
                    if let Some(Json::Object(keys)) = sections.get_mut(section) {
                        keys.insert(NAME.into(), json!(true));
                    }
                }
                None => {
                    sections.insert(NAME.into(), json!({}));
                }
            }
        }
        doc
    };
    let sections = if policy {
        instance.get("settings")
    } else {
        Some(instance)
    };
    let first = sections
        .and_then(Json::as_object)
        .and_then(|m| m.keys().next().cloned());
    let mut out = vec![(NAME.to_string(), with(None))];
    if let Some(section) = first {
        out.push((format!("{section}.{NAME}"), with(Some(&section))));
    }
    out
}

/// Every method of the contract answers: a value, or an error of the contract's kinds.
fn every_method(world: &World) -> Outcome {
    let query = FileQuery {
        md5: [7; 16],
        size_bytes: 10,
    };
    // Each answers a value or an error of the contract's kinds; which does not matter here.
    let _ = call(world, "push_policy", |t| {
        t.push_policy("{}".into()).into_result()
    })?;
    let _ = call(world, "set_local", |t| {
        t.set_local("{}".into()).into_result()
    })?;
    let _ = call(world, "set_private_ksn", |t| {
        t.set_private_ksn(false).into_result()
    })?;
    let _ = call(world, "set_license", |t| {
        t.set_license(LicenseState::VALID).into_result()
    })?;
    let _ = call(world, "application_started", |t| {
        t.application_started().into_result()
    })?;
    let _ = call(world, "start", |t| t.start().into_result())?;
    let _ = call(world, "status", |t| Ok(t.status()))?;
    let _ = call(world, "check_file", move |t| {
        t.check_file(query).into_result()
    })?;
    let _ = call(world, "check_url", |t| {
        t.check_url("https://conform.example/".into()).into_result()
    })?;
    let _ = call(world, "tick", |t| t.tick().into_result())?;
    let _ = call(world, "purge_cache", |t| t.purge_cache().into_result())?;
    let _ = call(world, "stop", |t| t.stop().into_result())?;
    settings(world)?;
    log(world)?;
    document::<Vec<LedgerItem>>(world, "ledger_json", |t| {
        t.ledger_json().into_result().map(String::from)
    })?;
    document::<Counters>(world, "counters_json", |t| {
        t.counters_json().into_result().map(String::from)
    })?;
    document::<LogPage>(world, "task_log_page", |t| {
        t.task_log_page(0, 10).into_result().map(String::from)
    })?;
    document::<LedgerPage>(world, "ledger_page", |t| {
        t.ledger_page(0, 10).into_result().map(String::from)
    })?;
    Ok("every method answered; every document has the contract's shape".into())
}

/// The settings view holds exactly the described settings; a fresh value is its default.
fn shows_described(world: &World, description: &PluginDescription) -> Outcome {
    let view = settings(world)?;
    for setting in &description.settings {
        let shown = view
            .setting(&setting.path)
            .ok_or_else(|| format!("{} is described but not shown", setting.path))?;
        if setting.role != SettingRole::Statement
            && shown.source == plugin_api::documents::Source::Default
            && shown.value != setting.default
        {
            return Err(format!(
                "{} shows {} by default; its description says {}",
                setting.path, shown.value, setting.default
            ));
        }
    }
    if let Some(extra) = view.paths().find(|p| description.setting(p).is_none()) {
        return Err(format!("{extra} is shown but not described"));
    }
    Ok(format!("{} settings", description.settings.len()))
}

/// The acceptance box, by the description: the first statement setting.
fn acceptance_box(description: &PluginDescription) -> Result<(&str, &str), String> {
    description
        .settings
        .iter()
        .find(|s| s.role == SettingRole::Statement)
        .map(|s| (s.section(), s.key()))
        .ok_or_else(|| "no statement setting is described".to_string())
}

/// A plugin whose acceptance boxes name the statements they accept (`accepts`) refuses a
/// policy's acceptance without versions (`invalid_settings`), and does not take one of a
/// version it does not ship.
fn versioned_acceptance(world: &mut World, description: &PluginDescription) -> Outcome {
    let Some(setting) = description.settings.iter().find(|s| !s.accepts.is_empty()) else {
        return Ok(
            "its acceptance boxes name no statements (a plugin older than 1.3.0): nothing to check"
                .into(),
        );
    };
    let (section, key) = (setting.section(), setting.key());
    let before = settings(world)?;
    let unversioned =
        json!({"settings": {section: {key: {"value": true, "locked": true}}}}).to_string();
    match call(world, "push_policy", move |t| {
        t.push_policy(unversioned.as_str().into()).into_result()
    })? {
        Err(e) if e.kind == ErrorKind::INVALID_SETTINGS && e.message.contains(setting.path.as_str()) => {}
        other => {
            return Err(format!(
                "a policy's acceptance without versions: expected invalid_settings naming {}, got {other:?}",
                setting.path
            ))
        }
    }
    if settings(world)? != before {
        return Err("a refused policy changed the settings".into());
    }
    let Some(statement) = setting.statement_in_mode(false) else {
        return Ok("unversioned acceptance refused".into());
    };
    let shown = description
        .statement(statement)
        .map_or(1, |s| s.version)
        .saturating_add(1000);
    let stale = json!({"settings": {section: {key: {"value": true, "versions": {statement.as_str(): shown}}}}})
        .to_string();
    call(world, "push_policy", move |t| {
        t.push_policy(stale.as_str().into()).into_result()
    })?
    .map_err(|e| format!("a policy accepting an unknown version was refused ({e}); it should be taken, and not be in force"))?;
    let view = settings(world)?;
    let value = view.setting(&setting.path).map(|v| v.value.clone());
    if value != Some(json!(false)) {
        return Err(format!(
            "an acceptance of {} version {shown}, which the plugin does not ship, is in force: {} reads {value:?}",
            statement.as_str(),
            setting.path
        ));
    }
    Ok(format!(
        "{}: unversioned refused, version {shown} not in force",
        setting.path
    ))
}

fn accepts_and_starts(world: &mut World, description: &PluginDescription) -> Outcome {
    let (section, key) = acceptance_box(description)?;
    // As the policy editor saves it: with the version of the statement shown.
    let policy = admin_server::editor::stamp(
        &json!({"settings": {section: {key: {"value": true, "locked": true}}}}),
        &[description],
        admin_server::editor::one_mode(world.private_ksn()),
    )
    .to_string();
    call(world, "push_policy", move |t| {
        t.push_policy(policy.as_str().into()).into_result()
    })?
    .map_err(|e| format!("a policy accepting the statement was refused: {e}"))?;
    call(world, "start", |t| t.start().into_result())?
        .map_err(|e| format!("start after acceptance was refused: {e}"))?;
    let state = call(world, "status", |t| Ok(t.status()))?.map_err(|e| e.to_string())?;
    if state.state != TaskState::RUNNING {
        return Err(format!("started, but status says {}", state.state));
    }
    Ok(format!("{section}.{key} accepted and locked; running"))
}

fn refusal_changes_nothing(world: &mut World, description: &PluginDescription) -> Outcome {
    let (section, key) = acceptance_box(description)?;
    let before = settings(world)?;
    let state_before = call(world, "status", |t| Ok(t.status()))?.map_err(|e| e.to_string())?;
    let locked = json!({section: {key: false}}).to_string();
    let refused = call(world, "set_local", move |t| {
        t.set_local(locked.as_str().into()).into_result()
    })?;
    match refused {
        Err(e) if e.kind == ErrorKind::LOCKED_BY_POLICY => {}
        other => {
            return Err(format!(
                "a local change to a locked setting: expected locked_by_policy, got {other:?}"
            ))
        }
    }
    let malformed = call(world, "set_local", |t| {
        t.set_local(r#"{"no such section": {"x": 1}}"#.into())
            .into_result()
    })?;
    match malformed {
        Err(e) if e.kind == ErrorKind::INVALID_SETTINGS && e.message.contains(':') => {}
        other => {
            return Err(format!(
                "an unknown section: expected invalid_settings naming the place, got {other:?}"
            ))
        }
    }
    let after = settings(world)?;
    let state_after = call(world, "status", |t| Ok(t.status()))?.map_err(|e| e.to_string())?;
    if before != after || state_before != state_after {
        return Err("a refused change changed the settings or the state".into());
    }
    Ok("locked_by_policy and invalid_settings; nothing changed".into())
}

fn events_in_order(world: &World) -> Outcome {
    let device = &world.devices[0];
    let mut events = Vec::new();
    for text in device.state.events() {
        events.push(read_document::<LogEntry>("emit_event", &text).map_err(|e| e.to_string())?);
    }
    if events.is_empty() {
        return Err("no events were emitted".into());
    }
    if let Some(pair) = events.windows(2).find(|w| w[1].seq <= w[0].seq) {
        return Err(format!(
            "event {} came after event {}",
            pair[1].seq, pair[0].seq
        ));
    }
    let logged: Vec<u64> = log(world)?.iter().map(|e| e.seq).collect();
    if let Some(missing) = events.iter().find(|e| !logged.contains(&e.seq)) {
        return Err(format!("event {} is not in the task log", missing.seq));
    }
    Ok(format!(
        "{} events, numbered in order, all in the log",
        events.len()
    ))
}

fn survives_restart(world: &mut World) -> Outcome {
    let before_log = log(world)?;
    let before_settings = settings(world)?;
    world
        .restart_host(None)
        .remove(0)
        .map_err(|e| format!("the task could not be created again: {e}"))?;
    let after_log = log(world)?;
    for entry in &before_log {
        if !after_log.contains(entry) {
            return Err(format!("log entry {} was lost", entry.seq));
        }
    }
    let after_settings = settings(world)?;
    let values = |v: &SettingsView| {
        v.details
            .iter()
            .map(|(p, s)| (p.clone(), s.value.clone()))
            .collect::<Vec<_>>()
    };
    if values(&before_settings) != values(&after_settings) {
        return Err("the settings changed across the restart".into());
    }
    Ok(format!(
        "{} entries and every setting kept",
        before_log.len()
    ))
}

/// The effective value of `path` on the world's device.
fn value(world: &World, path: &str) -> Result<Json, String> {
    settings(world)?
        .setting(path)
        .map(|s| s.value.clone())
        .ok_or_else(|| format!("{path} is not shown"))
}

/// A control call whose answer the check reads (the call's own error included).
fn control(
    world: &World,
    method: &'static str,
    f: impl Fn(&KsnTaskBox) -> Result<(), TaskError> + Send + Sync + Clone + 'static,
) -> Result<Result<(), TaskError>, String> {
    call(world, method, f)
}

fn push(world: &World, policy: String) -> Result<(), String> {
    control(world, "push_policy", move |t| {
        t.push_policy(policy.as_str().into()).into_result()
    })?
    .map_err(|e| format!("push_policy was refused: {e}"))
}

fn set_private_ksn(world: &World, enabled: bool) -> Result<(), String> {
    control(world, "set_private_ksn", move |t| {
        t.set_private_ksn(enabled).into_result()
    })?
    .map_err(|e| format!("set_private_ksn({enabled}) was refused: {e}"))
}

fn set_local(world: &World, change: Json) -> Result<Result<(), TaskError>, String> {
    let change = change.to_string();
    control(world, "set_local", move |t| {
        t.set_local(change.as_str().into()).into_result()
    })
}

fn running(world: &World) -> Result<bool, String> {
    let status = call(world, "status", |t| Ok(t.status()))?.map_err(|e| e.to_string())?;
    Ok(status.state == TaskState::RUNNING)
}

/// A lock pushed and released (by a policy that does not name the setting), in either
/// mode and across a switch of mode, leaves the value it enforced: nothing from before it
/// comes back, and no record says the category was accepted again.
fn released_lock_restores_nothing(
    fresh: &impl Fn(bool) -> Result<World, String>,
    description: &PluginDescription,
) -> Outcome {
    let Some(category) = description
        .settings
        .iter()
        .find(|s| s.role == SettingRole::GlobalOnly && s.value_type == ValueType::Boolean)
    else {
        return Ok(format!(
            "{NOT_APPLICABLE}the plugin describes no Global-KSN category box (a boolean of role global_only)"
        ));
    };
    let (section, key) = (category.section(), category.key());
    let acceptance = acceptance_box(description).ok();
    // The statement accepted too, in Global KSN mode where the plugin can, so that a
    // category accepted again would be recorded.
    let policy = |lock: bool, private_ksn: bool| {
        let mut settings = json!({});
        if let (Some((s, k)), false) = (acceptance, private_ksn) {
            settings[s] = json!({ k: {"value": true} });
        }
        if lock {
            settings[section][key] = json!({"value": false, "locked": true});
        }
        admin_server::editor::stamp(
            &json!({ "settings": settings }),
            &[description],
            admin_server::editor::one_mode(private_ksn),
        )
        .to_string()
    };
    let mode = |private: bool| if private { "Private KSN" } else { "Global KSN" };
    for (pushed, released) in [(false, false), (true, true), (false, true), (true, false)] {
        let world = fresh(true)?;
        if pushed {
            set_private_ksn(&world, true)?;
        }
        push(&world, policy(true, pushed))?;
        if released != pushed {
            set_private_ksn(&world, released)?;
        }
        let before = world.devices[0].state.events().len();
        push(&world, policy(false, released))?;
        if released {
            set_private_ksn(&world, false)?;
        }
        let shown = value(&world, &category.path)?;
        if shown != json!(false) {
            return Err(format!(
                "{}: locked to false in {} mode and released in {} mode, it reads {shown} in Global KSN mode: the value from before the lock came back",
                category.path,
                mode(pushed),
                mode(released)
            ));
        }
        for text in &world.devices[0].state.events()[before..] {
            let entry = read_document::<LogEntry>("emit_event", text).map_err(|e| e.to_string())?;
            if let Event::ConsentChanged {
                accepted: true,
                category: Some(accepted),
                ..
            } = entry.event
            {
                return Err(format!(
                    "releasing the lock on {} recorded an acceptance of {accepted} (log #{}) that no one gave",
                    category.path, entry.seq
                ));
            }
        }
    }
    Ok(format!(
        "{}: locked to false and released, in each mode and across a switch of mode: still false, no acceptance recorded",
        category.path
    ))
}

/// Over a host that keeps no events: the statement accepted, then withdrawn while storage
/// refuses writes; the host restarts before storage works again and after. The withdrawal
/// holds each time (or the task is not created while nothing could show it), and the task
/// does not start.
fn withdrawal_survives_restart(
    fresh: &impl Fn(bool) -> Result<World, String>,
    description: &PluginDescription,
) -> Outcome {
    let Ok((section, key)) = acceptance_box(description) else {
        return Ok(format!(
            "{NOT_APPLICABLE}the plugin describes no acceptance box"
        ));
    };
    let path = format!("{section}.{key}");
    let mut world = fresh(false)?;
    set_local(&world, json!({ section: { key: true } }))?
        .map_err(|e| format!("a local acceptance was refused: {e}"))?;
    world.set_storage(false);
    match set_local(&world, json!({ section: { key: false } }))? {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::STORAGE_ERROR => {}
        Err(e) => {
            return Err(format!(
                "a withdrawal while storage refuses writes was refused: {e}"
            ))
        }
    }
    if value(&world, &path)? != json!(false) {
        return Err(format!(
            "a withdrawal while storage refuses writes did not take effect: {path} still reads true"
        ));
    }
    // Before storage works again: created, it must hold the withdrawal; or not created.
    let created = world.restart_host(None).remove(0);
    if let Ok(shown) = value(&world, &path) {
        if shown != json!(false) {
            return Err(format!(
                "restarted while storage refused writes, over a host that keeps no events: {path} reads {shown}; the withdrawal was lost ({created:?})"
            ));
        }
    }
    world.set_storage(true);
    world
        .restart_host(None)
        .remove(0)
        .map_err(|e| format!("once storage works again, the task could not be created: {e}"))
        .or_else(|e| match e.contains("scheduled start") {
            true => Ok(crate::world::Answer::Done),
            false => Err(e),
        })?;
    let shown = value(&world, &path)?;
    if shown != json!(false) {
        return Err(format!(
            "restarted once storage worked again, over a host that keeps no events: {path} reads {shown}; the withdrawal was lost"
        ));
    }
    let _ = control(&world, "start", |t| t.start().into_result())?;
    if running(&world)? {
        return Err(format!(
            "after the restarts the task started though {path} was withdrawn"
        ));
    }
    Ok(format!(
        "{path} withdrawn while storage refused writes; restarted before and after it worked again: still withdrawn, start refused"
    ))
}

/// A scheduled start refused answers the refusal; a start before the licence is reported
/// in a session is refused (`invalid_state`); a lookup on a task that is not running says
/// so (`not_running`), not a KSN outage.
fn calls_answer_what_they_caused(
    fresh: &impl Fn(bool) -> Result<World, String>,
    plugin: Plugin,
    description: &PluginDescription,
) -> Outcome {
    let (mut held, mut broken) = (Vec::new(), Vec::new());
    let schedule = description.setting("task.schedule").filter(|s| {
        matches!(&s.value_type, ValueType::Choice { options } if options.iter().any(|o| o == "at_application_start"))
    });
    match schedule {
        None => held.push(format!(
            "scheduled start {}the plugin has no task.schedule at_application_start",
            NOT_APPLICABLE.trim_end()
        )),
        Some(_) => {
            let world = fresh(true)?;
            set_local(
                &world,
                json!({"task": {"schedule": "at_application_start"}}),
            )?
            .map_err(|e| format!("setting the schedule locally was refused: {e}"))?;
            let answer = control(&world, "application_started", |t| {
                t.application_started().into_result()
            })?;
            match (answer, running(&world)?) {
                (Ok(()), false) => broken.push(
                    "application_started answered ok, but the scheduled start was refused (the statement is not accepted): the answer must say so, with the reason"
                        .to_string(),
                ),
                (Err(e), false) => held.push(format!("a refused scheduled start answers {}", e.kind)),
                (_, true) => {
                    broken.push("the scheduled start happened with no statement accepted".into())
                }
            }
        }
    }
    match acceptance_box(description) {
        Err(_) => held.push(format!(
            "boot order {}the plugin describes no acceptance box",
            NOT_APPLICABLE.trim_end()
        )),
        Ok((section, key)) => {
            let mut world = fresh(true)?;
            set_local(&world, json!({ section: { key: true } }))?
                .map_err(|e| format!("a local acceptance was refused: {e}"))?;
            // The host restarts and, against the boot order, starts the task before it
            // reports the licence.
            let state = world.devices[0].state.clone();
            world.devices.clear();
            let host = HostServices_TO::from_value(DeviceHost(state.clone()), TD_Opaque);
            let task = plugin
                .new_task(host)
                .map_err(|e| format!("the task could not be created again: {e}"))?;
            world.devices.push(Device {
                state,
                task: Arc::new(task),
                plugin: 0,
            });
            let early = control(&world, "start", |t| t.start().into_result())?;
            match (early, running(&world)?) {
                (_, true) => broken.push(
                    "start before the licence was reported in this session started the task (under the licence restored from storage): refuse it (invalid_state) until set_license"
                        .to_string(),
                ),
                (Err(e), false) if e.kind == ErrorKind::INVALID_STATE => {
                    held.push("a start before set_license answers invalid_state".into())
                }
                (other, false) => broken.push(format!(
                    "start before the licence was reported in this session: expected invalid_state naming the boot order, got {other:?}"
                )),
            }
        }
    }
    let world = fresh(true)?;
    let query = FileQuery {
        md5: [7; 16],
        size_bytes: 10,
    };
    let answer = call(&world, "check_file", move |t| {
        t.check_file(query).into_result()
    })?
    .map_err(|e| format!("check_file on a stopped task: {e}"))?;
    if (answer.verdict, answer.source) == (Verdict::UNAVAILABLE, AnswerSource::NOT_RUNNING) {
        held.push("a lookup on a stopped task answers not_running".into());
    } else {
        broken.push(format!(
            "a lookup on a stopped task answered {} from {}: expected unavailable from not_running (not running, not a KSN outage)",
            answer.verdict, answer.source
        ));
    }
    match broken.is_empty() {
        true => Ok(held.join("; ")),
        false => Err(broken.join("; ")),
    }
}

/// The report as a table: check, result, reason.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "conformance of {}\n{:<60} {:<6} reason\n",
        report.plugin, "check", "result"
    );
    for c in &report.checks {
        out.push_str(&format!(
            "{:<60} {:<6} {}\n",
            c.check,
            match (c.passed, c.applicable) {
                (false, _) => "FAIL",
                (true, false) => "n/a",
                (true, true) => "ok",
            },
            c.reason
        ));
    }
    let passed = report.checks.iter().filter(|c| c.passed).count();
    out.push_str(&format!(
        "{passed} of {} checks hold\n",
        report.checks.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(policy_schema: Json, local_schema: Json) -> PluginDescription {
        PluginDescription {
            settings: vec![plugin_api::documents::SettingDescription {
                path: "task.enabled".into(),
                value_type: plugin_api::documents::ValueType::Boolean,
                default: json!(false),
                role: SettingRole::Plain,
                meaning: "whether".into(),
                accepts: Vec::new(),
            }],
            policy_schema,
            local_schema,
            statements: Vec::new(),
        }
    }

    fn closed(properties: Json) -> Json {
        json!({"type": "object", "properties": properties, "additionalProperties": false})
    }

    #[test]
    fn a_check_whose_subject_the_plugin_lacks_says_not_applicable() {
        let plain = description(json!({}), json!({}));
        let no_world = |_: bool| -> Result<World, String> { Err("no world is needed".into()) };
        for outcome in [
            released_lock_restores_nothing(&no_world, &plain),
            withdrawal_survives_restart(&no_world, &plain),
        ] {
            let reason = outcome.unwrap();
            assert!(reason.starts_with(NOT_APPLICABLE), "{reason}");
        }
        let report = Report {
            plugin: "p".into(),
            checks: vec![Check {
                check: "c",
                passed: true,
                applicable: false,
                reason: format!("{NOT_APPLICABLE}no such box"),
            }],
        };
        assert!(table(&report).contains("n/a"), "{}", table(&report));
    }

    #[test]
    fn schemas_must_admit_every_described_setting_and_nothing_else() {
        let local = closed(json!({"task": closed(json!({"enabled": {"type": "boolean"}}))}));
        let policy = closed(json!({"settings": local.clone()}));
        assert!(schemas_hold_defaults(&description(policy.clone(), local.clone())).is_ok());

        let open_section = closed(json!({"task": {"type": "object"}}));
        let err = schemas_hold_defaults(&description(policy.clone(), open_section)).unwrap_err();
        assert!(
            err.contains("local-change schema admits task.not_a_described_setting"),
            "{err}"
        );

        let open_policy = closed(json!({"settings": {"type": "object"}}));
        let err = schemas_hold_defaults(&description(open_policy, local.clone())).unwrap_err();
        assert!(err.contains("policy schema admits"), "{err}");

        let missing = closed(json!({"task": closed(json!({}))}));
        let err = schemas_hold_defaults(&description(policy, missing)).unwrap_err();
        assert!(err.contains("defaults do not validate"), "{err}");
    }
}
