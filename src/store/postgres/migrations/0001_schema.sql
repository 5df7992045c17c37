-- Agentry on PostgreSQL, first schema.
--
-- The same shape as the SQLite schema, table for table: every entity keeps
-- its full representation in `doc`, plus plain columns for what is filtered,
-- sorted or joined on, and side tables for the collection-valued properties
-- that discovery filters ask about (owners, skill tags). `doc` is `json`, not
-- `jsonb`: it keeps the text as written, so what is stored is what is served,
-- property order included; filters on unindexed paths read it as `jsonb`.
-- Every text column compares bytewise (`COLLATE "C"`) so that ordering, and
-- so paging tokens, agree with SQLite and do not depend on the server's locale.
-- `tenant_id` leads every key and index: each query is a range in one tenant.

CREATE TABLE agent_instances (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    display_name      TEXT COLLATE "C",
    managed_by        TEXT COLLATE "C",
    originating_store TEXT COLLATE "C",
    manifest_id       TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    modified_at       TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    doc               JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agent_instances_by_display_name ON agent_instances (tenant_id, display_name, id);
-- startswith() and $search compare names without (ASCII) case.
CREATE INDEX agent_instances_by_display_name_lower ON agent_instances (tenant_id, lower(display_name), id);
CREATE INDEX agent_instances_by_managed_by ON agent_instances (tenant_id, managed_by, id);
CREATE INDEX agent_instances_by_originating_store ON agent_instances (tenant_id, originating_store, id);
CREATE INDEX agent_instances_by_manifest ON agent_instances (tenant_id, manifest_id);

CREATE TABLE agent_instance_owners (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    owner_id    TEXT COLLATE "C" NOT NULL,
    instance_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, owner_id, instance_id)
);
CREATE INDEX agent_instance_owners_by_instance ON agent_instance_owners (tenant_id, instance_id);

CREATE TABLE agent_card_manifests (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    display_name      TEXT COLLATE "C",
    managed_by        TEXT COLLATE "C",
    originating_store TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    modified_at       TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    doc               JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agent_card_manifests_by_display_name ON agent_card_manifests (tenant_id, display_name, id);
CREATE INDEX agent_card_manifests_by_display_name_lower ON agent_card_manifests (tenant_id, lower(display_name), id);
CREATE INDEX agent_card_manifests_by_managed_by ON agent_card_manifests (tenant_id, managed_by, id);

CREATE TABLE agent_card_manifest_skill_tags (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    tag         TEXT COLLATE "C" NOT NULL,
    manifest_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, tag, manifest_id)
);
CREATE INDEX agent_card_manifest_skill_tags_by_manifest ON agent_card_manifest_skill_tags (tenant_id, manifest_id);

CREATE TABLE agent_collections (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    id                TEXT COLLATE "C" NOT NULL,
    display_name      TEXT COLLATE "C",
    managed_by        TEXT COLLATE "C",
    originating_store TEXT COLLATE "C",
    created_at        TEXT COLLATE "C" NOT NULL,
    modified_at       TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    doc               JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agent_collections_by_display_name ON agent_collections (tenant_id, display_name, id);
CREATE INDEX agent_collections_by_managed_by ON agent_collections (tenant_id, managed_by, id);

CREATE TABLE agent_collection_members (
    tenant_id     TEXT COLLATE "C" NOT NULL,
    collection_id TEXT COLLATE "C" NOT NULL,
    instance_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, collection_id, instance_id)
);
CREATE INDEX agent_collection_members_by_instance ON agent_collection_members (tenant_id, instance_id, collection_id);

-- Copilot admin settings: policies of the underlying policy services, and the
-- plain per-tenant settings objects (limitedMode, enhancedPersonalization).
CREATE TABLE copilot_policies (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    service     TEXT COLLATE "C" NOT NULL,
    scope       TEXT COLLATE "C" NOT NULL,
    priority    BIGINT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    modified_at TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    doc         JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX copilot_policies_in_order ON copilot_policies (tenant_id, priority, created_at, id);

CREATE TABLE copilot_tenant_settings (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    modified_at TEXT COLLATE "C" NOT NULL,
    doc         JSON NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Applications registered with the built-in identity provider; the secret is
-- kept only as a salted hash inside `doc`.
CREATE TABLE app_registrations (
    client_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    doc       JSON NOT NULL
);
CREATE INDEX app_registrations_by_tenant ON app_registrations (tenant_id, client_id);
