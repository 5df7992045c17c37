-- Copilot admin settings.
-- Policies of the underlying policy services keep their full JSON
-- representation in `doc`, plus plain columns for what resolution orders and
-- filters on. `tenant_id` leads every key and index.

CREATE TABLE copilot_policies (
    tenant_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    created_at  TEXT    NOT NULL,
    modified_at TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX copilot_policies_in_order ON copilot_policies (tenant_id, priority, created_at, id);

-- Plain per-tenant settings objects (limitedMode, enhancedPersonalization),
-- one row per tenant and object once it has been written.
CREATE TABLE copilot_tenant_settings (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
