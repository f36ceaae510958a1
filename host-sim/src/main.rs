use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use host_sim::{
    loader::{self, LoadError, Plugin},
    scenario::{self, report},
    world,
};

/// A management-host simulator for the KSN Usage task plugin.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The plugin library (default: $KSN_PLUGIN, then beside this executable).
    #[arg(long, global = true, value_name = "PATH")]
    plugin: Option<PathBuf>,

    /// Show full details of errors (such as abi_stable's layout report).
    #[arg(long, short, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin's identity and contract version.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Run scenario files (default: the bundled suite in tests/scenarios).
    Run {
        /// Scenario files or directories of them.
        paths: Vec<PathBuf>,
        /// Print a machine-readable report.
        #[arg(long)]
        json: bool,
        /// Print one line per scenario (failures still show their steps).
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(if cli.verbose { "info" } else { "warn" }),
    )
    .init();
    match execute(&cli) {
        Ok(code) => code,
        Err(Failure(code, message)) => {
            eprintln!("host-sim: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure(u8, String);

impl Failure {
    fn load(error: LoadError, verbose: bool) -> Self {
        let mut message = error.to_string();
        if let Some(details) = error.details().filter(|d| verbose && !d.is_empty()) {
            message = format!("{message}\n{details}");
        }
        Failure(error.exit_code() as u8, message)
    }
}

fn load(cli: &Cli) -> Result<Plugin, Failure> {
    let path = loader::locate(cli.plugin.as_deref()).map_err(|e| Failure::load(e, cli.verbose))?;
    loader::load(&path).map_err(|e| Failure::load(e, cli.verbose))
}

fn execute(cli: &Cli) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Info { json } => {
            let plugin = load(cli)?;
            let info = plugin.info;
            if *json {
                println!(
                    "{}",
                    serde_json::json!({
                        "name": info.name.as_str(),
                        "version": info.version.as_str(),
                        "contract_version": info.contract_version,
                        "host_contract_version": plugin_api::CONTRACT_VERSION,
                    })
                );
            } else {
                println!(
                    "{} {} (contract version {}; this host speaks contract version {})",
                    info.name,
                    info.version,
                    info.contract_version,
                    plugin_api::CONTRACT_VERSION
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { paths, json, quiet } => {
            let plugin = load(cli)?;
            let paths = if paths.is_empty() {
                vec![scenario::bundled_suite()]
            } else {
                paths.clone()
            };
            let files = scenario::collect(&paths).map_err(|e| Failure(2, e))?;
            if files.is_empty() {
                return Err(Failure(2, "no scenario files found".into()));
            }
            let default_ksn = world::default_ksn();
            let outcomes: Vec<_> = files
                .iter()
                .map(|f| scenario::run_file(plugin, f, &default_ksn))
                .collect();
            let text = if *json {
                report::json(&outcomes)
            } else {
                report::text(&outcomes, !quiet)
            };
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", text.trim_end());
            Ok(if outcomes.iter().all(|o| o.passed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
