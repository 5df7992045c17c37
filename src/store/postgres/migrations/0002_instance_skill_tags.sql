-- The skill tags of each instance's linked manifest, per instance (as in
-- SQLite's 0004): a page of `agentCardManifest/skills/any(s: s/tags/any(t:
-- t eq …))` is a range of this primary key, in instance id order, however
-- many instances match. Kept in step when a link or a manifest's skills change.
CREATE TABLE agent_instance_skill_tags (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    tag         TEXT COLLATE "C" NOT NULL,
    instance_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, tag, instance_id)
);
CREATE INDEX agent_instance_skill_tags_by_instance ON agent_instance_skill_tags (tenant_id, instance_id);

INSERT INTO agent_instance_skill_tags (tenant_id, tag, instance_id)
SELECT i.tenant_id, t.tag, i.id
FROM agent_instances i
JOIN agent_card_manifest_skill_tags t ON t.tenant_id = i.tenant_id AND t.manifest_id = i.manifest_id
ON CONFLICT DO NOTHING;
