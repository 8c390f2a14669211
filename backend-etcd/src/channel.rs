//! One pooled channel: a gRPC connection to one etcd member, authenticated when the URL
//! names a user. Channels connect lazily; a member that cannot be reached shows on the
//! first request.

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, KvClient, LeaseClient, MaintenanceClient};
use storage_api::StoreError;
use tonic::transport::Endpoint;

use crate::errors::{Failure, Fault, map};
use crate::settings::ChannelSettings;

/// The largest response a channel accepts: a scan page of values up to the value limit.
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;
/// How long opening a TCP (and TLS) connection to a member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to one member.
#[derive(Clone)]
pub(crate) struct Channel {
    /// Tells channels apart.
    pub(crate) id: u64,
    /// Which of the URL's endpoints it reaches.
    pub(crate) endpoint: usize,
    client: Client,
    kv: KvClient,
    pub(crate) created: Instant,
    pub(crate) idle_since: Instant,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("endpoint", &self.endpoint)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Opens a channel to `address` (`host:port`), endpoint number `endpoint`;
    /// authenticates (one round trip) when there are credentials.
    pub(crate) async fn open(
        endpoint: usize,
        address: &str,
        settings: &ChannelSettings,
    ) -> Result<Self, Failure> {
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let config_error = |e: tonic::transport::Error| Failure {
            error: StoreError::config(format!("url: cannot use the etcd endpoint {address:?}"))
                .with_source(e),
            fault: Fault::Answered,
        };
        // The server refuses HTTP/2 pings on idle connections (too_many_pings), so they
        // are only sent while a request is open.
        let mut builder = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(config_error)?
            .connect_timeout(CONNECT_TIMEOUT.min(settings.request_timeout))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(false);
        if let Some(tls) = &settings.tls {
            builder = builder.tls_config(tls.clone()).map_err(config_error)?;
        }
        let mut options = ConnectOptions::new();
        if let Some((user, password)) = &settings.credentials {
            options = options
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        let channel = etcd_client::Channel::Tonic(builder.connect_lazy());
        let opening = Client::from_channel(channel, Some(options));
        let client = match tokio::time::timeout(settings.request_timeout, opening).await {
            Ok(result) => result.map_err(|e| map("authenticating to etcd", e))?,
            Err(_) => {
                return Err(crate::errors::deadline(
                    "authenticating to etcd",
                    settings.request_timeout,
                ));
            }
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let now = Instant::now();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            endpoint,
            client,
            kv,
            created: now,
            idle_since: now,
        })
    }

    /// The key-value service.
    pub(crate) fn kv(&self) -> KvClient {
        self.kv.clone()
    }

    /// The lease service.
    pub(crate) fn lease(&self) -> LeaseClient {
        self.client.lease_client()
    }

    /// The maintenance service (status, alarms).
    pub(crate) fn maintenance(&self) -> MaintenanceClient {
        self.client.maintenance_client()
    }

    /// The cluster service (members).
    pub(crate) fn cluster(&self) -> etcd_client::ClusterClient {
        self.client.cluster_client()
    }
}
