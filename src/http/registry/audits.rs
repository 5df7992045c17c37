//! `/auditLogs/directoryAudits`: the audit log, read-only. The store writes
//! a record in the transaction of every write it records
//! (`domain::audit`); list, `$count` and get are the shared handlers
//! ([`super::sets`]), newest first unless the client orders.

use super::sets::Set;
use crate::auth::permissions::Action;
use crate::store::Entity;

pub(super) struct Audits;

impl Set for Audits {
    const ENTITY: Entity = Entity::Audit;
    const LIST: Action = Action::ReadAuditLog;
    const GET: Action = Action::ReadAuditLog;
    /// Records are never deleted by a client (no route names this).
    const DELETE: Action = Action::Control;
    const NEWEST_FIRST: bool = true;
}
