-- The audit log (`/auditLogs/directoryAudits`): the registry tables' shape,
-- one row per record, written in the transaction of the write it records.
-- `created_at` and `modified_at` both hold `activityDateTime`.
CREATE TABLE directory_audits (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    category       TEXT,
    activity       TEXT,
    correlation_id TEXT,
    created_at     TEXT    NOT NULL,
    modified_at    TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    doc            TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX directory_audits_by_created_at ON directory_audits (tenant_id, created_at, id);
CREATE INDEX directory_audits_by_category ON directory_audits (tenant_id, category, created_at);
CREATE INDEX directory_audits_by_activity ON directory_audits (tenant_id, activity, created_at);
CREATE INDEX directory_audits_by_correlation_id ON directory_audits (tenant_id, correlation_id);

-- Every change of an entity, in commit order (one writer): what delta
-- queries read. `removed` is 1 for a delete.
CREATE TABLE change_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT    NOT NULL,
    entity    TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    removed   INTEGER NOT NULL
);
CREATE INDEX change_log_by_entity ON change_log (tenant_id, entity, seq);

-- Per tenant, the first change the log still holds in full: a delta token
-- from before it (a reset, a restored snapshot, pruning) must resync.
CREATE TABLE change_log_horizon (
    tenant_id TEXT    NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL
) WITHOUT ROWID;
