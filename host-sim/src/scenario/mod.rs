//! Scenario files: the format, the runner, the reports.

pub mod devices;
pub mod expect;
pub mod model;
pub mod outcome;
pub mod report;
pub mod runner;
pub mod schema;
pub mod summary;
pub mod timeline;

use std::path::{Path, PathBuf};

pub use model::{parse, Scenario};
pub use runner::{Options, Outcome};

use plugin_api::loader::Plugin;

use crate::network::KsnSpec;

/// The bundled suite, run by `host-sim run` with no argument.
pub fn bundled_suite() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    path.canonicalize().unwrap_or(path)
}

/// The scenario files named: files as given, directories by their `*.json`, sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    Ok(files)
}

/// How reports name a scenario file: relative to the current directory when it is under
/// it (the bundled suite's path is absolute), otherwise as given.
pub fn shown(file: &Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|dir| {
        let canonical = dir.canonicalize().ok();
        [Some(dir), canonical]
            .into_iter()
            .flatten()
            .find_map(|d| file.strip_prefix(d).ok().map(Path::to_path_buf))
    });
    relative.as_deref().unwrap_or(file).display().to_string()
}

/// Reads, parses and runs one scenario file; what is logged meanwhile belongs to its
/// outcome.
pub fn run_file(plugin: Plugin, file: &Path, default_ksn: &KsnSpec, options: &Options) -> Outcome {
    crate::logs::begin();
    let mut outcome = read_and_run(plugin, file, default_ksn, options);
    outcome.log = crate::logs::end();
    outcome
}

fn read_and_run(plugin: Plugin, file: &Path, default_ksn: &KsnSpec, options: &Options) -> Outcome {
    let name = shown(file);
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return runner::unreadable(&name, format!("{name}: {e}")),
    };
    let parsed = parse(&text);
    // The steps are parsed: the text is not needed while they run.
    drop(text);
    match parsed {
        Ok(scenario) => runner::run(plugin, &scenario, &name, default_ksn, options),
        Err(e) => runner::unreadable(&name, format!("{name}: {e}")),
    }
}
