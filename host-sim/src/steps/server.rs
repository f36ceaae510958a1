//! Steps of the Administration Server's administrator: groups, devices in them, group
//! policies (create, edit, activate, deactivate, delete, roll back), profiles. Each change
//! reaches connected devices at once and the others at their next synchronisation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::{json_argument, number, usage, StepError, StepKind};
use crate::world::{Answers, World};
use admin_server::{Condition, Operation, ProfileDoc};

/// `key=value` words of the console, as JSON fields (`on`/`off` are booleans, a list is
/// comma-separated).
fn flags(words: &[&str], known: &[(&str, Kind)]) -> Result<Map<String, Json>, String> {
    let mut fields = Map::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("expected key=value, got `{word}`"));
        };
        let Some((_, kind)) = known.iter().find(|(k, _)| *k == key) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown `{key}`; expected one of {}",
                names.join(", ")
            ));
        };
        let value = match kind {
            Kind::Switch => match value {
                "on" | "true" => Json::Bool(true),
                "off" | "false" => Json::Bool(false),
                _ => return Err(format!("{key}: expected on or off, got `{value}`")),
            },
            Kind::List => Json::from(
                value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
            ),
        };
        fields.insert(key.to_string(), value);
    }
    Ok(fields)
}

enum Kind {
    Switch,
    List,
}

/// A profile of a policy, as a scenario states it.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    /// When it is active on a device: every condition given holds.
    #[serde(default)]
    pub when: ConditionSpec,
    /// The settings it overrides, as in a policy: `{section: {key: value | {value, locked}}}`.
    #[serde(default)]
    pub settings: Json,
}

#[derive(Deserialize, JsonSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    #[serde(default)]
    pub out_of_office: Option<bool>,
    /// The device has every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A profile as the step states it, as the server takes it.
fn profile_doc(spec: &ProfileSpec) -> ProfileDoc {
    ProfileDoc {
        name: spec.name.clone(),
        when: Condition {
            out_of_office: spec.when.out_of_office,
            tags: spec.when.tags.clone(),
        },
        settings: (!spec.settings.is_null()).then(|| spec.settings.clone()),
    }
}

/// What a step does: the devices' answers, or the server's refusal (nothing changed).
trait Act {
    fn act(&self, world: &mut World) -> Result<Answers, StepError>;
}

/// The devices a step addresses (`on`), by number.
fn addressed(world: &World) -> Vec<usize> {
    let selection = world.selection.clone();
    (0..world.devices.len())
        .filter(|i| selection.as_ref().is_none_or(|s| s[*i]))
        .collect()
}

/// Creates an administration group (its parent must exist): `Servers/Private KSN`.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub group: String,
    #[serde(default)]
    pub inherit: Option<bool>,
    #[serde(default)]
    pub private_ksn: Option<bool>,
}

impl StepKind for CreateGroup {
    const NAME: &'static str = "create_group";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<path> [inherit=on|off] [private_ksn=on|off]";
    const HELP: &'static str = "create an administration group";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        let Some((path, rest)) = words.split_first() else {
            return Err(usage::<Self>());
        };
        let mut fields = flags(
            rest,
            &[("inherit", Kind::Switch), ("private_ksn", Kind::Switch)],
        )?;
        fields.insert("group".into(), Json::from(*path));
        Ok(fields)
    }

    fn arguments(&self) -> String {
        self.group.clone()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for CreateGroup {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::CreateGroup {
            path: self.group.clone(),
            inherit: self.inherit.unwrap_or(true),
            private_ksn: self.private_ksn,
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Changes a group's flags: "inherit from parent", its own KSN proxy setting (`true`,
/// `false`, or `"server"`: back to its parent's, and at the top the server's).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetGroup {
    pub group: String,
    #[serde(default)]
    pub inherit: Option<bool>,
    #[serde(default)]
    pub private_ksn: Option<OwnPrivateKsn>,
}

/// A group's own KSN proxy setting, or none (`"server"`).
#[derive(Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq)]
#[serde(untagged)]
pub enum OwnPrivateKsn {
    Own(bool),
    Inherited(ServerSetting),
}

#[derive(Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ServerSetting {
    Server,
}

impl OwnPrivateKsn {
    fn setting(self) -> Option<bool> {
        match self {
            OwnPrivateKsn::Own(on) => Some(on),
            OwnPrivateKsn::Inherited(_) => None,
        }
    }
}

impl StepKind for SetGroup {
    const NAME: &'static str = "set_group";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<path> [inherit=on|off] [private_ksn=on|off]";
    const HELP: &'static str = "change a group's inherit flag or KSN proxy setting";

    fn fields(words: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        CreateGroup::fields(words, rest)
    }

    fn arguments(&self) -> String {
        let mut parts = vec![self.group.clone()];
        if let Some(i) = self.inherit {
            parts.push(format!("inherit={i}"));
        }
        match self.private_ksn {
            Some(OwnPrivateKsn::Own(p)) => parts.push(format!("private_ksn={p}")),
            Some(OwnPrivateKsn::Inherited(_)) => parts.push("private_ksn=server".into()),
            None => {}
        }
        parts.join(" ")
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for SetGroup {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::SetGroup {
            path: self.group.clone(),
            inherit: self.inherit,
            private_ksn: self.private_ksn.map(OwnPrivateKsn::setting),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Moves the step's devices (`on`) into a group.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct MoveDevices {
    pub group: String,
}

impl StepKind for MoveDevices {
    const NAME: &'static str = "move_devices";
    const USAGE: &'static str = "<group>";
    const HELP: &'static str = "move the step's devices (on) into a group";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [group] => Ok(Map::from_iter([("group".into(), Json::from(*group))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        self.group.clone()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for MoveDevices {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::MoveDevices {
            devices: addressed(world),
            group: self.group.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// An update: installs a plugin library (a name, looked for the way the plugin is, or a
/// path) on the step's devices (`on`: a group or devices; default every device). Those
/// switched on get it at once, the others at their next synchronisation; a device where
/// it cannot be installed (not found, refused by this host, another plugin, a task that
/// cannot be made over its storage) keeps its version and says why. The updated devices
/// are sent their policy again, for their new version.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct InstallPlugin {
    pub plugin: String,
}

impl StepKind for InstallPlugin {
    const NAME: &'static str = "install_plugin";
    const USAGE: &'static str = "<library>";
    const HELP: &'static str = "an update: install a plugin library on the step's devices (on)";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [library] => Ok(Map::from_iter([("plugin".into(), Json::from(*library))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        self.plugin.clone()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for InstallPlugin {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::InstallPlugin {
            devices: addressed(world),
            library: self.plugin.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Device properties as the server knows them, on the step's devices (`on`): whether it
/// holds a connection (`connected`), is switched on (`online`), is out of the office, its
/// tags. A device that connects or comes back synchronises at once.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetDevice {
    #[serde(default)]
    pub connected: Option<bool>,
    #[serde(default)]
    pub online: Option<bool>,
    #[serde(default)]
    pub out_of_office: Option<bool>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl StepKind for SetDevice {
    const NAME: &'static str = "set_device";
    const USAGE: &'static str =
        "[connected=on|off] [online=on|off] [out_of_office=on|off] [tags=a,b]";
    const HELP: &'static str = "change the step's devices' properties (on)";
    const COMPLETE: &'static [&'static [&'static str]] = &[&[
        "connected=on",
        "connected=off",
        "online=on",
        "online=off",
        "out_of_office=on",
        "out_of_office=off",
        "tags=",
    ]];

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        flags(
            words,
            &[
                ("connected", Kind::Switch),
                ("online", Kind::Switch),
                ("out_of_office", Kind::Switch),
                ("tags", Kind::List),
            ],
        )
    }

    fn arguments(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("connected", self.connected),
            ("online", self.online),
            ("out_of_office", self.out_of_office),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        if let Some(tags) = &self.tags {
            parts.push(format!("tags={}", tags.join(",")));
        }
        parts.join(" ")
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for SetDevice {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::SetDevices {
            devices: addressed(world),
            connected: self.connected,
            online: self.online,
            out_of_office: self.out_of_office,
            tags: self.tags.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Creates a policy in a group (revision 1), active unless told otherwise; an active one
/// makes the group's active policy inactive.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    pub name: String,
    /// The group (default the root, `/`).
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "empty_policy")]
    #[schemars(schema_with = "crate::schemas::policy")]
    pub policy: Json,
    #[serde(default)]
    pub profiles: Vec<ProfileSpec>,
    #[serde(default)]
    pub force_inheritance: bool,
    #[serde(default = "yes")]
    pub active: bool,
    /// Who saves it (default `admin`).
    #[serde(default)]
    pub by: Option<String>,
}

fn root() -> String {
    "/".into()
}

fn empty_policy() -> Json {
    json!({"settings": {}})
}

fn yes() -> bool {
    true
}

impl StepKind for CreatePolicy {
    const NAME: &'static str = "create_policy";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<name> <group> [<json> | @file]";
    const HELP: &'static str = "create a group policy";

    fn fields(words: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        let [name, group, ..] = words else {
            return Err(usage::<Self>());
        };
        let mut fields = Map::from_iter([
            ("name".into(), Json::from(*name)),
            ("group".into(), Json::from(*group)),
        ]);
        let doc = rest
            .trim_start()
            .strip_prefix(name)
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix(group))
            .unwrap_or("")
            .trim();
        if !doc.is_empty() {
            fields.insert("policy".into(), json_argument(doc)?);
        }
        Ok(fields)
    }

    fn arguments(&self) -> String {
        format!("{:?} in {}", self.name, self.group)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for CreatePolicy {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::CreatePolicy {
            name: self.name.clone(),
            group: self.group.clone(),
            policy: self.policy.clone(),
            profiles: self.profiles.iter().map(profile_doc).collect(),
            force_inheritance: self.force_inheritance,
            active: self.active,
        };
        Ok(world.apply(&op, self.by.as_deref())?)
    }
}

/// Saves a new revision of a policy: each part given replaces that part.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct EditPolicy {
    pub name: String,
    #[serde(default)]
    #[schemars(schema_with = "crate::schemas::policy_or_null")]
    pub policy: Option<Json>,
    #[serde(default)]
    pub profiles: Option<Vec<ProfileSpec>>,
    #[serde(default)]
    pub force_inheritance: Option<bool>,
    #[serde(default)]
    pub by: Option<String>,
}

impl StepKind for EditPolicy {
    const NAME: &'static str = "edit_policy";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<name> <json> | @file";
    const HELP: &'static str = "save a new revision of a policy's settings";

    fn fields(words: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        let Some(name) = words.first() else {
            return Err(usage::<Self>());
        };
        let doc = rest.trim_start().strip_prefix(name).unwrap_or("").trim();
        Ok(Map::from_iter([
            ("name".into(), Json::from(*name)),
            ("policy".into(), json_argument(doc)?),
        ]))
    }

    fn arguments(&self) -> String {
        format!("{:?}", self.name)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for EditPolicy {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::EditPolicy {
            name: self.name.clone(),
            policy: self.policy.clone(),
            profiles: self
                .profiles
                .as_ref()
                .map(|specs| specs.iter().map(profile_doc).collect()),
            force_inheritance: self.force_inheritance,
        };
        Ok(world.apply(&op, self.by.as_deref())?)
    }
}

macro_rules! named_policy_step {
    ($step:ident, $name:literal, $help:literal, $doc:literal, |$policy:ident| $body:expr) => {
        #[doc = $doc]
        #[derive(Deserialize, JsonSchema, Debug, Clone)]
        #[serde(deny_unknown_fields)]
        pub struct $step {
            pub name: String,
        }

        impl StepKind for $step {
            const NAME: &'static str = $name;
            const ADDRESSES_DEVICES: bool = false;
            const USAGE: &'static str = "<policy>";
            const HELP: &'static str = $help;

            fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
                match words {
                    [name] => Ok(Map::from_iter([("name".into(), Json::from(*name))])),
                    _ => Err(usage::<Self>()),
                }
            }

            fn arguments(&self) -> String {
                format!("{:?}", self.name)
            }

            fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
                self.act(world)
            }
        }

        impl Act for $step {
            fn act(&self, world: &mut World) -> Result<Answers, StepError> {
                let $policy = self.name.clone();
                Ok(world.apply(&$body, None)?)
            }
        }
    };
}

named_policy_step!(
    ActivatePolicy,
    "activate_policy",
    "make a policy its group's active one",
    "Makes a policy its group's active one (the active one becomes inactive).",
    |name| Operation::ActivatePolicy { name }
);
named_policy_step!(
    DeactivatePolicy,
    "deactivate_policy",
    "make a policy inactive (its locks are released)",
    "Makes a policy inactive: it reaches no device; its locks are released and nothing is restored.",
    |name| Operation::DeactivatePolicy { name }
);
named_policy_step!(
    DeletePolicy,
    "delete_policy",
    "delete a policy (made inactive first)",
    "Deletes a policy, made inactive first: its locks are released and nothing is restored.",
    |name| Operation::DeletePolicy { name }
);

/// Renames a group (not the root).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RenameGroup {
    pub group: String,
    pub name: String,
}

impl StepKind for RenameGroup {
    const NAME: &'static str = "rename_group";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<path> <new name>";
    const HELP: &'static str = "rename a group";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [group, name @ ..] if !name.is_empty() => Ok(Map::from_iter([
                ("group".into(), Json::from(*group)),
                ("name".into(), Json::from(name.join(" "))),
            ])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("{} to {:?}", self.group, self.name)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::RenameGroup {
            path: self.group.clone(),
            name: self.name.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Deletes a group without subgroups: its devices move to its parent, its policies are
/// deleted (their locks released, nothing restored).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeleteGroup {
    pub group: String,
}

impl StepKind for DeleteGroup {
    const NAME: &'static str = "delete_group";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<path>";
    const HELP: &'static str = "delete a group (its devices move to its parent)";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [group] => Ok(Map::from_iter([("group".into(), Json::from(*group))])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        self.group.clone()
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::DeleteGroup {
            path: self.group.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Renames a policy.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RenamePolicy {
    pub name: String,
    pub new_name: String,
}

impl StepKind for RenamePolicy {
    const NAME: &'static str = "rename_policy";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<policy> <new name>";
    const HELP: &'static str = "rename a policy";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [name, new @ ..] if !new.is_empty() => Ok(Map::from_iter([
                ("name".into(), Json::from(*name)),
                ("new_name".into(), Json::from(new.join(" "))),
            ])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("{:?} to {:?}", self.name, self.new_name)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::RenamePolicy {
            name: self.name.clone(),
            new_name: self.new_name.clone(),
        };
        Ok(world.apply(&op, None)?)
    }
}

/// Rolls a policy back to one of its revisions (saved as a new revision).
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RollBackPolicy {
    pub name: String,
    pub revision: u32,
    #[serde(default)]
    pub by: Option<String>,
}

impl StepKind for RollBackPolicy {
    const NAME: &'static str = "roll_back_policy";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<policy> <revision>";
    const HELP: &'static str = "roll a policy back to a revision";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [name, revision] => Ok(Map::from_iter([
                ("name".into(), Json::from(*name)),
                ("revision".into(), Json::from(number(revision)?)),
            ])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("{:?} to revision {}", self.name, self.revision)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for RollBackPolicy {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::RollBackPolicy {
            name: self.name.clone(),
            revision: self.revision,
        };
        Ok(world.apply(&op, self.by.as_deref())?)
    }
}

/// Adds a profile to a policy, or replaces the one of that name; `priority` is its place
/// in the list (1 first; the first active profile wins), by default the end for a new one.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetProfile {
    pub name: String,
    pub profile: ProfileSpec,
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub priority: Option<usize>,
    #[serde(default)]
    pub by: Option<String>,
}

impl StepKind for SetProfile {
    const NAME: &'static str = "set_profile";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<policy> <json> | @file";
    const HELP: &'static str = "add or replace a profile of a policy";

    fn fields(words: &[&str], rest: &str) -> Result<Map<String, Json>, String> {
        let Some(name) = words.first() else {
            return Err(usage::<Self>());
        };
        let doc = rest.trim_start().strip_prefix(name).unwrap_or("").trim();
        Ok(Map::from_iter([
            ("name".into(), Json::from(*name)),
            ("profile".into(), json_argument(doc)?),
        ]))
    }

    fn arguments(&self) -> String {
        format!("{:?} profile {:?}", self.name, self.profile.name)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for SetProfile {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::SetProfile {
            name: self.name.clone(),
            profile: profile_doc(&self.profile),
            priority: self.priority,
        };
        Ok(world.apply(&op, self.by.as_deref())?)
    }
}

/// Removes a profile from a policy.
#[derive(Deserialize, JsonSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RemoveProfile {
    pub name: String,
    pub profile: String,
    #[serde(default)]
    pub by: Option<String>,
}

impl StepKind for RemoveProfile {
    const NAME: &'static str = "remove_profile";
    const ADDRESSES_DEVICES: bool = false;
    const USAGE: &'static str = "<policy> <profile>";
    const HELP: &'static str = "remove a profile from a policy";

    fn fields(words: &[&str], _: &str) -> Result<Map<String, Json>, String> {
        match words {
            [name, profile] => Ok(Map::from_iter([
                ("name".into(), Json::from(*name)),
                ("profile".into(), Json::from(*profile)),
            ])),
            _ => Err(usage::<Self>()),
        }
    }

    fn arguments(&self) -> String {
        format!("{:?} profile {:?}", self.name, self.profile)
    }

    fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
        self.act(world)
    }
}

impl Act for RemoveProfile {
    fn act(&self, world: &mut World) -> Result<Answers, StepError> {
        let op = Operation::RemoveProfile {
            name: self.name.clone(),
            profile: self.profile.clone(),
        };
        Ok(world.apply(&op, self.by.as_deref())?)
    }
}
