//! The table, the notes and the targets, as Markdown.

use crate::driver::Config;
use crate::load::Outcome;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Measured {
    pub connections: usize,
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub cpu_per_request: Option<Duration>,
    /// Bytes the server wrote to storage per request (`/proc/PID/io`).
    pub disk_per_request: Option<u64>,
    /// On PostgreSQL: CPU and disk writes of the postmaster and all its
    /// processes, per request.
    pub db_cpu_per_request: Option<Duration>,
    pub db_disk_per_request: Option<u64>,
    /// CPU of the harness's own process per request: the load generator,
    /// which shares the machine's cores with the server.
    pub load_cpu_per_request: Option<Duration>,
    pub ok: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
}

impl Measured {
    pub fn from_outcome(
        out: &Outcome,
        connections: usize,
        cpu_per_request: Option<Duration>,
    ) -> Self {
        Self {
            connections,
            rps: out.throughput(),
            p50: out.percentile(0.50),
            p99: out.percentile(0.99),
            cpu_per_request,
            disk_per_request: None,
            db_cpu_per_request: None,
            db_disk_per_request: None,
            load_cpu_per_request: None,
            ok: out.ok,
            failed: out.failed,
            first_failure: out.first_failure.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub server: &'static str,
    pub scenario: String,
    pub size: Option<u64>,
    pub m: Measured,
    /// The filter name, for list rows.
    pub list: Option<&'static str>,
    /// "get" or "patch": rows compared with json-server.
    pub compare: Option<&'static str>,
    /// The Agentry processes served, for the replica rows.
    pub replicas: Option<usize>,
}

impl Row {
    pub fn measured(server: &'static str, scenario: &str, size: Option<u64>, m: Measured) -> Self {
        Self {
            server,
            scenario: scenario.to_owned(),
            size,
            m,
            list: None,
            compare: None,
            replicas: None,
        }
    }

    pub fn list(mut self, name: &'static str) -> Self {
        self.list = Some(name);
        self
    }

    pub fn compare(mut self, what: &'static str) -> Self {
        self.compare = Some(what);
        self
    }

    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = Some(n);
        self
    }
}

/// The PostgreSQL server Agentry ran on (none: SQLite).
#[derive(Debug, Clone)]
pub struct Database {
    pub version: String,
    /// `name=value` of each setting the harness starts it with.
    pub settings: String,
    /// Agentry's `--db-pool-size`.
    pub pool_size: usize,
    /// How Agentry reaches it: "loopback TCP" or "its Unix socket".
    pub reached_over: &'static str,
}

pub struct Report {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub command: String,
    pub shape: crate::load::Shape,
    pub sizes: Vec<u64>,
    pub loaders: usize,
    pub rows: Vec<Row>,
    pub fsync_per_second: Option<f64>,
    pub baseline_rss: Option<u64>,
    pub cold_start_empty: Option<Duration>,
    pub idle_rss_empty: Option<u64>,
    /// (from, to, time taken)
    pub loads: Vec<(u64, u64, Duration)>,
    /// (instances, RSS, peak RSS)
    pub rss_loaded: Vec<(u64, Option<u64>, Option<u64>)>,
    /// Whether instances were loaded through POST (else `agentry import`).
    pub loaded_through_post: bool,
    /// (instances, peak RSS, last RSS) sampled during the 90/10 mix.
    pub rss_mixed: Vec<(u64, u64, u64)>,
    /// `agentry export` of everything at the end: (records, time taken).
    pub export: Option<(u64, Duration)>,
    pub posted_extra: u64,
    pub stop_time: Option<Duration>,
    pub cold_starts_loaded: Vec<Duration>,
    pub idle_rss_loaded: Option<u64>,
    pub db_bytes: Option<u64>,
    pub json_server_rss: Option<u64>,
    pub json_server_skipped: Option<String>,
    pub database: Option<Database>,
    /// PostgreSQL's client connections after the replica rows' mix, by
    /// replica count.
    pub client_backends: Vec<(usize, Option<u64>)>,
}

fn first_line_with(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Bytes per request: decimal kilobytes, as disk rates are quoted.
fn kb(bytes: u64) -> String {
    if bytes < 1_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The note on the rows of one replica count: CPU per request of each
/// scenario on Agentry (summed over the processes) and on PostgreSQL, and
/// PostgreSQL's client connections after the mix.
fn replica_line(replicas: usize, rows: &[&Row], connections: Option<u64>) -> String {
    let each = |cpu: fn(&Measured) -> Option<Duration>| {
        rows.iter()
            .map(|r| {
                let name = r.scenario.rsplit_once(", ").map_or(&*r.scenario, |x| x.0);
                format!("{name} {}", cpu(&r.m).map_or_else(|| "?".into(), us))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let who = if replicas == 1 {
        "1 replica (same minute)".to_owned()
    } else {
        format!("{replicas} replicas")
    };
    format!(
        "- {who}, {} instances: Agentry CPU / req{}: {}; PostgreSQL CPU / req: {}; PostgreSQL client connections after the mix: {}.",
        rows.first()
            .and_then(|r| r.size)
            .map_or_else(|| "?".into(), count),
        if replicas == 1 {
            ""
        } else {
            " (summed over the processes)"
        },
        each(|m| m.cpu_per_request),
        each(|m| m.db_cpu_per_request),
        connections.map_or_else(|| "?".into(), |n| n.to_string())
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

impl Report {
    pub fn new(cfg: &Config) -> Self {
        Self {
            cpu: first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            load_before: load_average(),
            load_after: String::new(),
            command: String::new(),
            shape: cfg.shape,
            sizes: cfg.sizes.clone(),
            loaders: cfg.loaders,
            rows: Vec::new(),
            fsync_per_second: None,
            baseline_rss: None,
            cold_start_empty: None,
            idle_rss_empty: None,
            loads: Vec::new(),
            rss_loaded: Vec::new(),
            loaded_through_post: cfg.load_through_post,
            rss_mixed: Vec::new(),
            export: None,
            posted_extra: 0,
            stop_time: None,
            cold_starts_loaded: Vec::new(),
            idle_rss_loaded: None,
            db_bytes: None,
            json_server_rss: None,
            json_server_skipped: None,
            database: None,
            client_backends: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        if let Some(f) = &row.m.first_failure {
            eprintln!(
                "[bench]   {} {}: {} failed, first: {f}",
                row.server, row.scenario, row.m.failed
            );
        }
        eprintln!(
            "[bench]   {:.0} req/s, p50 {}, p99 {}",
            row.m.rps,
            ms(row.m.p50),
            ms(row.m.p99)
        );
        self.rows.push(row);
    }

    /// Scenarios that had failed requests or none at all: the run is broken.
    pub fn problems(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.m.failed > 0 || r.m.ok == 0)
            .map(|r| {
                format!(
                    "{} {}: {} ok, {} failed{}",
                    r.server,
                    r.scenario,
                    r.m.ok,
                    r.m.failed,
                    r.m.first_failure
                        .as_deref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    fn baseline_rps(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.server == "baseline")
            .map(|r| r.m.rps)
    }

    fn compared(&self, server: &str, what: &str) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.server == server
                && r.compare == Some(what)
                && (server != "agentry" || r.size == self.sizes.first().copied())
        })
    }

    fn json_ratio(&self, row: &Row) -> Option<f64> {
        if row.server != "agentry" || row.size != self.sizes.first().copied() {
            return None;
        }
        let what = row.compare?;
        Some(row.m.rps / self.compared("json-server", what)?.m.rps)
    }

    fn median_cold_start(&self) -> Option<Duration> {
        let mut v = self.cold_starts_loaded.clone();
        v.sort();
        v.get(v.len() / 2).copied()
    }

    fn list_p50(&self, name: &str, size: u64) -> Option<Duration> {
        self.rows
            .iter()
            .find(|r| r.list == Some(name) && r.size == Some(size))
            .map(|r| r.m.p50)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let sh = self.shape;
        let _ = writeln!(
            s,
            "Machine: {}, {} cores, Linux {}; load average {} before the run, {} after.",
            self.cpu, self.cores, self.kernel, self.load_before, self.load_after
        );
        let _ = writeln!(
            s,
            "Command: `{}`; fixed keep-alive connections per scenario (column conns), {:.1} s warm-up then {:.1} s measured (longer when a scenario needs it to count 20 answers); the baseline and the first size's get by id: the median of 3 rounds, alternating; the load generator runs on the same machine.",
            self.command,
            sh.warmup.as_secs_f64(),
            sh.duration.as_secs_f64()
        );
        if let Some(f) = self.fsync_per_second {
            let _ = writeln!(
                s,
                "Disk of the data folder: {f:.0} fsyncs per second (4 KiB write + fdatasync, one at a time)."
            );
        }
        match &self.database {
            Some(db) => {
                let _ = writeln!(
                    s,
                    "Database: PostgreSQL {}, a throwaway cluster on the same machine and disk, reached over {}; Agentry's pool: {} connections (`--db-pool-size`). Settings: {}. Server CPU / req is Agentry's process; PostgreSQL CPU / req is the postmaster and all its processes; disk writes / req are both together.",
                    db.version, db.reached_over, db.pool_size, db.settings
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "Database: SQLite (Agentry's default), in the data folder."
                );
            }
        }
        let pg = self.database.is_some();
        let _ = writeln!(s);
        if pg {
            let _ = writeln!(
                s,
                "| server | scenario | instances | conns | req/s | p50 | p99 | server CPU / req | PostgreSQL CPU / req | load generator CPU / req | disk writes / req | × baseline | × json-server |"
            );
            let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        } else {
            let _ = writeln!(
                s,
                "| server | scenario | instances | conns | req/s | p50 | p99 | server CPU / req | load generator CPU / req | disk writes / req | × baseline | × json-server |"
            );
            let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        }
        let base = self.baseline_rps();
        for r in &self.rows {
            let vs_base = base.map_or_else(
                || "".into(),
                |b| {
                    if r.server == "baseline" {
                        "1".into()
                    } else {
                        format!("{:.2}", r.m.rps / b)
                    }
                },
            );
            let vs_js = self
                .json_ratio(r)
                .map_or_else(String::new, |x| format!("{x:.0}"));
            let failed = if r.m.failed > 0 {
                format!(" ({} failed)", r.m.failed)
            } else {
                String::new()
            };
            let db_cpu = if !pg {
                String::new()
            } else if r.server == "agentry" {
                format!(
                    " {} |",
                    r.m.db_cpu_per_request.map_or_else(|| "?".into(), us)
                )
            } else {
                " |".into()
            };
            let disk = match (r.m.disk_per_request, r.m.db_disk_per_request) {
                (Some(a), Some(b)) => kb(a + b),
                (Some(a), None) => kb(a),
                _ => "?".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0}{failed} | {} | {} | {} |{db_cpu} {} | {disk} | {vs_base} | {vs_js} |",
                r.server,
                r.scenario,
                r.size.map_or_else(String::new, count),
                r.m.connections,
                r.m.rps,
                ms(r.m.p50),
                ms(r.m.p99),
                r.m.cpu_per_request.map_or_else(|| "?".into(), us),
                r.m.load_cpu_per_request.map_or_else(|| "?".into(), us),
            );
        }
        if let Some(why) = &self.json_server_skipped {
            let _ = writeln!(
                s,
                "| json-server | get by id, PATCH | | | skipped: {why} | | | | | |{} | | |",
                if pg { " |" } else { "" }
            );
        }

        if !self.client_backends.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "Replicas (`--replicas`), at the last size: the rows of 1 replica right before those of several `agentry serve` on the same database and data folder, each with the pool above, the connections spread round-robin over them; their server CPU and disk writes are summed over the processes:"
            );
            let _ = writeln!(s);
            for (n, connections) in &self.client_backends {
                let rows: Vec<&Row> = self
                    .rows
                    .iter()
                    .filter(|r| r.replicas == Some(*n))
                    .collect();
                let _ = writeln!(s, "{}", replica_line(*n, &rows, *connections));
            }
        }

        let _ = writeln!(s);
        let _ = writeln!(s, "Memory, start and loading:");
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "- Idle RSS, empty folder (after one request): {}; the baseline server: {}.",
            mb(self.idle_rss_empty),
            mb(self.baseline_rss)
        );
        for (n, rss, peak) in &self.rss_loaded {
            let when = if self.loaded_through_post {
                "right after loading"
            } else {
                "after the import, started again, first request answered"
            };
            let _ = writeln!(
                s,
                "- RSS {when} at {}: {} (peak {}).",
                count(*n),
                mb(*rss),
                mb(*peak)
            );
        }
        for (n, peak, last) in &self.rss_mixed {
            let _ = writeln!(
                s,
                "- RSS during the 90/10 get/PATCH mix at {} (sampled every 50 ms): peak {}, at its end {}.",
                count(*n),
                mb(Some(*peak)),
                mb(Some(*last))
            );
        }
        if let Some(&(_, n, _)) = self.loads.last() {
            let _ = writeln!(
                s,
                "- Idle RSS after a restart on {} instances (after one request): {}.",
                count(n),
                mb(self.idle_rss_loaded)
            );
        }
        if let Some(j) = self.json_server_rss {
            let _ = writeln!(s, "- json-server RSS after its runs: {}.", mb(Some(j)));
        }
        if let Some(d) = self.cold_start_empty {
            let _ = writeln!(
                s,
                "- Cold start to the first authenticated 200, empty folder: {}.",
                ms(d)
            );
        }
        if let Some(med) = self.median_cold_start() {
            let n = self.loads.last().map_or(0, |l| l.1);
            let all: Vec<String> = self.cold_starts_loaded.iter().map(|d| ms(*d)).collect();
            let _ = writeln!(
                s,
                "- Cold start to the first authenticated 200 on {} instances: median {} of {} starts (in order: {}).",
                count(n),
                ms(med),
                all.len(),
                all.join(", ")
            );
        }
        for (from, to, took) in &self.loads {
            if self.loaded_through_post {
                let _ = writeln!(
                    s,
                    "- Loading instances {}..{} (POST with a nested card manifest, {} connections): {:.1} s, {:.0} per second.",
                    count(*from),
                    count(*to),
                    self.loaders,
                    took.as_secs_f64(),
                    (to - from) as f64 / took.as_secs_f64()
                );
            } else {
                let objects = 2 * (to - from);
                let _ = writeln!(
                    s,
                    "- Loading instances {}..{} with their card manifests ({objects} objects) by `agentry import`: {:.1} s, {:.0} objects per second.",
                    count(*from),
                    count(*to),
                    took.as_secs_f64(),
                    objects as f64 / took.as_secs_f64()
                );
            }
        }
        if let Some((records, took)) = self.export {
            let _ = writeln!(
                s,
                "- `agentry export` of everything at the end ({records} records): {:.1} s, {:.0} objects per second.",
                took.as_secs_f64(),
                records as f64 / took.as_secs_f64()
            );
        }
        if self.posted_extra > 0 {
            let _ = writeln!(
                s,
                "- The POST scenario added {} instances that no filter matches.",
                self.posted_extra
            );
        }
        if let Some(d) = self.stop_time {
            let what = if pg {
                "Stop on SIGTERM"
            } else {
                "Stop on SIGTERM (checkpoint included)"
            };
            let _ = writeln!(s, "- {what}: {}.", ms(d));
        }
        if let Some(b) = self.db_bytes {
            let what = if pg {
                "PostgreSQL cluster (data and WAL)"
            } else {
                "Data folder"
            };
            let _ = writeln!(s, "- {what} on disk at the end: {}.", mb(Some(b)));
        }

        let _ = writeln!(s);
        let _ = writeln!(s, "Targets (checked here, never asserted in tests):");
        let _ = writeln!(s);
        let _ = writeln!(s, "| target | measured | verdict |");
        let _ = writeln!(s, "|---|---|---|");
        for t in self.targets() {
            let _ = writeln!(s, "| {} | {} | {} |", t.0, t.1, t.2);
        }
        s
    }

    /// (target, measured, verdict)
    pub fn targets(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let first = self.sizes.first().copied().unwrap_or(0);
        let last = self.sizes.last().copied().unwrap_or(0);
        let base = self.baseline_rps();
        // Issue 22 sets lower goals on PostgreSQL: another process, reached
        // over TCP, on the same 2 cores.
        let goals = if self.database.is_some() {
            [
                ("get", "Get by id ≥ 0.25× baseline (PostgreSQL)", 0.25),
                ("patch", "PATCH ≥ 0.1× baseline, durable (PostgreSQL)", 0.1),
            ]
        } else {
            [
                ("get", "Get by id ≥ 0.6× baseline (authenticated)", 0.6),
                ("patch", "PATCH ≥ 0.2× baseline, durable", 0.2),
            ]
        };
        for (what, label, goal) in goals {
            match (self.compared("agentry", what), base) {
                (Some(r), Some(b)) => {
                    let x = r.m.rps / b;
                    out.push((
                        label.into(),
                        format!("{x:.2}× ({:.0} / {b:.0} req/s)", r.m.rps),
                        verdict(x >= goal).into(),
                    ));
                }
                _ => out.push((label.into(), "not measured".into(), "n/a".into())),
            }
        }
        for (name, ..) in crate::data::filters() {
            let label = format!("list `{name}` p50 at 1M ≤ 3× p50 at 10k");
            match (self.list_p50(name, first), self.list_p50(name, last)) {
                (Some(a), Some(b)) if first != last => {
                    let x = b.as_secs_f64() / a.as_secs_f64();
                    let measured = format!(
                        "{x:.1}× ({} at {}, {} at {})",
                        ms(a),
                        count(first),
                        ms(b),
                        count(last)
                    );
                    let v = if first == 10_000 && last == 1_000_000 {
                        verdict(x <= 3.0).to_owned()
                    } else {
                        format!(
                            "n/a: needs 10k and 1M (`--full`); {} here",
                            if x <= 3.0 {
                                "within 3× so far"
                            } else {
                                "already over 3×"
                            }
                        )
                    };
                    out.push((label, measured, v));
                }
                _ => out.push((label, "not measured".into(), "n/a".into())),
            }
        }
        let get_1m = self
            .rows
            .iter()
            .find(|r| r.server == "agentry" && r.scenario == "get by id" && r.size == Some(last));
        let label = "Get by id at 1M ≥ 0.5× baseline";
        match (get_1m, base) {
            (Some(r), Some(b)) if last == 1_000_000 => {
                let x = r.m.rps / b;
                out.push((
                    label.into(),
                    format!("{x:.2}× ({:.0} / {b:.0} req/s)", r.m.rps),
                    verdict(x >= 0.5).into(),
                ));
            }
            _ => out.push((label.into(), "1M not measured".into(), "n/a".into())),
        }
        let label = "RSS under the 90/10 mix at 1M ≤ 200 MB";
        match self.rss_mixed.iter().find(|(n, ..)| *n == 1_000_000) {
            Some((_, peak, _)) => out.push((
                label.into(),
                format!("{} (peak)", mb(Some(*peak))),
                verdict(*peak <= 200_000_000).into(),
            )),
            None => out.push((label.into(), "1M not measured".into(), "n/a".into())),
        }
        let goal = if self.database.is_some() {
            20_000.0
        } else {
            50_000.0
        };
        let label = format!("`agentry import` ≥ {:.0}k objects/s at 1M", goal / 1000.0);
        let import_1m = self
            .loads
            .iter()
            .find(|(_, to, _)| *to == 1_000_000)
            .filter(|_| !self.loaded_through_post);
        let import_rate =
            import_1m.map(|(from, to, took)| 2.0 * (to - from) as f64 / took.as_secs_f64());
        match import_rate {
            Some(x) => out.push((
                label,
                format!("{x:.0} objects/s"),
                verdict(x >= goal).into(),
            )),
            None => out.push((label, "1M not imported".into(), "n/a".into())),
        }
        let label = "`agentry export` at least as fast as the import".to_owned();
        match (self.export, import_rate) {
            (Some((records, took)), Some(i)) => {
                let x = records as f64 / took.as_secs_f64();
                out.push((
                    label,
                    format!("{x:.0} against {i:.0} objects/s"),
                    verdict(x >= i).into(),
                ))
            }
            _ => out.push((label, "not measured at 1M".into(), "n/a".into())),
        }
        let slowest_start = self
            .median_cold_start()
            .into_iter()
            .chain(self.cold_start_empty)
            .max();
        match slowest_start {
            Some(d) => out.push((
                "Cold start < 50 ms".into(),
                format!("{} (the slower of empty and loaded folder, median)", ms(d)),
                verdict(d < Duration::from_millis(50)).into(),
            )),
            None => out.push((
                "Cold start < 50 ms".into(),
                "not measured".into(),
                "n/a".into(),
            )),
        }
        let idle = self
            .idle_rss_empty
            .into_iter()
            .chain(self.idle_rss_loaded)
            .max();
        match idle {
            Some(b) => out.push((
                "Idle RSS < 20 MB".into(),
                format!("{} (the larger of empty and loaded folder)", mb(Some(b))),
                verdict(b < 20_000_000).into(),
            )),
            None => out.push((
                "Idle RSS < 20 MB".into(),
                "not measured".into(),
                "n/a".into(),
            )),
        }
        for (what, label, goal) in [
            ("get", "≥ 20× json-server on get by id", 20.0),
            ("patch", "≥ 1,000× json-server on PATCH", 1000.0),
        ] {
            match (
                self.compared("agentry", what),
                self.compared("json-server", what),
            ) {
                (Some(a), Some(j)) => {
                    let x = a.m.rps / j.m.rps;
                    out.push((
                        label.into(),
                        format!(
                            "{x:.0}× ({:.0} / {:.0} req/s, {} objects)",
                            a.m.rps,
                            j.m.rps,
                            count(first)
                        ),
                        verdict(x >= goal).into(),
                    ));
                }
                _ => out.push((
                    label.into(),
                    "not measured (json-server skipped)".into(),
                    "n/a".into(),
                )),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(count(10_000), "10k");
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(1234), "1234");
        assert_eq!(ms(Duration::from_micros(412)), "0.41 ms");
        assert_eq!(ms(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(ms(Duration::from_millis(250)), "250 ms");
        assert_eq!(kb(0), "0 B");
        assert_eq!(kb(15_712), "15.7 kB");
    }

    /// One answered request on 32 connections, with the server's CPU and the
    /// database's (µs), and nothing else measured.
    fn measured(server: u64, db: Option<u64>) -> Measured {
        Measured {
            connections: 32,
            rps: 1000.0,
            p50: Duration::from_micros(500),
            p99: Duration::from_millis(2),
            cpu_per_request: Some(Duration::from_micros(server)),
            disk_per_request: None,
            db_cpu_per_request: db.map(Duration::from_micros),
            db_disk_per_request: None,
            load_cpu_per_request: None,
            ok: 1,
            failed: 0,
            first_failure: None,
        }
    }

    /// A report of a baseline and one Agentry row, on SQLite or on PostgreSQL.
    fn two_row_report(postgres: bool) -> Report {
        let cfg = Config {
            agentry: PathBuf::new(),
            json_server: None,
            json_server_missing: String::new(),
            self_exe: PathBuf::new(),
            sizes: vec![1000],
            shape: crate::load::Shape {
                connections: 32,
                warmup: Duration::ZERO,
                duration: Duration::from_secs(1),
            },
            list_connections: 4,
            loaders: 1,
            cold_starts: 1,
            work_dir: PathBuf::new(),
            fsync_probe: Duration::ZERO,
            postgres,
            pool_size: 16,
            postgres_socket: false,
            replicas: 1,
            load_through_post: false,
        };
        let mut report = Report::new(&cfg);
        if postgres {
            report.database = Some(Database {
                version: "15".into(),
                settings: "fsync=on".into(),
                pool_size: 16,
                reached_over: "loopback TCP",
            });
        }
        let m = |rps, server, db: Option<u64>, load| Measured {
            rps,
            disk_per_request: Some(0),
            db_disk_per_request: db.map(|_| 0),
            load_cpu_per_request: Some(Duration::from_micros(load)),
            ..measured(server, db)
        };
        report.rows.push(Row::measured(
            "baseline",
            "fixed 1 KB JSON, GET (the ceiling)",
            None,
            m(50_000.0, 18, None, 19),
        ));
        report.rows.push(Row::measured(
            "agentry",
            "get by id",
            Some(1000),
            m(25_000.0, 43, postgres.then_some(39), 29),
        ));
        report
    }

    #[test]
    fn each_row_of_the_table_has_a_cell_per_column_and_the_generators_cpu_in_its_own() {
        for postgres in [false, true] {
            let text = two_row_report(postgres).markdown();
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
            let cells = |line: &str| -> Vec<String> {
                line.trim_matches('|')
                    .split(" |")
                    .map(|c| c.trim().to_owned())
                    .collect()
            };
            let header = cells(lines[0]);
            let column = header
                .iter()
                .position(|c| c == "load generator CPU / req")
                .expect("the generator's column");
            assert_eq!(
                header[column - 1],
                if postgres {
                    "PostgreSQL CPU / req"
                } else {
                    "server CPU / req"
                }
            );
            let baseline = cells(lines[1]);
            let agentry = cells(lines[2]);
            assert_eq!(baseline.len(), header.len(), "{postgres}: {}", lines[1]);
            assert_eq!(agentry.len(), header.len(), "{postgres}: {}", lines[2]);
            assert_eq!(baseline[column], "19 µs");
            assert_eq!(agentry[column], "29 µs");
            assert_eq!(agentry[column + 1], "0 B", "disk writes follow");
        }
    }

    #[test]
    fn a_replica_line_names_each_scenario_with_both_cpus() {
        let get = Row::measured(
            "agentry",
            "get by id, 2 replicas",
            Some(3000),
            measured(90, Some(60)),
        );
        let mix = Row::measured(
            "agentry",
            "90% get / 10% PATCH, 2 replicas",
            Some(3000),
            measured(110, None),
        );
        assert_eq!(
            replica_line(2, &[&get, &mix], Some(32)),
            "- 2 replicas, 3k instances: Agentry CPU / req (summed over the processes): \
             get by id 90 µs, 90% get / 10% PATCH 110 µs; PostgreSQL CPU / req: get by id 60 µs, \
             90% get / 10% PATCH ?; PostgreSQL client connections after the mix: 32."
        );
        let one = Row::measured(
            "agentry",
            "get by id, 1 replica (same minute)",
            Some(3000),
            measured(80, Some(50)),
        );
        assert!(replica_line(1, &[&one], None).starts_with(
            "- 1 replica (same minute), 3k instances: Agentry CPU / req: get by id 80 µs;"
        ));
    }
}
