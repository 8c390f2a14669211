//! Observability commands: `metrics` (print the Prometheus text once) and `serve`
//! (HTTP probes and metrics until SIGTERM/SIGINT).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use pooledstore::StoreError;
use pooledstore::observe::{Instrumented, PrometheusExporter};
use pooledstore::serve::{ServeConfig, Server};
use tokio::signal::unix::{SignalKind, signal};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to bind, IP:PORT (default: `listen` of the `[serve]` section).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// `metrics`: the store's metrics right after opening, in the Prometheus text format.
pub(super) fn metrics(
    store: &Arc<Instrumented>,
    config: &ServeConfig,
) -> Result<ExitCode, StoreError> {
    let exporter = PrometheusExporter::new(Arc::clone(store), &config.export_options())?;
    print!("{}", exporter.render());
    Ok(ExitCode::SUCCESS)
}

/// `serve`: runs the HTTP server until SIGTERM or SIGINT, then shuts down gracefully
/// (the store is closed before this returns).
pub(super) async fn serve(
    store: &Arc<Instrumented>,
    config: &ServeConfig,
    args: ServeArgs,
) -> Result<ExitCode, StoreError> {
    let mut options = config.server_options()?;
    if let Some(listen) = args.listen {
        options.listen = listen;
    }
    // Install the handlers before announcing the address, so a signal sent as soon as
    // the address is known is never missed.
    let shutdown = shutdown_signal()?;
    let server = Server::bind(Arc::clone(store), &config.export_options(), options).await?;
    println!("listening on http://{}", server.local_addr());
    let report = server.run(shutdown).await;
    if !report.drained {
        eprintln!("pooledstore: in-flight requests were dropped after shutdown_grace_secs");
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = ()>, StoreError> {
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| StoreError::config(format!("cannot handle {name}: {e}")))
    };
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
    })
}
