//! The registry's row statements that both backends run as written.
//!
//! They use `$n` placeholders, which PostgreSQL numbers and SQLite reads as
//! named parameters numbered in the order they first appear (so each
//! statement here names `$1`, `$2`, … in that order, as the test below
//! checks), and `ON CONFLICT DO NOTHING`, which both accept; every
//! `INSERT … SELECT` has a `WHERE`, which SQLite needs to tell its `ON`
//! apart from a join's.

use crate::domain::Entity;

/// Deletes a row: `$1` tenant, `$2` id.
pub(super) fn delete_row(entity: Entity) -> String {
    format!(
        "DELETE FROM {} WHERE tenant_id = $1 AND id = $2",
        entity.table()
    )
}

/// What hangs off a row and goes with it: `$1` tenant, `$2` id.
pub(super) fn dependents(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Instance => &[
            DELETE_OWNERS,
            "DELETE FROM agent_collection_members WHERE tenant_id = $1 AND instance_id = $2",
            DELETE_INSTANCE_TAGS,
        ],
        Entity::Manifest => &[DELETE_MANIFEST_TAGS],
        Entity::Collection => {
            &["DELETE FROM agent_collection_members WHERE tenant_id = $1 AND collection_id = $2"]
        }
        Entity::Registration => &[DELETE_REGISTRATION_OWNERS],
        Entity::Package => &[DELETE_PACKAGE_ELEMENT_TYPES],
        Entity::Audit => &[],
    }
}

/// Clears the side values of a row (`$1` tenant, `$2` id): the statement
/// that empties its side table, and that table's name and columns, into
/// which each backend inserts in its own way. `None`: the entity has none.
pub(super) fn side_values(entity: Entity) -> Option<(&'static str, SideTable)> {
    match entity {
        Entity::Instance => Some((
            DELETE_OWNERS,
            SideTable {
                table: "agent_instance_owners",
                key: "instance_id",
                value: "owner_id",
            },
        )),
        Entity::Manifest => Some((
            DELETE_MANIFEST_TAGS,
            SideTable {
                table: "agent_card_manifest_skill_tags",
                key: "manifest_id",
                value: "tag",
            },
        )),
        Entity::Collection | Entity::Audit => None,
        Entity::Package => Some((
            DELETE_PACKAGE_ELEMENT_TYPES,
            SideTable {
                table: "copilot_package_element_types",
                key: "package_id",
                value: "element_type",
            },
        )),
        Entity::Registration => Some((
            DELETE_REGISTRATION_OWNERS,
            SideTable {
                table: "agent_registration_owners",
                key: "registration_id",
                value: "owner_id",
            },
        )),
    }
}

/// The id of a row whose indexed `column` is `$2`, in tenant `$1`.
pub(super) fn id_where(entity: Entity, column: &str) -> String {
    format!(
        "SELECT id FROM {} WHERE tenant_id = $1 AND {column} = $2",
        entity.table()
    )
}

/// A table of one multi-valued property: `(tenant_id, key, value)`.
pub(super) struct SideTable {
    pub table: &'static str,
    pub key: &'static str,
    pub value: &'static str,
}

const DELETE_OWNERS: &str =
    "DELETE FROM agent_instance_owners WHERE tenant_id = $1 AND instance_id = $2";
const DELETE_REGISTRATION_OWNERS: &str =
    "DELETE FROM agent_registration_owners WHERE tenant_id = $1 AND registration_id = $2";
const DELETE_MANIFEST_TAGS: &str =
    "DELETE FROM agent_card_manifest_skill_tags WHERE tenant_id = $1 AND manifest_id = $2";
const DELETE_PACKAGE_ELEMENT_TYPES: &str =
    "DELETE FROM copilot_package_element_types WHERE tenant_id = $1 AND package_id = $2";

/// An instance's copy of its manifest's skill tags: `$1` tenant, `$2` instance.
pub(super) const DELETE_INSTANCE_TAGS: &str =
    "DELETE FROM agent_instance_skill_tags WHERE tenant_id = $1 AND instance_id = $2";
/// `$1` tenant, `$2` instance, `$3` manifest.
pub(super) const COPY_MANIFEST_TAGS: &str =
    "INSERT INTO agent_instance_skill_tags (tenant_id, instance_id, tag)
     SELECT $1, $2, tag FROM agent_card_manifest_skill_tags
     WHERE tenant_id = $1 AND manifest_id = $3
     ON CONFLICT DO NOTHING";

/// Recopies a manifest's skill tags to every instance linking it: `$1`
/// tenant, `$2` manifest.
pub(super) const RELINK_MANIFEST_TAGS: [&str; 2] = [
    "DELETE FROM agent_instance_skill_tags WHERE tenant_id = $1 AND instance_id IN
     (SELECT id FROM agent_instances WHERE tenant_id = $1 AND manifest_id = $2)",
    "INSERT INTO agent_instance_skill_tags (tenant_id, tag, instance_id)
     SELECT i.tenant_id, t.tag, i.id FROM agent_instances i
     JOIN agent_card_manifest_skill_tags t
       ON t.tenant_id = i.tenant_id AND t.manifest_id = i.manifest_id
     WHERE i.tenant_id = $1 AND i.manifest_id = $2
     ON CONFLICT DO NOTHING",
];

/// `$1` tenant, `$2` manifest.
pub(super) const COUNT_LINKING: &str =
    "SELECT count(*) FROM agent_instances WHERE tenant_id = $1 AND manifest_id = $2";

/// `$1` tenant, `$2` collection, `$3` instance.
pub(super) const INSERT_MEMBER: &str =
    "INSERT INTO agent_collection_members (tenant_id, collection_id, instance_id)
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// `$1` tenant, `$2` collection, `$3` instance.
pub(super) const DELETE_MEMBER: &str = "DELETE FROM agent_collection_members
     WHERE tenant_id = $1 AND collection_id = $2 AND instance_id = $3";

/// Up to `$4` (collection, instance) pairs of tenant `$1` after `($2, $3)`.
pub(super) const MEMBERSHIPS_AFTER: &str =
    "SELECT collection_id, instance_id FROM agent_collection_members
     WHERE tenant_id = $1 AND (collection_id, instance_id) > ($2, $3)
     ORDER BY collection_id, instance_id LIMIT $4";

/// Removes application `$2` of tenant `$1`.
pub(super) const DELETE_APP: &str =
    "DELETE FROM app_registrations WHERE tenant_id = $1 AND client_id = $2";

/// Every tenant with objects, application registrations or local users.
pub(super) fn tenants() -> String {
    let union = super::TENANT_TABLES
        .iter()
        .chain(&["app_registrations", "local_users"])
        .map(|t| format!("SELECT DISTINCT tenant_id FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    format!("{union} ORDER BY tenant_id")
}

/// Appends to the change log: `$1` tenant, `$2` entity set, `$3` id, `$4`
/// the change's code (`ChangeType::code`), `$5` when.
pub(super) const LOG_CHANGE: &str =
    "INSERT INTO change_log (tenant_id, entity, id, change, at) VALUES ($1, $2, $3, $4, $5)";

/// Deletes the change log rows made before `$1`: those below the first one
/// made since, in sequence order, which is the order they were made (found
/// without an index on the time). The newest row always stays: SQLite
/// would give its sequence number out again.
pub(super) const PRUNE_CHANGE_LOG: &str = "DELETE FROM change_log WHERE seq < COALESCE(
       (SELECT seq FROM change_log WHERE at >= $1 ORDER BY seq LIMIT 1),
       (SELECT MAX(seq) FROM change_log))";

/// Empties table `table` of tenant `$1`.
pub(super) fn clear(table: &str) -> String {
    format!("DELETE FROM {table} WHERE tenant_id = $1")
}

/// A subscription's delivery state, as [`crate::store::Delivery`] reads it.
const DELIVERY_COLUMNS: &str = "tenant_id, id, entity, doc, position_from, position_to,
    position_after, failures, failing_since";

/// Stores a subscription: `$1` tenant, `$2` id, `$3` entity set, `$4` doc,
/// `$5` expiry, `$6` change log position, `$7` now (due at once).
pub(super) const CREATE_SUBSCRIPTION: &str = "INSERT INTO subscriptions
    (tenant_id, id, entity, doc, expires_at, position_from, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `$1` tenant, `$2` id, `$3` doc, `$4` expiry.
pub(super) const UPDATE_SUBSCRIPTION: &str =
    "UPDATE subscriptions SET doc = $3, expires_at = $4 WHERE tenant_id = $1 AND id = $2";

pub(super) const DELETE_SUBSCRIPTION: &str =
    "DELETE FROM subscriptions WHERE tenant_id = $1 AND id = $2";

pub(super) const DELETE_EXPIRED_SUBSCRIPTIONS: &str =
    "DELETE FROM subscriptions WHERE expires_at <= $1";

/// Saves a delivery while `$3` holds its lease: `$1` tenant, `$2` id,
/// `$4`–`$8` its state, `$9` its next attempt.
pub(super) const SAVE_DELIVERY: &str = "UPDATE subscriptions SET position_from = $4,
    position_to = $5, position_after = $6, failures = $7, failing_since = $8,
    next_attempt_at = $9
    WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3";

/// Leases due subscriptions to `$1` until `$3` (`$2` now, `$4` how many);
/// `{lock}` is PostgreSQL's `FOR UPDATE SKIP LOCKED`, empty on SQLite
/// (whose one writer needs none).
pub(super) fn claim_deliveries(lock: &str) -> String {
    format!(
        "UPDATE subscriptions SET lease_owner = $1, lease_until = $3
         WHERE (tenant_id, id) IN (
             SELECT tenant_id, id FROM subscriptions
             WHERE next_attempt_at <= $2 AND expires_at > $2
               AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $2)
             ORDER BY next_attempt_at LIMIT $4 {lock})
         RETURNING {DELIVERY_COLUMNS}"
    )
}

// ---------------------------------------------------------------- watching agents

/// Rows for the agents of entity set `$3` (in `{table}`) of tenant `$1`
/// that have none, due at `$2`.
pub(super) fn enrol_agents(table: &str) -> String {
    format!(
        "INSERT INTO agent_watch (tenant_id, entity, agent_id, due_at)
         SELECT $1, $3, e.id, $2 FROM {table} e
         WHERE e.tenant_id = $1 AND NOT EXISTS (
             SELECT 1 FROM agent_watch w
             WHERE w.tenant_id = $1 AND w.entity = $3 AND w.agent_id = e.id)
         ON CONFLICT DO NOTHING"
    )
}

/// Leases tenant `$5`'s due agents to `$1` until `$3` (`$2` now, `$4` how
/// many); `{lock}` as in [`claim_deliveries`].
pub(super) fn claim_checks(lock: &str) -> String {
    format!(
        "UPDATE agent_watch SET lease_owner = $1, lease_until = $3
         WHERE (tenant_id, entity, agent_id) IN (
             SELECT tenant_id, entity, agent_id FROM agent_watch
             WHERE tenant_id = $5 AND due_at <= $2
               AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $2)
             ORDER BY due_at LIMIT $4 {lock})
         RETURNING entity, agent_id, doc"
    )
}

pub(super) const SAVE_CHECK: &str = "UPDATE agent_watch SET state = $5, doc = $6, due_at = $7,
    lease_owner = NULL, lease_until = NULL
    WHERE tenant_id = $1 AND entity = $2 AND agent_id = $3 AND lease_owner = $4";

pub(super) const FORGET_AGENT: &str =
    "DELETE FROM agent_watch WHERE tenant_id = $1 AND entity = $2 AND agent_id = $3";

pub(super) const CHECK_ALL_NOW: &str = "UPDATE agent_watch SET due_at = $2 WHERE tenant_id = $1";

/// An agent's last outcome; none for one never checked or with nothing to check.
pub(super) const GET_HEALTH: &str = "SELECT doc FROM agent_watch
    WHERE tenant_id = $1 AND entity = $2 AND agent_id = $3 AND state IS NOT NULL";

/// Checked agents of tenant `$1` after (`$2`, `$3`), `$4` of them; with
/// `by_state`, of state `$5` only.
pub(super) fn list_health(by_state: bool) -> String {
    let state = if by_state {
        "AND state = $5"
    } else {
        "AND state IS NOT NULL"
    };
    format!(
        "SELECT entity, agent_id, doc FROM agent_watch
         WHERE tenant_id = $1 {state} AND (entity > $2 OR (entity = $2 AND agent_id > $3))
         ORDER BY entity, agent_id LIMIT $4"
    )
}

pub(super) const HEALTH_COUNTS: &str = "SELECT state, COUNT(*) FROM agent_watch
    WHERE state IS NOT NULL GROUP BY state ORDER BY state";

pub(super) const A2A_SETTINGS: &str =
    "SELECT tenant_id, doc FROM copilot_tenant_settings WHERE name = 'a2a' ORDER BY tenant_id";

/// Local users (`UserStore`): `$1` tenant, `$2` name key, `$3` doc.
pub(super) const INSERT_USER: &str = "INSERT INTO local_users (tenant_id, name_key, doc)
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// `$1` tenant, `$2` name key.
pub(super) const GET_USER: &str = "SELECT doc, failed_sign_ins, locked_until FROM local_users
     WHERE tenant_id = $1 AND name_key = $2";
/// `$1` tenant.
pub(super) const LIST_USERS: &str = "SELECT doc, failed_sign_ins, locked_until FROM local_users
     WHERE tenant_id = $1 ORDER BY name_key";
/// `$1` tenant, `$2` name key.
pub(super) const DELETE_USER: &str =
    "DELETE FROM local_users WHERE tenant_id = $1 AND name_key = $2";
/// One more failed sign-in of user `$2` of tenant `$1`: the `$3`th in a
/// row locks it until `$4` and starts the count again. One statement, so
/// that replicas counting at once lose no failure.
pub(super) const FAIL_SIGN_IN: &str = "UPDATE local_users SET
       failed_sign_ins = CASE WHEN failed_sign_ins + 1 >= $3 THEN 0 ELSE failed_sign_ins + 1 END,
       locked_until = CASE WHEN failed_sign_ins + 1 >= $3 THEN $4 ELSE locked_until END
     WHERE tenant_id = $1 AND name_key = $2
     RETURNING doc, failed_sign_ins, locked_until";
/// A successful sign-in of user `$2` of tenant `$1`.
pub(super) const SIGNED_IN: &str = "UPDATE local_users SET failed_sign_ins = 0, locked_until = NULL
     WHERE tenant_id = $1 AND name_key = $2 AND (failed_sign_ins <> 0 OR locked_until IS NOT NULL)";
/// Authorization codes: `$1` the code's key, `$2` tenant, `$3` doc, `$4` expiry.
pub(super) const INSERT_CODE: &str =
    "INSERT INTO authorization_codes (code_key, tenant_id, doc, expires_at, redeemed)
     VALUES ($1, $2, $3, $4, 0)";
/// Removes the codes that expired before `$1`.
pub(super) const PRUNE_CODES: &str = "DELETE FROM authorization_codes WHERE expires_at < $1";
/// Redeems code `$1` if no one has: its doc, else no row.
pub(super) const REDEEM_CODE: &str =
    "UPDATE authorization_codes SET redeemed = 1 WHERE code_key = $1 AND redeemed = 0
     RETURNING doc";
/// Whether code `$1` is kept (it was redeemed before when `REDEEM_CODE` found nothing).
pub(super) const CODE_KEPT: &str = "SELECT 1 FROM authorization_codes WHERE code_key = $1";

#[cfg(test)]
mod tests {
    use super::*;

    fn every_statement() -> Vec<String> {
        let mut all = vec![
            DELETE_INSTANCE_TAGS.to_owned(),
            COPY_MANIFEST_TAGS.to_owned(),
            COUNT_LINKING.to_owned(),
            INSERT_MEMBER.to_owned(),
            DELETE_MEMBER.to_owned(),
            MEMBERSHIPS_AFTER.to_owned(),
        ];
        all.extend(super::super::TENANT_TABLES.iter().map(|t| clear(t)));
        all.extend(RELINK_MANIFEST_TAGS.map(str::to_owned));
        for e in Entity::ALL {
            all.push(delete_row(e));
            all.extend(dependents(e).iter().map(|s| s.to_string()));
            all.extend(side_values(e).map(|(s, _)| s.to_owned()));
        }
        all
    }

    /// The `$n` of `sql`, in order of appearance.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            found.push(digits.parse().expect("a numbered placeholder"));
        }
        found
    }

    /// Whether `sql` names `$1`, `$2`, … each first after the one before.
    fn in_first_appearance_order(sql: &str) -> bool {
        let mut next = 1;
        for n in placeholders(sql) {
            if n > next {
                return false;
            }
            next += usize::from(n == next);
        }
        next > 1
    }

    #[test]
    fn every_shared_statement_names_its_placeholders_in_first_appearance_order() {
        for sql in every_statement() {
            assert!(in_first_appearance_order(&sql), "{sql}");
        }
    }

    #[test]
    fn the_order_check_refuses_two_before_one_and_a_statement_without_placeholders() {
        assert!(!in_first_appearance_order("SELECT $2 WHERE x = $1"));
        assert!(!in_first_appearance_order("SELECT 1"));
        assert!(in_first_appearance_order("SELECT $1, $2 WHERE x = $1"));
    }
}
