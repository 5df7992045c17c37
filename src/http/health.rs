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
    let text = app.metrics().render(&app.store().stats());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
