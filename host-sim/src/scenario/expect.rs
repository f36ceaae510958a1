//! Checking an `expect` step on every device: state, error, network, settings, locks,
//! what the services received, and the events and task log. Documents the plugin answers
//! are read as the contract's types, so a malformed one fails with its method and path.

use std::collections::BTreeSet;

use plugin_api::{
    documents::{path::did_you_mean, read_document, LogEntry, SettingsView},
    DataCategory, ErrorKind, Service,
};
use serde_json::Value as Json;

use super::{model::Expect, outcome::Failure, summary::summarise_event};
use crate::world::{Device, World};

/// What differed on one device: what, expected, found.
type Mismatch = (String, String, String);

/// Checks an `expect` step on every device it names (`on`, default all); the first
/// device that differs fails it.
pub fn check(world: &World, expect: &Expect) -> Result<(), Failure> {
    let selection = match &expect.on {
        Some(target) => Some(world.select(target).map_err(Failure::setup)?),
        None => None,
    };
    let chosen = |i: usize| selection.as_ref().is_none_or(|s| s[i]);
    let shared = expect.clone();
    let on = selection.clone();
    let results = world.each(move |device| {
        if on.as_ref().is_some_and(|s| !s[device.state.id]) {
            return Ok(Ok(()));
        }
        Ok(check_device(device, &shared))
    });
    let fail = |index: usize, (what, expected, found): Mismatch| Failure {
        step: None,
        device: Some(index),
        what,
        expected,
        found,
    };
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(mismatch)) => return Err(fail(index, mismatch)),
            Err(e) => {
                return Err(fail(
                    index,
                    ("device".to_string(), "an answer".to_string(), e.to_string()),
                ))
            }
        }
    }
    for index in (0..world.devices.len()).filter(|&i| chosen(i)) {
        check_on_server(world, index, expect).map_err(|m| fail(index, m))?;
    }
    Ok(())
}

/// What the server shows of device `index`: its status, where its settings come from, the
/// events it holds from it.
fn check_on_server(world: &World, index: usize, expect: &Expect) -> Result<(), Mismatch> {
    if let Some(want) = &expect.plugin {
        let runs = &world.plugin_of(index).version;
        if *want != runs.version && *want != runs.label() {
            return differ("plugin", want, runs.label());
        }
    }
    if let Some(want) = expect.status {
        let (status, reasons) = world.status_of(index);
        if status != want {
            let why = if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join("; "))
            };
            return differ("status", want.as_str(), format!("{}{why}", status.as_str()));
        }
    }
    if let Some(wanted) = &expect.provenance {
        let effective = world.server.effective(index);
        for (path, want) in wanted {
            let found = effective
                .get(path)
                .map_or(Json::Null, |s| world.server.provenance_json(s));
            if !matches(want, &found) {
                return differ(&format!("provenance.{path}"), want, found);
            }
        }
    }
    if let Some(want) = &expect.events {
        let mut devices = vec![false; world.devices.len()];
        devices[index] = true;
        let filter = admin_server::Filter {
            after_id: Some(world.events_from),
            devices: Some(devices),
            ..Default::default()
        };
        let [info, warning, failure, critical] = world.server.events().counts(&filter);
        for (name, want, have) in [
            ("critical", want.critical, critical),
            ("functional_failure", want.functional_failure, failure),
            ("warning", want.warning, warning),
            ("info", want.info, info),
            ("total", want.total, info + warning + failure + critical),
        ] {
            if let Some(want) = want.filter(|w| *w != have) {
                return differ(&format!("events.{name}"), want, have);
            }
        }
    }
    Ok(())
}

/// Whether `found` holds what `want` states: every key of an object (recursively), every
/// element of an array in order, any other value equal.
fn matches(want: &Json, found: &Json) -> bool {
    match (want, found) {
        (Json::Object(w), Json::Object(f)) => w
            .iter()
            .all(|(k, v)| f.get(k).is_some_and(|fv| matches(v, fv))),
        (Json::Array(w), Json::Array(f)) => {
            w.len() == f.len() && w.iter().zip(f).all(|(a, b)| matches(a, b))
        }
        _ => want == found,
    }
}

fn differ(what: &str, expected: impl ToString, found: impl ToString) -> Result<(), Mismatch> {
    Err((what.to_string(), expected.to_string(), found.to_string()))
}

fn check_device(device: &Device, expect: &Expect) -> Result<(), Mismatch> {
    let status = device.task.status();
    if let Some(state) = expect.state.filter(|s| *s != status.state) {
        return differ("state", state, status.state);
    }
    if let Some(error) = expect.error {
        let found = status.error.into_option();
        if found != error {
            let name = |e: Option<ErrorKind>| e.map_or("null".to_string(), |k| k.to_string());
            return differ("error", name(error), name(found));
        }
    }
    if let Some(network) = expect.network.filter(|n| *n != status.network) {
        return differ("network", network, status.network);
    }
    if expect.settings.is_some() || expect.locked.is_some() {
        check_settings(device, expect)?;
    }
    for (service_name, counts) in expect.received.iter().flatten() {
        let service = Service::from_name(service_name).unwrap_or(Service::NONE);
        let received = &device.state.received;
        let rows = [
            (
                "files",
                counts.files,
                received.count(service, DataCategory::FILES),
            ),
            (
                "urls",
                counts.urls,
                received.count(service, DataCategory::URLS),
            ),
            (
                "statistics",
                counts.statistics,
                received.count(service, DataCategory::STATISTICS),
            ),
            (
                "kmp",
                counts.kmp,
                received.count(service, DataCategory::KMP),
            ),
            ("total", counts.total, received.total(service)),
        ];
        for (name, want, have) in rows {
            if let Some(want) = want.filter(|w| *w != have) {
                return differ(&format!("received.{service_name}.{name}"), want, have);
            }
        }
    }
    if expect.events_include.is_some() || expect.events_exclude.is_some() {
        let events: Vec<String> = device
            .state
            .events()
            .iter()
            .map(|e| e.to_string())
            .collect();
        if let Some(wanted) = &expect.events_include {
            find_all("events_include", "emit_event", &events, wanted)?;
        }
        if let Some(unwanted) = &expect.events_exclude {
            find_none("events_exclude", "emit_event", &events, unwanted)?;
        }
    }
    if expect.log_include.is_some()
        || expect.log_exclude.is_some()
        || expect.log_entries_at_most.is_some()
    {
        let entries = task_log(device)?;
        if let Some(wanted) = &expect.log_include {
            find_all("log_include", "task_log_json", &entries, wanted)?;
        }
        if let Some(unwanted) = &expect.log_exclude {
            find_none("log_exclude", "task_log_json", &entries, unwanted)?;
        }
        if let Some(most) = expect.log_entries_at_most {
            if entries.len() as u64 > most {
                return Err((
                    "log_entries_at_most".into(),
                    format!("at most {most} entries"),
                    format!("{} entries", entries.len()),
                ));
            }
        }
    }
    Ok(())
}

/// The task log as the plugin reads it back from storage, one entry's text each.
fn task_log(device: &Device) -> Result<Vec<String>, Mismatch> {
    let unreadable = |what: &str, e: String| ("task log".to_string(), what.to_string(), e);
    let text = device
        .task
        .task_log_json()
        .into_result()
        .map_err(|e| unreadable("a readable task log", e.to_string()))?;
    let raw: Vec<Box<serde_json::value::RawValue>> =
        serde_json::from_str(&text).map_err(|e| unreadable("a JSON task log", e.to_string()))?;
    Ok(raw.iter().map(|r| r.get().to_string()).collect())
}

fn check_settings(device: &Device, expect: &Expect) -> Result<(), Mismatch> {
    let settings = device
        .task
        .settings_json()
        .into_result()
        .map_err(|e| e.to_string())
        .and_then(|text| {
            read_document::<SettingsView>("settings_json", &text).map_err(|e| e.to_string())
        })
        .map_err(|e| ("settings".to_string(), "readable settings".to_string(), e))?;
    for (path, value) in expect.settings.iter().flatten() {
        match settings.setting(path) {
            None => {
                let paths: Vec<&str> = settings.paths().collect();
                return differ(
                    &format!("settings.{path}"),
                    "a setting",
                    format!(
                        "no such setting{} (settings: {})",
                        did_you_mean(path, paths.iter().copied()),
                        paths.join(", ")
                    ),
                );
            }
            Some(found) if found.value != *value => {
                return differ(&format!("settings.{path}"), value, &found.value)
            }
            Some(_) => {}
        }
    }
    if let Some(locked) = &expect.locked {
        let want: BTreeSet<&str> = locked.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = settings.locked.iter().map(String::as_str).collect();
        if want != have {
            return differ("locked", format!("{want:?}"), format!("{have:?}"));
        }
    }
    Ok(())
}

/// Each wanted partial entry must match some entry; every entry must be a `LogEntry`.
fn find_all(what: &str, method: &str, texts: &[String], wanted: &[Json]) -> Result<(), Mismatch> {
    let mut entries = Vec::with_capacity(texts.len());
    for text in texts {
        let entry: LogEntry = read_document(method, text).map_err(|e| {
            (
                what.to_string(),
                "entries of the contract's shape".to_string(),
                e.to_string(),
            )
        })?;
        let json: Json = serde_json::from_str(text).unwrap_or(Json::Null);
        entries.push((entry, json));
    }
    for want in wanted {
        if !entries.iter().any(|(_, json)| includes(json, want)) {
            return Err((what.to_string(), want.to_string(), nearest(&entries, want)));
        }
    }
    Ok(())
}

/// No unwanted partial entry may match any entry; every entry must be a `LogEntry`.
fn find_none(
    what: &str,
    method: &str,
    texts: &[String],
    unwanted: &[Json],
) -> Result<(), Mismatch> {
    for text in texts {
        let entry: LogEntry = read_document(method, text).map_err(|e| {
            (
                what.to_string(),
                "entries of the contract's shape".to_string(),
                e.to_string(),
            )
        })?;
        let json: Json = serde_json::from_str(text).unwrap_or(Json::Null);
        if let Some(hit) = unwanted.iter().find(|u| includes(&json, u)) {
            return Err((
                what.to_string(),
                format!("no entry matching {hit}"),
                format!("#{} {}", entry.seq, summarise_event(&entry.event)),
            ));
        }
    }
    Ok(())
}

/// How many entries a failed `events_include` or `log_include` shows.
const NEAREST: usize = 5;
/// How alike an entry must be to what was wanted to count as a near miss rather than noise
/// (`task_eror` for `task_error` is; `license_changed` for `state_changed` is not).
const ALIKE: f64 = 0.8;

/// What was there instead of `want`: how many entries, and the few nearest to it in log
/// order; never the whole log, which after a long run is thousands of entries.
fn nearest(entries: &[(LogEntry, Json)], want: &Json) -> String {
    if entries.is_empty() {
        return "no entries".into();
    }
    // Most wanted keys matched, then alike at the wanted keys (a typo), then the latest.
    let mut ranked: Vec<(usize, usize, f64)> = entries
        .iter()
        .enumerate()
        .map(|(index, (_, json))| {
            let alike = alike(json, want);
            let alike = if alike >= ALIKE { alike } else { 0.0 };
            (index, matched_keys(json, want), alike)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(b.0.cmp(&a.0)));
    let mut shown: Vec<usize> = ranked.iter().take(NEAREST).map(|r| r.0).collect();
    shown.sort_unstable();
    let lines: Vec<String> = shown
        .iter()
        .map(|&i| {
            let (entry, _) = &entries[i];
            format!("#{} {}", entry.seq, summarise_event(&entry.event))
        })
        .collect();
    let count = match entries.len() {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    format!("{count}, none matching; nearest: [{}]", lines.join(", "))
}

/// How many of the wanted keys the entry has with the wanted value.
fn matched_keys(entry: &Json, want: &Json) -> usize {
    let Some(want) = want.as_object() else {
        return 0;
    };
    want.iter()
        .filter(|(k, v)| entry.get(k.as_str()).is_some_and(|e| includes(e, v)))
        .count()
}

/// How alike the entry is to `want` at the wanted keys (0 to 1).
fn alike(entry: &Json, want: &Json) -> f64 {
    let Some(want) = want.as_object() else {
        return 0.0;
    };
    let at_wanted_keys: serde_json::Map<String, Json> = want
        .keys()
        .filter_map(|k| entry.get(k.as_str()).map(|v| (k.clone(), v.clone())))
        .collect();
    strsim::normalized_levenshtein(
        &Json::Object(at_wanted_keys).to_string(),
        &Json::Object(want.clone()).to_string(),
    )
}

/// Whether `actual` has every key of `partial` with an equal (or, for objects, including)
/// value.
pub fn includes(actual: &Json, partial: &Json) -> bool {
    match (actual, partial) {
        (Json::Object(a), Json::Object(p)) => p
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| includes(av, v))),
        _ => actual == partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partial_events_match_by_inclusion() {
        let event =
            json!({"type": "task_error", "kind": "license_violation", "message": "m", "seq": 3});
        assert!(includes(
            &event,
            &json!({"type": "task_error", "kind": "license_violation"})
        ));
        assert!(!includes(
            &event,
            &json!({"type": "task_error", "kind": "invalid_state"})
        ));
        assert!(!includes(
            &event,
            &json!({"type": "task_error", "extra": 1})
        ));
        let nested = json!({"type": "settings_changed", "after": {"a": 1, "b": 2}});
        assert!(includes(&nested, &json!({"after": {"a": 1}})));
    }
}
