//! Single-key commands: get, put, delete, ttl, and purge. Keys may be given as text,
//! escaped text or base64 (`--key-encoding`); values on the command line, from a file
//! or standard input (`--value-file`), and written raw to a file (`get --output`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use pooledstore::{Engine, ErrorKind, PutOptions, Store, StoreError};
use sqlite_common::SqliteLocation;
use storage_api::backend::to_unix_millis;

use super::condition;
use super::encoding::{InputEncoding, OutputEncoding};
use super::show::{Out, OutputArgs, Parts, Printer, json_key, utc};

/// How KEY arguments are written.
#[derive(Debug, Args, Clone, Copy)]
pub(super) struct KeyEncodingArg {
    /// How KEY (and --start, --end, --after, --prefix) are written: text, escape
    /// (`\xNN`, `\\`, `\t`, `\n`, `\r`) or base64; any bytes can be given.
    #[arg(long, value_enum, default_value_t = InputEncoding::Text, value_name = "ENCODING")]
    pub(super) key_encoding: InputEncoding,
}

impl KeyEncodingArg {
    pub(super) fn key(&self, text: &str) -> Result<Vec<u8>, StoreError> {
        self.key_encoding.decode(text, "KEY")
    }
}

/// Arguments of `get`.
#[derive(Debug, Args)]
pub(super) struct GetArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    keys: KeyEncodingArg,
    #[command(flatten)]
    output: OutputArgs,
    /// Write the value's raw bytes to FILE (owner-only, atomically) instead of printing.
    #[arg(long = "output", value_name = "FILE", conflicts_with_all = ["json", "table"])]
    output_file: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output_file")]
    force: bool,
}

/// Arguments of `put`.
#[derive(Debug, Args)]
pub(super) struct PutArgs {
    /// The key.
    key: String,
    /// The value (or use --value-file).
    #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
    value: Option<String>,
    /// Read the value's raw bytes from FILE, or from standard input with `-`.
    #[arg(long, value_name = "FILE")]
    value_file: Option<PathBuf>,
    /// How VALUE is written: text, escape or base64.
    #[arg(long, value_enum, default_value_t = InputEncoding::Text, value_name = "ENCODING")]
    value_encoding: InputEncoding,
    #[command(flatten)]
    keys: KeyEncodingArg,
    /// Expire the entry after this many seconds.
    #[arg(long, value_name = "SECS")]
    ttl: Option<u64>,
    /// Only write if the key is absent (exit 3 otherwise).
    #[arg(long, conflicts_with = "if_version")]
    if_absent: bool,
    /// Only write if the key currently has this version (exit 3 otherwise).
    #[arg(long, value_name = "VERSION")]
    if_version: Option<u64>,
}

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub(super) struct DeleteArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    keys: KeyEncodingArg,
    /// Only delete if the key currently has this version (exit 3 otherwise).
    #[arg(long, value_name = "VERSION")]
    if_version: Option<u64>,
}

/// Arguments of `ttl`.
#[derive(Debug, Args)]
pub(super) struct TtlArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    keys: KeyEncodingArg,
    /// Print JSON: key, encoding, version, expires_at (Unix ms or null), ttl_ms (or
    /// null).
    #[arg(long)]
    json: bool,
}

/// `get`: the value, or with `--json`/`--table` the whole entry; exit 1 when absent.
pub(super) async fn get(store: &Store, url: &str, args: GetArgs) -> Result<ExitCode, StoreError> {
    let key = args.keys.key(&args.key)?;
    let Some(entry) = store.get(&key).await? else {
        eprintln!("not found");
        return Ok(ExitCode::from(super::EXIT_NEGATIVE));
    };
    if let Some(path) = &args.output_file {
        write_value(path, &entry.value, url, args.force)?;
        println!(
            "{} bytes written to {} (version {})",
            entry.value.len(),
            path.display(),
            entry.version
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Out::new();
    Printer::new(args.output, Parts::ValueOnly).page(&mut out, &[entry])?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a value to `path` after the shared output check (never the live database,
/// never anything but a regular file), owner-only and atomically.
fn write_value(path: &Path, value: &[u8], url: &str, force: bool) -> Result<(), StoreError> {
    let live = match Engine::of_url(url)? {
        Engine::Sqlite => SqliteLocation::parse(url)?.file().map(Path::to_path_buf),
        Engine::Postgres | Engine::Mysql | Engine::Etcd => None,
    };
    pooledstore_ops::write_file_atomically(path, value, live.as_deref(), force)
}

/// `put`: prints the new version; exit 3 when the condition fails.
pub(super) async fn put(store: &Store, args: PutArgs) -> Result<ExitCode, StoreError> {
    let key = args.keys.key(&args.key)?;
    let value = match (&args.value, &args.value_file) {
        (_, Some(path)) => read_value(path, store.capabilities().max_value_bytes)?,
        (Some(text), None) => args.value_encoding.decode(text, "VALUE")?,
        (None, None) => return Err(StoreError::invalid_input("put needs VALUE or --value-file")),
    };
    let condition = condition::from_flags(args.if_absent, args.if_version, "put")?;
    let options = PutOptions {
        condition,
        ttl: args.ttl.map(Duration::from_secs),
    };
    match store.put(&key, &value, options).await {
        Ok(version) => {
            println!("{version}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == ErrorKind::ConditionFailed => {
            Err(condition::failed(store, &key, condition, "put", e).await)
        }
        Err(e) => Err(e),
    }
}

/// Reads at most `limit` bytes from `path` (`-`: standard input); more is an error
/// naming the source and the limit, found without reading the rest.
fn read_value(path: &Path, limit: usize) -> Result<Vec<u8>, StoreError> {
    let name = if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut value = Vec::new();
    let outcome = if path == Path::new("-") {
        std::io::stdin().lock().take(cap).read_to_end(&mut value)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(cap).read_to_end(&mut value))
    };
    outcome.map_err(|e| {
        StoreError::invalid_input(format!("cannot read the value from {name}: {e}")).with_source(e)
    })?;
    if value.len() > limit {
        return Err(StoreError::invalid_input(format!(
            "the value in {name} is over this store's max_value_bytes ({limit} bytes)"
        )));
    }
    Ok(value)
}

/// `delete`: exit 1 when nothing was deleted, 3 when the condition fails.
pub(super) async fn delete(store: &Store, args: DeleteArgs) -> Result<ExitCode, StoreError> {
    let key = args.keys.key(&args.key)?;
    let condition = condition::from_flags(false, args.if_version, "delete")?;
    let deleted = match store.delete(&key, condition).await {
        Ok(deleted) => deleted,
        Err(e) if e.kind() == ErrorKind::ConditionFailed => {
            return Err(condition::failed(store, &key, condition, "delete", e).await);
        }
        Err(e) => return Err(e),
    };
    println!("{}", if deleted { "deleted" } else { "not found" });
    Ok(if deleted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NEGATIVE)
    })
}

/// `ttl`: the time the entry has left; exit 1 when absent.
pub(super) async fn ttl(store: &Store, args: TtlArgs) -> Result<ExitCode, StoreError> {
    let key = args.keys.key(&args.key)?;
    let Some(entry) = store.get(&key).await? else {
        eprintln!("not found");
        return Ok(ExitCode::from(super::EXIT_NEGATIVE));
    };
    let left = entry
        .expires_at
        .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
    if args.json {
        let mut body = json_key(&key, OutputEncoding::Auto)?;
        body["version"] = entry.version.get().into();
        body["expires_at"] = entry.expires_at.map(to_unix_millis).into();
        body["ttl_ms"] = left
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .into();
        println!("{body}");
    } else {
        match (left, entry.expires_at) {
            (Some(left), Some(at)) => {
                println!("{:.3}s (expires {})", left.as_secs_f64(), utc(at));
            }
            _ => println!("no expiry"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `purge`: removes expired entries and prints how many.
pub(super) async fn purge(store: &Store) -> Result<ExitCode, StoreError> {
    let removed = store.purge_expired().await?;
    println!("{removed} expired entries removed");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_over_the_limit_are_refused_without_reading_everything() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.bin");
        std::fs::write(&file, vec![7u8; 100]).unwrap();
        assert_eq!(read_value(&file, 100).unwrap().len(), 100);
        let e = read_value(&file, 99).unwrap_err();
        assert!(e.message().contains("max_value_bytes (99"), "{e}");
        assert!(e.message().contains("v.bin"), "{e}");
        let e = read_value(&dir.path().join("missing"), 10).unwrap_err();
        assert!(e.message().contains("missing"), "{e}");
    }
}
