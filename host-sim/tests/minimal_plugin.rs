//! The minimal plugin (`examples/minimal-plugin`), a second plugin written from the
//! contract alone, loaded and driven through the ABI as any plugin is: its description,
//! the documents it answers, a policy, a start, a lookup, a restart of the host over the
//! same storage, a refused change; and scenario steps run on it by the runner.

mod common;

use std::sync::Arc;

use host_sim::{
    network::{Database, Network},
    scenario::{self, report, runner::Options},
    world::{default_ksn, Clock, Device, DeviceState},
};
use plugin_api::{
    abi_stable::std_types::RStr,
    documents::{
        read_document, Counters, Event, LedgerItem, LedgerPage, LogEntry, LogPage,
        PluginDescription, SettingsView, Source, Statement,
    },
    loader::{self, Plugin},
    AnswerSource, DataCategory, ErrorKind, FileQuery, KsnTaskBox, ObjectAction, Service, TaskState,
    Verdict,
};
use serde_json::{json, Value as Json};

const EICAR: &str = "44d88612fea8a8f36de82e1278abb02f";

fn plugin() -> Plugin {
    loader::load(&common::artifact("minimal_plugin")).expect("the minimal plugin loads")
}

/// A device's host side on the bundled reputation database, with storage in memory that
/// outlives the task instances booted on it.
fn device_state() -> Arc<DeviceState> {
    Arc::new(DeviceState::new(
        0,
        Arc::new(Clock::default()),
        Arc::new(Network::new(&default_ksn(), false).unwrap()),
        Arc::new(Database::default()),
    ))
}

/// An example policy as the server's editor saves it for this plugin: its acceptances
/// name the statement this plugin shows (the examples name the real plugin's two).
fn policy(name: &str) -> String {
    let text =
        std::fs::read_to_string(common::repo_root().join("tests/policies").join(name)).unwrap();
    let mut document: Json = serde_json::from_str(&text).unwrap();
    for section in document["settings"].as_object_mut().unwrap().values_mut() {
        for value in section.as_object_mut().unwrap().values_mut() {
            if let Some(wrapped) = value.as_object_mut() {
                wrapped.remove("versions");
            }
        }
    }
    let description = plugin().describe().unwrap();
    admin_server::editor::stamp(
        &document,
        &[&description],
        admin_server::editor::one_mode(false),
    )
    .to_string()
}

fn log(task: &KsnTaskBox) -> Vec<LogEntry> {
    read_document(
        "task_log_json",
        &task.task_log_json().into_result().unwrap(),
    )
    .unwrap()
}

fn settings(task: &KsnTaskBox) -> SettingsView {
    read_document(
        "settings_json",
        &task.settings_json().into_result().unwrap(),
    )
    .unwrap()
}

fn errors(schema: &Json, instance: &Json) -> Vec<String> {
    jsonschema::validator_for(schema)
        .expect("the schema itself is valid")
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

#[test]
fn it_loads_and_describes_itself_with_schemas_whose_defaults_validate() {
    let plugin = plugin();
    assert_eq!(plugin.info.name.as_str(), "minimal-ksn-usage-task");
    assert_eq!(
        plugin.contract.version.as_str(),
        loader::host_contract().to_string()
    );
    let description: PluginDescription = plugin.describe().expect("describe parses");
    for path in [
        "data_handling.ksn_statement_accepted",
        "data_handling.send_scanned_files_data",
        "task.lookup_timeout_ms",
    ] {
        assert!(description.setting(path).is_some(), "{path}");
    }
    let statement = description.statement(Statement::Ksn).expect("the KSN text");
    assert!(statement.version >= 1 && !statement.text.is_empty());

    // The defaults, as a local change and as a policy, validate against the schemas.
    let mut defaults = json!({});
    for setting in &description.settings {
        defaults[setting.section()][setting.key()] = setting.default.clone();
    }
    assert_eq!(
        errors(&description.local_schema, &defaults),
        Vec::<String>::new()
    );
    let as_policy = json!({ "settings": defaults });
    assert_eq!(
        errors(&description.policy_schema, &as_policy),
        Vec::<String>::new()
    );
    for name in ["accept-ksn-locked.json", "withdraw-participation.json"] {
        let text = policy(name);
        let document: Json = serde_json::from_str(&text).unwrap();
        assert!(
            errors(&description.policy_schema, &document).is_empty(),
            "{name}"
        );
    }
    // What the schemas refuse, the plugin refuses too.
    let task = Device::boot(&plugin, device_state(), 0).unwrap().0.task;
    for bad in [
        json!({"settings": {"task": {"lookup_timeout_ms": 5_000_000}}}),
        json!({"settings": {"task": {"schedule": {"value": "manual", "locked": "yes"}}}}),
        json!({"settings": {"task": {"schedule": {"value": "manual", "lockd": true}}}}),
        json!({"settings": {"nothing": {}}}),
        json!({"policy": {}}),
    ] {
        assert!(
            !errors(&description.policy_schema, &bad).is_empty(),
            "{bad}"
        );
        let e = task
            .push_policy(RStr::from_str(&bad.to_string()))
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS, "{bad}: {e}");
    }
    for bad in [
        json!({"data_handling": {"ksn_statement_accepted": "yes"}}),
        json!({"data_handling": {"ksn_statement_accepted": {"value": true}}}),
    ] {
        assert!(!errors(&description.local_schema, &bad).is_empty(), "{bad}");
        let e = task
            .set_local(RStr::from_str(&bad.to_string()))
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_SETTINGS, "{bad}: {e}");
    }
}

#[test]
fn policy_start_lookup_stop_restart_and_a_refused_change() {
    let plugin = plugin();
    let state = device_state();
    let device = Device::boot(&plugin, state.clone(), 0).unwrap().0;
    let task = &device.task;

    let refused = task.start().into_result().unwrap_err();
    assert_eq!(refused.kind, ErrorKind::STATEMENT_NOT_ACCEPTED, "{refused}");
    task.push_policy(RStr::from_str(&policy("accept-ksn-locked.json")))
        .into_result()
        .unwrap();
    let view = settings(task);
    let accepted = view
        .setting("data_handling.ksn_statement_accepted")
        .unwrap();
    assert_eq!(
        (&accepted.value, accepted.source, accepted.locked),
        (&json!(true), Source::Policy, true)
    );
    task.start().into_result().unwrap();
    let status = task.status();
    assert_eq!(
        (status.state, status.network),
        (TaskState::RUNNING, Service::GLOBAL)
    );

    let query = FileQuery {
        md5: FileQuery::parse_md5(EICAR).unwrap(),
        size_bytes: 68,
    };
    let answer = task.check_file(query).into_result().unwrap();
    assert_eq!(
        (answer.verdict, answer.action, answer.source),
        (Verdict::UNTRUSTED, ObjectAction::LOGGED, AnswerSource::KSN)
    );
    assert_eq!(
        state.received.count(Service::GLOBAL, DataCategory::FILES),
        1
    );
    assert_eq!(state.received.total(Service::PROXY), 0);
    let ledger: Vec<LedgerItem> =
        read_document("ledger_json", &task.ledger_json().into_result().unwrap()).unwrap();
    assert_eq!(ledger.len(), 1);
    let page: LedgerPage = read_document(
        "ledger_page",
        &task.ledger_page(0, 10).into_result().unwrap(),
    )
    .unwrap();
    assert_eq!(page.items, ledger);
    let counters: Counters = read_document(
        "counters_json",
        &task.counters_json().into_result().unwrap(),
    )
    .unwrap();
    assert_eq!(counters.ledger_items, 1);
    task.purge_cache().into_result().unwrap();
    task.tick().into_result().unwrap();

    task.stop().into_result().unwrap();
    assert_eq!(task.status().state, TaskState::STOPPED);
    let answer = task.check_file(query).into_result().unwrap();
    assert_eq!(answer.verdict, Verdict::UNAVAILABLE);
    assert_eq!(
        state.received.count(Service::GLOBAL, DataCategory::FILES),
        1
    );
    task.start().into_result().unwrap();

    // Every event the host received is an entry of the log, in order.
    let before = log(task);
    let events: Vec<LogEntry> = state
        .events()
        .iter()
        .map(|e| read_document("emit_event", e).unwrap())
        .collect();
    assert_eq!(events, before);
    assert!(before.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    let settings_before = task.settings_json().into_result().unwrap();

    // The host restarts over the same storage.
    drop(device);
    let device = Device::boot(&plugin, state.clone(), 0).unwrap().0;
    let task = &device.task;
    assert_eq!(task.status().state, TaskState::STOPPED);
    assert_eq!(task.settings_json().into_result().unwrap(), settings_before);
    let after = log(task);
    assert_eq!(after[..before.len()], before[..], "the log survived");
    assert_eq!(after.len(), before.len() + 1);
    assert!(matches!(
        &after[before.len()].event,
        Event::StateChanged { from: TaskState::RUNNING, to: TaskState::STOPPED, reason: Some(r) }
            if r == "host_restarted"
    ));
    let page: LogPage = read_document(
        "task_log_page",
        &task.task_log_page(0, 1000).into_result().unwrap(),
    )
    .unwrap();
    assert_eq!(page.entries, after);

    // A local change to the locked box is refused; nothing changes but the log's record
    // of the refusal.
    let status = task.status();
    let e = task
        .set_local(RStr::from_str(
            r#"{"data_handling": {"ksn_statement_accepted": false}}"#,
        ))
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::LOCKED_BY_POLICY, "{e}");
    assert!(
        e.message.contains("data_handling.ksn_statement_accepted"),
        "{e}"
    );
    assert_eq!(task.status(), status);
    assert_eq!(task.settings_json().into_result().unwrap(), settings_before);
    let refused = log(task);
    assert_eq!(refused[..after.len()], after[..]);
    assert_eq!(refused.len(), after.len() + 1);
    assert!(matches!(
        refused.last().unwrap().event,
        Event::OperationRefused {
            kind: ErrorKind::LOCKED_BY_POLICY,
            ..
        }
    ));
    // The task still starts: the acceptance survived the restart.
    task.start().into_result().unwrap();
}

#[test]
fn scenario_steps_run_on_it() {
    let text = json!({
        "name": "the minimal plugin under the scenario runner",
        "steps": [
            {"do": "start", "expect_error": "statement_not_accepted"},
            {"do": "push_policy", "policy": {"settings": {"data_handling": {
                "ksn_statement_accepted": {"value": true, "locked": true}}}}},
            {"do": "set_local", "settings": {"data_handling": {"ksn_statement_accepted": false}},
             "expect_error": "locked_by_policy"},
            {"do": "start"},
            {"expect": {"state": "running", "error": null, "network": "global",
                        "locked": ["data_handling.ksn_statement_accepted"]}},
            {"do": "check_file", "md5": EICAR, "size_bytes": 68,
             "expect": {"verdict": "untrusted", "action": "logged", "source": "ksn", "cached": false}},
            {"do": "check_url", "url": "http://malware.example/dropper", "expect": {"verdict": "unknown"}},
            {"expect": {"received": {"global": {"files": 1, "urls": 0, "total": 1}}}},
            {"do": "set_network", "service": "global", "up": false},
            {"do": "check_file", "md5": EICAR, "size_bytes": 68, "expect": {"verdict": "unavailable"}},
            {"do": "set_network", "service": "global", "up": true},
            {"do": "restart_host"},
            {"expect": {
                "state": "stopped",
                "settings": {"data_handling.ksn_statement_accepted": true, "task.lookup_timeout_ms": 5000},
                "log_include": [
                    {"type": "consent_changed", "statement": "ksn", "accepted": true, "source": "policy"},
                    {"type": "object_untrusted", "md5": EICAR, "action": "logged"},
                    {"type": "ksn_unavailable", "service": "global", "reason": "unreachable"},
                    {"type": "state_changed", "from": "running", "to": "stopped", "reason": "host_restarted"}
                ]
            }},
            {"do": "set_license", "state": "expired"},
            {"do": "start", "expect_error": "license_violation"},
            {"do": "set_license", "state": "valid"},
            {"do": "start"},
            {"do": "set_private_ksn", "enabled": true},
            {"expect": {"state": "failed", "error": "statement_not_accepted", "network": "none",
                        "received": {"private": {"total": 0}}}}
        ]
    })
    .to_string();
    let parsed = scenario::parse(&text).expect("the scenario parses");
    let outcome = scenario::runner::run(
        plugin(),
        &parsed,
        "minimal_plugin.rs",
        &default_ksn(),
        &Options::default(),
    );
    assert!(
        outcome.passed,
        "{}",
        report::text(std::slice::from_ref(&outcome), true, false)
    );
}
