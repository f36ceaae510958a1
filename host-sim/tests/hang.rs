//! A plugin method that never returns does not take the host down: the host gives up on
//! the call after its watchdog, marks that device hung, and carries on with the others.

mod common;

use std::time::{Duration, Instant};

use host_sim::world::{Setup, World};

fn world(lib: &str, devices: usize) -> World {
    let plugin = plugin_api::loader::load(&common::artifact(lib)).unwrap();
    let setup = Setup {
        watchdog: Some(Duration::from_millis(300)),
        ..Setup::new(devices)
    };
    World::new(plugin, &setup).unwrap()
}

#[test]
fn a_hung_call_is_abandoned_and_its_device_marked_hung() {
    let mut hanging = world("fixture_panicky_plugin", 2);
    let started = Instant::now();
    let results = hanging.advance_time(60_000);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (i, result) in results.iter().enumerate() {
        let err = result.as_ref().unwrap_err();
        assert!(
            err.message.contains(&format!(
                "device {i}: the plugin did not return within 300 ms"
            )),
            "{err}"
        );
    }
    let started = Instant::now();
    let err = hanging.stop().remove(0).unwrap_err();
    assert!(err.message.contains("is hung"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "later calls fail at once"
    );

    // The host is fine: another world on the real plugin works in the same process.
    let mut real = world("ksn_plugin", 1);
    assert!(real.set_local(r#"{"data_handling": {"ksn_statement_accepted": true}}"#)[0].is_ok());
    assert!(real.start()[0].is_ok());
    assert!(real.advance_time(60_000)[0].is_ok());
}

#[test]
fn a_scenario_on_a_hanging_plugin_fails_and_the_run_goes_on() {
    let dir = std::env::temp_dir().join(format!("ksn-hang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a_hang.json"),
        r#"{"name": "hangs", "steps": [{"do": "advance_time", "ms": 60000}, {"do": "stop"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("b_fine.json"),
        r#"{"name": "fine", "steps": [{"do": "stop"}]}"#,
    )
    .unwrap();
    let out = common::host_sim()
        .args(["run", "--json", "--watchdog-ms", "300", "--plugin"])
        .arg(common::artifact("fixture_panicky_plugin"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["passed"], false);
    assert!(report[0]["failure"]["found"]
        .as_str()
        .unwrap()
        .contains("did not return within 300 ms"));
    assert_eq!(report[1]["passed"], true, "the next scenario still ran");
    std::fs::remove_dir_all(&dir).unwrap();
}
