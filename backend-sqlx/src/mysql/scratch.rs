//! How a scratch schema ([`ScratchSchema`](crate::ScratchSchema)) is made on MySQL and
//! MariaDB: a database (MySQL's schema), which stores reach as the URL's database.

use sqlx::mysql::MySqlConnectOptions;
use storage_api::{Result, StoreOptions};

use super::connect_options::{endpoint, target};
use super::engine::MysqlEngine;
use super::statements::quote;
use crate::common::engine::scratch::Scratch;

impl Scratch for MysqlEngine {
    const NAMESPACE: &'static str = "database";

    fn create_statement(name: &str) -> String {
        format!("CREATE DATABASE {}", quote(name))
    }

    fn drop_statement(name: &str) -> String {
        format!("DROP DATABASE IF EXISTS {}", quote(name))
    }

    /// `url` with its path (the database) replaced by `name`, the query kept.
    fn scoped_url(url: &str, name: &str) -> String {
        let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
        let (scheme, rest) = base.split_once("://").unwrap_or(("mysql", base));
        let authority = rest
            .split_once('/')
            .map_or(rest, |(authority, _)| authority);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{scheme}://{authority}/{name}{query}")
    }

    fn connect_options(options: &StoreOptions) -> Result<MySqlConnectOptions> {
        Ok(target(options)?.connect)
    }

    fn endpoint(connect: &MySqlConnectOptions) -> String {
        endpoint(connect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_replaces_the_urls_path() {
        let cases = [
            ("mysql://root@h:3306/test", "mysql://root@h:3306/s_1"),
            (
                "mysql://u:p@h/test?sslmode=required",
                "mysql://u:p@h/s_1?sslmode=required",
            ),
            ("mysql://h", "mysql://h/s_1"),
        ];
        for (url, scoped) in cases {
            assert_eq!(MysqlEngine::scoped_url(url, "s_1"), scoped, "{url}");
        }
    }
}
