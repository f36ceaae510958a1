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
