-- Agent Registry, first schema.
-- Every entity keeps its full JSON representation in `doc`, plus plain
-- columns for what is filtered, sorted or joined on. `tenant_id` leads every
-- key and index: tenants never cross, and each query is a range in one tenant.

CREATE TABLE agent_instances (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    display_name      TEXT,
    managed_by        TEXT,
    originating_store TEXT,
    manifest_id       TEXT,
    created_at        TEXT    NOT NULL,
    modified_at       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    doc               TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX agent_instances_by_display_name ON agent_instances (tenant_id, display_name, id);
-- startswith() and $search compare names without case.
CREATE INDEX agent_instances_by_display_name_nocase ON agent_instances (tenant_id, display_name COLLATE NOCASE);
CREATE INDEX agent_instances_by_managed_by ON agent_instances (tenant_id, managed_by, id);
CREATE INDEX agent_instances_by_originating_store ON agent_instances (tenant_id, originating_store, id);
CREATE INDEX agent_instances_by_manifest ON agent_instances (tenant_id, manifest_id);

CREATE TABLE agent_instance_owners (
    tenant_id   TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, owner_id, instance_id)
) WITHOUT ROWID;
CREATE INDEX agent_instance_owners_by_instance ON agent_instance_owners (tenant_id, instance_id);

CREATE TABLE agent_card_manifests (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    display_name      TEXT,
    managed_by        TEXT,
    originating_store TEXT,
    created_at        TEXT    NOT NULL,
    modified_at       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    doc               TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX agent_card_manifests_by_display_name ON agent_card_manifests (tenant_id, display_name, id);
CREATE INDEX agent_card_manifests_by_display_name_nocase ON agent_card_manifests (tenant_id, display_name COLLATE NOCASE);
CREATE INDEX agent_card_manifests_by_managed_by ON agent_card_manifests (tenant_id, managed_by, id);

CREATE TABLE agent_card_manifest_skill_tags (
    tenant_id   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    manifest_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag, manifest_id)
) WITHOUT ROWID;
CREATE INDEX agent_card_manifest_skill_tags_by_manifest ON agent_card_manifest_skill_tags (tenant_id, manifest_id);

CREATE TABLE agent_collections (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    display_name      TEXT,
    managed_by        TEXT,
    originating_store TEXT,
    created_at        TEXT    NOT NULL,
    modified_at       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    doc               TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX agent_collections_by_display_name ON agent_collections (tenant_id, display_name, id);
CREATE INDEX agent_collections_by_managed_by ON agent_collections (tenant_id, managed_by, id);

CREATE TABLE agent_collection_members (
    tenant_id     TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    instance_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, collection_id, instance_id)
) WITHOUT ROWID;
CREATE INDEX agent_collection_members_by_instance ON agent_collection_members (tenant_id, instance_id, collection_id);
