//! What escalation keeps across restarts besides the outbox: used acknowledgement links
//! (so a link works once) and how far delivery attempts were copied to the audit trail.

use crate::EscalationError;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS used_links (
    nonce TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    person TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    used_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

pub struct EscalationStore {
    conn: Mutex<Connection>,
}

impl EscalationStore {
    pub fn open(path: &Path) -> Result<EscalationStore, EscalationError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| EscalationError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(EscalationStore {
            conn: Mutex::new(conn),
        })
    }

    /// Mark a link's nonce used; false when it already was.
    pub fn use_link(
        &self,
        nonce: &str,
        ticket_id: i64,
        person: &str,
        endpoint: &str,
        now_ms: i64,
    ) -> Result<bool, EscalationError> {
        let n = self.conn.lock().execute(
            "INSERT INTO used_links (nonce, ticket_id, person, endpoint, used_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(nonce) DO NOTHING",
            params![nonce, ticket_id, person, endpoint, now_ms],
        )?;
        Ok(n == 1)
    }

    pub fn link_used(&self, nonce: &str) -> Result<bool, EscalationError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT 1 FROM used_links WHERE nonce = ?1", [nonce], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    pub fn cursor(&self, name: &str) -> Result<i64, EscalationError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT value FROM cursors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    pub fn set_cursor(&self, name: &str, value: i64) -> Result<(), EscalationError> {
        self.conn.lock().execute(
            "INSERT INTO cursors (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )?;
        Ok(())
    }
}

/// The link key: from the config, or a random one kept in `path` (created 0600 on first use).
pub fn link_key(secret: Option<&str>, path: &Path) -> Result<crate::LinkKey, EscalationError> {
    if let Some(s) = secret {
        return Ok(crate::LinkKey::new(s.as_bytes().to_vec()));
    }
    let io = |source| EscalationError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => Ok(crate::LinkKey::new(bytes)),
        Ok(_) => Err(EscalationError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "link key file is shorter than 32 bytes",
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crate::LinkKey::generate();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_private(path, key.as_bytes()).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_used_once_and_the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = EscalationStore::open(&dir.path().join("e.db")).unwrap();
        assert!(s.use_link("n1", 1, "p", "e", 5).unwrap());
        assert!(!s.use_link("n1", 1, "p", "e", 6).unwrap());
        assert!(s.link_used("n1").unwrap());
        s.set_cursor("attempts", 7).unwrap();
        assert_eq!(s.cursor("attempts").unwrap(), 7);
        let p = dir.path().join("link.key");
        let a = link_key(None, &p).unwrap();
        let b = link_key(None, &p).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
    }
}
