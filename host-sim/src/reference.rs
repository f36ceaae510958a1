//! Reference text generated from what the loaded plugin says of itself (`describe`), so
//! that the documentation of its settings is never out of step with the plugin: the
//! settings table of docs/scenarios.md is this text (a test checks it).

use plugin_api::documents::PluginDescription;

/// Where the generated table starts and ends in docs/scenarios.md.
pub const BEGIN: &str =
    "<!-- settings reference: generated from the plugin's description; `cargo test` checks it -->";
pub const END: &str = "<!-- end of settings reference -->";

/// The settings as a Markdown table: path, type and range, default, meaning.
pub fn settings_table(description: &PluginDescription) -> String {
    let mut out = String::from("| setting | values | default | meaning |\n|---|---|---|---|\n");
    for s in &description.settings {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            s.path,
            s.value_type,
            s.default,
            s.meaning.replace('|', "\\|")
        ));
    }
    out
}

/// The generated block as it stands in the document, markers included.
pub fn settings_block(description: &PluginDescription) -> String {
    format!("{BEGIN}\n{}{END}", settings_table(description))
}
