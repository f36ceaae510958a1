//! The root module: what a host finds when it opens the library.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};

use crate::{error::TaskError, host::HostBox, host::LogSinkBox, task::KsnTaskBox};

/// The contract's version: the semver of this crate, which abi_stable checks at load (a
/// plugin of the same major version and the same or a newer minor version loads). Its
/// minor number grows whenever the contract gains a method or a field (appended, with a
/// default).
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The minor number of [`CONTRACT_VERSION`], as `PluginInfo` carries it.
pub const CONTRACT_MINOR: u32 = parse_u32(env!("CARGO_PKG_VERSION_MINOR"));

const fn parse_u32(digits: &str) -> u32 {
    let bytes = digits.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

/// Who the plugin is.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct PluginInfo {
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    /// The minor number of the contract version the plugin was built against
    /// ([`CONTRACT_MINOR`]); the whole version is in the library's header, which the
    /// loader reads ([`crate::loader::Plugin::contract`]).
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

    /// The plugin's description of itself: its settings, the schemas of its settings
    /// documents and its statements' texts, as a
    /// [`PluginDescription`](crate::documents::PluginDescription). Added in 1.2.0.
    pub describe: extern "C" fn() -> RResult<RString, TaskError>,

    /// The JSON Schema of the document `name` (one of
    /// [`documents::schemas::names`](crate::documents::schemas::names): `policy`,
    /// `local_change`, `settings`, `event`, `log`, `log_page`, `ledger`, `ledger_page`,
    /// `counters`, `description`), for hosts that validate what they receive; the policy
    /// and local-change schemas are the plugin's own. Added in 1.3.0.
    pub document_schema: extern "C" fn(RStr<'_>) -> RResult<RString, TaskError>,
}

impl RootModule for KsnPluginRef {
    declare_root_module_statics! {KsnPluginRef}
    const BASE_NAME: &'static str = "ksn_plugin";
    const NAME: &'static str = "ksn_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
