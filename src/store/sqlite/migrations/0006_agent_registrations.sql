-- Agent 365 agent registrations (`/copilot/agentRegistrations`): the shape
-- of the registry's tables, with two more indexed columns. `sourceAgentId`
-- is unique in a tenant (several registrations may have none).
CREATE TABLE agent_registrations (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    display_name      TEXT,
    managed_by        TEXT,
    originating_store TEXT,
    source_agent_id   TEXT,
    agent_identity_id TEXT,
    created_at        TEXT    NOT NULL,
    modified_at       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    doc               TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX agent_registrations_by_display_name_nocase ON agent_registrations (tenant_id, display_name COLLATE NOCASE);
CREATE INDEX agent_registrations_by_managed_by ON agent_registrations (tenant_id, managed_by, id);
CREATE INDEX agent_registrations_by_originating_store ON agent_registrations (tenant_id, originating_store, id);
CREATE UNIQUE INDEX agent_registrations_by_source_agent_id ON agent_registrations (tenant_id, source_agent_id);
CREATE INDEX agent_registrations_by_agent_identity_id ON agent_registrations (tenant_id, agent_identity_id, id);

CREATE TABLE agent_registration_owners (
    tenant_id       TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    registration_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, owner_id, registration_id)
) WITHOUT ROWID;
CREATE INDEX agent_registration_owners_by_registration ON agent_registration_owners (tenant_id, registration_id);
