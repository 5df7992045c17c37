//! A PATCH as one statement.
//!
//! A PATCH that changes nothing but its row (the document and its columns)
//! and appends its audit record and change-log row needs no lock held
//! across round trips. Its row is read without one, the new document is
//! made from it as usual, and the writes go out as one statement: the
//! UPDATE, guarded by the version that was read, and the INSERTs, each
//! taking its one row from the UPDATE's answer. When another writer got
//! there first the UPDATE finds no row and nothing is written; the write is
//! then run again in a transaction that locks the row (`SELECT … FOR
//! UPDATE`), which always goes through.
//!
//! Against the locking transaction this saves BEGIN, COMMIT and the
//! statements' separate exchanges: PostgreSQL answers each statement of a
//! transaction with its own message and wake-up.

use super::{Entity, Fail, Param, Step};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

/// What a guarded write has read and queued.
#[derive(Default)]
pub(super) struct Guarded {
    /// The row read: its table, tenant, id and version.
    pub read: Option<(Entity, String, String, i64)>,
    /// The statements queued, in order.
    pub parts: Vec<(String, Vec<Param>)>,
}

impl Guarded {
    /// Sends what was queued as one statement on `c`. `Fail::NeedsLock`
    /// when it cannot be one, or when the row had changed and nothing was
    /// written.
    pub(super) async fn send(self, c: &impl GenericClient) -> Step<()> {
        let shapes: Vec<(&str, usize)> = self
            .parts
            .iter()
            .map(|(sql, params)| (sql.as_str(), params.len()))
            .collect();
        let (Some((.., version)), Some(sql)) = (&self.read, compose(&shapes)) else {
            return Err(Fail::NeedsLock);
        };
        let stmt = c.prepare_cached(&sql).await?;
        let mut params: Vec<&(dyn ToSql + Sync)> = self
            .parts
            .iter()
            .flat_map(|(_, params)| params.iter())
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        params.push(version);
        let updated: i64 = c.query_one(&stmt, &params).await?.try_get(0)?;
        if updated == 1 {
            Ok(())
        } else {
            Err(Fail::NeedsLock)
        }
    }
}

/// `sql` with every parameter number `$n` raised by `by`.
fn renumber(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The one statement for `parts`, the statements a write queued in order
/// (each with its number of parameters). The first must be an UPDATE naming
/// its row by `WHERE tenant_id = $1 AND id = $2`; it is made to find the
/// row only at the version given as the last parameter, after those of
/// every part. `None` when the write is not such an UPDATE followed by
/// plain INSERTs: it must then be run in a locking transaction.
///
/// The statement answers with the number of rows updated, 0 or 1.
pub(super) fn compose(parts: &[(&str, usize)]) -> Option<String> {
    let (&(update, mut used), inserts) = parts.split_first()?;
    let update = update.trim();
    if !update.starts_with("UPDATE ") || !update.ends_with("WHERE tenant_id = $1 AND id = $2") {
        return None;
    }
    let mut ctes = Vec::with_capacity(parts.len());
    let version = parts.iter().map(|(_, n)| n).sum::<usize>() + 1;
    ctes.push(format!(
        "updated AS ({update} AND version = ${version} RETURNING 1)"
    ));
    for (n, (insert, count)) in inserts.iter().enumerate() {
        let (head, values) = insert.trim().split_once(" VALUES (")?;
        let values = values.strip_suffix(')')?;
        // One row of values, and nothing after them (no ON CONFLICT).
        if !head.starts_with("INSERT INTO ") || values.contains("), (") {
            return None;
        }
        ctes.push(format!(
            "inserted{n} AS ({head} SELECT {} FROM updated)",
            renumber(values, used)
        ));
        used += count;
    }
    Some(format!(
        "WITH {} SELECT count(*) FROM updated",
        ctes.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::{compose, renumber};

    #[test]
    fn renumbering_raises_every_parameter_and_leaves_the_rest() {
        assert_eq!(
            renumber("$1, $2, $3, $3, 1, $4::text::json", 9),
            "$10, $11, $12, $12, 1, $13::text::json"
        );
        assert_eq!(renumber("no parameters", 3), "no parameters");
        assert_eq!(renumber("a lone $ sign", 3), "a lone $ sign");
    }

    #[test]
    fn an_update_and_its_inserts_become_one_guarded_statement() {
        let sql = compose(&[
            (
                "UPDATE t SET version = $3, doc = $4::text::json\n WHERE tenant_id = $1 AND id = $2",
                4,
            ),
            ("INSERT INTO log (a, b) VALUES ($1, $2)", 2),
            ("INSERT INTO audit (a, b, c) VALUES ($1, $2, $2)", 2),
        ])
        .unwrap();
        assert_eq!(
            sql,
            "WITH updated AS (UPDATE t SET version = $3, doc = $4::text::json\n \
             WHERE tenant_id = $1 AND id = $2 AND version = $9 RETURNING 1), \
             inserted0 AS (INSERT INTO log (a, b) SELECT $5, $6 FROM updated), \
             inserted1 AS (INSERT INTO audit (a, b, c) SELECT $7, $8, $8 FROM updated) \
             SELECT count(*) FROM updated"
        );
    }

    #[test]
    fn anything_but_an_update_of_one_row_followed_by_plain_inserts_is_refused() {
        let update = ("UPDATE t SET doc = $3 WHERE tenant_id = $1 AND id = $2", 3);
        let refused: &[&[(&str, usize)]] = &[
            &[],
            &[("INSERT INTO t (a) VALUES ($1)", 1)],
            &[("UPDATE t SET doc = $2 WHERE id = $1", 2)],
            &[update, ("DELETE FROM side WHERE tenant_id = $1", 1)],
            &[update, ("INSERT INTO side (a) SELECT v FROM unnest($1)", 1)],
            &[update, update],
            &[update, ("INSERT INTO t (a) VALUES ($1), ($2)", 2)],
            &[
                update,
                ("INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING", 1),
            ],
        ];
        for parts in refused {
            assert_eq!(compose(parts), None, "{parts:?}");
        }
    }
}
