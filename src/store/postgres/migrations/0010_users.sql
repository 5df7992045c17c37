-- Local user accounts of the built-in identity provider (`agentry user
-- add`): the user as a JSON document (its password only as an Argon2id
-- hash), unique in its tenant by its lower-case name (`name_key`), and
-- its lockout: failed sign-ins in a row and the lock's end, updated in one
-- statement so that replicas count together. Users are credentials: a
-- tenant's reset keeps them, as it keeps app registrations.
CREATE TABLE local_users (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    name_key        TEXT COLLATE "C" NOT NULL,
    doc             TEXT NOT NULL,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT COLLATE "C",
    PRIMARY KEY (tenant_id, name_key)
);

-- Authorization codes of the code flow with PKCE, by the SHA-256 of the
-- code (the database never holds a code that could be redeemed), until
-- they expire; `redeemed` tells a code used twice from an unknown one.
CREATE TABLE authorization_codes (
    code_key   TEXT COLLATE "C" PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    doc        TEXT NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    redeemed   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);
