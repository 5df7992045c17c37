//! The data set: instance `n` has a predictable id, name, owner and skill tag,
//! so that every filter matches a fixed share of the instances whatever their
//! number (the same question asked of a larger registry).

use serde_json::json;

/// Name prefixes; `startswith(displayName, 'Security')` matches 1 in 16.
const WORDS: [&str; 16] = [
    "Security",
    "Sales",
    "Support",
    "Finance",
    "People",
    "Legal",
    "Travel",
    "Research",
    "Design",
    "Marketing",
    "Procurement",
    "Facilities",
    "Training",
    "Compliance",
    "Analytics",
    "Operations",
];
/// Skill tags; `security` is on 1 in 10.
const TAGS: [&str; 10] = [
    "security", "hr", "sales", "devops", "finance", "legal", "travel", "search", "design", "ops",
];
/// Owners; each owns 1 in 100.
pub const OWNERS: u64 = 100;

pub const API: &str = "/beta/agentRegistry/agentInstances";

pub fn id(n: u64) -> String {
    format!("agent-{n:07}")
}

pub fn path(n: u64) -> String {
    format!("{API}/{}", id(n))
}

pub fn display_name(n: u64, revision: u64) -> String {
    let word = WORDS[(n % WORDS.len() as u64) as usize];
    if revision == 0 {
        format!("{word} agent {n:07}")
    } else {
        format!("{word} agent {n:07} r{revision}")
    }
}

pub fn owner(n: u64) -> String {
    format!("owner-{:03}", n % OWNERS)
}

/// The POST body that loads instance `n`, with a nested card manifest.
pub fn instance(n: u64) -> String {
    let tag = TAGS[(n % TAGS.len() as u64) as usize];
    json!({
        "id": id(n),
        "displayName": display_name(n, 0),
        "ownerIds": [owner(n)],
        "agentCardManifest": {
            "displayName": format!("{} card", display_name(n, 0)),
            "skills": [{"id": "main", "tags": [tag]}],
        },
    })
    .to_string()
}

/// The tenant of the harness's token (`agentry token` without `--tenant`).
pub const TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";
/// Who the loaded objects say created them (the token's user).
const CREATOR: &str = "c0ffee00-0000-4000-8000-0000000000a1";
/// When the loaded objects say they were created.
const LOADED_AT: &str = "2026-01-01T00:00:00.0000000Z";

fn manifest_id(n: u64) -> String {
    format!("manifest-{n:07}")
}

/// Writes instances `from..to` with their card manifests as an
/// `agentry import` stream: the same documents the POSTs of [`instance`]
/// store (every property the server fills in), manifests first. Returns
/// the records written.
pub fn write_export(out: &mut dyn std::io::Write, from: u64, to: u64) -> std::io::Result<u64> {
    writeln!(
        out,
        r#"{{"type":"header","format":"agentry-export","version":1}}"#
    )?;
    for n in from..to {
        let tag = TAGS[(n % TAGS.len() as u64) as usize];
        let data = json!({
            "id": manifest_id(n), "ownerIds": [], "managedBy": null, "originatingStore": null,
            "createdBy": CREATOR, "createdDateTime": LOADED_AT, "lastModifiedDateTime": LOADED_AT,
            "protocolVersion": null, "displayName": format!("{} card", display_name(n, 0)),
            "description": null, "iconUrl": null, "provider": null, "version": null,
            "documentationUrl": null, "capabilities": null, "securitySchemes": null,
            "security": [], "defaultInputModes": [], "defaultOutputModes": [],
            "skills": [{"id": "main", "tags": [tag]}], "supportsAuthenticatedExtendedCard": null,
        });
        let record = json!({"type": "manifest", "tenant": TENANT, "data": data});
        writeln!(out, "{record}")?;
    }
    for n in from..to {
        let data = json!({
            "id": id(n), "ownerIds": [owner(n)], "managedBy": null, "originatingStore": null,
            "createdBy": CREATOR, "displayName": display_name(n, 0), "sourceAgentId": null,
            "agentIdentityBlueprintId": null, "agentIdentityId": null, "agentUserId": null,
            "createdDateTime": LOADED_AT, "lastModifiedDateTime": LOADED_AT, "url": null,
            "preferredTransport": null, "additionalInterfaces": [], "signatures": [],
        });
        let record = json!({"type": "instance", "tenant": TENANT, "data": data,
                            "manifestId": manifest_id(n)});
        writeln!(out, "{record}")?;
    }
    let records = 2 * (to - from);
    writeln!(out, r#"{{"type":"trailer","records":{records}}}"#)?;
    Ok(records)
}

/// A created instance that no benchmark filter matches.
pub fn extra_instance(k: u64) -> String {
    json!({
        "id": format!("posted-{k:08}"),
        "displayName": format!("Posted agent {k:08}"),
        "ownerIds": ["owner-posted"],
        "agentCardManifest": {
            "displayName": "Posted card",
            "skills": [{"id": "main", "tags": ["bench-posted"]}],
        },
    })
    .to_string()
}

/// The Agent 365 registrations the harness creates and reads.
pub const REGISTRATIONS: &str = "/beta/copilot/agentRegistrations";
/// Managing applications of registrations; each manages 1 in 10.
pub const MANAGERS: u64 = 10;

pub fn registration_path(k: u64) -> String {
    format!("{REGISTRATIONS}/registration-{k:08}")
}

/// The POST body of registration `k`: the documented required properties,
/// a unique `sourceAgentId`, a managing app and a small A2A card.
pub fn registration(k: u64) -> String {
    json!({
        "id": format!("registration-{k:08}"),
        "displayName": format!("Registered agent {k:08}"),
        "ownerIds": [owner(k)],
        "createdBy": owner(k),
        "sourceCreatedDateTime": "2026-01-01T00:00:00Z",
        "sourceLastModifiedDateTime": "2026-01-01T00:00:00Z",
        "sourceAgentId": format!("source-{k:08}"),
        "managedByAppId": format!("app-{}", k % MANAGERS),
        "agentCard": {"name": format!("Registered agent {k:08}"), "protocolVersion": "0.3.0",
                      "url": format!("https://agents.example/{k}"), "skills": [{"id": "main", "name": "Main"}]},
    })
    .to_string()
}

/// Registrations of one managing application, a page of 100.
pub fn registration_list_path() -> String {
    format!(
        "{REGISTRATIONS}?$filter={}&$top=100",
        encode("managedByAppId eq 'app-3'")
    )
}

/// A `$batch` of `count` gets by id of instances `first..first + count`
/// (mod `size`).
pub fn batch_of_gets(first: u64, count: u64, size: u64) -> String {
    let requests: Vec<serde_json::Value> = (0..count)
        .map(|k| {
            json!({"id": k.to_string(), "method": "GET",
                   "url": format!("/agentRegistry/agentInstances/{}", id((first + k) % size))})
        })
        .collect();
    json!({ "requests": requests }).to_string()
}

/// Instance changes the delta scenario makes before it follows its link.
pub const DELTA_CHANGES: u64 = 1_000;

/// A delta link that starts from now: its answer holds only the link.
pub fn delta_latest_path() -> String {
    format!("{API}/delta?$deltatoken=latest")
}

/// The control-plane collection packages are loaded through.
pub const PACKAGE_LOADS: &str = "/_agentry/copilot/packages";
/// The Graph package catalog.
pub const PACKAGES: &str = "/beta/copilot/admin/catalog/packages";
/// Packages loaded into the catalog.
pub const PACKAGE_COUNT: u64 = 300;
/// Element types of packages; the first three are agents, which the
/// catalog lists by default: 3 in 4 packages.
const ELEMENT_TYPES: [&str; 4] = [
    "DeclarativeAgent",
    "CustomEngineAgent",
    "Bots",
    "OfficeAddIns",
];

/// Packages of the first `count` that the default list shows (agents).
pub fn agent_packages(count: u64) -> u64 {
    (0..count).filter(|k| k % 4 != 3).count() as u64
}

/// The control-plane body of package `k`, with an element detail.
pub fn package(k: u64) -> String {
    let element_type = ELEMENT_TYPES[(k % ELEMENT_TYPES.len() as u64) as usize];
    json!({
        "id": format!("P_bench-{k:08}"),
        "displayName": format!("Packaged agent {k:08}"),
        "type": "custom",
        "shortDescription": format!("Packaged agent {k:08}, briefly"),
        "longDescription": format!("Packaged agent {k:08}, at length"),
        "supportedHosts": ["Copilot", "Teams"],
        "elementTypes": [element_type],
        "platform": "Copilot Studio",
        "publisher": "Contoso",
        "version": "1.0.0",
        "lastModifiedDateTime": "2026-02-01T00:00:00Z",
        "activeUsers": k % 50,
        "elementDetails": [{"elementType": "declarativeAgent",
                            "elements": [{"id": "main", "definition": "{\"name\":\"bench\"}"}]}],
    })
    .to_string()
}

pub fn rename(n: u64, revision: u64) -> String {
    json!({ "displayName": display_name(n, revision) }).to_string()
}

/// The three discovery filters: name, filter, and which instances match
/// (those with `n % modulus == residue`).
pub fn filters() -> [(&'static str, String, u64, u64); 3] {
    [
        (
            "ownerIds/any",
            "ownerIds/any(o:o eq 'owner-007')".into(),
            OWNERS,
            7,
        ),
        (
            "startswith(displayName)",
            "startswith(displayName,'Security')".into(),
            WORDS.len() as u64,
            0,
        ),
        (
            "skill tag",
            "agentCardManifest/skills/any(s:s/tags/any(t:t eq 'security'))".into(),
            TAGS.len() as u64,
            0,
        ),
    ]
}

/// How many of instances `0..size` have `n % modulus == residue`.
pub fn matching(size: u64, modulus: u64, residue: u64) -> u64 {
    if size <= residue {
        0
    } else {
        (size - residue).div_ceil(modulus)
    }
}

/// `$filter=…&$top=100`, percent-encoded.
pub fn list_path(filter: &str) -> String {
    format!("{API}?$filter={}&$top=100", encode(filter))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_valid_json_with_their_id() {
        let v: serde_json::Value = serde_json::from_str(&instance(42)).unwrap();
        assert_eq!(v["id"], "agent-0000042");
        assert_eq!(v["displayName"], "Procurement agent 0000042");
        assert_eq!(v["ownerIds"][0], "owner-042");
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            list_path("ownerIds/any(o:o eq 'x')"),
            "/beta/agentRegistry/agentInstances?$filter=ownerIds%2Fany%28o%3Ao%20eq%20%27x%27%29&$top=100"
        );
    }

    #[test]
    fn matches_are_counted_exactly() {
        assert_eq!(matching(1000, 16, 0), 63);
        assert_eq!(matching(1000, 100, 7), 10);
        assert_eq!(matching(1008, 100, 7), 11);
        assert_eq!(matching(5, 100, 7), 0);
    }

    #[test]
    fn batches_hold_count_gets_that_wrap_around() {
        let v: serde_json::Value = serde_json::from_str(&batch_of_gets(995, 20, 1000)).unwrap();
        let requests = v["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 20);
        assert_eq!(
            requests[4]["url"],
            "/agentRegistry/agentInstances/agent-0000999"
        );
        assert_eq!(
            requests[5]["url"],
            "/agentRegistry/agentInstances/agent-0000000"
        );
    }

    #[test]
    fn three_packages_in_four_are_agents() {
        let v: serde_json::Value = serde_json::from_str(&package(3)).unwrap();
        assert_eq!(v["id"], "P_bench-00000003");
        assert_eq!(v["elementTypes"][0], "OfficeAddIns");
        assert_eq!(agent_packages(PACKAGE_COUNT), 225);
        assert_eq!(agent_packages(5), 4);
    }

    #[test]
    fn renames_keep_the_name_prefix() {
        assert!(display_name(0, 3).starts_with("Security"));
    }
}
