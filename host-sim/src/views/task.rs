//! One device's task as the consoles read it: its settings view (every document read as
//! the contract's type, so a plugin that answers a malformed one gets one line naming the
//! method and the place), `explain` of a setting beside the server's provenance, its log.

use plugin_api::documents::{path::nearest, read_document, LogEntry, SettingsView, Source};

use crate::{scenario::summary::entry_line, world::World};

pub(crate) fn error(e: impl std::fmt::Display) -> String {
    format!("error: {e}")
}

pub fn settings_view(world: &World, device: usize) -> Result<SettingsView, String> {
    let text = world.devices[device]
        .task
        .settings_json()
        .into_result()
        .map_err(error)?;
    read_document("settings_json", &text).map_err(error)
}

pub(crate) fn source_name(source: Source) -> String {
    crate::serde_name(&source)
}

/// `explain` of one device's setting.
pub fn explain_on(
    world: &World,
    device: usize,
    path: &str,
    paths: &[String],
) -> Result<String, String> {
    if path.is_empty() {
        return Err("usage: explain <setting>, e.g. explain data_handling.send_statistics".into());
    }
    let view = settings_view(world, device)?;
    let Some(d) = view.setting(path) else {
        if let Some(line) = not_managed(world, device, path) {
            return Ok(line);
        }
        return Err(match nearest(path, paths.iter().map(String::as_str)) {
            Some(near) => format!("no setting `{path}`; did you mean `{near}`?"),
            None => format!("no setting `{path}`; `settings` lists them"),
        });
    };
    let source = match (d.source, d.locked) {
        (Source::Policy, true) => "policy (locked)".to_string(),
        (Source::Policy, false) => "policy (unlocked)".to_string(),
        (other, _) => source_name(other),
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut lines = vec![
        format!("{path} = {}", d.value),
        format!("  source:  {source}"),
        format!("  locked:  {}", yes_no(d.locked)),
        format!("  applies: {}", yes_no(d.applies)),
        format!("  why:     {}", d.why),
    ];
    if let Some(policy_value) = &d.policy_value {
        lines.push(format!("  policy value: {policy_value}"));
    }
    // The server's side: which group's policy, revision and profile set it.
    let effective = world.server.effective(device);
    lines.push(format!(
        "  policy:  {}",
        world.server.provenance_line(path, &effective)
    ));
    lines.push(format!("  default: {}", d.default));
    lines.push(format!("  meaning: {}", d.meaning));
    Ok(lines.join("\n"))
}

/// `explain` of a setting another plugin version of the fleet knows and this device's does
/// not: it is not managed on the device (the server does not send it), whatever the
/// policy says.
fn not_managed(world: &World, device: usize, path: &str) -> Option<String> {
    if !world.server.known_by_some_version(path) {
        return None;
    }
    let runs = world.plugin_of(device).version.label();
    let effective = world.server.effective(device);
    let mut lines = vec![
        format!("{path}: not managed on {runs}"),
        format!("  why:     this device's plugin version does not know the setting; the server does not send it"),
    ];
    if effective.contains_key(path) {
        lines.push(format!(
            "  policy:  {} (for the devices whose version knows it)",
            world.server.provenance_line(path, &effective)
        ));
    }
    Some(lines.join("\n"))
}

/// The settings the device's effective policy sets that its plugin version does not know
/// (another version of the fleet does): not managed on it.
pub fn not_managed_paths(world: &World, device: usize) -> Vec<String> {
    let Some(description) = world.description_of(device) else {
        return Vec::new();
    };
    world
        .server
        .effective(device)
        .keys()
        .filter(|p| description.setting(p).is_none() && world.server.known_by_some_version(p))
        .cloned()
        .collect()
}

/// The last `n` entries of one device's task log, a line each.
pub fn log_lines(world: &World, device: usize, n: usize) -> Result<Vec<String>, String> {
    let text = world.devices[device]
        .task
        .task_log_json()
        .into_result()
        .map_err(error)?;
    let log: Vec<LogEntry> = read_document("task_log_json", &text).map_err(error)?;
    Ok(log[log.len().saturating_sub(n)..]
        .iter()
        .map(entry_line)
        .collect())
}
