//! The administrators' actions through the console: who, when (the wall clock, RFC 3339,
//! beside the server's simulated time), what, on what, and how it ended.

use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::ActionRow;

#[derive(Serialize, ToSchema)]
pub struct ActionView {
    pub id: u64,
    pub at: String,
    pub time_ms: u64,
    pub user: String,
    pub what: String,
    pub target: String,
    pub outcome: String,
}

pub fn action_views(rows: Vec<ActionRow>) -> Vec<ActionView> {
    rows.into_iter()
        .map(|r| ActionView {
            id: r.id,
            at: super::events::rfc3339(r.wall_ms),
            time_ms: r.time_ms,
            user: r.user,
            what: r.what,
            target: r.target,
            outcome: r.outcome,
        })
        .collect()
}

pub fn actions_csv(rows: &[ActionView]) -> String {
    let mut out = super::csv::line(&["id", "at", "time_ms", "user", "what", "target", "outcome"]);
    for r in rows {
        out.push_str(&super::csv::line(&[
            &r.id.to_string(),
            &r.at,
            &r.time_ms.to_string(),
            &r.user,
            &r.what,
            &r.target,
            &r.outcome,
        ]));
    }
    out
}
