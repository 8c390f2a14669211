//! How a scratch schema ([`ScratchSchema`](crate::ScratchSchema)) is made on PostgreSQL:
//! a schema, which stores reach through the URL's `search_path`.

use sqlx::postgres::PgConnectOptions;
use storage_api::{Result, StoreOptions};

use super::connect_options::{endpoint, target};
use super::engine::PgEngine;
use crate::common::engine::scratch::Scratch;

impl Scratch for PgEngine {
    const NAMESPACE: &'static str = "schema";

    fn create_statement(name: &str) -> String {
        format!("CREATE SCHEMA \"{name}\"")
    }

    fn drop_statement(name: &str) -> String {
        format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")
    }

    fn scoped_url(url: &str, name: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options[search_path]={name}")
    }

    fn connect_options(options: &StoreOptions) -> Result<PgConnectOptions> {
        Ok(target(options)?.connect)
    }

    fn endpoint(connect: &PgConnectOptions) -> String {
        endpoint(connect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_reached_through_the_search_path() {
        assert_eq!(
            PgEngine::scoped_url("postgres://u@h/d", "s_1"),
            "postgres://u@h/d?options[search_path]=s_1"
        );
        assert_eq!(
            PgEngine::scoped_url("postgres://u@h/d?sslmode=require", "s_1"),
            "postgres://u@h/d?sslmode=require&options[search_path]=s_1"
        );
    }
}
