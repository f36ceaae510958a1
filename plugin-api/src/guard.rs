//! The panic guard between the host and a plugin's `TaskImpl`: every call runs under
//! `catch_unwind`, a panic becomes `plugin_panic`, and the instance stays failed (its locks
//! may be poisoned); the host re-creates it from storage to recover. The forwarding of each
//! method is generated with the method list (`task.rs`); here are the guard and the
//! conversions it uses.

use std::{
    any::Any,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::atomic::{AtomicBool, Ordering},
};

use abi_stable::std_types::{RErr, ROk, ROption, RResult, RStr, RString};

use crate::{
    error::TaskError,
    kinds::{ErrorKind, LicenseState, Service, TaskState},
    lookup::{
        CallOutcome, ControlCall, FileQuery, LookupAnswer, ObjectAnswer, ObjectRef, TaskStatus,
    },
};

/// An argument as the ABI carries it, turned into what `TaskImpl` takes.
pub trait Plain {
    type Out;
    fn plain(self) -> Self::Out;
}

impl<'a> Plain for RStr<'a> {
    type Out = &'a str;
    fn plain(self) -> &'a str {
        self.as_str()
    }
}

macro_rules! plain_as_is {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            type Out = $t;
            fn plain(self) -> $t {
                self
            }
        }
    )*};
}
plain_as_is!(bool, u32, u64, LicenseState, FileQuery);

impl<'a> Plain for ObjectRef<'a> {
    type Out = ObjectRef<'a>;
    fn plain(self) -> ObjectRef<'a> {
        self
    }
}

impl<'a> Plain for ControlCall<'a> {
    type Out = ControlCall<'a>;
    fn plain(self) -> ControlCall<'a> {
        self
    }
}

/// A `TaskImpl` result turned into what the ABI carries.
pub trait IntoAbi {
    type Abi;
    fn into_abi(self) -> Self::Abi;
}

impl IntoAbi for String {
    type Abi = RString;
    fn into_abi(self) -> RString {
        RString::from(self)
    }
}

macro_rules! abi_as_is {
    ($($t:ty),*) => {$(
        impl IntoAbi for $t {
            type Abi = $t;
            fn into_abi(self) -> $t {
                self
            }
        }
    )*};
}
abi_as_is!((), bool, LookupAnswer, ObjectAnswer, CallOutcome);

/// A `TaskImpl` behind the panic guard.
pub struct Guarded<T> {
    inner: T,
    panicked: AtomicBool,
}

impl<T> Guarded<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            panicked: AtomicBool::new(false),
        }
    }

    /// Runs one method under the guard. Inlined into each method, with the rare paths out
    /// of line: it is on the lookup path of every file the application opens.
    #[inline(always)]
    pub(crate) fn run<R>(
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

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "non-text panic payload"
    }
}

/// What `status` answers once the task has panicked.
pub const FAILED_BY_PANIC: TaskStatus = TaskStatus {
    state: TaskState::FAILED,
    error: ROption::RSome(ErrorKind::PLUGIN_PANIC),
    network: Service::NONE,
    private_ksn: false,
    license: LicenseState::UNKNOWN,
};
