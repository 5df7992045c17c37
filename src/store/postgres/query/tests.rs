use super::*;
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use crate::odata::QueryOptions;

mod live;

/// A checked list query from an OData query string.
fn query(ty: &'static EntityType, text: &str) -> ListQuery {
    let q = QueryOptions::parse(Some(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
    q.check_shape(ty, &[])
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    ListQuery {
        criteria: Criteria {
            filter: q.filter,
            search: q.search,
        },
        order: q.orderby,
        limit: 10,
        ..ListQuery::default()
    }
}

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

/// The condition a filter adds after the tenant's, and its parameters after
/// the tenant's.
fn condition(ty: &'static EntityType, filter: &str) -> (String, Vec<Param>) {
    let q = query(ty, &format!("$filter={filter}"));
    let c = count("t", ty, Source::Table("agent_instances"), &q.criteria);
    let prefix = "SELECT count(*) FROM agent_instances e WHERE e.tenant_id = $1::text AND ";
    let sql = c
        .sql
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{filter}: {}", c.sql))
        .to_owned();
    assert_eq!(c.params[0], text("t"), "{filter}");
    (sql, c.params[1..].to_vec())
}

#[test]
fn filters_translate_to_the_expected_conditions() {
    let doc = "(e.doc::jsonb)";
    let table: Vec<(&'static EntityType, &str, String, Vec<Param>)> = vec![
        (
            &AGENT_INSTANCE,
            "displayName eq 'Ab'",
            "(lower(e.display_name) IS NOT NULL AND lower(e.display_name) = $2::text)".into(),
            vec![text("ab")],
        ),
        (
            &AGENT_CARD_MANIFEST,
            "displayName in ('A', null)",
            "((lower(e.display_name) IS NOT NULL AND lower(e.display_name) IN ($2::text)) OR (lower(e.display_name) IS NULL))".into(),
            vec![text("a")],
        ),
        (
            &AGENT_INSTANCE,
            "'a' ne managedBy",
            "(e.managed_by IS NULL OR e.managed_by <> $2::text)".into(),
            vec![text("a")],
        ),
        (
            &AGENT_INSTANCE,
            "url eq null",
            format!("((({doc} #>> '{{\"url\"}}') COLLATE \"C\") IS NULL)"),
            vec![],
        ),
        (
            &AGENT_INSTANCE,
            "null ne id",
            "(e.id IS NOT NULL)".into(),
            vec![],
        ),
        (&AGENT_INSTANCE, "null eq null", "TRUE".into(), vec![]),
        (&AGENT_INSTANCE, "id gt null", "FALSE".into(), vec![]),
        (
            &AGENT_INSTANCE,
            "displayName eq sourceAgentId",
            format!(
                "(lower(e.display_name) IS NOT DISTINCT FROM lower((({doc} #>> '{{\"sourceAgentId\"}}') COLLATE \"C\")))"
            ),
            vec![],
        ),
        (
            &AGENT_INSTANCE,
            "createdDateTime ge 2025-01-01",
            "(e.created_at IS NOT NULL AND e.created_at >= $2::text)".into(),
            vec![text("2025-01-01T00:00:00.0000000Z")],
        ),
        (
            &AGENT_INSTANCE,
            "'b' lt 'a'",
            "(($2::text COLLATE \"C\") < ($3::text COLLATE \"C\"))".into(),
            vec![text("b"), text("a")],
        ),
        (
            &AGENT_CARD_MANIFEST,
            "capabilities/streaming eq true",
            format!(
                "((CASE WHEN jsonb_typeof(({doc} #> '{{\"capabilities\",\"streaming\"}}')) = 'boolean' THEN (({doc} #> '{{\"capabilities\",\"streaming\"}}'))::boolean END) IS NOT NULL AND (CASE WHEN jsonb_typeof(({doc} #> '{{\"capabilities\",\"streaming\"}}')) = 'boolean' THEN (({doc} #> '{{\"capabilities\",\"streaming\"}}'))::boolean END) = $2::boolean)"
            ),
            vec![Param::Bool(true)],
        ),
        (
            &AGENT_CARD_MANIFEST,
            "supportsAuthenticatedExtendedCard",
            format!(
                "((CASE WHEN jsonb_typeof(({doc} #> '{{\"supportsAuthenticatedExtendedCard\"}}')) = 'boolean' THEN (({doc} #> '{{\"supportsAuthenticatedExtendedCard\"}}'))::boolean END) IS TRUE)"
            ),
            vec![],
        ),
        (&AGENT_INSTANCE, "true and not false", "(TRUE AND (NOT FALSE))".into(), vec![]),
        (
            &AGENT_INSTANCE,
            "managedBy in ('a', null)",
            "((e.managed_by IS NOT NULL AND e.managed_by IN ($2::text)) OR (e.managed_by IS NULL))"
                .into(),
            vec![text("a")],
        ),
        (&AGENT_INSTANCE, "'a' in ('b', 'a')", "TRUE".into(), vec![]),
        (
            &AGENT_INSTANCE,
            "startswith(displayName, 'Ag_%')",
            "(e.display_name IS NOT NULL AND lower(e.display_name) LIKE $2::text ESCAPE '\\' AND lower(e.display_name) >= $3::text AND lower(e.display_name) < $4::text)"
                .into(),
            vec![text("ag\\_\\%%"), text("ag_%"), text("ag_&")],
        ),
        (
            &AGENT_INSTANCE,
            "endswith(managedBy, 'X')",
            "(e.managed_by IS NOT NULL AND lower(e.managed_by) LIKE $2::text ESCAPE '\\')".into(),
            vec![text("%x")],
        ),
        (
            &AGENT_INSTANCE,
            "contains('abc', displayName)",
            "($2::text IS NOT NULL AND e.display_name IS NOT NULL AND strpos(lower(($2::text) COLLATE \"C\"), lower((e.display_name) COLLATE \"C\")) > 0)"
                .into(),
            vec![text("abc")],
        ),
        (&AGENT_INSTANCE, "startswith(id, null)", "FALSE".into(), vec![]),
        (
            &AGENT_INSTANCE,
            "ownerIds/any(o: o in ('a', 'b'))",
            "(e.id IN (SELECT instance_id FROM agent_instance_owners WHERE tenant_id = $2::text AND owner_id IN ($3::text, $4::text)))"
                .into(),
            vec![text("t"), text("a"), text("b")],
        ),
        (
            &AGENT_INSTANCE,
            "agentCardManifest/skills/any(s: s/tags/any(t: 'x' eq t))",
            "(e.id IN (SELECT instance_id FROM agent_instance_skill_tags WHERE tenant_id = $2::text AND tag IN ($3::text)))"
                .into(),
            vec![text("t"), text("x")],
        ),
        (
            &AGENT_CARD_MANIFEST,
            "skills/any(s: s/tags/any(t: t eq 'x'))",
            "(e.id IN (SELECT manifest_id FROM agent_card_manifest_skill_tags WHERE tenant_id = $2::text AND tag IN ($3::text)))"
                .into(),
            vec![text("t"), text("x")],
        ),
        (
            &AGENT_INSTANCE,
            "ownerIds/all(o: o ne 'a')",
            format!(
                "(NOT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(({doc} #> '{{\"ownerIds\"}}')) = 'array' THEN ({doc} #> '{{\"ownerIds\"}}') END) AS j1(value) WHERE NOT (((j1.value #>> '{{}}') COLLATE \"C\") IS NULL OR ((j1.value #>> '{{}}') COLLATE \"C\") <> $2::text)))"
            ),
            vec![text("a")],
        ),
        (
            &AGENT_INSTANCE,
            "additionalInterfaces/any()",
            format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(({doc} #> '{{\"additionalInterfaces\"}}')) = 'array' THEN ({doc} #> '{{\"additionalInterfaces\"}}') END) AS j1(value))"
            ),
            vec![],
        ),
        (
            &AGENT_INSTANCE,
            "agentCardManifest/provider/organization eq 'C'",
            "((SELECT (((m1.doc::jsonb) #>> '{\"provider\",\"organization\"}') COLLATE \"C\") FROM agent_card_manifests m1 WHERE m1.tenant_id = e.tenant_id AND m1.id = e.manifest_id) IS NOT NULL AND (SELECT (((m1.doc::jsonb) #>> '{\"provider\",\"organization\"}') COLLATE \"C\") FROM agent_card_manifests m1 WHERE m1.tenant_id = e.tenant_id AND m1.id = e.manifest_id) = $2::text)".into(),
            vec![text("C")],
        ),
        (
            &AGENT_INSTANCE,
            "agentCardManifest/skills/any(s: s/id eq displayName)",
            "EXISTS (SELECT 1 FROM agent_card_manifests m1 WHERE m1.tenant_id = e.tenant_id AND m1.id = e.manifest_id AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(((m1.doc::jsonb) #> '{\"skills\"}')) = 'array' THEN ((m1.doc::jsonb) #> '{\"skills\"}') END) AS j2(value) WHERE (lower(((j2.value #>> '{\"id\"}') COLLATE \"C\")) IS NOT DISTINCT FROM lower(e.display_name))))".into(),
            vec![],
        ),
    ];
    let mut wrong = Vec::new();
    for (ty, filter, sql, params) in table {
        let (got, got_params) = condition(ty, filter);
        if (&got, &got_params) != (&sql, &params) {
            wrong.push(format!(
                "{filter}\n  got:      {got} {got_params:?}\n  expected: {sql} {params:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_page_reads_one_extra_row_in_key_order_after_the_cursor() {
    let mut q = query(
        &AGENT_INSTANCE,
        "$orderby=displayName desc,agentCardManifest/capabilities/streaming",
    );
    q.after = Some(Cursor {
        values: vec![serde_json::json!("b"), serde_json::Value::Null],
        id: "i9".into(),
    });
    q.limit = 20;
    q.skip = 3;
    let c = list("t", &AGENT_INSTANCE, Source::Table("agent_instances"), &q);
    let streaming = "(SELECT (CASE WHEN jsonb_typeof(((m1.doc::jsonb) #> '{\"capabilities\",\"streaming\"}')) = 'boolean' THEN (((m1.doc::jsonb) #> '{\"capabilities\",\"streaming\"}'))::boolean END) FROM agent_card_manifests m1 WHERE m1.tenant_id = e.tenant_id AND m1.id = e.manifest_id)";
    assert_eq!(
        c.sql,
        format!(
            "SELECT e.id, e.doc::text, e.version, COALESCE(to_jsonb(lower(e.display_name)), 'null'::jsonb), COALESCE(to_jsonb({streaming}), 'null'::jsonb) \
             FROM agent_instances e WHERE e.tenant_id = $1::text \
             AND (lower(e.display_name) < $2::text OR lower(e.display_name) IS NULL OR (lower(e.display_name) = $2::text AND (({streaming} IS NULL AND e.id > $3::text) OR {streaming} IS NOT NULL))) \
             ORDER BY lower(e.display_name) DESC NULLS LAST, {streaming} ASC NULLS FIRST, e.id LIMIT $4::bigint OFFSET $5::bigint"
        )
    );
    assert_eq!(
        c.params,
        vec![
            text("t"),
            text("b"),
            text("i9"),
            Param::Int(21),
            Param::Int(3)
        ]
    );
}

#[test]
fn unordered_pages_and_counts_read_their_relation() {
    let q = ListQuery {
        after: Some(Cursor {
            values: vec![],
            id: "i1".into(),
        }),
        limit: 5,
        ..ListQuery::default()
    };
    let c = list("t", &AGENT_INSTANCE, Source::MembersOf("c1"), &q);
    assert_eq!(
        c.sql,
        "SELECT e.id, e.doc::text, e.version FROM agent_collection_members r JOIN agent_instances e ON e.tenant_id = r.tenant_id AND e.id = r.instance_id \
         WHERE r.tenant_id = $1::text AND r.collection_id = $2::text AND e.id > $3::text ORDER BY e.id LIMIT $4::bigint OFFSET $5::bigint"
    );
    assert_eq!(
        c.params,
        vec![
            text("t"),
            text("c1"),
            text("i1"),
            Param::Int(6),
            Param::Int(0)
        ]
    );
    let q = query(&AGENT_COLLECTION, "$search=\"tea\" OR \"description:x_y\"");
    let c = count(
        "t",
        &AGENT_COLLECTION,
        Source::CollectionsOf("i1"),
        &q.criteria,
    );
    assert_eq!(
        c.sql,
        "SELECT count(*) FROM agent_collection_members r JOIN agent_collections e ON e.tenant_id = r.tenant_id AND e.id = r.collection_id \
         WHERE r.tenant_id = $1::text AND r.instance_id = $2::text AND \
         ((lower(e.display_name) LIKE $3::text ESCAPE '\\' OR lower(e.display_name) LIKE $4::text ESCAPE '\\' \
         OR lower((((e.doc::jsonb) #>> '{\"description\"}') COLLATE \"C\")) LIKE $5::text ESCAPE '\\' OR lower((((e.doc::jsonb) #>> '{\"description\"}') COLLATE \"C\")) LIKE $6::text ESCAPE '\\') \
         OR (lower((((e.doc::jsonb) #>> '{\"description\"}') COLLATE \"C\")) LIKE $7::text ESCAPE '\\' OR lower((((e.doc::jsonb) #>> '{\"description\"}') COLLATE \"C\")) LIKE $8::text ESCAPE '\\'))"
    );
    assert_eq!(
        c.params[2..],
        [
            text("tea%"),
            text("% tea%"),
            text("tea%"),
            text("% tea%"),
            text("x\\_y%"),
            text("% x\\_y%")
        ]
    );
}

#[test]
fn path_literals_hold_identifier_characters_only() {
    assert_eq!(
        json_path(&["a'b".into(), "c\"}d".into(), String::new()]),
        "'{\"ab\",\"cd\",\"\"}'"
    );
}

#[test]
fn a_prefix_ends_at_the_next_string_in_byte_order() {
    assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
    assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{10FFFF}"), None);
}

#[test]
fn parameters_refuse_a_type_of_another_variant() {
    let mut out = BytesMut::new();
    assert!(
        Param::Text("a".into())
            .to_sql_checked(&Type::TEXT, &mut out)
            .is_ok()
    );
    assert!(
        Param::Bool(true)
            .to_sql_checked(&Type::TEXT, &mut out)
            .is_err()
    );
    assert!(Param::Int(1).to_sql_checked(&Type::INT8, &mut out).is_ok());
    assert!(
        Param::Float(1.5)
            .to_sql_checked(&Type::FLOAT8, &mut out)
            .is_ok()
    );
}
