-- Applications registered with the built-in identity provider.
-- The secret is kept only as a salted hash inside `doc`.
CREATE TABLE app_registrations (
    client_id  TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    doc        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX app_registrations_by_tenant ON app_registrations (tenant_id, client_id);
