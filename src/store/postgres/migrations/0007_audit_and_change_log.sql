-- The audit log (`/auditLogs/directoryAudits`): the registry tables' shape,
-- one row per record, written in the transaction of the write it records.
-- `created_at` and `modified_at` both hold `activityDateTime`.
CREATE TABLE directory_audits (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    modified_at    TEXT COLLATE "C" NOT NULL,
    version        BIGINT NOT NULL,
    doc            JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX directory_audits_by_created_at ON directory_audits (tenant_id, created_at NULLS FIRST, id);

-- Every change of an entity: what delta queries read. `entity` is the
-- entity set (`agentInstances`), `at` when (pruned with the audit log's
-- retention). Sequence numbers are taken before commit, so concurrent
-- transactions may commit them out of order: a delta round is the rows
-- whose transaction (`txid`) its start's snapshot did not see and its end's
-- does, found through `change_log_by_txid`.
CREATE TABLE change_log (
    seq       BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    entity    TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,
    removed   BOOLEAN NOT NULL,
    at        TEXT COLLATE "C" NOT NULL,
    txid      xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX change_log_by_txid ON change_log (tenant_id, entity, txid);

-- Per tenant, the transaction of its last reset or restored snapshot: a
-- delta token whose snapshot did not see it must resync.
CREATE TABLE change_log_horizon (
    tenant_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    txid      BIGINT NOT NULL
);
