-- The Agent 365 package catalog (`/copilot/admin/catalog/packages`): the
-- shape of the registry's tables, with the columns its lists filter on.
-- `created_at` and `modified_at` mirror the package's own timestamps.
CREATE TABLE copilot_packages (
    tenant_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    display_name TEXT,
    platform     TEXT,
    publisher    TEXT,
    created_at   TEXT    NOT NULL,
    modified_at  TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    doc          TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX copilot_packages_by_display_name_nocase ON copilot_packages (tenant_id, display_name COLLATE NOCASE);
CREATE INDEX copilot_packages_by_modified_at ON copilot_packages (tenant_id, modified_at, id);
