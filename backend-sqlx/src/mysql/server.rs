//! What a store needs to know about the server it opens on: MariaDB or MySQL, and
//! whether its `max_allowed_packet` admits the largest value the store accepts.

use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use storage_api::{Result, StoreError};

/// Room a write needs besides its value: the key (up to 1024 bytes), the statement,
/// the other parameters and the protocol's headers.
pub(crate) const PACKET_OVERHEAD: u64 = 16 * 1024;

/// The server as found at open.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// `VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1` or `8.0.36`.
    pub(crate) version: String,
    /// The global `max_allowed_packet`, in bytes, which each new session copies.
    pub(crate) max_allowed_packet: u64,
}

impl Server {
    /// Whether the server is MariaDB (which has `SET STATEMENT max_statement_time`).
    pub(crate) fn is_mariadb(&self) -> bool {
        self.version.to_ascii_lowercase().contains("mariadb")
    }

    /// `Config` when a put of a `max_value_bytes` value would not fit in one packet:
    /// the server would refuse it (and drop the connection) instead of storing it.
    pub(crate) fn check_packet_size(&self, max_value_bytes: usize) -> Result<()> {
        let value = u64::try_from(max_value_bytes).unwrap_or(u64::MAX);
        let needed = value.saturating_add(PACKET_OVERHEAD);
        if self.max_allowed_packet >= needed {
            return Ok(());
        }
        Err(StoreError::config(format!(
            "the server's max_allowed_packet ({} bytes) is too small for max_value_bytes \
             ({max_value_bytes} bytes): a write needs {needed} bytes (the value plus \
             {PACKET_OVERHEAD} for the key and the statement); raise max_allowed_packet on \
             the server (SET GLOBAL max_allowed_packet = {needed}, and in its config file) \
             or lower max_value_bytes",
            self.max_allowed_packet
        )))
    }
}

/// Reads the server's version and `max_allowed_packet`.
pub(crate) async fn read(conn: &mut MySqlConnection) -> sqlx::Result<Server> {
    let row = sqlx::raw_sql("SELECT VERSION(), CAST(@@GLOBAL.max_allowed_packet AS CHAR)")
        .fetch_one(conn)
        .await?;
    let version: String = row.try_get(0)?;
    let packet: String = row.try_get(1)?;
    Ok(Server {
        version,
        max_allowed_packet: packet.trim().parse().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::ErrorKind;

    #[test]
    fn a_small_packet_limit_is_a_config_error_naming_both_settings() {
        let server = Server {
            version: "10.11.6-MariaDB".into(),
            max_allowed_packet: 16 << 20,
        };
        assert!(server.is_mariadb());
        assert!(server.check_packet_size(1 << 20).is_ok());
        let e = server.check_packet_size(64 << 20).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("max_allowed_packet") && e.message().contains("max_value_bytes"),
            "{e}"
        );
        let mysql = Server {
            version: "8.0.36".into(),
            max_allowed_packet: 64 << 20,
        };
        assert!(!mysql.is_mariadb());
    }
}
