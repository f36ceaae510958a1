//! What the server knows, as rows its host stores: the server's own settings, each group,
//! each policy and each of its revisions, each device. A change gives the rows it touched
//! ([`Server::records`]), to be written in one transaction before the change is answered;
//! a server is resumed from every row ([`Server::resume`]). Bodies are JSON in the shapes
//! of the scenario format, so that an auditor can read them in the database.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::{
    device::ManagedDevice,
    events::{EventRules, EventStore},
    ops::Change,
    policy::{
        parse_settings, settings_json, Condition, Content, Policy, PolicyId, Profile, Revision,
    },
    status::StatusRules,
    tree::{Group, Tree},
    Server,
};

/// What a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Settings,
    Group,
    Policy,
    Revision,
    Device,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Settings,
        Kind::Group,
        Kind::Policy,
        Kind::Revision,
        Kind::Device,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Settings => "settings",
            Kind::Group => "group",
            Kind::Policy => "policy",
            Kind::Revision => "revision",
            Kind::Device => "device",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A write of the server's rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Put {
        kind: Kind,
        key: i64,
        body: String,
    },
    /// A policy and every revision of it are gone.
    DeletePolicy {
        policy: PolicyId,
    },
}

/// A revision's row key: its policy's number, then its own.
pub fn revision_key(policy: PolicyId, number: u32) -> i64 {
    ((policy as i64) << 32) | i64::from(number)
}

/// The revision keys of a policy: from, to (exclusive).
pub fn revision_keys(policy: PolicyId) -> (i64, i64) {
    (revision_key(policy, 0), revision_key(policy + 1, 0))
}

#[derive(Serialize, Deserialize)]
struct SettingsRow {
    private_ksn: bool,
    sync_interval_ms: u64,
    events: EventRules,
    status: StatusRules,
    next_policy: PolicyId,
}

#[derive(Serialize, Deserialize)]
struct PolicyRow {
    name: String,
    group: usize,
    active: bool,
}

#[derive(Serialize, Deserialize)]
struct RevisionRow {
    number: u32,
    by: String,
    time_ms: u64,
    what: String,
    content: Json,
}

fn body(value: impl Serialize) -> String {
    serde_json::to_string(&value).expect("rows serialise")
}

/// A revision's content as the scenario format states it: `{settings, profiles,
/// force_inheritance}`.
fn content_json(content: &Content) -> Json {
    json!({
        "settings": settings_json(&content.settings),
        "profiles": content.profiles.iter().map(|p| json!({
            "name": p.name,
            "when": {"out_of_office": p.condition.out_of_office, "tags": p.condition.tags},
            "settings": settings_json(&p.settings),
        })).collect::<Vec<_>>(),
        "force_inheritance": content.force_inheritance,
    })
}

fn content_of(json: &Json) -> Result<Content, String> {
    let settings = parse_settings(json.get("settings").unwrap_or(&json!({})), "settings")?;
    let mut profiles = Vec::new();
    for (i, p) in json
        .get("profiles")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let place = format!("profiles[{i}]");
        let when = p.get("when").cloned().unwrap_or(json!({}));
        profiles.push(Profile {
            name: p
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| format!("{place}.name: missing"))?
                .to_string(),
            condition: Condition {
                out_of_office: when.get("out_of_office").and_then(Json::as_bool),
                tags: when
                    .get("tags")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
            },
            settings: parse_settings(
                p.get("settings").unwrap_or(&json!({})),
                &format!("{place}.settings"),
            )?,
        });
    }
    Ok(Content {
        settings,
        profiles,
        force_inheritance: json
            .get("force_inheritance")
            .and_then(Json::as_bool)
            .unwrap_or(false),
    })
}

impl Server {
    fn settings_record(&self) -> Record {
        Record::Put {
            kind: Kind::Settings,
            key: 0,
            body: body(SettingsRow {
                private_ksn: self.private_ksn,
                sync_interval_ms: self.sync_interval_ms,
                events: self.events.rules.clone(),
                status: self.status_rules,
                next_policy: self.next_policy,
            }),
        }
    }

    fn group_record(&self, id: usize) -> Record {
        Record::Put {
            kind: Kind::Group,
            key: id as i64,
            body: body(self.tree.group(id)),
        }
    }

    /// Device `index`'s row.
    pub fn device_record(&self, index: usize) -> Record {
        Record::Put {
            kind: Kind::Device,
            key: index as i64,
            body: body(&self.devices[index]),
        }
    }

    fn policy_records(&self, policy: &Policy, every_revision: bool) -> Vec<Record> {
        let mut rows = vec![Record::Put {
            kind: Kind::Policy,
            key: policy.id as i64,
            body: body(PolicyRow {
                name: policy.name.clone(),
                group: policy.group,
                active: policy.active,
            }),
        }];
        let revisions = if every_revision {
            &policy.revisions[..]
        } else {
            &policy.revisions[policy.revisions.len() - 1..]
        };
        rows.extend(revisions.iter().map(|r| Record::Put {
            kind: Kind::Revision,
            key: revision_key(policy.id, r.number),
            body: body(RevisionRow {
                number: r.number,
                by: r.by.clone(),
                time_ms: r.time_ms,
                what: r.what.clone(),
                content: content_json(&r.content),
            }),
        }));
        rows
    }

    /// The rows a change touched (a save writes its policy and its newest revision).
    pub fn records(&self, changes: &[Change]) -> Vec<Record> {
        let mut rows = vec![self.settings_record()];
        for change in changes {
            match change {
                Change::Settings => {}
                Change::Group(id) => rows.push(self.group_record(*id)),
                Change::Device(i) => rows.push(self.device_record(*i)),
                Change::Policy(id) => {
                    if let Some(p) = self.policy_by_id(*id) {
                        rows.extend(self.policy_records(p, false));
                    }
                }
                Change::PolicyDeleted(id) => rows.push(Record::DeletePolicy { policy: *id }),
            }
        }
        rows
    }

    /// Every row of the server, as a new store holds it.
    pub fn all_records(&self) -> Vec<Record> {
        let mut rows = vec![self.settings_record()];
        rows.extend((0..self.tree.len()).map(|id| self.group_record(id)));
        for p in &self.policies {
            rows.extend(self.policy_records(p, true));
        }
        rows.extend((0..self.devices.len()).map(|i| self.device_record(i)));
        rows
    }

    /// The server its rows describe, with the plugin's description to come
    /// ([`Server::set_description`]); an error names the row that cannot be read.
    pub fn resume(rows: impl IntoIterator<Item = (Kind, i64, String)>) -> Result<Self, String> {
        let mut settings = None;
        let mut groups = BTreeMap::new();
        let mut policies: BTreeMap<i64, PolicyRow> = BTreeMap::new();
        let mut revisions: BTreeMap<i64, RevisionRow> = BTreeMap::new();
        let mut devices = BTreeMap::new();
        for (kind, key, text) in rows {
            let place = |e: serde_json::Error| format!("the {} row {key}: {e}", kind.as_str());
            match kind {
                Kind::Settings => {
                    settings = Some(serde_json::from_str::<SettingsRow>(&text).map_err(place)?)
                }
                Kind::Group => {
                    groups.insert(key, serde_json::from_str::<Group>(&text).map_err(place)?);
                }
                Kind::Policy => {
                    policies.insert(key, serde_json::from_str(&text).map_err(place)?);
                }
                Kind::Revision => {
                    revisions.insert(key, serde_json::from_str(&text).map_err(place)?);
                }
                Kind::Device => {
                    devices.insert(
                        key,
                        serde_json::from_str::<ManagedDevice>(&text).map_err(place)?,
                    );
                }
            }
        }
        let settings = settings.ok_or("no settings row: this store holds no server")?;
        let numbered = |what: &str, keys: Vec<i64>| {
            keys.iter()
                .enumerate()
                .all(|(i, k)| *k == i as i64)
                .then_some(())
                .ok_or(format!(
                    "the {what} rows are not numbered from 0 without gaps"
                ))
        };
        numbered("group", groups.keys().copied().collect())?;
        numbered("device", devices.keys().copied().collect())?;
        let tree = Tree::of(groups.into_values().collect())?;
        let mut resumed = Vec::new();
        for (id, row) in policies {
            let (from, to) = revision_keys(id as PolicyId);
            let mut list = Vec::new();
            for r in revisions.range(from..to).map(|(_, r)| r) {
                list.push(Revision {
                    number: r.number,
                    by: r.by.clone(),
                    time_ms: r.time_ms,
                    what: r.what.clone(),
                    content: Arc::new(
                        content_of(&r.content)
                            .map_err(|e| format!("policy {id} revision {}: {e}", r.number))?,
                    ),
                });
            }
            if list.is_empty() {
                return Err(format!("policy {id} ({:?}) has no revision", row.name));
            }
            if row.group >= tree.len() {
                return Err(format!("policy {id} ({:?}) names no group", row.name));
            }
            resumed.push(Policy {
                id: id as PolicyId,
                name: row.name,
                group: row.group,
                active: row.active,
                revisions: list,
            });
        }
        let devices: Vec<ManagedDevice> = devices.into_values().collect();
        if let Some(d) = devices.iter().position(|d| d.group >= tree.len()) {
            return Err(format!("device {d} names no group"));
        }
        Ok(Self {
            tree,
            policies: resumed,
            next_policy: settings.next_policy,
            devices,
            private_ksn: settings.private_ksn,
            sync_interval_ms: settings.sync_interval_ms,
            events: EventStore::new(settings.events),
            status_rules: settings.status,
            description: None,
            versions: Vec::new(),
            deferred_in_private_ksn: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ops::Operation, Context};

    fn rows(records: Vec<Record>) -> Vec<(Kind, i64, String)> {
        let mut table = BTreeMap::new();
        for r in records {
            match r {
                Record::Put { kind, key, body } => {
                    table.insert((kind, key), body);
                }
                Record::DeletePolicy { policy } => {
                    let (from, to) = revision_keys(policy);
                    table.retain(|(k, key), _| {
                        !(*k == Kind::Policy && *key == policy as i64
                            || *k == Kind::Revision && (from..to).contains(key))
                    });
                }
            }
        }
        table.into_iter().map(|((k, key), b)| (k, key, b)).collect()
    }

    #[test]
    fn a_server_resumes_from_its_rows_as_it_was() {
        let mut s = Server::default();
        let ctx = Context::new("alice", 5);
        let mut written = Vec::new();
        for op in [
            Operation::CreateGroup {
                path: "Servers".into(),
                inherit: false,
                private_ksn: Some(true),
            },
            Operation::CreatePolicy {
                name: "P".into(),
                group: "Servers".into(),
                policy: json!({"settings": {"t": {"limit": {"value": 4, "locked": true}}}}),
                profiles: vec![crate::ProfileDoc {
                    name: "away".into(),
                    when: Condition {
                        out_of_office: Some(true),
                        tags: vec!["laptop".into()],
                    },
                    settings: Some(json!({"t": {"limit": 8}})),
                }],
                force_inheritance: true,
                active: true,
            },
            Operation::EditPolicy {
                name: "P".into(),
                policy: Some(json!({"settings": {"t": {"limit": 6}}})),
                profiles: None,
                force_inheritance: None,
            },
            Operation::CreatePolicy {
                name: "Gone".into(),
                group: "/".into(),
                policy: json!({"settings": {}}),
                profiles: vec![],
                force_inheritance: false,
                active: true,
            },
            Operation::DeletePolicy {
                name: "Gone".into(),
            },
            Operation::SetPrivateKsn { enabled: true },
        ] {
            if written.is_empty() {
                s.add_device(0);
                s.add_device(0);
                written.extend(s.all_records());
            }
            let applied = s.apply(&op, &ctx).unwrap();
            written.extend(s.records(&applied.changes));
        }
        let back = Server::resume(rows(written)).unwrap();
        assert_eq!(back.tree.groups(), s.tree.groups());
        assert_eq!(back.devices, s.devices);
        assert_eq!(back.private_ksn, s.private_ksn);
        assert_eq!(back.next_policy, s.next_policy);
        assert_eq!(back.policies.len(), 1);
        let (a, b) = (&back.policies[0], &s.policies[0]);
        assert_eq!(
            (a.id, &a.name, a.group, a.active),
            (b.id, &b.name, b.group, b.active)
        );
        assert_eq!(a.revisions.len(), 2);
        for (x, y) in a.revisions.iter().zip(&b.revisions) {
            assert_eq!(
                (x.number, &x.by, x.time_ms, &x.what),
                (y.number, &y.by, y.time_ms, &y.what)
            );
            assert_eq!(*x.content, *y.content);
        }
    }

    #[test]
    fn rows_that_cannot_be_read_name_themselves() {
        let e = Server::resume([(Kind::Settings, 0, "{".to_string())]).unwrap_err();
        assert!(e.starts_with("the settings row 0:"), "{e}");
        let e = Server::resume([]).unwrap_err();
        assert!(e.contains("no settings row"), "{e}");
    }
}
