//! Which server a command runs in a host database: the one the database holds, resumed as
//! it was; a new one; or a refusal that says how to do either. A database knows its servers
//! by identities of their own (`servers`), named for people (a scenario's file, `serve`).

use crate::storage::{HostStore, ServerInfo};

/// The server a command runs, and whether it was resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub name: String,
    pub resumed: bool,
}

/// What a command asks of the database.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// Resume the server the database holds (`server` picks one of several, by name or
    /// identity); a database that holds none gets a new one named `new_name`.
    Resume {
        server: Option<&'a str>,
        new_name: &'a str,
    },
    /// A new server named `name` (from a scenario, or a fleet's story): refused if the
    /// database holds one already.
    New { name: &'a str },
}

fn listed(servers: &[ServerInfo]) -> String {
    servers
        .iter()
        .map(|s| format!("{:?} ({}, {} devices)", s.name, s.id, s.devices))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses, or makes, the server `command` runs; `fresh` deletes every server the
/// database holds first.
pub fn choose(
    store: &HostStore,
    command: &str,
    wanted: Wanted<'_>,
    fresh: bool,
) -> Result<Choice, String> {
    let servers = store.servers()?;
    let location = store.location();
    let create = |name: &str| {
        Ok(Choice {
            id: store.create_server(name)?,
            name: name.to_string(),
            resumed: false,
        })
    };
    if fresh {
        for s in &servers {
            store.clear_host(&s.id)?;
        }
        return match wanted {
            Wanted::New { name } => create(name),
            Wanted::Resume { new_name, .. } => create(new_name),
        };
    }
    match wanted {
        Wanted::New { name } => match servers.as_slice() {
            [] => create(name),
            held => Err(format!(
                "{location} already holds {}: resume it with `host-sim {command} --db {location}` (no scenario), or start afresh with `--fresh`, which deletes it",
                if held.len() == 1 {
                    format!("the server {}", listed(held))
                } else {
                    format!("{} servers: {}", held.len(), listed(held))
                }
            )),
        },
        Wanted::Resume {
            server: Some(wanted),
            ..
        } => servers
            .iter()
            .find(|s| s.id == wanted || s.name == wanted)
            .map(|s| Choice {
                id: s.id.clone(),
                name: s.name.clone(),
                resumed: true,
            })
            .ok_or_else(|| {
                format!(
                    "{location} holds no server {wanted:?}; it holds {}",
                    if servers.is_empty() {
                        "none".to_string()
                    } else {
                        listed(&servers)
                    }
                )
            }),
        Wanted::Resume { new_name, .. } => match servers.as_slice() {
            [] => create(new_name),
            [one] => Ok(Choice {
                id: one.id.clone(),
                name: one.name.clone(),
                resumed: true,
            }),
            many => Err(format!(
                "{location} holds {} servers: pick one with --server NAME ({})",
                many.len(),
                listed(many)
            )),
        },
    }
}
