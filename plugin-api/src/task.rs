//! One instance of the KSN Usage task, as the host drives it.
//!
//! The task's methods are written once, in `ksn_task_contract!` below. From that one list
//! come the ABI trait hosts call (`KsnTask`), the plain-Rust trait a plugin implements
//! ([`TaskImpl`]), and the panic guard between them
//! ([`Guarded`](crate::guard::Guarded)).
//!
//! The trait grows only at its end: every method appended after the first release has a
//! default, which is what a host gets from a plugin whose source never implemented it
//! (`not implemented by this plugin`). The `ksn_contract` cfg exists only for the
//! contract-drift test fixtures (`tests/fixtures/contracts/`), which build this same
//! source with one method more (`next`) or a changed layout (`changed`).
//!
//! # Driving a task
//!
//! - **Boot order.** The plugin's factory (`new_task`) creates the task over the host's
//!   services and restores what it stored: settings, consent, the log, the Private KSN
//!   mode and the licence last reported (and reconciles its journal with the host's
//!   `events_since`). Then the host calls `set_license` and `set_private_ksn` with what it
//!   knows now, `push_policy` with the device's stored policy, unchanged, and last
//!   `application_started`. Until `set_license` was called on the instance, `start`, and
//!   `application_started` with a start scheduled, are refused with `invalid_state` naming
//!   the order, and change nothing: a start then would send under the licence restored
//!   from storage.
//! - **What a call causes.** `control` makes any control call and answers the status
//!   after it, so a host learns from the call itself that `set_private_ksn(false)` failed
//!   the running task with `license_violation`; a scheduled start refused at
//!   `application_started` answers the refusal. Lookups, documents, `tick` and
//!   `purge_cache` never change the state; an answer no layer could give says why in its
//!   `source` (`not_running`, `not_consented`, `service_down`).
//! - **Hosts that keep no events.** Where `events_since` answers `Err`, a task cannot learn
//!   from the host what took effect while storage refused to record it: it goes by its own
//!   storage, and fails closed (the acceptance ends, source `unverified_restart`) where
//!   that cannot show no withdrawal was lost.
//! - **Objects.** `check_object` names the host's object; the action
//!   (`backup_and_delete_object`) applies to that object, not to whatever shares its
//!   checksum, and every lookup that finds it untrusted is a detection of it.
//! - **Bounds.** A task keeps its records under its own storage keys (the KSN Usage task:
//!   `journal`) and must not share its storage with another task. The host's
//!   `log_retention` is read once, at creation. Every integer in a document is below 2^53,
//!   so readers that use doubles read it exactly.
//! - **Whose mistake.** An argument the contract does not take (an empty or malformed URL,
//!   a licence or operation it does not know) is `invalid_argument`, and changes nothing.

use abi_stable::std_types::{RBox, RResult, RStr, RString};

use crate::{
    error::TaskError,
    kinds::{ErrorKind, LicenseState},
    lookup::{
        CallOutcome, ControlCall, FileQuery, LookupAnswer, ObjectAnswer, ObjectRef, TaskStatus,
    },
};

/// What a host gets from a method this plugin's source does not implement.
pub fn not_implemented(method: &str, since: &str) -> TaskError {
    TaskError::new(
        ErrorKind::NOT_IMPLEMENTED,
        format_args!(
            "{method} is not implemented by this plugin (added in plugin contract {since})"
        ),
    )
}

/// Generates `KsnTask`, `TaskImpl` and `Guarded`'s forwarding from one list of methods.
///
/// Each method is written as `fn name(&self, arg: AbiType => PlainType, ..) -> AbiReturn
/// => PlainReturn;`, optionally ending in `, on_panic VALUE` for the infallible ones.
/// Appended methods carry the contract version that added them.
macro_rules! define_task {
    (
        base {
            $(
                $(#[$bdoc:meta])*
                fn $bname:ident(&self $(, $barg:ident : $babi:ty => $bplain:ty)*)
                    -> $bret:ty => $bpret:ty $(, on_panic $bpanic:expr)?;
            )*
        }
        last {
            $(#[$ldoc:meta])*
            fn $lname:ident(&self $(, $larg:ident : $labi:ty => $lplain:ty)*)
                -> $lret:ty => $lpret:ty;
        }
        appended {
            $(
                $(#[$adoc:meta])*
                [$since:literal]
                fn $aname:ident(&self $(, $aarg:ident : $aabi:ty => $aplain:ty)*)
                    -> $aret:ty => $apret:ty;
            )*
        }
    ) => {
        /// The KSN Usage task. Every method may be called from any thread. Documents
        /// (policies, settings, logs, ledgers, counters) cross as JSON text whose shapes
        /// are the types of [`crate::documents`]; lookups and states are typed.
        #[abi_stable::sabi_trait]
        pub trait KsnTask: Send + Sync {
            $( $(#[$bdoc])* fn $bname(&self $(, $barg: $babi)*) -> $bret; )*

            $(#[$ldoc])*
            #[sabi(last_prefix_field)]
            fn $lname(&self $(, $larg: $labi)*) -> $lret;

            $(
                $(#[$adoc])*
                #[doc = concat!("\n\nAdded in plugin contract ", $since, ".")]
                fn $aname(&self $(, $aarg: $aabi)*) -> $aret {
                    $( let _ = $aarg; )*
                    abi_stable::std_types::RErr(crate::task::not_implemented(stringify!($aname), $since))
                }
            )*
        }

        /// The task as a plugin implements it, in plain Rust types. `export_ksn_plugin!`
        /// wraps it in the panic guard and exposes it as a `KsnTask`. Methods added after
        /// the first contract have defaults: an honest `not_implemented` error.
        pub trait TaskImpl: Send + Sync + 'static {
            $( $(#[$bdoc])* fn $bname(&self $(, $barg: $bplain)*) -> $bpret; )*

            $(#[$ldoc])*
            fn $lname(&self $(, $larg: $lplain)*) -> $lpret;

            $(
                $(#[$adoc])*
                fn $aname(&self $(, $aarg: $aplain)*) -> $apret {
                    $( let _ = $aarg; )*
                    Err(crate::task::not_implemented(stringify!($aname), $since))
                }
            )*
        }

        impl<T: TaskImpl> KsnTask for crate::guard::Guarded<T> {
            $(
                fn $bname(&self $(, $barg: $babi)*) -> $bret {
                    guarded!(self, $bname, ($($barg),*) $(, $bpanic)?)
                }
            )*
            fn $lname(&self $(, $larg: $labi)*) -> $lret {
                guarded!(self, $lname, ($($larg),*))
            }
            $(
                fn $aname(&self $(, $aarg: $aabi)*) -> $aret {
                    guarded!(self, $aname, ($($aarg),*))
                }
            )*
        }
    };
}

/// One forwarded call under the panic guard: arguments to plain types, the result back
/// to ABI types; an infallible method answers `on_panic` when the plugin panicked.
macro_rules! guarded {
    ($self:ident, $name:ident, ($($arg:ident),*)) => {
        $self.run(stringify!($name), |t| {
            t.$name($(crate::guard::Plain::plain($arg)),*)
                .map(crate::guard::IntoAbi::into_abi)
        })
    };
    ($self:ident, $name:ident, ($($arg:ident),*), $on_panic:expr) => {
        match $self.run(stringify!($name), |t| Ok(t.$name($(crate::guard::Plain::plain($arg)),*))) {
            abi_stable::std_types::ROk(value) => value,
            abi_stable::std_types::RErr(_) => $on_panic,
        }
    };
}

/// The contract's methods. `$next` is only for the `next` test contract.
macro_rules! ksn_task_contract {
    ($($next:tt)*) => {
        define_task! {
            base {
                /// Replaces the policy (a [`PolicyDocument`](crate::documents::PolicyDocument)).
                /// Validated whole; any error changes nothing.
                fn push_policy(&self, policy_json: RStr<'_> => &str)
                    -> RResult<(), TaskError> => Result<(), TaskError>;

                /// A local change (a [`LocalChange`](crate::documents::LocalChange)).
                /// Validated whole; any error changes nothing.
                fn set_local(&self, settings_json: RStr<'_> => &str)
                    -> RResult<(), TaskError> => Result<(), TaskError>;

                /// Effective settings, where each comes from, locks, and whether it applies
                /// now: a [`SettingsView`](crate::documents::SettingsView).
                fn settings_json(&self)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;

                /// The Administration Server says whether Private KSN is in use.
                fn set_private_ksn(&self, enabled: bool => bool)
                    -> RResult<(), TaskError> => Result<(), TaskError>;

                /// The licence changed (a value the contract does not know is
                /// `invalid_argument`). The task keeps the last one reported across
                /// restarts.
                fn set_license(&self, license: LicenseState => LicenseState)
                    -> RResult<(), TaskError> => Result<(), TaskError>;

                /// The application (host) has started: the task starts itself if its
                /// schedule says so; a scheduled start the task refuses answers the
                /// refusal. Call it last in the boot order; with a start scheduled before
                /// `set_license` it is refused (`invalid_state`).
                fn application_started(&self)
                    -> RResult<(), TaskError> => Result<(), TaskError>;

                /// Starts the task (refused without the statement of the current mode, with
                /// a licence that does not cover KSN, or, `invalid_state`, before
                /// `set_license` was called on this instance).
                fn start(&self) -> RResult<(), TaskError> => Result<(), TaskError>;

                /// Stops the task; queued data is discarded.
                fn stop(&self) -> RResult<(), TaskError> => Result<(), TaskError>;

                /// State, error, the service the next request goes to, mode and licence.
                fn status(&self) -> TaskStatus => TaskStatus,
                    on_panic crate::guard::FAILED_BY_PANIC;

                /// File reputation for the application's other tasks. A cached trusted
                /// or unknown answer allocates nothing; an untrusted one is acted on and
                /// recorded (one durable record, one event).
                fn check_file(&self, query: FileQuery => FileQuery)
                    -> RResult<LookupAnswer, TaskError> => Result<LookupAnswer, TaskError>;

                /// URL reputation for the application's other tasks.
                fn check_url(&self, url: RStr<'_> => &str)
                    -> RResult<LookupAnswer, TaskError> => Result<LookupAnswer, TaskError>;

                /// Time has passed on the host clock: periodic work (statistics batches),
                /// and the clock by which cached verdicts expire. Call it regularly (every
                /// second, say).
                fn tick(&self) -> RResult<(), TaskError> => Result<(), TaskError>;

                /// The task log as a JSON array of
                /// [`LogEntry`](crate::documents::LogEntry), oldest first.
                fn task_log_json(&self)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;

                /// The outbound ledger as a JSON array of
                /// [`LedgerItem`](crate::documents::LedgerItem): every item sent that is
                /// still kept, with the consent that allowed it.
                fn ledger_json(&self)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;
            }
            last {
                /// Empties the verdict cache. The last method of the first contract.
                fn purge_cache(&self) -> RResult<(), TaskError> => Result<(), TaskError>;
            }
            appended {
                /// The task's counters: a [`Counters`](crate::documents::Counters) object.
                ["1.1.0"]
                fn counters_json(&self)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;

                /// At most `max` entries of the task log from `from_seq` on, as a
                /// [`LogPage`](crate::documents::LogPage): the log read in bounded pages.
                ["1.2.0"]
                fn task_log_page(&self, from_seq: u64 => u64, max: u32 => u32)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;

                /// At most `max` ledger items from `from_seq` on, as a
                /// [`LedgerPage`](crate::documents::LedgerPage).
                ["1.2.0"]
                fn ledger_page(&self, from_seq: u64 => u64, max: u32 => u32)
                    -> RResult<RString, TaskError> => Result<String, TaskError>;

                /// File reputation for one object of the host's (`object`): as
                /// `check_file`, and the answer, the `object_untrusted` event and the
                /// host's `backup_and_delete_object` carry the object's reference, so the
                /// action applies to that object. An action that failed answers
                /// `delete_failed`.
                ["1.3.0"]
                fn check_object(&self, query: FileQuery => FileQuery, object: ObjectRef<'_> => ObjectRef<'_>)
                    -> RResult<ObjectAnswer, TaskError> => Result<ObjectAnswer, TaskError>;

                /// A control call (the methods of the same names) that hands back the
                /// task's status as it ended: `Err` only when the call could not be made
                /// (an older plugin, a panic); the call's own error is in the outcome.
                /// The calls that can change the state: `push_policy` and `set_local` (a
                /// withdrawal stops the task), `set_private_ksn` and `set_license` (the
                /// task fails), `application_started` (a scheduled start), `start`,
                /// `stop`.
                ["1.3.0"]
                fn control(&self, call: ControlCall<'_> => ControlCall<'_>)
                    -> RResult<CallOutcome, TaskError> => Result<CallOutcome, TaskError>;

                $($next)*
            }
        }
    };
}

#[cfg(not(ksn_contract = "next"))]
ksn_task_contract! {}

#[cfg(ksn_contract = "next")]
ksn_task_contract! {
    /// Only in the `next` test contract: a method no released host knows.
    ["1.5.0"]
    fn sends_immediately(&self) -> RResult<bool, TaskError> => Result<bool, TaskError>;
}

/// The owned task object the plugin's factory returns.
pub type KsnTaskBox = KsnTask_TO<'static, RBox<()>>;
