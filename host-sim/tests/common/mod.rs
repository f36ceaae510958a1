#![allow(dead_code)]

use std::{path::PathBuf, process::Command, sync::Arc};

use host_sim::{
    network::{Database, KsnSpec, Network},
    world::{Clock, Device, DeviceState},
};
use plugin_api::loader::{self, LoadError, Plugin};

/// `host-sim ARGS` with `input` on its standard input: exit code, stdout, stderr.
pub fn host_sim_with_input<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    input: &str,
) -> (i32, String, String) {
    use std::{io::Write, process::Stdio};
    let mut child = host_sim()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cdylib cargo built beside this test binary (the plugin, or a fixture).
pub fn artifact(lib_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = deps.join(&file);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

pub fn plugin() -> Plugin {
    loader::load(&artifact("ksn_plugin")).expect("the real plugin loads")
}

pub fn host_sim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host-sim"));
    command.env("KSN_PLUGIN", artifact("ksn_plugin"));
    command.env_remove("RUST_LOG");
    command
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A device's host-side state, on empty databases.
pub fn device_state() -> Arc<DeviceState> {
    Arc::new(DeviceState::new(
        0,
        Arc::new(Clock::default()),
        Arc::new(Network::new(&KsnSpec::default(), false).unwrap()),
        Arc::new(Database::default()),
    ))
}

/// A device running the real plugin.
pub fn device() -> Device {
    Device::boot(&plugin(), device_state(), 0).unwrap().0
}

/// Loads a fixture that must be refused as built against an incompatible contract (exit 5);
/// its one-line summary and abi_stable's full report.
pub fn refused(lib_name: &str) -> (String, String) {
    let err = loader::load(&artifact(lib_name))
        .err()
        .expect("the load must fail");
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
    match err {
        LoadError::Incompatible {
            summary, details, ..
        } => (summary, details),
        other => panic!("{other}"),
    }
}

/// The console's address, from the first line a spawned `host-sim serve` prints (its
/// standard output piped); the rest is drained, so the server never writes to a closed
/// pipe.
pub fn console_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .to_string()
}
