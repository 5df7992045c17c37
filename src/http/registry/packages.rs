//! `/copilot/admin/catalog/packages`, the Agent 365 package catalog (beta,
//! and list and get on v1.0): lists show agents unless the caller filters
//! on `elementTypes`, and show each package as `copilotPackage`; a get
//! answers with the whole `copilotPackageDetail`. Graph changes access,
//! blocking and owner only; packages are loaded through the control plane
//! (and seed files and snapshots), which also removes them.

use super::sets::Set;
use super::{Result, created, expected_version, require, write_context};
use crate::auth::Principal;
use crate::auth::permissions::{Action, Grant, authorize};
use crate::domain::WriteContext;
use crate::domain::packages::{self, AGENT_ELEMENT_TYPES};
use crate::domain::schema::{COPILOT_PACKAGE, PACKAGE_SUMMARY};
use crate::http::AppState;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta};
use crate::http::respond;
use crate::odata::filter::{self, Expr};
use crate::store::Entity;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value};

/// The catalog for the shared handlers ([`super::sets`]); its delete is
/// the control plane's.
pub(super) struct Packages;

impl Set for Packages {
    const ENTITY: Entity = Entity::Package;
    const LIST: Action = Action::ListPackages;
    const GET: Action = Action::GetPackage;
    const DELETE: Action = Action::Control;
    const SUMMARY: Option<&'static [&'static str]> = Some(PACKAGE_SUMMARY);

    /// Only packages that hold an agent, unless the client asks about
    /// element types itself.
    fn list_restriction(_p: &Principal, _grant: &Grant, filter: Option<&Expr>) -> Option<Expr> {
        if filter.is_some_and(|f| f.mentions("elementTypes")) {
            None
        } else {
            Some(filter::any_of("elementTypes", &AGENT_ELEMENT_TYPES))
        }
    }
}

/// Applies one of Graph's package writes (the caller already authorised
/// for it): 204 with the new `ETag`.
async fn change(
    app: &AppState,
    p: &Principal,
    grant: &Grant,
    id: &str,
    cond: &Conditions,
    props: Map<String, Value>,
) -> Result<Response> {
    let current = require(app, p, grant, Entity::Package, id);
    let ctx = WriteContext {
        if_match: expected_version(cond, Entity::Package, current).await?,
        ..write_context(app, p, grant)
    };
    let stored = app
        .store()
        .update_package(&p.tenant_id, id, props, &ctx)
        .await?;
    let mut response = respond::no_content();
    etag::set_header(&mut response, &stored);
    Ok(response)
}

/// PATCH: who the package is available (`allowedUsersAndGroups`) and
/// deployed (`acquireUsersAndGroups`) to.
pub(super) async fn update(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdatePackage)?;
    let props = packages::access_patch(body)?;
    change(&app, &p, &grant, &id, &cond, props).await
}

pub(super) async fn block(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
) -> Result {
    let grant = authorize(&p, Action::UpdatePackage)?;
    change(&app, &p, &grant, &id, &cond, packages::blocked_patch(true)).await
}

pub(super) async fn unblock(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
) -> Result {
    let grant = authorize(&p, Action::UpdatePackage)?;
    change(&app, &p, &grant, &id, &cond, packages::blocked_patch(false)).await
}

/// `{"userId": …}`: the package's new owner.
pub(super) async fn reassign(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdatePackage)?;
    let props = packages::reassign_patch(body)?;
    change(&app, &p, &grant, &id, &cond, props).await
}

/// The control plane's load: a complete package, 201 with it.
pub(super) async fn load(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::Control)?;
    let doc = packages::new_package(body, &app.now())?;
    let stored = app
        .store()
        .create_package(&p.tenant_id, doc, &write_context(&app, &p, &grant))
        .await?;
    created(&meta, &COPILOT_PACKAGE, stored)
}
