//! Contract drift: which plugins a host built against today's contract loads, and how it
//! talks to each (docs/compatibility.md). A changed layout under the same version is in
//! abi.rs.

mod common;

use abi_stable::sabi_trait::TD_Opaque;
use host_sim::world::DeviceHost;
use plugin_api::loader;
use plugin_api::{ErrorKind, HostServices_TO, KsnTaskBox, TaskState};

fn task(lib: &str) -> (loader::Plugin, KsnTaskBox) {
    let plugin = loader::load(&common::artifact(lib)).unwrap_or_else(|e| panic!("{lib}: {e}"));
    let host = HostServices_TO::from_value(DeviceHost(common::device_state()), TD_Opaque);
    let task = plugin.module.new_task()(host).into_result().unwrap();
    (plugin, task)
}

#[test]
fn a_plugin_built_against_an_older_contract_is_refused_with_the_reason() {
    let (summary, details) = common::refused("fixture_previous_plugin");
    assert_eq!(
        summary,
        "it was built against plugin contract 1.1.0, older than this host's 1.4.0: it lacks methods this host calls; rebuild it against 1.4.0 or newer"
    );
    assert!(
        details.contains("too many fields"),
        "abi_stable's own report is kept"
    );
}

#[test]
fn methods_added_later_have_defaults_so_older_plugin_sources_still_build() {
    // The panicky fixture's source was written before `counters_json` existed and never
    // implemented it; built against today's contract it gets the default, an honest
    // refusal that says so (not a contract version it already has).
    let (_, task) = task("fixture_panicky_plugin");
    let err = task.counters_json().into_result().unwrap_err();
    assert_eq!(err.kind, ErrorKind::NOT_IMPLEMENTED);
    assert_eq!(
        err.message.as_str(),
        "counters_json is not implemented by this plugin (added in plugin contract 1.1.0)"
    );
}

#[test]
fn a_plugin_built_against_a_newer_contract_loads_and_answers_what_this_host_knows() {
    let (plugin, task) = task("fixture_next_plugin");
    assert_eq!(plugin.info.contract_version, 5, "1.5.0");
    task.start().into_result().unwrap();
    assert_eq!(task.status().state, TaskState::RUNNING);
    let counters: serde_json::Value =
        serde_json::from_str(&task.counters_json().into_result().unwrap()).unwrap();
    assert_eq!(counters["contract_version"], "1.5.0");
}

#[test]
fn todays_plugin_answers_every_method_of_todays_contract() {
    let plugin = common::plugin();
    assert_eq!(plugin.info.contract_version, plugin_api::CONTRACT_MINOR);
    let (_, task) = task("ksn_plugin");
    let counters: serde_json::Value =
        serde_json::from_str(&task.counters_json().into_result().unwrap()).unwrap();
    assert_eq!(counters["cache_entries"], 0);
    assert_eq!(counters["ledger_items"], 0);
}

#[test]
fn another_major_version_of_the_contract_is_refused() {
    let (summary, _) = common::refused("fixture_major2_plugin");
    assert!(
        summary.contains("2.0.0") && summary.contains("1.4.0"),
        "{summary}"
    );
}
