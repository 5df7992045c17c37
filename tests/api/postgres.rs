//! What only PostgreSQL offers, run in every `cargo test`: several servers
//! on one database acting as one service, an outage of the database that
//! the server rides out, `agentry migrate`, and moving data between SQLite
//! and PostgreSQL with `agentry export` and `agentry import`.

use crate::pg;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A server with a data folder of its own, sharing the keys folder (signing
/// keys and paging secret) and the database with the other replicas.
async fn replica(keys: &Path, database_url: &str) -> TestServer {
    TestServer::start_configured(|c| {
        c.keys_dir = keys.to_owned();
        c.database_url = database_url.to_owned();
    })
    .await
}

#[tokio::test]
async fn two_servers_on_one_database_act_as_one_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = pg::shared().create_database();
    let a = replica(dir.path(), &db).await;
    let b = replica(dir.path(), &db).await;

    // A write on one is read on the other.
    for i in 0..5 {
        a.create_instance(instance_body(&format!("r{i}"), "replicated"))
            .await;
    }
    let got = b.get_json("/agentRegistry/agentInstances/r3").await;
    assert_eq!(got["displayName"], "replicated");
    let r = b
        .patch(
            "/agentRegistry/agentInstances/r3",
            serde_json::json!({"displayName": "changed on b"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let got = a.get_json("/agentRegistry/agentInstances/r3").await;
    assert_eq!(got["displayName"], "changed on b");

    // A page started on one continues on the other.
    let first = a.get_json("/agentRegistry/agentInstances?$top=2").await;
    let next = first["@odata.nextLink"].as_str().expect("a next link");
    let on_b = next.replacen(&a.origin, &b.origin, 1);
    assert_ne!(on_b, next);
    let r = b
        .client
        .get(&on_b)
        .bearer_auth(b.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{on_b}");
    let second: Value = r.json().await.unwrap();
    let ids: Vec<&str> = second["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r2", "r3"]);

    // A token minted by one is accepted by the other.
    let token = a.token();
    let r = b
        .client
        .get(b.url("/agentRegistry/agentInstances/r0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn servers_starting_together_on_a_new_database_migrate_it_once() {
    let db = pg::shared().create_database();
    let keys = tempfile::tempdir().unwrap();
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let (keys, db) = (keys.path().to_owned(), db.clone());
            tokio::spawn(async move { replica(&keys, &db).await })
        })
        .collect();
    let mut servers = Vec::new();
    for start in starts {
        servers.push(start.await.expect("a server starts"));
    }
    for s in &servers {
        assert_eq!(
            s.get("/agentRegistry/agentInstances").await.status(),
            StatusCode::OK
        );
    }
    let applied = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["migrate", "--database-url", &db])
        .output()
        .unwrap();
    assert!(applied.status.success());
    assert_eq!(
        String::from_utf8_lossy(&applied.stdout).trim(),
        "the database schema is up to date"
    );
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_the_same_server_resumes_with_every_acknowledged_write() {
    let cluster = pg::Cluster::start();
    cluster.sql("CREATE DATABASE outage");
    let dir = tempfile::tempdir().unwrap();
    let s = replica(dir.path(), &cluster.url("outage")).await;
    for i in 0..20 {
        s.create_instance(instance_body(&format!("w{i:02}"), "before the outage"))
            .await;
    }

    // Gets by id go through the connections point reads share: open one.
    let one = "/agentRegistry/agentInstances/w00";
    assert_eq!(s.get(one).await.status(), StatusCode::OK);

    cluster.stop();
    assert_graph_error(s.get(one).await, 503, "serviceNotAvailable").await;
    let started = Instant::now();
    let r = s.get("/agentRegistry/agentInstances").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an outage is reported promptly, not after a hang"
    );
    let retry_after = r
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse::<u64>()
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);
    assert_graph_error(r, 503, "serviceNotAvailable").await;
    let r = s
        .post(
            "/agentRegistry/agentInstances",
            instance_body("during", "during the outage"),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_graph_error(r, 503, "serviceNotAvailable").await;
    let ready = s
        .client
        .get(format!("{}/readyz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.get("/agentRegistry/agentInstances/$count").await;
        if r.status() == StatusCode::OK {
            assert_eq!(r.text().await.unwrap(), "20", "every acknowledged write");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = s
        .client
        .get(format!("{}/readyz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    s.create_instance(instance_body("after", "after the outage"))
        .await;
    // The shared connection the outage closed was replaced.
    for _ in 0..3 {
        assert_eq!(s.get(one).await.status(), StatusCode::OK);
    }
    s.stop().await;
}

#[test]
fn agentry_migrate_applies_the_schema_once_on_either_backend() {
    let migrate = |url: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["migrate", "--database-url", url])
            .output()
            .expect("agentry runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let pg = pg::shared().create_database();
    assert_eq!(
        migrate(&pg),
        "applied 0001_schema\napplied 0002_instance_skill_tags\napplied 0003_sort_indexes_nulls_first\napplied 0004_one_name_index\napplied 0005_agent_registrations\napplied 0006_copilot_packages\napplied 0007_audit_and_change_log\napplied 0008_subscriptions\napplied 0009_agent_watch\napplied 0010_users\napplied 0011_package_element_types\n"
    );
    assert_eq!(migrate(&pg), "the database schema is up to date\n");
    let name = pg.rsplit('/').next().unwrap();
    let recorded = pg::shared().sql_in(
        name,
        "SELECT string_agg(name, ' ' ORDER BY version) FROM agentry_schema_migrations",
    );
    assert_eq!(
        recorded,
        "0001_schema 0002_instance_skill_tags 0003_sort_indexes_nulls_first 0004_one_name_index 0005_agent_registrations 0006_copilot_packages 0007_audit_and_change_log 0008_subscriptions 0009_agent_watch 0010_users 0011_package_element_types"
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("agentry.db").display());
    let first = migrate(&sqlite);
    assert!(
        first.starts_with("applied 0001_registry\n"),
        "every SQLite migration is listed: {first}"
    );
    assert_eq!(migrate(&sqlite), "the database schema is up to date\n");
}

fn write_ctx() -> agentry::domain::WriteContext {
    agentry::domain::WriteContext {
        now: "2026-01-01T00:00:00.0000000Z".into(),
        actor: Some("actor".into()),
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_in_two_processes_lose_no_update_and_resolve_one_policy() {
    use agentry::domain::copilot::{CopilotRules, TenantSetting, parse_setting_patch};
    use agentry::domain::parse_write;
    use agentry::domain::schema::AGENT_INSTANCE;
    use serde_json::json;
    let db = pg::shared().create_database();
    // Two stores with pools of their own, as two replicas have.
    let stores = [
        agentry::store::open(&db).await.unwrap(),
        agentry::store::open(&db).await.unwrap(),
    ];
    let c = write_ctx();
    let body = json!({"displayName": "hot", "ownerIds": []});
    let create = parse_write(&AGENT_INSTANCE, body, true).unwrap();
    stores[0]
        .create_instance("t", "hot", create, &c)
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
    let pin = "microsoft.copilot.copilotchatpinning";
    let rules = CopilotRules::default();
    let kind = TenantSetting::LimitedMode;
    let mut tasks = Vec::new();
    for round in 0..6 {
        for (i, f) in fields.into_iter().enumerate() {
            let (st, c) = (stores[(i + round) % 2].clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                let w = parse_write(&AGENT_INSTANCE, json!({ f: format!("{f}-{round}") }), false)
                    .unwrap();
                st.update_instance("t", "hot", w, &c).await.unwrap();
            }));
        }
        for (i, st) in stores.iter().enumerate() {
            let (st, c) = (st.clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                let value = format!("{}", (round + i) % 2);
                let write = parse_setting_patch(pin, json!({"value": value}), &rules).unwrap();
                st.write_policy_setting("t", write, rules, &c)
                    .await
                    .unwrap();
                let patch = if i == 0 {
                    kind.parse_patch(json!({"groupId": "g"})).unwrap()
                } else {
                    kind.parse_patch(json!({"isEnabledForGroup": true}))
                        .unwrap()
                };
                st.patch_tenant_setting("t", kind, patch, &c).await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let last = stores[1]
        .get_entity(agentry::store::Entity::Instance, "t", "hot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.version,
        1 + 6 * fields.len() as i64,
        "every write counted"
    );
    let d: Value = serde_json::from_str(&last.doc).unwrap();
    for f in fields {
        assert!(
            d[f].as_str().is_some_and(|v| v.starts_with(f)),
            "{f} lost: {d}"
        );
    }
    let policies = stores[0].list_policies("t").await.unwrap();
    assert_eq!(
        policies.len(),
        1,
        "the first write created the policy, the others wrote into it"
    );
    let setting = stores[0]
        .get_tenant_setting("t", kind)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(setting),
        json!({"isEnabledForGroup": true, "groupId": "g"})
    );
    for st in stores {
        st.close().await;
    }
}

/// Every tenant of `from` moved into `to` by `agentry export | agentry
/// import`, as the real binaries run it; the snapshots of both agree.
async fn moved_tenants_read_back_the_same(from: &str, to: &str) {
    let keys = tempfile::tempdir().unwrap();
    let source = replica(keys.path(), from).await;
    crate::control::populate(&source).await;
    let r = source
        .req_as(
            TENANT_B,
            reqwest::Method::POST,
            "/agentRegistry/agentInstances",
        )
        .json(&instance_body("b1", "In B"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut before = Vec::new();
    for tenant in [TENANT_A, TENANT_B] {
        before.push(crate::transfer::tenant_snapshot(&source, tenant).await);
    }
    source.stop().await;

    let bin = env!("CARGO_BIN_EXE_agentry");
    let pipeline =
        format!("'{bin}' export --database-url '{from}' | '{bin}' import --database-url '{to}'");
    let out = Command::new("bash")
        .args(["-c", &format!("set -o pipefail; {pipeline}")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("of 2 tenants:"), "{said}");

    let target = replica(keys.path(), to).await;
    for (tenant, snapshot_before) in [TENANT_A, TENANT_B].into_iter().zip(&before) {
        assert_eq!(
            &crate::transfer::tenant_snapshot(&target, tenant).await,
            snapshot_before,
            "{tenant}"
        );
    }
    target.stop().await;
}

#[tokio::test]
async fn export_and_import_move_every_tenant_from_sqlite_to_postgresql_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("source.db").display());
    let postgres = pg::shared().create_database();
    moved_tenants_read_back_the_same(&sqlite, &postgres).await;

    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    let postgres_source = pg::shared().create_database();
    moved_tenants_read_back_the_same(&postgres_source, &back).await;
}

/// Creates instance `hot` of tenant `t`.
async fn create_hot(store: &std::sync::Arc<dyn agentry::store::Store>) {
    use agentry::domain::parse_write;
    use agentry::domain::schema::AGENT_INSTANCE;
    let body = serde_json::json!({"displayName": "hot", "ownerIds": []});
    store
        .create_instance(
            "t",
            "hot",
            parse_write(&AGENT_INSTANCE, body, true).unwrap(),
            &write_ctx(),
        )
        .await
        .unwrap();
}

/// Polls `write` `polls` times, letting the connections work in between,
/// then drops it: a request abandoned at that point of its way.
async fn abandon_after<F: std::future::Future>(write: F, polls: usize) {
    let mut write = std::pin::pin!(write);
    for _ in 0..polls {
        let step = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx)));
        if step.await.is_ready() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_abandoned_midway_leave_no_connection_inside_a_transaction() {
    use agentry::domain::parse_write;
    use agentry::domain::schema::AGENT_INSTANCE;
    use serde_json::json;
    let url = pg::shared().create_database();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let store = agentry::store::open(&url).await.unwrap();
    let c = write_ctx();
    create_hot(&store).await;
    // A new owner each time: the PATCH writes a side table, so it runs in
    // a transaction that locks the row, not as one guarded statement.
    let rename = |n: usize| {
        parse_write(
            &AGENT_INSTANCE,
            json!({ "displayName": format!("n{n}"), "ownerIds": [format!("o{n}")] }),
            false,
        )
        .unwrap()
    };
    let stuck = format!(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = '{database}' AND state LIKE 'idle in transaction%'"
    );
    // Each PATCH of the same row is dropped after one more poll than the
    // last. A connection given back to the pool inside the transaction
    // would stay idle in it (and the next write on it would commit the
    // abandoned one's statements); a closed one is gone once its backend
    // has noticed.
    for polls in 0..80 {
        abandon_after(store.update_instance("t", "hot", rename(polls), &c), polls).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while pg::shared().sql(&stuck) != "0" {
            assert!(
                Instant::now() < deadline,
                "a connection stayed inside the transaction of a PATCH dropped after {polls} polls"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for n in 1000..1010 {
        let patched = tokio::time::timeout(
            Duration::from_secs(10),
            store.update_instance("t", "hot", rename(n), &c),
        )
        .await
        .expect("the row is not left locked");
        patched.unwrap();
    }
    store.close().await;
}

/// Connects to `url` outside any store, as another program would.
async fn other_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The one number `sql` answers.
async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_whose_row_changes_after_it_was_read_is_written_again_keeping_both_changes() {
    use agentry::domain::parse_write;
    use agentry::domain::schema::AGENT_INSTANCE;
    use serde_json::json;
    let url = pg::shared().create_database();
    let store = agentry::store::open(&url).await.unwrap();
    let c = write_ctx();
    create_hot(&store).await;
    let rename =
        |name: &str| parse_write(&AGENT_INSTANCE, json!({ "displayName": name }), false).unwrap();
    let logged = "SELECT count(*) FROM change_log WHERE id = 'hot'";
    let watcher = other_client(&url).await;
    let audits_before = count(&watcher, "SELECT count(*) FROM directory_audits").await;

    // Another writer changes the row and holds it, uncommitted.
    let other = other_client(&url).await;
    other
        .batch_execute(
            "BEGIN; UPDATE agent_instances SET version = version + 1,
             doc = (doc::jsonb || '{\"description\": \"from elsewhere\"}')::json
             WHERE id = 'hot'",
        )
        .await
        .unwrap();
    // The PATCH reads version 1 (the last committed), and its guarded
    // statement waits for the row.
    let patch = tokio::spawn({
        let (store, c) = (store.clone(), c.clone());
        async move {
            store
                .update_instance("t", "hot", rename("renamed"), &c)
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &watcher,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the PATCH never waited for the row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.batch_execute("COMMIT").await.unwrap();

    // The row was at version 2 when the lock was released: the guarded
    // statement wrote nothing, and the PATCH ran again over the change.
    let patched = patch.await.unwrap().unwrap();
    assert_eq!(patched.version, 3);
    let doc: Value = serde_json::from_str(&patched.doc).unwrap();
    assert_eq!(doc["displayName"], "renamed");
    assert_eq!(doc["description"], "from elsewhere", "{doc}");
    assert_eq!(
        (
            store.stats().guarded_writes,
            store.stats().guarded_fallbacks
        ),
        (0, 1)
    );
    assert_eq!(
        count(&watcher, logged).await,
        2,
        "the create and one update"
    );
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM directory_audits").await,
        audits_before + 1,
        "one audit record of the PATCH"
    );

    // Uncontended, the next PATCH is one guarded statement.
    let patched = store
        .update_instance("t", "hot", rename("again"), &c)
        .await
        .unwrap();
    assert_eq!(patched.version, 4);
    assert_eq!(
        (
            store.stats().guarded_writes,
            store.stats().guarded_fallbacks
        ),
        (1, 1)
    );
    assert_eq!(count(&watcher, logged).await, 3);
    store.close().await;
}
