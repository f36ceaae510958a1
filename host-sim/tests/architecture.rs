//! ARCHITECTURE.md's invariants, checked on the sources:
//!
//! - which crate may depend on which: plugin-api on nothing of ours; a plugin on plugin-api
//!   only; admin-server on plugin-api only; host-sim on plugin-api and admin-server (it
//!   loads plugins it never links); ksn-bench is the one crate that links both sides;
//! - no two modules of a crate depend on each other, directly or round a cycle;
//! - the plugin's core and the Administration Server are pure: no I/O, no clock, no
//!   threads, no statics;
//! - the faces (shell, web) change the server only through scenario steps: they name no
//!   operation of its;
//! - the test fixture built from the plugin's own source has the plugin's dependencies;
//! - the code map names every source file of each crate it maps, and only files that exist.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The dependencies of a package (`[dependencies]` only, or also the others).
fn dependencies(manifest: &str, section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(common::repo_root().join(manifest)).unwrap();
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line
                .split(['=', '.', ' '])
                .next()
                .unwrap_or_default()
                .to_string();
            names.insert(name);
        }
    }
    names
}

const OURS: [&str; 6] = [
    "plugin-api",
    "ksn-plugin",
    "admin-server",
    "host-sim",
    "ksn-bench",
    "minimal-plugin",
];

fn ours(manifest: &str) -> BTreeSet<String> {
    dependencies(manifest, "dependencies")
        .into_iter()
        .filter(|d| OURS.contains(&d.as_str()))
        .collect()
}

#[test]
fn crates_depend_only_as_the_architecture_says() {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        ours("plugin-api/Cargo.toml"),
        set(&[]),
        "plugin-api depends on nothing of ours"
    );
    assert_eq!(ours("ksn-plugin/Cargo.toml"), set(&["plugin-api"]));
    assert_eq!(
        ours("admin-server/Cargo.toml"),
        set(&["plugin-api"]),
        "the server model knows settings only through the contract's description"
    );
    assert_eq!(
        ours("host-sim/Cargo.toml"),
        set(&["plugin-api", "admin-server"]),
        "host-sim links no plugin"
    );
    assert_eq!(
        ours("bench/Cargo.toml"),
        set(&["plugin-api", "ksn-plugin", "host-sim"]),
        "ksn-bench is the one crate that links both sides"
    );
    if common::repo_root()
        .join("examples/minimal-plugin/Cargo.toml")
        .exists()
    {
        assert_eq!(
            ours("examples/minimal-plugin/Cargo.toml"),
            set(&["plugin-api"])
        );
        let deps = dependencies("examples/minimal-plugin/Cargo.toml", "dependencies");
        assert!(
            !deps.contains("abi_stable"),
            "a plugin needs no ABI dependency but plugin-api"
        );
    }
    assert!(
        !dependencies("ksn-plugin/Cargo.toml", "dependencies").contains("abi_stable"),
        "the plugin reaches abi_stable through plugin-api"
    );
}

#[test]
fn the_updated_plugin_fixture_has_the_plugin_s_dependencies() {
    assert_eq!(
        dependencies("tests/fixtures/updated-plugin/Cargo.toml", "dependencies"),
        dependencies("ksn-plugin/Cargo.toml", "dependencies")
    );
}

/// Every `.rs` file under `dir`, with its module path.
fn modules(dir: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(dir).unwrap().with_extension("");
                let mut module: Vec<String> = relative
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                found.insert(module, path);
            }
        }
    }
    found
}

/// The modules `text` (the file of `module`) refers to, by `super::` and `crate::` paths.
fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for (root, base) in [("super::", parent.clone()), ("crate::", Vec::new())] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let rest = &code[from..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                // `use super::{a::X, b, c::{...}}`: the first name of each item.
                let mut depth = 0;
                let mut items = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => items.push(String::new()),
                        c => {
                            if let Some(last) = items.last_mut() {
                                last.push(c)
                            }
                        }
                    }
                }
                items
                    .iter()
                    .filter_map(|i| i.trim().split("::").next().map(str::to_string))
                    .collect()
            } else {
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                path.split("::")
                    .next()
                    .map(str::to_string)
                    .into_iter()
                    .collect()
            };
            for name in names.into_iter().filter(|n| !n.is_empty() && n != "self") {
                let mut target = base.clone();
                target.push(name);
                found.insert(target);
            }
        }
    }
    found
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

/// The cycles among a crate's modules, ignoring a module's edges to its ancestors and
/// descendants (a parent declares and re-exports its children).
fn cycles(dir: &Path) -> Vec<Vec<String>> {
    let modules = modules(dir);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        for target in references(module, &text) {
            // The longest module that the reference names.
            let Some(to) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|m| modules.contains_key(m))
            else {
                continue;
            };
            if is_prefix(&to, module) || is_prefix(module, &to) {
                continue;
            }
            edges.entry(module.clone()).or_default().insert(to);
        }
    }
    let mut found = Vec::new();
    for start in edges.keys() {
        // A path from `start` back to itself, if any.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    found.push(trail.iter().map(|m| m.join("::")).collect());
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[test]
fn no_two_modules_depend_on_each_other() {
    for dir in [
        "plugin-api/src",
        "ksn-plugin/src",
        "admin-server/src",
        "host-sim/src",
        "bench/src",
        "examples/minimal-plugin/src",
    ] {
        let dir = common::repo_root().join(dir);
        if !dir.exists() {
            continue;
        }
        let found = cycles(&dir);
        assert!(
            found.is_empty(),
            "{}: module cycles: {found:?}",
            dir.display()
        );
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let dir = std::env::temp_dir().join(format!("ksn-cycles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("src/a.rs"), "use super::{b::B, c};\n").unwrap();
    std::fs::write(dir.join("src/b.rs"), "use crate::a::A;\n").unwrap();
    std::fs::write(dir.join("src/c.rs"), "").unwrap();
    let found = cycles(&dir.join("src"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!found.is_empty(), "a and b use each other");
}

/// The modules of `dir` use no I/O, clock, threads or statics (tests aside).
fn assert_pure(dir: &str, what: &str) {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "SystemTime",
        "Instant::now",
        "thread::sleep",
        "thread::spawn",
        "thread_local!",
        "env::var",
    ];
    // A `static` item (not a `'static` lifetime).
    let is_static = |l: &str| {
        let l = l.trim_start();
        l.starts_with("static ")
            || l.starts_with("pub static ")
            || l.starts_with("pub(crate) static ")
    };
    for (module, path) in modules(&common::repo_root().join(dir)) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Tests may use threads and clocks to make interleavings; the code may not.
        if name.ends_with("_tests.rs")
            || name == "tests.rs"
            || name == "testing.rs"
            || name.ends_with("properties.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for word in forbidden {
            let hits: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//") && l.contains(word))
                .collect();
            assert!(
                hits.is_empty(),
                "{what}::{} uses `{word}`: {hits:?}",
                module.join("::")
            );
        }
        let statics: Vec<&str> = code.lines().filter(|l| is_static(l)).collect();
        assert!(
            statics.is_empty(),
            "{what}::{} has statics: {statics:?}",
            module.join("::")
        );
    }
}

#[test]
fn the_plugin_s_core_is_pure() {
    assert_pure("ksn-plugin/src/core", "core");
}

#[test]
fn the_administration_server_is_pure() {
    assert_pure("admin-server/src", "admin_server");
}

#[test]
fn the_faces_change_the_server_only_through_steps() {
    for dir in ["host-sim/src/shell", "host-sim/src/web"] {
        for (module, path) in modules(&common::repo_root().join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let hits: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .filter(|l| l.contains("Operation::") || l.contains(".apply("))
                .collect();
            assert!(
                hits.is_empty(),
                "{dir} {}: a face makes changes as steps: {hits:?}",
                module.join("::")
            );
        }
    }
}

fn named_files(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|quoted| quoted.rsplit('/').next())
        .filter(|name| name.ends_with(".rs") && !name.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_code_map_names_every_source_file_and_only_files_that_exist() {
    let root = common::repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut sections = 0;
    for section in map.split("\n## ").skip(1) {
        let heading = section.lines().next().unwrap_or("");
        // `## crate (`its/src/`)`: the section maps that directory.
        let Some(dir) = heading
            .split("(`")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
        else {
            continue;
        };
        sections += 1;
        let named = named_files(section);
        let on_disk: BTreeSet<String> = modules(&root.join(dir))
            .into_values()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for file in &on_disk {
            if file == "lib.rs" || file == "mod.rs" {
                continue;
            }
            assert!(
                named.contains(file),
                "ARCHITECTURE.md's section for {dir} does not name {file}"
            );
        }
        for file in named.iter().filter(|f| *f != "lib.rs" && *f != "mod.rs") {
            assert!(
                on_disk.contains(file),
                "ARCHITECTURE.md names {file} under {dir}, which has no such file"
            );
        }
    }
    assert!(sections >= 5, "the code map has a section per crate");
}
