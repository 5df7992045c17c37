//! A throwaway PostgreSQL cluster for `run --postgres`: created in the work
//! folder from Debian's server binaries (`/usr/lib/postgresql/*/bin`),
//! started with the settings below on a free loopback port, stopped and
//! deleted at the end of the run.
//!
//! The server runs under a small shell guard whose standard input is a pipe
//! from this process. When the harness lets go of the cluster, or exits in
//! any way (an error, a panic, Ctrl-C, a kill), the pipe closes; the guard
//! then shuts the server down and deletes the cluster's folder. The guard
//! runs in a process group of its own, so a Ctrl-C in the terminal reaches
//! only the harness, and the guard still gets to clean up. `initdb` refuses
//! to run as root, so as root the cluster belongs to the `postgres` user
//! (which Debian's `postgresql` package creates).

use crate::procs::anyhow_lite::{Result, err};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Who owns the cluster when the harness runs as root.
const OWNER_WHEN_ROOT: &str = "postgres";

/// The database Agentry uses.
const DATABASE: &str = "agentry";

/// Waits for its standard input to close, then stops the server (a fast
/// shutdown: open transactions roll back, a checkpoint, exit) and deletes
/// the cluster. Arguments: the `postgres` program, the cluster's folder,
/// then the server's own arguments.
const GUARD: &str = r#"
server=$1; folder=$2; shift 2
"$server" "$@" </dev/null &
postmaster=$!
cat >/dev/null
kill -INT "$postmaster" 2>/dev/null
wait "$postmaster"
rm -rf "$folder"
"#;

/// One server setting, with the reason it is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub why: &'static str,
}

fn setting(name: &'static str, value: impl Into<String>, why: &'static str) -> Setting {
    Setting {
        name,
        value: value.into(),
        why,
    }
}

/// `max_connections` for `replicas` Agentry processes with `pool_size`
/// connections each: their pools, the harness's psql and a margin.
pub fn max_connections(pool_size: usize, replicas: usize) -> usize {
    replicas * pool_size + 10
}

/// The settings the harness starts the server with, for `replicas` Agentry
/// processes with `pool_size` connections each. Sized for the benchmark machine (2 cores, 24 GiB
/// of memory shared with other work, an SSD); docs/postgresql.md explains how
/// they scale. Durability stays as in production: `fsync`, `synchronous_commit`
/// and `full_page_writes` keep their defaults (on), and are stated here so the
/// report shows them.
pub fn settings(pool_size: usize, replicas: usize) -> Vec<Setting> {
    vec![
        setting(
            "fsync",
            "on",
            "durable: a commit is on disk when acknowledged",
        ),
        setting(
            "synchronous_commit",
            "on",
            "durable: a commit waits for its WAL flush",
        ),
        setting(
            "full_page_writes",
            "on",
            "safe against torn pages after a crash",
        ),
        setting(
            "max_connections",
            max_connections(pool_size, replicas).to_string(),
            "Agentry's pools (replicas × pool size), the harness's psql and a margin; fewer slots, smaller shared tables",
        ),
        setting(
            "shared_buffers",
            "1536MB",
            "a quarter of the usual 25% of memory, the box being shared; holds 10k and 100k whole, the OS page cache serves the rest",
        ),
        setting(
            "wal_buffers",
            "32MB",
            "room for bursts of concurrent commits between flushes (the automatic size stops at 16MB)",
        ),
        setting(
            "max_wal_size",
            "4GB",
            "checkpoints by time, not by WAL volume, while loading: fewer full-page images",
        ),
        setting(
            "min_wal_size",
            "1GB",
            "recycled WAL segments instead of new files",
        ),
        setting(
            "checkpoint_timeout",
            "15min",
            "at most about one checkpoint per run: fewer full-page images after each",
        ),
        setting(
            "checkpoint_completion_target",
            "0.9",
            "checkpoint writes spread over the interval",
        ),
        setting(
            "effective_cache_size",
            "12GB",
            "planner's estimate of shared buffers plus OS page cache (half of memory)",
        ),
        setting(
            "random_page_cost",
            "1.1",
            "SSD: a random read costs about a sequential one, so index scans are preferred",
        ),
        setting(
            "effective_io_concurrency",
            "200",
            "SSD: concurrent prefetch for bitmap heap scans",
        ),
        setting(
            "max_parallel_workers_per_gather",
            "0",
            "the concurrency comes from the clients; on 2 cores parallel workers only take a core from another request",
        ),
        setting(
            "jit",
            "off",
            "short queries: compiling them costs more than it saves",
        ),
    ]
}

/// The server's arguments: data folder, socket folder, port, loopback only,
/// then every setting as `-c name=value`.
pub fn server_args(data: &Path, socket_dir: &Path, port: u16, settings: &[Setting]) -> Vec<String> {
    let mut args = vec![
        "-D".to_owned(),
        data.display().to_string(),
        "-k".to_owned(),
        socket_dir.display().to_string(),
        "-p".to_owned(),
        port.to_string(),
        "-c".to_owned(),
        "listen_addresses=127.0.0.1".to_owned(),
    ];
    for s in settings {
        args.push("-c".to_owned());
        args.push(format!("{}={}", s.name, s.value));
    }
    args
}

/// The newest version among folder names such as `13`, `15`, `16` (others
/// are ignored).
fn newest_version<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .filter_map(|n| n.parse::<u32>().ok().map(|v| (v, n)))
        .max_by_key(|(v, _)| *v)
        .map(|(_, n)| n)
}

/// The newest installed server binaries.
fn binaries() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let names: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("bin/initdb").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    newest_version(names.iter().map(String::as_str))
        .map(|v| root.join(v).join("bin"))
        .ok_or_else(|| {
            err(
                "--postgres needs PostgreSQL's server binaries under /usr/lib/postgresql/*/bin \
                 (Debian's `postgresql` package)",
            )
        })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` run as the cluster's owner, from the cluster's folder (the
/// owner may not be allowed into the harness's current folder).
fn as_owner(program: &Path, folder: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", OWNER_WHEN_ROOT, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    c.current_dir(folder);
    c
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub struct Cluster {
    bin: PathBuf,
    folder: PathBuf,
    pub port: u16,
    pub version: String,
    pub settings: Vec<Setting>,
    guard: Child,
    guard_input: Option<ChildStdin>,
}

impl Cluster {
    /// Creates the cluster in `work_dir/postgres` (its log is
    /// `work_dir/postgres.log`, kept) for `replicas` Agentry processes with
    /// `pool_size` connections each, starts it and creates Agentry's database.
    pub fn start(work_dir: &Path, pool_size: usize, replicas: usize) -> Result<Cluster> {
        let bin = binaries()?;
        let folder = work_dir.join("postgres");
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder)?;
        if is_root() {
            let chown = Command::new("chown")
                .arg(OWNER_WHEN_ROOT)
                .arg(&folder)
                .status()?;
            if !chown.success() {
                return Err(err(format!(
                    "cannot give {} to the user {OWNER_WHEN_ROOT}",
                    folder.display()
                )));
            }
        }
        let data = folder.join("data");
        let init = as_owner(&bin.join("initdb"), &folder)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .output()?;
        if !init.status.success() {
            let _ = std::fs::remove_dir_all(&folder);
            return Err(err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            )));
        }
        let port = free_port()?;
        let settings = settings(pool_size, replicas);
        let log = std::fs::File::create(work_dir.join("postgres.log"))?;
        let mut guard = as_owner(Path::new("/bin/sh"), &folder)
            .args(["-c", GUARD, "agentry-bench-postgres"])
            .arg(bin.join("postgres"))
            .arg(&folder)
            .args(server_args(&data, &folder, port, &settings))
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let guard_input = guard.stdin.take();
        let mut cluster = Cluster {
            bin,
            folder,
            port,
            version: String::new(),
            settings,
            guard,
            guard_input,
        };
        // The server accepts connections once recovery is done; until then
        // psql fails, so retry.
        let began = Instant::now();
        loop {
            match cluster.psql("postgres", &format!("CREATE DATABASE {DATABASE}")) {
                Ok(_) => break,
                Err(e) if began.elapsed() > Duration::from_secs(60) => {
                    return Err(err(format!(
                        "PostgreSQL did not start within 60 s ({e}); see postgres.log"
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
            if let Ok(Some(status)) = cluster.guard.try_wait() {
                return Err(err(format!(
                    "PostgreSQL exited at start ({status}); see postgres.log"
                )));
            }
        }
        cluster.version = cluster.psql("postgres", "SHOW server_version")?;
        Ok(cluster)
    }

    /// Runs one statement as the superuser; returns its rows, unaligned.
    pub fn psql(&self, database: &str, statement: &str) -> Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database, "-c", statement])
            .output()?;
        if !out.status.success() {
            return Err(err(format!(
                "{statement}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Agentry's `--database-url`: over loopback TCP, or with `socket`
    /// through the server's Unix socket in the cluster's folder (the path
    /// percent-encoded as the host).
    pub fn url(&self, socket: bool) -> String {
        if socket {
            let dir = self.folder.display().to_string().replace('/', "%2F");
            format!("postgres://postgres@{dir}:{}/{DATABASE}", self.port)
        } else {
            format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
        }
    }

    /// The postmaster's process id (first line of `postmaster.pid`): the
    /// root of the server's processes.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.folder.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The cluster's folder: data files and WAL.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

impl Drop for Cluster {
    /// Closes the guard's input, so it stops the server and deletes the
    /// cluster, and waits (up to a minute) until it has.
    fn drop(&mut self) {
        drop(self.guard_input.take());
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(60) {
            if !matches!(self.guard.try_wait(), Ok(None)) {
                // The guard empties the folder; its entry belongs to the
                // folder above, which may not be the owner's to change.
                let _ = std::fs::remove_dir(&self.folder);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "[bench] PostgreSQL did not stop within 60 s; its folder {} may remain",
            self.folder.display()
        );
    }
}

/// The settings as `name=value` (the reason left to the docs), for the report.
pub fn summary(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(|x| format!("`{}={}`", x.name, x.value))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_installed_version_wins() {
        assert_eq!(newest_version(["13", "15", "9", "common"]), Some("15"));
        assert_eq!(newest_version(["16", "17"]), Some("17"));
        assert_eq!(newest_version(["common"]), None);
    }

    #[test]
    fn settings_are_durable_and_sized_for_the_pool() {
        let s = settings(16, 1);
        let get = |name: &str| s.iter().find(|x| x.name == name).map(|x| x.value.as_str());
        assert_eq!(get("fsync"), Some("on"));
        assert_eq!(get("synchronous_commit"), Some("on"));
        assert_eq!(get("full_page_writes"), Some("on"));
        assert_eq!(get("max_connections"), Some("26"));
        let mut names: Vec<_> = s.iter().map(|x| x.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), s.len(), "each setting once");
        let three = settings(16, 3);
        let slots = three.iter().find(|x| x.name == "max_connections");
        assert_eq!(slots.map(|x| x.value.as_str()), Some("58"));
        assert_eq!(max_connections(10, 2), 30);
    }

    #[test]
    fn server_arguments_listen_on_loopback_with_every_setting() {
        let s = vec![setting("jit", "off", "why")];
        let args = server_args(Path::new("/c/data"), Path::new("/c"), 5433, &s);
        assert_eq!(
            args,
            [
                "-D",
                "/c/data",
                "-k",
                "/c",
                "-p",
                "5433",
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "jit=off"
            ]
        );
    }
}
