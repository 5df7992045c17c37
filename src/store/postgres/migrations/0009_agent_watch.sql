-- Watching registered agents (docs/a2a.md): one row per agent instance or
-- registration of a tenant that watches, with the last check's outcome as
-- served (`doc`) and its `state` (healthy, unreachable, drifted; NULL for
-- an agent without a URL to check) for filtering. `due_at` is the next
-- check; one replica checks an agent at a time: the one whose lease
-- (`lease_owner` until `lease_until`) holds, taken with `FOR UPDATE SKIP LOCKED`.
CREATE TABLE agent_watch (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    entity      TEXT COLLATE "C" NOT NULL,
    agent_id    TEXT COLLATE "C" NOT NULL,
    state       TEXT COLLATE "C",
    doc         TEXT,
    due_at      TEXT COLLATE "C" NOT NULL,
    lease_owner TEXT,
    lease_until TEXT COLLATE "C",
    PRIMARY KEY (tenant_id, entity, agent_id)
);
CREATE INDEX agent_watch_by_due ON agent_watch (tenant_id, due_at);
CREATE INDEX agent_watch_by_state ON agent_watch (tenant_id, state, entity, agent_id);
