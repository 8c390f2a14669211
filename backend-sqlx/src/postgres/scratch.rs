//! [`ScratchSchema`]: a throwaway schema on a PostgreSQL server, for running the
//! conformance kit (or any test) beside an application's data without touching it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};

use super::connect_options::{endpoint, target};
use super::engine::PgEngine;
use crate::common::engine::ErrorCodes;
use crate::url_engine::Engine;

/// A schema created on the server `options.url` names, under a fresh name
/// (`<prefix>_<pid>_<n>_<nanos>`); stores opened with [`ScratchSchema::options`] keep
/// their tables in it. [`ScratchSchema::remove`] drops it with everything in it.
///
/// Connects with the same settings as a store would (TLS included).
#[derive(Debug, Clone)]
pub struct ScratchSchema {
    options: StoreOptions,
    name: String,
}

impl ScratchSchema {
    /// Creates the schema. Fails like `open` when the server cannot be reached, and
    /// with the server's error when the role may not create schemas.
    pub async fn create(options: &StoreOptions, prefix: &str) -> Result<Self> {
        options.validate()?;
        if Engine::of_url(&options.url)? != Engine::Postgres {
            return Err(StoreError::config(
                "a scratch schema needs a postgres:// url",
            ));
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let prefix: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        let name = format!(
            "{prefix}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        );
        let schema = Self {
            options: options.clone(),
            name,
        };
        schema
            .execute(&format!("CREATE SCHEMA \"{}\"", schema.name))
            .await?;
        Ok(schema)
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `base` (the options the schema was made with, or others for the same server)
    /// with the URL's `search_path` set to this schema.
    pub fn options(&self, mut base: StoreOptions) -> StoreOptions {
        let separator = if base.url.contains('?') { '&' } else { '?' };
        base.url = format!("{}{separator}options[search_path]={}", base.url, self.name);
        base
    }

    /// Drops the schema with every table and sequence in it.
    pub async fn remove(self) -> Result<()> {
        self.execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .await
    }

    /// Runs one statement this module built (its names are generated, never input).
    async fn execute(&self, sql: &str) -> Result<()> {
        let target = target(&self.options)?;
        let cannot_connect = |cause: &str| {
            StoreError::new(
                ErrorKind::Connection,
                format!(
                    "scratch schema: cannot connect to {}: {cause}",
                    endpoint(&target.connect)
                ),
            )
        };
        let connecting =
            tokio::time::timeout(self.options.acquire_timeout, target.connect.connect());
        let mut conn: PgConnection = connecting
            .await
            .map_err(|_| cannot_connect("no answer in time"))?
            .map_err(|e| cannot_connect(&PgEngine::diagnosis().cause(&e)))?;
        let result = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        result.map(drop).map_err(|e| {
            StoreError::new(
                ErrorKind::Backend,
                format!(
                    "scratch schema {}: {}",
                    self.name,
                    PgEngine::diagnosis().cause(&e)
                ),
            )
        })
    }
}
