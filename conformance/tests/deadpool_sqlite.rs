//! The whole kit against the deadpool backend on SQLite: file-backed and in memory.

mod common;

use common::Backend;

conformance::suite!(file, Backend::Deadpool.file());
conformance::suite!(memory, Backend::Deadpool.memory());
