//! No panic crosses the C ABI: every exported function runs its body here, under
//! `catch_unwind`, and a panic becomes `plugin_panic` with its message.

use std::{
    any::Any,
    panic::{catch_unwind, AssertUnwindSafe},
};

use plugin_api::{ErrorKind, TaskError};

use super::{
    failure::Failure,
    strings::report,
    types::{KsnError, KsnErrorKind, KSN_OK},
};

/// `plugin_panic`, saying where and why.
#[cold]
pub fn panic_error(function: &str, payload: Box<dyn Any + Send>) -> TaskError {
    let why = if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.as_str()
    } else {
        "non-text panic payload"
    };
    TaskError::new(
        ErrorKind::PLUGIN_PANIC,
        format_args!("panic in {function}: {why}"),
    )
}

/// Runs `body`, reporting its error, or a panic, to the host's `error`.
///
/// # Safety
///
/// `error`, when not null, points to a writable `KsnError` of its `struct_size`.
#[inline(always)]
pub unsafe fn contained(
    error: *mut KsnError,
    function: &'static str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> KsnErrorKind {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => KSN_OK,
        Ok(Err(e)) => report(error, e.error()),
        Err(payload) => report(error, &panic_error(function, payload)),
    }
}
