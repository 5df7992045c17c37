//! What only PostgreSQL offers, run in every `cargo test`: several servers
//! on one database acting as one service, an outage of the database that
//! the server rides out, and `agentry migrate`.

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

    cluster.stop();
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
        "applied 0001_schema\napplied 0002_instance_skill_tags\n"
    );
    assert_eq!(migrate(&pg), "the database schema is up to date\n");
    let name = pg.rsplit('/').next().unwrap();
    let recorded = pg::shared().sql_in(
        name,
        "SELECT string_agg(name, ' ' ORDER BY version) FROM agentry_schema_migrations",
    );
    assert_eq!(recorded, "0001_schema 0002_instance_skill_tags");

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("agentry.db").display());
    let first = migrate(&sqlite);
    assert!(
        first.starts_with("applied 0001_registry\n"),
        "every SQLite migration is listed: {first}"
    );
    assert_eq!(migrate(&sqlite), "the database schema is up to date\n");
}
