//! The whole run: the baseline, Agentry at each size, cold starts, memory,
//! json-server, then the table and the targets.

use crate::data;
use crate::load::{self, Call, Client, MakeCall, Outcome, Shape, Target};
use crate::postgres::Cluster;
use crate::procs::anyhow_lite::{Result, err};
use crate::procs::{self, Server};
use crate::report::{Measured, Report, Row};
use hyper::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Config {
    pub agentry: PathBuf,
    /// `node_modules/.bin/json-server`, when installed.
    pub json_server: Option<PathBuf>,
    pub json_server_missing: String,
    /// This program, to start the baseline server.
    pub self_exe: PathBuf,
    pub sizes: Vec<u64>,
    pub shape: Shape,
    /// Connections of the list scenarios (each answer can take long at 1M).
    pub list_connections: usize,
    /// Connections that load data.
    pub loaders: usize,
    pub cold_starts: usize,
    pub work_dir: PathBuf,
    pub fsync_probe: Duration,
    /// Run Agentry on a throwaway PostgreSQL cluster instead of SQLite.
    pub postgres: bool,
    /// Agentry's `--db-pool-size` on PostgreSQL.
    pub pool_size: usize,
    /// Reach PostgreSQL through its Unix socket instead of loopback TCP.
    pub postgres_socket: bool,
    /// Agentry processes on the one PostgreSQL database in the replica
    /// scenarios after the sizes (1: none).
    pub replicas: usize,
    /// Load instances through POST (as clients would) instead of `agentry import`.
    pub load_through_post: bool,
}

/// The Copilot policy setting the harness reads and writes.
const COPILOT_SETTING: &str =
    "/beta/copilot/admin/policySettings/microsoft.copilot.copilotchatpinning";

/// Which answers a scenario counts as served.
type Expect = fn(StatusCode) -> bool;

fn ok_200(s: StatusCode) -> bool {
    s == StatusCode::OK
}
fn ok_201(s: StatusCode) -> bool {
    s == StatusCode::CREATED
}
fn ok_204(s: StatusCode) -> bool {
    s == StatusCode::NO_CONTENT
}
fn ok_200_204(s: StatusCode) -> bool {
    s == StatusCode::OK || s == StatusCode::NO_CONTENT
}
fn ok_2xx(s: StatusCode) -> bool {
    s.is_success()
}

fn progress(what: &str) {
    eprintln!("[bench] {what}");
}

/// Rounds of get by id (and of the baseline between them) at the first size.
const PAIRED_ROUNDS: usize = 3;

/// The measurement of median throughput.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs.swap_remove(runs.len() / 2)
}

/// Runs the load against `server` and measures its CPU time meanwhile.
async fn measure(
    server: &Server,
    target: &Target,
    shape: Shape,
    make: MakeCall,
    expect: Expect,
) -> Result<Measured> {
    measure_all(&[server], target, shape, make, expect).await
}

/// Runs the load against `target` (the addresses of `servers`, replicas on
/// one database) and measures the CPU time and disk writes of all of them
/// together meanwhile, and of the first one's database.
async fn measure_all(
    servers: &[&Server],
    target: &Target,
    shape: Shape,
    make: MakeCall,
    expect: Expect,
) -> Result<Measured> {
    let db = servers[0].database_pid;
    let cpu = || {
        servers
            .iter()
            .map(|s| s.cpu_time())
            .sum::<Option<Duration>>()
    };
    let disk = || servers.iter().map(|s| s.disk_writes()).sum::<Option<u64>>();
    let cpu_before = cpu();
    let disk_before = disk();
    let db_cpu_before = db.and_then(procs::tree_cpu_time);
    let db_disk_before = db.and_then(procs::tree_disk_writes);
    let own = || procs::cpu_time(std::process::id());
    let own_before = own();
    let out: Outcome = load::run(target, shape, make, expect, 0x5EED).await;
    let own_after = own();
    let cpu_after = cpu();
    let disk_after = disk();
    let db_cpu_after = db.and_then(procs::tree_cpu_time);
    let db_disk_after = db.and_then(procs::tree_disk_writes);
    if let Some(server) = servers.iter().find(|s| !s.alive()) {
        return Err(err(format!(
            "the server (pid {}) stopped during this scenario; see its log (run with --keep). \
             Was it sent a signal from outside, e.g. a kill by process name?",
            server.pid()
        )));
    }
    let per_request = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
        (Some(a), Some(b)) if out.all > 0 => Some(b.saturating_sub(a) / out.all as u32),
        _ => None,
    };
    let bytes_per_request = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(a), Some(b)) if out.all > 0 => Some(b.saturating_sub(a) / out.all),
        _ => None,
    };
    let mut m = Measured::from_outcome(&out, shape.connections, per_request(cpu_before, cpu_after));
    m.disk_per_request = bytes_per_request(disk_before, disk_after);
    m.load_cpu_per_request = per_request(own_before, own_after);
    if db.is_some() {
        m.db_cpu_per_request = per_request(db_cpu_before, db_cpu_after);
        m.db_disk_per_request = bytes_per_request(db_disk_before, db_disk_after);
    }
    Ok(m)
}

/// Get by id of a random instance below `size`.
fn get_by_id(size: u64) -> MakeCall {
    Arc::new(move |rng| Call::get(data::path(rng.below(size))))
}

/// PATCH `displayName` of a random instance below `size`.
fn patch_display_name(size: u64, revision: Arc<AtomicU64>) -> MakeCall {
    Arc::new(move |rng| rename(rng.below(size), &revision))
}

/// 90% get by id, 10% PATCH `displayName`, of random instances below `size`.
fn get_patch_mix(size: u64, revision: Arc<AtomicU64>) -> MakeCall {
    Arc::new(move |rng| {
        let n = rng.below(size);
        if rng.below(10) == 0 {
            rename(n, &revision)
        } else {
            Call::get(data::path(n))
        }
    })
}

/// PATCH of instance `n`'s `displayName`, to a name not given before.
fn rename(n: u64, revision: &AtomicU64) -> Call {
    Call::with_body(
        Method::PATCH,
        data::path(n),
        data::rename(n, revision.fetch_add(1, Ordering::Relaxed)),
    )
}

/// Starts Agentry on `data_dir` and returns it once an authenticated request
/// has answered 200, with the time from spawn to that answer.
async fn start_agentry(
    cfg: &Config,
    data_dir: &Path,
    pg: Option<&Cluster>,
    token: &str,
    tag: &str,
) -> Result<(Server, Duration)> {
    let log = cfg.work_dir.join(format!("agentry-{tag}.log"));
    let mut args = procs::agentry_args(data_dir);
    if let Some(pg) = pg {
        args.extend([
            "--database-url".into(),
            pg.url(cfg.postgres_socket),
            "--db-pool-size".into(),
            cfg.pool_size.to_string(),
        ]);
    }
    let began = Instant::now();
    let mut server = procs::spawn("agentry", &cfg.agentry, &args, &[], &log).await?;
    server.database_pid = pg.and_then(Cluster::postmaster_pid);
    let target = Target {
        addr: server.addr,
        authorization: Some(format!("Bearer {token}")),
        replicas: Vec::new(),
    };
    let probe = Call::get(format!("{}?$top=1", data::API));
    loop {
        match load::once(&target, &probe).await {
            Ok((s, _)) if s == StatusCode::OK => break,
            Ok((s, body)) if began.elapsed() > Duration::from_secs(30) => {
                return Err(err(format!(
                    "Agentry answers {s} to {}: {}",
                    probe.path,
                    String::from_utf8_lossy(&body)
                )));
            }
            Err(e) if began.elapsed() > Duration::from_secs(30) => {
                return Err(err(format!("Agentry does not answer: {e}")));
            }
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    Ok((server, began.elapsed()))
}

/// Sends `make(n)` for every `n` in `from..to` with `loaders` concurrent
/// connections; the first answer other than `expect` (or failed request)
/// stops the lot. `what` names the work in errors.
async fn send_all(
    target: &Target,
    from: u64,
    to: u64,
    loaders: usize,
    make: Arc<dyn Fn(u64) -> Call + Send + Sync>,
    expect: StatusCode,
    what: &'static str,
) -> Result<Duration> {
    let next = Arc::new(AtomicU64::new(from));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..loaders {
        let next = next.clone();
        let make = make.clone();
        let mut client = Client::new(target.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= to {
                    return Ok(());
                }
                let call = make(n);
                match client.call(&call).await {
                    Ok((s, _)) if s == expect => {}
                    Ok((s, body)) => {
                        return Err(err(format!(
                            "{what}: {} {} answered {s}: {}",
                            call.method,
                            call.path,
                            String::from_utf8_lossy(&body)
                        )));
                    }
                    Err(e) => {
                        return Err(err(format!("{what}: {} {}: {e}", call.method, call.path)));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| err(e.to_string()))??;
    }
    Ok(began.elapsed())
}

/// Creates instances `from..to` with `loaders` concurrent connections.
async fn load_instances(target: &Target, from: u64, to: u64, loaders: usize) -> Result<Duration> {
    let make = Arc::new(|n| Call::with_body(Method::POST, data::API, data::instance(n)));
    send_all(
        target,
        from,
        to,
        loaders,
        make,
        StatusCode::CREATED,
        "loading instances",
    )
    .await
}

/// Loads instances `from..to` with their card manifests into the stopped
/// server's database with `agentry import` of a file written beforehand
/// (the writing not timed); the import's time.
fn import_instances(
    cfg: &Config,
    data_dir: &Path,
    pg: Option<&Cluster>,
    from: u64,
    to: u64,
) -> Result<Duration> {
    let file = cfg.work_dir.join("import.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    data::write_export(&mut out, from, to)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    let took = procs::agentry_transfer(
        &cfg.agentry,
        data_dir,
        pg.map(|pg| pg.url(cfg.postgres_socket)).as_deref(),
        &["import", "--input", &file.display().to_string()],
    );
    let _ = std::fs::remove_file(&file);
    took
}

/// The object records of an export file (its lines less header and trailer).
fn count_records(file: &Path) -> Result<u64> {
    use std::io::BufRead;
    let lines = std::io::BufReader::new(std::fs::File::open(file)?)
        .lines()
        .count() as u64;
    Ok(lines.saturating_sub(2))
}

/// The Graph path of an absolute link Agentry gave (`http://…/beta/…`).
fn link_path(link: &str) -> Result<String> {
    let at = link
        .find("/beta/")
        .ok_or_else(|| err(format!("odd link {link}")))?;
    Ok(link[at..].to_owned())
}

/// GETs `path`, expecting 200 and a JSON body.
async fn get_json(target: &Target, path: &str) -> Result<serde_json::Value> {
    let (status, body) = load::once(target, &Call::get(path)).await?;
    if status != StatusCode::OK {
        return Err(err(format!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| err(format!("{path}: {e}")))
}

/// Checks one filtered page before timing it: 200 and a full page of 100.
async fn check_list(target: &Target, path: &str) -> Result<usize> {
    let v = get_json(target, path).await?;
    Ok(v["value"].as_array().map_or(0, Vec::len))
}

/// Checks one `$batch` of `gets` gets by id before timing it: the batch's
/// 200 alone would hide inner answers that failed.
async fn check_batch(target: &Target, gets: u64, size: u64) -> Result<()> {
    let call = Call::with_body(
        Method::POST,
        "/beta/$batch",
        data::batch_of_gets(0, gets, size),
    );
    let (status, body) = load::once(target, &call).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let inner = v["responses"].as_array().map_or(&[][..], Vec::as_slice);
    let all_ok = inner.iter().all(|r| r["status"] == 200);
    if status != StatusCode::OK || inner.len() as u64 != gets || !all_ok {
        return Err(err(format!(
            "a $batch of {gets} gets answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(600)])
        )));
    }
    Ok(())
}

/// Every instance as Agentry serves it, page by page.
async fn export_instances(target: &Target) -> Result<Vec<serde_json::Value>> {
    let mut client = Client::new(target.clone());
    let mut path = format!("{}?$top=999", data::API);
    let mut all = Vec::new();
    loop {
        let (status, body) = client.call(&Call::get(&path)).await?;
        if status != StatusCode::OK {
            return Err(err(format!("exporting: {path} answered {status}")));
        }
        let mut v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| err(e.to_string()))?;
        if let Some(items) = v["value"].as_array_mut() {
            all.append(items);
        }
        match v["@odata.nextLink"].as_str() {
            Some(next) => path = link_path(next)?,
            None => return Ok(all),
        }
    }
}

pub async fn run(cfg: Config) -> Result<Report> {
    let mut report = Report::new(&cfg);
    std::fs::create_dir_all(&cfg.work_dir)?;
    let shape = cfg.shape;

    progress("probing the disk's fsync rate");
    report.fsync_per_second = procs::fsync_rate(&cfg.work_dir, cfg.fsync_probe).ok();

    // The database, when not SQLite: a cluster of our own, stopped and
    // deleted when `pg` is dropped, whichever way this function returns.
    let pg = if cfg.postgres {
        progress("PostgreSQL: creating and starting a throwaway cluster");
        let cluster = Cluster::start(&cfg.work_dir, cfg.pool_size, cfg.replicas)?;
        report.database = Some(crate::report::Database {
            version: cluster.version.clone(),
            settings: crate::postgres::summary(&cluster.settings),
            pool_size: cfg.pool_size,
            reached_over: if cfg.postgres_socket {
                "its Unix socket"
            } else {
                "loopback TCP"
            },
        });
        Some(cluster)
    } else {
        None
    };

    // 1. The ceiling.
    progress("baseline: fixed 1 KB JSON");
    let baseline = procs::spawn(
        "baseline",
        &cfg.self_exe,
        &["baseline".into(), "--listen".into(), "127.0.0.1:0".into()],
        &[],
        &cfg.work_dir.join("baseline.log"),
    )
    .await?;
    let baseline_target = Target {
        addr: baseline.addr,
        authorization: None,
        replicas: Vec::new(),
    };
    let baseline_call: MakeCall = Arc::new(|_| Call::get("/beta/agentRegistry/agentInstances/x"));
    // The baseline stays up until the first size's get by id, whose rounds
    // alternate with its own: both are measured in the same minute, so a
    // change in the machine's load moves both.
    let mut baseline_runs = vec![
        measure(
            &baseline,
            &baseline_target,
            shape,
            baseline_call.clone(),
            ok_200,
        )
        .await?,
    ];
    report.baseline_rss = baseline.rss();
    report.push(Row::measured(
        "baseline",
        "fixed 1 KB JSON, GET (the ceiling)",
        None,
        baseline_runs[0].clone(),
    ));
    let mut baseline = Some(baseline);

    // 2. Agentry on a fresh folder.
    let data_dir = cfg.work_dir.join("agentry-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir)?;
    let token = procs::mint_token(&cfg.agentry, &data_dir)?;
    progress("Agentry: cold start on an empty folder");
    let (mut server, first) = start_agentry(&cfg, &data_dir, pg.as_ref(), &token, "fresh").await?;
    report.cold_start_empty = Some(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.idle_rss_empty = server.rss();
    let mut target = Target {
        addr: server.addr,
        authorization: Some(format!("Bearer {token}")),
        replicas: Vec::new(),
    };

    let mut loaded = 0u64;
    let mut json_docs = None;
    let posted = Arc::new(AtomicU64::new(0));
    let revision = Arc::new(AtomicU64::new(1));
    let first_size = cfg.sizes[0];
    for &size in &cfg.sizes {
        progress(&format!("Agentry: loading instances {loaded}..{size}"));
        let took = if cfg.load_through_post {
            match load_instances(&target, loaded, size, cfg.loaders).await {
                Ok(took) => took,
                Err(e) => return Err(explain(&server, e).await),
            }
        } else {
            // Stopped, loaded with `agentry import`, started again.
            server.stop(Duration::from_secs(60)).await?;
            let took = import_instances(&cfg, &data_dir, pg.as_ref(), loaded, size)?;
            let tag = format!("loaded-{size}");
            server = start_agentry(&cfg, &data_dir, pg.as_ref(), &token, &tag)
                .await?
                .0;
            target.addr = server.addr;
            took
        };
        report.loads.push((loaded, size, took));
        loaded = size;
        report
            .rss_loaded
            .push((size, server.rss(), server.peak_rss()));

        for (name, filter, modulus, residue) in data::filters() {
            let path = data::list_path(&filter);
            let n = match check_list(&target, &path).await {
                Ok(n) => n,
                Err(e) => return Err(explain(&server, e).await),
            };
            let expected = data::matching(size, modulus, residue).min(100) as usize;
            if n != expected {
                return Err(err(format!(
                    "{path} gave {n} items at {size} instances, expected {expected}"
                )));
            }
            progress(&format!("Agentry: list $filter={filter} at {size}"));
            let p = path.clone();
            let list_shape = Shape {
                connections: cfg.list_connections,
                ..shape
            };
            let m = measure(
                &server,
                &target,
                list_shape,
                Arc::new(move |_| Call::get(p.clone())),
                ok_200,
            )
            .await?;
            report.push(
                Row::measured("agentry", &format!("list: {name}, $top=100"), Some(size), m)
                    .list(name),
            );
        }

        progress(&format!("Agentry: get by id at {size}"));
        let get = get_by_id(size);
        let m = match baseline.take() {
            // The first size: rounds alternating with the baseline, the
            // medians of each kept.
            Some(base) => {
                let mut gets = Vec::new();
                for round in 0..PAIRED_ROUNDS {
                    if round > 0 {
                        let b = measure(
                            &base,
                            &baseline_target,
                            shape,
                            baseline_call.clone(),
                            ok_200,
                        );
                        baseline_runs.push(b.await?);
                    }
                    gets.push(measure(&server, &target, shape, get.clone(), ok_200).await?);
                }
                base.stop(Duration::from_secs(2)).await?;
                report.rows[0].m = median(baseline_runs.clone());
                median(gets)
            }
            None => measure(&server, &target, shape, get, ok_200).await?,
        };
        report.push(Row::measured("agentry", "get by id", Some(size), m).compare("get"));

        if size == first_size {
            json_docs = Some(export_instances(&target).await?);
        }

        progress(&format!("Agentry: PATCH displayName at {size}"));
        let make = patch_display_name(size, revision.clone());
        let m = measure(&server, &target, shape, make, ok_204).await?;
        let row = Row::measured("agentry", "PATCH displayName (durable)", Some(size), m);
        report.push(if size == first_size {
            row.compare("patch")
        } else {
            row
        });

        progress(&format!("Agentry: 90/10 get/PATCH at {size}"));
        let make = get_patch_mix(size, revision.clone());
        // The server's resident memory, sampled every 50 ms meanwhile.
        let pid = server.pid();
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let on = sampling.clone();
        let sampler = tokio::spawn(async move {
            let (mut peak, mut last) = (0u64, 0u64);
            while on.load(Ordering::Relaxed) {
                if let Some(rss) = procs::rss_of(pid) {
                    peak = peak.max(rss);
                    last = rss;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (peak, last)
        });
        let m = measure(&server, &target, shape, make, ok_200_204).await?;
        sampling.store(false, Ordering::Relaxed);
        let (peak, last) = sampler.await.map_err(|e| err(e.to_string()))?;
        report.rss_mixed.push((size, peak, last));
        report.push(Row::measured(
            "agentry",
            "90% get / 10% PATCH",
            Some(size),
            m,
        ));

        if size != first_size {
            continue;
        }

        progress(&format!("Agentry: POST create at {size}"));
        let p = posted.clone();
        let make: MakeCall = Arc::new(move |_| {
            Call::with_body(
                Method::POST,
                data::API,
                data::extra_instance(p.fetch_add(1, Ordering::Relaxed)),
            )
        });
        let m = measure(&server, &target, shape, make, ok_201).await?;
        report.push(Row::measured(
            "agentry",
            "POST create (with a card manifest)",
            Some(size),
            m,
        ));

        for gets in [10, 20] {
            progress(&format!("Agentry: $batch of {gets} gets at {size}"));
            check_batch(&target, gets, size).await?;
            let make: MakeCall = Arc::new(move |rng| {
                Call::with_body(
                    Method::POST,
                    "/beta/$batch",
                    data::batch_of_gets(rng.below(size), gets, size),
                )
            });
            let m = measure(&server, &target, shape, make, ok_200).await?;
            report.push(Row::measured(
                "agentry",
                &format!("$batch of {gets} gets by id"),
                Some(size),
                m,
            ));
        }

        // A delta round: a link taken now, 1k instance changes, then the
        // first page of the round that link reports (100 changes). Reads
        // only, so the link's window stays the same for every request.
        progress(&format!(
            "Agentry: delta round after {} changes at {size}",
            data::DELTA_CHANGES
        ));
        let v = get_json(&target, &data::delta_latest_path()).await?;
        let link = v["@odata.deltaLink"]
            .as_str()
            .ok_or_else(|| err(format!("no @odata.deltaLink in {v}")))
            .and_then(link_path)?;
        let r = revision.clone();
        let make = Arc::new(move |k: u64| rename(k % size, &r));
        let changing = send_all(
            &target,
            0,
            data::DELTA_CHANGES,
            cfg.loaders,
            make,
            StatusCode::NO_CONTENT,
            "changing instances",
        );
        if let Err(e) = changing.await {
            return Err(explain(&server, e).await);
        }
        let v = get_json(&target, &link).await?;
        let n = v["value"].as_array().map_or(0, Vec::len);
        if n == 0 || v["@odata.nextLink"].as_str().is_none() {
            return Err(err(format!(
                "{link} gave {n} changes and no next link after {} changes",
                data::DELTA_CHANGES
            )));
        }
        let make: MakeCall = Arc::new(move |_| Call::get(link.clone()));
        let m = measure(&server, &target, shape, make, ok_200).await?;
        report.push(Row::measured(
            "agentry",
            "delta round after 1k changes (first page of 100)",
            Some(size),
            m,
        ));

        // Copilot settings: the first PATCH creates the tenant-level policy,
        // later ones write into it; GET resolves the setting across policies.
        progress("Agentry: Copilot policy setting PATCH and GET");
        let make: MakeCall = Arc::new(move |rng| {
            Call::with_body(
                Method::PATCH,
                COPILOT_SETTING,
                format!("{{\"value\":\"{}\"}}", rng.below(2)),
            )
        });
        let m = measure(&server, &target, shape, make, ok_200).await?;
        report.push(Row::measured(
            "agentry",
            "Copilot policy setting PATCH (durable)",
            None,
            m,
        ));
        let make: MakeCall = Arc::new(move |_| Call::get(COPILOT_SETTING));
        let m = measure(&server, &target, shape, make, ok_200).await?;
        report.push(Row::measured(
            "agentry",
            "Copilot policy setting GET",
            None,
            m,
        ));
    }
    report.posted_extra = posted.load(Ordering::Relaxed);

    // Replicas: get by id, PATCH and the mix at the last size on the one
    // server, then right after (so both in the same minute) on `replicas`
    // servers on the same database and data folder (so the same keys), the
    // load's connections spread round-robin over them.
    if let Some(cluster) = pg.as_ref().filter(|_| cfg.replicas > 1) {
        let (n, size) = (cfg.replicas, loaded);
        let scenarios: [(&str, MakeCall, Expect); 3] = [
            ("get by id", get_by_id(size), ok_200),
            (
                "PATCH displayName (durable)",
                patch_display_name(size, revision.clone()),
                ok_204,
            ),
            (
                "90% get / 10% PATCH",
                get_patch_mix(size, revision.clone()),
                ok_200_204,
            ),
        ];
        for (name, make, expect) in &scenarios {
            progress(&format!("Agentry: {name} at {size}, 1 replica"));
            let m = measure(&server, &target, shape, make.clone(), *expect).await?;
            let scenario = format!("{name}, 1 replica (same minute)");
            report.push(Row::measured("agentry", &scenario, Some(size), m).replicas(1));
        }
        report.client_backends.push((1, client_backends(cluster)));
        let mut more = Vec::new();
        for i in 1..n {
            progress(&format!("Agentry: starting replica {} of {n}", i + 1));
            let tag = format!("replica-{i}");
            more.push(
                start_agentry(&cfg, &data_dir, Some(cluster), &token, &tag)
                    .await?
                    .0,
            );
        }
        let all: Vec<&Server> = std::iter::once(&server).chain(&more).collect();
        let spread = Target {
            replicas: more.iter().map(|s| s.addr).collect(),
            ..target.clone()
        };
        for (name, make, expect) in scenarios {
            progress(&format!("Agentry: {name} at {size}, {n} replicas"));
            let m = measure_all(&all, &spread, shape, make, expect).await?;
            let scenario = format!("{name}, {n} replicas");
            report.push(Row::measured("agentry", &scenario, Some(size), m).replicas(n));
        }
        report.client_backends.push((n, client_backends(cluster)));
        progress("Agentry: stopping the replicas but the first");
        for s in more {
            s.stop(Duration::from_secs(60)).await?;
        }
    }

    // Agent 365 registrations: created during their POST scenario, then
    // read by id and listed by managing application.
    progress("Agentry: registration POST, get by id and list");
    let registered = Arc::new(AtomicU64::new(0));
    let r = registered.clone();
    let make: MakeCall = Arc::new(move |_| {
        Call::with_body(
            Method::POST,
            data::REGISTRATIONS,
            data::registration(r.fetch_add(1, Ordering::Relaxed)),
        )
    });
    let m = measure(&server, &target, shape, make, ok_201).await?;
    report.push(Row::measured(
        "agentry",
        "registration POST create (durable)",
        None,
        m,
    ));
    // Only registrations whose create was answered 201 are read.
    let created = registered
        .load(Ordering::Relaxed)
        .saturating_sub(shape.connections as u64)
        .max(1);
    let make: MakeCall =
        Arc::new(move |rng| Call::get(data::registration_path(rng.below(created))));
    let m = measure(&server, &target, shape, make, ok_200).await?;
    report.push(Row::measured(
        "agentry",
        "registration get by id",
        Some(created),
        m,
    ));
    let path = data::registration_list_path();
    let make: MakeCall = Arc::new(move |_| Call::get(path.clone()));
    let m = measure(&server, &target, shape, make, ok_200).await?;
    report.push(Row::measured(
        "agentry",
        "registration list: managedByAppId, $top=100",
        Some(created),
        m,
    ));

    // The Agent 365 package catalog: loaded once through the control plane,
    // then listed with the server's default filter (agents only).
    progress(&format!(
        "Agentry: loading {} packages, then the package list",
        data::PACKAGE_COUNT
    ));
    let admin_token = procs::mint_admin_token(&cfg.agentry, &data_dir)?;
    let admin = Target {
        addr: server.addr,
        authorization: Some(format!("Bearer {admin_token}")),
        replicas: Vec::new(),
    };
    let make = Arc::new(|k| Call::with_body(Method::POST, data::PACKAGE_LOADS, data::package(k)));
    let loading = send_all(
        &admin,
        0,
        data::PACKAGE_COUNT,
        cfg.loaders,
        make,
        StatusCode::CREATED,
        "loading packages",
    );
    if let Err(e) = loading.await {
        return Err(explain(&server, e).await);
    }
    let n = check_list(&target, data::PACKAGES).await?;
    let expected = data::agent_packages(data::PACKAGE_COUNT).min(100) as usize;
    if n != expected {
        return Err(err(format!(
            "{} gave {n} packages, expected {expected}",
            data::PACKAGES
        )));
    }
    let make: MakeCall = Arc::new(move |_| Call::get(data::PACKAGES));
    let m = measure(&server, &target, shape, make, ok_200).await?;
    report.push(Row::measured(
        "agentry",
        "package list: default filter (agents), first page of 100",
        Some(data::PACKAGE_COUNT),
        m,
    ));

    // 3. Cold starts on the loaded folder.
    progress("Agentry: stopping (SIGTERM)");
    let stop_began = Instant::now();
    server.stop(Duration::from_secs(60)).await?;
    report.stop_time = Some(stop_began.elapsed());
    progress("Agentry: agentry export of everything");
    let file = cfg.work_dir.join("export.jsonl");
    let took = procs::agentry_transfer(
        &cfg.agentry,
        &data_dir,
        pg.as_ref().map(|pg| pg.url(cfg.postgres_socket)).as_deref(),
        &["export", "--output", &file.display().to_string()],
    )?;
    let records = count_records(&file)?;
    let _ = std::fs::remove_file(&file);
    report.export = Some((records, took));
    let mut starts = Vec::new();
    for i in 0..cfg.cold_starts {
        progress(&format!(
            "Agentry: cold start {} on {loaded} instances",
            i + 1
        ));
        let (s, took) = start_agentry(
            &cfg,
            &data_dir,
            pg.as_ref(),
            &token,
            &format!("restart-{i}"),
        )
        .await?;
        starts.push(took);
        server = s;
        if i + 1 == cfg.cold_starts {
            tokio::time::sleep(Duration::from_millis(500)).await;
            report.idle_rss_loaded = server.rss();
        }
        server.stop(Duration::from_secs(60)).await?;
    }
    report.cold_starts_loaded = starts;
    report.db_bytes = match &pg {
        Some(cluster) => dir_size(cluster.folder()),
        None => dir_size(&data_dir),
    };
    if let Some(cluster) = pg {
        progress("PostgreSQL: stopping and deleting the cluster");
        drop(cluster);
    }

    // 4. json-server with the same instances.
    match (&cfg.json_server, json_docs) {
        (Some(bin), Some(docs)) => {
            let count = docs.len() as u64;
            let db = cfg.work_dir.join("json-server-db.json");
            let text = serde_json::to_string_pretty(&serde_json::json!({ "agentInstances": docs }))
                .map_err(|e| err(e.to_string()))?;
            std::fs::write(&db, text)?;
            progress(&format!("json-server: {count} instances"));
            let port = free_port()?;
            let js = procs::spawn_polled(
                "json-server",
                bin,
                &[
                    db.display().to_string(),
                    "--port".into(),
                    port.to_string(),
                    "--quiet".into(),
                ],
                ([127, 0, 0, 1], port).into(),
                &format!("/agentInstances/{}", data::id(0)),
                &cfg.work_dir.join("json-server.log"),
            )
            .await?;
            target = Target {
                addr: js.addr,
                authorization: None,
                replicas: Vec::new(),
            };
            let m = measure(
                &js,
                &target,
                shape,
                Arc::new(move |rng| {
                    Call::get(format!("/agentInstances/{}", data::id(rng.below(count))))
                }),
                ok_200,
            )
            .await?;
            report.push(Row::measured("json-server", "get by id", Some(count), m).compare("get"));
            let revision = Arc::new(AtomicU64::new(1));
            let make: MakeCall = Arc::new(move |rng| {
                let n = rng.below(count);
                Call::with_body(
                    Method::PATCH,
                    format!("/agentInstances/{}", data::id(n)),
                    data::rename(n, revision.fetch_add(1, Ordering::Relaxed)),
                )
            });
            let m = measure(&js, &target, shape, make, ok_2xx).await?;
            report.push(
                Row::measured("json-server", "PATCH displayName", Some(count), m).compare("patch"),
            );
            report.json_server_rss = js.rss();
            js.stop(Duration::from_secs(5)).await?;
        }
        _ => {
            progress(&format!(
                "json-server: skipped ({})",
                cfg.json_server_missing
            ));
            report.json_server_skipped = Some(cfg.json_server_missing.clone());
        }
    }
    Ok(report)
}

/// PostgreSQL's client connections (Agentry's pools, as far as they have
/// opened), this query's own left out; none when the query fails.
fn client_backends(cluster: &Cluster) -> Option<u64> {
    let query = "SELECT count(*) FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";
    match cluster.psql("postgres", query) {
        Ok(n) => n.parse().ok(),
        Err(e) => {
            progress(&format!("PostgreSQL: cannot count the connections: {e}"));
            None
        }
    }
}

/// Adds to an error that the server is gone, when it is (a server stopping
/// on a signal refuses connections a moment before it exits).
async fn explain(
    server: &Server,
    e: crate::procs::anyhow_lite::Error,
) -> crate::procs::anyhow_lite::Error {
    for _ in 0..20 {
        if !server.alive() {
            return err(format!(
                "{e}; the server (pid {}) has stopped: see its log. \
                 Was it sent a signal from outside, e.g. a kill by process name?",
                server.pid()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    e
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn dir_size(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Some(total)
}
