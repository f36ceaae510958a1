#![allow(dead_code)]

use std::{path::PathBuf, process::Command};

use host_sim::loader::{self, Plugin};

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
