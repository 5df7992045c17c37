//! Watching registered agents: for each tenant whose A2A settings say so,
//! a background checker fetches each agent's own card from the well-known
//! URL at the origin of its registered card's interface, and records
//! whether the agent is `healthy` (the live card matches the registered
//! one), `drifted` (it differs: which members), or `unreachable` (why).
//!
//! Checks go through [`crate::outbound`] (only to allowed hosts, no
//! redirects), start at most `checks_per_second` over every tenant, with at
//! most `per_host` at once against one host, each within `timeout`, and
//! read at most [`MAX_CARD_BYTES`]. Each agent is due again `intervalSeconds`
//! after its check. On PostgreSQL a lease per agent makes one replica check
//! it.

use crate::clock::{SharedClock, entity_timestamp};
use crate::domain::a2a::{drift, settings};
use crate::domain::migration;
use crate::outbound::{AllowList, OutboundError};
use crate::store::{Entity, Store, StoreError, WatchClaim};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// The most a live card may weigh.
pub const MAX_CARD_BYTES: usize = 256 * 1024;

/// The annotation of a watched agent: its last check's outcome.
pub const ANNOTATION: &str = "@agentry.health";

/// How checks are made.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub allow: AllowList,
    pub timeout: Duration,
    pub checks_per_second: u32,
    pub per_host: usize,
    /// How often the worker looks for due agents.
    pub poll: Duration,
}

/// Agents claimed per tenant and pass.
const BATCH: usize = 32;
/// How long a claim lasts: longer than any check (timeout plus pacing).
const LEASE: Duration = Duration::from_secs(60);
/// How often a tenant's new agents are looked for.
const ENROL_EVERY: Duration = Duration::from_secs(30);

/// The checker; cheap to clone.
#[derive(Clone)]
pub struct Watcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: reqwest::Client,
    allow: Arc<AllowList>,
    settings: WatchSettings,
    defaults: Arc<settings::Defaults>,
    /// This process, as the owner of check leases.
    owner: String,
    /// Each tenant's A2A settings in effect, as of the last pass (or its
    /// last change through this process): read paths consult them without
    /// a database read.
    known: RwLock<HashMap<String, settings::Effective>>,
    /// When each tenant's agents were last enrolled.
    enrolled: Mutex<HashMap<String, Instant>>,
    /// One semaphore per host.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The earliest start of the next check (the global pace).
    next_start: tokio::sync::Mutex<Instant>,
    wake: Notify,
    /// Checks made by this process, by outcome.
    counts: [AtomicU64; 3],
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Drifted,
    Unreachable,
}

impl Health {
    pub const ALL: [Health; 3] = [Health::Healthy, Health::Drifted, Health::Unreachable];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Drifted => "drifted",
            Health::Unreachable => "unreachable",
        }
    }

    pub fn parse(text: &str) -> Option<Health> {
        Health::ALL.into_iter().find(|h| h.as_str() == text)
    }
}

impl Watcher {
    pub fn new(
        settings: WatchSettings,
        defaults: Arc<settings::Defaults>,
    ) -> Result<Watcher, OutboundError> {
        let allow = Arc::new(settings.allow.clone());
        let client = crate::outbound::client(allow.clone(), settings.timeout)?;
        Ok(Watcher {
            inner: Arc::new(Inner {
                client,
                allow,
                settings,
                defaults,
                owner: uuid::Uuid::new_v4().to_string(),
                known: RwLock::new(HashMap::new()),
                enrolled: Mutex::new(HashMap::new()),
                hosts: Mutex::new(HashMap::new()),
                next_start: tokio::sync::Mutex::new(Instant::now()),
                wake: Notify::new(),
                counts: Default::default(),
            }),
        })
    }

    /// Whether the tenant watched its agents as of the last pass.
    pub fn watches(&self, tenant: &str) -> bool {
        self.inner
            .known
            .read()
            .expect("settings poisoned")
            .get(tenant)
            .is_some_and(|e| e.watch.enabled)
    }

    /// How the tenant's cards are validated, as of the last pass (the
    /// configuration's mode for a tenant that set none).
    pub fn validation_of(&self, tenant: &str) -> crate::domain::a2a::ValidationMode {
        self.inner
            .known
            .read()
            .expect("settings poisoned")
            .get(tenant)
            .map_or(self.inner.defaults.validation, |e| e.validation)
    }

    /// Takes a tenant's new settings into account at once in this process
    /// (other replicas see them at their next pass).
    pub fn remember(&self, tenant: &str, effective: settings::Effective) {
        self.inner
            .known
            .write()
            .expect("settings poisoned")
            .insert(tenant.to_owned(), effective);
    }

    /// Checks made by this process, by outcome.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        Health::ALL
            .into_iter()
            .zip(&self.inner.counts)
            .map(|(h, n)| (h.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Makes every agent of the tenant due now (new ones included) and
    /// starts a pass.
    pub async fn check_now(
        &self,
        store: &dyn Store,
        tenant: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        store.enrol_agents(tenant, now).await?;
        store.check_all_now(tenant, now).await?;
        self.inner
            .enrolled
            .lock()
            .expect("enrol times poisoned")
            .insert(tenant.to_owned(), Instant::now());
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Checks, until the process ends.
    pub async fn run(self, store: Arc<dyn Store>, clock: SharedClock) {
        loop {
            if let Err(e) = self.pass(&store, &clock).await {
                tracing::warn!(error = %e, "watching agents: a pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.inner.settings.poll) => {}
                _ = self.inner.wake.notified() => {}
            }
        }
    }

    /// One look at every watching tenant: enrol new agents now and then,
    /// claim the due ones, check them (concurrently) and record the outcomes.
    async fn pass(&self, store: &Arc<dyn Store>, clock: &SharedClock) -> Result<(), StoreError> {
        let known: HashMap<String, settings::Effective> = store
            .a2a_settings_of_tenants()
            .await?
            .into_iter()
            .map(|(tenant, doc)| {
                let effective = settings::resolve(Some(&doc), &self.inner.defaults);
                (tenant, effective)
            })
            .collect();
        let tenants: Vec<(String, u64)> = known
            .iter()
            .filter(|(_, e)| e.watch.enabled)
            .map(|(t, e)| (t.clone(), e.watch.interval_seconds))
            .collect();
        *self.inner.known.write().expect("settings poisoned") = known;
        let mut checks = tokio::task::JoinSet::new();
        for (tenant, interval) in tenants {
            let now = clock.now();
            let stamp = entity_timestamp(now);
            let enrol = {
                let mut enrolled = self.inner.enrolled.lock().expect("enrol times poisoned");
                let stale = enrolled
                    .get(&tenant)
                    .is_none_or(|at| at.elapsed() >= ENROL_EVERY);
                if stale {
                    enrolled.insert(tenant.clone(), Instant::now());
                }
                stale
            };
            if enrol {
                store.enrol_agents(&tenant, &stamp).await?;
            }
            let until = entity_timestamp(now + LEASE);
            let claims = store
                .claim_checks(&tenant, &self.inner.owner, &stamp, &until, BATCH)
                .await?;
            for claim in claims {
                let (me, store, clock, tenant) =
                    (self.clone(), store.clone(), clock.clone(), tenant.clone());
                checks.spawn(async move {
                    if let Err(e) = me.check(&store, &clock, &tenant, &claim, interval).await {
                        tracing::warn!(error = %e, tenant, agent = %claim.id, "watching agents: a check was not recorded");
                    }
                });
            }
        }
        while checks.join_next().await.is_some() {}
        Ok(())
    }

    /// Checks one agent and records the outcome.
    async fn check(
        &self,
        store: &Arc<dyn Store>,
        clock: &SharedClock,
        tenant: &str,
        claim: &WatchClaim,
        interval: u64,
    ) -> Result<(), StoreError> {
        let card = match registered_card(store.as_ref(), tenant, claim).await? {
            Registered::Gone => return store.forget_agent(tenant, claim.entity, &claim.id).await,
            Registered::Card(card) => card,
            Registered::NoCard => Value::Null,
        };
        let due =
            |clock: &SharedClock| entity_timestamp(clock.now() + Duration::from_secs(interval));
        let Some(url) = drift::well_known_url(&card) else {
            // Nothing to check (no card, or no http(s) URL): looked at again later.
            let doc = Map::new();
            store
                .save_check(tenant, claim, &self.inner.owner, None, &doc, &due(clock))
                .await?;
            return Ok(());
        };
        self.pace().await;
        let fetched = {
            let host = host_of(&url);
            let slot = self.host_slot(&host);
            let _permit = slot.acquire().await;
            self.fetch(&url).await
        };
        let (health, detail) = match fetched {
            Err(error) => (Health::Unreachable, json!({ "error": error })),
            Ok(live) => {
                let differences = drift::differences(&card, &live);
                if differences.is_empty() {
                    (Health::Healthy, json!({}))
                } else {
                    (Health::Drifted, json!({ "differences": differences }))
                }
            }
        };
        self.inner.counts[health as usize].fetch_add(1, Ordering::Relaxed);
        let now = entity_timestamp(clock.now());
        let mut doc = Map::new();
        doc.insert("state".into(), health.as_str().into());
        doc.insert("url".into(), url.into());
        doc.insert("checkedDateTime".into(), now.clone().into());
        if let Value::Object(detail) = detail {
            doc.extend(detail);
        }
        // Changed: since when the outcome has been what it is now.
        let same = claim.last.as_ref().is_some_and(|last| {
            ["state", "error", "differences"]
                .iter()
                .all(|k| last.get(*k) == doc.get(*k))
        });
        let since = match (&claim.last, same) {
            (Some(last), true) => last.get("changedDateTime").cloned(),
            _ => None,
        };
        doc.insert("changedDateTime".into(), since.unwrap_or(now.into()));
        store
            .save_check(
                tenant,
                claim,
                &self.inner.owner,
                Some(health.as_str()),
                &doc,
                &due(clock),
            )
            .await?;
        Ok(())
    }

    /// Waits for this check's turn under the global pace.
    async fn pace(&self) {
        let gap = Duration::from_secs(1) / self.inner.settings.checks_per_second.max(1);
        let start = {
            let mut next = self.inner.next_start.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + gap;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.inner.hosts.lock().expect("host slots poisoned");
        if hosts.len() > 10_000 {
            // Forget idle hosts rather than grow without bound.
            hosts.retain(|_, s| s.available_permits() < self.inner.settings.per_host);
        }
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.settings.per_host.max(1))))
            .clone()
    }

    /// The live card at `url`, or why there is none.
    async fn fetch(&self, url: &str) -> Result<Value, String> {
        let timeout = self.inner.settings.timeout;
        let parsed =
            crate::outbound::parse_url(&self.inner.allow, url).map_err(|e| described(&e))?;
        let mut answer = self
            .inner
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| described(&crate::outbound::failure(e, timeout)))?;
        let status = answer.status();
        if status.is_redirection() {
            let to = answer
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("elsewhere");
            return Err(format!(
                "answered {} redirecting to {to} (redirects are not followed)",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("answered {}", status.as_u16()));
        }
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_CARD_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match answer.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_CARD_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(described(&crate::outbound::failure(e, timeout))),
            }
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(card @ Value::Object(_)) => Ok(card),
            _ => Err("the answer is not a JSON object".into()),
        }
    }
}

fn too_large() -> String {
    format!("the card is larger than {} KiB", MAX_CARD_BYTES / 1024)
}

/// A failure as the health record says it: short, without internals.
fn described(e: &OutboundError) -> String {
    match e {
        OutboundError::NotAllowed(host) => format!("'{host}' is not on the watch allow-list"),
        OutboundError::Timeout(t) => format!("no answer within {} s", t.as_secs_f32()),
        OutboundError::Unreachable(detail) => {
            let reason =
                if detail.contains("Connection refused") || detail.contains("ConnectionRefused") {
                    "connection refused"
                } else if detail.contains("dns error") || detail.contains("failed to lookup") {
                    "the host name does not resolve"
                } else if detail.contains("certificate")
                    || detail.contains("tls")
                    || detail.contains("Tls")
                {
                    "the TLS handshake failed"
                } else {
                    "the connection failed"
                };
            reason.to_owned()
        }
    }
}

fn host_of(url: &str) -> String {
    url.split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .unwrap_or(url)
        .to_ascii_lowercase()
}

enum Registered {
    Gone,
    NoCard,
    Card(Value),
}

/// The card registered for a claimed agent: an instance's, built with its
/// manifest, or a registration's `agentCard`.
async fn registered_card(
    store: &dyn Store,
    tenant: &str,
    claim: &WatchClaim,
) -> Result<Registered, StoreError> {
    let Some(stored) = store.get_entity(claim.entity, tenant, &claim.id).await? else {
        return Ok(Registered::Gone);
    };
    let card = match claim.entity {
        Entity::Instance => {
            let manifest = store.get_instance_manifest(tenant, &claim.id).await?;
            let manifest = manifest.map(|m| m.parse());
            migration::card_of(&stored.parse(), manifest.as_ref())
        }
        _ => stored
            .parse()
            .get("agentCard")
            .filter(|c| c.is_object())
            .cloned(),
    };
    Ok(card.map_or(Registered::NoCard, Registered::Card))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_described_without_internals() {
        let table = [
            (OutboundError::NotAllowed("10.0.0.1".into()), "'10.0.0.1' is not on the watch allow-list"),
            (OutboundError::Timeout(Duration::from_secs(5)), "no answer within 5 s"),
            (OutboundError::Unreachable("hyper::Error(Connect, ConnectError(\"tcp connect error\", Os { code: 111, kind: ConnectionRefused }))".into()), "connection refused"),
            (OutboundError::Unreachable("something odd at /src/x.rs:12".into()), "the connection failed"),
        ];
        for (error, expected) in table {
            assert_eq!(described(&error), expected);
        }
    }

    #[test]
    fn hosts_are_told_apart_by_authority() {
        assert_eq!(
            host_of("https://A.example:8443/.well-known/agent-card.json"),
            "a.example:8443"
        );
        assert_eq!(host_of("http://127.0.0.1:9/x"), "127.0.0.1:9");
    }

    #[test]
    fn health_names_round_trip() {
        for h in Health::ALL {
            assert_eq!(Health::parse(h.as_str()), Some(h));
        }
        assert_eq!(Health::parse("sick"), None);
    }
}
