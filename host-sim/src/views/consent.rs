//! The fleet's consent at a glance, what an auditor asks for first: for every device (of a
//! group and its subgroups), each statement and data category as its last consent event
//! said it: in force or not, since when, by whom (the administrator, the user on the
//! device, the policy and revision), which version.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::world::World;

/// Which devices the view shows.
#[derive(Deserialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct ConsentQuery {
    /// Only the devices of this group and its subgroups.
    pub group: Option<String>,
    /// The page, from 0 (a page is 100 devices).
    pub page: Option<String>,
    /// `csv` for a CSV file (every device the query selects).
    pub format: Option<String>,
}

/// One statement or category of one device.
#[derive(Serialize, ToSchema, Clone)]
pub struct ConsentRow {
    pub device: usize,
    pub group: String,
    /// `ksn`, `private_ksn` or `kmp`.
    pub statement: String,
    /// A data category (`files`, `urls`, `statistics`), or none for the statement.
    pub category: Option<String>,
    /// In force now.
    pub accepted: bool,
    pub version: u32,
    /// Host time, ms, of the consent event.
    pub since_ms: u64,
    /// Who, in words: `alice (through the console)`, `policy "Servers", revision 3`,
    /// `local`, `mode change`.
    pub by: String,
}

/// The view's rows, a page of devices, and how many devices the query selects.
/// How many of the selected devices have a statement, or a category, in force.
#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct ConsentTotal {
    pub statement: String,
    pub category: Option<String>,
    /// Devices where it is accepted (in force).
    pub in_force: usize,
    /// Devices that reported it at all (accepted or not).
    pub reported: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentPage {
    /// Devices the filter selects.
    pub devices: usize,
    pub page: usize,
    /// Over every selected device, not only this page's.
    pub totals: Vec<ConsentTotal>,
    pub rows: Vec<ConsentRow>,
}

/// Devices a page.
const PER_PAGE: usize = 100;

fn by(c: &admin_server::Consent) -> String {
    let mut words = match (&c.policy, c.source.as_str()) {
        (Some((name, revision)), _) => format!("policy {name:?}, revision {revision}"),
        (None, source) => source.replace('_', " "),
    };
    if let Some(user) = &c.user {
        words = format!("{user} (through the console): {words}");
    }
    words
}

pub fn consent_page(
    world: &World,
    query: &ConsentQuery,
    every: bool,
) -> Result<ConsentPage, String> {
    let group = match query
        .group
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        Some(g) => Some(world.server.tree().find(g)?),
        None => None,
    };
    let page = match query
        .page
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => p
            .parse::<usize>()
            .map_err(|_| format!("page: expected a whole number, got {p:?}"))?,
        None => 0,
    };
    let tree = world.server.tree();
    let selected: Vec<usize> = world
        .server
        .devices()
        .iter()
        .enumerate()
        .filter(|(_, d)| group.is_none_or(|g| tree.within(d.group, g)))
        .map(|(i, _)| i)
        .collect();
    let mut totals: Vec<ConsentTotal> = Vec::new();
    for &i in &selected {
        for c in &world.server.device(i).consent {
            let at = match totals
                .iter()
                .position(|t| t.statement == c.statement && t.category == c.category)
            {
                Some(at) => at,
                None => {
                    totals.push(ConsentTotal {
                        statement: c.statement.clone(),
                        category: c.category.clone(),
                        in_force: 0,
                        reported: 0,
                    });
                    totals.len() - 1
                }
            };
            totals[at].reported += 1;
            totals[at].in_force += usize::from(c.accepted);
        }
    }
    totals.sort_by(|a, b| (&a.statement, &a.category).cmp(&(&b.statement, &b.category)));
    let last = selected.len().saturating_sub(1) / PER_PAGE;
    let page = page.min(last);
    let shown: Vec<usize> = if every {
        selected.clone()
    } else {
        selected
            .iter()
            .skip(page * PER_PAGE)
            .take(PER_PAGE)
            .copied()
            .collect()
    };
    let mut rows = Vec::new();
    for i in shown {
        let d = world.server.device(i);
        for c in &d.consent {
            rows.push(ConsentRow {
                device: i,
                group: tree.path(d.group),
                statement: c.statement.clone(),
                category: c.category.clone(),
                accepted: c.accepted,
                version: c.version,
                since_ms: c.since_ms,
                by: by(c),
            });
        }
    }
    Ok(ConsentPage {
        devices: selected.len(),
        page,
        totals,
        rows,
    })
}

pub fn consent_csv(rows: &[ConsentRow]) -> String {
    let mut out = super::csv::line(&[
        "device",
        "group",
        "statement",
        "category",
        "accepted",
        "version",
        "since_ms",
        "by",
    ]);
    for r in rows {
        out.push_str(&super::csv::line(&[
            &r.device.to_string(),
            &r.group,
            &r.statement,
            r.category.as_deref().unwrap_or(""),
            if r.accepted { "true" } else { "false" },
            &r.version.to_string(),
            &r.since_ms.to_string(),
            &r.by,
        ]));
    }
    out
}
