-- The change log tells created from updated (change notifications need
-- it): `removed` becomes `change`, 0 updated, 1 deleted, 2 created, so the
-- rows already written keep their meaning.
ALTER TABLE change_log RENAME COLUMN removed TO change;

-- Change notification subscriptions (`/subscriptions`): the document as
-- served, the entity set it follows, and where its delivery stands in the
-- change log, which is its outbox: `position_from` is delivered, the rows
-- after `position_after` up to `position_to` are being delivered. A
-- receiver that fails is retried at `next_attempt_at`; `failing_since`
-- bounds how long. `lease_*` say which process delivers it now.
CREATE TABLE subscriptions (
    tenant_id       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    entity          TEXT    NOT NULL,
    doc             TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    position_from   TEXT    NOT NULL,
    position_to     TEXT,
    position_after  INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    failing_since   TEXT,
    next_attempt_at TEXT    NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX subscriptions_by_next_attempt ON subscriptions (next_attempt_at);
