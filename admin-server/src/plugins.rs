//! The plugin versions of the fleet. Each device runs one version of a plugin (its host
//! says which, at boot and after an update); the server keeps the `describe` of every
//! version it has seen. Its policy editor offers the statements of the versions in the
//! groups a policy reaches, and what it sends a device is what that device's version
//! knows (`editor::narrow`).

use std::sync::Arc;

use plugin_api::documents::PluginDescription;

/// A plugin version, as a device's host reported it.
#[derive(Clone, Debug)]
pub struct PluginVersion {
    pub name: String,
    pub version: String,
    /// The contract it was built against (`1.4.0`).
    pub contract: String,
    pub description: Option<Arc<PluginDescription>>,
}

impl PluginVersion {
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        contract: impl Into<String>,
        description: Option<PluginDescription>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            contract: contract.into(),
            description: description.map(Arc::new),
        }
    }

    /// `ksn-usage-task 1.1.0`.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// The same plugin and version (whatever library file it came from).
    pub fn same(&self, other: &PluginVersion) -> bool {
        self.name == other.name && self.version == other.version
    }
}

impl PartialEq for PluginVersion {
    fn eq(&self, other: &Self) -> bool {
        self.same(other) && self.contract == other.contract
    }
}
