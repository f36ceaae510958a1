//! The export helper every plugin uses (`export_ksn_plugin!`).
//!
//! A panic that unwinds out of an `extern "C"` function ends the host process, so every
//! exported entry point runs its body under `catch_unwind` here, and a panic becomes a
//! `plugin_panic` error; the task instance is then `failed` for good (its locks may be
//! poisoned) and the host re-creates it from storage to recover.

use std::{
    any::Any,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, ROption, RResult, RStr, RString},
};

use crate::{
    error::TaskError,
    host::{HostBox, LogSinkBox},
    kinds::{ErrorKind, LicenseState, Service, TaskState},
    lookup::{FileQuery, LookupAnswer, TaskStatus},
    task::{KsnTask, KsnTaskBox, KsnTask_TO},
};

/// The task as a plugin implements it, in plain Rust types. `export_ksn_plugin!` wraps it
/// in the panic guard and exposes it as a `KsnTask`.
pub trait TaskImpl: Send + Sync + 'static {
    fn push_policy(&self, policy_json: &str) -> Result<(), TaskError>;
    fn set_local(&self, settings_json: &str) -> Result<(), TaskError>;
    fn settings_json(&self) -> Result<String, TaskError>;
    fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError>;
    fn set_license(&self, license: LicenseState) -> Result<(), TaskError>;
    fn application_started(&self) -> Result<(), TaskError>;
    fn start(&self) -> Result<(), TaskError>;
    fn stop(&self) -> Result<(), TaskError>;
    fn status(&self) -> TaskStatus;
    fn check_file(&self, query: FileQuery) -> Result<LookupAnswer, TaskError>;
    fn check_url(&self, url: &str) -> Result<LookupAnswer, TaskError>;
    fn tick(&self) -> Result<(), TaskError>;
    fn task_log_json(&self) -> Result<String, TaskError>;
    fn ledger_json(&self) -> Result<String, TaskError>;
    fn purge_cache(&self) -> Result<(), TaskError>;

    /// Contract version 2. The default keeps plugins written for version 1 compiling.
    fn counters_json(&self) -> Result<String, TaskError> {
        Err(crate::task::not_in_contract("counters_json", 2))
    }

    /// Only in the `next` test contract.
    #[cfg(ksn_contract = "next")]
    fn sends_immediately(&self) -> Result<bool, TaskError> {
        Err(crate::task::not_in_contract("sends_immediately", 3))
    }
}

/// A `TaskImpl` behind the panic guard.
pub struct Guarded<T> {
    inner: T,
    panicked: AtomicBool,
}

impl<T: TaskImpl> Guarded<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            panicked: AtomicBool::new(false),
        }
    }

    /// Runs one method under the guard. Inlined into each method, with the rare paths out
    /// of line: it is on the lookup path of every file the application opens.
    #[inline(always)]
    fn run<R>(
        &self,
        method: &'static str,
        body: impl FnOnce(&T) -> Result<R, TaskError>,
    ) -> RResult<R, TaskError> {
        if self.panicked.load(Ordering::Acquire) {
            return RErr(failed_after_panic());
        }
        match catch_unwind(AssertUnwindSafe(|| body(&self.inner))) {
            Ok(Ok(value)) => ROk(value),
            Ok(Err(error)) => RErr(error),
            Err(payload) => RErr(self.panicked_in(method, payload)),
        }
    }

    #[cold]
    #[inline(never)]
    fn panicked_in(&self, method: &str, payload: Box<dyn Any + Send>) -> TaskError {
        self.panicked.store(true, Ordering::Release);
        TaskError::new(
            ErrorKind::PLUGIN_PANIC,
            format_args!("panic in {method}: {}", panic_message(payload.as_ref())),
        )
    }
}

#[cold]
#[inline(never)]
fn failed_after_panic() -> TaskError {
    TaskError::new(
        ErrorKind::PLUGIN_PANIC,
        "the task failed after a panic; restart the host to recover it from storage",
    )
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "non-text panic payload"
    }
}

const FAILED_BY_PANIC: TaskStatus = TaskStatus {
    state: TaskState::FAILED,
    error: ROption::RSome(ErrorKind::PLUGIN_PANIC),
    network: Service::NONE,
    private_ksn: false,
    license: LicenseState::UNKNOWN,
};

impl<T: TaskImpl> KsnTask for Guarded<T> {
    fn push_policy(&self, policy_json: RStr<'_>) -> RResult<(), TaskError> {
        self.run("push_policy", |t| t.push_policy(policy_json.as_str()))
    }
    fn set_local(&self, settings_json: RStr<'_>) -> RResult<(), TaskError> {
        self.run("set_local", |t| t.set_local(settings_json.as_str()))
    }
    fn settings_json(&self) -> RResult<RString, TaskError> {
        self.run("settings_json", |t| t.settings_json().map(RString::from))
    }
    fn set_private_ksn(&self, enabled: bool) -> RResult<(), TaskError> {
        self.run("set_private_ksn", |t| t.set_private_ksn(enabled))
    }
    fn set_license(&self, license: LicenseState) -> RResult<(), TaskError> {
        self.run("set_license", |t| t.set_license(license))
    }
    fn application_started(&self) -> RResult<(), TaskError> {
        self.run("application_started", |t| t.application_started())
    }
    fn start(&self) -> RResult<(), TaskError> {
        self.run("start", |t| t.start())
    }
    fn stop(&self) -> RResult<(), TaskError> {
        self.run("stop", |t| t.stop())
    }
    fn status(&self) -> TaskStatus {
        match self.run("status", |t| Ok(t.status())) {
            ROk(status) => status,
            RErr(_) => FAILED_BY_PANIC,
        }
    }
    fn check_file(&self, query: FileQuery) -> RResult<LookupAnswer, TaskError> {
        self.run("check_file", |t| t.check_file(query))
    }
    fn check_url(&self, url: RStr<'_>) -> RResult<LookupAnswer, TaskError> {
        self.run("check_url", |t| t.check_url(url.as_str()))
    }
    fn tick(&self) -> RResult<(), TaskError> {
        self.run("tick", |t| t.tick())
    }
    fn task_log_json(&self) -> RResult<RString, TaskError> {
        self.run("task_log_json", |t| t.task_log_json().map(RString::from))
    }
    fn ledger_json(&self) -> RResult<RString, TaskError> {
        self.run("ledger_json", |t| t.ledger_json().map(RString::from))
    }
    fn purge_cache(&self) -> RResult<(), TaskError> {
        self.run("purge_cache", |t| t.purge_cache())
    }
    #[cfg(not(ksn_contract = "previous"))]
    fn counters_json(&self) -> RResult<RString, TaskError> {
        self.run("counters_json", |t| t.counters_json().map(RString::from))
    }
    #[cfg(ksn_contract = "next")]
    fn sends_immediately(&self) -> RResult<bool, TaskError> {
        self.run("sends_immediately", |t| t.sends_immediately())
    }
}

/// The body of the exported factory: runs the plugin's constructor under the guard.
pub fn new_task<T: TaskImpl>(
    host: HostBox,
    factory: impl FnOnce(HostBox) -> Result<T, TaskError>,
) -> RResult<KsnTaskBox, TaskError> {
    match catch_unwind(AssertUnwindSafe(|| factory(host))) {
        Ok(Ok(task)) => ROk(KsnTask_TO::from_value(Guarded::new(task), TD_Opaque)),
        Ok(Err(error)) => RErr(error),
        Err(payload) => RErr(TaskError::new(
            ErrorKind::PLUGIN_PANIC,
            format_args!(
                "panic while creating the task: {}",
                panic_message(payload.as_ref())
            ),
        )),
    }
}

/// Forwards this binary's `log` records to the host.
struct Forwarder {
    sink: LogSinkBox,
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        self.sink.log(
            record.level().into(),
            RStr::from_str(record.target()),
            RStr::from_str(&message),
        );
    }

    fn flush(&self) {}
}

static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

/// The body of the exported `install_logger`: the first sink wins for the life of the
/// loaded library (a library is never unloaded). Panic messages are routed to the log too,
/// so they reach the host instead of the plugin's own stderr.
pub fn install_logger(sink: LogSinkBox) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let level = sink.max_level().to_filter();
        if FORWARDER.set(Forwarder { sink }).is_ok() {
            if let Some(forwarder) = FORWARDER.get() {
                if log::set_logger(forwarder).is_ok() {
                    log::set_max_level(level);
                    std::panic::set_hook(Box::new(|info| {
                        log::error!(target: "plugin_panic", "{info}");
                    }));
                }
            }
        }
    }));
}

/// Exports a plugin's root module. Every plugin uses this; it is what guarantees the
/// logger is installed first and that no panic crosses the ABI.
///
/// ```text
/// plugin_api::export_ksn_plugin! {
///     name: "ksn-usage-task",
///     version: env!("CARGO_PKG_VERSION"),
///     factory: MyTask::new,   // fn(HostBox) -> Result<MyTask, TaskError>
/// }
/// ```
#[macro_export]
macro_rules! export_ksn_plugin {
    (name: $name:expr, version: $version:expr, factory: $factory:expr $(,)?) => {
        extern "C" fn __ksn_plugin_info() -> $crate::PluginInfo {
            $crate::PluginInfo {
                name: $crate::abi_stable::std_types::RStr::from_str($name),
                version: $crate::abi_stable::std_types::RStr::from_str($version),
                contract_version: $crate::CONTRACT_VERSION,
            }
        }

        extern "C" fn __ksn_plugin_install_logger(sink: $crate::LogSinkBox) {
            $crate::export::install_logger(sink)
        }

        extern "C" fn __ksn_plugin_new_task(
            host: $crate::HostBox,
        ) -> $crate::abi_stable::std_types::RResult<$crate::KsnTaskBox, $crate::TaskError> {
            $crate::export::new_task(host, $factory)
        }

        #[$crate::abi_stable::export_root_module]
        pub fn __ksn_plugin_root_module() -> $crate::KsnPluginRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::KsnPlugin {
                info: __ksn_plugin_info,
                install_logger: __ksn_plugin_install_logger,
                new_task: __ksn_plugin_new_task,
            }
            .leak_into_prefix()
        }
    };
}
