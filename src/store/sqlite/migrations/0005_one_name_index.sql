-- Names compare and sort without ASCII case (`store::is_name`), so the
-- case-insensitive index serves equality, ranges, prefixes and `$orderby`
-- alone, and the bytewise one only cost every rename an index page.
-- (Without rowid, an index ends with the primary key: the NOCASE indexes
-- are already ordered by name, then id.)
DROP INDEX agent_instances_by_display_name;
DROP INDEX agent_card_manifests_by_display_name;
DROP INDEX agent_collections_by_display_name;
CREATE INDEX agent_collections_by_display_name_nocase ON agent_collections (tenant_id, display_name COLLATE NOCASE);
