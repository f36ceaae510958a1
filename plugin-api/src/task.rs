//! One instance of the KSN Usage task, as the host drives it.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};

use crate::{
    error::TaskError,
    kinds::LicenseState,
    lookup::{FileQuery, LookupAnswer, TaskStatus},
};

/// The KSN Usage task. Every method may be called from any thread. Settings documents,
/// policies, logs and ledgers cross as JSON text; lookups and states are typed.
#[sabi_trait]
pub trait KsnTask: Send + Sync {
    /// Replaces the policy (SPEC §2 policy format). Validated whole; any error changes nothing.
    fn push_policy(&self, policy_json: RStr<'_>) -> RResult<(), TaskError>;

    /// A local change: a nested object of values. Validated whole; any error changes nothing.
    fn set_local(&self, settings_json: RStr<'_>) -> RResult<(), TaskError>;

    /// Effective settings, where each comes from, locks, and whether it applies now.
    fn settings_json(&self) -> RResult<RString, TaskError>;

    /// The Administration Server says whether Private KSN is in use.
    fn set_private_ksn(&self, enabled: bool) -> RResult<(), TaskError>;

    /// The licence changed.
    fn set_license(&self, license: LicenseState) -> RResult<(), TaskError>;

    /// The application (host) has started: the task starts itself if its schedule says so.
    fn application_started(&self) -> RResult<(), TaskError>;

    fn start(&self) -> RResult<(), TaskError>;

    fn stop(&self) -> RResult<(), TaskError>;

    fn status(&self) -> TaskStatus;

    /// File reputation for the application's other tasks.
    fn check_file(&self, query: FileQuery) -> RResult<LookupAnswer, TaskError>;

    /// URL reputation for the application's other tasks.
    fn check_url(&self, url: RStr<'_>) -> RResult<LookupAnswer, TaskError>;

    /// Time has passed on the host clock: periodic work (statistics batches).
    fn tick(&self) -> RResult<(), TaskError>;

    /// The task log as a JSON array, oldest first.
    fn task_log_json(&self) -> RResult<RString, TaskError>;

    /// The outbound ledger (every item sent, with the consent that allowed it) as JSON.
    fn ledger_json(&self) -> RResult<RString, TaskError>;

    /// Empties the verdict cache.
    #[sabi(last_prefix_field)]
    fn purge_cache(&self) -> RResult<(), TaskError>;
}

/// The owned task object the plugin's factory returns.
pub type KsnTaskBox = KsnTask_TO<'static, RBox<()>>;
