//! Telling a busy pool from one that cannot connect, and saying why.
//!
//! sqlx retries a refused connection (and a server that is starting up or full) until
//! the acquire timeout and then reports only that it timed out. So a caller that has
//! waited [`CHECK_AFTER`] while no other caller got a connection has the store try one
//! connection of its own, outside the pool: if that fails for a reason that will not
//! pass by waiting (refused, unknown host, rejected credentials, a missing database,
//! TLS), the caller gets a `Connection` error naming the cause and the address at once.
//! Other failures are remembered and named when the acquire finally times out. One
//! attempt runs at a time per store, and its answer serves every caller for
//! [`CHECK_EVERY`]. What an engine knows beyond the driver's words (its own error
//! numbers, TLS failures) comes in through a [`Diagnosis`].

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use sqlx::error::DatabaseError;
use sqlx::{ConnectOptions, Connection, Database, Pool};
use tokio::sync::Mutex;

/// How long a caller waits for a connection before the store checks that it can
/// connect at all.
pub(crate) const CHECK_AFTER: Duration = Duration::from_millis(500);
/// How long one check's answer stands.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest one connection attempt of a check may take.
const ATTEMPT_BOUND: Duration = Duration::from_secs(2);

/// What the last check found, for one store.
#[derive(Debug)]
pub(crate) struct ConnectCheck {
    /// Where connections go (`host:port`, a socket or a file), named in every cause.
    endpoint: String,
    /// Connections handed out so far: while this moves, the pool works.
    handed_out: AtomicU64,
    /// The last check: when it ran and what it found.
    last: Mutex<Option<(Instant, Finding)>>,
    /// How failed attempts are told apart and described.
    diagnosis: Diagnosis,
}

/// How an engine reads a failed connection attempt, beyond what every driver error says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Diagnosis {
    /// The engine's own description of `error`, when it has one (else [`cause`]).
    pub(crate) describe: fn(&sqlx::Error) -> Option<String>,
    /// Whether a server error the driver does not call transient may pass by waiting
    /// (a server with no free connection slot, one starting up).
    pub(crate) transient: fn(&dyn DatabaseError) -> bool,
}

impl Diagnosis {
    /// The driver's words alone.
    #[cfg(any(test, feature = "sqlite"))]
    pub(crate) const DRIVER: Self = Self {
        describe: |_| None,
        transient: |_| false,
    };

    /// A failed connection attempt in the engine's words, else the driver's (see [`cause`]).
    pub(crate) fn cause(&self, error: &sqlx::Error) -> String {
        (self.describe)(error).unwrap_or_else(|| cause(error))
    }

    /// Whether a failed connection attempt may succeed later without anyone acting: the
    /// server is starting up or shutting down, or has no free connection slot.
    fn waiting_may_cure(&self, error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(db) => {
                db.is_transient_in_connect_phase() || (self.transient)(db.as_ref())
            }
            _ => false,
        }
    }
}

/// What one connection attempt found.
#[derive(Debug, Clone)]
enum Finding {
    /// It connected.
    Connected,
    /// It failed in a way waiting may cure (the server is starting or full, or slow).
    Transient(String),
    /// It failed in a way waiting will not cure.
    Failed(String),
}

impl ConnectCheck {
    /// No check run yet, for connections to `endpoint`, whose failures `diagnosis` reads.
    pub(crate) fn new(endpoint: impl Into<String>, diagnosis: Diagnosis) -> Self {
        Self {
            endpoint: endpoint.into(),
            handed_out: AtomicU64::new(0),
            last: Mutex::new(None),
            diagnosis,
        }
    }

    /// Where connections go.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Records that a caller got a connection.
    pub(crate) fn handed_out(&self) {
        self.handed_out.fetch_add(1, SeqCst);
    }

    /// How many connections have been handed out so far.
    pub(crate) fn progress(&self) -> u64 {
        self.handed_out.load(SeqCst)
    }

    /// The cause of the last failed attempt, if the last check failed.
    pub(crate) async fn last_failure(&self) -> Option<String> {
        match &*self.last.lock().await {
            Some((_, Finding::Transient(cause) | Finding::Failed(cause))) => Some(cause.clone()),
            _ => None,
        }
    }

    /// Waits [`CHECK_AFTER`], then, every [`CHECK_EVERY`] while no connection has been
    /// handed out since `progress`, tries to connect; finishes only with the cause of
    /// a failure that waiting will not cure.
    pub(crate) async fn until_hopeless<DB: Database>(
        &self,
        pool: &Pool<DB>,
        progress: u64,
    ) -> String {
        tokio::time::sleep(CHECK_AFTER).await;
        loop {
            if self.progress() == progress
                && let Finding::Failed(cause) = self.check(pool).await
            {
                return cause;
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// The last finding if it is fresh, else a new attempt's.
    async fn check<DB: Database>(&self, pool: &Pool<DB>) -> Finding {
        let mut last = self.last.lock().await;
        if let Some((at, finding)) = &*last
            && at.elapsed() < CHECK_EVERY
        {
            return finding.clone();
        }
        let finding = attempt(pool, &self.diagnosis).await;
        *last = Some((Instant::now(), finding.clone()));
        finding
    }
}

/// One connection attempt with the pool's options, outside the pool.
async fn attempt<DB: Database>(pool: &Pool<DB>, diagnosis: &Diagnosis) -> Finding {
    let options = pool.connect_options();
    match tokio::time::timeout(ATTEMPT_BOUND, options.connect()).await {
        Ok(Ok(conn)) => {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(ATTEMPT_BOUND, conn.close()).await;
            });
            Finding::Connected
        }
        Ok(Err(error)) if diagnosis.waiting_may_cure(&error) => {
            Finding::Transient(diagnosis.cause(&error))
        }
        Ok(Err(error)) => Finding::Failed(diagnosis.cause(&error)),
        Err(_) => Finding::Transient(format!(
            "no answer to a connection attempt within {:.0} s",
            ATTEMPT_BOUND.as_secs_f64()
        )),
    }
}

/// A failed connection attempt in the driver's words, which name the cause (a refused
/// connection, an unknown host, the server's refusal) and never the password.
pub(crate) fn cause(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => io.to_string(),
        },
        sqlx::Error::Configuration(_) => "invalid connection options".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_what_failed() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(
            cause(&refused).starts_with("connection refused"),
            "{}",
            cause(&refused)
        );
        assert!(!Diagnosis::DRIVER.waiting_may_cure(&refused));
        let tls = sqlx::Error::Tls("certificate verify failed".into());
        assert!(cause(&tls).contains("certificate verify failed"));
    }
}
