//! The C host's logger, installed in the library the way the Rust contract's
//! `install_logger` installs a Rust host's: the first sink installed wins, by either ABI,
//! and panic messages go to it too.

use std::ffi::c_void;

use plugin_api::{
    abi_stable::{sabi_trait::TD_Opaque, std_types::RStr},
    LogLevel, LogSink, LogSink_TO,
};

use super::{
    call::contained,
    host::Nullable,
    sized::{narrow, read_in, ArgError},
    types::{KsnError, KsnErrorKind, KsnLogFn, KsnLogSink},
};

struct CLogSink {
    context: *mut c_void,
    log: <KsnLogFn as Nullable>::Present,
    max_level: LogLevel,
}

// SAFETY: the host promises its log callback and context may be used from any thread.
unsafe impl Send for CLogSink {}
unsafe impl Sync for CLogSink {}

impl LogSink for CLogSink {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        // SAFETY: the host gave the callback for the life of the library.
        unsafe {
            (self.log)(
                self.context,
                level.0.into(),
                target.as_ptr().cast(),
                target.len(),
                message.as_ptr().cast(),
                message.len(),
            )
        }
    }

    fn max_level(&self) -> LogLevel {
        self.max_level
    }
}

/// Installs the host's logger for the whole library. Call it once, right after loading;
/// the first logger installed (by this function or by a Rust host) stays for the life of
/// the library, and later calls change nothing. The callback and `context` must stay
/// valid until the process ends.
///
/// # Safety
///
/// `sink` is a `KsnLogSink` of its `struct_size`; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_install_logger(
    sink: *const KsnLogSink,
    error: *mut KsnError,
) -> KsnErrorKind {
    contained(error, "ksn_install_logger", || {
        let sink = read_in(sink, "sink")?;
        let log = sink.log.ok_or(ArgError::new(
            "sink->log",
            "is NULL: the callback is required",
        ))?;
        let sink = CLogSink {
            context: sink.context,
            log,
            // An unknown level filters everything, as in the Rust contract.
            max_level: LogLevel(narrow(sink.max_level)),
        };
        if !plugin_api::export::install_first_logger(LogSink_TO::from_value(sink, TD_Opaque)) {
            return Err(plugin_api::TaskError::invalid_state(
                "a logger is already installed for this library (the first stays); this one was not",
            )
            .into());
        }
        Ok(())
    })
}
