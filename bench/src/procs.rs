//! The servers under test as child processes, and what `/proc` says about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A server we started; killed when dropped, and by its watchdog when the
/// harness dies without dropping it.
pub struct Server {
    /// Declared first: dropped (and so disarmed) before the server.
    _watchdog: Watchdog,
    pub child: Child,
    pub addr: SocketAddr,
    /// The PostgreSQL postmaster serving this server, when there is one:
    /// its processes' CPU and disk writes are measured with the server's.
    pub database_pid: Option<u32>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running child has a pid")
    }

    /// Resident memory now (VmRSS), in bytes.
    pub fn rss(&self) -> Option<u64> {
        status_kib(self.pid(), "VmRSS:").map(|k| k * 1024)
    }

    /// Peak resident memory (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        status_kib(self.pid(), "VmHWM:").map(|k| k * 1024)
    }

    /// User plus system CPU time used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.pid())
    }

    /// Bytes the process has caused to be written to storage so far.
    pub fn disk_writes(&self) -> Option<u64> {
        disk_writes(self.pid())
    }

    /// Whether the process still runs (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        let Some(pid) = self.child.id() else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s.get(i + 2..i + 3))
                    .map(|st| st != "Z" && st != "X")
            })
            .unwrap_or(false)
    }

    /// SIGTERM, then wait (up to `grace`), then SIGKILL.
    pub async fn stop(mut self, grace: Duration) -> std::io::Result<()> {
        if let Some(pid) = self.child.id() {
            // Safe enough without libc: `kill` is always there on Linux.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        self.child.kill().await
    }
}

/// A shell that sends SIGTERM to a server once its standard input, a pipe
/// from the harness, closes without a word: when the harness dies in a way
/// that runs no destructor (a SIGKILL, an abort), the kernel closes the pipe
/// and the server does not outlive the run. Dropped normally, the watchdog
/// is killed first, so it never signals a pid that may have been reused.
/// It runs in a process group of its own: a Ctrl-C reaches only the harness.
struct Watchdog(std::process::Child);

/// Waits for standard input to close, then stops the server (`$1`).
const WATCHDOG: &str = r#"read -r _; kill -TERM "$1" 2>/dev/null"#;

impl Watchdog {
    fn start(pid: u32) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("/bin/sh")
            .args(["-c", WATCHDOG, "agentry-bench-watchdog", &pid.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Watchdog)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident memory of process `pid` (VmRSS), in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|k| k * 1024)
}

/// Runs `agentry ARGS` (a transfer command on `data_dir`, or on the
/// database at `database_url` when given) to the end; its time taken.
pub fn agentry_transfer(
    agentry: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
) -> anyhow_lite::Result<Duration> {
    let began = std::time::Instant::now();
    let mut cmd = std::process::Command::new(agentry);
    cmd.arg("--data-dir").arg(data_dir).args(args);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(anyhow_lite::err(format!(
            "agentry {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(began.elapsed())
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What the harness reads from `/proc/PID/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime: the process's own CPU.
    own: u64,
    /// cutime + cstime: CPU of its children that exited and were waited for.
    reaped_children: u64,
}

fn parse_stat(stat: &str) -> Option<Stat> {
    // Fields after the command name (which may hold spaces and parentheses)
    // start after the last ')': the state is field 3 of the whole line.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        // utime, stime, cutime, cstime are fields 14 to 17.
        own: field(14)? + field(15)?,
        reaped_children: field(16)? + field(17)?,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks as time: USER_HZ is 100 on every Linux this runs on.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// CPU time (user and system) of one process, all its threads.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    read_stat(pid).map(|s| ticks(s.own))
}

/// The live children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| read_stat(child).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// CPU time of a process and all its children (a PostgreSQL postmaster and
/// its backends): its own, that of the children running now, and that of
/// children already gone (counted in the parent once waited for, so a
/// backend that ends between two readings is not lost).
pub fn tree_cpu_time(pid: u32) -> Option<Duration> {
    let root = read_stat(pid)?;
    let live: u64 = children(pid)
        .into_iter()
        .filter_map(read_stat)
        .map(|s| s.own + s.reaped_children)
        .sum();
    Some(ticks(root.own + root.reaped_children + live))
}

/// Bytes written to storage by a process and its children (the kernel adds
/// a child's count to its parent's when the child is waited for).
pub fn tree_disk_writes(pid: u32) -> Option<u64> {
    let root = disk_writes(pid)?;
    Some(
        root + children(pid)
            .into_iter()
            .filter_map(disk_writes)
            .sum::<u64>(),
    )
}

fn disk_writes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Starts `program args…` with stdout piped and waits for a line holding
/// `http://ADDR`; stderr goes to `log`.
pub async fn spawn(
    name: &'static str,
    program: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    log: &Path,
) -> anyhow_lite::Result<Server> {
    let log_file = std::fs::File::create(log)?;
    let mut cmd = Command::new(program);
    // Warnings only: Agentry's access log (a line per request at info) is
    // off in the measurements, as an operator under load would set it.
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow_lite::err(format!("cannot start {}: {e}", program.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = address_in(&line) {
                return Ok(Some(addr));
            }
        }
        Ok::<_, std::io::Error>(None)
    };
    let found = tokio::time::timeout(Duration::from_secs(60), wait).await;
    let addr = match found {
        Ok(Ok(Some(addr))) => addr,
        _ => {
            let _ = child.kill().await;
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            return Err(anyhow_lite::err(format!(
                "{name} did not print its address; its log ends with:\n{tail}"
            )));
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        _watchdog: watch(&mut child).await?,
        child,
        addr,
        database_pid: None,
    })
}

/// A watchdog for `child`, which is killed if none can be started.
async fn watch(child: &mut Child) -> anyhow_lite::Result<Watchdog> {
    let started = child.id().map(Watchdog::start);
    match started {
        Some(Ok(watchdog)) => Ok(watchdog),
        Some(Err(e)) => {
            let _ = child.kill().await;
            Err(anyhow_lite::err(format!("cannot start a watchdog: {e}")))
        }
        None => Err(anyhow_lite::err("the server exited at once".to_owned())),
    }
}

/// Starts a server that prints nothing useful (json-server `--quiet`) on a
/// known address and waits until `probe` answers 200.
pub async fn spawn_polled(
    name: &'static str,
    program: &Path,
    args: &[String],
    addr: SocketAddr,
    probe: &str,
    log: &Path,
) -> anyhow_lite::Result<Server> {
    let log_file = std::fs::File::create(log)?;
    let began = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow_lite::err(format!("cannot start {}: {e}", program.display())))?;
    let target = crate::load::Target {
        addr,
        authorization: None,
        replicas: Vec::new(),
    };
    let call = crate::load::Call::get(probe);
    loop {
        if let Ok((hyper::StatusCode::OK, _)) = crate::load::once(&target, &call).await {
            break;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            return Err(anyhow_lite::err(format!("{name} exited ({exit}):\n{tail}")));
        }
        if began.elapsed() > Duration::from_secs(60) {
            let _ = child.kill().await;
            return Err(anyhow_lite::err(format!(
                "{name} did not answer {probe} within 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Server {
        _watchdog: watch(&mut child).await?,
        child,
        addr,
        database_pid: None,
    })
}

/// `http://127.0.0.1:1234/...` anywhere in a line gives `127.0.0.1:1234`.
fn address_in(line: &str) -> Option<SocketAddr> {
    let at = line.find("http://")? + "http://".len();
    let rest = &line[at..];
    let end = rest.find(['/', ' ']).unwrap_or(rest.len());
    let host = rest[..end].replace("localhost", "127.0.0.1");
    host.parse().ok()
}

/// Runs `agentry token --data-dir DIR` and returns the token (delegated,
/// the built-in user with every permission Agentry checks).
pub fn mint_token(agentry: &Path, data_dir: &Path) -> anyhow_lite::Result<String> {
    token_command(agentry, data_dir, &[])
}

/// An application token with the role `Agentry.Admin`, for the control
/// plane (`/_agentry`), which loads packages.
pub fn mint_admin_token(agentry: &Path, data_dir: &Path) -> anyhow_lite::Result<String> {
    token_command(
        agentry,
        data_dir,
        &["--app", "agentry-bench", "--roles", "Agentry.Admin"],
    )
}

fn token_command(agentry: &Path, data_dir: &Path, args: &[&str]) -> anyhow_lite::Result<String> {
    let out = std::process::Command::new(agentry)
        .arg("token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(anyhow_lite::err(format!(
            "agentry token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Arguments that start Agentry on a data folder and a free loopback port.
pub fn agentry_args(data_dir: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ]
}

/// How many 4 KiB write+fdatasync rounds the disk under `dir` does per second:
/// the ceiling for one-commit-per-write durability.
pub fn fsync_rate(dir: &Path, window: Duration) -> std::io::Result<f64> {
    use std::io::{Seek, SeekFrom, Write};
    let path: PathBuf = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [7u8; 4096];
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed() < window {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / began.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// A tiny error type: a message, from anything printable.
pub mod anyhow_lite {
    pub type Result<T> = std::result::Result<T, Error>;

    #[derive(Debug)]
    pub struct Error(pub String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Error {}

    impl From<std::io::Error> for Error {
        fn from(e: std::io::Error) -> Self {
            Self(e.to_string())
        }
    }

    pub fn err(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process standing in for a server: it sleeps until stopped.
    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap()
    }

    /// Whether `child` exits within `wait`.
    fn exits(child: &mut std::process::Child, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_watchdog_whose_pipe_closes_stops_the_server_as_a_dead_harness_would() {
        let mut server = sleeper();
        let mut watchdog = Watchdog::start(server.id()).unwrap();
        // What the kernel does to the pipe when the harness is killed.
        drop(watchdog.0.stdin.take());
        assert!(
            exits(&mut server, Duration::from_secs(5)),
            "the server outlived the harness"
        );
    }

    #[test]
    fn a_watchdog_dropped_with_its_server_signals_nothing() {
        let mut server = sleeper();
        drop(Watchdog::start(server.id()).unwrap());
        assert!(
            !exits(&mut server, Duration::from_secs(1)),
            "a disarmed watchdog stopped the server"
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }

    #[test]
    fn addresses_are_found_in_banners() {
        assert_eq!(
            address_in("Agentry is serving Microsoft Graph beta at http://127.0.0.1:4242/beta"),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(
            address_in("  http://localhost:3000/agentInstances"),
            Some("127.0.0.1:3000".parse().unwrap())
        );
        assert_eq!(address_in("no address"), None);
    }

    #[test]
    fn our_own_process_has_memory_and_cpu_time() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS:").unwrap() > 0);
        assert!(cpu_time(me).is_some());
        assert!(tree_cpu_time(me).unwrap() >= cpu_time(me).unwrap());
        assert!(tree_disk_writes(me).is_some());
    }

    #[test]
    fn stat_lines_are_read_past_odd_command_names() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority…
        let line = "4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194560 \
                    120 0 0 0 310 45 7 3 20 0 1 0 1234 1000 50";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 4200,
                own: 355,
                reaped_children: 10
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(ticks(355), Duration::from_millis(3550));
    }
}
