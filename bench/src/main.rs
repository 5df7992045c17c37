//! `agentry-bench`: the benchmark harness of Agentry.
//!
//! - `agentry-bench baseline`: the ceiling server (axum, fixed 1 KB JSON).
//! - `agentry-bench run --agentry PATH`: every scenario, then the table and
//!   the targets. `bench/run.sh` builds everything and calls this.

mod baseline;
mod data;
mod driver;
mod load;
mod postgres;
mod procs;
mod report;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "agentry-bench",
    about = "Benchmarks Agentry against a baseline and json-server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a fixed 1 KB JSON body on every path (the ceiling).
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Run every scenario and print the table.
    Run(Box<RunArgs>),
    /// Load one URL of a running server (to profile one scenario by hand).
    Hit(HitArgs),
    /// Write instances `from..to` with their card manifests as an `agentry
    /// import` file (what the harness loads).
    ExportFile {
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long)]
        to: u64,
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct HitArgs {
    /// `http://127.0.0.1:PORT/path?query`
    url: String,
    /// Sent as `Authorization: Bearer TOKEN`.
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = "GET")]
    method: String,
    /// A JSON body to send.
    #[arg(long)]
    body: Option<String>,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Replace `{n}` in the URL with a random instance number below N
    /// (formatted as the harness names instances, `0000042`), also in the
    /// body, and `{r}` in the body with a number that grows with every request.
    #[arg(long)]
    random_ids: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The agentry binary to measure (a release build).
    #[arg(long)]
    agentry: PathBuf,
    /// json-server's executable (node_modules/.bin/json-server); skipped when absent.
    #[arg(long)]
    json_server: Option<PathBuf>,
    /// Why json-server is absent, for the report.
    #[arg(long, default_value = "json-server is not installed")]
    json_server_missing: String,
    /// A few seconds in all: small sizes, short runs (for CI).
    #[arg(long, conflicts_with = "full")]
    smoke: bool,
    /// Also measure at 1M instances (loading takes several minutes).
    #[arg(long)]
    full: bool,
    /// Instance counts to measure at, ascending (overrides --smoke and --full).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Concurrent keep-alive connections per scenario.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of warm-up before each measurement [default: 1, smoke 0.2].
    #[arg(long)]
    warmup: Option<f64>,
    /// Seconds measured per scenario [default: 5, smoke 0.5].
    #[arg(long)]
    duration: Option<f64>,
    /// Concurrent keep-alive connections of the filtered-list scenarios.
    #[arg(long, default_value_t = 4)]
    list_connections: usize,
    /// Concurrent connections that load the data.
    #[arg(long, default_value_t = 64)]
    loaders: usize,
    /// Restarts on the loaded folder to time [default: 5, smoke 2].
    #[arg(long)]
    cold_starts: Option<usize>,
    /// Scratch folder for the data folders and logs (removed afterwards unless --keep).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the scratch folder.
    #[arg(long)]
    keep: bool,
    /// Also write the report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Run Agentry on PostgreSQL: a throwaway cluster started in the work
    /// folder from /usr/lib/postgresql/*/bin, deleted at the end.
    #[arg(long)]
    postgres: bool,
    /// Agentry's connection pool on PostgreSQL (`agentry serve --db-pool-size`).
    #[arg(long, default_value_t = 16)]
    db_pool_size: usize,
    /// With --postgres: Agentry reaches the cluster through its Unix socket
    /// instead of loopback TCP.
    #[arg(long, requires = "postgres")]
    postgres_socket: bool,
    /// With --postgres: after the sizes, measure get by id, PATCH and the
    /// 90/10 mix at the last size on 1 Agentry process, then on N processes
    /// sharing the database and the data folder (the connections spread
    /// round-robin over them); max_connections allows N pools [default: 1,
    /// no replica rows].
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// Load the instances through POST with `--loaders` connections instead
    /// of `agentry import` (slower: minutes at 1M).
    #[arg(long)]
    load_through_post: bool,
    /// The command line to record in the report.
    #[arg(long, default_value = "bench/run.sh")]
    command: String,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Baseline { listen } => match baseline::serve(&listen) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Run(args) => run(*args),
        Command::Hit(args) => hit(args),
        Command::ExportFile { from, to, output } => {
            let written = std::fs::File::create(&output).and_then(|f| {
                let mut out = std::io::BufWriter::new(f);
                data::write_export(&mut out, from, to)?;
                std::io::Write::flush(&mut out)
            });
            match written {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write {}: {e}", output.display());
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

fn hit(args: HitArgs) -> std::process::ExitCode {
    let Some(rest) = args.url.strip_prefix("http://") else {
        eprintln!("only http:// URLs");
        return std::process::ExitCode::FAILURE;
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(addr) = host.parse() else {
        eprintln!("the host must be IP:PORT");
        return std::process::ExitCode::FAILURE;
    };
    let Ok(method) = args.method.parse::<hyper::Method>() else {
        eprintln!("unknown method {}", args.method);
        return std::process::ExitCode::FAILURE;
    };
    let call = load::Call {
        method,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.to_owned()
        },
        body: args.body,
    };
    let target = load::Target {
        addr,
        authorization: args.token.map(|t| format!("Bearer {t}")),
        replicas: Vec::new(),
    };
    let shape = load::Shape {
        connections: args.connections.max(1),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ids = args.random_ids.filter(|n| *n > 0);
    let revision = std::sync::atomic::AtomicU64::new(1);
    let make: load::MakeCall = std::sync::Arc::new(move |rng| {
        let mut call = call.clone();
        if let Some(n) = ids {
            let id = format!("{:07}", rng.below(n));
            call.path = call.path.replace("{n}", &id);
            let r = revision.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            call.body = call
                .body
                .map(|b| b.replace("{n}", &id).replace("{r}", &r.to_string()));
        }
        call
    });
    let out = runtime.block_on(load::run(&target, shape, make, |s| s.is_success(), 1));
    println!(
        "{:.0} req/s, p50 {:?}, p99 {:?}, {} ok, {} failed{}",
        out.throughput(),
        out.percentile(0.5),
        out.percentile(0.99),
        out.ok,
        out.failed,
        out.first_failure
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default()
    );
    std::process::ExitCode::SUCCESS
}

fn run(args: RunArgs) -> std::process::ExitCode {
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.smoke {
        vec![1_000, 3_000]
    } else if args.full {
        vec![10_000, 100_000, 1_000_000]
    } else {
        vec![10_000, 100_000]
    };
    if sizes.is_empty() || sizes.windows(2).any(|w| w[0] >= w[1]) || sizes[0] == 0 {
        eprintln!("--sizes must be positive and ascending");
        return std::process::ExitCode::FAILURE;
    }
    if args.replicas.is_some() && !args.postgres {
        eprintln!(
            "--replicas needs --postgres: replicas share one PostgreSQL database \
             (a SQLite file belongs to one process)"
        );
        return std::process::ExitCode::FAILURE;
    }
    let replicas = args.replicas.unwrap_or(1);
    if replicas == 0 {
        eprintln!("--replicas must be at least 1");
        return std::process::ExitCode::FAILURE;
    }
    let secs = |v: Option<f64>, normal: f64, smoke: f64| {
        Duration::from_secs_f64(v.unwrap_or(if args.smoke { smoke } else { normal }))
    };
    let work_dir = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("agentry-bench-{}", std::process::id()))
    });
    let cfg = driver::Config {
        agentry: args.agentry.clone(),
        json_server: args.json_server.clone(),
        json_server_missing: args.json_server_missing.clone(),
        self_exe: std::env::current_exe().expect("the running program has a path"),
        sizes,
        shape: load::Shape {
            connections: args.connections.max(1),
            warmup: secs(args.warmup, 1.0, 0.2),
            duration: secs(args.duration, 5.0, 0.5),
        },
        list_connections: args.list_connections.max(1),
        loaders: args.loaders.max(1),
        cold_starts: args
            .cold_starts
            .unwrap_or(if args.smoke { 2 } else { 5 })
            .max(1),
        work_dir: work_dir.clone(),
        fsync_probe: secs(None, 1.0, 0.2),
        postgres: args.postgres,
        pool_size: args.db_pool_size.max(1),
        postgres_socket: args.postgres_socket,
        replicas,
        load_through_post: args.load_through_post,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(driver::run(cfg));
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            // The scratch folder stays: its logs say what happened.
            eprintln!("[bench] failed: {e}");
            eprintln!("[bench] the logs are in {}", work_dir.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    report.load_after = report::load_average();
    report.command = args.command.clone();
    let text = report.markdown();
    println!("{text}");
    if let Some(path) = &args.markdown
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("[bench] cannot write {}: {e}", path.display());
    }
    let problems = report.problems();
    if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        for p in problems {
            eprintln!("[bench] broken scenario: {p}");
        }
        std::process::ExitCode::FAILURE
    }
}
