//! The ABI shell: the core's `Task`, over the host's `HostServices` object (the core's
//! `Host` through its one adapter, `core::host`), is the contract's `TaskImpl`.

use plugin_api::{
    CallOutcome, ControlCall, FileQuery, HostBox, LicenseState, LookupAnswer, ObjectAnswer,
    ObjectRef, TaskError, TaskImpl, TaskStatus,
};

use crate::core::{Host, Task};

/// The factory the plugin exports.
pub fn new_task(host: HostBox) -> Result<Task<HostBox>, TaskError> {
    let task = Task::sharing(host, crate::shared_policies())?;
    log::debug!(target: "ksn_plugin", "task instance created");
    Ok(task)
}

impl<H: Host> TaskImpl for Task<H> {
    fn push_policy(&self, policy_json: &str) -> Result<(), TaskError> {
        Task::push_policy(self, policy_json)
    }
    fn set_local(&self, settings_json: &str) -> Result<(), TaskError> {
        Task::set_local(self, settings_json)
    }
    fn settings_json(&self) -> Result<String, TaskError> {
        Ok(Task::settings_json(self))
    }
    fn set_private_ksn(&self, enabled: bool) -> Result<(), TaskError> {
        Task::set_private_ksn(self, enabled)
    }
    fn set_license(&self, license: LicenseState) -> Result<(), TaskError> {
        Task::set_license(self, license)
    }
    fn application_started(&self) -> Result<(), TaskError> {
        Task::application_started(self)
    }
    fn start(&self) -> Result<(), TaskError> {
        Task::start(self)
    }
    fn stop(&self) -> Result<(), TaskError> {
        Task::stop(self)
    }
    fn status(&self) -> TaskStatus {
        Task::status(self)
    }
    fn check_file(&self, query: FileQuery) -> Result<LookupAnswer, TaskError> {
        Ok(Task::check_file(self, query))
    }
    fn check_url(&self, url: &str) -> Result<LookupAnswer, TaskError> {
        Task::check_url(self, url)
    }
    fn tick(&self) -> Result<(), TaskError> {
        Task::tick(self);
        Ok(())
    }
    fn task_log_json(&self) -> Result<String, TaskError> {
        Task::task_log_json(self)
    }
    fn ledger_json(&self) -> Result<String, TaskError> {
        Ok(Task::ledger_json(self))
    }
    fn purge_cache(&self) -> Result<(), TaskError> {
        Task::purge_cache(self);
        Ok(())
    }
    fn counters_json(&self) -> Result<String, TaskError> {
        Ok(Task::counters_json(self))
    }
    fn task_log_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        Task::task_log_page(self, from_seq, max)
    }
    fn ledger_page(&self, from_seq: u64, max: u32) -> Result<String, TaskError> {
        Ok(Task::ledger_page(self, from_seq, max))
    }
    fn check_object(
        &self,
        query: FileQuery,
        object: ObjectRef<'_>,
    ) -> Result<ObjectAnswer, TaskError> {
        Ok(ObjectAnswer {
            answer: Task::check_object(self, query, object),
            object: object.handle,
        })
    }
    fn control(&self, call: ControlCall<'_>) -> Result<CallOutcome, TaskError> {
        Ok(Task::control(self, call))
    }
}
