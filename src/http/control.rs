//! `/_agentry`: the control plane (see `docs/control-plane.md`). Not a Graph
//! API: bodies are plain JSON, but refusals are Graph error envelopes.
//! Callers need `Agentry.Admin` (an application's role, or a Global
//! Administrator's delegated scope), and everything acts on the caller's
//! tenant only.
//!
//! - `/_agentry/copilot/policies`: the Copilot policy model (CRUD).
//! - `/_agentry/reset`, `/_agentry/snapshot`: wipe, export, restore a tenant.
//! - `/_agentry/faults`: fault rules ([`super::faults`]).
//! - `/_agentry/requests`: the request journal ([`super::journal`]).
//! - `/_agentry/registry/migrate`: instances into registrations ([`crate::successor`]).
//! - `/_agentry/a2a/settings`: the tenant's A2A settings ([`settings`]).

use super::AppState;
use super::a2a_admin;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Keys, Meta};
use super::faults::{self, NewRule};
use super::journal::{self, Filter};
use super::respond;
use super::routes::Control;
use crate::auth::Principal;
use crate::auth::permissions::{Action, authorize};
use crate::domain::WriteContext;
use crate::domain::a2a::settings;
use crate::domain::copilot::TenantSetting;
use crate::domain::copilot::{CopilotError, parse_new_policy, parse_policy_patch};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Value, json};

type Result<T = Response> = std::result::Result<T, ApiError>;

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Control, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Control::ListPolicies => on(method, list),
        Control::CreatePolicy => on(method, create),
        Control::GetPolicy => on(method, read),
        Control::UpdatePolicy => on(method, update),
        Control::DeletePolicy => on(method, remove),
        Control::Reset => on(method, reset),
        Control::ExportSnapshot => on(method, export_snapshot),
        Control::RestoreSnapshot => on(method, restore_snapshot),
        Control::ListFaults => on(method, list_faults),
        Control::AddFault => on(method, add_fault),
        Control::ClearFaults => on(method, clear_faults),
        Control::RemoveFault => on(method, remove_fault),
        Control::ListRequests => on(method, requests),
        Control::ClearRequests => on(method, clear_requests),
        Control::RequestsHar => on(method, requests_har),
        Control::MigrateRegistry => on(method, migrate_registry),
        Control::GetA2aSettings => on(method, get_a2a_settings),
        Control::UpdateA2aSettings => on(method, update_a2a_settings),
        Control::ListA2aAgents => on(method, list_a2a_agents),
        Control::CheckAgentsNow => on(method, check_agents_now),
    }
}

/// Makes every agent of the tenant due for a check now (202: the checks
/// run in the background); 400 when the tenant does not watch.
async fn check_agents_now(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    if !app.a2a(&p.tenant_id).await?.watch.enabled {
        return Err(crate::domain::DomainError::NotWatching.into());
    }
    app.watcher()
        .check_now(app.store(), &p.tenant_id, &app.now())
        .await?;
    let mut response = respond::no_content();
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// `GET /_agentry/a2a/agents?health=&signature=&validation=&top=&cursor=`:
/// with `health`, the watched agents in that state; otherwise the
/// registrations, by their card's signature and validation annotations.
async fn list_a2a_agents(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    uri: Uri,
) -> Result {
    require_admin(&p)?;
    let q = a2a_admin::AgentQuery::parse(uri.query())?;
    let body = a2a_admin::list(&app, &meta, &p.tenant_id, &q).await?;
    Ok(respond::plain_json(StatusCode::OK, &body))
}

/// The tenant's A2A settings in effect ([`crate::domain::a2a::settings::view`]).
async fn get_a2a_settings(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    let doc = app
        .store()
        .get_tenant_setting(&p.tenant_id, TenantSetting::A2a)
        .await?;
    let view = settings::view(doc.as_ref(), app.a2a_defaults());
    Ok(respond::plain_json(StatusCode::OK, &view))
}

/// Merges the body into the tenant's A2A settings (audited).
async fn update_a2a_settings(
    State(app): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let patch = settings::parse_patch(body)?;
    let doc = app
        .store()
        .patch_tenant_setting(
            &p.tenant_id,
            TenantSetting::A2a,
            patch,
            &write_context(&app, &p),
        )
        .await?;
    app.watcher().remember(
        &p.tenant_id,
        settings::resolve(Some(&doc), app.a2a_defaults()),
    );
    let view = settings::view(Some(&doc), app.a2a_defaults());
    Ok(respond::plain_json(StatusCode::OK, &view))
}

/// Copies the tenant's instances into registrations; the report says what
/// was (or, with `{"dryRun": true}`, would be) done to each.
async fn migrate_registry(
    State(app): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let Value::Object(options) = body else {
        return Err(crate::domain::DomainError::NotAnObject.into());
    };
    let mut dry_run = false;
    for (key, value) in options {
        match (key.as_str(), value) {
            ("dryRun", Value::Bool(b)) => dry_run = b,
            ("dryRun", _) => {
                return Err(crate::domain::DomainError::WrongType {
                    property: key,
                    expected: "a boolean",
                }
                .into());
            }
            _ => {
                return Err(crate::domain::DomainError::UnknownProperty {
                    property: key,
                    type_name: "the migration's options",
                }
                .into());
            }
        }
    }
    let report =
        crate::successor::migrate_tenant(app.store(), &p.tenant_id, &app.now(), dry_run).await?;
    let value = serde_json::to_value(&report)
        .map_err(|e| ApiError::Internal(format!("migration report: {e}")))?;
    Ok(respond::plain_json(StatusCode::OK, &value))
}

async fn reset(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    let now = app.now();
    app.store()
        .import_tenant(
            &p.tenant_id,
            crate::store::TenantState::default(),
            crate::store::ImportMode::Replace,
            &now,
        )
        .await?;
    audit(&app, &p, "Reset tenant", "Delete", None).await?;
    Ok(respond::no_content())
}

/// Records a control-plane action in the audit log (after it, in a
/// transaction of its own).
async fn audit(
    app: &AppState,
    p: &Principal,
    activity: &str,
    operation_type: &'static str,
    target: Option<&str>,
) -> Result<()> {
    let event = crate::domain::audit::control_event(activity, operation_type, target);
    app.store()
        .record_event(&p.tenant_id, event, &write_context(app, p))
        .await?;
    Ok(())
}

async fn export_snapshot(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    let snapshot = crate::seed::export(app.store(), &p.tenant_id).await?;
    let value = serde_json::to_value(&snapshot)
        .map_err(|e| ApiError::Internal(format!("snapshot serialisation: {e}")))?;
    Ok(respond::plain_json(StatusCode::OK, &value))
}

async fn restore_snapshot(
    State(app): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let file: crate::seed::SeedFile = serde_json::from_value(body).map_err(|e| {
        ApiError::InvalidControlRequest(format!("the snapshot does not have the seed format: {e}"))
    })?;
    let mut tenants = file.tenants.into_values();
    let (Some(seed), None) = (tenants.next(), tenants.next()) else {
        return Err(ApiError::InvalidControlRequest(
            "a snapshot to restore holds exactly one tenant under 'tenants'".into(),
        ));
    };
    let now = app.now();
    let report = crate::seed::restore(app.store(), &p.tenant_id, &seed, app.copilot_rules(), &now)
        .await
        .map_err(|e| match e {
            crate::seed::RestoreError::Invalid(i) => ApiError::InvalidSnapshot(i),
            crate::seed::RestoreError::Store(s) => ApiError::Store(s),
        })?;
    audit(&app, &p, "Restore tenant snapshot", "Update", None).await?;
    Ok(respond::plain_json(
        StatusCode::OK,
        &json!({ "tenantId": p.tenant_id, "created": report.created }),
    ))
}

async fn list_faults(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    Ok(respond::plain_json(
        StatusCode::OK,
        &faults::to_json(&app.faults().list(&p.tenant_id)),
    ))
}

async fn add_fault(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    require_admin(&p)?;
    let rule: NewRule = serde_json::from_value(body)
        .map_err(|e| ApiError::InvalidControlRequest(format!("not a fault rule: {e}")))?;
    let rule = app.faults().add(rule.validate(&p.tenant_id)?)?;
    audit(&app, &p, "Add fault rule", "Add", Some(&rule.id)).await?;
    let mut response = respond::plain_json(
        StatusCode::CREATED,
        &serde_json::to_value(&rule).unwrap_or(Value::Null),
    );
    let location = format!("{}/_agentry/faults/{}", meta.origin, rule.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn remove_fault(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    require_admin(&p)?;
    if !app.faults().remove(&p.tenant_id, &id) {
        return Err(ApiError::FaultRuleNotFound(id));
    }
    audit(&app, &p, "Remove fault rule", "Delete", Some(&id)).await?;
    Ok(respond::no_content())
}

async fn clear_faults(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    app.faults().clear(&p.tenant_id);
    audit(&app, &p, "Clear fault rules", "Delete", None).await?;
    Ok(respond::no_content())
}

async fn requests(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    uri: Uri,
) -> Result {
    require_admin(&p)?;
    let (filter, format) = Filter::parse(uri.query())?;
    let entries = app.journal().entries(&p.tenant_id, &filter);
    match format.as_deref() {
        None | Some("json") => Ok(respond::plain_json(
            StatusCode::OK,
            &journal::to_json(&entries),
        )),
        Some("har") => Ok(respond::plain_json(
            StatusCode::OK,
            &journal::to_har(&entries, &meta.origin),
        )),
        Some(other) => Err(ApiError::InvalidControlRequest(format!(
            "unknown format '{other}'; use json or har"
        ))),
    }
}

async fn requests_har(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    uri: Uri,
) -> Result {
    require_admin(&p)?;
    let (filter, _) = Filter::parse(uri.query())?;
    let entries = app.journal().entries(&p.tenant_id, &filter);
    Ok(respond::plain_json(
        StatusCode::OK,
        &journal::to_har(&entries, &meta.origin),
    ))
}

async fn clear_requests(State(app): State<AppState>, Caller(p): Caller) -> Result {
    require_admin(&p)?;
    app.journal().clear(&p.tenant_id);
    Ok(respond::no_content())
}

fn require_admin(p: &Principal) -> Result<()> {
    authorize(p, Action::Control)?;
    Ok(())
}

fn write_context(app: &AppState, caller: &Principal) -> WriteContext {
    WriteContext {
        now: app.now(),
        actor: caller.actor_id().map(str::to_owned),
        if_match: None,
        scope: Default::default(),
        initiator: Some(super::request::initiator(caller)),
        card_validation: Default::default(),
        card_signatures: Default::default(),
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
    let policy = app
        .store()
        .create_policy(&p.tenant_id, policy, &write_context(&app, &p))
        .await?;
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
    app.store()
        .delete_policy(&p.tenant_id, &id, &write_context(&app, &p))
        .await?;
    Ok(respond::no_content())
}
