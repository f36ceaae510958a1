//! The plugin through the stable ABI: loading, refusal of incompatible libraries, panics
//! contained, log records forwarded.

mod common;

use std::sync::{Mutex, OnceLock};

use abi_stable::sabi_trait::TD_Opaque;
use host_sim::world::{Device, DeviceHost};
use plugin_api::loader;
use plugin_api::{ErrorKind, FileQuery, HostServices_TO, TaskState};

#[test]
fn the_real_plugin_loads_and_says_who_it_is() {
    let plugin = common::plugin();
    assert_eq!(plugin.info.name.as_str(), "ksn-usage-task");
    assert_eq!(plugin.info.version.as_str(), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        plugin.contract.version.as_str(),
        plugin_api::CONTRACT_VERSION
    );
    assert_eq!(plugin.info.contract_version, plugin_api::CONTRACT_MINOR);
}

#[test]
fn a_task_is_driven_through_the_abi() {
    let device = common::device();
    let task = &device.task;
    let err = task.start().into_result().unwrap_err();
    assert_eq!(err.kind, ErrorKind::STATEMENT_NOT_ACCEPTED);
    task.push_policy(
        r#"{"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true, "versions": {"ksn": 1}}}}}"#.into(),
    )
    .into_result()
    .unwrap();
    task.start().into_result().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
    let answer = task
        .check_file(FileQuery {
            md5: [7; 16],
            size_bytes: 10,
        })
        .into_result()
        .unwrap();
    assert_eq!(answer.verdict.as_str(), "unknown");
    let log: serde_json::Value =
        serde_json::from_str(&task.task_log_json().into_result().unwrap()).unwrap();
    assert!(log.as_array().unwrap().len() >= 4);
}

#[test]
fn a_plugin_built_against_a_changed_contract_is_refused_with_a_summary() {
    let (summary, details) = common::refused("fixture_incompatible_plugin");
    assert_eq!(
        summary,
        "mismatched type at info.__returns.contract_version: expected u32, found u64"
    );
    assert!(
        details.lines().count() > 100,
        "the full report is kept for --verbose"
    );
}

#[test]
fn an_ordinary_shared_library_is_not_a_plugin() {
    let err = loader::load(&any_system_library()).err().unwrap();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(
        err.to_string().contains("not a KSN Usage task plugin"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_said_so() {
    let err = loader::load(std::path::Path::new("/no/such/libplugin.so"))
        .err()
        .unwrap();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(err.to_string(), "no such file: /no/such/libplugin.so");
}

/// Some shared library that is certainly not a plugin.
pub fn any_system_library() -> std::path::PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/libm.so.6",
        "/lib64/libm.so.6",
    ];
    candidates
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .expect("a system shared library")
}

/// Captures log records that reach this (host) process's logger.
struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        capture
    })
}

#[test]
fn a_panicking_method_returns_plugin_panic_and_the_host_keeps_running() {
    let records = capture();
    let plugin = loader::load(&common::artifact("fixture_panicky_plugin")).unwrap();
    assert_eq!(plugin.info.name.as_str(), "panicky-fixture");
    let host = HostServices_TO::from_value(DeviceHost(common::device_state()), TD_Opaque);
    let task = plugin.module.new_task()(host).into_result().unwrap();

    let err = task.start().into_result().unwrap_err();
    assert_eq!(err.kind, ErrorKind::PLUGIN_PANIC);
    assert!(err.message.contains("start exploded on purpose"), "{err}");
    let status = task.status();
    assert_eq!(status.state, TaskState::FAILED);
    assert_eq!(status.error.into_option(), Some(ErrorKind::PLUGIN_PANIC));
    let err = task.stop().into_result().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::PLUGIN_PANIC,
        "a panicked instance stays failed"
    );

    // Another instance from the same library is unaffected until it panics itself.
    let host = HostServices_TO::from_value(DeviceHost(common::device_state()), TD_Opaque);
    let second = plugin.module.new_task()(host).into_result().unwrap();
    assert!(second.stop().into_result().is_ok());
    let err = second
        .check_file(FileQuery {
            md5: [0; 16],
            size_bytes: 1,
        })
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PLUGIN_PANIC);
    assert!(err.message.contains("index out of bounds"), "{err}");

    // The panic message was routed to the host's log, not the plugin's stderr.
    let seen = records.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(level, target, message)| *level == log::Level::Error
                && target == "plugin_panic"
                && message.contains("start exploded on purpose")),
        "{seen:?}"
    );
}

#[test]
fn plugin_log_records_reach_the_host_with_level_and_target() {
    let records = capture();
    let plugin = loader::load(&common::artifact("fixture_panicky_plugin")).unwrap();
    let host = HostServices_TO::from_value(DeviceHost(common::device_state()), TD_Opaque);
    let _task = plugin.module.new_task()(host).into_result().unwrap();
    let seen = records.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(level, target, message)| *level == log::Level::Warn
                && target == "panicky::factory"
                && message == "creating a task that will panic"),
        "{seen:?}"
    );
    // And from the real plugin: its refusal of a start without acceptance.
    let real = common::plugin();
    let device = Device::boot(&real, common::device_state(), 0).unwrap().0;
    let _ = device.task.start();
    let seen = records.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(level, target, message)| *level == log::Level::Info
                && target.starts_with("ksn_plugin")
                && message.contains("start refused: statement_not_accepted")),
        "{seen:?}"
    );
}
