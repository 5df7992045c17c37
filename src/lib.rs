//! Agentry: a self-hostable server for the Microsoft Graph beta Agent Registry
//! and Copilot admin settings APIs.
//!
//! A request travels through the layers in this order:
//!
//! - [`http`]: routing, extractors (token, body, query), the Graph error envelope.
//! - [`auth`]: signing keys, access tokens and the caller they describe.
//! - [`odata`]: query options parsed into a syntax tree (no SQL, no HTTP).
//! - [`domain`]: resources, validation and the rules of each write.
//! - [`store`]: one storage trait and one implementation per backend; SQL lives only there.
//!
//! [`app`] wires them together; [`seed`] loads a seed file through the domain
//! and the store at start; [`transfer`] moves whole databases and
//! [`successor`] copies instances into their Agent 365 registrations;
//! [`cli`] and [`config`] are the binary's edge.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod files;
pub mod http;
pub mod notify;
pub mod odata;
pub mod outbound;
pub mod seed;
pub mod store;
pub mod successor;
pub mod tls;
pub mod transfer;
pub mod watch;

/// The dependency rules of `docs/architecture.md`, checked on the sources:
/// which top-level module may import which, and where SQL drivers may appear.
#[cfg(test)]
mod dependency_rules {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Each module and what it may import besides itself. Anything not
    /// listed may not be imported at all.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("odata", &[]),
        ("files", &[]),
        ("clock", &["odata"]),
        ("tls", &["files"]),
        ("domain", &["odata", "clock"]),
        ("auth", &["clock", "domain", "files", "tls"]),
        ("store", &["domain", "odata", "clock", "files"]),
        ("seed", &["domain", "odata", "clock", "store"]),
        ("transfer", &["domain", "odata", "clock", "store"]),
        ("outbound", &["tls"]),
        (
            "notify",
            &["domain", "odata", "clock", "store", "tls", "outbound"],
        ),
        ("watch", &["domain", "odata", "clock", "store", "outbound"]),
        ("successor", &["domain", "odata", "clock", "store"]),
        (
            "http",
            &[
                "auth",
                "domain",
                "odata",
                "clock",
                "files",
                "store",
                "seed",
                "successor",
                "tls",
                "notify",
                "watch",
            ],
        ),
        (
            "config",
            &[
                "auth", "domain", "odata", "clock", "files", "store", "http", "tls", "notify",
                "outbound", "watch",
            ],
        ),
        (
            "app",
            &[
                "auth", "domain", "odata", "clock", "files", "store", "seed", "http", "tls",
                "config", "notify", "outbound", "watch",
            ],
        ),
        (
            "cli",
            &[
                "auth",
                "domain",
                "odata",
                "clock",
                "files",
                "store",
                "seed",
                "http",
                "tls",
                "config",
                "app",
                "transfer",
                "successor",
                "notify",
                "outbound",
                "watch",
            ],
        ),
    ];

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// A source file without its comments and its tests.
    fn code_of(file: &Path) -> String {
        let text = std::fs::read_to_string(file).unwrap();
        let end = ["#[cfg(test)]", "#[cfg(all(test"]
            .iter()
            .filter_map(|m| text.find(m))
            .min()
            .unwrap_or(text.len());
        text[..end]
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// For each top-level module, the top-level modules its code (tests
    /// and comments left out) names through `crate::` or `super::`.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(&root).unwrap().with_extension("");
            let mut module: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into()).collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                continue;
            }
            let code = code_of(&file);
            let top = module[0].clone();
            let names = out.entry(top.clone()).or_default();
            for (i, _) in code.match_indices("crate::") {
                let next: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(next);
            }
            // `super::` that climbs out of the top-level module names another one.
            for (i, _) in code.match_indices("super::") {
                if i >= 7 && &code[i - 7..i] == "super::" {
                    continue;
                }
                let mut rest = &code[i..];
                let mut up = 0;
                while let Some(r) = rest.strip_prefix("super::") {
                    up += 1;
                    rest = r;
                }
                if up >= module.len() {
                    let next: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.insert(next);
                }
            }
            names.remove(&top);
            names.remove("");
        }
        out
    }

    #[test]
    fn every_module_imports_only_what_the_dependency_rules_allow() {
        let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
        let mut broken = Vec::new();
        for (module, names) in imports() {
            let Some(may) = allowed.get(module.as_str()) else {
                broken.push(format!("{module}: not in the rules"));
                continue;
            };
            for name in names {
                if !may.contains(&name.as_str()) {
                    broken.push(format!("{module} imports {name}"));
                }
            }
        }
        assert!(broken.is_empty(), "{broken:#?}");
    }

    #[test]
    fn database_drivers_appear_only_in_the_store() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        for file in files.iter().filter(|f| !f.starts_with(root.join("store"))) {
            let text = code_of(file);
            for driver in ["rusqlite", "tokio_postgres", "deadpool_postgres"] {
                assert!(!text.contains(driver), "{} names {driver}", file.display());
            }
        }
    }
}
