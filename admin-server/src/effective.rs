//! A device's effective policy: the active policies that reach its group, merged from the
//! root down, each with its active profiles, and the provenance of every setting.
//!
//! - A policy of group G reaches G and its subgroups, except through a subgroup whose
//!   "inherit from parent" is cleared, unless the policy forces inheritance. Only active
//!   policies reach anything.
//! - Merged from the root down: a downstream policy's value replaces an upstream one,
//!   unless the upstream value is locked (an upstream lock wins, and the provenance says
//!   which downstream values it overrode); a child may set and lock a setting its parent
//!   leaves unlocked.
//! - Within one policy, its active profiles' settings replace its own, the first profile
//!   in the list (the highest priority) last, so it wins.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    policy::{Entry, Policy, PolicyId},
    tree::{GroupId, Tree},
};

/// Where an effective setting comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provenance {
    pub group: GroupId,
    pub policy: PolicyId,
    pub revision: u32,
    /// The profile of that policy that set it, if one did.
    pub profile: Option<String>,
    /// Downstream policies whose value for this setting the upstream lock overrode.
    pub overrode: Vec<PolicyId>,
}

impl Provenance {
    /// What a delivery of this value is keyed by: the save (and profile) that set it. A
    /// device that changed the setting locally keeps its value until this changes.
    pub fn key(&self) -> (PolicyId, u32, Option<String>) {
        (self.policy, self.revision, self.profile.clone())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveSetting {
    pub entry: Entry,
    pub provenance: Provenance,
}

pub type Effective = BTreeMap<String, EffectiveSetting>;

/// The active policies that reach `group`, from the root down.
pub fn reaching<'a>(tree: &Tree, policies: &'a [Policy], group: GroupId) -> Vec<&'a Policy> {
    let chain = tree.chain(group);
    let mut found = Vec::new();
    for (depth, &owner) in chain.iter().enumerate() {
        let Some(policy) = policies.iter().find(|p| p.group == owner && p.active) else {
            continue;
        };
        let forced = policy.current().content.force_inheritance;
        let opted_out = chain[depth + 1..]
            .iter()
            .any(|&below| !tree.group(below).inherit);
        if forced || !opted_out {
            found.push(policy);
        }
    }
    found
}

/// The device's effective settings, given its group and properties.
pub fn effective(
    tree: &Tree,
    policies: &[Policy],
    group: GroupId,
    out_of_office: bool,
    tags: &BTreeSet<String>,
) -> Effective {
    let mut merged = Effective::new();
    for policy in reaching(tree, policies, group) {
        let revision = policy.current();
        let content = &revision.content;
        let mut own: BTreeMap<&str, (&Entry, Option<&str>)> = content
            .settings
            .iter()
            .map(|(path, entry)| (path.as_str(), (entry, None)))
            .collect();
        for profile in content
            .profiles
            .iter()
            .rev()
            .filter(|p| p.condition.holds(out_of_office, tags))
        {
            for (path, entry) in &profile.settings {
                own.insert(path, (entry, Some(profile.name.as_str())));
            }
        }
        for (path, (entry, profile)) in own {
            match merged.get_mut(path) {
                Some(upstream) if upstream.entry.locked => {
                    upstream.provenance.overrode.push(policy.id);
                }
                _ => {
                    merged.insert(
                        path.to_string(),
                        EffectiveSetting {
                            entry: entry.clone(),
                            provenance: Provenance {
                                group: policy.group,
                                policy: policy.id,
                                revision: revision.number,
                                profile: profile.map(String::from),
                                overrode: Vec::new(),
                            },
                        },
                    );
                }
            }
        }
    }
    merged
}
