//! The whole kit against the sqlx backend on SQLite: file-backed and in memory.

mod common;

use common::Backend;

conformance::suite!(file, Backend::Sqlx.file());
conformance::suite!(memory, Backend::Sqlx.memory());
