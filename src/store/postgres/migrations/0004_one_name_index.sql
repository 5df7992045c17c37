-- Names compare and sort without ASCII case (`store::is_name`): one index on
-- `lower(display_name)` (ASCII only in the "C" collation) serves equality,
-- ranges, prefixes and `$orderby`, NULL first as the other sort indexes.
DROP INDEX agent_instances_by_display_name;
DROP INDEX agent_instances_by_display_name_lower;
CREATE INDEX agent_instances_by_display_name_lower ON agent_instances (tenant_id, lower(display_name) NULLS FIRST, id);
DROP INDEX agent_card_manifests_by_display_name;
DROP INDEX agent_card_manifests_by_display_name_lower;
CREATE INDEX agent_card_manifests_by_display_name_lower ON agent_card_manifests (tenant_id, lower(display_name) NULLS FIRST, id);
DROP INDEX agent_collections_by_display_name;
CREATE INDEX agent_collections_by_display_name_lower ON agent_collections (tenant_id, lower(display_name) NULLS FIRST, id);
