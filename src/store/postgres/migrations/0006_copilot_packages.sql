-- The Agent 365 package catalog (`/copilot/admin/catalog/packages`): the
-- shape of the registry's tables, with the columns its lists filter on.
-- `created_at` and `modified_at` mirror the package's own timestamps.
CREATE TABLE copilot_packages (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    display_name TEXT COLLATE "C",
    platform     TEXT COLLATE "C",
    publisher    TEXT COLLATE "C",
    created_at   TEXT COLLATE "C" NOT NULL,
    modified_at  TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    doc          JSON   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX copilot_packages_by_display_name_lower ON copilot_packages (tenant_id, lower(display_name) NULLS FIRST, id);
CREATE INDEX copilot_packages_by_modified_at ON copilot_packages (tenant_id, modified_at NULLS FIRST, id);
