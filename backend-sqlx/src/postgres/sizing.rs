//! The pool's size against the server's connection slots, checked once at open: a pool
//! that can never be filled waits for, then fails on, connections the server refuses
//! (`too many clients`, SQLSTATE 53300), so open says so up front.

use sqlx::Row;
use sqlx::postgres::PgConnection;

/// The server's connection limits and use, as one round trip reads them (simple query
/// protocol, so it works through any pooler).
const SLOTS: &str = "SELECT current_setting('max_connections')::int4, \
     current_setting('superuser_reserved_connections')::int4, \
     coalesce(current_setting('reserved_connections', true)::int4, 0), \
     (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int4, \
     coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)";

/// What the server reported about its connection slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slots {
    /// `max_connections`.
    pub(crate) max_connections: i64,
    /// Slots this role may not use: `superuser_reserved_connections` (unless it is a
    /// superuser) plus `reserved_connections` (PostgreSQL 16+).
    pub(crate) reserved: i64,
    /// Client sessions open now, this pool's included.
    pub(crate) in_use: i64,
}

impl Slots {
    /// How many connections a pool holding `own` of the sessions in use can have.
    pub(crate) fn capacity(&self, own: u32) -> i64 {
        (self.max_connections - self.reserved - self.in_use).max(0) + i64::from(own)
    }

    /// The warning for a pool of `pool_size` that holds `own` connections now, when the
    /// server cannot give it that many.
    pub(crate) fn warning(&self, pool_size: u32, own: u32) -> Option<String> {
        let capacity = self.capacity(own);
        (capacity < i64::from(pool_size)).then(|| {
            format!(
                "the pool (db_pool_size = {pool_size}) cannot be filled: the server has room \
                 for {capacity} of its connections (max_connections = {}, {} reserved, {} in \
                 use, {own} of them this pool's); past that, connecting fails with `too many \
                 clients` (SQLSTATE 53300)",
                self.max_connections, self.reserved, self.in_use
            )
        })
    }
}

/// Reads the server's slots on `conn`; `None` when the server does not say (a
/// PostgreSQL-compatible engine without these settings, or a pooler's console).
pub(crate) async fn read(conn: &mut PgConnection) -> Option<Slots> {
    let row = sqlx::raw_sql(SLOTS).fetch_optional(conn).await.ok()??;
    let int = |i| row.try_get::<i32, _>(i).ok().map(i64::from);
    let superuser: bool = row.try_get(4).ok()?;
    let superuser_reserved = if superuser { 0 } else { int(1)? };
    Some(Slots {
        max_connections: int(0)?,
        reserved: superuser_reserved + int(2)?,
        in_use: int(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_larger_than_the_free_slots_is_named() {
        let slots = Slots {
            max_connections: 10,
            reserved: 3,
            in_use: 5,
        };
        assert_eq!(slots.capacity(1), 3);
        let warning = slots.warning(10, 1).expect("cannot be filled");
        assert!(warning.contains("db_pool_size = 10"), "{warning}");
        assert!(warning.contains("max_connections = 10"), "{warning}");
        assert!(warning.contains("53300"), "{warning}");
        assert_eq!(slots.warning(3, 1), None);
        let full = Slots {
            in_use: 20,
            ..slots
        };
        assert_eq!(full.capacity(2), 2);
    }
}
