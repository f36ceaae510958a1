//! The task a C host holds: the core's `Task` over the host's callback table, behind the
//! C boundary's panic guard. The guard keeps the Rust contract's rules (`plugin_api::
//! guard`): a panic anywhere in a call answers `plugin_panic`, and the instance stays
//! failed (every later call answers `plugin_panic`; `status` says failed with
//! `plugin_panic`) until the host frees it and creates it again from storage. It wraps the
//! core directly, so that the cache-hit path returns its answer in registers.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::atomic::{AtomicBool, Ordering},
};

use plugin_api::{guard::FAILED_BY_PANIC, ErrorKind, TaskError, TaskStatus};

use super::{
    call::{panic_error, Failure},
    host::CHost,
    sized::ArgError,
    strings::{report, unusable_error},
    types::{KsnError, KsnErrorKind, KSN_ERROR_INVALID_ARGUMENT, KSN_OK},
};
use crate::core::Task;

/// One instance of the KSN Usage task (opaque to the host).
pub struct KsnTask {
    task: Task<CHost>,
    panicked: AtomicBool,
}

#[cold]
fn failed_after_panic() -> TaskError {
    TaskError::new(
        ErrorKind::PLUGIN_PANIC,
        "the task failed after a panic; free it and create it again to recover it from storage",
    )
}

impl KsnTask {
    /// Creates the task over `host`, restoring its state from the host's storage.
    pub fn new(host: CHost) -> Result<Self, TaskError> {
        let task = Task::sharing(host, crate::shared_policies())?;
        log::debug!(target: "ksn_plugin", "task instance created for a C host");
        Ok(Self {
            task,
            panicked: AtomicBool::new(false),
        })
    }

    fn failed(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    /// The task's status; after a panic (or on one), failed with `plugin_panic`.
    pub fn status(&self) -> TaskStatus {
        if self.failed() {
            return FAILED_BY_PANIC;
        }
        catch_unwind(AssertUnwindSafe(|| self.task.status())).unwrap_or_else(|_| {
            self.panicked.store(true, Ordering::Release);
            FAILED_BY_PANIC
        })
    }
}

/// Runs `body` on the task at `task`, in any state, reporting its error, or a panic (which
/// leaves the task failed), to the host's `error`.
///
/// # Safety
///
/// `task`, when not null, is a task `ksn_task_new` created and `ksn_task_free` has not
/// freed; `error` as for [`report`].
#[inline(always)]
pub unsafe fn with_handle(
    task: *const KsnTask,
    error: *mut KsnError,
    function: &'static str,
    body: impl FnOnce(&KsnTask) -> Result<(), Failure>,
) -> KsnErrorKind {
    if unusable_error(error) {
        return KSN_ERROR_INVALID_ARGUMENT;
    }
    if task.is_null() || !task.is_aligned() {
        return report(
            error,
            &ArgError::new("task", "is a null or misaligned pointer").into(),
        );
    }
    let task = &*task;
    match catch_unwind(AssertUnwindSafe(|| body(task))) {
        Ok(Ok(())) => KSN_OK,
        Ok(Err(e)) => report(error, e.error()),
        Err(payload) => {
            task.panicked.store(true, Ordering::Release);
            report(error, &panic_error(function, payload))
        }
    }
}

/// Runs `body` on the core task at `task`, refused once the task has panicked.
///
/// # Safety
///
/// As for [`with_handle`].
#[inline(always)]
pub unsafe fn with_task(
    task: *const KsnTask,
    error: *mut KsnError,
    function: &'static str,
    body: impl FnOnce(&Task<CHost>) -> Result<(), Failure>,
) -> KsnErrorKind {
    with_handle(task, error, function, |handle| {
        if handle.failed() {
            return Err(failed_after_panic().into());
        }
        body(&handle.task)
    })
}
