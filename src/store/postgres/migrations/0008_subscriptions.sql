-- The change log tells created from updated (change notifications need
-- it): `removed` becomes `change`, 0 updated, 1 deleted, 2 created, so the
-- rows already written keep their meaning.
ALTER TABLE change_log RENAME COLUMN removed TO change;
ALTER TABLE change_log ALTER COLUMN change TYPE SMALLINT
    USING (CASE WHEN change THEN 1 ELSE 0 END);

-- Change notification subscriptions (`/subscriptions`): the document as
-- served, the entity set it follows, and where its delivery stands in the
-- change log, which is its outbox: `position_from` is delivered, the rows
-- after `position_after` up to `position_to` are being delivered. A
-- receiver that fails is retried at `next_attempt_at`; `failing_since`
-- bounds how long. One replica delivers a subscription at a time: the one
-- whose lease (`lease_owner` until `lease_until`) holds, taken with
-- `FOR UPDATE SKIP LOCKED`.
CREATE TABLE subscriptions (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    entity          TEXT COLLATE "C" NOT NULL,
    doc             TEXT NOT NULL,
    expires_at      TEXT COLLATE "C" NOT NULL,
    position_from   TEXT NOT NULL,
    position_to     TEXT,
    position_after  BIGINT NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    failing_since   TEXT COLLATE "C",
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT COLLATE "C",
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX subscriptions_by_next_attempt ON subscriptions (next_attempt_at);
