//! Command-line parsing and dispatch. Each command lives in the file of its group.

mod batch;
mod condition;
mod conform;
mod data;
mod docs;
mod encoding;
mod oplines;
mod ops;
mod pool;
mod scan;
mod serve;
mod show;
mod tx;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pooledstore::observe::Instrumented;
use pooledstore::{Config, ErrorKind, PooledStore, StorageConfig, Store, StoreError};
use sqlite_common::SqliteLocation;

/// Exit code of a negative answer: unhealthy, absent, a failed check.
const EXIT_NEGATIVE: u8 = 1;
/// Exit code of a usage, configuration, open or other error.
const EXIT_ERROR: u8 = 2;
/// Exit code of a write whose condition did not hold (nothing was written).
const EXIT_CONDITION_FAILED: u8 = 3;

/// Operate a pooledstore key-value store.
#[derive(Debug, Parser)]
#[command(name = "pooledstore", version, about)]
struct Cli {
    /// Configuration file; without it the embedded default is used (SQLite under ./data).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the schema and report its version.
    Migrate,
    /// Check the pool: acquire a connection and run a round trip. Exit 1 when unhealthy.
    Health {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every idle connection, evicting broken ones. Exit 1 when any failed.
    Validate {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the value stored under KEY (with --json or --table the version and expiry
    /// too). Exit 1 when absent.
    Get(data::GetArgs),
    /// Store VALUE under KEY and print the new version. Exit 3 when a condition fails.
    Put(data::PutArgs),
    /// Delete KEY. Exit 1 when nothing was deleted, 3 when a condition fails.
    Delete(data::DeleteArgs),
    /// List entries in key order, one `key<TAB>value` line each, or as a table or JSON.
    Scan(scan::ScanArgs),
    /// Print the time KEY has left before it expires. Exit 1 when absent.
    Ttl(data::TtlArgs),
    /// Remove expired entries and print how many.
    Purge,
    /// Apply the puts and deletes of a JSON Lines file atomically: all or none.
    /// Exit 3 when a condition fails.
    Batch(batch::BatchArgs),
    /// Run the gets, scans, puts and deletes of a JSON Lines file in one serializable
    /// transaction, retried on Conflict or Busy. Exit 3 when a condition fails.
    Tx(tx::TxArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff).
    Man,
    /// Print the store's pool metrics once, in the Prometheus text format.
    Metrics,
    /// Serve /health, /ready and /metrics over HTTP until SIGTERM or SIGINT.
    Serve(serve::ServeArgs),
    /// Run the conformance kit against the configured backend and settings, on scratch
    /// databases beside the configured one (never its data). Exit 1 when a case failed.
    Conform(conform::ConformArgs),
    #[command(flatten)]
    File(ops::FileCommand),
    #[command(flatten)]
    Ops(ops::StoreCommand),
}

/// Runs the command line; the exit code is 0 on success, 1 for a negative answer
/// (unhealthy, absent), 2 for an error and 3 for a failed condition.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = wants_json(&cli.command);
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(&StoreError::config(format!(
                "cannot start the runtime: {e}"
            )));
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if json => fail_json(&e),
        Err(e) => fail(&e),
    }
}

/// Whether the command promised JSON on standard output (`health --json`,
/// `validate --json`, `conform --json`): it then gets JSON even when the store cannot be opened.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Health { json } | Command::Validate { json } => *json,
        Command::Conform(args) => args.json,
        _ => false,
    }
}

async fn run(cli: Cli) -> Result<ExitCode, StoreError> {
    // Generated from the definitions alone: no configuration, no store.
    match &cli.command {
        Command::Completions(args) => return docs::completions(args),
        Command::Man => return docs::man(),
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    if cli.config.is_none() {
        prepare_default_location(&config.storage)?;
    }
    let command = match cli.command {
        // Never opens the store: restore replaces the file the store would hold open.
        Command::File(command) => return ops::on_file(command, &config.storage).await,
        // Never opens the configured store: the kit works on scratch databases.
        Command::Conform(args) => return conform::conform(&config.storage, args).await,
        command => command,
    };
    let store = pooledstore::open_instrumented(&config.storage).await?;
    let outcome = dispatch(command, &store, &config).await;
    store.close().await;
    outcome
}

async fn dispatch(
    command: Command,
    instrumented: &Arc<Instrumented>,
    config: &Config,
) -> Result<ExitCode, StoreError> {
    let store: &Store = &(Arc::clone(instrumented) as Store);
    match command {
        Command::Metrics => serve::metrics(instrumented, &config.serve),
        Command::Serve(args) => serve::serve(instrumented, &config.serve, args).await,
        Command::Migrate => pool::migrate(store).await,
        Command::Health { json } => pool::health(store, json).await,
        Command::Validate { json } => pool::validate(store, json).await,
        Command::Get(args) => data::get(store, &config.storage.url, args).await,
        Command::Put(args) => data::put(store, args).await,
        Command::Delete(args) => data::delete(store, args).await,
        Command::Scan(args) => scan::scan(store, args).await,
        Command::Ttl(args) => data::ttl(store, args).await,
        Command::Purge => data::purge(store).await,
        Command::Batch(args) => batch::batch(store, args).await,
        Command::Tx(args) => tx::tx(store, args).await,
        Command::Completions(args) => docs::completions(&args),
        Command::Man => docs::man(),
        Command::Ops(command) => ops::on_store(command, store).await,
        Command::File(command) => ops::on_file(command, &config.storage).await,
        Command::Conform(args) => conform::conform(&config.storage, args).await,
    }
}

/// The embedded default keeps its database under ./data: create that directory, so the
/// quick start works on a fresh checkout. A configured path is never created.
fn prepare_default_location(storage: &StorageConfig) -> Result<(), StoreError> {
    if storage.url != StorageConfig::default().url {
        return Ok(());
    }
    if let SqliteLocation::File(path) = SqliteLocation::parse(&storage.url)?
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        create_dir(dir)?;
    }
    Ok(())
}

/// Creates `dir` and any missing parents, owner-only (0700) whatever the umask.
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            StoreError::config(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fail(error: &StoreError) -> ExitCode {
    eprintln!("pooledstore: {error}");
    if error.kind() == ErrorKind::ConditionFailed {
        ExitCode::from(EXIT_CONDITION_FAILED)
    } else {
        ExitCode::from(EXIT_ERROR)
    }
}

/// Reports an error (configuration, opening the store, …) as JSON on standard output
/// and on standard error, exit 2.
fn fail_json(error: &StoreError) -> ExitCode {
    let body = serde_json::json!({
        "healthy": false,
        "passed": false,
        "status": "error",
        "error": { "kind": error.kind().as_str(), "message": error.message() },
    });
    println!("{body}");
    fail(error)
}
