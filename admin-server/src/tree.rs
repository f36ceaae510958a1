//! Administration groups: a tree under the root group, "Managed devices". A group is named
//! by its path from the root (`Servers/Private KSN`; the root is `/`). A removed group keeps
//! its number (marked removed), so a group's number stays valid for the life of the server.

use super::error::ServerError;
use plugin_api::documents::path::did_you_mean;

pub type GroupId = usize;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub name: String,
    pub parent: Option<GroupId>,
    /// "Inherit from parent": the parent's policies cover this group (unless cleared, and
    /// then only a policy that forces inheritance does).
    pub inherit: bool,
    /// The group's own KSN proxy setting, if it has one: whether its devices use Private
    /// KSN, for it and its subgroups (as a virtual server's own setting would). `None`:
    /// the parent's, and at the root the server's.
    pub private_ksn: Option<bool>,
    /// Removed: its number is never given again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

#[derive(Clone, Debug)]
pub struct Tree {
    groups: Vec<Group>,
}

impl Default for Tree {
    fn default() -> Self {
        Self {
            groups: vec![Group {
                name: Tree::ROOT_NAME.into(),
                parent: None,
                inherit: true,
                private_ksn: None,
                removed: false,
            }],
        }
    }
}

impl Tree {
    pub const ROOT: GroupId = 0;

    /// Every group, numbered as they are.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// A tree of these groups, read back from a store: the root first, each parent before
    /// its children.
    pub fn of(groups: Vec<Group>) -> Result<Self, String> {
        match groups.first() {
            Some(root) if root.parent.is_none() => {}
            _ => return Err("the first group is not the root".into()),
        }
        for (id, g) in groups.iter().enumerate().skip(1) {
            if g.parent.is_none_or(|p| p >= id) {
                return Err(format!("group {id} ({:?}) has no parent before it", g.name));
            }
        }
        Ok(Self { groups })
    }
    pub const ROOT_NAME: &'static str = "Managed devices";

    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id]
    }

    pub fn group_mut(&mut self, id: GroupId) -> &mut Group {
        &mut self.groups[id]
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Adds a subgroup of `parent`; names are unique among siblings.
    pub fn add(&mut self, parent: GroupId, name: &str) -> Result<GroupId, ServerError> {
        self.check_name(parent, name, None)?;
        self.groups.push(Group {
            name: name.to_string(),
            parent: Some(parent),
            inherit: true,
            private_ksn: None,
            removed: false,
        });
        Ok(self.groups.len() - 1)
    }

    /// Whether `name` may name a subgroup of `parent` (`except` that one group, renamed).
    fn check_name(
        &self,
        parent: GroupId,
        name: &str,
        except: Option<GroupId>,
    ) -> Result<(), ServerError> {
        crate::names::check("group", name)?;
        if name.contains('/') {
            return Err(ServerError::invalid_name(format!(
                "a group's name holds no '/', got {name:?}"
            )));
        }
        if self
            .children(parent)
            .any(|c| Some(c) != except && self.groups[c].name == name)
        {
            return Err(ServerError::name_taken(format!(
                "group {} already has a subgroup named {name:?}",
                self.path(parent)
            )));
        }
        Ok(())
    }

    /// Renames a group (not the root).
    pub fn rename(&mut self, id: GroupId, name: &str) -> Result<(), ServerError> {
        let Some(parent) = self.groups[id].parent else {
            return Err(ServerError::not_allowed(
                "the root group \"Managed devices\" keeps its name",
            ));
        };
        self.check_name(parent, name, Some(id))?;
        self.groups[id].name = name.to_string();
        Ok(())
    }

    /// Removes a group without subgroups (not the root); its number is never given again.
    pub fn remove(&mut self, id: GroupId) -> Result<GroupId, ServerError> {
        let Some(parent) = self.groups[id].parent else {
            return Err(ServerError::not_allowed("the root group cannot be deleted"));
        };
        if let Some(child) = self.children(id).next() {
            return Err(ServerError::not_allowed(format!(
                "group {} has subgroups ({} first): delete or move them first",
                self.path(id),
                self.path(child)
            )));
        }
        self.groups[id].removed = true;
        Ok(parent)
    }

    pub fn children(&self, parent: GroupId) -> impl Iterator<Item = GroupId> + '_ {
        (0..self.groups.len())
            .filter(move |&g| self.groups[g].parent == Some(parent) && !self.groups[g].removed)
    }

    /// The groups not removed, by number.
    pub fn live(&self) -> impl Iterator<Item = GroupId> + '_ {
        (0..self.groups.len()).filter(move |&g| !self.groups[g].removed)
    }

    /// The group at `path` (`/` or the root's name for the root, `A/B` below it).
    pub fn find(&self, path: &str) -> Result<GroupId, ServerError> {
        let trimmed = path.trim_matches('/');
        if trimmed.is_empty() || trimmed == Self::ROOT_NAME {
            return Ok(Self::ROOT);
        }
        let trimmed = trimmed
            .strip_prefix(Self::ROOT_NAME)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(trimmed);
        let mut at = Self::ROOT;
        for name in trimmed.split('/') {
            match self.children(at).find(|&c| self.groups[c].name == name) {
                Some(child) => at = child,
                None => {
                    let paths: Vec<String> = self.live().skip(1).map(|g| self.path(g)).collect();
                    return Err(ServerError::not_found(format!(
                        "no group {path:?}{}",
                        did_you_mean(trimmed, paths.iter().map(String::as_str))
                    )));
                }
            }
        }
        Ok(at)
    }

    /// The path that names `id`: `/` for the root.
    pub fn path(&self, id: GroupId) -> String {
        let chain = self.chain(id);
        if chain.len() == 1 {
            return "/".into();
        }
        chain[1..]
            .iter()
            .map(|&g| self.groups[g].name.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The groups from the root down to `id`.
    pub fn chain(&self, id: GroupId) -> Vec<GroupId> {
        let mut chain = vec![id];
        let mut at = id;
        while let Some(parent) = self.groups[at].parent {
            chain.push(parent);
            at = parent;
        }
        chain.reverse();
        chain
    }

    /// Whether `id` is `ancestor` or below it.
    pub fn within(&self, id: GroupId, ancestor: GroupId) -> bool {
        let mut at = Some(id);
        while let Some(g) = at {
            if g == ancestor {
                return true;
            }
            at = self.groups[g].parent;
        }
        false
    }

    /// The Private KSN modes of `id` and every group below it (the server's setting where
    /// a group has none of its own): `[Global, Private]`, each true when some group is in it.
    pub fn modes_within(&self, id: GroupId, server: bool) -> [bool; 2] {
        let mut modes = [false; 2];
        for g in self.live().filter(|g| self.within(*g, id)) {
            modes[usize::from(self.private_ksn(g, server))] = true;
        }
        modes
    }

    /// Whether devices of `id` use Private KSN, given the server's own setting.
    pub fn private_ksn(&self, id: GroupId, server: bool) -> bool {
        let mut at = Some(id);
        while let Some(g) = at {
            if let Some(own) = self.groups[g].private_ksn {
                return own;
            }
            at = self.groups[g].parent;
        }
        server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_found_by_path_and_errors_name_the_nearest() {
        let mut tree = Tree::default();
        let servers = tree.add(Tree::ROOT, "Servers").unwrap();
        let private = tree.add(servers, "Private KSN").unwrap();
        assert_eq!(tree.find("/").unwrap(), Tree::ROOT);
        assert_eq!(tree.find("Managed devices").unwrap(), Tree::ROOT);
        assert_eq!(tree.find("Servers/Private KSN").unwrap(), private);
        assert_eq!(tree.find("/Managed devices/Servers").unwrap(), servers);
        assert_eq!(tree.path(private), "Servers/Private KSN");
        assert_eq!(tree.chain(private), vec![Tree::ROOT, servers, private]);
        assert!(tree.within(private, servers) && !tree.within(servers, private));
        let e = tree.find("Servers/Private").unwrap_err();
        assert_eq!(e.kind, crate::ServerErrorKind::NotFound);
        assert!(e.message.contains("Servers/Private KSN"), "{e}");
        assert!(tree.add(servers, "Private KSN").is_err());
        assert!(tree.add(servers, "a/b").is_err());
    }

    #[test]
    fn private_ksn_is_the_nearest_group_s_or_the_server_s() {
        let mut tree = Tree::default();
        let a = tree.add(Tree::ROOT, "A").unwrap();
        let b = tree.add(a, "B").unwrap();
        assert!(!tree.private_ksn(b, false) && tree.private_ksn(b, true));
        tree.group_mut(a).private_ksn = Some(true);
        assert!(tree.private_ksn(b, false));
        tree.group_mut(b).private_ksn = Some(false);
        assert!(!tree.private_ksn(b, true));
    }
}
