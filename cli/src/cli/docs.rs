//! `completions` and `man`: shell completion scripts and a man page generated from the
//! command-line definitions, so they never drift from the real flags.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use pooledstore::{ErrorKind, StoreError};

use super::Cli;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the completion script for a shell on standard output.
pub(super) fn completions(args: &CompletionsArgs) -> Result<ExitCode, StoreError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "pooledstore", &mut script);
    emit(&script)
}

/// Prints the man page (roff) on standard output.
pub(super) fn man() -> Result<ExitCode, StoreError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| write_error(&e))?;
    emit(&page)
}

fn emit(bytes: &[u8]) -> Result<ExitCode, StoreError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(write_error(&e)),
    }
}

fn write_error(e: &std::io::Error) -> StoreError {
    StoreError::new(
        ErrorKind::Backend,
        format!("cannot write to standard output: {e}"),
    )
}
