//! The host's side of the contract: finding a plugin library and loading it, with one
//! readable line per failure and a distinct exit code for each kind (3 no file, 4 not a
//! plugin, 5 built against an incompatible contract, 6 failed to initialise), and the
//! host's logger installed in it before anything else runs.
//!
//! ```no_run
//! use plugin_api::loader;
//!
//! let path = loader::locate(None)?; // --plugin, $KSN_PLUGIN, beside the executable
//! let plugin = loader::load(&path)?;
//! println!("{} built against plugin contract {}", plugin.info.name, plugin.contract.version);
//! let description = plugin.describe()?; // settings, schemas, statements
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{
    env,
    path::{Path, PathBuf},
    time::SystemTime,
};

use abi_stable::{
    library::{lib_header_from_path, LibraryError, RootModule},
    sabi_types::{VersionNumber, VersionStrings},
};

use crate::{
    documents::{read_document, DocumentError, PluginDescription},
    HostBox, KsnPluginRef, KsnTaskBox, LogLevel, LogSink, LogSinkBox, LogSink_TO, PluginInfo,
    TaskError,
};

/// The library a host loads when it is told no other: the KSN Usage task.
pub const DEFAULT_LIBRARY: &str = "ksn_plugin";

/// The file name of the library `name` on this platform (`libksn_plugin.so`).
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        env::consts::DLL_PREFIX,
        env::consts::DLL_SUFFIX
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no such file: {0}")]
    NotFound(PathBuf),
    #[error("no plugin found: pass --plugin PATH or set KSN_PLUGIN (looked in {})", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoPluginFound(Vec<PathBuf>),
    #[error("{path}: not a KSN Usage task plugin ({reason})")]
    NotAPlugin { path: PathBuf, reason: String },
    #[error("{path}: built against an incompatible plugin contract: {summary}")]
    Incompatible {
        path: PathBuf,
        summary: String,
        /// abi_stable's whole layout report, for `--verbose`.
        details: String,
    },
    #[error("{path}: the plugin failed to initialise: {reason}")]
    Failed { path: PathBuf, reason: String },
}

impl LoadError {
    /// Distinct exit codes, so scripts can tell failures apart.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::NotFound(_) | LoadError::NoPluginFound(_) => 3,
            LoadError::NotAPlugin { .. } => 4,
            LoadError::Incompatible { .. } => 5,
            LoadError::Failed { .. } => 6,
        }
    }

    pub fn details(&self) -> Option<&str> {
        match self {
            LoadError::Incompatible { details, .. } => Some(details),
            _ => None,
        }
    }
}

/// A loaded plugin. The library stays loaded for the life of the process.
#[derive(Clone, Copy)]
pub struct Plugin {
    pub module: KsnPluginRef,
    pub info: PluginInfo,
    /// The contract version the plugin was built against (`1.3.0`), from its header.
    pub contract: VersionStrings,
}

impl Plugin {
    /// Creates one task instance over `host`, restoring its state from the host's storage.
    pub fn new_task(&self, host: HostBox) -> Result<KsnTaskBox, TaskError> {
        self.module.new_task()(host).into_result()
    }

    /// The plugin's description of itself, checked against the contract's type.
    pub fn describe(&self) -> Result<PluginDescription, DescribeError> {
        let text = self.module.describe()().into_result()?;
        Ok(read_document("describe", &text)?)
    }

    /// The JSON Schema of the document `name`, as the plugin answers it.
    pub fn document_schema(&self, name: &str) -> Result<serde_json::Value, DescribeError> {
        let text = self.module.document_schema()(name.into()).into_result()?;
        Ok(read_document("document_schema", &text)?)
    }
}

/// Why a plugin gave no usable description.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("{0}")]
    Refused(#[from] TaskError),
    #[error("{0}")]
    Malformed(#[from] DocumentError),
}

/// Where the plugin is looked for: `--plugin`, then `KSN_PLUGIN`, then beside this
/// executable and in its `deps/` (where cargo puts a cdylib built as a dependency),
/// taking the most recently built.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env::var_os("KSN_PLUGIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let candidates = default_candidates();
    candidates
        .iter()
        .filter_map(|p| {
            let modified = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p): (SystemTime, &PathBuf)| p.clone())
        .ok_or(LoadError::NoPluginFound(candidates))
}

/// A library given by name (`fixture_updated_plugin`, looked for where the plugin is) or by
/// path (anything with a `/` or an extension).
pub fn locate_library(name: &str) -> PathBuf {
    let path = Path::new(name);
    if path.components().count() > 1 || path.extension().is_some() {
        return path.to_path_buf();
    }
    let file = format!(
        "{}{name}{}",
        env::consts::DLL_PREFIX,
        env::consts::DLL_SUFFIX
    );
    let mut dirs: Vec<PathBuf> = env::var_os("KSN_PLUGIN")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    dirs.extend(candidate_dirs());
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(file))
}

fn default_candidates() -> Vec<PathBuf> {
    let name = library_file_name(DEFAULT_LIBRARY);
    candidate_dirs()
        .into_iter()
        .map(|d| d.join(&name))
        .collect()
}

/// Beside this executable, its `deps/`, and (for test binaries, which live in `deps/`)
/// the directory above.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("deps"));
            // Test binaries live in deps/ themselves.
            if dir.ends_with("deps") {
                if let Some(parent) = dir.parent() {
                    dirs.push(parent.to_path_buf());
                }
            }
        }
    }
    dirs
}

/// Opens the library, checks its layout against this host's contract, and installs the
/// host's logger in it before anything else runs.
pub fn load(path: &Path) -> Result<Plugin, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_path_buf()));
    }
    let header = lib_header_from_path(path).map_err(|e| classify(path, e))?;
    let module = header.init_root_module::<KsnPluginRef>().map_err(|e| {
        match (classify(path, e), older_contract(header.version_strings())) {
            // Methods missing in a plugin built against an older minor contract: say that.
            // abi_stable's report reaches the host only as text (its error does not
            // downcast), so the missing entries are recognised by its wording.
            (LoadError::Incompatible { details, .. }, Some(theirs)) if details.contains("too many fields") => LoadError::Incompatible {
                path: path.to_path_buf(),
                summary: format!(
                    "it was built against plugin contract {theirs}, older than this host's {}: it lacks methods this host calls; rebuild it against {} or newer",
                    host_contract(),
                    host_contract()
                ),
                details,
            },
            (other, _) => other,
        }
    })?;
    module.install_logger()(host_logger());
    let info = module.info()();
    Ok(Plugin {
        module,
        info,
        contract: header.version_strings(),
    })
}

fn classify(path: &Path, error: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match error {
        LibraryError::OpenError { err, .. } => LoadError::NotAPlugin {
            path,
            reason: format!("cannot open it as a shared library: {}", first_line(&err.to_string())),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            path,
            reason: "it exports no abi_stable root module".into(),
        },
        LibraryError::AbiInstability(report) => {
            let details = report.to_string();
            LoadError::Incompatible {
                path,
                summary: summarise_layout_report(&details),
                details,
            }
        }
        LibraryError::IncompatibleVersionNumber {
            library_name,
            expected_version,
            actual_version,
        } => LoadError::Incompatible {
            path,
            summary: format!(
                "{library_name} contract version {actual_version}, this host needs one compatible with {expected_version}"
            ),
            details: String::new(),
        },
        LibraryError::InvalidAbiHeader(header) => LoadError::Incompatible {
            path,
            summary: format!("abi_stable header {header:?} is not compatible with this host's"),
            details: String::new(),
        },
        other => LoadError::Failed {
            path,
            reason: first_line(&other.to_string()),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// abi_stable's layout report is a long tree. Its last block names the fields leading to
/// the difference, and its last `Error:` says what differs; keep those, on one line, e.g.
/// `mismatched type at info.__returns.contract_version: expected u32, found u64`.
pub fn summarise_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let Some(error_at) = lines.iter().rposition(|l| l.starts_with("Error:")) else {
        return first_line(report);
    };
    let what = lines[error_at].trim_start_matches("Error:").trim();
    let block = lines[..error_at]
        .iter()
        .rposition(|l| l.contains("error(s)inside:"))
        .unwrap_or(error_at);
    let fields: Vec<&str> = lines[block..error_at]
        .iter()
        .take_while(|l| !l.starts_with("Layout of expected type:"))
        .filter_map(|l| l.strip_prefix("field_name:"))
        .filter(|f| *f != "0")
        .collect();
    let section = |title: &str, until: &str| -> String {
        lines[error_at..]
            .iter()
            .skip_while(|l| **l != title)
            .skip(1)
            .take_while(|l| **l != until)
            .filter(|l| !l.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let expected = section("Expected:", "Found:");
    let found = section("Found:", "");
    let mut summary = what.to_string();
    if !fields.is_empty() {
        summary.push_str(&format!(" at {}", fields.join(".")));
    }
    if !expected.is_empty() || !found.is_empty() {
        summary.push_str(&format!(": expected {expected}, found {found}"));
    }
    summary
}

/// The host's side of the plugin's log forwarder: records go to this process's logger
/// with their level and target.
struct HostLogger;

impl LogSink for HostLogger {
    fn log(
        &self,
        level: LogLevel,
        target: abi_stable::std_types::RStr<'_>,
        message: abi_stable::std_types::RStr<'_>,
    ) {
        let Some(level) = level.to_log() else { return };
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(target.as_str())
                .args(format_args!("{}", message.as_str()))
                .build(),
        );
    }

    fn max_level(&self) -> LogLevel {
        LogLevel::from_filter(log::max_level())
    }
}

fn host_logger() -> LogSinkBox {
    LogSink_TO::from_value(HostLogger, abi_stable::sabi_trait::TD_Opaque)
}

/// The plugin-api version this host was built against.
pub fn host_contract() -> VersionNumber {
    VersionNumber::new(<KsnPluginRef as RootModule>::VERSION_STRINGS)
        .expect("our own version parses")
}

/// The plugin's contract version, if it is an older minor version of ours.
fn older_contract(theirs: VersionStrings) -> Option<VersionNumber> {
    let theirs = VersionNumber::new(theirs).ok()?;
    let ours = host_contract();
    (theirs.major == ours.major && theirs.minor < ours.minor).then_some(theirs)
}
