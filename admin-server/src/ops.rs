//! Every change an administrator makes, as one typed operation: validated whole first, then
//! made, or refused with the server's error and nothing changed.

use serde_json::{json, Value as Json};

use crate::{
    editor,
    policy::{parse_settings, Condition, Content, Profile, Settings},
    GroupId, PolicyId, Server, ServerError, Tree, ROOT_POLICY,
};

/// Who makes a change, and when (host time).
#[derive(Clone, Debug)]
pub struct Context {
    pub by: String,
    pub now_ms: u64,
}

impl Context {
    pub fn new(by: impl Into<String>, now_ms: u64) -> Self {
        Self {
            by: by.into(),
            now_ms,
        }
    }
}

/// A profile as the administrator writes it: its settings as in a policy document.
#[derive(Clone, Debug, Default)]
pub struct ProfileDoc {
    pub name: String,
    pub when: Condition,
    /// `{section: {key: value | {value, locked}}}`; `None`: no settings.
    pub settings: Option<Json>,
}

/// A change of the server's.
#[derive(Clone, Debug)]
pub enum Operation {
    /// A new group, by path (its parent must exist).
    CreateGroup {
        path: String,
        inherit: bool,
        private_ksn: Option<bool>,
    },
    /// A group's "inherit from parent" flag, or its own KSN proxy setting (`Some(None)`:
    /// back to its parent's, and at the top the server's).
    SetGroup {
        path: String,
        inherit: Option<bool>,
        private_ksn: Option<Option<bool>>,
    },
    RenameGroup {
        path: String,
        name: String,
    },
    /// Deletes a group without subgroups: its devices move to its parent, its policies are
    /// deleted (their locks released, nothing restored).
    DeleteGroup {
        path: String,
    },
    MoveDevices {
        devices: Vec<usize>,
        group: String,
    },
    /// Device properties: a connection, switched on, out of the office, tags.
    SetDevices {
        devices: Vec<usize>,
        connected: Option<bool>,
        online: Option<bool>,
        out_of_office: Option<bool>,
        tags: Option<Vec<String>>,
    },
    CreatePolicy {
        name: String,
        group: String,
        policy: Json,
        profiles: Vec<ProfileDoc>,
        force_inheritance: bool,
        active: bool,
    },
    /// A new revision: each part given replaces that part.
    EditPolicy {
        name: String,
        policy: Option<Json>,
        profiles: Option<Vec<ProfileDoc>>,
        force_inheritance: Option<bool>,
    },
    ActivatePolicy {
        name: String,
    },
    DeactivatePolicy {
        name: String,
    },
    /// Deletes a policy, made inactive first: its locks are released, nothing restored.
    DeletePolicy {
        name: String,
    },
    RenamePolicy {
        name: String,
        new_name: String,
    },
    RollBackPolicy {
        name: String,
        revision: u32,
    },
    /// Adds a profile or replaces the one of its name, at `priority` (1 first), by default
    /// where it was, or last.
    SetProfile {
        name: String,
        profile: ProfileDoc,
        priority: Option<usize>,
    },
    RemoveProfile {
        name: String,
        profile: String,
    },
    /// Saves the root group's active policy with these settings (its profiles and flags
    /// kept), or creates it.
    SaveRootPolicy {
        policy: Json,
    },
    /// The server's KSN proxy setting.
    SetPrivateKsn {
        enabled: bool,
    },
    /// An update: `library` (a plugin library's name or path) is installed on `devices`,
    /// those switched on at once, the others at their next synchronisation.
    InstallPlugin {
        devices: Vec<usize>,
        library: String,
    },
}

/// What a change touched, for the host to record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Group(GroupId),
    Device(usize),
    Policy(PolicyId),
    PolicyDeleted(PolicyId),
    /// The server's own settings.
    Settings,
}

/// What came of an operation.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// What was done, in words (`created policy "Servers"`).
    pub what: String,
    pub changes: Vec<Change>,
    /// Devices that came back (connected or switched on): they synchronise now.
    pub back: Vec<usize>,
}

impl Applied {
    fn of(what: impl Into<String>, changes: Vec<Change>) -> Self {
        Self {
            what: what.into(),
            changes,
            back: Vec::new(),
        }
    }
}

impl Server {
    /// Makes one change, whole, or refuses it and changes nothing.
    pub fn apply(&mut self, op: &Operation, ctx: &Context) -> Result<Applied, ServerError> {
        match op {
            Operation::CreateGroup {
                path,
                inherit,
                private_ksn,
            } => {
                let trimmed = path.trim_matches('/');
                let (parent, name) = match trimmed.rsplit_once('/') {
                    Some((parent, name)) => (self.tree.find(parent)?, name),
                    None => (Tree::ROOT, trimmed),
                };
                let id = self.tree.add(parent, name)?;
                let group = self.tree.group_mut(id);
                group.inherit = *inherit;
                group.private_ksn = *private_ksn;
                Ok(Applied::of(
                    format!("created group {}", self.tree.path(id)),
                    vec![Change::Group(id)],
                ))
            }
            Operation::SetGroup {
                path,
                inherit,
                private_ksn,
            } => {
                let id = self.tree.find(path)?;
                if id == Tree::ROOT && *inherit == Some(false) {
                    return Err(ServerError::not_allowed(
                        "the root group has no parent to inherit from",
                    ));
                }
                let group = self.tree.group_mut(id);
                if let Some(inherit) = inherit {
                    group.inherit = *inherit;
                }
                if let Some(private_ksn) = private_ksn {
                    group.private_ksn = *private_ksn;
                }
                Ok(Applied::of(
                    format!("changed group {}", self.tree.path(id)),
                    vec![Change::Group(id)],
                ))
            }
            Operation::RenameGroup { path, name } => {
                let id = self.tree.find(path)?;
                let before = self.tree.path(id);
                self.tree.rename(id, name)?;
                Ok(Applied::of(
                    format!("renamed group {before} to {}", self.tree.path(id)),
                    vec![Change::Group(id)],
                ))
            }
            Operation::DeleteGroup { path } => {
                let id = self.tree.find(path)?;
                let gone = self.tree.path(id);
                let parent = self.tree.remove(id)?;
                let mut changes = vec![Change::Group(id)];
                for (i, d) in self.devices.iter_mut().enumerate() {
                    if d.group == id {
                        d.group = parent;
                        changes.push(Change::Device(i));
                    }
                }
                let policies: Vec<PolicyId> = self
                    .policies
                    .iter()
                    .filter(|p| p.group == id)
                    .map(|p| p.id)
                    .collect();
                self.policies.retain(|p| p.group != id);
                changes.extend(policies.into_iter().map(Change::PolicyDeleted));
                Ok(Applied::of(
                    format!(
                        "deleted group {gone} (its devices moved to {})",
                        self.tree.path(parent)
                    ),
                    changes,
                ))
            }
            Operation::MoveDevices { devices, group } => {
                let id = self.tree.find(group)?;
                self.check_devices(devices)?;
                for &d in devices {
                    self.devices[d].group = id;
                }
                Ok(Applied::of(
                    format!("moved {} devices to {}", devices.len(), self.tree.path(id)),
                    devices.iter().map(|&d| Change::Device(d)).collect(),
                ))
            }
            Operation::SetDevices {
                devices,
                connected,
                online,
                out_of_office,
                tags,
            } => {
                self.check_devices(devices)?;
                for tag in tags.iter().flatten() {
                    crate::names::check("tag", tag)?;
                }
                let mut back = Vec::new();
                for &i in devices {
                    let record = &mut self.devices[i];
                    let was_reachable = record.reachable();
                    if let Some(c) = connected {
                        record.connected = *c;
                    }
                    if let Some(o) = online {
                        record.online = *o;
                    }
                    if let Some(away) = out_of_office {
                        record.out_of_office = *away;
                    }
                    if let Some(tags) = tags {
                        record.tags = tags.iter().cloned().collect();
                    }
                    if !was_reachable
                        && record.online
                        && (*connected == Some(true) || *online == Some(true))
                    {
                        back.push(i);
                    }
                }
                Ok(Applied {
                    back,
                    ..Applied::of(
                        format!("changed {} devices", devices.len()),
                        devices.iter().map(|&d| Change::Device(d)).collect(),
                    )
                })
            }
            Operation::CreatePolicy {
                name,
                group,
                policy,
                profiles,
                force_inheritance,
                active,
            } => {
                let group = self.tree.find(group)?;
                let content = Content {
                    settings: self.editor_settings(group, policy, "policy")?,
                    profiles: self.profiles(group, profiles)?,
                    force_inheritance: *force_inheritance,
                };
                let id = self.create_policy(group, name, content, *active, &ctx.by, ctx.now_ms)?;
                Ok(Applied::of(
                    format!("created policy {name:?}"),
                    self.policy_changes(id),
                ))
            }
            Operation::EditPolicy {
                name,
                policy,
                profiles,
                force_inheritance,
            } => {
                let group = self.policy(name)?.group;
                let settings = policy
                    .as_ref()
                    .map(|doc| self.editor_settings(group, doc, "policy"))
                    .transpose()?;
                let profiles = profiles
                    .as_ref()
                    .map(|specs| self.profiles(group, specs))
                    .transpose()?;
                let number = self.edit_policy(name, "edited", &ctx.by, ctx.now_ms, |c| {
                    if let Some(s) = settings {
                        c.settings = s;
                    }
                    if let Some(p) = profiles {
                        c.profiles = p;
                    }
                    if let Some(f) = force_inheritance {
                        c.force_inheritance = *f;
                    }
                    Ok(())
                })?;
                self.saved(name, format!("saved policy {name:?}, revision {number}"))
            }
            Operation::ActivatePolicy { name } => {
                self.activate(name)?;
                let group = self.policy(name)?.group;
                let changes = self
                    .policies
                    .iter()
                    .filter(|p| p.group == group)
                    .map(|p| Change::Policy(p.id))
                    .collect();
                Ok(Applied::of(format!("activated policy {name:?}"), changes))
            }
            Operation::DeactivatePolicy { name } => {
                self.deactivate(name)?;
                self.saved(name, format!("deactivated policy {name:?}"))
            }
            Operation::DeletePolicy { name } => {
                let id = self.policy(name)?.id;
                self.delete(name)?;
                Ok(Applied::of(
                    format!("deleted policy {name:?}"),
                    vec![Change::PolicyDeleted(id)],
                ))
            }
            Operation::RenamePolicy { name, new_name } => {
                crate::names::check("policy", new_name)?;
                if new_name != name && self.policies.iter().any(|p| p.name == *new_name) {
                    return Err(ServerError::name_taken(format!(
                        "a policy named {new_name:?} already exists"
                    )));
                }
                self.policy_mut(name)?.name = new_name.clone();
                self.saved(new_name, format!("renamed policy {name:?} to {new_name:?}"))
            }
            Operation::RollBackPolicy { name, revision } => {
                let number = self.roll_back(name, *revision, &ctx.by, ctx.now_ms)?;
                self.saved(
                    name,
                    format!(
                        "rolled policy {name:?} back to revision {revision} (revision {number})"
                    ),
                )
            }
            Operation::SetProfile {
                name,
                profile,
                priority,
            } => {
                let group = self.policy(name)?.group;
                let profile = self.profile(group, profile, "profile")?;
                let what = format!("profile {:?} set", profile.name);
                self.edit_policy(name, &what, &ctx.by, ctx.now_ms, |c| {
                    let at = c.profiles.iter().position(|p| p.name == profile.name);
                    if let Some(at) = at {
                        c.profiles.remove(at);
                    }
                    let place = priority
                        .map(|p| p.saturating_sub(1))
                        .or(at)
                        .unwrap_or(c.profiles.len())
                        .min(c.profiles.len());
                    c.profiles.insert(place, profile);
                    Ok(())
                })?;
                self.saved(name, format!("policy {name:?}: {what}"))
            }
            Operation::RemoveProfile { name, profile } => {
                let what = format!("profile {profile:?} removed");
                self.edit_policy(name, &what, &ctx.by, ctx.now_ms, |c| {
                    let before = c.profiles.len();
                    c.profiles.retain(|p| p.name != *profile);
                    if c.profiles.len() == before {
                        return Err(ServerError::not_found(format!(
                            "policy {name:?} has no profile {profile:?}"
                        )));
                    }
                    Ok(())
                })?;
                self.saved(name, format!("policy {name:?}: {what}"))
            }
            Operation::SaveRootPolicy { policy } => {
                let modes = self.tree.modes_within(Tree::ROOT, self.private_ksn);
                let stamped = editor::stamp(policy, &self.descriptions_within(Tree::ROOT), modes);
                let settings = editor::holdable(&stamped).ok_or_else(|| {
                    ServerError::invalid_settings("a policy is {\"settings\": {...}}")
                })?;
                let name = self.save_root_policy(settings, &ctx.by, ctx.now_ms)?;
                self.saved(&name, format!("saved policy {name:?}"))
            }
            Operation::InstallPlugin { devices, library } => {
                self.check_devices(devices)?;
                if devices.is_empty() {
                    return Err(ServerError::not_found(
                        "an update needs devices to install on",
                    ));
                }
                crate::names::check_library(library)?;
                for &d in devices {
                    self.devices[d].install = Some(library.clone());
                }
                let n = devices.len();
                Ok(Applied::of(
                    format!(
                        "install {library} on {n} device{}",
                        if n == 1 { "" } else { "s" }
                    ),
                    devices.iter().map(|&d| Change::Device(d)).collect(),
                ))
            }
            Operation::SetPrivateKsn { enabled } => {
                self.private_ksn = *enabled;
                Ok(Applied::of(
                    format!(
                        "switched Private KSN {}",
                        if *enabled { "on" } else { "off" }
                    ),
                    vec![Change::Settings],
                ))
            }
        }
    }

    fn check_devices(&self, devices: &[usize]) -> Result<(), ServerError> {
        match devices.iter().find(|&&d| d >= self.devices.len()) {
            Some(d) => Err(ServerError::not_found(format!(
                "no device {d} (devices 0 to {})",
                self.devices.len().saturating_sub(1)
            ))),
            None => Ok(()),
        }
    }

    /// A save of policy `name`: what it touched.
    fn saved(&self, name: &str, what: String) -> Result<Applied, ServerError> {
        let id = self.policy(name)?.id;
        Ok(Applied::of(what, self.policy_changes(id)))
    }

    /// A policy, and the others of its group (an activation deactivates them).
    fn policy_changes(&self, id: PolicyId) -> Vec<Change> {
        let group = self.policy_by_id(id).map(|p| p.group);
        self.policies
            .iter()
            .filter(|p| p.id == id || Some(p.group) == group)
            .map(|p| Change::Policy(p.id))
            .collect()
    }

    /// A policy document's settings, as the editor takes it for `group`: stamped with the
    /// versions of the statements shown for the modes of the groups it covers, checked
    /// against the plugin's policy schema.
    fn editor_settings(
        &self,
        group: GroupId,
        policy: &Json,
        place: &str,
    ) -> Result<Settings, ServerError> {
        let modes = self.tree.modes_within(group, self.private_ksn);
        let stamped = editor::stamp(policy, &self.descriptions_within(group), modes);
        let invalid = ServerError::invalid_settings;
        editor::check(&stamped, &self.labelled_descriptions_within(group))
            .map_err(|e| invalid(format!("{place}: {e}")))?;
        let Some(settings) = stamped.get("settings") else {
            return Err(invalid(format!(
                "{place}: a policy is {{\"settings\": {{...}}}}"
            )));
        };
        if let Some(extra) = stamped
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "settings"))
        {
            return Err(invalid(format!(
                "{place}.{extra}: unknown field, expected `settings`"
            )));
        }
        parse_settings(settings, &format!("{place}.settings")).map_err(invalid)
    }

    fn profile(
        &self,
        group: GroupId,
        doc: &ProfileDoc,
        place: &str,
    ) -> Result<Profile, ServerError> {
        crate::names::check("profile", &doc.name)?;
        for tag in &doc.when.tags {
            crate::names::check("tag", tag)?;
        }
        let settings = match &doc.settings {
            None | Some(Json::Null) => Settings::new(),
            Some(settings) => {
                self.editor_settings(group, &json!({ "settings": settings }), place)?
            }
        };
        Ok(Profile {
            name: doc.name.clone(),
            condition: doc.when.clone(),
            settings,
        })
    }

    fn profiles(&self, group: GroupId, docs: &[ProfileDoc]) -> Result<Vec<Profile>, ServerError> {
        docs.iter()
            .enumerate()
            .map(|(i, p)| self.profile(group, p, &format!("profiles[{i}]")))
            .collect()
    }

    /// `SaveRootPolicy`'s policy: the root's active one, or a new one; its name.
    fn save_root_policy(
        &mut self,
        settings: Settings,
        by: &str,
        now: u64,
    ) -> Result<String, ServerError> {
        match self.active_policy(Tree::ROOT).map(|p| p.name.clone()) {
            Some(name) => {
                self.edit_policy(&name, "edited", by, now, |c| {
                    c.settings = settings;
                    Ok(())
                })?;
                Ok(name)
            }
            None => {
                let mut name = ROOT_POLICY.to_string();
                let mut n = 1;
                while self.policies.iter().any(|p| p.name == name) {
                    n += 1;
                    name = format!("{ROOT_POLICY} ({n})");
                }
                let content = Content {
                    settings,
                    ..Content::default()
                };
                self.create_policy(Tree::ROOT, &name, content, true, by, now)?;
                Ok(name)
            }
        }
    }
}
