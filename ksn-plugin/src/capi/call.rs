//! No panic crosses the C ABI: every exported function runs its body here, under
//! `catch_unwind`, and a panic becomes `plugin_panic` with its message. A body's error is
//! boxed ([`Failure`]), so that its result fits a register and the cache-hit path moves
//! no error-sized value through memory.

use std::{
    any::Any,
    panic::{catch_unwind, AssertUnwindSafe},
};

use plugin_api::{ErrorKind, TaskError};

use super::{
    sized::ArgError,
    strings::{report, unusable_error},
    types::{KsnError, KsnErrorKind, KSN_ERROR_INVALID_ARGUMENT, KSN_OK},
};

/// A failed call.
pub struct Failure(Box<TaskError>);

impl Failure {
    pub fn error(&self) -> &TaskError {
        &self.0
    }
}

impl From<TaskError> for Failure {
    #[cold]
    fn from(error: TaskError) -> Self {
        Self(Box::new(error))
    }
}

impl From<ArgError> for Failure {
    #[cold]
    fn from(error: ArgError) -> Self {
        Self(Box::new(error.into()))
    }
}

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
    if unusable_error(error) {
        return KSN_ERROR_INVALID_ARGUMENT;
    }
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => KSN_OK,
        Ok(Err(e)) => report(error, e.error()),
        Err(payload) => report(error, &panic_error(function, payload)),
    }
}
