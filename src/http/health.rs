//! Probes and metrics for operators, outside `/beta` and without a token:
//! `/healthz` (the process answers), `/readyz` (the database answers) and
//! `/metrics` (Prometheus text; route templates and counts, no tenant data).

use super::AppState;
use super::error::ApiError;
use super::respond;
use super::routes::Health;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::json;

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Health, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Health::Liveness => on(method, healthz),
        Health::Readiness => on(method, readyz),
        Health::Metrics => on(method, metrics),
    }
}

async fn healthz() -> Response {
    respond::plain_json(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> Response {
    match app.store().ping().await {
        Ok(()) => respond::plain_json(StatusCode::OK, &json!({"status": "ready"})),
        Err(e) => ApiError::NotReady(e.to_string()).into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let mut text = app.metrics().render(&app.store().stats());
    watch_metrics(&app, &mut text).await;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The watched agents by state (from the database, so every replica tells
/// the same), and the checks this process made by outcome.
async fn watch_metrics(app: &AppState, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP agentry_watched_agents Watched agents by the state of their last check, over every tenant."
    );
    let _ = writeln!(out, "# TYPE agentry_watched_agents gauge");
    let counts = match app.store().health_counts().await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: watched agents could not be counted");
            Vec::new()
        }
    };
    for state in crate::watch::Health::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| s == state.as_str())
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "agentry_watched_agents{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP agentry_agent_checks_total Checks of watched agents made by this process, by outcome."
    );
    let _ = writeln!(out, "# TYPE agentry_agent_checks_total counter");
    for (outcome, n) in app.watcher().counts() {
        let _ = writeln!(
            out,
            "agentry_agent_checks_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
}
