//! Group policies with every revision, as the consoles show them.
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::world::World;

/// One save of a policy.
#[derive(Serialize, ToSchema)]
pub struct RevisionRow {
    pub number: u32,
    pub by: String,
    pub time_ms: u64,
    pub what: String,
    /// The settings document of this revision.
    pub policy: Value,
    pub force_inheritance: bool,
    /// The profiles' names, first first.
    pub profiles: Vec<String>,
    /// The profiles whole, in the same order.
    pub profile_rows: Vec<ProfileRow>,
}

/// A profile of a revision: when it is active, and what it sets.
#[derive(Serialize, ToSchema)]
pub struct ProfileRow {
    pub name: String,
    pub out_of_office: Option<bool>,
    pub tags: Vec<String>,
    /// `always`, or its conditions in words.
    pub when: String,
    /// The settings object it states, as a policy document's `settings`.
    pub settings: Value,
}

/// A group policy, with its revisions, newest last.
#[derive(Serialize, ToSchema)]
pub struct PolicyRow {
    pub name: String,
    pub group: String,
    pub active: bool,
    pub revisions: Vec<RevisionRow>,
}

pub fn policy_rows(world: &World) -> Vec<PolicyRow> {
    world
        .server
        .policies()
        .iter()
        .map(|p| PolicyRow {
            name: p.name.clone(),
            group: world.server.tree().path(p.group),
            active: p.active,
            revisions: p
                .revisions
                .iter()
                .map(|r| RevisionRow {
                    number: r.number,
                    by: r.by.clone(),
                    time_ms: r.time_ms,
                    what: r.what.clone(),
                    policy: admin_server::policy::document(&r.content.settings),
                    force_inheritance: r.content.force_inheritance,
                    profiles: r.content.profiles.iter().map(|p| p.name.clone()).collect(),
                    profile_rows: r
                        .content
                        .profiles
                        .iter()
                        .map(|p| ProfileRow {
                            name: p.name.clone(),
                            out_of_office: p.condition.out_of_office,
                            tags: p.condition.tags.clone(),
                            when: p.condition.describe(),
                            settings: admin_server::policy::settings_json(&p.settings),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// What changed from revision `a` of a policy to revision `b` (any two), a line a change.
pub fn revisions_diff(world: &World, name: &str, a: u32, b: u32) -> Result<Vec<String>, String> {
    let policy = world.server.policy(name)?;
    let (before, after) = (policy.revision(a)?, policy.revision(b)?);
    Ok(admin_server::policy::diff(&before.content, &after.content))
}
