-- Local user accounts of the built-in identity provider (`agentry user
-- add`): the user as a JSON document (its password only as an Argon2id
-- hash), unique in its tenant by its lower-case name (`name_key`), and
-- its lockout: failed sign-ins in a row and the lock's end. Users are
-- credentials: a tenant's reset keeps them, as it keeps app registrations.
CREATE TABLE local_users (
    tenant_id       TEXT NOT NULL,
    name_key        TEXT NOT NULL,
    doc             TEXT NOT NULL,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    PRIMARY KEY (tenant_id, name_key)
) WITHOUT ROWID;

-- Authorization codes of the code flow with PKCE, by the SHA-256 of the
-- code (the database never holds a code that could be redeemed), until
-- they expire; `redeemed` tells a code used twice from an unknown one.
CREATE TABLE authorization_codes (
    code_key   TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    doc        TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    redeemed   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);
