-- The audit log (`/auditLogs/directoryAudits`): the registry tables' columns,
-- one row per record, written in the transaction of the write it records.
-- `created_at` and `modified_at` both hold `activityDateTime`. A rowid table
-- (rows are large and only ever appended, in time order) with two indexes:
-- each one more costs every write a page.
CREATE TABLE directory_audits (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    modified_at    TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    doc            TEXT    NOT NULL
);
CREATE UNIQUE INDEX directory_audits_by_id ON directory_audits (tenant_id, id);
CREATE INDEX directory_audits_by_created_at ON directory_audits (tenant_id, created_at, id);

-- Every change of an entity, in commit order (one writer): what delta
-- queries read. `entity` is the entity set (`agentInstances`), `removed` 1
-- for a delete, `at` when (pruned with the audit log's retention, which
-- always keeps the newest row, so a sequence number is never given twice
-- without AUTOINCREMENT's extra table).
CREATE TABLE change_log (
    seq       INTEGER PRIMARY KEY,
    tenant_id TEXT    NOT NULL,
    entity    TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    removed   INTEGER NOT NULL,
    at        TEXT    NOT NULL
);
CREATE INDEX change_log_by_entity ON change_log (tenant_id, entity, seq);

-- Per tenant, the position of its last reset or restored snapshot: a delta
-- token from before it must resync.
CREATE TABLE change_log_horizon (
    tenant_id TEXT    NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL
) WITHOUT ROWID;
