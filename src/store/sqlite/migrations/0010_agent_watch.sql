-- Watching registered agents (docs/a2a.md): one row per agent instance or
-- registration of a tenant that watches, with the last check's outcome as
-- served (`doc`) and its `state` (healthy, unreachable, drifted; NULL for
-- an agent without a URL to check) for filtering. `due_at` is the next
-- check; `lease_*` say which process checks it now.
CREATE TABLE agent_watch (
    tenant_id   TEXT NOT NULL,
    entity      TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    state       TEXT,
    doc         TEXT,
    due_at      TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    PRIMARY KEY (tenant_id, entity, agent_id)
) WITHOUT ROWID;
CREATE INDEX agent_watch_by_due ON agent_watch (tenant_id, due_at);
CREATE INDEX agent_watch_by_state ON agent_watch (tenant_id, state, entity, agent_id);
