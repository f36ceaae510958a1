//! Who uses the console, and what they did. Without named administrators in the database,
//! the token `serve` prints is one administrator's (`admin`); with them (`host-sim user
//! add`), each signs in with their own token, which the database keeps only as a hash. An
//! administrator changes anything; an auditor reads everything and changes nothing. Every
//! change through the console is an action kept with who, when (the wall clock), what, on
//! what, and how it ended.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::{self, ActionRow, HostStore};

/// What a signed-in user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    Auditor,
}

impl Role {
    fn of(name: &str) -> Option<Self> {
        match name {
            "administrator" => Some(Role::Administrator),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }
}

/// A signed-in user, as each request carries it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: Arc<str>,
    pub role: Role,
}

/// How tokens are checked.
pub enum Auth {
    /// One administrator, `admin`, with the token `serve` printed.
    Single { token: String },
    /// The administrators the database holds.
    Users { store: Arc<HostStore> },
}

/// Equal, in a time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Auth {
    /// The administrators of `store`, if it holds any; else the one of `token`.
    pub fn for_store(store: Option<&Arc<HostStore>>, token: String) -> Result<Self, String> {
        match store {
            Some(store) if !store.users()?.is_empty() => Ok(Auth::Users {
                store: store.clone(),
            }),
            _ => Ok(Auth::Single { token }),
        }
    }

    /// Who this token is (read from the database each time: a removed user is out at once).
    pub fn identify(&self, token: &str) -> Option<Identity> {
        match self {
            Auth::Single { token: ours } => same(token, ours).then(|| Identity {
                name: "admin".into(),
                role: Role::Administrator,
            }),
            Auth::Users { store } => {
                let user = store.user_of(token).ok()??;
                Some(Identity {
                    name: user.name.into(),
                    role: Role::of(&user.role)?,
                })
            }
        }
    }

    pub fn named_users(&self) -> bool {
        matches!(self, Auth::Users { .. })
    }
}

/// The actions kept: in the host database when the server has one, and the newest in
/// memory either way.
pub struct Actions {
    recent: Mutex<(u64, VecDeque<ActionRow>)>,
}

/// How many actions the console keeps in memory (all of them are in the database).
const RECENT: usize = 10_000;

impl Actions {
    /// Numbering goes on from the newest the database holds for `host`.
    pub fn new(database: Option<(&Arc<HostStore>, &str)>) -> Self {
        let (last, recent) = match database.map(|(store, host)| store.actions(host, RECENT)) {
            Some(Ok(rows)) => (rows.first().map_or(0, |r| r.id), rows.into_iter().collect()),
            _ => (0, VecDeque::new()),
        };
        Self {
            recent: Mutex::new((last, recent)),
        }
    }

    /// Records an action, in the database first (its answer says if it could not).
    pub fn record(
        &self,
        database: Option<(&Arc<HostStore>, &str)>,
        mut row: ActionRow,
    ) -> Result<(), String> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.0 += 1;
        row.id = recent.0;
        row.wall_ms = storage::wall_clock_ms();
        if let Some((store, host)) = database {
            store.save_action(host, row.clone())?;
        }
        if recent.1.len() == RECENT {
            recent.1.pop_back();
        }
        recent.1.push_front(row);
        Ok(())
    }

    /// The newest first: from the database when there is one, else the ones in memory.
    pub fn list(
        &self,
        database: Option<(&Arc<HostStore>, &str)>,
        limit: usize,
    ) -> Result<Vec<ActionRow>, String> {
        match database {
            Some((store, host)) => store.actions(host, limit),
            None => Ok(self
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .iter()
                .take(limit)
                .cloned()
                .collect()),
        }
    }
}
