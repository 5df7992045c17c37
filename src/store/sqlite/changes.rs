//! The change log in SQLite. One writer commits the log's rows in sequence
//! order, so a position is a sequence number: the highest one given out.
//! Rows are only ever deleted by pruning, which keeps the newest, so that
//! number never goes back.

use super::sql_error;
use crate::domain::subscriptions::ChangeType;
use crate::store::{ChangeWindow, Entity, LoggedChange, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn position(conn: &Connection) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM change_log")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|seq| seq.to_string())
        .map_err(sql_error)
}

fn parse(position: &str) -> Result<i64, StoreError> {
    position.parse().map_err(|_| StoreError::SyncStateExpired)
}

pub(super) fn changes(
    conn: &Connection,
    kind: Entity,
    tenant: &str,
    window: &ChangeWindow,
    limit: usize,
) -> Result<Vec<LoggedChange>, StoreError> {
    let (from, to) = (parse(&window.from)?, parse(&window.to)?);
    let horizon: Option<i64> = conn
        .prepare_cached("SELECT seq FROM change_log_horizon WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row(params![tenant], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    if horizon.is_some_and(|h| from < h) {
        return Err(StoreError::SyncStateExpired);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, id, change FROM change_log
             WHERE tenant_id = ?1 AND entity = ?2 AND seq > ?3 AND seq <= ?4
             ORDER BY seq LIMIT ?5",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![
                tenant,
                kind.ty().entity_set,
                from.max(window.after),
                to,
                limit as i64
            ],
            |r| {
                Ok(LoggedChange {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    change: ChangeType::from_code(r.get(2)?),
                })
            },
        )
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Starts a tenant's log afresh (a reset, a restored snapshot): its horizon
/// moves past every position given out so far (its older rows stay until
/// pruned; no round reads them again).
pub(super) fn clear(conn: &Connection, tenant: &str) -> Result<(), StoreError> {
    // A row of no entity takes the next sequence number: the horizon.
    conn.prepare_cached(
        "INSERT INTO change_log (tenant_id, entity, id, change, at) VALUES (?1, '', '', 1, '')",
    )
    .and_then(|mut s| s.execute(params![tenant]))
    .map_err(sql_error)?;
    let horizon = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO change_log_horizon (tenant_id, seq) VALUES (?1, ?2)
         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq",
    )
    .and_then(|mut s| s.execute(params![tenant, horizon]))
    .map(drop)
    .map_err(sql_error)
}
