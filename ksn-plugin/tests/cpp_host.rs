//! The C++ wrapper (`include/ksn_usage_task.hpp`) and the C++ host example built on it:
//! compiled with `c++ -std=c++17 -Wall -Wextra -Werror -Wpedantic` and run against the
//! library this test build made. The example exits 0 only when its story holds.

use std::{path::PathBuf, process::Command};

fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().expect("deps directory").join(format!(
        "{}ksn_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn the_cpp_host_example_builds_warning_free_and_its_story_holds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("ksn-cpp-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("cpp-host");
    let built = Command::new("c++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wpedantic",
            "-pthread",
        ])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("../examples/cpp-host/main.cpp"))
        .arg("-o")
        .arg(&exe)
        .arg("-ldl")
        .output()
        .expect("cannot run c++");
    assert!(
        built.status.success(),
        "c++ rejects the wrapper or the example:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let ran = Command::new(&exe).arg(library_path()).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && stdout.contains("the story holds"),
        "the C++ host's story does not hold:\n{stdout}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
}
