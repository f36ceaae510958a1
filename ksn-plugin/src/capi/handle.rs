//! The task a C host holds: the core's `Task` over the host's callback table, behind the
//! Rust contract's own panic guard, so that a panic leaves the instance failed exactly as
//! it does for a Rust host (every later call answers `plugin_panic`, and `status` says
//! failed with `plugin_panic`).

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::atomic::{AtomicBool, Ordering},
};

use plugin_api::{
    abi_stable::std_types::RStr,
    guard::{Guarded, FAILED_BY_PANIC},
    ErrorKind, FileQuery, KsnTask as _, LicenseState, LookupAnswer, TaskError, TaskStatus,
};

use super::{
    call::panic_error,
    host::CHost,
    sized::ArgError,
    strings::report,
    types::{KsnError, KsnErrorKind, KSN_OK},
};
use crate::core::Task;

/// One instance of the KSN Usage task (opaque to the host).
pub struct KsnTask {
    guarded: Guarded<Task<CHost>>,
    /// Set by a panic outside the guard (in the C shell): failed for good all the same.
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
        let task = Task::new(host)?;
        log::debug!(target: "ksn_plugin", "task instance created for a C host");
        Ok(Self {
            guarded: Guarded::new(task),
            panicked: AtomicBool::new(false),
        })
    }

    #[inline(always)]
    fn live(&self) -> Result<&Guarded<Task<CHost>>, TaskError> {
        if self.panicked.load(Ordering::Acquire) {
            return Err(failed_after_panic());
        }
        Ok(&self.guarded)
    }

    pub fn push_policy(&self, json: &str) -> Result<(), TaskError> {
        self.live()?.push_policy(RStr::from_str(json)).into_result()
    }
    pub fn set_local(&self, json: &str) -> Result<(), TaskError> {
        self.live()?.set_local(RStr::from_str(json)).into_result()
    }
    pub fn settings_json(&self) -> Result<String, TaskError> {
        Ok(self.live()?.settings_json().into_result()?.into())
    }
    pub fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError> {
        self.live()?.set_private_ksn(enabled).into_result()
    }
    pub fn set_license(&self, license: LicenseState) -> Result<(), TaskError> {
        self.live()?.set_license(license).into_result()
    }
    pub fn application_started(&self) -> Result<(), TaskError> {
        self.live()?.application_started().into_result()
    }
    pub fn start(&self) -> Result<(), TaskError> {
        self.live()?.start().into_result()
    }
    pub fn stop(&self) -> Result<(), TaskError> {
        self.live()?.stop().into_result()
    }
    pub fn status(&self) -> TaskStatus {
        match self.live() {
            Ok(task) => task.status(),
            Err(_) => FAILED_BY_PANIC,
        }
    }
    #[inline]
    pub fn check_file(&self, query: FileQuery) -> Result<LookupAnswer, TaskError> {
        self.live()?.check_file(query).into_result()
    }
    pub fn check_url(&self, url: &str) -> Result<LookupAnswer, TaskError> {
        self.live()?.check_url(RStr::from_str(url)).into_result()
    }
    pub fn tick(&self) -> Result<(), TaskError> {
        self.live()?.tick().into_result()
    }
    pub fn task_log_json(&self) -> Result<String, TaskError> {
        Ok(self.live()?.task_log_json().into_result()?.into())
    }
    pub fn task_log_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        Ok(self
            .live()?
            .task_log_page(from_seq, max)
            .into_result()?
            .into())
    }
    pub fn ledger_json(&self) -> Result<String, TaskError> {
        Ok(self.live()?.ledger_json().into_result()?.into())
    }
    pub fn ledger_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        Ok(self
            .live()?
            .ledger_page(from_seq, max)
            .into_result()?
            .into())
    }
    pub fn counters_json(&self) -> Result<String, TaskError> {
        Ok(self.live()?.counters_json().into_result()?.into())
    }
    pub fn purge_cache(&self) -> Result<(), TaskError> {
        self.live()?.purge_cache().into_result()
    }
}

/// Runs `body` on the task at `task`, reporting its error, or a panic (which leaves the
/// task failed), to the host's `error`.
///
/// # Safety
///
/// `task`, when not null, is a task `ksn_task_new` created and `ksn_task_free` has not
/// freed; `error` as for [`report`].
#[inline(always)]
pub unsafe fn with_task(
    task: *const KsnTask,
    error: *mut KsnError,
    function: &'static str,
    body: impl FnOnce(&KsnTask) -> Result<(), TaskError>,
) -> KsnErrorKind {
    if task.is_null() || !task.is_aligned() {
        return report(
            error,
            &ArgError::new("task", "is a null or misaligned pointer").into(),
        );
    }
    let task = &*task;
    match catch_unwind(AssertUnwindSafe(|| body(task))) {
        Ok(Ok(())) => KSN_OK,
        Ok(Err(e)) => report(error, &e),
        Err(payload) => {
            task.panicked.store(true, Ordering::Release);
            report(error, &panic_error(function, payload))
        }
    }
}
