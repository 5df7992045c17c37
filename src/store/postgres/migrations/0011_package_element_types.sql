-- The element types of each catalog package, so that the catalog's default
-- filter (`elementTypes/any(t: t eq 'DeclarativeAgent' or …)`) is answered
-- from an index instead of each package's document. Kept in step with the
-- document by every write, as the owners and skill tags are.
CREATE TABLE copilot_package_element_types (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    element_type TEXT COLLATE "C" NOT NULL,
    package_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, element_type, package_id)
);
CREATE INDEX copilot_package_element_types_by_package ON copilot_package_element_types (tenant_id, package_id);

INSERT INTO copilot_package_element_types (tenant_id, element_type, package_id)
SELECT p.tenant_id, t.value, p.id
FROM copilot_packages p,
     json_array_elements(CASE json_typeof(p.doc -> 'elementTypes')
                             WHEN 'array' THEN p.doc -> 'elementTypes'
                             ELSE '[]'::json END) AS e,
     LATERAL (SELECT e #>> '{}' AS value WHERE json_typeof(e) = 'string') AS t
ON CONFLICT DO NOTHING;
