//! The pool of read connections, each kept inside a read transaction for
//! as long as no write has been committed since it began.
//!
//! Starting and ending a read transaction on a WAL database takes and
//! drops a read lock in the shared-memory file (`fcntl` calls and a scan
//! of the WAL's read marks); done for every statement, it took about two
//! fifths of SQLite's share of a read by id in a profile with the document
//! cache off. So a pooled
//! connection stays inside the snapshot it last read, labelled with the
//! writer's commit count taken before that snapshot began, and reuses it
//! while the count has not moved: no write has been committed since, so
//! the snapshot is the latest. Once the count moves, the next read ends the
//! old transaction and begins a new one. A read therefore sees every write
//! acknowledged before it started, as a statement on its own would.
//!
//! A snapshot kept by an idle connection would stop the WAL from being
//! copied back and restarted, so the writer ends those that a commit made
//! stale ([`Readers::committed`]) and all of them before its last
//! checkpoint ([`Readers::release_all`]).

use super::sql_error;
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Idle read connections kept for reuse.
const MAX_IDLE: usize = 32;

/// A pooled connection and the commit count its open read transaction
/// (if any) began at.
struct Reader {
    conn: Connection,
    snapshot: Option<u64>,
}

impl Reader {
    /// Ends the read transaction, if one is open.
    fn release(&mut self) {
        if self.snapshot.take().is_some() && !self.conn.is_autocommit() {
            // A read transaction has nothing to keep: ending it either way
            // is the same.
            if exec(&self.conn, "COMMIT").is_err() {
                let _ = exec(&self.conn, "ROLLBACK");
            }
        }
    }
}

/// Runs a statement without parameters, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
    /// Bumped by the writer after each commit, before it acknowledges it.
    commits: AtomicU64,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        // The pool is a plain list: a panic elsewhere while it was locked
        // leaves nothing half-done in it.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<Reader, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
            .map_err(sql_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Reader {
            conn,
            snapshot: None,
        })
    }

    /// Runs `f` on a pooled connection, on the calling thread, inside one
    /// read transaction that sees every commit acknowledged before this
    /// call: its statements all read the same snapshot.
    pub(super) fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = self.idle().pop();
        let mut reader = match pooled {
            Some(r) => r,
            None => self.open()?,
        };
        // Taken before the snapshot begins: a commit counted after this
        // moves the count, and the snapshot is not reused past it.
        let now = self.commits.load(Ordering::Acquire);
        if reader.snapshot != Some(now) || reader.conn.is_autocommit() {
            reader.release();
            exec(&reader.conn, "BEGIN").map_err(sql_error)?;
            reader.snapshot = Some(now);
        }
        let result = f(&reader.conn);
        if result.is_err() || self.commits.load(Ordering::Acquire) != now {
            reader.release();
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(reader);
        }
        result
    }

    /// Called by the writer after each commit, before any of its writes is
    /// acknowledged: later reads begin new snapshots, and idle connections
    /// end the ones they keep (unless a reader holds the pool just now:
    /// then the next commit does it, or the reader itself on its next use).
    pub(super) fn committed(&self) {
        let now = self.commits.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(mut idle) = self.idle.try_lock() {
            for r in idle
                .iter_mut()
                .filter(|r| r.snapshot.is_some_and(|s| s != now))
            {
                r.release();
            }
        }
    }

    /// Ends every idle connection's snapshot (before a checkpoint that must
    /// copy the whole WAL back); connections in use end theirs when they
    /// come back.
    pub(super) fn release_all(&self) {
        self.commits.fetch_add(1, Ordering::AcqRel);
        for r in self.idle().iter_mut() {
            r.release();
        }
    }

    /// Closes the idle connections.
    pub(super) fn clear(&self) {
        self.idle().clear();
    }

    pub(super) fn idle_count(&self) -> usize {
        self.idle().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Connection, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        (dir, writer, Readers::new(path))
    }

    fn value(readers: &Readers) -> i64 {
        readers
            .read(|c| {
                c.query_row("SELECT v FROM t", [], |r| r.get(0))
                    .map_err(sql_error)
            })
            .unwrap()
    }

    #[test]
    fn a_read_after_a_counted_commit_sees_it() {
        let (_dir, writer, readers) = database();
        assert_eq!(value(&readers), 1);
        writer.execute("UPDATE t SET v = 2", []).unwrap();
        readers.committed();
        assert_eq!(value(&readers), 2);
    }

    #[test]
    fn without_a_commit_counted_the_kept_snapshot_is_reused() {
        let (_dir, writer, readers) = database();
        assert_eq!(value(&readers), 1);
        // A commit the writer has not counted yet (not acknowledged yet):
        // the connection still reads the snapshot it kept.
        writer.execute("UPDATE t SET v = 2", []).unwrap();
        assert_eq!(value(&readers), 1);
        readers.committed();
        assert_eq!(value(&readers), 2);
    }

    #[test]
    fn idle_connections_let_the_wal_be_copied_back_once_released() {
        let (dir, writer, readers) = database();
        assert_eq!(value(&readers), 1);
        writer.execute("UPDATE t SET v = 2", []).unwrap();
        // The idle connection's snapshot predates the update: a full
        // checkpoint cannot restart the WAL while it is kept.
        let busy = |w: &Connection| -> i64 {
            w.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .unwrap()
        };
        writer.execute_batch("PRAGMA busy_timeout = 0").unwrap();
        assert_eq!(busy(&writer), 1, "a kept snapshot blocks TRUNCATE");
        readers.committed();
        assert_eq!(busy(&writer), 0);
        let wal = std::fs::metadata(dir.path().join("db-wal")).unwrap().len();
        assert_eq!(wal, 0);
        readers.release_all();
        assert_eq!(value(&readers), 2);
    }

    #[test]
    fn statements_of_one_read_see_one_snapshot() {
        let (_dir, writer, readers) = database();
        let path = readers.path.clone();
        let (first, second) = readers
            .read(|c| {
                let a: i64 = c
                    .query_row("SELECT v FROM t", [], |r| r.get(0))
                    .map_err(sql_error)?;
                // Another connection commits in between.
                let other = Connection::open(&path).unwrap();
                other.execute("UPDATE t SET v = 3", []).unwrap();
                let b: i64 = c
                    .query_row("SELECT v FROM t", [], |r| r.get(0))
                    .map_err(sql_error)?;
                Ok((a, b))
            })
            .unwrap();
        assert_eq!((first, second), (1, 1));
        drop(writer);
    }
}
