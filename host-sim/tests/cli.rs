//! The command line as a user meets it: identity, and one readable line per load failure
//! with a distinct exit code.

mod common;

use common::{artifact, host_sim};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = host_sim().args(args).output().expect("host-sim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_prints_the_identity() {
    let (code, stdout, _) = run(&["info"]);
    assert_eq!(code, 0);
    let expected = format!(
        "ksn-usage-task 1.0.0 (plugin contract {}",
        plugin_api::CONTRACT_VERSION
    );
    assert!(stdout.starts_with(&expected), "{stdout}");
    let (code, stdout, _) = run(&["info", "--json"]);
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(info["name"], "ksn-usage-task");
    assert_eq!(info["contract_version"], plugin_api::CONTRACT_VERSION);
}

#[test]
fn load_failures_are_one_line_each_with_distinct_codes() {
    let system = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a system shared library");
    let incompatible = artifact("fixture_incompatible_plugin");
    let cases = [
        (
            vec!["info", "--plugin", "/no/such/plugin.so"],
            3,
            "no such file",
        ),
        (
            vec!["info", "--plugin", system],
            4,
            "not a KSN Usage task plugin",
        ),
        (
            vec!["schema", "policy", "--plugin", system],
            4,
            "not a KSN Usage task plugin",
        ),
        (
            vec!["conform", "--plugin", system],
            4,
            "not a KSN Usage task plugin",
        ),
        (
            vec!["info", "--plugin", incompatible.to_str().unwrap()],
            5,
            "incompatible plugin contract: mismatched type",
        ),
    ];
    for (args, code, text) in cases {
        let (got, stdout, stderr) = run(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("host-sim: ") && stderr.contains(text),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (_, _, stderr) = run(&[
        "info",
        "--verbose",
        "--plugin",
        incompatible.to_str().unwrap(),
    ]);
    assert!(
        stderr.lines().count() > 100,
        "--verbose shows the layout report"
    );
}

#[test]
fn the_plugin_is_found_from_the_environment_or_beside_the_executable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(["info"])
        .env_remove("KSN_PLUGIN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = host_sim()
        .args(["info"])
        .env("KSN_PLUGIN", "/no/such/plugin.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
