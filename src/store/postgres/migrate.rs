//! Schema migrations: embedded, applied in order, each recorded in
//! `agentry_schema_migrations`. All of them run in one transaction that first
//! takes an advisory lock, so replicas starting together apply each exactly
//! once and a failed migration leaves the schema as it was.

use super::pg_error;
use crate::store::StoreError;

/// Name and text of every migration, in order; the position is the version.
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_schema", include_str!("migrations/0001_schema.sql")),
    (
        "0002_instance_skill_tags",
        include_str!("migrations/0002_instance_skill_tags.sql"),
    ),
    (
        "0003_sort_indexes_nulls_first",
        include_str!("migrations/0003_sort_indexes_nulls_first.sql"),
    ),
    (
        "0004_one_name_index",
        include_str!("migrations/0004_one_name_index.sql"),
    ),
    (
        "0005_agent_registrations",
        include_str!("migrations/0005_agent_registrations.sql"),
    ),
    (
        "0006_copilot_packages",
        include_str!("migrations/0006_copilot_packages.sql"),
    ),
    (
        "0007_audit_and_change_log",
        include_str!("migrations/0007_audit_and_change_log.sql"),
    ),
    (
        "0008_subscriptions",
        include_str!("migrations/0008_subscriptions.sql"),
    ),
    (
        "0009_agent_watch",
        include_str!("migrations/0009_agent_watch.sql"),
    ),
    ("0010_users", include_str!("migrations/0010_users.sql")),
    (
        "0011_package_element_types",
        include_str!("migrations/0011_package_element_types.sql"),
    ),
];

/// The advisory lock key that serialises migrations ("agentry" in ASCII).
const MIGRATION_LOCK: i64 = 0x0061_6765_6e74_7279;

/// Applies what the database lacks; returns the names applied.
pub(super) async fn apply(
    client: &mut deadpool_postgres::Client,
) -> Result<Vec<String>, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS agentry_schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let done: Vec<i64> = tx
        .query("SELECT version FROM agentry_schema_migrations", &[])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newest) = done.iter().max()
        && *newest > MIGRATIONS.len() as i64
    {
        return Err(StoreError::Internal(format!(
            "the database schema (version {newest}) is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    let mut applied = Vec::new();
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO agentry_schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await
        .map_err(pg_error)?;
        applied.push((*name).to_owned());
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(applied)
}
