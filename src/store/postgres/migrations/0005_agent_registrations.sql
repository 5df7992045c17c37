-- Agent 365 agent registrations (`/copilot/agentRegistrations`): the shape
-- of the registry's tables, with two more indexed columns. `sourceAgentId`
-- is unique in a tenant (several registrations may have none); the write
-- path checks it first and retries when this index reports a race.
CREATE TABLE agent_registrations (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    display_name      TEXT COLLATE "C",
    managed_by        TEXT COLLATE "C",
    originating_store TEXT COLLATE "C",
    source_agent_id   TEXT COLLATE "C",
    agent_identity_id TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    modified_at       TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    doc               JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agent_registrations_by_display_name_lower ON agent_registrations (tenant_id, lower(display_name) NULLS FIRST, id);
CREATE INDEX agent_registrations_by_managed_by ON agent_registrations (tenant_id, managed_by NULLS FIRST, id);
CREATE INDEX agent_registrations_by_originating_store ON agent_registrations (tenant_id, originating_store NULLS FIRST, id);
CREATE UNIQUE INDEX agent_registrations_by_source_agent_id ON agent_registrations (tenant_id, source_agent_id);
CREATE INDEX agent_registrations_by_agent_identity_id ON agent_registrations (tenant_id, agent_identity_id NULLS FIRST, id);

CREATE TABLE agent_registration_owners (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    owner_id        TEXT COLLATE "C" NOT NULL,
    registration_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, owner_id, registration_id)
);
CREATE INDEX agent_registration_owners_by_registration ON agent_registration_owners (tenant_id, registration_id);
