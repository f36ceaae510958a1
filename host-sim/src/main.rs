use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use host_sim::{
    fleet,
    scenario::{self, report},
    world,
};
use plugin_api::{
    loader::{self, LoadError, Plugin},
    LogRetention,
};

/// The simulator holds a fleet's records in memory: mimalloc keeps that churn cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

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
        /// Print the identity as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run scenario files (default: the bundled suite in tests/scenarios).
    Run {
        /// Scenario files or directories of them.
        paths: Vec<PathBuf>,
        /// Print the outcomes as JSON (every step, event and failure).
        #[arg(long)]
        json: bool,
        /// Print every scenario's timeline, passing ones too.
        ///
        /// By default a passing scenario is one line, and a failing one shows its steps up
        /// to the failure.
        #[arg(long)]
        steps: bool,
        /// One line per passing scenario: the default, accepted for older scripts.
        #[arg(long, short)]
        quiet: bool,
        /// Give up on a call into the plugin after this long and mark its device hung.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        watchdog_ms: u64,
        /// Also write the results as JUnit XML, for CI systems.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Keep the servers and their devices' records in this database (an SQLite file, or a
        /// postgres:// URL) instead of in memory: each scenario a new server of its own, named
        /// by its file.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Delete the servers the database holds first (without it, a database that holds
        /// any is refused).
        #[arg(long, requires = "db")]
        fresh: bool,
    },
    /// Print the JSON Schema of a file format: policy, local or scenario (those of the
    /// loaded plugin: its settings, as it describes them).
    Schema {
        /// Which format: policy (push_policy), local (set_local) or scenario (run).
        #[arg(value_enum)]
        format: SchemaFormat,
    },
    /// An interactive console on simulated devices (reads commands line by line when
    /// standard input is not a terminal).
    Shell {
        /// How many devices, for a new server (default 1).
        #[arg(long)]
        devices: Option<usize>,
        /// Keep the server (its groups, policies, devices and their records, events and
        /// time) in this database (an SQLite file or a postgres:// URL): a later session on
        /// it resumes the server as this one left it.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Which server of the database to resume, by name or identity, when it holds
        /// several.
        #[arg(long, requires = "db")]
        server: Option<String>,
        /// Delete the servers the database holds first, and start a new one.
        #[arg(long, requires = "db")]
        fresh: bool,
        /// Ask each plugin to keep at most this many task-log entries besides the consent
        /// records, which it keeps for ever (0: no limit).
        #[arg(long, value_name = "N", default_value_t = LogRetention::DEFAULT.max_entries)]
        log_max_entries: u64,
        /// And none older than this many days of host time (0: no limit).
        #[arg(long, value_name = "DAYS", default_value_t = LogRetention::DEFAULT.max_age_ms / DAY_MS)]
        log_max_days: u64,
    },
    /// The simulated Administration Server with its Web Console (devices, the KSN Usage
    /// task's Data handling window, policies, events, the server), on 127.0.0.1 unless
    /// told otherwise. Prints the address to open, with its access token.
    Serve {
        /// A scenario whose world to start from (its groups, devices and services), its
        /// steps played first; without one, `--devices` devices in the root group, or the
        /// server `--db` holds, resumed.
        scenario: Option<PathBuf>,
        /// How many devices, for a new server without a scenario (default 1).
        #[arg(long)]
        devices: Option<usize>,
        /// Keep the server (its groups, policies, devices and their records, events and
        /// time) in this database (an SQLite file or a postgres:// URL); without a scenario,
        /// the server it holds is resumed.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Which server of the database to resume, by name or identity, when it holds
        /// several.
        #[arg(long, requires = "db")]
        server: Option<String>,
        /// Delete the servers the database holds first, and start a new one (from the
        /// scenario, or with --devices).
        #[arg(long, requires = "db")]
        fresh: bool,
        /// The port (0: any free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The address to listen on. Anything but loopback lets other machines reach the
        /// console (the access token still guards it).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
    },
    /// Print each device's consent history from a host database: every acceptance and
    /// withdrawal, with its time, statement and version, and who made it.
    Audit {
        /// The host database, a file or a postgres:// URL (`--db` of run, shell or fleet).
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Print the history as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the events a host database's server kept (`--db` of run, shell or fleet), oldest
    /// first, with filters.
    Events {
        /// The host database, a file or a postgres:// URL.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Only this server's, by name (a scenario's file, `shell`, `serve`, `fleet`) or
        /// identity.
        #[arg(long)]
        host: Option<String>,
        /// Only the devices of this group and its subgroups (a path such as `Servers`).
        #[arg(long)]
        group: Option<String>,
        /// Only this device's.
        #[arg(long)]
        device: Option<usize>,
        /// Only this importance: critical, functional_failure, warning or info.
        #[arg(long)]
        importance: Option<String>,
        /// Only this event type (`task_error`, ...).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only from this host time on (milliseconds).
        #[arg(long, value_name = "MS")]
        since: Option<u64>,
        /// Only up to this host time (milliseconds).
        #[arg(long, value_name = "MS")]
        until: Option<u64>,
        /// Print the events as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Back up a host database while its server runs, into a new SQLite file (of an SQLite
    /// file, SQLite's online backup; of a PostgreSQL schema, one consistent reading).
    Backup {
        /// The host database: a file or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        db: PathBuf,
        /// The backup file to write (it must not exist).
        file: PathBuf,
    },
    /// Restore a backup (`host-sim backup`) into a host database: a file or a postgres://
    /// URL that holds no server (or, with --fresh, whose servers it replaces).
    Restore {
        /// The host database to restore into.
        #[arg(long, value_name = "FILE|URL")]
        db: PathBuf,
        /// The backup file.
        file: PathBuf,
        /// Replace the servers the database holds.
        #[arg(long)]
        fresh: bool,
    },
    /// The administrators of a host database's servers: each signs in to the Web Console
    /// with their own token (an administrator changes anything; an auditor reads only).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Internal: apply the crash test's stream of changes to a host database until killed.
    #[command(hide = true)]
    CrashWriter {
        /// The host database.
        #[arg(long)]
        db: PathBuf,
        /// Stop after this many changes (default: until killed).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Check that the plugin keeps the contract: every method answers, every document has
    /// the contract's shape, and the behaviour hosts rely on holds. Exit 0 only if every
    /// check holds.
    Conform {
        /// Print the checks as one JSON object.
        #[arg(long)]
        json: bool,
        /// Give up on a call into the plugin after this long (the check fails).
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        watchdog_ms: u64,
    },
    /// Run the Private KSN story on a fleet and time each phase.
    Fleet {
        /// How many devices.
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        /// Keep the devices' records in this database (the fleet starts from nothing): an
        /// SQLite file, or a postgres:// URL. With --servers: a folder of SQLite files (one a
        /// server), or a postgres:// URL (one schema a server).
        #[arg(long, value_name = "FILE|URL")]
        db: Option<PathBuf>,
        /// Print the report (each phase timed and checked) as one JSON object.
        #[arg(long)]
        json: bool,
        /// A hierarchy: this many secondary servers, each a process with its share of
        /// --devices (at most 100,000 each) and its part of --db, under a primary that
        /// counts them through the database.
        #[arg(long, value_name = "S")]
        servers: Option<usize>,
        /// The server's name in the database (a secondary's, given by its primary).
        #[arg(long, hide = true, default_value = "fleet")]
        server: String,
        /// Delete the servers the database holds first (the fleet's story makes a new one;
        /// without it, a database that holds any is refused).
        #[arg(long, requires = "db")]
        fresh: bool,
        /// Half-way through the story, install this plugin library (a name, e.g.
        /// fixture_updated_plugin, or a path) on a tenth of the fleet (Group 01).
        #[arg(long, value_name = "LIBRARY", conflicts_with = "servers")]
        update: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add an administrator; prints its token once (the database keeps only its hash).
    Add {
        /// Their name: at most 256 characters, no control or bidirectional characters.
        name: String,
        /// administrator (everything) or auditor (reads everything, changes nothing).
        #[arg(long, value_parser = ["administrator", "auditor"])]
        role: String,
        /// The host database (a file or a postgres:// URL) whose servers they administer.
        #[arg(long, value_name = "FILE|URL")]
        db: PathBuf,
    },
    /// List the administrators and their roles.
    List {
        /// The host database.
        #[arg(long, value_name = "FILE|URL")]
        db: PathBuf,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an administrator: its token no longer lets anyone in.
    Remove {
        /// Their name.
        name: String,
        /// The host database.
        #[arg(long, value_name = "FILE|URL")]
        db: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaFormat {
    /// A policy (push_policy, tests/policies/).
    Policy,
    /// A local settings change (set_local).
    Local,
    /// A scenario file (tests/scenarios/).
    Scenario,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logger = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(if cli.verbose { "info" } else { "warn" }),
    )
    .build();
    let level = logger.filter();
    host_sim::logs::install(Box::new(logger), level);
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

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(length: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

fn load(cli: &Cli) -> Result<Plugin, Failure> {
    let path = loader::locate(cli.plugin.as_deref()).map_err(|e| Failure::load(e, cli.verbose))?;
    loader::load(&path).map_err(|e| Failure::load(e, cli.verbose))
}

fn open_database(
    path: &std::path::Path,
) -> Result<std::sync::Arc<host_sim::storage::HostStore>, Failure> {
    host_sim::storage::HostStore::open(path).map_err(|e| Failure(2, format!("--db {e}")))
}

/// A command that makes new servers (from scenarios, a fleet's story) refuses a database
/// that holds any, unless `fresh`, which deletes them.
fn refuse_held_servers(
    store: &host_sim::storage::HostStore,
    command: &str,
    fresh: bool,
) -> Result<(), Failure> {
    let servers = store.servers().map_err(|e| Failure(1, e))?;
    if fresh {
        for s in &servers {
            store.clear_host(&s.id).map_err(|e| Failure(1, e))?;
        }
        return Ok(());
    }
    if servers.is_empty() {
        return Ok(());
    }
    // The same refusal as a single new server's, naming what the database holds.
    host_sim::resume::choose(
        store,
        command,
        host_sim::resume::Wanted::New { name: command },
        false,
    )
    .map(|_| ())
    .map_err(|e| Failure(2, e))
}

/// The server a console runs: `devices` new ones without a database; with one, the server
/// it holds resumed (or a new one of `devices` devices, default 1).
fn server_of(
    db: Option<&std::path::Path>,
    command: &str,
    devices: Option<usize>,
    server: Option<&str>,
    fresh: bool,
) -> Result<(usize, Option<world::HostDatabase>), Failure> {
    if devices == Some(0) {
        return Err(Failure(2, "--devices: must be at least 1".into()));
    }
    let Some(db) = db else {
        return Ok((devices.unwrap_or(1), None));
    };
    let store = open_database(db)?;
    let wanted = host_sim::resume::Wanted::Resume {
        server,
        new_name: command,
    };
    let choice =
        host_sim::resume::choose(&store, command, wanted, fresh).map_err(|e| Failure(2, e))?;
    if choice.resumed && devices.is_some() {
        return Err(Failure(
            2,
            format!(
                "--devices: {} holds the server {:?} with its own devices; it is resumed as it is (--fresh starts a new one)",
                store.location(),
                choice.name
            ),
        ));
    }
    if choice.resumed {
        eprintln!(
            "host-sim: resuming the server {:?} ({}) that {} holds",
            choice.name,
            choice.id,
            store.location()
        );
    }
    Ok((
        devices.unwrap_or(1),
        Some(world::HostDatabase {
            store,
            host: choice.id,
        }),
    ))
}

/// The loaded plugin's description of itself; a plugin that gives none cannot be driven
/// by what needs it (its schemas, its settings).
fn describe(plugin: &Plugin) -> Result<plugin_api::documents::PluginDescription, Failure> {
    plugin
        .describe()
        .map_err(|e| Failure(1, format!("the plugin describes no settings: {e}")))
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
                        "contract_version": plugin.contract.version.as_str(),
                        "host_contract_version": plugin_api::CONTRACT_VERSION,
                    })
                );
            } else {
                println!(
                    "{} {} (plugin contract {}; this host speaks plugin contract {})",
                    info.name,
                    info.version,
                    plugin.contract.version,
                    plugin_api::CONTRACT_VERSION
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            paths,
            json,
            steps,
            quiet: _,
            watchdog_ms,
            junit,
            db,
            fresh,
        } => {
            let plugin = load(cli)?;
            let database = db.as_deref().map(open_database).transpose()?;
            if let Some(store) = &database {
                refuse_held_servers(store, "run", *fresh)?;
            }
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
            let options = scenario::Options {
                watchdog: Some(Duration::from_millis(*watchdog_ms)),
                database,
                // The default report shows only a failure's last steps.
                whole_timeline: *json || *steps || junit.is_some(),
            };
            let progress = progress_bar(files.len() as u64, "scenarios");
            let outcomes: Vec<_> = files
                .iter()
                .map(|f| {
                    progress.set_message(
                        f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                    let outcome = scenario::run_file(plugin, f, &default_ksn, &options);
                    progress.inc(1);
                    outcome
                })
                .collect();
            progress.finish_and_clear();
            if let Some(path) = junit {
                let xml = report::junit(&outcomes).map_err(|e| Failure(2, e))?;
                std::fs::write(path, xml)
                    .map_err(|e| Failure(2, format!("--junit {}: {e}", path.display())))?;
            }
            let text = if *json {
                report::json(&outcomes)
            } else {
                report::text(&outcomes, *steps, cli.verbose)
            };
            let mut stdout = anstream::stdout().lock();
            let _ = writeln!(stdout, "{}", text.trim_end());
            Ok(if outcomes.iter().all(|o| o.passed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Schema { format } => {
            let description = describe(&load(cli)?)?;
            let schema = match format {
                SchemaFormat::Policy => description.policy_schema,
                SchemaFormat::Local => description.local_schema,
                SchemaFormat::Scenario => scenario::schema::scenario_schema(&description),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schemas serialise")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Shell {
            devices,
            db,
            server,
            fresh,
            log_max_entries,
            log_max_days,
        } => {
            let plugin = load(cli)?;
            let (devices, database) =
                server_of(db.as_deref(), "shell", *devices, server.as_deref(), *fresh)?;
            let retention = LogRetention {
                max_entries: *log_max_entries,
                max_age_ms: log_max_days.saturating_mul(DAY_MS),
            };
            let shell = host_sim::shell::Shell::new(plugin, devices, database, retention)
                .map_err(|e| Failure(1, e))?;
            Ok(if host_sim::shell::run(shell) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Serve {
            scenario,
            devices,
            db,
            server,
            fresh,
            port,
            bind,
        } => {
            let plugin = load(cli)?;
            let shell = match scenario {
                Some(file) => {
                    if devices.is_some() {
                        return Err(Failure(
                            2,
                            "--devices: the scenario says how many devices it has".into(),
                        ));
                    }
                    let store = db.as_deref().map(open_database).transpose()?;
                    if let Some(store) = &store {
                        refuse_held_servers(store, "serve", *fresh)?;
                    }
                    let text = std::fs::read_to_string(file)
                        .map_err(|e| Failure(2, format!("{}: {e}", file.display())))?;
                    let parsed = scenario::model::parse(&text)
                        .map_err(|e| Failure(2, format!("{}: {e}", file.display())))?;
                    let options = scenario::runner::Options {
                        watchdog: Some(Duration::from_secs(10)),
                        database: store,
                        whole_timeline: false,
                    };
                    let mut setup = world::Setup {
                        // The console can check any expectation, `events_include` too.
                        keep_history: true,
                        describe_events: true,
                        ..scenario::runner::setup_of(
                            &parsed,
                            &scenario::shown(file),
                            &world::default_ksn(),
                            &options,
                        )
                    };
                    if let Some(db) = &mut setup.database {
                        db.host = db
                            .store
                            .create_server(&scenario::shown(file))
                            .map_err(|e| Failure(1, e))?;
                    }
                    let mut world = world::World::new(plugin, &setup).map_err(|e| Failure(1, e))?;
                    for (index, step) in parsed.steps.iter().enumerate() {
                        let (label, done, _) = scenario::runner::run_step(&mut world, step);
                        if let Err(failure) = done.result {
                            eprintln!(
                                "{}: steps[{index}] {label} did not go as written ({}); serving the world as it is",
                                file.display(),
                                failure.what
                            );
                            break;
                        }
                    }
                    host_sim::shell::Shell::on_world(world)
                }
                None => {
                    let (devices, database) =
                        server_of(db.as_deref(), "serve", *devices, server.as_deref(), *fresh)?;
                    host_sim::shell::Shell::new(plugin, devices, database, LogRetention::DEFAULT)
                        .map_err(|e| Failure(1, e))?
                }
            };
            let options = host_sim::web::Options {
                bind: *bind,
                port: *port,
                limits: host_sim::web::listen::Limits::default(),
            };
            host_sim::web::serve(shell, options, |url| {
                println!("The Web Console is at {url}");
                println!(
                    "(open it in a browser; the token in it lets you in. Ctrl-C stops the server.)"
                );
            })
            .map_err(|e| Failure(1, e))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { action } => match action {
            UserAction::Add { name, role, db } => {
                let store = open_database(db)?;
                let token = store.add_user(name, role).map_err(|e| Failure(2, e))?;
                println!("{name} ({role}) added; their token, shown this once:\n{token}");
                Ok(ExitCode::SUCCESS)
            }
            UserAction::List { db, json } => {
                let users = open_database(db)?.users().map_err(|e| Failure(1, e))?;
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&users).expect("users serialise")
                    );
                } else {
                    for u in &users {
                        println!("{}  {}", u.name, u.role);
                    }
                    println!("{} users", users.len());
                }
                Ok(ExitCode::SUCCESS)
            }
            UserAction::Remove { name, db } => {
                open_database(db)?
                    .remove_user(name)
                    .map_err(|e| Failure(2, e))?;
                println!("{name} removed");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Backup { db, file } => {
            let copied = host_sim::storage::backup::backup(db, file).map_err(|e| Failure(1, e))?;
            println!(
                "backed up {} server(s), {} rows, to {}",
                copied.servers,
                copied.rows,
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { db, file, fresh } => {
            let copied =
                host_sim::storage::backup::restore(file, db, *fresh).map_err(|e| Failure(1, e))?;
            println!(
                "restored {} server(s), {} rows, into {}",
                copied.servers,
                copied.rows,
                host_sim::storage::redacted(&db.to_string_lossy())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CrashWriter { db, limit } => {
            let plugin = load(cli)?;
            host_sim::crash::write(&plugin, db, *limit).map_err(|e| Failure(1, e))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Conform { json, watchdog_ms } => {
            let plugin = load(cli)?;
            let report = host_sim::conform::run(plugin, Duration::from_millis(*watchdog_ms));
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("reports serialise")
                );
            } else {
                print!("{}", host_sim::conform::table(&report));
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Audit { db, json } => {
            let plugin = load(cli)?;
            if !db.exists() && !host_sim::storage::is_postgres(&db.to_string_lossy()) {
                return Err(Failure(2, format!("--db {}: no such file", db.display())));
            }
            let store = open_database(db)?;
            let histories =
                host_sim::audit::histories(plugin, &store).map_err(|e| Failure(1, e))?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&histories).expect("histories serialise")
                );
            } else {
                print!("{}", host_sim::audit::text(&histories));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            db,
            host,
            group,
            device,
            importance,
            kind,
            since,
            until,
            json,
        } => {
            if !db.exists() && !host_sim::storage::is_postgres(&db.to_string_lossy()) {
                return Err(Failure(2, format!("--db {}: no such file", db.display())));
            }
            let importance = match importance {
                Some(name) => Some(
                    plugin_api::documents::Importance::from_name(name).ok_or_else(|| {
                        Failure(
                            2,
                            format!(
                                "--importance: expected critical, functional_failure, warning or info, got {name:?}"
                            ),
                        )
                    })?,
                ),
                None => None,
            };
            let store = open_database(db)?;
            let group = group.as_deref().map(|g| g.trim_matches('/').to_string());
            let server = host
                .as_deref()
                .map(|h| store.server_id(h))
                .transpose()
                .map_err(|e| Failure(2, format!("--host: {e}")))?;
            let names = store.server_names().map_err(|e| Failure(1, e))?;
            let rows: Vec<_> = store
                .events(server.as_deref())
                .map_err(|e| Failure(1, e))?
                .into_iter()
                .map(|mut e| {
                    if let Some(name) = names.get(&e.host) {
                        e.host = name.clone();
                    }
                    e
                })
                .filter(|e| {
                    group.as_deref().is_none_or(|g| {
                        g.is_empty() || e.group == g || e.group.starts_with(&format!("{g}/"))
                    }) && device.is_none_or(|d| e.device == d)
                        && importance.is_none_or(|i| e.importance == i)
                        && kind.as_deref().is_none_or(|k| e.kind == k)
                        && since.is_none_or(|t| e.time_ms >= t)
                        && until.is_none_or(|t| e.time_ms <= t)
                })
                .collect();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("events serialise")
                );
            } else {
                for e in &rows {
                    println!(
                        "{}  #{}  {} ms  device {} ({})  {}  {}",
                        e.host, e.id, e.time_ms, e.device, e.group, e.importance, e.kind
                    );
                }
                println!("{} events", rows.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fleet {
            devices,
            json,
            db,
            servers: Some(servers),
            ..
        } => {
            let plugin =
                loader::locate(cli.plugin.as_deref()).map_err(|e| Failure::load(e, cli.verbose))?;
            let Some(db) = db else {
                return Err(Failure(
                    2,
                    "--servers: needs --db (a folder for SQLite files, or a postgres:// URL)"
                        .into(),
                ));
            };
            host_sim::hierarchy::shares(*servers, *devices).map_err(|e| Failure(2, e))?;
            let exe = std::env::current_exe().map_err(|e| Failure(1, e.to_string()))?;
            let progress = progress_bar(*servers as u64, "servers");
            progress.set_message("the story on every server");
            let report =
                host_sim::hierarchy::run(&exe, Some(&plugin), *servers, *devices, db, &|_| {
                    progress.inc(1)
                })
                .map_err(|e| Failure(1, e))?;
            progress.finish_and_clear();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print!("{}", host_sim::hierarchy::text(&report));
            }
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Fleet {
            devices,
            json,
            db,
            server,
            fresh,
            update,
            ..
        } => {
            let plugin = load(cli)?;
            if *devices == 0 {
                return Err(Failure(2, "--devices: must be at least 1".into()));
            }
            let database = match db {
                Some(path) => {
                    let store = open_database(path)?;
                    let wanted = host_sim::resume::Wanted::New { name: server };
                    let choice = host_sim::resume::choose(&store, "fleet", wanted, *fresh)
                        .map_err(|e| Failure(2, e))?;
                    Some(world::HostDatabase {
                        store,
                        host: choice.id,
                    })
                }
                None => None,
            };
            let phases = fleet::PHASES + usize::from(update.is_some());
            let progress = progress_bar(phases as u64, "phases");
            let report =
                fleet::run_updating(plugin, *devices, database, update.as_deref(), &|phase| {
                    progress.set_message(phase);
                    progress.inc(1);
                })
                .map_err(|e| Failure(1, e))?;
            progress.finish_and_clear();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print!("{}", fleet::text(&report));
            }
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, flag and argument says what it is in `--help`.
    #[test]
    fn everything_on_the_command_line_is_described() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if command.get_about().is_none() {
                missing.push(path.to_string());
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !matches!(id, "help" | "version") {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        check(&command, "host-sim", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    #[test]
    fn schema_help_names_each_format() {
        let mut command = Cli::command();
        let schema = command.find_subcommand_mut("schema").unwrap();
        let help = schema.render_long_help().to_string();
        for (format, what) in [
            ("policy", "A policy"),
            ("local", "A local settings change"),
            ("scenario", "A scenario file"),
        ] {
            let described = help.lines().any(|line| {
                line.trim_start().starts_with(&format!("- {format}:")) && line.contains(what)
            });
            assert!(described, "{format}: {help}");
        }
        let short = schema.render_help().to_string();
        assert!(short.contains("policy, local or scenario"), "{short}");
    }
}
