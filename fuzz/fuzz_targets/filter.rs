//! Feeds arbitrary text to the OData query parsers and, for what they
//! accept and the type checks pass, to both backends' SQL translation: the
//! parsers must answer Ok or a clean error, and every checked query must
//! become statements the backend accepts (SQLite prepares them against the
//! real schema; PostgreSQL's placeholders must match their parameters).
#![no_main]

use agentry::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use agentry::odata::{Cursor, QueryOptions, filter};
use agentry::store::{Criteria, ListQuery, postgres, sqlite};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let types = [&AGENT_INSTANCE, &AGENT_CARD_MANIFEST, &AGENT_COLLECTION];
    if let Ok(expr) = filter::parse(text) {
        for ty in types {
            let _ = filter::check(ty, &expr);
        }
    }
    let Ok(q) = QueryOptions::parse(Some(text)) else { return };
    for ty in types {
        if q.check_shape(ty, &[]).is_err() {
            continue;
        }
        let mut lq = ListQuery {
            criteria: Criteria {
                filter: q.filter.clone(),
                search: q.search.clone(),
            },
            order: q.orderby.clone(),
            skip: q.skip.unwrap_or(0),
            ..ListQuery::first(q.top.unwrap_or(100))
        };
        // Pages after the first continue from a cursor of the sort values.
        let after = [Value::Null, Value::String(text.chars().take(8).collect())];
        for value in [None, Some(&after[0]), Some(&after[1])] {
            lq.after = value.map(|v| Cursor {
                values: vec![v.clone(); lq.order.len()],
                id: "i".into(),
            });
            if let Err(e) = sqlite::check_translation(ty, &lq) {
                panic!("SQLite: {text:?} → {e}");
            }
            if let Err(e) = postgres::check_translation(ty, &lq) {
                panic!("PostgreSQL: {text:?} → {e}");
            }
        }
    }
});
