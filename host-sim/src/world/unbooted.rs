//! The task of a device whose instance could not be created at a restart (a damaged
//! journal, say): every call answers why, so the run goes on and reports it. The old
//! instance is gone by then (a host drops it before creating the next, so that what it
//! could still write is written first).

use plugin_api::{
    abi_stable::{sabi_trait::TD_Opaque, std_types::ROption},
    FileQuery, KsnTaskBox, KsnTask_TO, LicenseState, LookupAnswer, Service, TaskError, TaskImpl,
    TaskState, TaskStatus,
};

struct Unbooted(TaskError);

impl Unbooted {
    fn error<T>(&self) -> Result<T, TaskError> {
        Err(TaskError::new(
            self.0.kind,
            format_args!("the task could not be created: {}", self.0.message),
        ))
    }
}

/// A task that answers `error` to everything.
pub fn unbooted(error: TaskError) -> KsnTaskBox {
    KsnTask_TO::from_value(plugin_api::Guarded::new(Unbooted(error)), TD_Opaque)
}

impl TaskImpl for Unbooted {
    fn push_policy(&self, _: &str) -> Result<(), TaskError> {
        self.error()
    }
    fn set_local(&self, _: &str) -> Result<(), TaskError> {
        self.error()
    }
    fn settings_json(&self) -> Result<String, TaskError> {
        self.error()
    }
    fn set_private_ksn(&self, _: bool) -> Result<(), TaskError> {
        self.error()
    }
    fn set_license(&self, _: LicenseState) -> Result<(), TaskError> {
        self.error()
    }
    fn application_started(&self) -> Result<(), TaskError> {
        self.error()
    }
    fn start(&self) -> Result<(), TaskError> {
        self.error()
    }
    fn stop(&self) -> Result<(), TaskError> {
        self.error()
    }
    fn status(&self) -> TaskStatus {
        TaskStatus {
            state: TaskState::FAILED,
            error: ROption::RSome(self.0.kind),
            network: Service::NONE,
            private_ksn: false,
            license: LicenseState::UNKNOWN,
        }
    }
    fn check_file(&self, _: FileQuery) -> Result<LookupAnswer, TaskError> {
        self.error()
    }
    fn check_url(&self, _: &str) -> Result<LookupAnswer, TaskError> {
        self.error()
    }
    fn tick(&self) -> Result<(), TaskError> {
        self.error()
    }
    fn task_log_json(&self) -> Result<String, TaskError> {
        self.error()
    }
    fn ledger_json(&self) -> Result<String, TaskError> {
        self.error()
    }
    fn purge_cache(&self) -> Result<(), TaskError> {
        self.error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::ErrorKind;

    #[test]
    fn every_call_says_why_there_is_no_task() {
        let task = unbooted(TaskError::new(
            ErrorKind::STORAGE_ERROR,
            "record 3 is damaged",
        ));
        let err = task.start().into_result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::STORAGE_ERROR);
        assert_eq!(
            err.message.as_str(),
            "the task could not be created: record 3 is damaged"
        );
        assert_eq!(task.status().state, TaskState::FAILED);
    }
}
