//! The HTTP server: accepts connections, serves the probes and metrics, runs the
//! background validator, and shuts down in order — readiness off, drain, close store.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use storage_api::{CloseReport, PooledStore, Result, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::routes;
use super::state::State;
use super::validator;
use crate::observe::{ExportOptions, Instrumented, PrometheusExporter};

/// A client has this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Probe and scrape requests are tiny; cap what one connection may buffer.
const MAX_BUF_SIZE: usize = 16 * 1024;
/// Pause after a failed accept (out of file descriptors, …) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Settings of a [`Server`]; [`ServeConfig::server_options`](super::ServeConfig::server_options)
/// builds them from the `[serve]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Period of the background `validate_connections`; `None` turns it off.
    pub validate_interval: Option<Duration>,
    /// Bound on the `/ready` round trip.
    pub ready_timeout: Duration,
    /// After the shutdown signal, how long to keep serving with `/ready` at 503.
    pub shutdown_delay: Duration,
    /// How long to wait for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    /// The `[serve]` defaults: loopback port 8080, validation every 60 s, 2 s ready
    /// bound, no shutdown delay, 10 s grace.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            validate_interval: Some(Duration::from_secs(60)),
            ready_timeout: Duration::from_secs(2),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What shutting down did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// `true` when every in-flight request finished within the grace period.
    pub drained: bool,
    /// What closing the store did.
    pub store: CloseReport,
}

/// An HTTP server for `/health`, `/ready` and `/metrics` over one store.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<pooledstore::observe::Instrumented>) -> pooledstore::Result<()> {
/// use pooledstore::observe::ExportOptions;
/// use pooledstore::serve::{Server, ServerOptions};
///
/// let server = Server::bind(store, &ExportOptions::default(), ServerOptions::default()).await?;
/// println!("listening on {}", server.local_addr());
/// let report = server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
/// assert!(report.store.in_flight == 0 || report.drained);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<State>,
    options: ServerOptions,
}

impl Server {
    /// Binds `options.listen` and prepares to serve `store`'s probes and metrics.
    pub async fn bind(
        store: Arc<Instrumented>,
        export: &ExportOptions,
        options: ServerOptions,
    ) -> Result<Self> {
        let exporter = PrometheusExporter::new(Arc::clone(&store), export)?;
        let listener = TcpListener::bind(options.listen).await.map_err(|e| {
            StoreError::config(format!("listen: cannot bind {}: {e}", options.listen))
        })?;
        let local_addr = listener.local_addr().map_err(|e| {
            StoreError::config(format!("listen: cannot read the bound address: {e}"))
        })?;
        let state = Arc::new(State::new(store, exporter, options.ready_timeout));
        Ok(Self {
            listener,
            local_addr,
            state,
            options,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then: turns `/ready` to 503, keeps serving for
    /// `shutdown_delay`, stops accepting, lets in-flight requests finish within
    /// `shutdown_grace`, and closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let Self {
            listener,
            state,
            options,
            ..
        } = self;
        let (stop_validator, stop_rx) = watch::channel(false);
        let validator = options
            .validate_interval
            .map(|period| tokio::spawn(validator::run(Arc::clone(&state), period, stop_rx)));
        let mut connections = Connections::new(Arc::clone(&state));

        connections.accept_until(&listener, shutdown).await;
        state.begin_shutdown();
        tracing::info!(
            delay_ms = options.shutdown_delay.as_millis() as u64,
            "shutdown requested: readiness is now 503"
        );
        connections
            .accept_until(&listener, tokio::time::sleep(options.shutdown_delay))
            .await;
        drop(listener);

        let _ = stop_validator.send(true);
        if let Some(task) = validator {
            let _ = task.await;
        }
        let drained = connections.drain(options.shutdown_grace).await;
        let store = state.store.close().await;
        tracing::info!(
            drained,
            forced = store.forced,
            "server stopped and store closed"
        );
        ShutdownReport { drained, store }
    }
}

/// The connection tasks, each watched for graceful shutdown.
struct Connections {
    state: Arc<State>,
    graceful: GracefulShutdown,
    tasks: JoinSet<()>,
}

impl Connections {
    fn new(state: Arc<State>) -> Self {
        Self {
            state,
            graceful: GracefulShutdown::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Accepts and serves connections until `until` completes.
    async fn accept_until(&mut self, listener: &TcpListener, until: impl Future<Output = ()>) {
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => self.serve(stream),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
            while self.tasks.try_join_next().is_some() {}
        }
    }

    fn serve(&mut self, stream: TcpStream) {
        let state = Arc::clone(&self.state);
        let service = service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(routes::handle(&state, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_BUF_SIZE)
            .serve_connection(TokioIo::new(stream), service);
        let watched = self.graceful.watch(connection);
        self.tasks.spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }

    /// Asks every connection to finish its current request and close; after `grace`,
    /// drops the stragglers. `true` when none had to be dropped.
    async fn drain(mut self, grace: Duration) -> bool {
        let drained = tokio::time::timeout(grace, self.graceful.shutdown())
            .await
            .is_ok();
        if !drained {
            tracing::warn!("in-flight requests outlived the shutdown grace; dropping them");
            self.tasks.abort_all();
        }
        while self.tasks.join_next().await.is_some() {}
        drained
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.tasks.len())
            .finish_non_exhaustive()
    }
}
