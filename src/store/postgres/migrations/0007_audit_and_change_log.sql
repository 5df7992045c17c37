-- The audit log (`/auditLogs/directoryAudits`): the registry tables' shape,
-- one row per record, written in the transaction of the write it records.
-- `created_at` and `modified_at` both hold `activityDateTime`.
CREATE TABLE directory_audits (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    category       TEXT COLLATE "C",
    activity       TEXT COLLATE "C",
    correlation_id TEXT COLLATE "C",
    created_at     TEXT COLLATE "C" NOT NULL,
    modified_at    TEXT COLLATE "C" NOT NULL,
    version        BIGINT NOT NULL,
    doc            JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX directory_audits_by_created_at ON directory_audits (tenant_id, created_at NULLS FIRST, id);
CREATE INDEX directory_audits_by_category ON directory_audits (tenant_id, category, created_at);
CREATE INDEX directory_audits_by_activity ON directory_audits (tenant_id, activity, created_at);
CREATE INDEX directory_audits_by_correlation_id ON directory_audits (tenant_id, correlation_id);

-- Every change of an entity: what delta queries read. Sequence numbers are
-- taken before commit, so concurrent transactions may commit them out of
-- order; `txid` lets a reader tell which were not yet visible to it.
CREATE TABLE change_log (
    seq       BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    entity    TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,
    removed   BOOLEAN NOT NULL,
    txid      xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX change_log_by_entity ON change_log (tenant_id, entity, seq);

-- Per tenant, the first change the log still holds in full: a delta token
-- from before it (a reset, a restored snapshot, pruning) must resync.
CREATE TABLE change_log_horizon (
    tenant_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    seq       BIGINT NOT NULL
);
