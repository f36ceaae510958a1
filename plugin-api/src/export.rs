//! The export helper every plugin uses (`export_ksn_plugin!`).
//!
//! A panic that unwinds out of an `extern "C"` function ends the host process, so every
//! exported entry point runs its body under `catch_unwind` here, and a panic becomes a
//! `plugin_panic` error; the task instance is then `failed` for good (its locks may be
//! poisoned) and the host re-creates it from storage to recover.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::OnceLock,
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, RResult, RStr, RString},
};

use crate::{
    documents::PluginDescription,
    error::TaskError,
    guard::{panic_message, Guarded},
    host::{HostBox, LogSinkBox},
    kinds::ErrorKind,
    task::{KsnTaskBox, KsnTask_TO},
};

/// Where plugin sources written for the first contract find it.
pub use crate::task::TaskImpl;

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
    let _ = install_first_logger(sink);
}

/// `install_logger`, saying whether this sink is the one installed (`false`: a logger was
/// installed before, and stays).
pub fn install_first_logger(sink: LogSinkBox) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let level = sink.max_level().to_filter();
        if FORWARDER.set(Forwarder { sink }).is_err() {
            return false;
        }
        if let Some(forwarder) = FORWARDER.get() {
            if log::set_logger(forwarder).is_ok() {
                log::set_max_level(level);
                std::panic::set_hook(Box::new(|info| {
                    log::error!(target: "plugin_panic", "{info}");
                }));
            }
        }
        true
    }))
    .unwrap_or(false)
}

/// The body of the exported `describe`: the plugin's description, under the guard.
pub fn describe(describe: impl FnOnce() -> PluginDescription) -> RResult<RString, TaskError> {
    match catch_unwind(AssertUnwindSafe(|| serde_json::to_string(&describe()))) {
        Ok(Ok(json)) => ROk(RString::from(json)),
        Ok(Err(e)) => RErr(TaskError::invalid_state(format_args!(
            "the description does not serialise: {e}"
        ))),
        Err(payload) => RErr(TaskError::new(
            ErrorKind::PLUGIN_PANIC,
            format_args!("panic in describe: {}", panic_message(payload.as_ref())),
        )),
    }
}

/// The body of the exported `document_schema`: the contract's schema of `name`, with the
/// plugin's own policy and local-change schemas when it describes itself.
pub fn document_schema(
    name: RStr<'_>,
    describe: Option<fn() -> PluginDescription>,
) -> RResult<RString, TaskError> {
    let found = catch_unwind(AssertUnwindSafe(|| {
        let own = describe.map(|d| d());
        match (name.as_str(), own) {
            ("policy", Some(d)) => Some(d.policy_schema),
            ("local_change", Some(d)) => Some(d.local_schema),
            (name, _) => crate::documents::schemas::schema(name),
        }
    }));
    match found {
        Ok(Some(schema)) => ROk(RString::from(schema.to_string())),
        Ok(None) => RErr(TaskError::new(
            ErrorKind::INVALID_ARGUMENT,
            format_args!(
                "no document is called {:?}; the documents: {}",
                name.as_str(),
                crate::documents::schemas::names().join(", ")
            ),
        )),
        Err(payload) => RErr(TaskError::new(
            ErrorKind::PLUGIN_PANIC,
            format_args!(
                "panic in document_schema: {}",
                panic_message(payload.as_ref())
            ),
        )),
    }
}

/// What `describe` answers for a plugin that gives no description.
pub fn no_description() -> RResult<RString, TaskError> {
    RErr(crate::task::not_implemented("describe", "1.2.0"))
}

/// The name under which abi_stable looks up a library's header (what its
/// `#[export_root_module]` attribute exports). `export_ksn_plugin!` exports the header
/// itself, so that a plugin needs no dependency but this crate.
pub const ROOT_MODULE_LOADER_NAME: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a plugin's root module. Every plugin uses this; it is what guarantees the
/// logger is installed first and that no panic crosses the ABI. A plugin needs no other
/// ABI dependency: abi_stable is reached through this crate.
///
/// ```text
/// plugin_api::export_ksn_plugin! {
///     name: "ksn-usage-task",
///     version: env!("CARGO_PKG_VERSION"),
///     factory: MyTask::new,      // fn(HostBox) -> Result<MyTask, TaskError>
///     describe: my_description,  // fn() -> PluginDescription (optional)
/// }
/// ```
#[macro_export]
macro_rules! export_ksn_plugin {
    (name: $name:expr, version: $version:expr, factory: $factory:expr $(,)?) => {
        $crate::export_ksn_plugin!(@root $name, $version, $factory, $crate::export::no_description(), None);
    };
    (name: $name:expr, version: $version:expr, factory: $factory:expr, describe: $describe:expr $(,)?) => {
        $crate::export_ksn_plugin!(@root $name, $version, $factory, $crate::export::describe($describe), Some($describe));
    };
    (@root $name:expr, $version:expr, $factory:expr, $describe:expr, $own:expr) => {
        extern "C" fn __ksn_plugin_info() -> $crate::PluginInfo {
            $crate::PluginInfo {
                name: $crate::abi_stable::std_types::RStr::from_str($name),
                version: $crate::abi_stable::std_types::RStr::from_str($version),
                contract_version: $crate::CONTRACT_MINOR,
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

        extern "C" fn __ksn_plugin_describe(
        ) -> $crate::abi_stable::std_types::RResult<
            $crate::abi_stable::std_types::RString,
            $crate::TaskError,
        > {
            $describe
        }

        extern "C" fn __ksn_plugin_document_schema(
            name: $crate::abi_stable::std_types::RStr<'_>,
        ) -> $crate::abi_stable::std_types::RResult<
            $crate::abi_stable::std_types::RString,
            $crate::TaskError,
        > {
            $crate::export::document_schema(name, $own)
        }

        fn __ksn_plugin_root_module() -> $crate::KsnPluginRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::KsnPlugin {
                info: __ksn_plugin_info,
                install_logger: __ksn_plugin_install_logger,
                new_task: __ksn_plugin_new_task,
                describe: __ksn_plugin_describe,
                document_schema: __ksn_plugin_document_schema,
            }
            .leak_into_prefix()
        }

        /// The library's header, as abi_stable's `#[export_root_module]` would export it.
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __KSN_PLUGIN_LIB_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__ksn_plugin_root_module)
            }
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::KsnPluginRef>(
                    erased,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_is_exported_under_abi_stable_s_name() {
        assert_eq!(
            super::ROOT_MODULE_LOADER_NAME,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
