//! The ABI shell: adapts the host's `HostServices` object to the core's `Host`, and the
//! core's `Task` to the contract's `TaskImpl`.

use plugin_api::{
    abi_stable::std_types::{RResult, RStr},
    export::TaskImpl,
    DataCategory, FileQuery, HostBox, KsnReply, LicenseState, LookupAnswer, Service, TaskError,
    TaskStatus, TransportFailure, Verdict,
};

use crate::core::{Host, Task};

pub struct AbiHost(HostBox);

fn result<T, E>(r: RResult<T, E>) -> Result<T, E> {
    r.into_result()
}

impl Host for AbiHost {
    fn emit_event(&self, event_json: &str) {
        self.0.emit_event(RStr::from_str(event_json))
    }
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String> {
        result(self.0.storage_append(key.into(), record.into())).map_err(String::from)
    }
    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        result(self.0.storage_records(key.into()))
            .map(|records| records.into_iter().map(|r| r.into_vec()).collect())
            .map_err(String::from)
    }
    fn local_file_verdict(&self, query: FileQuery) -> Verdict {
        self.0.local_file_verdict(query)
    }
    fn local_url_verdict(&self, url: &str) -> Verdict {
        self.0.local_url_verdict(url.into())
    }
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        result(self.0.ksn_file(service, query, timeout_ms))
    }
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure> {
        result(self.0.ksn_url(service, url.into(), timeout_ms))
    }
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure> {
        result(self.0.ksn_upload(service, category, items, timeout_ms))
    }
    fn backup_and_delete(&self, query: FileQuery) -> Result<(), String> {
        result(self.0.backup_and_delete(query)).map_err(String::from)
    }
}

/// The factory the plugin exports.
pub fn new_task(host: HostBox) -> Result<Task<AbiHost>, TaskError> {
    let task = Task::new(AbiHost(host))?;
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
        Ok(Task::check_url(self, url))
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
}
