//! One instance of the KSN Usage task, as the host drives it.
//!
//! The trait grows only at its end, and every method added after contract version 1 has a
//! default, which is what a host gets when it calls the method on an older plugin. The
//! trait is written once, in `ksn_task!`; the `ksn_contract` cfg exists only for the
//! contract-drift test fixtures (`tests/fixtures/contracts/`), which build the previous
//! contract (`previous`: version 1) and a next one (`next`: one more method) from this
//! same source.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};

use crate::{
    error::TaskError,
    kinds::LicenseState,
    lookup::{FileQuery, LookupAnswer, TaskStatus},
};

/// What a host gets from a method the plugin's contract does not have yet.
pub fn not_in_contract(method: &str, since: u32) -> TaskError {
    TaskError::invalid_state(format_args!(
        "{method} is not supported by this plugin (it needs plugin contract version {since})"
    ))
}

macro_rules! ksn_task {
    ($($later:tt)*) => {
        /// The KSN Usage task. Every method may be called from any thread. Settings
        /// documents, policies, logs and ledgers cross as JSON text; lookups and states
        /// are typed.
        #[sabi_trait]
        pub trait KsnTask: Send + Sync {
            /// Replaces the policy (SPEC §2 policy format). Validated whole; any error
            /// changes nothing.
            fn push_policy(&self, policy_json: RStr<'_>) -> RResult<(), TaskError>;

            /// A local change: a nested object of values. Validated whole; any error
            /// changes nothing.
            fn set_local(&self, settings_json: RStr<'_>) -> RResult<(), TaskError>;

            /// Effective settings, where each comes from, locks, and whether it applies now.
            fn settings_json(&self) -> RResult<RString, TaskError>;

            /// The Administration Server says whether Private KSN is in use.
            fn set_private_ksn(&self, enabled: bool) -> RResult<(), TaskError>;

            /// The licence changed.
            fn set_license(&self, license: LicenseState) -> RResult<(), TaskError>;

            /// The application (host) has started: the task starts itself if its schedule
            /// says so.
            fn application_started(&self) -> RResult<(), TaskError>;

            fn start(&self) -> RResult<(), TaskError>;

            fn stop(&self) -> RResult<(), TaskError>;

            fn status(&self) -> TaskStatus;

            /// File reputation for the application's other tasks.
            fn check_file(&self, query: FileQuery) -> RResult<LookupAnswer, TaskError>;

            /// URL reputation for the application's other tasks.
            fn check_url(&self, url: RStr<'_>) -> RResult<LookupAnswer, TaskError>;

            /// Time has passed on the host clock: periodic work (statistics batches), and
            /// the clock by which cached verdicts expire. Call it regularly (every second,
            /// say).
            fn tick(&self) -> RResult<(), TaskError>;

            /// The task log as a JSON array, oldest first.
            fn task_log_json(&self) -> RResult<RString, TaskError>;

            /// The outbound ledger (every item sent, with the consent that allowed it) as
            /// JSON.
            fn ledger_json(&self) -> RResult<RString, TaskError>;

            /// Empties the verdict cache. The last method of contract version 1.
            #[sabi(last_prefix_field)]
            fn purge_cache(&self) -> RResult<(), TaskError>;

            $($later)*
        }
    };
}

#[cfg(not(any(ksn_contract = "previous", ksn_contract = "next")))]
ksn_task! {
    /// Contract version 2: the task's counters as a JSON object (`cache_entries`,
    /// `queued_statistics`, `queued_kmp`, `ledger_items`).
    fn counters_json(&self) -> RResult<RString, TaskError> {
        abi_stable::std_types::RErr(not_in_contract("counters_json", 2))
    }
}

#[cfg(ksn_contract = "previous")]
ksn_task! {}

#[cfg(ksn_contract = "next")]
ksn_task! {
    fn counters_json(&self) -> RResult<RString, TaskError> {
        abi_stable::std_types::RErr(not_in_contract("counters_json", 2))
    }

    /// Only in the `next` test contract: a method no released host knows.
    fn sends_immediately(&self) -> RResult<bool, TaskError> {
        abi_stable::std_types::RErr(not_in_contract("sends_immediately", 3))
    }
}

/// The owned task object the plugin's factory returns.
pub type KsnTaskBox = KsnTask_TO<'static, RBox<()>>;
