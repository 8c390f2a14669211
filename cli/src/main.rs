//! The `pooledstore` command: operate a store from the shell.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
