//! The JSON Schemas: the scenario format's is generated from its types, the policy and
//! local-change ones come from the loaded plugin's description of itself; every bundled
//! policy and scenario validates against them, and structurally invalid ones do not.

mod common;

use plugin_api::documents::PluginDescription;
use serde_json::Value as Json;

fn description() -> PluginDescription {
    common::plugin()
        .describe()
        .expect("the plugin describes itself")
}

fn policy_schema() -> Json {
    description().policy_schema
}

fn local_schema() -> Json {
    description().local_schema
}

fn scenario_schema() -> Json {
    host_sim::scenario::schema::scenario_schema(&description())
}

fn json_files(dir: &str) -> Vec<(String, Json)> {
    let dir = common::repo_root().join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            serde_json::from_str(&text)
                .ok()
                .map(|j| (p.display().to_string(), j))
        })
        .collect()
}

fn errors(schema: &Json, instance: &Json) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the schema itself is valid");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn every_bundled_scenario_validates() {
    let schema = scenario_schema();
    let files = json_files("tests/scenarios");
    assert!(files.len() >= 20);
    for (name, scenario) in files {
        let problems = errors(&schema, &scenario);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

#[test]
fn every_example_policy_validates_and_the_broken_ones_do_not() {
    let schema = policy_schema();
    for (name, policy) in json_files("tests/policies") {
        let problems = errors(&schema, &policy);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
    let mut refused = 0;
    for (name, policy) in json_files("tests/policies/invalid") {
        // Managed Protection without the KSN statement is valid in form: only the task can
        // refuse it.
        if name.ends_with("kmp-without-ksn.json") {
            assert!(errors(&schema, &policy).is_empty(), "{name}");
            continue;
        }
        assert!(
            !errors(&schema, &policy).is_empty(),
            "{name} should not validate"
        );
        refused += 1;
    }
    assert!(refused >= 3);
}

#[test]
fn the_schemas_can_refuse_what_the_parsers_refuse() {
    let scenario = scenario_schema();
    let bad_steps = [
        r#"{"name": "x", "steps": [{"do": "strat"}]}"#,
        r#"{"name": "x", "steps": [{"do": "start", "force": true}]}"#,
        r#"{"name": "x", "steps": [{"do": "start", "expect_error": "oops"}]}"#,
        r#"{"name": "x", "steps": [{"expect": {"state": "flying"}}]}"#,
        r#"{"name": "x", "steps": [{"do": "check_file", "md5": "xyz", "size_bytes": 1}]}"#,
        r#"{"name": "x", "devices": 0, "steps": []}"#,
        r#"{"steps": []}"#,
    ];
    for text in bad_steps {
        let doc: Json = serde_json::from_str(text).unwrap();
        assert!(
            !errors(&scenario, &doc).is_empty(),
            "{text} should not validate"
        );
        assert!(
            host_sim::scenario::parse(text).is_err(),
            "{text} should not parse"
        );
    }
    // A policy is checked by the task when it is pushed; the schema checks it while the
    // scenario is written, unless the step expects the error.
    let broken_policy: Json = serde_json::from_str(
        r#"{"name": "x", "steps": [{"do": "push_policy", "policy": {"settings": {"task": {"checksum_limit_mb": 5000}}}}]}"#,
    )
    .unwrap();
    assert!(!errors(&scenario, &broken_policy).is_empty());
    let mut expected = broken_policy.clone();
    expected["steps"][0]["expect_error"] = Json::from("invalid_settings");
    assert!(
        errors(&scenario, &expected).is_empty(),
        "{:?}",
        errors(&scenario, &expected)
    );

    let good: Json = serde_json::from_str(
        r#"{"name": "x", "steps": [{"do": "start", "expect_error": "statement_not_accepted"}, {"expect": {"error": null}}]}"#,
    )
    .unwrap();
    assert!(
        errors(&scenario, &good).is_empty(),
        "{:?}",
        errors(&scenario, &good)
    );

    let local = local_schema();
    let doc: Json = serde_json::from_str(r#"{"task": {"schedule": "weekly"}}"#).unwrap();
    assert!(!errors(&local, &doc).is_empty());
}

#[test]
fn the_command_prints_each_schema() {
    for format in ["policy", "local", "scenario"] {
        let out = common::host_sim()
            .args(["schema", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}");
        let schema: Json = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            schema["$schema"]
                .as_str()
                .unwrap()
                .contains("json-schema.org"),
            "{format}"
        );
    }
}

/// The documents' schemas, as the loaded plugin answers them, are the files under
/// `docs/schemas/` (`KSN_BLESS_SCHEMAS=1` writes them), and every document a running task
/// answers validates against its schema.
#[test]
fn the_shipped_document_schemas_are_current_and_every_document_validates() {
    let plugin = common::plugin();
    let dir = common::repo_root().join("docs/schemas");
    let bless = std::env::var_os("KSN_BLESS_SCHEMAS").is_some();
    let mut stale = Vec::new();
    let mut schemas = std::collections::BTreeMap::new();
    for name in plugin_api::documents::schemas::names() {
        let schema = plugin.document_schema(name).unwrap();
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let file = dir.join(format!("{name}.schema.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &text).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.display().to_string());
        }
        schemas.insert(name, schema);
    }
    assert!(
        stale.is_empty(),
        "stale or missing (regenerate with KSN_BLESS_SCHEMAS=1 cargo test -p host-sim --test schema): {stale:?}"
    );

    // A task that went through much of what it logs: policy, lookups, a detection, a
    // batch, a withdrawal.
    let device = common::device();
    let task = &device.task;
    let ok = |r: plugin_api::abi_stable::std_types::RResult<(), plugin_api::TaskError>| {
        r.into_result().unwrap()
    };
    ok(task.push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "versions": {"ksn": 1}}},
            "task": {"use_ksc_as_ksn_proxy": false}}}"#
            .into(),
    ));
    ok(task.start());
    let eicar = plugin_api::FileQuery {
        md5: plugin_api::FileQuery::parse_md5("44d88612fea8a8f36de82e1278abb02f").unwrap(),
        size_bytes: 68,
    };
    task.check_file(eicar).into_result().unwrap();
    task.check_object(eicar, plugin_api::ObjectRef::new(7, "/srv/eicar.com"))
        .into_result()
        .unwrap();
    device.state.clock.advance(61_000);
    ok(task.tick());
    ok(task.set_local(r#"{"data_handling": {"ksn_statement_accepted": false}}"#.into()));
    let text = |r: plugin_api::abi_stable::std_types::RResult<
        plugin_api::abi_stable::std_types::RString,
        plugin_api::TaskError,
    >| serde_json::from_str::<Json>(r.into_result().unwrap().as_str()).unwrap();
    let documents = [
        ("settings", text(task.settings_json())),
        ("log", text(task.task_log_json())),
        ("log_page", text(task.task_log_page(0, 5))),
        ("ledger", text(task.ledger_json())),
        ("ledger_page", text(task.ledger_page(0, 5))),
        ("counters", text(task.counters_json())),
        (
            "description",
            serde_json::from_str(&plugin.module.describe()().into_result().unwrap()).unwrap(),
        ),
    ];
    for (name, document) in &documents {
        let problems = errors(&schemas[name], document);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
    let events = device.state.events();
    assert!(events.len() > 5, "{}", events.len());
    for event in events {
        let event: Json = serde_json::from_str(&event).unwrap();
        let problems = errors(&schemas["event"], &event);
        assert!(problems.is_empty(), "{event}: {problems:?}");
    }
    // A type a newer plugin adds is admitted; a known type with the wrong shape is not.
    let newer = serde_json::json!({"seq": 1, "time_ms": 2, "type": "quantum_scan", "qubits": 3});
    assert!(errors(&schemas["event"], &newer).is_empty());
    let wrong =
        serde_json::json!({"seq": 1, "time_ms": 2, "type": "state_changed", "from": "stopped"});
    assert!(!errors(&schemas["event"], &wrong).is_empty());
}

/// docs/loading-from-c.md lists every event type with every field its schema has, the
/// optional ones in brackets, and every document name: a C host reads the list, not the
/// Rust types.
#[test]
fn the_c_guide_lists_every_event_type_with_its_fields() {
    let guide =
        std::fs::read_to_string(common::repo_root().join("docs/loading-from-c.md")).unwrap();
    let schema = plugin_api::documents::schemas::schema("event").unwrap();
    let mut listed = 0;
    for variant in schema["oneOf"].as_array().unwrap() {
        let properties = variant["properties"].as_object().unwrap();
        let Some(name) = properties["type"]["const"].as_str() else {
            continue; // the newer plugin's types
        };
        let row = guide
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/loading-from-c.md has no row for `{name}`"));
        let fields = row.split('|').nth(2).unwrap();
        let required: Vec<&str> = variant["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Json::as_str)
            .collect();
        for field in properties.keys().filter(|f| *f != "type") {
            let shown = if required.contains(&field.as_str()) {
                format!("`{field}`")
            } else {
                format!("[`{field}`]")
            };
            let bare = fields.replace(&format!("[`{field}`]"), "");
            let present = if required.contains(&field.as_str()) {
                bare.contains(&shown)
            } else {
                fields.contains(&shown)
            };
            assert!(present, "`{name}`'s row should show {shown}: {row}");
        }
        listed += 1;
    }
    assert!(listed >= 18, "{listed}");
    for name in plugin_api::documents::schemas::names() {
        assert!(
            guide.contains(&format!("`{name}`")),
            "the guide does not name `{name}`"
        );
    }
}
