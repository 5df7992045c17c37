//! The change log in PostgreSQL. Sequence numbers are taken before commit,
//! so concurrent transactions may commit them out of order; a position is
//! therefore a snapshot (`pg_current_snapshot()`), and a delta round is the
//! rows whose transaction its `from` snapshot did not see and its `to`
//! snapshot does, paged by sequence number.

use super::Step;
use crate::domain::subscriptions::ChangeType;
use crate::store::{ChangeWindow, Entity, LoggedChange, StoreError};
use deadpool_postgres::GenericClient;

pub(super) async fn position(c: &impl GenericClient) -> Step<String> {
    let row = c
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// `xmin:xmax:xip,…`: a snapshot as PostgreSQL writes it. Checked before
/// it reaches SQL, so a position of another backend is an expired sync
/// state, not a database error.
fn is_snapshot(text: &str) -> bool {
    let mut parts = text.split(':');
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(min), Some(max), Some(xip), None)
            if number(min) && number(max) && (xip.is_empty() || xip.split(',').all(number))
    )
}

pub(super) async fn changes(
    c: &impl GenericClient,
    kind: Entity,
    tenant: &str,
    window: &ChangeWindow,
    limit: usize,
) -> Step<Vec<LoggedChange>> {
    if !is_snapshot(&window.from) || !is_snapshot(&window.to) {
        return Err(StoreError::SyncStateExpired.into());
    }
    let expired = c
        .query_opt(
            "SELECT 1 FROM change_log_horizon WHERE tenant_id = $1
               AND NOT pg_visible_in_snapshot(txid::text::xid8, $2::text::pg_snapshot)",
            &[&tenant, &window.from],
        )
        .await?;
    if expired.is_some() {
        return Err(StoreError::SyncStateExpired.into());
    }
    let stmt = c
        .prepare_cached(
            "SELECT seq, id, change FROM change_log
             WHERE tenant_id = $1 AND entity = $2
               AND txid >= pg_snapshot_xmin($3::text::pg_snapshot)
               AND NOT pg_visible_in_snapshot(txid, $3::text::pg_snapshot)
               AND pg_visible_in_snapshot(txid, $4::text::pg_snapshot)
               AND seq > $5
             ORDER BY seq LIMIT $6",
        )
        .await?;
    let limit = limit as i64;
    let rows = c
        .query(
            &stmt,
            &[
                &tenant,
                &kind.ty().entity_set,
                &window.from,
                &window.to,
                &window.after,
                &limit,
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LoggedChange {
                seq: r.try_get(0)?,
                id: r.try_get(1)?,
                change: ChangeType::from_code(r.try_get(2)?),
            })
        })
        .collect()
}

/// Starts a tenant's log afresh (a reset, a restored snapshot): every
/// snapshot that does not see this transaction is expired (the older rows
/// stay until pruned; no round reads them again).
pub(super) async fn clear(c: &impl GenericClient, tenant: &str) -> Step<()> {
    c.execute(
        "INSERT INTO change_log_horizon (tenant_id, txid)
         VALUES ($1, pg_current_xact_id()::text::bigint)
         ON CONFLICT (tenant_id) DO UPDATE SET txid = excluded.txid",
        &[&tenant],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_snapshot_text_is_taken_for_a_position() {
        for good in ["10:20:", "10:20:12,15", "1:1:"] {
            assert!(super::is_snapshot(good), "{good}");
        }
        for bad in ["", "42", "10:20", "a:b:", "10:20:1,,2", "1:2:3:4", "1:2:x"] {
            assert!(!super::is_snapshot(bad), "{bad}");
        }
    }
}
