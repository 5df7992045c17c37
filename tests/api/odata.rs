//! OData queries over a few hundred generated instances, each checked
//! against a reference evaluation written here in plain Rust, page by page.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::cmp::Ordering;

const OWNERS: [&str; 6] = ["o1", "o2", "o3", "o4", "o5", "o6"];
const NAMES: [&str; 5] = [
    "Conditional Access",
    "Teams Scheduler",
    "Security Copilot",
    "sales helper",
    "HR bot",
];
const TAGS: [&str; 5] = ["security", "threat", "hr", "sales", "detection"];

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

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// An instance as created, with its manifest (if any) under `agentCardManifest`.
fn generate(n: usize) -> Vec<Value> {
    let mut r = Lcg(42);
    (0..n)
        .map(|i| {
            let owners: Vec<&str> = OWNERS.iter().copied().filter(|_| r.chance(30)).collect();
            let mut v = json!({
                "id": format!("agent-{i:03}"),
                "displayName": format!("{} {i}", r.pick(&NAMES)),
                "ownerIds": owners,
                "managedBy": if r.chance(70) { json!(format!("app-{}", r.next() % 4)) } else { Value::Null },
                "originatingStore": r.pick(&[json!("Copilot Studio"), json!("Microsoft Security Copilot"), Value::Null]).clone(),
                "url": if r.chance(50) { json!(format!("https://agent{i}.example.com")) } else { Value::Null },
                "preferredTransport": r.pick(&[json!("JSONRPC"), json!("GRPC"), json!("HTTP+JSON"), Value::Null]).clone(),
                "additionalInterfaces": (0..r.next() % 3).map(|k| json!({"url": format!("https://a{i}-{k}"), "transport": r.pick(&["JSONRPC", "GRPC"])})).collect::<Vec<_>>(),
            });
            if r.chance(66) {
                let skills: Vec<Value> = (0..1 + r.next() % 2)
                    .map(|k| {
                        let tags: Vec<&str> = TAGS.iter().copied().filter(|_| r.chance(35)).collect();
                        json!({"id": format!("skill-{k}"), "displayName": "Skill", "tags": tags})
                    })
                    .collect();
                let mut manifest = json!({
                    "id": format!("card-{i:03}"),
                    "displayName": format!("card {i}"),
                    "capabilities": {"streaming": r.chance(50), "pushNotifications": false},
                    "skills": skills,
                });
                if r.chance(60) {
                    manifest["provider"] = json!({"organization": r.pick(&["Contoso", "Fabrikam"]), "url": "https://example.com"});
                }
                v["agentCardManifest"] = manifest;
            }
            v
        })
        .collect()
}

async fn load(s: &TestServer, n: usize) -> Vec<Value> {
    let data = generate(n);
    for v in &data {
        let r = s.post("/agentRegistry/agentInstances", v.clone()).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{v}");
    }
    data
}

/// Follows every next link; returns the ids in order and the first page's count.
async fn fetch_all(
    s: &TestServer,
    path: &str,
    query: &[(&str, &str)],
) -> (Vec<String>, Option<u64>) {
    let mut url = reqwest::Url::parse_with_params(&s.url(path), query)
        .unwrap()
        .to_string();
    let (mut ids, mut count) = (Vec::new(), None);
    for page in 0.. {
        assert!(page < 100, "too many pages");
        let r = s
            .client
            .get(&url)
            .bearer_auth(s.token())
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let body: Value = r.json().await.unwrap();
        if page == 0 {
            count = body["@odata.count"].as_u64();
        }
        ids.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    (ids, count)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn lower(s: Option<&str>) -> String {
    s.unwrap_or_default().to_ascii_lowercase()
}

/// The ids of `values`, in their order.
fn ids<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn manifest(v: &Value) -> Option<&Value> {
    v.get("agentCardManifest")
}

fn has_tag(v: &Value, f: impl Fn(&str) -> bool) -> bool {
    manifest(v).is_some_and(|m| {
        m["skills"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| strs(s, "tags").into_iter().any(&f))
    })
}

type Reference = fn(&Value) -> bool;

#[tokio::test]
async fn filters_return_exactly_what_a_reference_evaluation_selects() {
    let s = TestServer::start().await;
    let data = load(&s, 300).await;
    let table: Vec<(&str, Reference)> = vec![
        ("startswith(displayName, 'security')", |v| {
            lower(text(v, &["displayName"])).starts_with("security")
        }),
        (
            "startswith(displayName, 'SECURITY') and ownerIds/any(o: o in ('o3', 'o4'))",
            |v| {
                lower(text(v, &["displayName"])).starts_with("security")
                    && ["o3", "o4"].iter().any(|o| strs(v, "ownerIds").contains(o))
            },
        ),
        (
            "startswith(displayName, 'security') and ownerIds/any(o: o eq 'o3')",
            |v| {
                lower(text(v, &["displayName"])).starts_with("security")
                    && strs(v, "ownerIds").contains(&"o3")
            },
        ),
        ("endswith(displayName, '5')", |v| {
            lower(text(v, &["displayName"])).ends_with('5')
        }),
        ("contains(displayName, 'COPILOT')", |v| {
            lower(text(v, &["displayName"])).contains("copilot")
        }),
        ("ownerIds/any(o: o eq 'o3')", |v| {
            strs(v, "ownerIds").contains(&"o3")
        }),
        ("ownerIds/any(o: o in ('o1', 'o6'))", |v| {
            strs(v, "ownerIds").iter().any(|o| *o == "o1" || *o == "o6")
        }),
        ("not ownerIds/any(o: o eq 'o2')", |v| {
            !strs(v, "ownerIds").contains(&"o2")
        }),
        ("ownerIds/all(o: o ne 'o4')", |v| {
            !strs(v, "ownerIds").contains(&"o4")
        }),
        ("ownerIds/any()", |v| !strs(v, "ownerIds").is_empty()),
        ("ownerIds/any(o: startswith(o, 'o5'))", |v| {
            strs(v, "ownerIds").contains(&"o5")
        }),
        ("managedBy eq null", |v| v["managedBy"].is_null()),
        (
            "managedBy ne null and originatingStore eq 'Copilot Studio'",
            |v| {
                !v["managedBy"].is_null()
                    && text(v, &["originatingStore"]) == Some("Copilot Studio")
            },
        ),
        ("managedBy ne 'app-1'", |v| {
            text(v, &["managedBy"]) != Some("app-1")
        }),
        ("not (managedBy eq 'app-1')", |v| {
            text(v, &["managedBy"]) != Some("app-1")
        }),
        ("managedBy gt 'app-1'", |v| {
            text(v, &["managedBy"]).is_some_and(|m| m > "app-1")
        }),
        ("not (managedBy gt 'app-1')", |v| {
            text(v, &["managedBy"]).is_none_or(|m| m <= "app-1")
        }),
        (
            "originatingStore in ('Copilot Studio', 'Microsoft Security Copilot')",
            |v| !v["originatingStore"].is_null(),
        ),
        ("originatingStore in ('Copilot Studio', null)", |v| {
            text(v, &["originatingStore"]).is_none_or(|o| o == "Copilot Studio")
        }),
        ("url eq null or preferredTransport eq 'GRPC'", |v| {
            v["url"].is_null() || text(v, &["preferredTransport"]) == Some("GRPC")
        }),
        ("additionalInterfaces/any(a: a/transport eq 'GRPC')", |v| {
            v["additionalInterfaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["transport"] == "GRPC")
        }),
        (
            "agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
            |v| has_tag(v, |t| t == "security"),
        ),
        (
            "agentCardManifest/skills/any(s: s/tags/any(t: t in ('hr', 'sales')))",
            |v| has_tag(v, |t| t == "hr" || t == "sales"),
        ),
        (
            "agentCardManifest/skills/any(s: s/tags/any(t: startswith(t, 'de')))",
            |v| has_tag(v, |t| t.starts_with("de")),
        ),
        (
            "not agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
            |v| !has_tag(v, |t| t == "security"),
        ),
        // Inside a lambda, paths without the variable start at the instance.
        ("agentCardManifest/skills/all(s: url ne null)", |v| {
            manifest(v).is_some() && !v["url"].is_null()
        }),
        (
            "agentCardManifest/skills/any(s: ownerIds/any(o: o eq 'o3'))",
            |v| manifest(v).is_some() && strs(v, "ownerIds").contains(&"o3"),
        ),
        ("agentCardManifest/skills/all(s: s/tags/any())", |v| {
            manifest(v).is_some_and(|m| {
                m["skills"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| !strs(s, "tags").is_empty())
            })
        }),
        // Two lambdas side by side (SQLite once counted these wrongly).
        (
            "ownerIds/any() and agentCardManifest/capabilities/extensions/all(x: x/required)",
            |v| !strs(v, "ownerIds").is_empty() && manifest(v).is_some(),
        ),
        (
            "ownerIds/any() and agentCardManifest/skills/all(s: s/tags/any())",
            |v| {
                !strs(v, "ownerIds").is_empty()
                    && manifest(v).is_some_and(|m| {
                        m["skills"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|s| !strs(s, "tags").is_empty())
                    })
            },
        ),
        ("agentCardManifest/displayName eq null", |v| {
            manifest(v).is_none()
        }),
        ("agentCardManifest/capabilities/streaming eq true", |v| {
            manifest(v).is_some_and(|m| m["capabilities"]["streaming"] == true)
        }),
        ("agentCardManifest/capabilities/streaming", |v| {
            manifest(v).is_some_and(|m| m["capabilities"]["streaming"] == true)
        }),
        (
            "not (agentCardManifest/capabilities/streaming eq true)",
            |v| !manifest(v).is_some_and(|m| m["capabilities"]["streaming"] == true),
        ),
        (
            "agentCardManifest/provider/organization eq 'Contoso'",
            |v| manifest(v).and_then(|m| text(m, &["provider", "organization"])) == Some("Contoso"),
        ),
        ("id gt 'agent-150' and id le 'agent-200'", |v| {
            text(v, &["id"]).is_some_and(|i| i > "agent-150" && i <= "agent-200")
        }),
        (
            "createdDateTime ge 2000-01-01T00:00:00Z and lastModifiedDateTime lt 2999-01-01",
            |_| true,
        ),
        (
            "(managedBy eq 'app-2' or managedBy eq 'app-3') and not (preferredTransport eq 'JSONRPC')",
            |v| {
                matches!(text(v, &["managedBy"]), Some("app-2" | "app-3"))
                    && text(v, &["preferredTransport"]) != Some("JSONRPC")
            },
        ),
        ("true", |_| true),
        ("false or id eq 'agent-001'", |v| v["id"] == "agent-001"),
        // Names compare without ASCII case (`store::is_name`).
        ("displayName ge 'HR' and displayName lt 'SECURITY'", |v| {
            let n = lower(text(v, &["displayName"]));
            n.as_str() >= "hr" && n.as_str() < "security"
        }),
        (
            "displayName in ('SALES HELPER 3', 'hr bot 4', 'Sales Helper 6')",
            |v| {
                ["sales helper 3", "hr bot 4", "sales helper 6"]
                    .contains(&lower(text(v, &["displayName"])).as_str())
            },
        ),
        ("agentCardManifest/displayName ge 'CARD 5'", |v| {
            manifest(v).is_some_and(|m| lower(text(m, &["displayName"])).as_str() >= "card 5")
        }),
    ];
    for (filter, reference) in table {
        // Pages come in id order, but those of a name prefix: in name order
        // without ASCII case, then id, unless a one-value owner or tag term
        // (whose side table yields id order) is there too
        // (`store::pages_by_name`).
        let by_name = filter.starts_with("startswith(displayName") && !filter.contains("o eq 'o3'");
        let mut keyed: Vec<(String, String)> = data
            .iter()
            .filter(|v| reference(v))
            .map(|v| {
                let name = match by_name {
                    true => v["displayName"].as_str().unwrap().to_ascii_lowercase(),
                    false => String::new(),
                };
                (name, v["id"].as_str().unwrap().to_owned())
            })
            .collect();
        keyed.sort();
        let expected: Vec<String> = keyed.into_iter().map(|(_, id)| id).collect();
        let (got, count) = fetch_all(
            &s,
            "/agentRegistry/agentInstances",
            &[
                ("$filter", filter),
                ("$top", "37"),
                ("$count", "true"),
                ("$select", "id"),
            ],
        )
        .await;
        assert!(
            !expected.is_empty(),
            "the data should exercise $filter={filter}"
        );
        assert_eq!(got, expected, "$filter={filter}");
        assert_eq!(
            count,
            Some(expected.len() as u64),
            "$count with $filter={filter}"
        );
    }
    // The /$count segment honours $filter.
    let url = reqwest::Url::parse_with_params(
        &s.url("/agentRegistry/agentInstances/$count"),
        &[("$filter", "ownerIds/any(o: o eq 'o3')")],
    )
    .unwrap();
    let n = s
        .client
        .get(url)
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        n,
        data.iter()
            .filter(|v| strs(v, "ownerIds").contains(&"o3"))
            .count()
            .to_string()
    );
    let r = s.get("/agentRegistry/agentInstances/$count?$top=1").await;
    assert_graph_error(r, 400, "BadRequest").await;
    // Equality on a name that exists, with a quote to escape.
    let name = data[7]["displayName"].as_str().unwrap();
    let filter = format!("displayName eq '{name}' or displayName eq 'it''s'");
    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentInstances",
        &[("$filter", filter.as_str())],
    )
    .await;
    assert_eq!(got, ["agent-007"]);
}

fn compare_nullable(a: Option<&str>, b: Option<&str>, descending: bool) -> Ordering {
    // SQLite and Agentry: nulls first ascending, last descending.
    let o = match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    };
    if descending { o.reverse() } else { o }
}

#[tokio::test]
async fn names_sort_and_match_without_ascii_case_across_pages() {
    let s = TestServer::start().await;
    let data = load(&s, 60).await;
    let name = |v: &Value| lower(text(v, &["displayName"]));
    for (orderby, descending) in [("displayName", false), ("displayName desc", true)] {
        let mut expected: Vec<&Value> = data.iter().collect();
        expected.sort_by(|a, b| {
            let o = name(a).cmp(&name(b));
            let o = if descending { o.reverse() } else { o };
            o.then(a["id"].as_str().cmp(&b["id"].as_str()))
        });
        let expected = ids(expected);
        let (got, _) = fetch_all(
            &s,
            "/agentRegistry/agentInstances",
            &[("$orderby", orderby), ("$top", "7")],
        )
        .await;
        // "sales helper …" sorts among the capitalised names, not after them.
        assert_eq!(got, expected, "$orderby={orderby}");
    }
    let wanted = data[9]["displayName"].as_str().unwrap();
    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentInstances",
        &[(
            "$filter",
            &format!("displayName eq '{}'", wanted.to_uppercase()),
        )],
    )
    .await;
    assert_eq!(got, ["agent-009"]);
}

#[tokio::test]
async fn orderby_pages_follow_the_reference_order_and_search_matches_words() {
    let s = TestServer::start().await;
    let data = load(&s, 200).await;
    let mut expected: Vec<&Value> = data
        .iter()
        .filter(|v| text(v, &["originatingStore"]).is_some())
        .collect();
    expected.sort_by(|a, b| {
        compare_nullable(text(a, &["managedBy"]), text(b, &["managedBy"]), true)
            .then(compare_nullable(
                text(a, &["preferredTransport"]),
                text(b, &["preferredTransport"]),
                false,
            ))
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let expected = ids(expected);
    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentInstances",
        &[
            ("$filter", "originatingStore ne null"),
            ("$orderby", "managedBy desc,preferredTransport"),
            ("$top", "7"),
        ],
    )
    .await;
    assert_eq!(got, expected);

    let mut by_manifest: Vec<&Value> = data.iter().collect();
    by_manifest.sort_by(|a, b| {
        compare_nullable(
            manifest(a).and_then(|m| text(m, &["provider", "organization"])),
            manifest(b).and_then(|m| text(m, &["provider", "organization"])),
            false,
        )
        .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let expected = ids(by_manifest);
    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentInstances",
        &[
            ("$orderby", "agentCardManifest/provider/organization asc"),
            ("$top", "50"),
        ],
    )
    .await;
    assert_eq!(got, expected);

    let words = |v: &Value| {
        lower(text(v, &["displayName"]))
            .split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut expected: Vec<String> = data
        .iter()
        .filter(|v| {
            words(v).iter().any(|w| w.starts_with("sched"))
                || words(v).iter().any(|w| w.starts_with("hr"))
        })
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let (got, count) = fetch_all(
        &s,
        "/agentRegistry/agentInstances",
        &[
            ("$search", "\"sched\" OR \"displayName:HR\""),
            ("$count", "true"),
            ("$top", "20"),
        ],
    )
    .await;
    assert_eq!(got, expected);
    assert_eq!(count, Some(expected.len() as u64));
}

#[tokio::test]
async fn manifests_and_members_filter_too() {
    let s = TestServer::start().await;
    let data = load(&s, 60).await;
    let mut expected: Vec<String> = data
        .iter()
        .filter_map(manifest)
        .filter(|m| {
            m["skills"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| strs(k, "tags").contains(&"hr"))
        })
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentCardManifests",
        &[("$filter", "skills/any(s: s/tags/any(t: t eq 'hr'))")],
    )
    .await;
    assert_eq!(got, expected);

    let cid = s.create_collection("Team").await;
    for v in data.iter().step_by(2) {
        let r = s
            .post(
                &format!("/agentRegistry/agentCollections/{cid}/members/$ref"),
                json!({"@odata.id": format!("agentInstances('{}')", v["id"].as_str().unwrap())}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let mut expected: Vec<String> = data
        .iter()
        .step_by(2)
        .filter(|v| strs(v, "ownerIds").contains(&"o1"))
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let (got, count) = fetch_all(
        &s,
        &format!("/agentRegistry/agentCollections/{cid}/members"),
        &[
            ("$filter", "ownerIds/any(o: o eq 'o1')"),
            ("$count", "true"),
            ("$top", "3"),
        ],
    )
    .await;
    assert_eq!(got, expected);
    assert_eq!(count, Some(expected.len() as u64));

    let (got, _) = fetch_all(
        &s,
        "/agentRegistry/agentCollections",
        &[
            (
                "$filter",
                "displayName eq 'Global' or displayName eq 'Team'",
            ),
            ("$orderby", "displayName desc"),
        ],
    )
    .await;
    assert_eq!(got, vec![cid.clone(), GLOBAL.to_owned()]);
}

#[tokio::test]
async fn bad_queries_get_400s_that_name_the_problem() {
    let s = TestServer::start().await;
    let deep = format!("{}id eq 'x'{}", "(".repeat(50), ")".repeat(50));
    let table: Vec<(&str, &str, &str)> = vec![
        ("$filter", "colour eq 'red'", "'colour'"),
        ("$filter", "displayName eq 42", "'displayName'"),
        ("$filter", "displayName eq", "position 15"),
        ("$filter", "displayName eq 'x' and", "position 23"),
        ("$filter", "substringof('x', displayName)", "'substringof'"),
        ("$filter", "ownerIds eq 'x'", "'ownerIds'"),
        (
            "$filter",
            "agentCardManifest/colour eq 'x'",
            "'agentCardManifest/colour'",
        ),
        (
            "$filter",
            "collections/any(c: c/id eq 'x')",
            "'collections'",
        ),
        ("$filter", &deep, "nested"),
        ("$orderby", "ownerIds", "'ownerIds'"),
        ("$orderby", "colour desc", "'colour'"),
        ("$search", "agent", "double quotes"),
    ];
    for (option, value, named) in table {
        let url = reqwest::Url::parse_with_params(
            &s.url("/agentRegistry/agentInstances"),
            &[(option, value)],
        )
        .unwrap();
        let r = s
            .client
            .get(url)
            .bearer_auth(s.token())
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        let e = assert_graph_error(r, 400, "BadRequest").await;
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{option}={value}: {message}");
    }
    let r = s
        .get("/agentRegistry/agentInstances?$search=%22agent%22")
        .await;
    assert_graph_error(r, 400, "Request_UnsupportedQuery").await;
}

#[tokio::test]
async fn a_paging_token_is_bound_to_its_query() {
    let s = TestServer::start().await;
    load(&s, 10).await;
    let first = s
        .get_json("/agentRegistry/agentInstances?$top=2&$orderby=displayName")
        .await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let token = next.split("$skiptoken=").nth(1).unwrap();
    let r = s
        .get(&format!(
            "/agentRegistry/agentInstances?$top=2&$orderby=managedBy&$skiptoken={token}"
        ))
        .await;
    assert_graph_error(r, 400, "BadRequest").await;
    let r = s
        .client
        .get(next)
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
