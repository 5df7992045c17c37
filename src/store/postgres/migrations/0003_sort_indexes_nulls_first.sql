-- Sorting follows SQLite: NULL first ascending, last descending. PostgreSQL's
-- B-tree keeps NULL last by default, so `ORDER BY display_name ASC NULLS
-- FIRST` could not walk the old indexes and sorted the whole tenant. These
-- indexes store NULL first; scanned backwards they serve the descending order.
DROP INDEX agent_instances_by_display_name;
CREATE INDEX agent_instances_by_display_name ON agent_instances (tenant_id, display_name NULLS FIRST, id);
DROP INDEX agent_instances_by_managed_by;
CREATE INDEX agent_instances_by_managed_by ON agent_instances (tenant_id, managed_by NULLS FIRST, id);
DROP INDEX agent_instances_by_originating_store;
CREATE INDEX agent_instances_by_originating_store ON agent_instances (tenant_id, originating_store NULLS FIRST, id);
DROP INDEX agent_card_manifests_by_display_name;
CREATE INDEX agent_card_manifests_by_display_name ON agent_card_manifests (tenant_id, display_name NULLS FIRST, id);
DROP INDEX agent_card_manifests_by_managed_by;
CREATE INDEX agent_card_manifests_by_managed_by ON agent_card_manifests (tenant_id, managed_by NULLS FIRST, id);
DROP INDEX agent_collections_by_display_name;
CREATE INDEX agent_collections_by_display_name ON agent_collections (tenant_id, display_name NULLS FIRST, id);
DROP INDEX agent_collections_by_managed_by;
CREATE INDEX agent_collections_by_managed_by ON agent_collections (tenant_id, managed_by NULLS FIRST, id);
