//! The single writer: one thread owns the write connection, takes queued
//! jobs and commits them together (group commit). Each job runs inside its own
//! savepoint, so a failing job is rolled back alone; every job of a batch is
//! answered only after the batch's COMMIT has reached the disk, which
//! [`durability`](super::durability) sees to while the writer goes on. The
//! batches of a bulk load are the exception: answered at COMMIT, so that the
//! next one runs while the disk works, and made durable by one wait at the end.

use super::cache::{self, DocCache};
use super::durability::{self, Checkpointer, Completion, Flush, Syncer, WalFile};
use super::readers::Readers;
use super::sql_error;
use crate::store::StoreError;
use crate::store::StoreStats;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;
use tokio::sync::oneshot;

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 128;
/// Statistics for the query planner are refreshed after this many writes.
const OPTIMIZE_EVERY: usize = 2_000;
/// Without writes for this long, the writer has the WAL copied back.
const IDLE: Duration = Duration::from_millis(200);

type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// When a job's caller hears of its outcome.
#[derive(Clone, Copy)]
enum Ack {
    /// Once the batch's WAL frames are on disk: every write but a bulk load's.
    Durable,
    /// Right after COMMIT; [`Writer::synced`] later waits for the disk.
    Committed,
}

enum Msg {
    Job(Job, Ack),
    Shutdown(oneshot::Sender<()>),
}

/// Upper bounds of the batch-size histogram.
const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// Counters the writer keeps for `/metrics`.
#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    batches: AtomicU64,
    jobs: AtomicU64,
    /// Batches per bucket of [`BATCH_BUCKETS`] (not cumulative).
    buckets: [AtomicU64; BATCH_BUCKETS.len()],
}

impl Counters {
    fn batch(&self, size: usize) {
        let size = size as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(size, Ordering::Relaxed);
        self.queued.fetch_sub(size, Ordering::Relaxed);
        let i = BATCH_BUCKETS
            .iter()
            .position(|b| size <= *b)
            .unwrap_or(BATCH_BUCKETS.len() - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle to the writer thread.
pub(super) struct Writer {
    tx: Sender<Msg>,
    counters: Arc<Counters>,
    /// Raised when the WAL could not be synced: writes are refused from then on.
    failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread on `conn`, the database at `path`, with its
    /// sync and checkpoint threads; `cache` hears of every committed change.
    pub(super) fn start(
        conn: Connection,
        path: &Path,
        cache: Arc<DocCache>,
        readers: Arc<Readers>,
    ) -> Result<Self, StoreError> {
        Self::start_with(conn, path, cache, readers, WalFile::of_database(path))
    }

    /// [`Writer::start`], with `flush` making commits durable.
    fn start_with(
        conn: Connection,
        path: &Path,
        cache: Arc<DocCache>,
        readers: Arc<Readers>,
        flush: impl Flush,
    ) -> Result<Self, StoreError> {
        // Room for every statement the write paths prepare (the UPDATE has a
        // variant per set of changed columns), so none is prepared twice.
        conn.set_prepared_statement_cache_capacity(128);
        // COMMIT only writes the WAL; the sync thread makes it durable before
        // anyone hears of it, and the checkpoint thread copies it back.
        // A page cache (filled only as pages are used) large enough for the
        // pages updates keep returning to, which SQLite's default 2 MB is
        // not: each miss is a read system call and a copy.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;")
            .map_err(sql_error)?;
        durability::watch_wal(&conn);
        let checkpoints = Connection::open(path).map_err(sql_error)?;
        checkpoints
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(sql_error)?;
        let cannot_start =
            |e: std::io::Error| StoreError::Internal(format!("cannot start the writer: {e}"));
        let failed = Arc::new(AtomicBool::new(false));
        let threads = Threads {
            syncer: Syncer::start(flush, failed.clone()).map_err(cannot_start)?,
            checkpointer: Checkpointer::start(checkpoints, durability::CHECKPOINT_FRAMES)
                .map_err(cannot_start)?,
        };
        let (tx, rx) = channel();
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        std::thread::Builder::new()
            .name("agentry-sqlite-writer".into())
            .spawn(move || run(conn, rx, &shared, &cache, &readers, threads))
            .map_err(cannot_start)?;
        Ok(Self {
            tx,
            counters,
            failed,
        })
    }

    /// Queue length, batches and batch sizes so far.
    pub(super) fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let mut cumulative = 0;
        let batch_size_buckets = BATCH_BUCKETS
            .iter()
            .zip(&c.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        StoreStats {
            idle_readers: 0,
            queued_writes: c.queued.load(Ordering::Relaxed),
            write_batches: c.batches.load(Ordering::Relaxed),
            write_jobs: c.jobs.load(Ordering::Relaxed),
            batch_size_buckets,
            ..StoreStats::default()
        }
    }

    /// Runs `f` in the next batch and returns its result once committed
    /// and durable.
    pub(super) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, Ack::Durable).await
    }

    /// Runs `f` in the next batch and returns its result once committed,
    /// without waiting for the disk: for the batches of a bulk load, whose
    /// next batch can then run while this one is synced. Such a write is
    /// durable once a later [`Writer::synced`] has answered.
    pub(super) async fn write_committed<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, Ack::Committed).await
    }

    /// Answers once everything committed before is durable (an empty
    /// transaction, answered after the next sync of the WAL, which holds
    /// every frame written before it); an error if a sync failed meanwhile.
    pub(super) async fn synced(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    async fn submit<R, F>(&self, f: F, ack: Ack) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "writes are refused since the write-ahead log could not be synced".into(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(StoreError::Internal("a write job panicked".into())));
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let _ = reply.send(commit.and(result));
            });
            (ok, done)
        });
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Job(job, ack)).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable("the database is closed".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database writer stopped".into()))?
    }

    /// Lets queued jobs finish, then stops the thread and checkpoints the WAL.
    pub(super) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The threads that finish what the writer commits.
struct Threads {
    syncer: Syncer,
    checkpointer: Checkpointer,
}

fn run(
    conn: Connection,
    rx: Receiver<Msg>,
    counters: &Counters,
    cache: &DocCache,
    readers: &Readers,
    mut threads: Threads,
) {
    // Statistics for tables that have none or have grown tenfold since
    // they were gathered. After a bulk load this takes seconds even with
    // analysis_limit (0.8-4 s measured at a million instances; SQLite is
    // built with STAT4), so it runs here, while the server already answers
    // reads, rather than before it listens; writes wait for it.
    if let Err(e) = conn.execute_batch("PRAGMA optimize = 0x10002;") {
        tracing::warn!(error = %e, "PRAGMA optimize failed");
    }
    let mut stop = None;
    let mut since_optimize = 0;
    // Whether writes happened since the WAL was last copied back entirely.
    let mut wal_in_use = false;
    while stop.is_none() {
        let first = if wal_in_use {
            match rx.recv_timeout(IDLE) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: copy the WAL back so that reads go to the
                    // database file alone instead of searching the WAL.
                    // Kept read snapshots would pin the WAL's old frames;
                    // once it is copied back, new ones read the file alone.
                    readers.release_all();
                    wal_in_use = !threads.checkpointer.when_idle(&conn);
                    if !wal_in_use {
                        readers.release_all();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            let Ok(m) = rx.recv() else { break };
            m
        };
        let mut jobs = Vec::new();
        match first {
            Msg::Job(j, ack) => jobs.push((j, ack)),
            Msg::Shutdown(s) => stop = Some(s),
        }
        while stop.is_none() && jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j, ack)) => jobs.push((j, ack)),
                Ok(Msg::Shutdown(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            since_optimize += jobs.len();
            counters.batch(jobs.len());
            commit_batch(&conn, jobs, cache, readers, &threads);
            wal_in_use = true;
        }
        if since_optimize >= OPTIMIZE_EVERY {
            since_optimize = 0;
            // Lets the planner pick indexes by their real selectivity; cheap
            // with analysis_limit, and a no-op when little has changed.
            if let Err(e) = conn.execute_batch("PRAGMA optimize;") {
                tracing::warn!(error = %e, "PRAGMA optimize failed");
            }
        }
    }
    // Every acknowledged write answered, and no checkpoint running, before
    // the last checkpoint empties the WAL.
    threads.syncer.stop();
    threads.checkpointer.stop();
    readers.release_all();
    if let Err(e) = conn.execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
    }
    drop(conn);
    if let Some(s) = stop {
        let _ = s.send(());
    }
}

/// Runs one statement without parameters, prepared once per connection:
/// the transaction and savepoint statements run for every job.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_batch(
    conn: &Connection,
    jobs: Vec<(Job, Ack)>,
    cache: &DocCache,
    readers: &Readers,
    threads: &Threads,
) {
    // Whatever an earlier batch left recorded has been dealt with.
    cache::take_recorded();
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Dropping the jobs unanswered tells each caller the store is unavailable.
        tracing::error!(error = %e, jobs = jobs.len(), "cannot begin a write transaction");
        return;
    }
    let mut completions = Vec::with_capacity(jobs.len());
    // A job alone in its batch needs no savepoint: the transaction is its
    // own, so a failure rolls all of it back. Inside a savepoint SQLite
    // copies every page a job changes to a journal of its own first, which
    // was a tenth of the writer's time in a bulk import.
    let alone = jobs.len() == 1;
    let mut failed_alone = false;
    for (job, ack) in jobs {
        if !alone && let Err(e) = exec(conn, "SAVEPOINT job") {
            // The job is dropped unanswered: its caller hears "unavailable".
            tracing::error!(error = %e, "cannot open a savepoint");
            continue;
        }
        let (ok, done) = job(conn);
        let end = match (alone, ok) {
            (true, _) => Ok(()),
            (false, true) => exec(conn, "RELEASE job"),
            (false, false) => {
                exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
            }
        };
        failed_alone = alone && !ok;
        completions.push((end.err().map(sql_error), done, ack));
    }
    let commit = if failed_alone {
        // Nothing to commit; the job's own error is its answer.
        let _ = exec(conn, "ROLLBACK");
        Ok(())
    } else {
        exec(conn, "COMMIT").map_err(sql_error)
    };
    if commit.is_err() {
        let _ = exec(conn, "ROLLBACK");
    }
    // Before any caller hears of its write, so a read that follows an
    // acknowledged write cannot be served the document it replaced: first
    // no kept snapshot is reused, then the cache forgets (a read that takes
    // its cache ticket after this sees the new snapshot count, so what it
    // keeps is read from a snapshot holding this commit).
    readers.committed();
    cache.invalidate(cache::take_recorded());
    let mut answers = Vec::with_capacity(completions.len());
    for (step_error, done, ack) in completions {
        let outcome = match (&commit, step_error) {
            (Err(e), _) => Err(clone_error(e)),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        };
        match ack {
            Ack::Committed => done(outcome),
            Ack::Durable => answers.push((outcome, done)),
        }
    }
    // A batch of bulk-load jobs alone needs no sync of its own.
    if !answers.is_empty() {
        threads.syncer.submit(answers);
    }
    if commit.is_ok() {
        threads
            .checkpointer
            .after_commit(conn, durability::wal_frames());
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(dir: &Path) -> (Writer, Connection) {
        started_with(dir, WalFile::of_database(&dir.join("writer.db")))
    }

    fn started_with(dir: &Path, flush: impl Flush) -> (Writer, Connection) {
        let path = dir.join("writer.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT PRIMARY KEY);")
            .unwrap();
        let readers = Arc::new(Readers::new(path.clone()));
        let writer =
            Writer::start_with(conn, &path, Arc::new(DocCache::new(0)), readers, flush).unwrap();
        (writer, Connection::open(&path).unwrap())
    }

    /// A disk whose every flush waits for the test's word: `true` succeeds.
    struct Gate(std::sync::mpsc::Receiver<bool>);

    impl Flush for Gate {
        fn flush(&mut self) -> std::io::Result<()> {
            match self.0.recv() {
                Ok(true) => Ok(()),
                _ => Err(std::io::Error::other("the disk failed")),
            }
        }
    }

    const PATIENCE: Duration = Duration::from_secs(10);

    fn stored(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A job that inserts `values`, then fails if `fail`.
    fn job(
        values: &'static [&'static str],
        fail: bool,
    ) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |conn| {
            for v in values {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
                    .map_err(sql_error)?;
            }
            match fail {
                true => Err(StoreError::Internal("the job gave up".into())),
                false => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_job_that_fails_alone_in_its_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = started(dir.path());
        writer.write(job(&["a"], false)).await.unwrap();
        let failed = writer.write(job(&["b", "c"], true)).await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        writer.write(job(&["d"], false)).await.unwrap();
        writer.shutdown().await;
        assert_eq!(stored(&reader), ["a", "d"]);
    }

    #[tokio::test]
    async fn a_job_that_fails_among_others_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = started(dir.path());
        // The first job holds the writer until the next three are queued,
        // so those three share one transaction.
        let started = Arc::new(AtomicBool::new(false));
        let (running, counters) = (started.clone(), writer.counters.clone());
        let slow = writer.write(move |_: &Connection| {
            running.store(true, Ordering::Release);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while counters.queued.load(Ordering::Acquire) < 3
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            // A job is counted just before it is sent.
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        });
        let later = async {
            while !started.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::join!(
                writer.write(job(&["a"], false)),
                writer.write(job(&["b"], true)),
                writer.write(job(&["c"], false)),
            )
        };
        let (first, (a, b, c)) = tokio::join!(slow, later);
        first.unwrap();
        a.unwrap();
        assert!(b.is_err());
        c.unwrap();
        let batched = writer.stats().batch_size_buckets;
        writer.shutdown().await;
        assert_eq!(stored(&reader), ["a", "c"]);
        // One batch of one job, then one of three (bucket 4 counts 2).
        assert_eq!(batched[0], (1, 1), "{batched:?}");
        assert_eq!(batched[2], (4, 2), "{batched:?}");
    }

    #[tokio::test]
    async fn a_bulk_write_is_answered_at_commit_and_synced_waits_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, gate) = channel();
        let (writer, reader) = started_with(dir.path(), Gate(gate));
        // Answered while no flush has returned.
        let committed = tokio::time::timeout(PATIENCE, writer.write_committed(job(&["a"], false)));
        committed
            .await
            .expect("answered only after a flush")
            .unwrap();
        assert_eq!(stored(&reader), ["a"]);
        let mut synced = Box::pin(writer.synced());
        let early = tokio::time::timeout(Duration::from_millis(50), &mut synced).await;
        assert!(early.is_err(), "synced before the disk answered");
        disk.send(true).unwrap();
        tokio::time::timeout(PATIENCE, synced)
            .await
            .unwrap()
            .unwrap();
        disk.send(true).unwrap();
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn a_bulk_write_whose_sync_fails_fails_the_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, gate) = channel();
        let (writer, _reader) = started_with(dir.path(), Gate(gate));
        let committed = tokio::time::timeout(PATIENCE, writer.write_committed(job(&["a"], false)));
        committed
            .await
            .expect("answered only after a flush")
            .unwrap();
        disk.send(false).unwrap();
        let synced = tokio::time::timeout(PATIENCE, writer.synced())
            .await
            .unwrap();
        assert!(
            matches!(synced, Err(StoreError::Unavailable(_))),
            "{synced:?}"
        );
        // Nothing vouches for the disk any more: later writes are refused.
        let later = writer.write_committed(job(&["b"], false)).await;
        assert!(
            matches!(later, Err(StoreError::Unavailable(_))),
            "{later:?}"
        );
        drop(disk);
        writer.shutdown().await;
    }
}
