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
