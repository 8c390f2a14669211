//! The whole kit against the deadpool backend on SQLite: file-backed and in memory.

mod common;

use common::{Backend, SqliteHarness};

conformance::suite!(file, SqliteHarness::file(Backend::Deadpool));
conformance::suite!(memory, SqliteHarness::memory(Backend::Deadpool));
