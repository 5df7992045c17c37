//! The storage conformance suite: the same stories against every backend,
//! SQLite and PostgreSQL (a fresh database of the shared test cluster).

use agentry::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use agentry::domain::{EntityWrite, ManifestChange, WriteContext, parse_write};
use agentry::odata::Cursor;
use agentry::store::{Criteria, Entity, ListQuery, Relation, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let pg = crate::pg::shared().create_database();
    vec![
        Backend {
            name: "sqlite",
            store: agentry::store::open(&url).await.unwrap(),
            _dir: dir,
        },
        Backend {
            name: "postgres",
            store: agentry::store::open(&pg).await.unwrap(),
            _dir: tempfile::tempdir().unwrap(),
        },
    ]
}

fn ctx(now: &str) -> WriteContext {
    WriteContext {
        now: now.into(),
        actor: Some("actor".into()),
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    }
}

/// A delete's context: the entity must be at `version` (`None`: any).
fn deleting(version: Option<i64>) -> WriteContext {
    WriteContext {
        if_match: version,
        ..WriteContext::default()
    }
}

fn create(body: Value) -> EntityWrite {
    parse_write(&AGENT_INSTANCE, body, true).unwrap()
}

fn update(body: Value) -> EntityWrite {
    parse_write(&AGENT_INSTANCE, body, false).unwrap()
}

fn doc(s: &agentry::store::Stored) -> Value {
    serde_json::from_str(&s.doc).unwrap()
}

#[tokio::test]
async fn an_instance_is_created_read_updated_and_deleted_with_versions() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        let created = st
            .create_instance(
                "t",
                "i",
                create(json!({"displayName": "a", "ownerIds": ["o"]})),
                &c,
            )
            .await
            .unwrap();
        assert_eq!(created.version, 1, "{}", b.name);
        assert_eq!(
            st.get_entity(Entity::Instance, "t", "i").await.unwrap(),
            Some(created.clone()),
            "{}",
            b.name
        );
        assert_eq!(
            st.get_entity(Entity::Instance, "other-tenant", "i")
                .await
                .unwrap(),
            None,
            "{}",
            b.name
        );

        let later = ctx("2025-01-02T00:00:00.0000000Z");
        let updated = st
            .update_instance("t", "i", update(json!({"url": "https://x"})), &later)
            .await
            .unwrap();
        assert_eq!(updated.version, 2, "{}", b.name);
        let d = doc(&updated);
        assert_eq!(
            (d["url"].as_str(), d["displayName"].as_str()),
            (Some("https://x"), Some("a")),
            "{}",
            b.name
        );
        assert_eq!(d["lastModifiedDateTime"], "2025-01-02T00:00:00.0000000Z");

        let again = st
            .create_instance(
                "t",
                "i",
                create(json!({"displayName": "b", "ownerIds": []})),
                &c,
            )
            .await;
        assert!(
            matches!(
                again,
                Err(StoreError::AlreadyExists {
                    kind: Entity::Instance,
                    ..
                })
            ),
            "{}",
            b.name
        );
        st.delete_entity(Entity::Instance, "t", "i", &deleting(None))
            .await
            .unwrap();
        assert!(
            matches!(
                st.delete_entity(Entity::Instance, "t", "i", &deleting(None))
                    .await,
                Err(StoreError::NotFound { .. })
            ),
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn a_nested_manifest_is_created_then_updated_and_a_failed_write_leaves_nothing() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        st.create_instance(
            "t",
            "i",
            create(json!({"displayName": "a", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();
        st.update_instance(
            "t",
            "i",
            update(json!({"agentCardManifest": {"id": "m", "displayName": "card"}})),
            &c,
        )
        .await
        .unwrap();
        st.update_instance(
            "t",
            "i",
            update(json!({"agentCardManifest": {"version": "2"}})),
            &c,
        )
        .await
        .unwrap();
        let m = st.get_instance_manifest("t", "i").await.unwrap().unwrap();
        assert_eq!(
            (doc(&m)["displayName"].as_str(), doc(&m)["version"].as_str()),
            (Some("card"), Some("2")),
            "{}",
            b.name
        );
        assert_eq!(m.version, 2);

        // The instance update and the manifest creation are one transaction.
        let bad = EntityWrite {
            id: None,
            props: update(json!({"displayName": "renamed"})).props,
            manifest: Some(ManifestChange::Bind("missing".into())),
        };
        assert!(matches!(
            st.update_instance("t", "i", bad, &c).await,
            Err(StoreError::NotFound {
                kind: Entity::Manifest,
                ..
            })
        ));
        assert_eq!(
            doc(&st
                .get_entity(Entity::Instance, "t", "i")
                .await
                .unwrap()
                .unwrap())["displayName"],
            "a",
            "{}",
            b.name
        );

        let in_use = st
            .delete_entity(Entity::Manifest, "t", "m", &deleting(None))
            .await;
        assert!(
            matches!(in_use, Err(StoreError::ManifestInUse { instances: 1, .. })),
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn memberships_follow_their_instances_and_collections() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        for id in ["i1", "i2"] {
            st.create_instance(
                "t",
                id,
                create(json!({"displayName": id, "ownerIds": []})),
                &c,
            )
            .await
            .unwrap();
        }
        let coll = parse_write(
            &AGENT_COLLECTION,
            json!({"displayName": "Team", "ownerIds": []}),
            true,
        )
        .unwrap();
        st.create_collection("t", "c", coll, &c).await.unwrap();
        st.add_member("t", "c", "i1", &WriteContext::default())
            .await
            .unwrap();
        st.add_member("t", "c", "i2", &WriteContext::default())
            .await
            .unwrap();
        assert!(matches!(
            st.add_member("t", "c", "i2", &WriteContext::default())
                .await,
            Err(StoreError::AlreadyMember { .. })
        ));
        assert!(matches!(
            st.add_member("t", "c", "nope", &WriteContext::default())
                .await,
            Err(StoreError::NotFound {
                kind: Entity::Instance,
                ..
            })
        ));
        assert_eq!(
            st.count_entities(
                Entity::Instance,
                "t",
                Relation::MembersOf("c"),
                &Criteria::default()
            )
            .await
            .unwrap(),
            2,
            "{}",
            b.name
        );

        st.delete_entity(Entity::Instance, "t", "i1", &deleting(None))
            .await
            .unwrap();
        let page = st
            .list_entities(
                Entity::Instance,
                "t",
                Relation::MembersOf("c"),
                &ListQuery::first(10),
            )
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["i2"],
            "{}",
            b.name
        );

        st.delete_entity(Entity::Collection, "t", "c", &deleting(None))
            .await
            .unwrap();
        assert_eq!(
            st.count_entities(
                Entity::Collection,
                "t",
                Relation::CollectionsOf("i2"),
                &Criteria::default()
            )
            .await
            .unwrap(),
            0,
            "{}",
            b.name
        );
        // The reserved collections are there from the first touch.
        assert_eq!(
            st.count_entities(Entity::Collection, "t", Relation::All, &Criteria::default())
                .await
                .unwrap(),
            2,
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn keyset_pages_start_strictly_after_the_cursor() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        for id in ["a", "b", "c", "d", "e"] {
            let w = parse_write(&AGENT_CARD_MANIFEST, json!({"displayName": id}), true).unwrap();
            st.create_manifest("t", id, w, &c).await.unwrap();
        }
        let first = st
            .list_entities(Entity::Manifest, "t", Relation::All, &ListQuery::first(2))
            .await
            .unwrap();
        assert_eq!((first.items.len(), first.more), (2, true));
        let next = st
            .list_entities(
                Entity::Manifest,
                "t",
                Relation::All,
                &ListQuery {
                    after: Some(Cursor {
                        values: vec![],
                        id: "b".into(),
                    }),
                    ..ListQuery::first(2)
                },
            )
            .await
            .unwrap();
        assert_eq!(
            next.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["c", "d"],
            "{}",
            b.name
        );
        let last = st
            .list_entities(
                Entity::Manifest,
                "t",
                Relation::All,
                &ListQuery {
                    after: Some(Cursor {
                        values: vec![],
                        id: "d".into(),
                    }),
                    ..ListQuery::first(2)
                },
            )
            .await
            .unwrap();
        assert_eq!((last.items.len(), last.more), (1, false), "{}", b.name);
        st.close().await;
    }
}

#[tokio::test]
async fn concurrent_patches_of_different_properties_all_survive() {
    for b in backends().await {
        let st = b.store.clone();
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        st.create_instance(
            "t",
            "hot",
            create(json!({"displayName": "a", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();
        let fields = [
            "url",
            "managedBy",
            "originatingStore",
            "sourceAgentId",
            "agentIdentityId",
            "agentIdentityBlueprintId",
            "agentUserId",
            "preferredTransport",
        ];
        let mut tasks = Vec::new();
        for round in 0..5 {
            for f in fields {
                let st = st.clone();
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let w =
                        parse_write(&AGENT_INSTANCE, json!({ f: format!("{f}-{round}") }), false)
                            .unwrap();
                    st.update_instance("t", "hot", w, &c).await.unwrap();
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let last = st
            .get_entity(Entity::Instance, "t", "hot")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            last.version,
            1 + 5 * fields.len() as i64,
            "{}: every write counted",
            b.name
        );
        let d = doc(&last);
        for f in fields {
            assert!(
                d[f].as_str().is_some_and(|v| v.starts_with(f)),
                "{}: {f} lost: {d}",
                b.name
            );
        }
        st.close().await;
    }
}

fn expecting(now: &str, version: i64) -> WriteContext {
    WriteContext {
        if_match: Some(version),
        ..ctx(now)
    }
}

fn is_precondition_failed(r: &Result<impl std::fmt::Debug, StoreError>, kind: Entity) -> bool {
    matches!(r, Err(StoreError::PreconditionFailed { kind: k, .. }) if *k == kind)
}

#[tokio::test]
async fn updates_with_a_stale_expected_version_are_refused_and_matching_ones_pass() {
    for b in backends().await {
        let st = &b.store;
        let now = "2025-01-01T00:00:00.0000000Z";
        let c = ctx(now);
        st.create_instance(
            "t",
            "i",
            create(json!({"displayName": "a", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();
        let m = parse_write(&AGENT_CARD_MANIFEST, json!({"displayName": "m"}), true).unwrap();
        st.create_manifest("t", "m", m, &c).await.unwrap();
        let coll = parse_write(
            &AGENT_COLLECTION,
            json!({"displayName": "Team", "ownerIds": []}),
            true,
        )
        .unwrap();
        st.create_collection("t", "c", coll, &c).await.unwrap();

        // Instances: a stale version changes nothing, the current one passes.
        let stale = st
            .update_instance(
                "t",
                "i",
                update(json!({"displayName": "stale"})),
                &expecting(now, 7),
            )
            .await;
        assert!(
            is_precondition_failed(&stale, Entity::Instance),
            "{}: {stale:?}",
            b.name
        );
        let kept = st
            .get_entity(Entity::Instance, "t", "i")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (kept.version, doc(&kept)["displayName"].as_str()),
            (1, Some("a")),
            "{}",
            b.name
        );
        let fresh = st
            .update_instance(
                "t",
                "i",
                update(json!({"displayName": "b"})),
                &expecting(now, 1),
            )
            .await
            .unwrap();
        assert_eq!(fresh.version, 2, "{}", b.name);
        // The version just used is stale now.
        let again = st
            .update_instance(
                "t",
                "i",
                update(json!({"displayName": "c"})),
                &expecting(now, 1),
            )
            .await;
        assert!(
            is_precondition_failed(&again, Entity::Instance),
            "{}",
            b.name
        );

        // A nested manifest change follows the instance's precondition only:
        // refused with it (nothing created), accepted whatever the manifest's version.
        let nested = || update(json!({"agentCardManifest": {"id": "nested", "displayName": "n"}}));
        let refused = st
            .update_instance("t", "i", nested(), &expecting(now, 1))
            .await;
        assert!(
            is_precondition_failed(&refused, Entity::Instance),
            "{}",
            b.name
        );
        assert_eq!(
            st.get_entity(Entity::Manifest, "t", "nested")
                .await
                .unwrap(),
            None,
            "{}",
            b.name
        );
        st.update_instance("t", "i", nested(), &expecting(now, 2))
            .await
            .unwrap();
        let patch_nested = update(json!({"agentCardManifest": {"displayName": "n2"}}));
        let with_manifest = st
            .update_instance("t", "i", patch_nested, &expecting(now, 3))
            .await
            .unwrap();
        assert_eq!(with_manifest.version, 4, "{}", b.name);
        let nested_manifest = st
            .get_entity(Entity::Manifest, "t", "nested")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                nested_manifest.version,
                doc(&nested_manifest)["displayName"].as_str()
            ),
            (2, Some("n2")),
            "{}",
            b.name
        );

        // Manifests and collections.
        let props = |name: &str| match json!({ "displayName": name }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let stale = st
            .update_manifest("t", "m", props("x"), &expecting(now, 2))
            .await;
        assert!(
            is_precondition_failed(&stale, Entity::Manifest),
            "{}",
            b.name
        );
        let m = st
            .update_manifest("t", "m", props("x"), &expecting(now, 1))
            .await
            .unwrap();
        assert_eq!(m.version, 2, "{}", b.name);
        let stale = st
            .update_collection("t", "c", props("y"), &expecting(now, 5))
            .await;
        assert!(
            is_precondition_failed(&stale, Entity::Collection),
            "{}",
            b.name
        );
        let coll = st
            .update_collection("t", "c", props("y"), &expecting(now, 1))
            .await
            .unwrap();
        assert_eq!(coll.version, 2, "{}", b.name);

        // A missing entity stays NotFound with a precondition.
        let gone = st
            .update_instance("t", "nope", update(json!({"url": "u"})), &expecting(now, 1))
            .await;
        assert!(
            matches!(
                gone,
                Err(StoreError::NotFound {
                    kind: Entity::Instance,
                    ..
                })
            ),
            "{}",
            b.name
        );
        let gone = st
            .update_collection("t", "nope", props("z"), &expecting(now, 1))
            .await;
        assert!(
            matches!(
                gone,
                Err(StoreError::NotFound {
                    kind: Entity::Collection,
                    ..
                })
            ),
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn deletes_with_a_stale_expected_version_are_refused_and_matching_ones_pass() {
    for b in backends().await {
        let st = &b.store;
        let now = "2025-01-01T00:00:00.0000000Z";
        let c = ctx(now);
        st.create_instance(
            "t",
            "i",
            create(json!({"displayName": "a", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();
        st.update_instance("t", "i", update(json!({"url": "u"})), &c)
            .await
            .unwrap();
        let holder = create(json!({
            "displayName": "holder", "ownerIds": [],
            "agentCardManifest": {"id": "m", "displayName": "m"}
        }));
        st.create_instance("t", "holder", holder, &c).await.unwrap();
        let unlink = EntityWrite {
            id: None,
            props: Default::default(),
            manifest: Some(ManifestChange::Unlink),
        };
        st.update_instance("t", "holder", unlink, &c).await.unwrap();
        let coll = parse_write(
            &AGENT_COLLECTION,
            json!({"displayName": "Team", "ownerIds": []}),
            true,
        )
        .unwrap();
        st.create_collection("t", "c", coll, &c).await.unwrap();

        let r = st
            .delete_entity(Entity::Instance, "t", "i", &deleting(Some(1)))
            .await;
        assert!(
            is_precondition_failed(&r, Entity::Instance),
            "{}: {r:?}",
            b.name
        );
        assert!(
            st.get_entity(Entity::Instance, "t", "i")
                .await
                .unwrap()
                .is_some(),
            "{}",
            b.name
        );
        st.delete_entity(Entity::Instance, "t", "i", &deleting(Some(2)))
            .await
            .unwrap();
        assert_eq!(
            st.get_entity(Entity::Instance, "t", "i").await.unwrap(),
            None,
            "{}",
            b.name
        );
        let r = st
            .delete_entity(Entity::Instance, "t", "i", &deleting(Some(2)))
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::NotFound {
                    kind: Entity::Instance,
                    ..
                })
            ),
            "{}",
            b.name
        );

        let r = st
            .delete_entity(Entity::Manifest, "t", "m", &deleting(Some(9)))
            .await;
        assert!(
            is_precondition_failed(&r, Entity::Manifest),
            "{}: {r:?}",
            b.name
        );
        assert!(
            st.get_entity(Entity::Manifest, "t", "m")
                .await
                .unwrap()
                .is_some(),
            "{}",
            b.name
        );
        st.delete_entity(Entity::Manifest, "t", "m", &deleting(Some(1)))
            .await
            .unwrap();
        let r = st
            .delete_entity(Entity::Manifest, "t", "m", &deleting(Some(1)))
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::NotFound {
                    kind: Entity::Manifest,
                    ..
                })
            ),
            "{}",
            b.name
        );

        let r = st
            .delete_entity(Entity::Collection, "t", "c", &deleting(Some(3)))
            .await;
        assert!(
            is_precondition_failed(&r, Entity::Collection),
            "{}: {r:?}",
            b.name
        );
        assert!(
            st.get_entity(Entity::Collection, "t", "c")
                .await
                .unwrap()
                .is_some(),
            "{}",
            b.name
        );
        st.delete_entity(Entity::Collection, "t", "c", &deleting(Some(1)))
            .await
            .unwrap();
        let r = st
            .delete_entity(Entity::Collection, "t", "c", &deleting(None))
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::NotFound {
                    kind: Entity::Collection,
                    ..
                })
            ),
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn writes_after_close_are_refused_as_unavailable() {
    for b in backends().await {
        b.store.close().await;
        let r = b
            .store
            .create_instance(
                "t",
                "late",
                create(json!({"displayName": "x", "ownerIds": []})),
                &ctx("2025-01-01T00:00:00.0000000Z"),
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{}: {r:?}",
            b.name
        );
    }
}

#[tokio::test]
async fn copilot_policies_are_kept_per_tenant_and_a_setting_write_changes_one_policy() {
    use agentry::domain::copilot::{
        CopilotError, CopilotRules, TenantSetting, parse_new_policy, parse_policy_patch,
        parse_setting_patch,
    };
    let pin = "microsoft.copilot.copilotchatpinning";
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2026-01-01T00:00:00.0000000Z");
        let rules = CopilotRules::default();
        let policy = |id: &str, priority: u32| {
            parse_new_policy(
                json!({"id": id, "displayName": id, "service": "cloudPolicyService",
                       "scope": "tenant", "priority": priority, "settings": {pin: "1"}}),
                false,
                &c,
            )
            .unwrap()
        };
        st.create_policy("t", policy("b", 2), &c).await.unwrap();
        st.create_policy("t", policy("a", 1), &c).await.unwrap();
        let again = st.create_policy("t", policy("a", 1), &c).await.unwrap_err();
        assert!(matches!(
            again,
            StoreError::Rejected(agentry::domain::DomainError::Copilot(
                CopilotError::PolicyAlreadyExists(_)
            ))
        ));
        assert!(
            st.list_policies("u").await.unwrap().is_empty(),
            "{}",
            b.name
        );
        let ids: Vec<String> = st
            .list_policies("t")
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["a", "b"], "resolution order");

        let write = parse_setting_patch(pin, json!({"value": "0"}), &rules).unwrap();
        let view = st
            .write_policy_setting("t", write, rules, &c)
            .await
            .unwrap();
        assert_eq!(view.policy_id.as_deref(), Some("a"));
        assert_eq!(
            st.get_policy("t", "a").await.unwrap().unwrap().settings[pin],
            "0"
        );
        assert_eq!(
            st.get_policy("t", "b").await.unwrap().unwrap().settings[pin],
            "1"
        );

        let patch = parse_policy_patch("b", json!({"priority": 0})).unwrap();
        let updated = st.update_policy("t", "b", patch, rules, &c).await.unwrap();
        assert_eq!(updated.priority, 0);
        st.delete_policy("t", "a", &c).await.unwrap();
        assert!(st.delete_policy("t", "a", &c).await.is_err());
        assert_eq!(st.list_policies("t").await.unwrap().len(), 1);

        let kind = TenantSetting::LimitedMode;
        assert_eq!(st.get_tenant_setting("t", kind).await.unwrap(), None);
        let patch = kind.parse_patch(json!({"groupId": "g"})).unwrap();
        let doc = st.patch_tenant_setting("t", kind, patch, &c).await.unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({"isEnabledForGroup": false, "groupId": "g"})
        );
        assert_eq!(st.get_tenant_setting("u", kind).await.unwrap(), None);
    }
}

fn owner_filter(owner: &str) -> ListQuery {
    let q = agentry::odata::QueryOptions::parse(Some(&format!(
        "$filter=ownerIds/any(o: o eq '{owner}')"
    )))
    .unwrap();
    ListQuery {
        criteria: Criteria {
            filter: q.filter,
            search: None,
        },
        ..ListQuery::first(10)
    }
}

#[tokio::test]
async fn side_tables_follow_updates_of_what_they_index_and_only_those() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        st.create_instance(
            "t",
            "i",
            create(json!({"displayName": "a", "ownerIds": ["old"]})),
            &c,
        )
        .await
        .unwrap();
        let ids =
            |page: agentry::store::Page| page.items.into_iter().map(|s| s.id).collect::<Vec<_>>();

        st.update_instance("t", "i", update(json!({"displayName": "renamed"})), &c)
            .await
            .unwrap();
        assert_eq!(
            ids(st
                .list_entities(Entity::Instance, "t", Relation::All, &owner_filter("old"))
                .await
                .unwrap()),
            ["i"],
            "{}",
            b.name
        );

        st.update_instance("t", "i", update(json!({"ownerIds": ["new"]})), &c)
            .await
            .unwrap();
        assert!(
            ids(st
                .list_entities(Entity::Instance, "t", Relation::All, &owner_filter("old"))
                .await
                .unwrap())
            .is_empty(),
            "{}",
            b.name
        );
        assert_eq!(
            ids(st
                .list_entities(Entity::Instance, "t", Relation::All, &owner_filter("new"))
                .await
                .unwrap()),
            ["i"],
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn an_export_reads_each_section_in_key_order_a_chunk_at_a_time() {
    use agentry::store::{Section, member_key};
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        for id in ["i3", "i1", "i5", "i2", "i4"] {
            st.create_instance(
                "t",
                id,
                create(json!({"displayName": id, "ownerIds": []})),
                &c,
            )
            .await
            .unwrap();
        }
        for id in ["c2", "c1"] {
            let coll = parse_write(
                &AGENT_COLLECTION,
                json!({"displayName": id, "ownerIds": []}),
                true,
            )
            .unwrap();
            st.create_collection("t", id, coll, &c).await.unwrap();
        }
        for (coll, inst) in [("c2", "i1"), ("c1", "i2"), ("c1", "i1")] {
            st.add_member("t", coll, inst, &WriteContext::default())
                .await
                .unwrap();
        }
        st.create_instance(
            "u",
            "other",
            create(json!({"displayName": "x", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();

        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        let mut chunks = 0;
        loop {
            let (state, next) = st
                .export_section("t", Section::Instances, after.as_deref(), 2)
                .await
                .unwrap();
            chunks += 1;
            ids.extend(state.instances.iter().map(|(d, _)| d["id"].clone()));
            assert!(state.manifests.is_empty() && state.members.is_empty());
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        assert_eq!(ids, ["i1", "i2", "i3", "i4", "i5"], "{}", b.name);
        assert_eq!(chunks, 3, "{}", b.name);

        let (first, next) = st
            .export_section("t", Section::Members, None, 2)
            .await
            .unwrap();
        assert_eq!(
            first.members,
            [("c1".into(), "i1".into()), ("c1".into(), "i2".into())],
            "{}",
            b.name
        );
        assert_eq!(next.as_deref(), Some(member_key("c1", "i2").as_str()));
        let (rest, next) = st
            .export_section("t", Section::Members, next.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(rest.members, [("c2".into(), "i1".into())], "{}", b.name);
        assert_eq!(next, None, "{}", b.name);

        let (none, next) = st
            .export_section("nobody", Section::Collections, None, 2)
            .await
            .unwrap();
        assert_eq!((none.collections.len(), next), (0, None), "{}", b.name);
        let tenants = st.list_tenants().await.unwrap();
        assert_eq!(tenants, ["t", "u"], "{}", b.name);
    }
}

#[tokio::test]
async fn a_merge_import_keeps_taken_ids_counts_an_id_given_twice_once_and_logs_and_indexes_what_it_created()
 {
    use agentry::domain::subscriptions::ChangeType;
    use agentry::store::{ImportMode, TenantState};
    for b in backends().await {
        let st = &b.store;
        let now = "2025-01-01T00:00:00.0000000Z";
        let c = ctx(now);
        st.create_instance(
            "t",
            "taken",
            create(json!({"displayName": "before", "ownerIds": ["old"]})),
            &c,
        )
        .await
        .unwrap();
        let stamped = |v: Value| {
            let mut doc = v.as_object().unwrap().clone();
            doc.insert("createdDateTime".into(), json!(now));
            doc.insert("lastModifiedDateTime".into(), json!(now));
            doc
        };
        // Owners and tags listed twice are indexed once.
        let instance = |id: &str, name: &str, owner: &str| {
            stamped(json!({"id": id, "displayName": name, "ownerIds": [owner, owner]}))
        };
        let card = stamped(json!({"id": "m", "displayName": "card", "skills": [
            {"id": "a", "displayName": "a", "tags": ["red"]},
            {"id": "b", "displayName": "b", "tags": ["red", "blue"]},
        ]}));
        let state = TenantState {
            manifests: vec![card],
            instances: vec![
                (instance("solo", "solo", "x"), Some("m".into())),
                (instance("duo", "duo", "y"), None),
            ],
            ..TenantState::default()
        };
        let from = st.change_position("t").await.unwrap();
        let report = st
            .import_tenant("t", state, ImportMode::Merge, now)
            .await
            .unwrap();
        assert_eq!((report.created, report.kept), (3, 0), "{}", b.name);

        let state = TenantState {
            instances: vec![
                (instance("taken", "after", "new"), None),
                (instance("fresh", "first", "new"), Some("m".into())),
                (instance("fresh", "second", "new"), None),
            ],
            ..TenantState::default()
        };
        let report = st
            .import_tenant("t", state, ImportMode::Merge, now)
            .await
            .unwrap();
        assert_eq!((report.created, report.kept), (1, 2), "{}", b.name);
        // What each import created is logged once, in order; what it kept is not.
        let window = agentry::store::ChangeWindow {
            from,
            to: st.change_position("t").await.unwrap(),
            after: 0,
        };
        let logged = async |kind: Entity| -> Vec<(String, ChangeType)> {
            let rows = st.changes(kind, "t", &window, 10).await.unwrap();
            rows.into_iter().map(|c| (c.id, c.change)).collect()
        };
        let created = |ids: &[&str]| -> Vec<(String, ChangeType)> {
            ids.iter()
                .map(|i| (i.to_string(), ChangeType::Created))
                .collect()
        };
        assert_eq!(
            logged(Entity::Manifest).await,
            created(&["m"]),
            "{}",
            b.name
        );
        let instances = created(&["solo", "duo", "fresh"]);
        assert_eq!(logged(Entity::Instance).await, instances, "{}", b.name);

        let name = |s: Option<agentry::store::Stored>| doc(&s.unwrap())["displayName"].clone();
        let get = async |id: &str| st.get_entity(Entity::Instance, "t", id).await.unwrap();
        assert_eq!(name(get("taken").await), json!("before"), "{}", b.name);
        assert_eq!(name(get("fresh").await), json!("first"), "{}", b.name);
        let ids = async |q: ListQuery| instance_ids(st.as_ref(), q).await;
        assert_eq!(ids(owner_filter("old")).await, ["taken"], "{}", b.name);
        assert_eq!(ids(owner_filter("new")).await, ["fresh"], "{}", b.name);
        assert_eq!(ids(owner_filter("x")).await, ["solo"], "{}", b.name);
        for tag in ["red", "blue"] {
            let q = filtered(&format!(
                "agentCardManifest/skills/any(s: s/tags/any(t: t eq '{tag}'))"
            ));
            assert_eq!(ids(q).await, ["fresh", "solo"], "{} {tag}", b.name);
        }
    }
}

/// The ids of the instances of tenant `t` that `q` lists.
async fn instance_ids(st: &dyn Store, q: ListQuery) -> Vec<String> {
    let page = st
        .list_entities(Entity::Instance, "t", Relation::All, &q)
        .await
        .unwrap();
    page.items.into_iter().map(|s| s.id).collect()
}

fn filtered(filter: &str) -> ListQuery {
    let q = agentry::odata::QueryOptions::parse(Some(&format!("$filter={filter}"))).unwrap();
    ListQuery {
        criteria: Criteria {
            filter: q.filter,
            search: None,
        },
        ..ListQuery::first(10)
    }
}

#[tokio::test]
async fn skill_tag_filters_through_the_manifest_link_follow_links_and_skills() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        let tagged = |tag: &str| json!({"displayName": "card", "skills": [{"id": "s", "displayName": "s", "tags": [tag]}]});
        for (id, tag) in [("m1", "red"), ("m2", "blue")] {
            let w = parse_write(&AGENT_CARD_MANIFEST, tagged(tag), true).unwrap();
            st.create_manifest("t", id, w, &c).await.unwrap();
        }
        for id in ["i1", "i2", "i3"] {
            let mut w = create(json!({"displayName": id, "ownerIds": []}));
            w.manifest = Some(ManifestChange::Bind("m1".into()));
            st.create_instance("t", id, w, &c).await.unwrap();
        }
        let with = |tag: &str, extra: &str| {
            filtered(&format!(
                "agentCardManifest/skills/any(s: s/tags/any(t: t eq '{tag}')){extra}"
            ))
        };
        let ids = async |q: ListQuery| instance_ids(st.as_ref(), q).await;
        assert_eq!(ids(with("red", "")).await, ["i1", "i2", "i3"], "{}", b.name);
        assert_eq!(
            ids(with("red", " and displayName ne 'i2'")).await,
            ["i1", "i3"],
            "{}",
            b.name
        );

        // The manifest's skills change: every instance linking it follows.
        st.update_manifest("t", "m1", tagged("green").as_object().unwrap().clone(), &c)
            .await
            .unwrap();
        assert!(ids(with("red", "")).await.is_empty(), "{}", b.name);
        assert_eq!(
            ids(with("green", "")).await,
            ["i1", "i2", "i3"],
            "{}",
            b.name
        );

        // An instance moves to another manifest, another loses its link.
        let mut w = update(json!({}));
        w.manifest = Some(ManifestChange::Bind("m2".into()));
        st.update_instance("t", "i2", w, &c).await.unwrap();
        let mut w = update(json!({}));
        w.manifest = Some(ManifestChange::Unlink);
        st.update_instance("t", "i3", w, &c).await.unwrap();
        assert_eq!(ids(with("green", "")).await, ["i1"], "{}", b.name);
        assert_eq!(ids(with("blue", "")).await, ["i2"], "{}", b.name);

        // A deleted instance is gone from the tag's pages; the other tenant never saw any.
        st.delete_entity(Entity::Instance, "t", "i1", &deleting(None))
            .await
            .unwrap();
        assert!(ids(with("green", "")).await.is_empty(), "{}", b.name);
        let other = st
            .list_entities(Entity::Instance, "u", Relation::All, &with("blue", ""))
            .await
            .unwrap();
        assert!(other.items.is_empty(), "{}", b.name);
    }
}

#[tokio::test]
async fn a_read_by_id_after_an_acknowledged_write_never_sees_what_it_replaced() {
    for b in backends().await {
        let st = &b.store;
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        let name = |s: Option<agentry::store::Stored>| s.map(|s| doc(&s)["displayName"].clone());
        st.create_instance(
            "t",
            "i",
            create(json!({"displayName": "v1", "ownerIds": [],
                "agentCardManifest": {"id": "m", "displayName": "card v1"}})),
            &c,
        )
        .await
        .unwrap();
        st.create_collection(
            "t",
            "c",
            parse_write(
                &AGENT_COLLECTION,
                json!({"displayName": "col v1", "ownerIds": ["o"]}),
                true,
            )
            .unwrap(),
            &c,
        )
        .await
        .unwrap();
        // Each read below follows a read of the same id, so a cached copy exists.
        for round in 2..5 {
            assert!(
                st.get_entity(Entity::Instance, "t", "i")
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                st.get_entity(Entity::Manifest, "t", "m")
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                st.get_entity(Entity::Collection, "t", "c")
                    .await
                    .unwrap()
                    .is_some()
            );
            let v = format!("v{round}");
            st.update_instance(
                "t",
                "i",
                update(json!({"displayName": v, "agentCardManifest": {"displayName": format!("card {v}")}})),
                &c,
            )
            .await
            .unwrap();
            let mut props = serde_json::Map::new();
            props.insert("displayName".into(), json!(format!("col {v}")));
            st.update_collection("t", "c", props, &c).await.unwrap();
            assert_eq!(
                name(st.get_entity(Entity::Instance, "t", "i").await.unwrap()),
                Some(json!(v)),
                "{}",
                b.name
            );
            assert_eq!(
                name(st.get_entity(Entity::Manifest, "t", "m").await.unwrap()),
                Some(json!(format!("card {v}"))),
                "{}",
                b.name
            );
            assert_eq!(
                name(st.get_entity(Entity::Collection, "t", "c").await.unwrap()),
                Some(json!(format!("col {v}"))),
                "{}",
                b.name
            );
        }

        // Replacing the tenant's whole state is seen too.
        let saved = st.export_tenant("t").await.unwrap();
        st.update_instance("t", "i", update(json!({"displayName": "after export"})), &c)
            .await
            .unwrap();
        assert_eq!(
            name(st.get_entity(Entity::Instance, "t", "i").await.unwrap()),
            Some(json!("after export"))
        );
        st.import_tenant(
            "t",
            saved,
            agentry::store::ImportMode::Replace,
            "2025-01-02T00:00:00.0000000Z",
        )
        .await
        .unwrap();
        assert_eq!(
            name(st.get_entity(Entity::Instance, "t", "i").await.unwrap()),
            Some(json!("v4")),
            "{}",
            b.name
        );

        st.delete_entity(Entity::Instance, "t", "i", &deleting(None))
            .await
            .unwrap();
        st.delete_entity(Entity::Collection, "t", "c", &deleting(None))
            .await
            .unwrap();
        assert_eq!(
            st.get_entity(Entity::Instance, "t", "i").await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert_eq!(
            st.get_entity(Entity::Collection, "t", "c").await.unwrap(),
            None,
            "{}",
            b.name
        );
        st.close().await;
    }
}

#[tokio::test]
async fn readers_racing_a_writer_see_versions_only_move_forward() {
    for b in backends().await {
        let st = b.store.clone();
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        st.create_instance(
            "t",
            "hot",
            create(json!({"displayName": "0", "ownerIds": []})),
            &c,
        )
        .await
        .unwrap();
        let acknowledged = Arc::new(std::sync::atomic::AtomicI64::new(1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (st, acknowledged, stop) = (st.clone(), acknowledged.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut seen = 0;
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let floor = acknowledged.load(std::sync::atomic::Ordering::Acquire);
                    let got = st
                        .get_entity(Entity::Instance, "t", "hot")
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(
                        got.version >= floor,
                        "read v{} after v{floor} was acknowledged",
                        got.version
                    );
                    assert!(got.version >= seen, "read v{} after v{seen}", got.version);
                    assert_eq!(
                        doc(&got)["displayName"],
                        json!((got.version - 1).to_string())
                    );
                    seen = got.version;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            }));
        }
        for n in 1..=60 {
            let w = update(json!({"displayName": n.to_string()}));
            let done = st.update_instance("t", "hot", w, &c).await.unwrap();
            acknowledged.store(done.version, std::sync::atomic::Ordering::Release);
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        for r in readers {
            assert!(r.await.unwrap() > 0, "{}: every reader read", b.name);
        }
        assert_eq!(
            st.get_entity(Entity::Instance, "t", "hot")
                .await
                .unwrap()
                .unwrap()
                .version,
            61
        );
        st.close().await;
    }
}

#[tokio::test]
async fn a_scoped_write_finds_other_applications_objects_absent_inside_the_write() {
    use agentry::domain::Scope;
    for b in backends().await {
        let st = &b.store;
        let admin = ctx("2025-01-01T00:00:00.0000000Z");
        let app_a = WriteContext {
            scope: Scope::managed_by(
                "app-a",
                vec![Entity::Instance, Entity::Manifest, Entity::Collection],
            ),
            ..ctx("2025-01-02T00:00:00.0000000Z")
        };
        for (id, owner) in [("mine", "app-a"), ("theirs", "app-b")] {
            st.create_manifest(
                "t",
                &format!("m-{id}"),
                parse_write(
                    &AGENT_CARD_MANIFEST,
                    json!({"displayName": id, "managedBy": owner}),
                    true,
                )
                .unwrap(),
                &admin,
            )
            .await
            .unwrap();
            let mut body = json!({"displayName": id, "ownerIds": ["o"], "managedBy": owner});
            body["agentCardManifest@odata.bind"] = json!(format!("agentCardManifests('m-{id}')"));
            st.create_instance("t", id, create(body), &admin)
                .await
                .unwrap();
            st.create_collection(
                "t",
                &format!("c-{id}"),
                parse_write(
                    &AGENT_COLLECTION,
                    json!({"displayName": id, "ownerIds": ["o"], "managedBy": owner}),
                    true,
                )
                .unwrap(),
                &admin,
            )
            .await
            .unwrap();
        }
        let absent = |r: Result<_, StoreError>, kind: Entity| matches!(r, Err(StoreError::NotFound { kind: k, .. }) if k == kind);
        let rename = || update(json!({"displayName": "renamed"}));
        let nested = || update(json!({"agentCardManifest": {"description": "changed"}}));
        let bind = |m: &str| {
            update(json!({"agentCardManifest@odata.bind": format!("agentCardManifests('{m}')")}))
        };
        let name = b.name;
        // Another application's objects are absent to every kind of write.
        assert!(
            absent(
                st.update_instance("t", "theirs", rename(), &app_a)
                    .await
                    .map(|_| ()),
                Entity::Instance
            ),
            "{name}"
        );
        assert!(
            absent(
                st.delete_entity(Entity::Instance, "t", "theirs", &app_a)
                    .await,
                Entity::Instance
            ),
            "{name}"
        );
        let props = |v: Value| v.as_object().unwrap().clone();
        assert!(
            absent(
                st.update_manifest("t", "m-theirs", props(json!({"description": "x"})), &app_a)
                    .await
                    .map(|_| ()),
                Entity::Manifest
            ),
            "{name}"
        );
        assert!(
            absent(
                st.delete_entity(Entity::Manifest, "t", "m-theirs", &app_a)
                    .await,
                Entity::Manifest
            ),
            "{name}"
        );
        assert!(
            absent(
                st.update_collection("t", "c-theirs", props(json!({"description": "x"})), &app_a)
                    .await
                    .map(|_| ()),
                Entity::Collection
            ),
            "{name}"
        );
        assert!(
            absent(
                st.delete_entity(Entity::Collection, "t", "c-theirs", &app_a)
                    .await,
                Entity::Collection
            ),
            "{name}"
        );
        assert!(
            absent(
                st.add_member("t", "c-theirs", "mine", &app_a).await,
                Entity::Collection
            ),
            "{name}"
        );
        assert!(
            absent(
                st.add_member("t", "c-mine", "theirs", &app_a).await,
                Entity::Instance
            ),
            "{name}"
        );
        assert!(
            absent(
                st.update_instance("t", "mine", bind("m-theirs"), &app_a)
                    .await
                    .map(|_| ()),
                Entity::Manifest
            ),
            "{name}"
        );
        // Its own instance linking another application's manifest: the
        // nested update is refused, and nothing of the write is kept.
        st.update_instance("t", "mine", bind("m-theirs"), &admin)
            .await
            .unwrap();
        assert!(
            absent(
                st.update_instance("t", "mine", nested(), &app_a)
                    .await
                    .map(|_| ()),
                Entity::Manifest
            ),
            "{name}"
        );
        let theirs = doc(&st
            .get_entity(Entity::Manifest, "t", "m-theirs")
            .await
            .unwrap()
            .unwrap());
        assert_eq!(theirs["description"], Value::Null, "{name}");
        // Its own objects it writes as it likes; a new nested manifest is its own.
        st.update_instance("t", "mine", bind("m-mine"), &app_a)
            .await
            .unwrap();
        st.update_instance("t", "mine", nested(), &app_a)
            .await
            .unwrap();
        st.add_member("t", "c-mine", "mine", &app_a).await.unwrap();
        st.remove_member("t", "c-mine", "mine", &app_a)
            .await
            .unwrap();
        st.delete_entity(Entity::Collection, "t", "c-mine", &app_a)
            .await
            .unwrap();
        st.create_instance(
            "t",
            "fresh",
            create(json!({"displayName": "f", "ownerIds": ["o"], "managedBy": "app-a", "agentCardManifest": {"displayName": "new"}})),
            &app_a,
        )
        .await
        .unwrap();
        let fresh = st
            .get_instance_manifest("t", "fresh")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc(&fresh)["managedBy"], "app-a", "{name}");
    }
}

#[tokio::test]
async fn application_registrations_are_listed_and_removed_per_tenant() {
    use agentry::domain::apps::AppRegistration;
    for b in backends().await {
        let now = "2025-01-01T00:00:00.0000000Z".to_owned();
        let a = AppRegistration::create("t1", "first", vec!["r".into()], now.clone()).registration;
        let other = AppRegistration::create("t2", "other", vec![], now).registration;
        b.store.create_app(a.clone()).await.unwrap();
        b.store.create_app(other.clone()).await.unwrap();
        let listed = b.store.list_apps("t1").await.unwrap();
        assert_eq!(listed, vec![a.clone()], "{}", b.name);
        assert!(
            !b.store.delete_app("t1", &other.client_id).await.unwrap(),
            "{}: another tenant's application is not removed",
            b.name
        );
        assert!(
            b.store.delete_app("t1", &a.client_id).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !b.store.delete_app("t1", &a.client_id).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            b.store.get_app(&a.client_id).await.unwrap().is_none(),
            "{}",
            b.name
        );
        assert!(
            b.store.get_app(&other.client_id).await.unwrap().is_some(),
            "{}",
            b.name
        );
    }
}

fn subscription_doc(id: &str, app: &str) -> serde_json::Map<String, Value> {
    match json!({"id": id, "applicationId": app, "resource": "agentRegistry/agentInstances",
                 "changeType": "created", "notificationUrl": "http://127.0.0.1:9/hook"})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn subscriptions_are_stored_leased_to_one_owner_and_expire() {
    const T: &str = "tenant-subscriptions";
    for b in backends().await {
        let s = b.store.as_ref();
        let (now, later, much_later) = (
            "2026-01-01T00:00:00.0000000Z",
            "2026-01-01T00:00:10.0000000Z",
            "2026-01-02T00:00:00.0000000Z",
        );
        s.create_subscription(
            T,
            Entity::Instance,
            &subscription_doc("s1", "app"),
            much_later,
            now,
        )
        .await
        .unwrap();
        s.create_subscription(
            T,
            Entity::Collection,
            &subscription_doc("s2", "app"),
            later,
            now,
        )
        .await
        .unwrap();
        let listed = s.list_subscriptions(T).await.unwrap();
        assert_eq!(
            listed.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(),
            [json!("s1"), json!("s2")],
            "{}",
            b.name
        );
        assert!(
            s.list_subscriptions("other").await.unwrap().is_empty(),
            "{}",
            b.name
        );

        // Both due at once; one owner holds them until its lease ends.
        let claimed = s.claim_deliveries("one", now, later, 10).await.unwrap();
        assert_eq!(claimed.len(), 2, "{}", b.name);
        let d = claimed.iter().find(|d| d.id == "s1").unwrap().clone();
        assert_eq!(
            (d.entity, d.failures, d.after),
            (Entity::Instance, 0, 0),
            "{}",
            b.name
        );
        assert!(
            s.claim_deliveries("two", now, later, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        assert_eq!(
            s.claim_deliveries("one", now, later, 10)
                .await
                .unwrap()
                .len(),
            2,
            "{}",
            b.name
        );

        // Only the holder saves progress; a later attempt waits its time.
        let moved = agentry::store::Delivery {
            failures: 3,
            after: 7,
            to: Some("x".into()),
            ..d.clone()
        };
        assert!(
            !s.save_delivery("two", &moved, later).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.save_delivery("one", &moved, later).await.unwrap(),
            "{}",
            b.name
        );
        let due_now: Vec<String> = s
            .claim_deliveries("one", now, later, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(due_now, ["s2"], "{}", b.name);
        // After the lease ends another owner takes over, with the progress saved.
        let after_lease = "2026-01-01T00:00:11.0000000Z";
        let taken = s
            .claim_deliveries("two", after_lease, much_later, 10)
            .await
            .unwrap();
        let s1 = taken.iter().find(|d| d.id == "s1").expect("s1 taken over");
        assert_eq!(
            (s1.failures, s1.after, s1.to.as_deref()),
            (3, 7, Some("x")),
            "{}",
            b.name
        );
        assert!(
            taken.iter().all(|d| d.id != "s2"),
            "s2 expired at 00:00:10: {}",
            b.name
        );

        // Renewal, deletion, expiry.
        let mut doc = subscription_doc("s1", "app");
        doc.insert("clientState".into(), "renewed".into());
        assert!(
            s.update_subscription(T, "s1", &doc, much_later)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert_eq!(
            s.get_subscription(T, "s1").await.unwrap().unwrap()["clientState"],
            "renewed"
        );
        assert!(
            !s.update_subscription(T, "nope", &doc, much_later)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        let mark = |id: &'static str| s.annotate_subscription(T, id, "@x.mark", json!(1));
        assert!(mark("s1").await.unwrap(), "{}", b.name);
        assert!(!mark("nope").await.unwrap(), "{}", b.name);
        let marked = s.get_subscription(T, "s1").await.unwrap().unwrap();
        assert_eq!(marked["@x.mark"], 1, "{}", b.name);
        assert_eq!(marked["clientState"], "renewed", "{}", b.name);
        assert_eq!(
            s.delete_expired_subscriptions(after_lease).await.unwrap(),
            1,
            "{}",
            b.name
        );
        assert!(
            s.get_subscription(T, "s2").await.unwrap().is_none(),
            "{}",
            b.name
        );
        assert!(s.delete_subscription(T, "s1").await.unwrap(), "{}", b.name);
        assert!(!s.delete_subscription(T, "s1").await.unwrap(), "{}", b.name);
        assert!(
            s.list_subscriptions(T).await.unwrap().is_empty(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn the_change_log_tells_creates_from_updates_and_deletes() {
    use agentry::domain::subscriptions::ChangeType;
    const T: &str = "tenant-change-types";
    for b in backends().await {
        let s = b.store.as_ref();
        let from = s.change_position(T).await.unwrap();
        s.create_instance(
            T,
            "c1",
            create(json!({"id": "c1", "displayName": "One", "ownerIds": ["o"]})),
            &ctx("2026-01-01T00:00:00.0000000Z"),
        )
        .await
        .unwrap();
        s.update_instance(
            T,
            "c1",
            update(json!({"displayName": "Uno"})),
            &ctx("2026-01-01T00:00:01.0000000Z"),
        )
        .await
        .unwrap();
        s.delete_entity(Entity::Instance, T, "c1", &deleting(None))
            .await
            .unwrap();
        let to = s.change_position(T).await.unwrap();
        let window = agentry::store::ChangeWindow { from, to, after: 0 };
        let logged: Vec<ChangeType> = s
            .changes(Entity::Instance, T, &window, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.change)
            .collect();
        assert_eq!(
            logged,
            [
                ChangeType::Created,
                ChangeType::Updated,
                ChangeType::Deleted
            ],
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn watched_agents_are_enrolled_leased_to_one_owner_and_listed_by_state() {
    use agentry::store::WatchClaim;
    const T: &str = "tenant-watch";
    let (now, later, lease) = (
        "2026-01-01T00:00:00.0000000Z",
        "2026-01-01T01:00:00.0000000Z",
        "2026-01-01T00:01:00.0000000Z",
    );
    for b in backends().await {
        let s = b.store.as_ref();
        for id in ["w1", "w2"] {
            s.create_instance(
                T,
                id,
                create(json!({"id": id, "displayName": id, "ownerIds": ["o"]})),
                &ctx(now),
            )
            .await
            .unwrap();
        }
        assert_eq!(s.enrol_agents(T, now).await.unwrap(), 2, "{}", b.name);
        assert_eq!(s.enrol_agents(T, now).await.unwrap(), 0, "{}", b.name);

        // One owner holds both until its lease ends.
        let claimed = s.claim_checks(T, "one", now, lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 2, "{}", b.name);
        assert!(
            claimed
                .iter()
                .all(|c| c.last.is_none() && c.entity == Entity::Instance)
        );
        assert!(
            s.claim_checks(T, "two", now, lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );

        // Only the holder records an outcome; then the agent is due later.
        let w1 = claimed.iter().find(|c| c.id == "w1").unwrap().clone();
        let healthy = json!({"state": "healthy"}).as_object().unwrap().clone();
        assert!(
            !s.save_check(T, &w1, "two", Some("healthy"), &healthy, later)
                .await
                .unwrap()
        );
        assert!(
            s.save_check(T, &w1, "one", Some("healthy"), &healthy, later)
                .await
                .unwrap()
        );
        let w2 = WatchClaim {
            id: "w2".into(),
            ..w1.clone()
        };
        let no_url = serde_json::Map::new();
        assert!(
            s.save_check(T, &w2, "one", None, &no_url, later)
                .await
                .unwrap()
        );
        assert_eq!(
            s.get_health(T, Entity::Instance, "w2").await.unwrap(),
            None,
            "nothing to check, nothing to show: {}",
            b.name
        );
        assert!(
            s.claim_checks(T, "two", lease, lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        assert_eq!(
            s.get_health(T, Entity::Instance, "w1").await.unwrap(),
            Some(healthy.clone()),
            "{}",
            b.name
        );
        let listed = s.list_health(T, Some("healthy"), None, 10).await.unwrap();
        assert_eq!(
            listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["w1"],
            "{}",
            b.name
        );
        assert!(
            s.list_health(T, None, Some((Entity::Instance, "w1")), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.health_counts()
                .await
                .unwrap()
                .contains(&("healthy".to_owned(), 1)),
            "{}",
            b.name
        );

        // Everything due now; the last outcome comes with the claim.
        s.check_all_now(T, now).await.unwrap();
        let again = s.claim_checks(T, "two", now, lease, 10).await.unwrap();
        assert_eq!(again.len(), 2, "{}", b.name);
        assert_eq!(
            again.iter().find(|c| c.id == "w1").unwrap().last,
            Some(healthy),
            "{}",
            b.name
        );
        s.forget_agent(T, Entity::Instance, "w1").await.unwrap();
        assert_eq!(
            s.get_health(T, Entity::Instance, "w1").await.unwrap(),
            None,
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn local_users_are_kept_per_tenant_locked_by_failures_in_a_row_and_kept_by_a_reset() {
    use agentry::domain::users::{AuthorizationCode, LocalUser, Redeemed, new_code};
    use agentry::store::{ImportMode, TenantState};
    for b in backends().await {
        let now = "2025-01-01T00:00:00.0000000Z";
        let admin =
            LocalUser::create("t1", "Admin", vec!["role".into()], "pw", now.into()).unwrap();
        let other = LocalUser::create("t2", "admin", vec![], "pw", now.into()).unwrap();
        assert!(
            b.store.create_user(admin.clone()).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            b.store.create_user(other.clone()).await.unwrap(),
            "{}",
            b.name
        );
        let again = LocalUser::create("t1", "ADMIN", vec![], "pw", now.into()).unwrap();
        assert!(
            !b.store.create_user(again).await.unwrap(),
            "{}: one name per tenant, whatever the case",
            b.name
        );
        assert_eq!(
            b.store.get_user("t1", "aDmIn").await.unwrap(),
            Some(admin.clone()),
            "{}",
            b.name
        );
        assert_eq!(
            b.store.list_users("t1").await.unwrap(),
            vec![admin.clone()],
            "{}",
            b.name
        );

        // The third failure in a row locks; a success starts the count again.
        let until = "2025-01-01T00:15:00.0000000Z";
        let count = |u: Option<LocalUser>| {
            let u = u.expect("the user");
            (u.failed_sign_ins, u.locked_until)
        };
        let fail = || b.store.record_failed_sign_in("t1", "admin", 3, until);
        assert_eq!(count(fail().await.unwrap()), (1, None), "{}", b.name);
        b.store.record_sign_in("t1", "admin").await.unwrap();
        assert_eq!(count(fail().await.unwrap()), (1, None), "{}", b.name);
        assert_eq!(count(fail().await.unwrap()), (2, None), "{}", b.name);
        assert_eq!(
            count(fail().await.unwrap()),
            (0, Some(until.into())),
            "{}",
            b.name
        );
        let stored = b.store.get_user("t1", "admin").await.unwrap().unwrap();
        assert!(
            stored.locked_at(now) && !stored.locked_at(until),
            "{}",
            b.name
        );
        assert_eq!(
            count(b.store.get_user("t2", "admin").await.unwrap()),
            (0, None),
            "{}: another tenant's user is another user",
            b.name
        );
        assert!(
            b.store
                .record_failed_sign_in("t1", "nobody", 3, until)
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.name
        );

        // A reset (an import that replaces the tenant) keeps its users.
        b.store
            .import_tenant("t1", TenantState::default(), ImportMode::Replace, now)
            .await
            .unwrap();
        assert!(
            b.store.get_user("t1", "admin").await.unwrap().is_some(),
            "{}",
            b.name
        );

        // A code is redeemed once; an unknown one is told apart.
        let (_, key) = new_code();
        let code = AuthorizationCode {
            tenant_id: "t1".into(),
            client_id: "client".into(),
            redirect_uri: "http://localhost/console/".into(),
            code_challenge: "c".into(),
            user_id: admin.id.clone(),
            user_name: admin.user_name.clone(),
            roles: admin.roles.clone(),
            expires_at: "2025-01-01T00:01:00.0000000Z".into(),
        };
        b.store.save_code(&key, code.clone(), now).await.unwrap();
        assert_eq!(
            b.store.redeem_code(&key).await.unwrap(),
            Redeemed::Fresh(code.clone()),
            "{}",
            b.name
        );
        assert_eq!(
            b.store.redeem_code(&key).await.unwrap(),
            Redeemed::Again,
            "{}",
            b.name
        );
        assert_eq!(
            b.store.redeem_code("other").await.unwrap(),
            Redeemed::Unknown,
            "{}",
            b.name
        );
        // Saving a code later removes the expired ones.
        let (_, later) = new_code();
        let code = AuthorizationCode {
            expires_at: "2025-01-01T00:03:00.0000000Z".into(),
            ..code
        };
        b.store
            .save_code(&later, code, "2025-01-01T00:02:00.0000000Z")
            .await
            .unwrap();
        assert_eq!(
            b.store.redeem_code(&key).await.unwrap(),
            Redeemed::Unknown,
            "{}",
            b.name
        );

        assert!(
            b.store.delete_user("t1", "ADMIN").await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !b.store.delete_user("t1", "admin").await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            b.store.get_user("t2", "admin").await.unwrap().is_some(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn entities_read_together_come_in_the_order_asked_with_the_missing_ones_empty() {
    for b in backends().await {
        let st = b.store.clone();
        let c = ctx("2025-01-01T00:00:00.0000000Z");
        for id in ["a", "b", "c"] {
            let body = json!({"displayName": format!("agent {id}"), "ownerIds": []});
            st.create_instance("t", id, create(body), &c).await.unwrap();
        }
        st.update_instance("t", "b", update(json!({"displayName": "b again"})), &c)
            .await
            .unwrap();
        let read = st
            .get_entities(Entity::Instance, "t", &["c", "missing", "a", "b"])
            .await
            .unwrap();
        let seen: Vec<Option<(String, i64, Value)>> = read
            .iter()
            .map(|s| {
                s.as_ref()
                    .map(|s| (s.id.clone(), s.version, doc(s)["displayName"].clone()))
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                Some(("c".into(), 1, json!("agent c"))),
                None,
                Some(("a".into(), 1, json!("agent a"))),
                Some(("b".into(), 2, json!("b again"))),
            ],
            "{}",
            b.name
        );
        let other_tenant = st
            .get_entities(Entity::Instance, "u", &["a"])
            .await
            .unwrap();
        assert!(other_tenant[0].is_none(), "{}: tenants stay apart", b.name);
        assert!(
            st.get_entities(Entity::Instance, "t", &[])
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        st.close().await;
    }
}
