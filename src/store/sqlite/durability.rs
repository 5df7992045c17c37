//! Durability off the writer's path. The writer commits with
//! `synchronous=NORMAL`: COMMIT writes the batch's WAL frames and returns
//! without waiting for the disk. The batch's answers then go to the sync
//! thread, which flushes the WAL file (`fdatasync`) once for every batch that
//! arrived meanwhile and only then answers their callers. While the disk
//! works, the writer is already running the next batch: the wait for the disk
//! overlaps with the work instead of following it.
//!
//! Checkpoints (copying WAL pages back into the database file, then syncing
//! it) run on a third thread with its own connection, started when the WAL
//! holds [`CHECKPOINT_FRAMES`] frames, so the writer does not wait for them.
//!
//! A write is acknowledged only once its frames are on disk, as with
//! `synchronous=FULL`. What differs: another request can read a committed
//! change during the flush, before the write is acknowledged; only a power
//! loss or kernel crash in that window could then undo what it read.

use crate::store::StoreError;
use rusqlite::Connection;
use std::cell::Cell;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

/// WAL frames (pages) after which a checkpoint is started: about 120 MB of
/// WAL with 4 KiB pages. SQLite's own automatic checkpoints start at 1,000; a
/// longer WAL lets a checkpoint write a page that many commits changed once.
/// Measured with random renames of 10k instances, together with the
/// writer's larger page cache: from 10,000 to 30,000 frames the checkpoints'
/// share of the bytes written fell from 15% to 6%, throughput rose 13% and
/// p99 latency halved (BENCHMARKS.md).
pub(super) const CHECKPOINT_FRAMES: i32 = 30_000;

/// What makes the committed batches durable: `fdatasync` of the WAL file in
/// the server, something countable in unit tests.
pub(super) trait Flush: Send + 'static {
    fn flush(&mut self) -> std::io::Result<()>;
}

/// The WAL file, opened at the first flush (SQLite creates it lazily).
pub(super) struct WalFile {
    path: PathBuf,
    file: Option<File>,
}

impl WalFile {
    pub(super) fn of_database(db: &std::path::Path) -> Self {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: path.into(),
            file: None,
        }
    }
}

impl Flush for WalFile {
    fn flush(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            // Read-only is enough for fdatasync, and SQLite keeps no locks on
            // this file, so this descriptor cannot disturb its locking.
            self.file = Some(File::open(&self.path)?);
        }
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

/// Answers for one committed batch: each job's outcome and its callback.
/// What answers one write: its outcome, once durable (or not).
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
pub(super) type Answers = Vec<(Result<(), StoreError>, Completion)>;

enum Msg {
    Batch(Answers),
    Stop,
}

/// The sync thread: answers committed batches once the WAL is on disk.
pub(super) struct Syncer {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread; `failed` is raised when a flush fails.
    pub(super) fn start(flush: impl Flush, failed: Arc<AtomicBool>) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("agentry-sqlite-sync".into())
            .spawn(move || run_syncer(rx, flush, &failed))?;
        Ok(Self {
            tx,
            thread: Some(thread),
        })
    }

    /// Hands a committed batch over; its callers hear once it is durable.
    pub(super) fn submit(&self, answers: Answers) {
        if let Err(std::sync::mpsc::SendError(Msg::Batch(answers))) =
            self.tx.send(Msg::Batch(answers))
        {
            // The thread is gone (it only stops at shutdown): nothing can
            // vouch for these writes.
            for (_, done) in answers {
                done(Err(not_durable()));
            }
        }
    }

    /// Answers everything submitted so far, then stops the thread.
    pub(super) fn stop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn not_durable() -> StoreError {
    StoreError::Unavailable("the write could not be made durable".into())
}

fn run_syncer(rx: Receiver<Msg>, mut flush: impl Flush, failed: &AtomicBool) {
    let mut stop = false;
    while !stop {
        let Ok(first) = rx.recv() else { break };
        let mut batches = Vec::new();
        let mut take = |m: Msg, stop: &mut bool| match m {
            Msg::Batch(a) => batches.push(a),
            Msg::Stop => *stop = true,
        };
        take(first, &mut stop);
        while let Ok(m) = rx.try_recv() {
            take(m, &mut stop);
        }
        if batches.is_empty() {
            continue;
        }
        // After one failed flush the kernel may have dropped the dirty pages:
        // a later flush that succeeds would not prove the earlier frames.
        let durable = !failed.load(Ordering::Acquire)
            && match flush.flush() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sync the write-ahead log; refusing writes until restart");
                    failed.store(true, Ordering::Release);
                    false
                }
            };
        for (outcome, done) in batches.into_iter().flatten() {
            done(match outcome {
                Ok(()) if !durable => Err(not_durable()),
                other => other,
            });
        }
    }
}

thread_local! {
    /// Frames in the WAL after the writer's last commit (from SQLite's WAL hook).
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

/// Notes the WAL's length after each commit; installed on the writer's
/// connection, it also replaces SQLite's automatic checkpoints.
pub(super) fn watch_wal(conn: &Connection) {
    fn note(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
        WAL_FRAMES.set(frames);
        Ok(())
    }
    conn.wal_hook(Some(note));
}

/// Frames in the WAL after the last commit on this thread's connection.
pub(super) fn wal_frames() -> i32 {
    WAL_FRAMES.get()
}

/// The checkpoint thread, woken by the writer when the WAL has grown.
///
/// A checkpoint that runs beside the writer cannot copy the frames committed
/// while it runs, and SQLite starts the WAL over only once every frame has
/// been copied. So the writer finishes the job: once the thread is done, it
/// copies the few frames committed meanwhile itself ([`Checkpointer::finish`]),
/// and its next transaction writes the WAL from the start again.
pub(super) struct Checkpointer {
    tx: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<AtomicU8>,
    /// WAL frames from which a checkpoint is started.
    threshold: i32,
}

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own to the database;
    /// checkpoints start when the WAL holds `threshold` frames.
    pub(super) fn start(conn: Connection, threshold: i32) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(1);
        let state = Arc::new(AtomicU8::new(IDLE));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("agentry-sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(&conn, &rx, &shared))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            state,
            threshold,
        })
    }

    /// Called by the writer after each commit with the WAL's length in
    /// frames: starts a checkpoint when the WAL has grown, and finishes one
    /// that the thread has done.
    pub(super) fn after_commit(&self, conn: &Connection, frames: i32) {
        if frames < self.threshold {
            return;
        }
        match self.state.load(Ordering::Acquire) {
            IDLE => self.request(),
            DONE => self.finish(conn),
            _ => {}
        }
    }

    /// Called by the idle writer: has the whole WAL copied back, so that
    /// reads no longer search it. True once that is done; false while a
    /// checkpoint still runs (the writer asks again later).
    pub(super) fn when_idle(&self, conn: &Connection) -> bool {
        match self.state.load(Ordering::Acquire) {
            IDLE => {
                self.request();
                false
            }
            DONE => {
                self.finish(conn);
                true
            }
            _ => false,
        }
    }

    /// Wakes the thread (only the writer calls this, so the state cannot
    /// change under it but from RUNNING to DONE).
    fn request(&self) {
        if let Some(tx) = &self.tx {
            self.state.store(RUNNING, Ordering::Release);
            if tx.try_send(()).is_err() {
                self.state.store(IDLE, Ordering::Release);
            }
        }
    }

    /// Copies what the thread's checkpoint left, on the writer's connection.
    fn finish(&self, conn: &Connection) {
        checkpoint(conn);
        self.state.store(IDLE, Ordering::Release);
    }

    /// Lets a running checkpoint end, then stops the thread and closes its connection.
    pub(super) fn stop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_checkpointer(conn: &Connection, rx: &Receiver<()>, state: &AtomicU8) {
    while rx.recv().is_ok() {
        checkpoint(conn);
        state.store(DONE, Ordering::Release);
    }
}

/// Copies the WAL's frames into the database file. PASSIVE never blocks the
/// writer or readers; it syncs the WAL before copying and the database file
/// after (on the writer's connection too: `synchronous=NORMAL` still syncs
/// at checkpoints).
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc::Sender as Tx;

    /// Records each flush in a shared log, failing when told to.
    struct Recorded {
        log: Log,
        fail: bool,
    }

    impl Flush for Recorded {
        fn flush(&mut self) -> std::io::Result<()> {
            self.log.lock().unwrap().push("flush".into());
            if self.fail {
                Err(std::io::Error::other("disk gone"))
            } else {
                Ok(())
            }
        }
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// A sync thread whose flushes are recorded (and fail when told to).
    fn recorded_syncer(fail: bool) -> (Syncer, Log, Arc<AtomicBool>) {
        let log = Log::default();
        let failed = Arc::new(AtomicBool::new(false));
        let flush = Recorded {
            log: log.clone(),
            fail,
        };
        (Syncer::start(flush, failed.clone()).unwrap(), log, failed)
    }

    /// A database in WAL mode with one table, and its writer's connection
    /// with the WAL hook installed.
    fn wal_database() -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
            )
            .unwrap();
        watch_wal(&writer);
        (dir, path, writer)
    }

    fn answer(
        log: &Log,
        name: &str,
        outcome: Result<(), StoreError>,
        heard: &Tx<Result<(), StoreError>>,
    ) -> (Result<(), StoreError>, Completion) {
        let (log, name, heard) = (log.clone(), name.to_owned(), heard.clone());
        let done: Completion = Box::new(move |r| {
            log.lock().unwrap().push(name);
            let _ = heard.send(r);
        });
        (outcome, done)
    }

    #[test]
    fn callers_hear_of_their_writes_only_after_the_flush() {
        let (mut syncer, log, failed) = recorded_syncer(false);
        let (heard, results) = channel();
        syncer.submit(vec![
            answer(&log, "a", Ok(()), &heard),
            answer(
                &log,
                "b",
                Err(StoreError::Internal("step failed".into())),
                &heard,
            ),
        ]);
        syncer.stop();
        let log = log.lock().unwrap().clone();
        assert_eq!(log, ["flush", "a", "b"]);
        assert!(results.recv().unwrap().is_ok());
        assert!(matches!(
            results.recv().unwrap(),
            Err(StoreError::Internal(_))
        ));
        assert!(!failed.load(Ordering::Acquire));
    }

    #[test]
    fn a_failed_flush_fails_the_batch_and_every_later_one() {
        let (mut syncer, log, failed) = recorded_syncer(true);
        let (heard, results) = channel();
        syncer.submit(vec![answer(&log, "a", Ok(()), &heard)]);
        assert!(matches!(
            results.recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(failed.load(Ordering::Acquire));
        syncer.submit(vec![answer(&log, "b", Ok(()), &heard)]);
        assert!(matches!(
            results.recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        syncer.stop();
        // The second batch is not flushed: a later success would prove nothing.
        assert_eq!(log.lock().unwrap().as_slice(), ["flush", "a", "b"]);
    }

    #[test]
    fn batches_submitted_after_stop_are_refused_not_dropped() {
        let (mut syncer, log, _) = recorded_syncer(false);
        syncer.stop();
        let (heard, results) = channel();
        syncer.submit(vec![answer(&log, "late", Ok(()), &heard)]);
        assert!(matches!(
            results.recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn the_wal_starts_over_while_writes_keep_coming() {
        let (_dir, path, writer) = wal_database();
        let mut checkpointer = Checkpointer::start(Connection::open(&path).unwrap(), 20).unwrap();
        // Writes keep coming until the WAL has started over three times
        // (SQLite's automatic checkpoints are off: without the checkpoint
        // thread and the writer's share of the work it would only grow).
        let (mut written, mut restarts, mut last) = (0i64, 0, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while restarts < 3 && std::time::Instant::now() < deadline {
            writer
                .execute(
                    "INSERT INTO t (id, v) VALUES (?1, ?2)",
                    rusqlite::params![written, "x".repeat(500)],
                )
                .unwrap();
            written += 1;
            let frames = wal_frames();
            if frames < last {
                restarts += 1;
            }
            last = frames;
            checkpointer.after_commit(&writer, frames);
        }
        checkpointer.stop();
        assert_eq!(restarts, 3, "the WAL started over {restarts} times");
        let count: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, written);
    }

    #[test]
    fn an_idle_writer_has_the_whole_wal_copied_back() {
        let (_dir, path, writer) = wal_database();
        let mut checkpointer =
            Checkpointer::start(Connection::open(&path).unwrap(), 1_000_000).unwrap();
        for i in 0..50 {
            writer
                .execute("INSERT INTO t (id, v) VALUES (?1, 'x')", [i])
                .unwrap();
            checkpointer.after_commit(&writer, wal_frames());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !checkpointer.when_idle(&writer) {
            assert!(std::time::Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        checkpointer.stop();
        assert!(wal_frames() >= 50, "{} frames", wal_frames());
        // Everything was copied back, so the next write starts the WAL over
        // (it would be frame 51 or so otherwise).
        writer
            .execute("INSERT INTO t (id, v) VALUES (50, 'x')", [])
            .unwrap();
        assert_eq!(wal_frames(), 1);
    }

    #[test]
    fn the_wal_file_is_found_beside_the_database() {
        let wal = WalFile::of_database(std::path::Path::new("data/agentry.db"));
        assert_eq!(wal.path, PathBuf::from("data/agentry.db-wal"));
    }
}
