//! Throwaway PostgreSQL clusters from Debian's server binaries (package
//! `postgresql`, under `/usr/lib/postgresql/*/bin`): one shared by the whole
//! test process, started on first use, with a fresh database per test; tests
//! that stop the server start a cluster of their own.
//!
//! Each cluster runs under a small shell watchdog that reads commands on its
//! standard input. When the test process ends, however it ends, that pipe
//! closes, and the watchdog stops the server and deletes its folder: nothing
//! is left running. `initdb` refuses to run as root, so as root the cluster
//! belongs to the unprivileged `postgres` user.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The user that owns clusters when the tests run as root.
const UNPRIVILEGED_USER: &str = "postgres";

/// Runs the server until told otherwise: `stop` is an immediate shutdown
/// (like a crash: recovery replays the WAL on the next start), `start` starts
/// it again, and the end of input stops it and removes the cluster.
const WATCHDOG: &str = r#"
bin=$1; dir=$2; port=$3
start() {
  "$bin/postgres" -D "$dir/data" -k "$dir" -p "$port" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c full_page_writes=off -c max_connections=400 \
    -c shared_buffers=32MB </dev/null >>"$dir/server.log" 2>&1 &
  pid=$!
}
start
while read -r command; do
  case "$command" in
    stop) kill -QUIT "$pid"; wait "$pid";;
    start) start;;
  esac
done
kill -INT "$pid" 2>/dev/null; wait "$pid"
rm -rf "$dir"
"#;

pub struct Cluster {
    pub port: u16,
    bin: PathBuf,
    /// The cluster's folder: data, socket and server log.
    dir: PathBuf,
    control: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Child>,
    databases: AtomicUsize,
}

/// The cluster shared by every test of this process.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

/// The newest PostgreSQL server binaries installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "the PostgreSQL tests need the server binaries under /usr/lib/postgresql/*/bin: \
             install Debian's `postgresql` package (apt-get install postgresql)"
        ),
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command run as the cluster's owner.
fn as_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", UNPRIVILEGED_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Cluster {
    /// Creates and starts a new cluster; it stops when dropped, or when the
    /// test process ends.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let root = running_as_root();
        let base = if root {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("agentry-pg-")
            .tempdir_in(base)
            .expect("a temporary folder")
            .keep();
        if root {
            let chown = Command::new("chown")
                .arg(UNPRIVILEGED_USER)
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(
                chown.success(),
                "cannot hand {} to the user '{UNPRIVILEGED_USER}' (Debian's postgresql package creates it)",
                dir.display()
            );
        }
        let init = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let mut watchdog = as_owner(Path::new("/bin/sh"))
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cluster watchdog starts");
        let control = watchdog.stdin.take();
        let cluster = Cluster {
            port,
            bin,
            dir,
            control: Mutex::new(control),
            watchdog: Mutex::new(watchdog),
            databases: AtomicUsize::new(0),
        };
        cluster.wait_until(true);
        cluster
    }

    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn wait_until(&self, up: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ready() != up {
            assert!(
                Instant::now() < deadline,
                "the test PostgreSQL server did not {} in time; its log says:\n{}",
                if up { "start" } else { "stop" },
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs one statement as the superuser, in the maintenance database.
    pub fn sql(&self, statement: &str) -> String {
        self.sql_in("postgres", statement)
    }

    /// Runs one statement as the superuser in a database; returns the rows.
    pub fn sql_in(&self, database: &str, statement: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database, "-c", statement])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new empty database; returns its URL.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("agentry_test_{n}");
        self.sql(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    fn command(&self, line: &str) {
        let mut control = self.control.lock().unwrap();
        let stdin = control.as_mut().expect("the cluster is running");
        writeln!(stdin, "{line}").expect("the watchdog listens");
        stdin.flush().unwrap();
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        self.command("stop");
        self.wait_until(false);
    }

    /// Starts the server again after [`Cluster::stop`].
    pub fn restart(&self) {
        self.command("start");
        self.wait_until(true);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop and clean up.
        drop(self.control.lock().unwrap().take());
        let _ = self.watchdog.lock().unwrap().wait();
    }
}
