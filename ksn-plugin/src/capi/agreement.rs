//! The C vocabularies are the Rust contract's numbers, checked at compile time.

use plugin_api::{
    AnswerSource, DataCategory, ErrorKind, LicenseState, LogLevel, ObjectAction, Operation,
    Service, TaskState, TransportFailure, Verdict,
};

use super::types::*;

macro_rules! same {
    ($($c:ident == $rust:expr;)*) => {$(
        const _: () = assert!($c == $rust.0 as u32, stringify!($c));
    )*};
}

same! {
    KSN_ERROR_STATEMENT_NOT_ACCEPTED == ErrorKind::STATEMENT_NOT_ACCEPTED;
    KSN_ERROR_LICENSE_VIOLATION == ErrorKind::LICENSE_VIOLATION;
    KSN_ERROR_LOCKED_BY_POLICY == ErrorKind::LOCKED_BY_POLICY;
    KSN_ERROR_UNAVAILABLE_IN_PRIVATE_KSN == ErrorKind::UNAVAILABLE_IN_PRIVATE_KSN;
    KSN_ERROR_INVALID_SETTINGS == ErrorKind::INVALID_SETTINGS;
    KSN_ERROR_INVALID_STATE == ErrorKind::INVALID_STATE;
    KSN_ERROR_PLUGIN_PANIC == ErrorKind::PLUGIN_PANIC;
    KSN_ERROR_KSN_UNAVAILABLE == ErrorKind::KSN_UNAVAILABLE;
    KSN_ERROR_STORAGE_ERROR == ErrorKind::STORAGE_ERROR;
    KSN_ERROR_NOT_IMPLEMENTED == ErrorKind::NOT_IMPLEMENTED;
    KSN_ERROR_INVALID_ARGUMENT == ErrorKind::INVALID_ARGUMENT;
    KSN_VERDICT_UNKNOWN == Verdict::UNKNOWN;
    KSN_VERDICT_TRUSTED == Verdict::TRUSTED;
    KSN_VERDICT_UNTRUSTED == Verdict::UNTRUSTED;
    KSN_VERDICT_UNAVAILABLE == Verdict::UNAVAILABLE;
    KSN_ACTION_NONE == ObjectAction::NONE;
    KSN_ACTION_DELETED == ObjectAction::DELETED;
    KSN_ACTION_LOGGED == ObjectAction::LOGGED;
    KSN_ACTION_DELETE_FAILED == ObjectAction::DELETE_FAILED;
    KSN_OPERATION_PUSH_POLICY == Operation::PUSH_POLICY;
    KSN_OPERATION_SET_LOCAL == Operation::SET_LOCAL;
    KSN_OPERATION_SET_PRIVATE_KSN == Operation::SET_PRIVATE_KSN;
    KSN_OPERATION_SET_LICENSE == Operation::SET_LICENSE;
    KSN_OPERATION_APPLICATION_STARTED == Operation::APPLICATION_STARTED;
    KSN_OPERATION_START == Operation::START;
    KSN_OPERATION_STOP == Operation::STOP;
    KSN_SOURCE_NONE == AnswerSource::NONE;
    KSN_SOURCE_LOCAL_LIST == AnswerSource::LOCAL_LIST;
    KSN_SOURCE_PRIVATE_DATABASE == AnswerSource::PRIVATE_DATABASE;
    KSN_SOURCE_KSN == AnswerSource::KSN;
    KSN_SOURCE_NOT_RUNNING == AnswerSource::NOT_RUNNING;
    KSN_SOURCE_NOT_CONSENTED == AnswerSource::NOT_CONSENTED;
    KSN_SOURCE_SERVICE_DOWN == AnswerSource::SERVICE_DOWN;
    KSN_SERVICE_NONE == Service::NONE;
    KSN_SERVICE_GLOBAL == Service::GLOBAL;
    KSN_SERVICE_PROXY == Service::PROXY;
    KSN_SERVICE_PRIVATE == Service::PRIVATE;
    KSN_LICENSE_UNKNOWN == LicenseState::UNKNOWN;
    KSN_LICENSE_VALID == LicenseState::VALID;
    KSN_LICENSE_EXPIRED == LicenseState::EXPIRED;
    KSN_LICENSE_NO_KSN == LicenseState::NO_KSN;
    KSN_STATE_STOPPED == TaskState::STOPPED;
    KSN_STATE_RUNNING == TaskState::RUNNING;
    KSN_STATE_FAILED == TaskState::FAILED;
    KSN_TRANSPORT_UNREACHABLE == TransportFailure::UNREACHABLE;
    KSN_TRANSPORT_TIMED_OUT == TransportFailure::TIMED_OUT;
    KSN_CATEGORY_FILES == DataCategory::FILES;
    KSN_CATEGORY_URLS == DataCategory::URLS;
    KSN_CATEGORY_STATISTICS == DataCategory::STATISTICS;
    KSN_CATEGORY_KMP == DataCategory::KMP;
    KSN_LOG_OFF == LogLevel::OFF;
    KSN_LOG_ERROR == LogLevel::ERROR;
    KSN_LOG_WARN == LogLevel::WARN;
    KSN_LOG_INFO == LogLevel::INFO;
    KSN_LOG_DEBUG == LogLevel::DEBUG;
    KSN_LOG_TRACE == LogLevel::TRACE;
}

// Every contract value has its C name (a new one needs one here too).
const _: () = assert!(ErrorKind::ALL.len() == 11);
const _: () = assert!(Verdict::ALL.len() == 4);
const _: () = assert!(ObjectAction::ALL.len() == 4);
const _: () = assert!(Operation::ALL.len() == 7);
const _: () = assert!(AnswerSource::ALL.len() == 7);
const _: () = assert!(Service::ALL.len() == 4);
const _: () = assert!(LicenseState::ALL.len() == 4);
const _: () = assert!(TaskState::ALL.len() == 3);
const _: () = assert!(TransportFailure::ALL.len() == 2);
const _: () = assert!(DataCategory::ALL.len() == 4);
const _: () = assert!(LogLevel::ALL.len() == 6);
