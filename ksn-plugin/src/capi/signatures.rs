//! The type of every exported function, for hosts that load the library with `dlopen` and
//! `dlsym` (`PFN_ksn_task_new f = (PFN_ksn_task_new)dlsym(lib, "ksn_task_new");`). Each is
//! checked here against its function, so the header cannot declare one the library does
//! not have.
#![allow(non_camel_case_types)]

use std::ffi::c_char;

use super::{
    entry::*,
    handle::KsnTask,
    logger::ksn_install_logger,
    plugin::{ksn_describe, ksn_document_schema, ksn_error_kind_name, ksn_plugin_info},
    strings::{ksn_error_free, ksn_string_free},
    types::{
        KsnCall, KsnError, KsnErrorKind, KsnFileQuery, KsnHost, KsnLicense, KsnLogSink,
        KsnLookupAnswer, KsnPluginInfo, KsnStatus, KsnString,
    },
};

pub type PFN_ksn_plugin_info =
    unsafe extern "C" fn(info: *mut KsnPluginInfo, error: *mut KsnError) -> KsnErrorKind;
pub type PFN_ksn_describe =
    unsafe extern "C" fn(out: *mut KsnString, error: *mut KsnError) -> KsnErrorKind;
pub type PFN_ksn_install_logger =
    unsafe extern "C" fn(sink: *const KsnLogSink, error: *mut KsnError) -> KsnErrorKind;
pub type PFN_ksn_error_kind_name = unsafe extern "C" fn(kind: KsnErrorKind) -> *const c_char;
pub type PFN_ksn_string_free = unsafe extern "C" fn(string: *mut KsnString);
pub type PFN_ksn_error_free = unsafe extern "C" fn(error: *mut KsnError);
pub type PFN_ksn_task_new = unsafe extern "C" fn(
    host: *const KsnHost,
    task: *mut *mut KsnTask,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_free = unsafe extern "C" fn(task: *mut KsnTask);
/// Also `ksn_task_set_local`.
pub type PFN_ksn_task_push_policy = unsafe extern "C" fn(
    task: *const KsnTask,
    json: *const c_char,
    len: usize,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_set_local = PFN_ksn_task_push_policy;
pub type PFN_ksn_task_set_private_ksn =
    unsafe extern "C" fn(task: *const KsnTask, enabled: bool, error: *mut KsnError) -> KsnErrorKind;
pub type PFN_ksn_task_set_license = unsafe extern "C" fn(
    task: *const KsnTask,
    license: KsnLicense,
    error: *mut KsnError,
) -> KsnErrorKind;
/// Also `ksn_task_start`, `ksn_task_stop`, `ksn_task_tick` and `ksn_task_purge_cache`.
pub type PFN_ksn_task_application_started =
    unsafe extern "C" fn(task: *const KsnTask, error: *mut KsnError) -> KsnErrorKind;
pub type PFN_ksn_task_start = PFN_ksn_task_application_started;
pub type PFN_ksn_task_stop = PFN_ksn_task_application_started;
pub type PFN_ksn_task_tick = PFN_ksn_task_application_started;
pub type PFN_ksn_task_purge_cache = PFN_ksn_task_application_started;
pub type PFN_ksn_task_status = unsafe extern "C" fn(
    task: *const KsnTask,
    status: *mut KsnStatus,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_check_file = unsafe extern "C" fn(
    task: *const KsnTask,
    query: *const KsnFileQuery,
    answer: *mut KsnLookupAnswer,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_check_url = unsafe extern "C" fn(
    task: *const KsnTask,
    url: *const c_char,
    len: usize,
    answer: *mut KsnLookupAnswer,
    error: *mut KsnError,
) -> KsnErrorKind;
/// Also `ksn_task_log_json`, `ksn_task_ledger_json` and `ksn_task_counters_json`.
pub type PFN_ksn_task_settings_json = unsafe extern "C" fn(
    task: *const KsnTask,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_log_json = PFN_ksn_task_settings_json;
pub type PFN_ksn_task_ledger_json = PFN_ksn_task_settings_json;
pub type PFN_ksn_task_counters_json = PFN_ksn_task_settings_json;
/// Also `ksn_task_ledger_page`.
pub type PFN_ksn_task_log_page = unsafe extern "C" fn(
    task: *const KsnTask,
    from_seq: u64,
    max: u32,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_task_ledger_page = PFN_ksn_task_log_page;
pub type PFN_ksn_task_control = unsafe extern "C" fn(
    task: *const KsnTask,
    call: *const KsnCall,
    after: *mut KsnStatus,
    error: *mut KsnError,
) -> KsnErrorKind;
pub type PFN_ksn_document_schema = unsafe extern "C" fn(
    name: *const c_char,
    name_len: usize,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind;

macro_rules! checked {
    ($($pfn:ident = $function:ident;)*) => {$(
        const _: $pfn = $function;
    )*};
}

checked! {
    PFN_ksn_plugin_info = ksn_plugin_info;
    PFN_ksn_describe = ksn_describe;
    PFN_ksn_install_logger = ksn_install_logger;
    PFN_ksn_error_kind_name = ksn_error_kind_name;
    PFN_ksn_string_free = ksn_string_free;
    PFN_ksn_error_free = ksn_error_free;
    PFN_ksn_task_new = ksn_task_new;
    PFN_ksn_task_free = ksn_task_free;
    PFN_ksn_task_push_policy = ksn_task_push_policy;
    PFN_ksn_task_set_local = ksn_task_set_local;
    PFN_ksn_task_set_private_ksn = ksn_task_set_private_ksn;
    PFN_ksn_task_set_license = ksn_task_set_license;
    PFN_ksn_task_application_started = ksn_task_application_started;
    PFN_ksn_task_start = ksn_task_start;
    PFN_ksn_task_stop = ksn_task_stop;
    PFN_ksn_task_tick = ksn_task_tick;
    PFN_ksn_task_purge_cache = ksn_task_purge_cache;
    PFN_ksn_task_status = ksn_task_status;
    PFN_ksn_task_check_file = ksn_task_check_file;
    PFN_ksn_task_check_url = ksn_task_check_url;
    PFN_ksn_task_settings_json = ksn_task_settings_json;
    PFN_ksn_task_log_json = ksn_task_log_json;
    PFN_ksn_task_ledger_json = ksn_task_ledger_json;
    PFN_ksn_task_counters_json = ksn_task_counters_json;
    PFN_ksn_task_log_page = ksn_task_log_page;
    PFN_ksn_task_ledger_page = ksn_task_ledger_page;
    PFN_ksn_task_control = ksn_task_control;
    PFN_ksn_document_schema = ksn_document_schema;
}
