//! [`Sessions`]: what each connection's setup read back from its server session (the
//! server version, the settings the store set, whether the session is encrypted), kept
//! for the health check.
//!
//! These facts cannot change while a session lives: the store sets the session
//! variables itself before the connection joins the pool and never changes them, a
//! session's encryption is settled when it connects, and a server's version when it
//! starts (a session does not outlive its server). Read once per connection, in the
//! setup's own round trip, they are as true at every later health check as a read then
//! would be, and the check's round trip can be a bare `SELECT 1`.

use std::sync::Mutex;

/// The most distinct readings kept; later ones count towards the last one kept.
const MAX_READINGS: usize = 4;

/// The readings of every session a store's connections set up so far.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    readings: Mutex<Vec<Reading>>,
}

/// One distinct reading and how many sessions gave it.
#[derive(Debug)]
struct Reading {
    version: String,
    detail: String,
    sessions: u64,
}

impl Sessions {
    /// Records what one session's setup read: the server version and what the health
    /// detail says of the session (starting with `; `).
    pub(crate) fn record(&self, version: String, detail: String) {
        let mut readings = self.lock();
        let same = |r: &&mut Reading| r.version == version && r.detail == detail;
        if let Some(reading) = readings.iter_mut().find(same) {
            reading.sessions += 1;
        } else if readings.len() < MAX_READINGS {
            readings.push(Reading {
                version,
                detail,
                sessions: 1,
            });
        } else if let Some(last) = readings.last_mut() {
            *last = Reading {
                version,
                detail,
                sessions: last.sessions + 1,
            };
        }
    }

    /// The server version and the health detail: the one reading every session gave,
    /// or, when sessions differed, the latest version and each reading with the number
    /// of sessions that gave it. `None` before any session was set up.
    pub(crate) fn report(&self) -> Option<(String, String)> {
        let readings = self.lock();
        let latest = readings.last()?;
        if readings.len() == 1 {
            return Some((latest.version.clone(), latest.detail.clone()));
        }
        let mut detail = String::from("; sessions differ");
        for reading in readings.iter() {
            let detail_of = reading.detail.trim_start_matches("; ");
            detail.push_str(&format!(
                "; {} set up on {} with: {detail_of}",
                reading.sessions, reading.version
            ));
        }
        Some((latest.version.clone(), detail))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Reading>> {
        // A reading is pushed or counted in one step: a panic elsewhere leaves it whole.
        self.readings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_is_reported_as_it_was_read() {
        let sessions = Sessions::default();
        assert_eq!(sessions.report(), None);
        for _ in 0..3 {
            sessions.record("15.2".into(), "; session encrypted (TLS)".into());
        }
        assert_eq!(
            sessions.report(),
            Some(("15.2".into(), "; session encrypted (TLS)".into()))
        );
    }

    #[test]
    fn sessions_that_differ_are_each_named_with_their_count() {
        let sessions = Sessions::default();
        sessions.record("15.2".into(), "; session encrypted (TLS)".into());
        sessions.record("15.2".into(), "; session encrypted (TLS)".into());
        sessions.record("15.3".into(), "; session not encrypted".into());
        let (version, detail) = sessions.report().unwrap();
        assert_eq!(version, "15.3");
        assert!(detail.starts_with("; sessions differ"), "{detail}");
        assert!(
            detail.contains("2 set up on 15.2 with: session encrypted (TLS)"),
            "{detail}"
        );
        assert!(
            detail.contains("1 set up on 15.3 with: session not encrypted"),
            "{detail}"
        );
        for n in 0..10 {
            sessions.record(format!("v{n}"), String::new());
        }
        assert_eq!(sessions.lock().len(), MAX_READINGS);
        assert_eq!(sessions.report().unwrap().0, "v9");
    }
}
