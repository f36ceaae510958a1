//! The events the server keeps, as the consoles list them.
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::world::World;
use admin_server::events::Filter;
use plugin_api::documents::Importance;

/// Which events a list shows.
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
    pub device: Option<usize>,
    /// From this host time on (ms).
    pub since: Option<u64>,
    /// Up to this host time (ms).
    pub until: Option<u64>,
    /// At most this many, newest first (default 200).
    pub limit: Option<usize>,
}

/// One event the server keeps.
#[derive(Serialize, ToSchema)]
pub struct EventRow {
    pub id: u64,
    pub time_ms: u64,
    pub device: usize,
    pub group: String,
    pub importance: String,
    #[serde(rename = "type")]
    pub kind: String,
}

pub fn event_rows(world: &World, query: &EventQuery) -> Result<Vec<EventRow>, String> {
    let blank = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let importance = match blank(&query.importance) {
        Some(name) => Some(Importance::from_name(&name).ok_or_else(|| {
            format!(
                "importance: expected critical, functional_failure, warning or info, got `{name}`"
            )
        })?),
        None => None,
    };
    let n = world.devices.len();
    let devices = match (blank(&query.group), query.device) {
        (Some(group), _) => Some(world.server.in_group(world.server.tree().find(&group)?)),
        (None, Some(d)) => Some((0..n).map(|i| i == d).collect()),
        (None, None) => None,
    };
    let filter = Filter {
        devices,
        importance,
        kind: blank(&query.kind),
        since_ms: query.since,
        until_ms: query.until,
        ..Filter::default()
    };
    let limit = query.limit.unwrap_or(200);
    let mut rows: Vec<EventRow> = world
        .server
        .events()
        .query(&filter)
        .map(|e| EventRow {
            id: e.id,
            time_ms: e.time_ms,
            device: e.device,
            group: world.server.tree().path(e.group),
            importance: e.importance.as_str().to_string(),
            kind: e.kind.to_string(),
        })
        .collect();
    rows.reverse();
    rows.truncate(limit);
    Ok(rows)
}
