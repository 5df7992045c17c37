//! `/_agentry/copilot/policies`: the control API that manages the Copilot
//! policy model (list, create, get, update, delete). Not a Graph API: bodies
//! are plain JSON policies, but refusals are Graph error envelopes. Callers
//! need an application token with the role `Agentry.Admin`.

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Keys, Meta};
use super::respond;
use crate::auth::Principal;
use crate::auth::permissions::{Action, authorize};
use crate::domain::WriteContext;
use crate::domain::copilot::{CopilotError, parse_new_policy, parse_policy_patch};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

type Result<T = Response> = std::result::Result<T, ApiError>;

/// Routes under `/_agentry/copilot`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list).post(create))
        .route("/policies/{id}", get(read).patch(update).delete(remove))
}

fn require_admin(p: &Principal) -> Result<()> {
    authorize(p, Action::Control)?;
    Ok(())
}

fn write_context(app: &AppState, caller: &Principal) -> WriteContext {
    WriteContext {
        now: app.now(),
        actor: caller.actor_id().map(str::to_owned),
    }
}

async fn list(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    let policies = app.store().list_policies(&p.tenant_id).await?;
    let value: Vec<Value> = policies.iter().map(|p| p.to_json()).collect();
    Ok(respond::plain_json(
        StatusCode::OK,
        &json!({ "value": value }),
    ))
}

async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let rules = app.copilot_rules();
    let policy = parse_new_policy(body, rules.strict_values, &write_context(&app, &p))?;
    let policy = app.store().create_policy(&p.tenant_id, policy).await?;
    let mut response = respond::plain_json(StatusCode::CREATED, &policy.to_json());
    let key = percent_encoding::utf8_percent_encode(&policy.id, percent_encoding::NON_ALPHANUMERIC);
    let location = format!("{}/_agentry/copilot/policies/{key}", meta.origin);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn read(State(app): State<AppState>, Caller(p): Caller, Keys(id): Keys<String>) -> Result {
    require_admin(&p)?;
    let policy = app
        .store()
        .get_policy(&p.tenant_id, &id)
        .await?
        .ok_or(CopilotError::PolicyNotFound(id))?;
    Ok(respond::plain_json(StatusCode::OK, &policy.to_json()))
}

async fn update(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let patch = parse_policy_patch(&id, body)?;
    let policy = app
        .store()
        .update_policy(
            &p.tenant_id,
            &id,
            patch,
            app.copilot_rules(),
            &write_context(&app, &p),
        )
        .await?;
    Ok(respond::plain_json(StatusCode::OK, &policy.to_json()))
}

async fn remove(State(app): State<AppState>, Caller(p): Caller, Keys(id): Keys<String>) -> Result {
    require_admin(&p)?;
    app.store().delete_policy(&p.tenant_id, &id).await?;
    Ok(respond::no_content())
}
