//! `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! written here: a few counters and histograms need no library.

use crate::store::StoreStats;
use axum::http::Method;
use foldhash::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Method labels; clients may send any method token, so the set is bounded.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// What is counted for one method and route template.
#[derive(Default)]
struct Series {
    /// Requests by status.
    statuses: Vec<(u16, u64)>,
    latency: Histogram,
}

/// One series as rendered: method label, route, requests by status, latency.
type SeriesRow = (&'static str, String, Vec<(u16, u64)>, Histogram);

#[derive(Default)]
pub struct Metrics {
    /// Per method (indexes of [`METHODS`]): route template → its series.
    /// A request after the first of its route allocates nothing.
    series: Mutex<[HashMap<Box<str>, Series>; METHODS.len()]>,
    faults: AtomicU64,
    throttled: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().expect("metrics poisoned");
        let routes = &mut series[method_index(method)];
        let s = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.into()).or_default(),
        };
        match s.statuses.iter_mut().find(|(st, _)| *st == status) {
            Some((_, n)) => *n += 1,
            None => s.statuses.push((status, 1)),
        }
        let h = &mut s.latency;
        h.count += 1;
        h.sum += seconds;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
    }

    /// Every series, sorted by method label and route, with sorted statuses.
    fn snapshot(&self) -> Vec<SeriesRow> {
        let series = self.series.lock().expect("metrics poisoned");
        let mut out: Vec<_> = METHODS
            .iter()
            .zip(series.iter())
            .flat_map(|(method, routes)| {
                routes.iter().map(|(route, s)| {
                    let mut statuses = s.statuses.clone();
                    statuses.sort_unstable();
                    (*method, route.to_string(), statuses, s.latency.clone())
                })
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }

    pub fn fault_injected(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }

    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, store: &StoreStats) -> String {
        let series = self.snapshot();
        let mut out = String::new();
        let w = &mut out;
        header(
            w,
            "agentry_http_requests_total",
            "counter",
            "HTTP requests by method, route template and status.",
        );
        for (method, route, statuses, _) in &series {
            for (status, n) in statuses {
                let _ = writeln!(
                    w,
                    "agentry_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        header(
            w,
            "agentry_http_request_duration_seconds",
            "histogram",
            "Time from receiving a request to its response, by method and route template.",
        );
        for (method, route, _, h) in &series {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    w,
                    "agentry_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                w,
                "agentry_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                w,
                "agentry_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                w,
                "agentry_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let simple = [
            (
                "agentry_faults_injected_total",
                "counter",
                "Requests answered with an error by a fault rule.",
                self.faults.load(Ordering::Relaxed),
            ),
            (
                "agentry_throttled_requests_total",
                "counter",
                "Requests refused with 429 by throttling mode.",
                self.throttled.load(Ordering::Relaxed),
            ),
            (
                "agentry_db_idle_read_connections",
                "gauge",
                "Read connections idle in the pool.",
                store.idle_readers,
            ),
            (
                "agentry_db_queued_writes",
                "gauge",
                "Write jobs waiting for the single writer.",
                store.queued_writes,
            ),
            (
                "agentry_db_write_jobs_total",
                "counter",
                "Write jobs run by the writer.",
                store.write_jobs,
            ),
            (
                "agentry_db_guarded_writes_total",
                "counter",
                "PATCHes written as one statement guarded by the version read.",
                store.guarded_writes,
            ),
            (
                "agentry_db_guarded_fallbacks_total",
                "counter",
                "Guarded PATCHes run again with the row locked (changed meanwhile, or more than one statement).",
                store.guarded_fallbacks,
            ),
        ];
        for (name, kind, help, value) in simple {
            header(w, name, kind, help);
            let _ = writeln!(w, "{name} {value}");
        }
        header(
            w,
            "agentry_db_write_batch_size",
            "histogram",
            "Write jobs committed together per transaction (group commit).",
        );
        for (bound, n) in &store.batch_size_buckets {
            let _ = writeln!(
                w,
                "agentry_db_write_batch_size_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            w,
            "agentry_db_write_batch_size_bucket{{le=\"+Inf\"}} {}",
            store.write_batches
        );
        let _ = writeln!(w, "agentry_db_write_batch_size_sum {}", store.write_jobs);
        let _ = writeln!(
            w,
            "agentry_db_write_batch_size_count {}",
            store.write_batches
        );
        out
    }
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

/// Label values escape backslash, quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_counters_histograms_and_store_figures() {
        let m = Metrics::default();
        m.observe(
            &Method::GET,
            "/beta/agentRegistry/agentInstances/{id}",
            200,
            0.003,
        );
        m.observe(
            &Method::GET,
            "/beta/agentRegistry/agentInstances/{id}",
            200,
            0.2,
        );
        m.observe(
            &Method::GET,
            "/beta/agentRegistry/agentInstances/{id}",
            404,
            0.1,
        );
        m.observe(&Method::from_bytes(b"BREW").unwrap(), "unmatched", 405, 0.1);
        let stats = StoreStats {
            idle_readers: 2,
            batch_size_buckets: vec![(1, 4), (2, 5)],
            write_batches: 5,
            write_jobs: 6,
            guarded_fallbacks: 3,
            ..StoreStats::default()
        };
        let text = m.render(&stats);
        assert!(text.contains(
            "agentry_http_requests_total{method=\"GET\",route=\"/beta/agentRegistry/agentInstances/{id}\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains(
            "agentry_http_requests_total{method=\"GET\",route=\"/beta/agentRegistry/agentInstances/{id}\",status=\"404\"} 1"
        ), "{text}");
        assert!(
            text.contains(
                "agentry_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"405\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("agentry_db_idle_read_connections 2"));
        assert!(text.contains("agentry_db_write_batch_size_bucket{le=\"2\"} 5"));
        assert!(text.contains("agentry_db_guarded_fallbacks_total 3"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
