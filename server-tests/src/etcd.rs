//! Helpers the etcd tests share: store options on the shared cluster with a table
//! (key prefix) of their own, removed when the test ends, and a plain etcd client for
//! looking at what the store wrote.

use std::time::Duration;

use etcd_client::{Client, DeleteOptions};
use storage_api::StoreOptions;

use crate::postgres::unique;
use crate::{etcd_unreachable, etcd_url};

/// The `host:port` endpoints of an `etcd://` URL without credentials.
pub fn endpoints(url: &str) -> Vec<String> {
    let rest = url.strip_prefix("etcd://").unwrap_or(url);
    let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
    hosts.split(',').map(str::to_owned).collect()
}

/// A plain etcd client for the cluster `url` names (no credentials).
pub async fn client(url: &str) -> Client {
    match Client::connect(endpoints(url), None).await {
        Ok(client) => client,
        Err(e) => etcd_unreachable("connecting a plain etcd client", e),
    }
}

/// Removes every key under `table/`, on its own thread and runtime (the test's may be
/// gone); reports failures on stderr.
pub fn remove_tables(url: &str, tables: &[String]) {
    if tables.is_empty() {
        return;
    }
    let (url, tables) = (url.to_owned(), tables.to_vec());
    let cleanup = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut client = Client::connect(endpoints(&url), None)
                .await
                .map_err(|e| e.to_string())?;
            for table in tables {
                let prefix = format!("{table}/");
                let deleting = client.delete(prefix, Some(DeleteOptions::new().with_prefix()));
                tokio::time::timeout(Duration::from_secs(10), deleting)
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })
    });
    match cleanup.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("cannot remove the test's etcd keys: {e}"),
        Err(_) => eprintln!("removing the test's etcd keys panicked"),
    }
}

/// A table (key prefix) of one test on the shared cluster, removed when dropped.
#[derive(Debug)]
pub struct ScratchTable {
    /// The cluster's URL.
    pub url: String,
    /// The table name.
    pub table: String,
}

impl ScratchTable {
    /// A fresh table named `<prefix>_<pid>_<n>_<nanos>` on the cluster [`etcd_url`]
    /// names.
    ///
    /// # Panics
    /// When no cluster is configured, saying how to start one.
    pub fn new(prefix: &str) -> Self {
        Self {
            url: etcd_url(),
            table: unique(prefix),
        }
    }

    /// Store options for this table.
    pub fn options(&self) -> StoreOptions {
        let mut options = StoreOptions::new(self.url.clone());
        options.table = self.table.clone();
        options.acquire_timeout = Duration::from_secs(10);
        options
    }
}

impl Drop for ScratchTable {
    fn drop(&mut self) {
        remove_tables(&self.url, std::slice::from_ref(&self.table));
    }
}
