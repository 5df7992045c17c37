//! The statements run against a throwaway PostgreSQL cluster, side by side
//! with the SQLite store over the same rows. They fail, naming the package,
//! where no PostgreSQL binaries are installed.

use super::super::*;
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use crate::domain::{WriteContext, parse_write};
use crate::odata::QueryOptions;
use crate::store::Entity;
use crate::store::sqlite::SqliteStore;
use crate::store::{RegistryStore, Relation, Store};
use serde_json::{Value, json};
use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use tokio_postgres::types::ToSql;

const TENANT: &str = "t1";

/// A PostgreSQL cluster in a temporary directory, reachable only through
/// its Unix socket there, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("AGENTRY_PG_BIN") {
        return Some(dir.into());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Cluster {
    fn start() -> Cluster {
        let Some(bin) = bin_dir() else {
            panic!(
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install Debian's \
                 `postgresql` package (.ci/run does) or set AGENTRY_PG_BIN"
            );
        };
        let uid = Command::new("id").arg("-u").output().expect("id runs");
        // initdb refuses to run as root.
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(cluster.dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown postgres failed");
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-k {} -p 5432 -c listen_addresses='' -c fsync=off",
            cluster.socket_dir()
        );
        let log = cluster.dir.path().join("log").display().to_string();
        cluster.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        cluster
    }

    fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A connection to a new database holding the schema. Its default
    /// collation is a linguistic one where the server has ICU, so that a
    /// comparison missing its "C" collation shows.
    async fn database(&self, name: &str) -> tokio_postgres::Client {
        let admin = self.connect("postgres").await;
        let linguistic = format!(
            "CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' TEMPLATE template0"
        );
        if admin.batch_execute(&linguistic).await.is_err() {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
        }
        let client = self.connect(name).await;
        for (_, migration) in crate::store::postgres::migrate::MIGRATIONS {
            client
                .batch_execute(migration)
                .await
                .expect("the schema loads");
        }
        client
    }

    async fn connect(&self, db: &str) -> tokio_postgres::Client {
        let config = format!(
            "host={} port=5432 user=postgres dbname={db}",
            self.socket_dir()
        );
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn params(c: &Compiled) -> Vec<&(dyn ToSql + Sync)> {
    c.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Rows of a page statement: id and the sort values.
async fn rows(
    client: &tokio_postgres::Client,
    c: &Compiled,
) -> Result<Vec<(String, Vec<Value>)>, tokio_postgres::Error> {
    let rows = client.query(&c.sql, &params(c)).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let _doc: String = r.get(1);
            let _version: i64 = r.get(2);
            let values = (3..r.len()).map(|i| r.get::<_, Value>(i)).collect();
            (r.get(0), values)
        })
        .collect())
}

/// What a list covers, in both backends' terms.
#[derive(Clone, Copy)]
enum Listing {
    Instances,
    Manifests,
    Collections,
    MembersOf(&'static str),
    CollectionsOf(&'static str),
}

impl Listing {
    fn ty(self) -> &'static EntityType {
        match self {
            Listing::Instances | Listing::MembersOf(_) => &AGENT_INSTANCE,
            Listing::Manifests => &AGENT_CARD_MANIFEST,
            Listing::Collections | Listing::CollectionsOf(_) => &AGENT_COLLECTION,
        }
    }

    fn source(self) -> Source<'static> {
        match self {
            Listing::Instances => Source::Table("agent_instances"),
            Listing::Manifests => Source::Table("agent_card_manifests"),
            Listing::Collections => Source::Table("agent_collections"),
            Listing::MembersOf(c) => Source::MembersOf(c),
            Listing::CollectionsOf(i) => Source::CollectionsOf(i),
        }
    }

    async fn sqlite_page(self, store: &SqliteStore, q: &ListQuery) -> crate::store::Page {
        let r = match self {
            Listing::Instances => {
                store
                    .list_entities(Entity::Instance, TENANT, Relation::All, q)
                    .await
            }
            Listing::MembersOf(c) => {
                store
                    .list_entities(Entity::Instance, TENANT, Relation::MembersOf(c), q)
                    .await
            }
            Listing::Manifests => {
                store
                    .list_entities(Entity::Manifest, TENANT, Relation::All, q)
                    .await
            }
            Listing::Collections => {
                store
                    .list_entities(Entity::Collection, TENANT, Relation::All, q)
                    .await
            }
            Listing::CollectionsOf(i) => {
                store
                    .list_entities(Entity::Collection, TENANT, Relation::CollectionsOf(i), q)
                    .await
            }
        };
        r.expect("SQLite lists")
    }

    async fn sqlite_count(self, store: &SqliteStore, c: &Criteria) -> u64 {
        let r = match self {
            Listing::Instances => {
                store
                    .count_entities(Entity::Instance, TENANT, Relation::All, c)
                    .await
            }
            Listing::MembersOf(id) => {
                store
                    .count_entities(Entity::Instance, TENANT, Relation::MembersOf(id), c)
                    .await
            }
            Listing::Manifests => {
                store
                    .count_entities(Entity::Manifest, TENANT, Relation::All, c)
                    .await
            }
            Listing::Collections => {
                store
                    .count_entities(Entity::Collection, TENANT, Relation::All, c)
                    .await
            }
            Listing::CollectionsOf(id) => {
                store
                    .count_entities(Entity::Collection, TENANT, Relation::CollectionsOf(id), c)
                    .await
            }
        };
        r.expect("SQLite counts")
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize].clone()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One of the values, or null, or (for `absent`) no property at all.
    fn maybe(&mut self, items: &[Value]) -> Option<Value> {
        match self.next() % 6 {
            0 => None,
            1 => Some(Value::Null),
            _ => Some(self.pick(items)),
        }
    }
}

const NAMES: &[&str] = &[
    "Conditional Access",
    "conditional access helper",
    "Éclair bot",
    "éclair Bot",
    "50% off_deal",
    "back\\slash",
    "it's here",
    "Zeta",
    "alpha beta",
    "ALPHA",
    "",
];
const OWNERS: &[&str] = &["o1", "o2", "O1", "o3", "owner-é"];
const TAGS: &[&str] = &["security", "Security", "hr", "sales", "de_tection", "%"];

fn put(v: &mut Value, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        v[key] = value;
    }
}

fn manifest(r: &mut Lcg, id: &str) -> Value {
    let mut m = json!({"id": id, "displayName": r.pick(NAMES)});
    put(
        &mut m,
        "description",
        r.maybe(&[
            json!("Finds threats"),
            json!("the HR helper"),
            json!("SALES desk"),
        ]),
    );
    put(
        &mut m,
        "provider",
        r.maybe(&[
            json!({"organization": "Contoso", "url": "https://c.example"}),
            json!({"organization": "contoso"}),
            json!({"organization": null}),
            json!({"url": "https://f.example"}),
        ]),
    );
    let extensions: Vec<Value> = (0..r.next() % 3)
        .map(|k| {
            let mut x = json!({"uri": format!("urn:x{k}")});
            put(&mut x, "required", r.maybe(&[json!(true), json!(false)]));
            x
        })
        .collect();
    let mut capabilities = json!({"extensions": extensions});
    put(
        &mut capabilities,
        "streaming",
        r.maybe(&[json!(true), json!(false)]),
    );
    put(&mut m, "capabilities", r.maybe(&[capabilities]));
    let skills: Vec<Value> = (0..r.next() % 4)
        .map(|k| {
            let mut s =
                json!({"id": format!("skill-{}", r.next() % 3), "displayName": r.pick(NAMES)});
            if k > 0 || r.chance(80) {
                let tags: Vec<&str> = TAGS.iter().copied().filter(|_| r.chance(30)).collect();
                s["tags"] = json!(tags);
            }
            s
        })
        .collect();
    m["skills"] = json!(skills);
    put(
        &mut m,
        "supportsAuthenticatedExtendedCard",
        r.maybe(&[json!(true), json!(false)]),
    );
    m
}

fn instance(r: &mut Lcg, i: usize) -> Value {
    let prefix = if i == 1 {
        "a"
    } else {
        r.pick(&["a", "B", "é", "_", "b"])
    };
    let name = r.pick(NAMES);
    let owners: Vec<&str> = OWNERS.iter().copied().filter(|_| r.chance(30)).collect();
    let mut v = json!({
        "id": format!("{prefix}{i:03}"),
        "displayName": name,
        "ownerIds": owners,
    });
    put(
        &mut v,
        "managedBy",
        r.maybe(&[json!("app-1"), json!("app-2"), json!("App-1")]),
    );
    put(
        &mut v,
        "originatingStore",
        r.maybe(&[json!("Copilot Studio"), json!("copilot studio")]),
    );
    put(
        &mut v,
        "url",
        r.maybe(&[json!(format!("https://agent{i}.example.com")), json!("")]),
    );
    put(
        &mut v,
        "preferredTransport",
        r.maybe(&[json!("JSONRPC"), json!("GRPC")]),
    );
    put(
        &mut v,
        "sourceAgentId",
        r.maybe(&[json!(name), json!("Zeta"), json!("zeta")]),
    );
    let interfaces: Vec<Value> = (0..r.next() % 3)
        .map(|k| {
            let mut a = json!({"url": format!("https://a{i}-{k}")});
            put(
                &mut a,
                "transport",
                r.maybe(&[json!("JSONRPC"), json!("GRPC")]),
            );
            a
        })
        .collect();
    v["additionalInterfaces"] = json!(interfaces);
    if r.chance(70) {
        v["agentCardManifest"] = manifest(r, &format!("card-{i:03}"));
    }
    v
}

fn context(r: &mut Lcg) -> WriteContext {
    let t =
        time::OffsetDateTime::from_unix_timestamp(1_735_689_600 + (r.next() % 1000) as i64 * 3600)
            .expect("a valid time");
    WriteContext {
        now: crate::clock::entity_timestamp(t),
        actor: None,
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    }
}

const TEAM: &str = "team";
const MEMBER: &str = "a001";

/// A SQLite store and a PostgreSQL database holding the same rows.
async fn load(
    cluster: &Cluster,
    name: &str,
    dir: &FsPath,
) -> (SqliteStore, tokio_postgres::Client) {
    let path = dir.join("agentry.db");
    let store = SqliteStore::open(&path).expect("SQLite opens");
    let mut r = Lcg(7);
    let mut ids = Vec::new();
    for i in 0..160 {
        let v = instance(&mut r, i);
        let id = v["id"].as_str().unwrap().to_owned();
        let write =
            parse_write(&AGENT_INSTANCE, v.clone(), true).unwrap_or_else(|e| panic!("{v}: {e:?}"));
        let ctx = context(&mut r);
        store
            .create_instance(TENANT, &id, write, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{v}: {e:?}"));
        ids.push(id);
    }
    for i in 0..12 {
        let id = format!("loose-{i}");
        let v = manifest(&mut r, &id);
        let write = parse_write(&AGENT_CARD_MANIFEST, v, true).unwrap();
        let ctx = context(&mut r);
        store
            .create_manifest(TENANT, &id, write, &ctx)
            .await
            .unwrap();
    }
    for (i, name) in ["Team", "team b", "Été", "Zulu", "50%"]
        .into_iter()
        .enumerate()
    {
        let id = if i == 0 {
            TEAM.to_owned()
        } else {
            format!("c{i}")
        };
        let mut v = json!({"id": id, "displayName": name, "ownerIds": [r.pick(OWNERS)]});
        put(
            &mut v,
            "description",
            r.maybe(&[json!("the team"), json!("Other desk")]),
        );
        let write = parse_write(&AGENT_COLLECTION, v, true).unwrap();
        let ctx = context(&mut r);
        store
            .create_collection(TENANT, &id, write, &ctx)
            .await
            .unwrap();
        for member in ids.iter().filter(|_| r.chance(30)) {
            store.add_member(TENANT, &id, member, &ctx).await.unwrap();
        }
        // Every collection holds MEMBER (adding it twice is refused).
        let _ = store.add_member(TENANT, &id, MEMBER, &ctx).await;
    }
    // Read the tenant's first page once, which also stores its reserved collections.
    store
        .list_entities(
            Entity::Collection,
            TENANT,
            Relation::All,
            &ListQuery::first(1),
        )
        .await
        .unwrap();
    let client = cluster.database(name).await;
    copy_rows(&path, &client).await;
    client.batch_execute("ANALYZE").await.unwrap();
    (store, client)
}

/// Copies every registry row from the SQLite file into PostgreSQL.
async fn copy_rows(path: &FsPath, client: &tokio_postgres::Client) {
    let conn = rusqlite::Connection::open(path).expect("SQLite file opens");
    for table in [
        "agent_card_manifests",
        "agent_card_manifest_skill_tags",
        "agent_instances",
        "agent_instance_owners",
        "agent_instance_skill_tags",
        "agent_collections",
        "agent_collection_members",
    ] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let names: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let placeholders: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match n.as_str() {
                "doc" => format!("${}::text::json", i + 1),
                "version" => format!("${}::bigint", i + 1),
                _ => format!("${}::text", i + 1),
            })
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let rows: Vec<Vec<rusqlite::types::Value>> = stmt
            .query_map([], |r| (0..names.len()).map(|i| r.get(i)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for row in rows {
            let values: Vec<Option<Param>> = row
                .into_iter()
                .map(|v| match v {
                    rusqlite::types::Value::Null => None,
                    rusqlite::types::Value::Integer(i) => Some(Param::Int(i)),
                    rusqlite::types::Value::Text(s) => Some(Param::Text(s)),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            client.execute(&insert, &refs).await.unwrap();
        }
    }
}

/// A checked list query from an OData query string, or the reason it is refused.
fn parse(ty: &'static EntityType, text: &str, limit: usize) -> Result<ListQuery, String> {
    let q = QueryOptions::parse(Some(text)).map_err(|e| e.to_string())?;
    q.check_shape(ty, &[]).map_err(|e| e.to_string())?;
    Ok(ListQuery {
        criteria: Criteria {
            filter: q.filter,
            search: q.search,
        },
        order: q.orderby,
        limit,
        ..ListQuery::default()
    })
}

/// Every id of a list, page by page, from SQLite.
async fn sqlite_ids(store: &SqliteStore, listing: Listing, q: &ListQuery) -> Vec<String> {
    let mut q = q.clone();
    let mut ids = Vec::new();
    loop {
        let page = listing.sqlite_page(store, &q).await;
        ids.extend(page.items.into_iter().map(|s| s.id));
        if !page.more {
            return ids;
        }
        q.after = page.last;
    }
}

/// Every id of a list, page by page, from PostgreSQL, with the cursors the
/// sort values make.
async fn pg_ids(
    client: &tokio_postgres::Client,
    listing: Listing,
    q: &ListQuery,
) -> Result<Vec<String>, String> {
    let mut q = q.clone();
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let c = list(TENANT, listing.ty(), listing.source(), &q);
        let mut page = rows(client, &c)
            .await
            .map_err(|e| format!("{e:?}\n{}", c.sql))?;
        let more = page.len() > q.limit;
        page.truncate(q.limit);
        let last = page.last().cloned();
        ids.extend(page.into_iter().map(|(id, _)| id));
        match last {
            Some((id, values)) if more => q.after = Some(Cursor { values, id }),
            _ => return Ok(ids),
        }
    }
    Err("the pages do not end".into())
}

async fn pg_count(
    client: &tokio_postgres::Client,
    listing: Listing,
    c: &Criteria,
) -> Result<u64, String> {
    let c = count(TENANT, listing.ty(), listing.source(), c);
    let row = client
        .query_one(&c.sql, &params(&c))
        .await
        .map_err(|e| format!("{e:?}\n{}", c.sql))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Both backends list and count the same rows for `text`; None when the query is refused.
async fn compare(
    store: &SqliteStore,
    client: &tokio_postgres::Client,
    listing: Listing,
    text: &str,
    limit: usize,
) -> Result<Option<usize>, String> {
    let Ok(q) = parse(listing.ty(), text, limit) else {
        return Ok(None);
    };
    same_rows(store, client, listing, text, &q).await.map(Some)
}

/// Both backends list and count the same rows for `q`: how many.
async fn same_rows(
    store: &SqliteStore,
    client: &tokio_postgres::Client,
    listing: Listing,
    label: &str,
    q: &ListQuery,
) -> Result<usize, String> {
    let expected = sqlite_ids(store, listing, q).await;
    let got = pg_ids(client, listing, q).await?;
    if got != expected {
        return Err(format!(
            "{label}\n  SQLite:     {expected:?}\n  PostgreSQL: {got:?}"
        ));
    }
    let n = listing.sqlite_count(store, &q.criteria).await;
    let m = pg_count(client, listing, &q.criteria).await?;
    if n != m {
        return Err(format!("{label}: count {m}, SQLite counts {n}"));
    }
    Ok(expected.len())
}

const INSTANCE_FILTERS: &[&str] = &[
    "displayName eq 'Zeta'",
    "displayName eq 'zeta'",
    "displayName ne 'Zeta'",
    "displayName gt 'Zeta'",
    "displayName lt 'a'",
    "displayName le 'É'",
    "displayName ge ''",
    "displayName eq sourceAgentId",
    "displayName ne sourceAgentId",
    "sourceAgentId gt displayName",
    "not (sourceAgentId lt displayName)",
    "'Zeta' eq sourceAgentId",
    "'Zeta' lt sourceAgentId",
    "'b' gt 'B'",
    "'É' gt 'z'",
    "null eq null",
    "null ne managedBy",
    "managedBy eq null",
    "not (managedBy eq null)",
    "managedBy ne 'app-1'",
    "not (managedBy ne 'app-1')",
    "managedBy gt 'app-1'",
    "not (managedBy gt 'app-1')",
    "managedBy le null",
    "url eq ''",
    "url ne null",
    "not (url gt 'https://agent5')",
    "id gt 'a050' and id lt 'é'",
    "id in ('a001', 'B002', 'nope')",
    "not (id in ('a001', 'B002'))",
    "managedBy in ('app-1', null)",
    "not (managedBy in ('app-1', null))",
    "managedBy in (null)",
    "'x' in ('x')",
    "createdDateTime ge 2025-01-10T00:00:00Z",
    "lastModifiedDateTime lt 2025-01-20",
    "createdDateTime eq lastModifiedDateTime",
    "startswith(displayName, 'conditional')",
    "startswith(displayName, 'ÉCLAIR')",
    "startswith(displayName, 'éclair')",
    "startswith(displayName, '50%')",
    "startswith(displayName, '50_')",
    "startswith(displayName, '')",
    "not startswith(displayName, 'a')",
    "endswith(displayName, 'BOT')",
    "contains(displayName, '\\')",
    "contains(displayName, '''')",
    "contains(displayName, '%')",
    "contains(displayName, '_')",
    "not contains(url, 'agent1')",
    "startswith(managedBy, 'APP')",
    "endswith(id, '7')",
    "startswith(displayName, sourceAgentId)",
    "endswith(sourceAgentId, displayName)",
    "contains('Conditional Access helper', displayName)",
    "not contains(displayName, sourceAgentId)",
    "startswith(displayName, null)",
    "ownerIds/any(o: o eq 'o1')",
    "ownerIds/any(o: o eq 'O1')",
    "ownerIds/any(o: 'o2' eq o)",
    "ownerIds/any(o: o in ('o1', 'o3'))",
    "not ownerIds/any(o: o eq 'o1')",
    "ownerIds/any(o: o eq 'o1' or o eq 'o2')",
    "ownerIds/all(o: o ne 'o1')",
    "ownerIds/all(o: startswith(o, 'o'))",
    "ownerIds/any()",
    "not ownerIds/any()",
    "ownerIds/any(o: contains(o, 'É'))",
    "ownerIds/any(o: o gt displayName)",
    "ownerIds/any(o: o eq managedBy)",
    "additionalInterfaces/any(a: a/transport eq 'GRPC')",
    "additionalInterfaces/any(a: a/transport eq null)",
    "additionalInterfaces/all(a: a/transport ne null)",
    "not additionalInterfaces/all(a: a/transport ne null)",
    "additionalInterfaces/any(a: startswith(a/url, 'https://a1'))",
    "additionalInterfaces/any(a: a/transport eq preferredTransport)",
    "agentCardManifest/displayName eq null",
    "agentCardManifest/displayName eq displayName",
    "agentCardManifest/description ne null",
    "startswith(agentCardManifest/displayName, 'alpha')",
    "agentCardManifest/provider/organization eq 'Contoso'",
    "agentCardManifest/provider/organization eq null",
    "not (agentCardManifest/provider/organization gt 'C')",
    "agentCardManifest/capabilities/streaming",
    "not agentCardManifest/capabilities/streaming",
    "agentCardManifest/capabilities/streaming eq true",
    "agentCardManifest/capabilities/streaming eq false",
    "agentCardManifest/capabilities/streaming ne true",
    "agentCardManifest/capabilities/streaming eq null",
    "agentCardManifest/capabilities/streaming in (true, null)",
    "agentCardManifest/supportsAuthenticatedExtendedCard ne false",
    "agentCardManifest/capabilities/streaming eq agentCardManifest/supportsAuthenticatedExtendedCard",
    "agentCardManifest/capabilities/extensions/any(x: x/required)",
    "agentCardManifest/capabilities/extensions/all(x: x/required eq false)",
    "agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
    "agentCardManifest/skills/any(s: s/tags/any(t: t in ('hr', '%')))",
    "not agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
    "agentCardManifest/skills/any(s: s/tags/any(t: startswith(t, 'SEC')))",
    "agentCardManifest/skills/all(s: s/tags/any())",
    "not agentCardManifest/skills/all(s: s/tags/any())",
    "agentCardManifest/skills/any(s: s/tags/all(t: t ne 'hr'))",
    "agentCardManifest/skills/any(s: s/id eq 'skill-1' and s/tags/any(t: t eq 'sales'))",
    "agentCardManifest/skills/any()",
    "agentCardManifest/skills/any(s: s/displayName eq displayName)",
    "agentCardManifest/skills/any(s: ownerIds/any(o: o eq 'o1'))",
    "agentCardManifest/skills/all(s: url ne null)",
    "true",
    "false",
    "not true or id eq 'a001'",
    "(managedBy eq 'app-2' or url eq null) and not (preferredTransport eq 'JSONRPC')",
];

const MANIFEST_FILTERS: &[&str] = &[
    "skills/any(s: s/tags/any(t: t eq 'hr'))",
    "not skills/any(s: s/tags/any(t: t eq 'hr'))",
    "skills/any(s: s/tags/any(t: t eq 'hr') and s/displayName eq displayName)",
    "skills/all(s: s/id ne 'skill-0')",
    "capabilities/streaming eq false",
    "not capabilities/streaming",
    "provider/organization in ('Contoso', 'contoso')",
    "description eq null",
    "contains(description, 'HR')",
    "supportsAuthenticatedExtendedCard",
    "startswith(displayName, 'É')",
    "startswith(id, 'loose')",
];

const COLLECTION_FILTERS: &[&str] = &[
    "displayName eq 'Team'",
    "startswith(displayName, 'TEAM')",
    "ownerIds/any(o: o eq 'o1')",
    "not ownerIds/any(o: o eq 'o1')",
    "description ne null",
    "contains(description, 'desk')",
];

#[test]
fn every_filter_selects_the_rows_sqlite_selects() {
    let cluster = Cluster::start();
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, client) = load(&cluster, "filters", dir.path()).await;
        let mut wrong = Vec::new();
        let sets = [
            (Listing::Instances, INSTANCE_FILTERS),
            (Listing::MembersOf(TEAM), INSTANCE_FILTERS),
            (Listing::Manifests, MANIFEST_FILTERS),
            (Listing::Collections, COLLECTION_FILTERS),
            (Listing::CollectionsOf(MEMBER), COLLECTION_FILTERS),
        ];
        for (listing, filters) in sets {
            for filter in filters {
                let text = format!("$filter={}", filter.replace('%', "%25"));
                match compare(&store, &client, listing, &text, 1000).await {
                    Ok(Some(_)) => {}
                    Ok(None) => wrong.push(format!("{filter}: refused")),
                    Err(e) => wrong.push(e),
                }
            }
        }
        store.close().await;
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    });
}

#[test]
fn searches_select_the_rows_sqlite_selects() {
    let cluster = Cluster::start();
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, client) = load(&cluster, "searches", dir.path()).await;
        let mut wrong = Vec::new();
        let searches = [
            "\"conditional\"",
            "\"BOT\"",
            "\"éclair\"",
            "\"50%25\"",
            "\"off_\"",
            "\"helper\" AND \"access\"",
            "\"zeta\" OR \"displayName:alpha\"",
            "\"description:hr\"",
            "\"desk\"",
        ];
        for listing in [Listing::Instances, Listing::Manifests, Listing::Collections] {
            for search in searches {
                let text = format!("$search={search}&$filter=id ne 'x'");
                if let Err(e) = compare(&store, &client, listing, &text, 1000).await {
                    wrong.push(e);
                }
            }
        }
        store.close().await;
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    });
}

#[test]
fn ordered_pages_follow_the_sqlite_order_across_cursors() {
    let cluster = Cluster::start();
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, client) = load(&cluster, "orders", dir.path()).await;
        let mut wrong = Vec::new();
        let orders = [
            (Listing::Instances, "$orderby=displayName"),
            (Listing::Instances, "$orderby=displayName desc"),
            (Listing::Instances, "$orderby=managedBy desc,url"),
            (
                Listing::Instances,
                "$orderby=url,managedBy desc,displayName",
            ),
            (Listing::Instances, "$orderby=id desc"),
            (Listing::Instances, "$orderby=createdDateTime desc"),
            (
                Listing::Instances,
                "$orderby=agentCardManifest/provider/organization",
            ),
            (
                Listing::Instances,
                "$orderby=agentCardManifest/capabilities/streaming desc,displayName",
            ),
            (
                Listing::Instances,
                "$orderby=agentCardManifest/supportsAuthenticatedExtendedCard",
            ),
            (
                Listing::Instances,
                "$orderby=preferredTransport&$filter=managedBy ne null",
            ),
            (Listing::MembersOf(TEAM), "$orderby=sourceAgentId desc"),
            (
                Listing::Manifests,
                "$orderby=capabilities/streaming,provider/organization desc",
            ),
            (Listing::Manifests, "$orderby=description"),
            (
                Listing::Collections,
                "$orderby=description desc,displayName",
            ),
            (Listing::CollectionsOf(MEMBER), "$orderby=displayName"),
        ];
        for (listing, text) in orders {
            for limit in [1, 7, 1000] {
                match compare(&store, &client, listing, text, limit).await {
                    Ok(Some(_)) => {}
                    Ok(None) => wrong.push(format!("{text}: refused")),
                    Err(e) => wrong.push(format!("pages of {limit}: {e}")),
                }
            }
        }
        // $skip and $top on one page.
        let mut q = parse(&AGENT_INSTANCE, "$orderby=displayName desc", 5).unwrap();
        q.skip = 11;
        let expected: Vec<String> = Listing::Instances
            .sqlite_page(&store, &q)
            .await
            .items
            .into_iter()
            .map(|s| s.id)
            .collect();
        let c = list(TENANT, &AGENT_INSTANCE, Listing::Instances.source(), &q);
        let got: Vec<String> = rows(&client, &c)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .take(5)
            .collect();
        if got != expected {
            wrong.push(format!("$skip=11: {got:?} != {expected:?}"));
        }
        store.close().await;
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    });
}

/// A literal for `EXECUTE`, from values the test chose.
fn sql_literal(p: &Param) -> String {
    match p {
        Param::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Param::Int(i) => i.to_string(),
        Param::Float(f) => format!("{f:?}"),
        Param::Bool(b) => b.to_string(),
    }
}

/// The plans of a page statement: planned for its values, and generic (as
/// a cached prepared statement may be run).
async fn plans(client: &tokio_postgres::Client, c: &Compiled) -> (String, String) {
    let text = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let custom = client
        .query(&format!("EXPLAIN {}", c.sql), &params(c))
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", c.sql));
    client
        .batch_execute(&format!(
            "DEALLOCATE ALL; SET plan_cache_mode = force_generic_plan; PREPARE page AS {}",
            c.sql
        ))
        .await
        .unwrap();
    let args: Vec<String> = c.params.iter().map(sql_literal).collect();
    let generic = client
        .query(&format!("EXPLAIN EXECUTE page({})", args.join(", ")), &[])
        .await
        .unwrap();
    client
        .batch_execute("RESET plan_cache_mode; DEALLOCATE page")
        .await
        .unwrap();
    (text(custom), text(generic))
}

#[test]
fn discovery_filters_are_answered_from_indexes() {
    let cluster = Cluster::start();
    let rt = runtime();
    rt.block_on(async {
        let client = cluster.database("plans").await;
        client
            .batch_execute(
                "INSERT INTO agent_instances SELECT 't', format('i%s', lpad(i::text, 6, '0')), format('Agent %s', i),
                     format('app%s', i % 50), format('store%s', i % 20), format('m%s', i % 2000), 'x', 'x', 1, '{}'
                 FROM generate_series(0, 20000) i;
                 INSERT INTO agent_card_manifests SELECT 't', format('m%s', i), format('Card %s', i), NULL, NULL, 'x', 'x', 1, '{}'
                 FROM generate_series(0, 20000) i;
                 INSERT INTO agent_card_manifest_skill_tags SELECT 't', format('tag%s', i % 1000), format('m%s', i)
                 FROM generate_series(0, 20000) i;
                 INSERT INTO agent_instance_owners SELECT 't', format('o%s', i % 500), format('i%s', lpad(i::text, 6, '0'))
                 FROM generate_series(0, 20000) i;
                 INSERT INTO agent_instance_skill_tags SELECT i.tenant_id, t.tag, i.id
                 FROM agent_instances i JOIN agent_card_manifest_skill_tags t ON t.tenant_id = i.tenant_id AND t.manifest_id = i.manifest_id;
                 ANALYZE;",
            )
            .await
            .unwrap();
        let table = [
            (&AGENT_INSTANCE, "$filter=id eq 'i000042'", "agent_instances_pkey"),
            (&AGENT_INSTANCE, "$filter=displayName eq 'Agent 42'", "agent_instances_by_display_name_lower"),
            (&AGENT_INSTANCE, "$filter=displayName ge 'agent 42' and displayName lt 'AGENT 43'", "agent_instances_by_display_name_lower"),
            (&AGENT_INSTANCE, "$filter=startswith(displayName, 'agent 1999')", "agent_instances_by_display_name_lower"),
            (&AGENT_INSTANCE, "$filter=managedBy eq 'app7'", "agent_instances_by_managed_by"),
            (&AGENT_INSTANCE, "$filter=originatingStore eq 'store3'", "agent_instances_by_originating_store"),
            (&AGENT_INSTANCE, "$filter=ownerIds/any(o: o eq 'o1')", "agent_instance_owners_pkey"),
            (&AGENT_INSTANCE, "$filter=agentCardManifest/skills/any(s: s/tags/any(t: t eq 'tag1'))", "agent_instance_skill_tags_pkey"),
            (&AGENT_CARD_MANIFEST, "$filter=skills/any(s: s/tags/any(t: t eq 'tag1'))", "agent_card_manifest_skill_tags_pkey"),
        ];
        for (ty, text, index) in table {
            let q = parse(ty, text, 100).unwrap();
            let source = if std::ptr::eq(ty, &AGENT_INSTANCE) { "agent_instances" } else { "agent_card_manifests" };
            let c = list("t", ty, Source::Table(source), &q);
            let (custom, generic) = plans(&client, &c).await;
            for plan in [custom, generic] {
                assert!(plan.contains(&format!(" using {index} ")), "{text}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{text} scans:\n{plan}");
                // A side table's key yields the ids in order: the page
                // needs no sort (what SQLite's page driver does by hand).
                if text.contains("/any(") {
                    assert!(!plan.contains("Sort"), "{text} sorts:\n{plan}");
                }
            }
        }
        // Sorted pages walk an index in SQLite's order (NULL first
        // ascending, last descending) instead of sorting the tenant.
        for (text, index) in [
            ("$orderby=displayName", "agent_instances_by_display_name_lower"),
            ("$orderby=displayName desc", "agent_instances_by_display_name_lower"),
            ("$orderby=managedBy&$filter=managedBy ne 'app1'", "agent_instances_by_managed_by"),
            // A name prefix pages in the index's own order.
            ("$filter=startswith(displayName, 'agent 1')", "agent_instances_by_display_name_lower"),
        ] {
            let q = parse(&AGENT_INSTANCE, text, 100).unwrap();
            let c = list("t", &AGENT_INSTANCE, Source::Table("agent_instances"), &q);
            let (custom, generic) = plans(&client, &c).await;
            for plan in [custom, generic] {
                assert!(plan.contains(&format!(" using {index} ")), "{text}:\n{plan}");
                // Descending keys tie-break on ascending ids: only the ties
                // are sorted (an incremental sort on the presorted key).
                let full_sort = plan.lines().any(|l| {
                    let node = l.trim_start().trim_start_matches("->").trim_start();
                    node.starts_with("Sort  (")
                });
                assert!(!full_sort, "{text} sorts:\n{plan}");
            }
        }
    });
}

/// Both backends list the same instances for `q`, and both count what they list.
async fn same_ids(
    store: &SqliteStore,
    client: &tokio_postgres::Client,
    label: &str,
    q: &ListQuery,
) -> Result<(), String> {
    let expected = sqlite_ids(store, Listing::Instances, q).await;
    let got = pg_ids(client, Listing::Instances, q).await?;
    if got != expected {
        return Err(format!(
            "{label}\n  SQLite:     {expected:?}\n  PostgreSQL: {got:?}"
        ));
    }
    let n = pg_count(client, Listing::Instances, &q.criteria).await?;
    if n != got.len() as u64 {
        return Err(format!("{label}: count {n}, list {}", got.len()));
    }
    let n = Listing::Instances.sqlite_count(store, &q.criteria).await;
    if n != expected.len() as u64 {
        return Err(format!(
            "{label}: SQLite counts {n}, lists {}",
            expected.len()
        ));
    }
    Ok(())
}

fn filter_strategy() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let text_property = prop::sample::select(vec![
        "id",
        "displayName",
        "managedBy",
        "url",
        "sourceAgentId",
        "preferredTransport",
        "agentCardManifest/displayName",
        "agentCardManifest/description",
        "agentCardManifest/provider/organization",
    ]);
    let text_literal = prop::sample::select(vec![
        "'Zeta'",
        "'zeta'",
        "'a'",
        "''",
        "'it''s here'",
        "'É'",
        "'app-1'",
        "'https://agent1'",
        "'Conditional Access'",
        "null",
    ]);
    let text_operand = prop_oneof![
        text_literal.clone().prop_map(str::to_owned),
        text_property.clone().prop_map(str::to_owned),
    ];
    let op = prop::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le"]);
    let comparison = prop_oneof![
        (text_property.clone(), op.clone(), text_operand.clone())
            .prop_map(|(p, o, x)| format!("{p} {o} {x}")),
        (text_literal.clone(), op.clone(), text_property.clone())
            .prop_map(|(l, o, p)| format!("{l} {o} {p}")),
    ];
    let dates = (
        prop::sample::select(vec!["createdDateTime", "lastModifiedDateTime"]),
        op,
        prop::sample::select(vec![
            "2025-01-10T00:00:00Z",
            "2025-01-20",
            "null",
            "createdDateTime",
        ]),
    )
        .prop_map(|(p, o, l)| format!("{p} {o} {l}"));
    let boolean_property = prop::sample::select(vec![
        "agentCardManifest/capabilities/streaming",
        "agentCardManifest/supportsAuthenticatedExtendedCard",
    ]);
    let booleans = (
        boolean_property.clone(),
        prop::sample::select(vec![
            "",
            " eq true",
            " eq false",
            " ne true",
            " eq null",
            " ne null",
        ]),
    )
        .prop_map(|(p, t)| format!("{p}{t}"));
    let membership = (
        text_property.clone(),
        prop::sample::select(vec!["('Zeta', 'a')", "('app-1', null)", "(null)", "('')"]),
    )
        .prop_map(|(p, l)| format!("{p} in {l}"));
    let call = (
        prop::sample::select(vec!["startswith", "endswith", "contains"]),
        prop_oneof![
            (text_property.clone(), text_literal.clone()).prop_map(|(p, l)| format!("{p}, {l}")),
            (text_literal, text_property.clone()).prop_map(|(l, p)| format!("{l}, {p}")),
            (text_property.clone(), text_property).prop_map(|(p, q)| format!("{p}, {q}")),
            prop::sample::select(vec![
                "displayName, 'É'",
                "displayName, '50%'",
                "displayName, '_'",
                "displayName, '\\'",
                "displayName, 'BOT'",
            ])
            .prop_map(str::to_owned),
        ],
    )
        .prop_map(|(f, args)| format!("{f}({args})"));
    let root = prop_oneof![
        3 => comparison,
        1 => dates,
        2 => booleans,
        2 => membership,
        2 => call,
    ];
    let in_lambda = |var: &'static str, leaves: Vec<&'static str>| {
        let leaf = prop::sample::select(leaves).prop_map(move |l| l.replace('v', var));
        (leaf.clone(), leaf, prop::sample::select(vec![0, 1, 2, 3])).prop_map(|(a, b, k)| match k {
            0 => a,
            1 => format!("{a} and {b}"),
            2 => format!("{a} or not ({b})"),
            _ => format!("not ({a})"),
        })
    };
    let owners = in_lambda(
        "o",
        vec![
            "v eq 'o1'",
            "v eq 'O1'",
            "v in ('o1', 'o3')",
            "startswith(v, 'O')",
            "v gt displayName",
            "v eq managedBy",
            "contains(v, 'é')",
            "v ne null",
        ],
    );
    let interfaces = in_lambda(
        "a",
        vec![
            "v/transport eq 'GRPC'",
            "v/transport eq null",
            "v/transport eq preferredTransport",
            "startswith(v/url, 'https://a1')",
            "v/url gt url",
        ],
    );
    let skills = in_lambda(
        "s",
        vec![
            "v/id eq 'skill-1'",
            "v/displayName eq displayName",
            "v/tags/any(t: t eq 'hr')",
            "v/tags/any(t: t in ('security', 'Security'))",
            "v/tags/all(t: t ne 'sales')",
            "v/tags/any()",
            "startswith(v/displayName, 'conditional')",
            "ownerIds/any(o: o eq 'o2')",
        ],
    );
    let extensions = in_lambda(
        "x",
        vec![
            "x/required",
            "x/required eq false",
            "x/required eq null",
            "startswith(x/uri, 'urn:x1')",
        ],
    );
    let quantifier = || prop::sample::select(vec!["any", "all"]);
    let lambda = prop_oneof![
        (quantifier(), owners).prop_map(|(q, b)| format!("ownerIds/{q}(o: {b})")),
        (quantifier(), interfaces).prop_map(|(q, b)| format!("additionalInterfaces/{q}(a: {b})")),
        (quantifier(), skills).prop_map(|(q, b)| format!("agentCardManifest/skills/{q}(s: {b})")),
        (quantifier(), extensions)
            .prop_map(|(q, b)| format!("agentCardManifest/capabilities/extensions/{q}(x: {b})")),
        prop::sample::select(vec![
            "ownerIds/any()",
            "additionalInterfaces/any()",
            "agentCardManifest/skills/any()",
        ])
        .prop_map(str::to_owned),
    ];
    let leaf = prop_oneof![3 => root, 2 => lambda];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

/// Generated filters run on PostgreSQL without an error and select what
/// SQLite selects.
#[test]
fn generated_filters_select_the_rows_sqlite_selects() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cluster = Cluster::start();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (store, client) = rt.block_on(load(&cluster, "generated", dir.path()));
    let ran = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&filter_strategy(), |text| {
        let expr = crate::odata::filter::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        if crate::odata::filter::check(&AGENT_INSTANCE, &expr).is_err() {
            return Ok(());
        }
        let q = ListQuery {
            criteria: Criteria {
                filter: Some(expr),
                search: None,
            },
            limit: 1000,
            ..ListQuery::default()
        };
        rt.block_on(same_ids(&store, &client, &text, &q))
            .map_err(TestCaseError::fail)?;
        ran.set(ran.get() + 1);
        Ok(())
    });
    rt.block_on(store.close());
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(
        ran.get() >= 200,
        "only {} generated filters were valid: the generator needs tuning",
        ran.get()
    );
}
