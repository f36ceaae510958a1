//! The root module: what a host finds when it opens the library.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr},
    StableAbi,
};

use crate::{error::TaskError, host::HostBox, host::LogSinkBox, task::KsnTaskBox};

/// Bumped whenever the contract gains a method or a field (appended, with a default).
#[cfg(not(any(ksn_contract = "previous", ksn_contract = "next")))]
pub const CONTRACT_VERSION: u32 = 2;
#[cfg(ksn_contract = "previous")]
pub const CONTRACT_VERSION: u32 = 1;
#[cfg(ksn_contract = "next")]
pub const CONTRACT_VERSION: u32 = 3;

/// Who the plugin is.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct PluginInfo {
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    /// The `CONTRACT_VERSION` the plugin was built against.
    #[cfg(not(ksn_contract = "changed"))]
    pub contract_version: u32,
    /// Only in the test fixture `tests/fixtures/contracts/changed`: a deliberately
    /// incompatible layout, which hosts must refuse at load.
    #[cfg(ksn_contract = "changed")]
    pub contract_version: u64,
}

/// The plugin's root module.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = KsnPluginRef)))]
#[sabi(missing_field(panic))]
pub struct KsnPlugin {
    pub info: extern "C" fn() -> PluginInfo,

    /// Installs the host's logger; the host calls it once, right after loading.
    pub install_logger: extern "C" fn(LogSinkBox),

    /// Creates one task instance, restoring its state from the host's storage.
    #[sabi(last_prefix_field)]
    pub new_task: extern "C" fn(HostBox) -> RResult<KsnTaskBox, TaskError>,
}

impl RootModule for KsnPluginRef {
    declare_root_module_statics! {KsnPluginRef}
    const BASE_NAME: &'static str = "ksn_plugin";
    const NAME: &'static str = "ksn_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
