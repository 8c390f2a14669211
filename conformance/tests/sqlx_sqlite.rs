//! The whole kit against the sqlx backend on SQLite: file-backed and in memory.

mod common;

use common::{Backend, SqliteHarness};

conformance::suite!(file, SqliteHarness::file(Backend::Sqlx));
conformance::suite!(memory, SqliteHarness::memory(Backend::Sqlx));
