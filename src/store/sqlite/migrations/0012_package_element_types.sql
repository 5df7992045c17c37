-- The element types of each catalog package, so that the catalog's default
-- filter (`elementTypes/any(t: t eq 'DeclarativeAgent' or …)`) is answered
-- from an index instead of each package's document. Kept in step with the
-- document by every write, as the owners and skill tags are.
CREATE TABLE copilot_package_element_types (
    tenant_id    TEXT NOT NULL,
    element_type TEXT NOT NULL,
    package_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, element_type, package_id)
) WITHOUT ROWID;
CREATE INDEX copilot_package_element_types_by_package ON copilot_package_element_types (tenant_id, package_id);

INSERT OR IGNORE INTO copilot_package_element_types (tenant_id, element_type, package_id)
SELECT p.tenant_id, t.value, p.id
FROM copilot_packages p, json_each(p.doc, '$.elementTypes') t
WHERE t.type = 'text';
