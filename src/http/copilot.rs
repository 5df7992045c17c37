//! `/beta/copilot`: Copilot admin settings. `policySettings/{id}` resolves a
//! setting to the tenant-level policy that holds it (see
//! [`crate::domain::copilot::resolve`]); `limitedMode` and
//! `enhancedPersonalization` are plain per-tenant objects. The containers
//! (`/copilot`, `/copilot/admin`, ...) and the `policySettings` collection
//! have no documented methods and answer 405.

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Keys, Meta, ODataQuery};
use super::request::RequestMeta;
use super::respond;
use super::routes::Copilot;
use crate::auth::Principal;
use crate::auth::permissions::{Action, authorize};
use crate::domain::WriteContext;
use crate::domain::copilot::{self, SettingView, TenantSetting, catalog};
use crate::odata::{ODataError, QueryOptions};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, any, on};
use serde_json::{Map, Value};

const SETTING_TYPE: &str = "microsoft.graph.copilotPolicySetting";
const SETTING_PROPERTIES: &[&str] = &["id", "value", "policyId"];

type Result<T = Response> = std::result::Result<T, ApiError>;

/// The handler of each operation of this module, for `method`. The other
/// methods of these paths answer [`method_not_allowed`].
pub fn handler(op: Copilot, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Copilot::GetPolicySetting => on(method, get_policy_setting),
        Copilot::UpdatePolicySetting => on(method, patch_policy_setting),
        // Served under `/beta` and `/v1.0`.
        Copilot::GetLimitedMode => on(method, get_limited_mode),
        Copilot::UpdateLimitedMode => on(method, patch_limited_mode),
        Copilot::GetEnhancedPersonalization => on(method, get_enhanced_personalization),
        Copilot::UpdateEnhancedPersonalization => on(method, patch_enhanced_personalization),
    }
}

/// A path that exists but has no documented method.
pub fn container() -> MethodRouter<AppState> {
    any(method_not_allowed)
}

/// Graph's answer to a method a Copilot path does not document.
pub async fn method_not_allowed() -> ApiError {
    ApiError::CopilotMethodNotAllowed
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

/// Checks the options of a single-object GET: `$select` of known properties only.
fn single_object(q: &QueryOptions, type_name: &'static str, properties: &[&str]) -> Result<()> {
    q.for_single_entity()?;
    if let Some(e) = q.expand.first() {
        return Err(ODataError::UnknownNavigation {
            property: e.navigation.clone(),
            type_name,
        }
        .into());
    }
    for name in q.select.iter().flatten() {
        if name != "*" && !properties.contains(&name.as_str()) {
            return Err(ODataError::UnknownProperty {
                property: name.clone(),
                type_name,
            }
            .into());
        }
    }
    Ok(())
}

/// `{"@odata.context", "@odata.type", ...properties}`.
fn object_response(context: String, type_name: &str, props: Map<String, Value>) -> Response {
    let mut body = Map::new();
    body.insert("@odata.context".into(), context.into());
    body.insert("@odata.type".into(), format!("#{type_name}").into());
    body.extend(props);
    respond::json(StatusCode::OK, Value::Object(body).to_string())
}

fn setting_response(meta: &RequestMeta, q: &QueryOptions, view: &SettingView) -> Response {
    let context = format!(
        "{}/$metadata#copilot/admin/policySettings{}/$entity",
        meta.service_root(),
        q.context_projection()
    );
    let props = respond::project(view.to_map(), q.select.as_deref());
    object_response(context, SETTING_TYPE, props)
}

// ---------------------------------------------------------------- policySettings

async fn get_policy_setting(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    authorize(&p, Action::GetPolicySetting)?;
    catalog::supported(&id)?;
    single_object(&q.options, SETTING_TYPE, SETTING_PROPERTIES)?;
    let policies = app.store().list_policies(&p.tenant_id).await?;
    let view = copilot::resolve_read(&id, &policies, &app.copilot_rules())?;
    Ok(setting_response(&meta, &q.options, &view))
}

async fn patch_policy_setting(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    body: std::result::Result<JsonBody, ApiError>,
) -> Result {
    authorize(&p, Action::UpdatePolicySetting)?;
    // An unsupported id is reported before anything about the body.
    catalog::supported(&id)?;
    let JsonBody(body) = body?;
    let rules = app.copilot_rules();
    let write = copilot::parse_setting_patch(&id, body, &rules)?;
    let view = app
        .store()
        .write_policy_setting(&p.tenant_id, write, rules, &write_context(&app, &p))
        .await?;
    Ok(setting_response(&meta, &QueryOptions::default(), &view))
}

// ---------------------------------------------------------------- plain settings objects

async fn get_tenant_setting(
    app: &AppState,
    meta: &RequestMeta,
    p: &Principal,
    q: &ODataQuery,
    kind: TenantSetting,
) -> Result {
    let defaults = kind.defaults();
    let names: Vec<&str> = defaults.keys().map(String::as_str).collect();
    single_object(&q.options, kind.type_name(), &names)?;
    let stored = app.store().get_tenant_setting(&p.tenant_id, kind).await?;
    let doc = kind.apply(stored, &Map::new());
    let context = format!(
        "{}/$metadata#{}{}/$entity",
        meta.service_root(),
        kind.context_path(),
        q.options.context_projection()
    );
    let props = respond::project(doc, q.options.select.as_deref());
    Ok(object_response(context, kind.type_name(), props))
}

async fn patch_tenant_setting(
    app: &AppState,
    meta: &RequestMeta,
    p: &Principal,
    body: Value,
    kind: TenantSetting,
) -> Result {
    let patch = kind.parse_patch(body)?;
    let doc = app
        .store()
        .patch_tenant_setting(&p.tenant_id, kind, patch, &write_context(app, p))
        .await?;
    let context = format!(
        "{}/$metadata#{}/$entity",
        meta.service_root(),
        kind.context_path()
    );
    Ok(object_response(context, kind.type_name(), doc))
}

async fn get_limited_mode(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    authorize(&p, Action::GetLimitedMode)?;
    get_tenant_setting(&app, &meta, &p, &q, TenantSetting::LimitedMode).await
}

async fn patch_limited_mode(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    _q: ODataQuery,
    JsonBody(body): JsonBody,
) -> Result {
    authorize(&p, Action::UpdateLimitedMode)?;
    patch_tenant_setting(&app, &meta, &p, body, TenantSetting::LimitedMode).await
}

/// Enhanced personalization also accepts application tokens, as documented.
async fn get_enhanced_personalization(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    authorize(&p, Action::GetEnhancedPersonalization)?;
    get_tenant_setting(&app, &meta, &p, &q, TenantSetting::EnhancedPersonalization).await
}

async fn patch_enhanced_personalization(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    _q: ODataQuery,
    JsonBody(body): JsonBody,
) -> Result {
    authorize(&p, Action::UpdateEnhancedPersonalization)?;
    patch_tenant_setting(
        &app,
        &meta,
        &p,
        body,
        TenantSetting::EnhancedPersonalization,
    )
    .await
}
