//! The checks every open makes of a store's schema, whichever engine: the table's
//! registration in the meta table (a schema newer than this build is refused) and its
//! layout (a table of that name that is not a store's is refused, never misused).
//! Creating what is missing is each engine's own (its DDL, its locking).

use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError};

use super::errors::map_error;
use super::{Conn, Engine};
use crate::common::names::Names;

/// The schema version this build creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The table recording each store table's schema version.
pub(crate) const META_TABLE: &str = "pooledstore_meta";

/// What an engine's catalog says about a store's table.
pub(crate) trait Catalog: Engine {
    /// The table's schema version in the meta table; `None` when either is missing.
    fn registered<'c>(
        conn: &'c mut Conn<Self>,
        names: &'c Names,
    ) -> impl Future<Output = sqlx::Result<Option<i64>>> + Send + 'c;

    /// `Ok` when the table (and its version sequence) have exactly the store's layout;
    /// otherwise the error naming what differs (`Corrupt` for a name taken by
    /// something else).
    fn check_layout<'c>(
        conn: &'c mut Conn<Self>,
        names: &'c Names,
        instruments: &'c PoolInstruments,
    ) -> impl Future<Output = Result<()>> + Send + 'c;
}

/// The table's registered schema version (`None` when not registered yet), once it is
/// known to be one this build supports and the table's layout is the store's.
pub(crate) async fn check<E: Catalog>(
    conn: &mut Conn<E>,
    names: &Names,
    instruments: &PoolInstruments,
) -> Result<Option<i64>> {
    let found = E::registered(conn, names)
        .await
        .map_err(|e| map_error::<E>(e, "open", None, instruments))?;
    if let Some(version) = found {
        check_version(names, version)?;
    }
    E::check_layout(conn, names, instruments).await?;
    Ok(found)
}

/// `Unsupported` for a schema newer than [`SCHEMA_VERSION`].
pub(crate) fn check_version(names: &Names, found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::new(
            ErrorKind::Unsupported,
            format!(
                "table {} has schema version {found}, newer than the version this build \
                 supports ({SCHEMA_VERSION})",
                names.table
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_schemas_are_refused() {
        let names = Names::new("kv");
        assert!(check_version(&names, SCHEMA_VERSION).is_ok());
        let e = check_version(&names, SCHEMA_VERSION + 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("table kv"), "{e}");
    }
}
