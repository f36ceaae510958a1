//! The events the server keeps, as the consoles list them: newest first, each with its
//! description in words, the wall clock it arrived at (RFC 3339) beside the simulated
//! time, its importance, and who caused it when an administrator's change did.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::world::World;
use admin_server::events::Filter;
use plugin_api::documents::Importance;

/// Which events a list shows. Every field may be empty (a form's), which means "any".
#[derive(Deserialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// `critical`, `functional_failure`, `warning` or `info`.
    pub importance: Option<String>,
    /// The event's type, such as `task_error`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only the devices of this group and its subgroups.
    pub group: Option<String>,
    /// Only this device's.
    pub device: Option<String>,
    /// From this host time on (ms).
    pub since: Option<String>,
    /// Up to this host time (ms).
    pub until: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<String>,
    /// `csv` for a CSV file.
    pub format: Option<String>,
}

/// One event the server keeps.
#[derive(Serialize, ToSchema)]
pub struct EventRow {
    pub id: u64,
    /// The wall clock when it arrived, RFC 3339 (empty if not known).
    pub at: String,
    /// Host time, ms.
    pub time_ms: u64,
    pub device: usize,
    pub group: String,
    pub importance: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened, in words.
    pub description: String,
    /// The administrator whose change through a console caused it.
    pub by: Option<String>,
}

/// A query field: empty is "any", anything else a number or one error naming the field.
fn number(field: &str, value: &Option<String>) -> Result<Option<u64>, String> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{field}: expected a whole number, got {v:?}")),
    }
}

/// RFC 3339, to the millisecond, of a wall clock reading (empty for none).
pub fn rfc3339(wall_ms: u64) -> String {
    if wall_ms == 0 {
        return String::new();
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(wall_ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// How many events a list shows unless told (the Events page, the shell, the API).
pub const EVENTS_SHOWN: usize = 100;

/// The events `query` selects, newest first.
pub fn event_rows(world: &World, query: &EventQuery) -> Result<Vec<EventRow>, String> {
    let blank = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let importance = match blank(&query.importance) {
        Some(name) => Some(Importance::from_name(&name).ok_or_else(|| {
            format!(
                "importance: expected critical, functional_failure, warning or info, got `{name}`"
            )
        })?),
        None => None,
    };
    let n = world.devices.len();
    let device = number("device", &query.device)?;
    if let Some(d) = device.filter(|d| *d as usize >= n) {
        return Err(format!(
            "device: no device {d} (devices 0 to {})",
            n.saturating_sub(1)
        ));
    }
    let group = match blank(&query.group) {
        Some(g) => Some(world.server.in_group(world.server.tree().find(&g)?)),
        None => None,
    };
    let devices = match (group, device) {
        (Some(mut chosen), Some(d)) => {
            for (i, c) in chosen.iter_mut().enumerate() {
                *c &= i == d as usize;
            }
            Some(chosen)
        }
        (Some(chosen), None) => Some(chosen),
        (None, Some(d)) => Some((0..n).map(|i| i == d as usize).collect()),
        (None, None) => None,
    };
    let filter = Filter {
        devices,
        importance,
        kind: blank(&query.kind),
        since_ms: number("since", &query.since)?,
        until_ms: number("until", &query.until)?,
        ..Filter::default()
    };
    let limit = number("limit", &query.limit)?.map_or(EVENTS_SHOWN, |n| n as usize);
    let tree = world.server.tree();
    let selected: Vec<_> = world.server.events().query(&filter).collect();
    Ok(selected
        .into_iter()
        .rev()
        .take(limit)
        .map(|e| EventRow {
            id: e.id,
            at: rfc3339(e.wall_ms),
            time_ms: e.time_ms,
            device: e.device,
            group: tree.path(e.group),
            importance: e.importance.as_str().to_string(),
            kind: e.kind.to_string(),
            description: e.description.as_deref().unwrap_or(&e.kind).to_string(),
            by: e.by.as_deref().map(String::from),
        })
        .collect())
}

/// The events as CSV, a header and a row each.
pub fn events_csv(rows: &[EventRow]) -> String {
    let mut out = super::csv::line(&[
        "id",
        "at",
        "time_ms",
        "device",
        "group",
        "importance",
        "type",
        "description",
        "by",
    ]);
    for r in rows {
        out.push_str(&super::csv::line(&[
            &r.id.to_string(),
            &r.at,
            &r.time_ms.to_string(),
            &r.device.to_string(),
            &r.group,
            &r.importance,
            &r.kind,
            &r.description,
            r.by.as_deref().unwrap_or(""),
        ]));
    }
    out
}
