//! The documentation says what the plugin does: its settings table is generated from the
//! loaded plugin's own description.

mod common;

use host_sim::reference;
use plugin_api::documents::{read_document, PluginDescription};

#[test]
fn the_settings_reference_in_docs_matches_the_plugin() {
    let plugin = common::plugin();
    let text = plugin.module.describe()().into_result().unwrap();
    let description: PluginDescription = read_document("describe", &text).unwrap();
    let block = reference::settings_block(&description);
    let doc = std::fs::read_to_string(common::repo_root().join("docs/scenarios.md")).unwrap();
    assert!(
        doc.contains(&block),
        "docs/scenarios.md must contain, as generated from the plugin:\n\n{block}\n"
    );
}

/// The rolling update the scenario guide walks through is a scenario the tests run
/// (`tests/mixed-fleet-scenarios/`), word for word.
#[test]
fn the_rolling_update_in_the_guide_is_a_tested_scenario() {
    let root = common::repo_root();
    let doc = std::fs::read_to_string(root.join("docs/scenarios.md")).unwrap();
    let section = doc
        .split("## A rolling update")
        .nth(1)
        .expect("docs/scenarios.md has a section \"A rolling update\"");
    let block = section
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section shows its scenario");
    let shown: serde_json::Value = serde_json::from_str(block).unwrap();
    let file = root.join("tests/mixed-fleet-scenarios/a_rolling_update_one_device_of_three.json");
    let tested: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(shown, tested);
}
