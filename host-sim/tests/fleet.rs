//! The fleet story and the benchmark command: shapes and correctness, never timings
//! (timings live in BENCHMARKS.md, measured by `host-sim bench`).

mod common;

#[test]
fn the_fleet_story_leaves_every_device_as_expected() {
    let report = host_sim::fleet::run(common::plugin(), 600, None, &|_| {}).unwrap();
    assert!(report.passed, "{}", host_sim::fleet::text(&report));
    assert_eq!(report.devices, 600);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_ref()).collect();
    assert!(names.contains(&"Private KSN off"));
    assert!(report.phases.iter().all(|p| p.wrong == 0));
}

/// The story with a tenth of the fleet updated half-way (a new version of the KSN
/// statement): the updated devices go on with the others, each accepting the version it
/// ships at the policy's next save, and start again at the end.
#[test]
fn the_fleet_story_holds_with_a_tenth_updated_half_way() {
    let report = host_sim::fleet::run_updating(
        common::plugin(),
        600,
        None,
        Some("fixture_updated_plugin"),
        &|_| {},
    )
    .unwrap();
    assert!(report.passed, "{}", host_sim::fleet::text(&report));
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_ref()).collect();
    assert!(
        names.contains(&"update a tenth of the fleet (Group 01)"),
        "{names:?}"
    );
    assert_eq!(
        report.versions.get("ksn-usage-task 1.1.0"),
        Some(&60),
        "{:?}",
        report.versions
    );
    assert_eq!(report.versions.get("ksn-usage-task 1.0.0"), Some(&540));
}

#[test]
fn a_fleet_device_that_misbehaves_is_counted() {
    // A plugin that refuses everything makes every phase wrong on every device.
    let plugin = plugin_api::loader::load(&common::artifact("fixture_panicky_plugin")).unwrap();
    let report = host_sim::fleet::run(plugin, 300, None, &|_| {}).unwrap();
    assert!(!report.passed);
    assert_eq!(
        report.phases[1].wrong,
        300,
        "{}",
        host_sim::fleet::text(&report)
    );
}
