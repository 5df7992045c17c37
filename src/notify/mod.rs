//! Change notifications, outbound: the validation handshake a new
//! subscription's receiver must pass, and the worker that delivers each
//! subscription's changes from the change log (its outbox, written in the
//! transaction of every write) to its `notificationUrl`.
//!
//! Delivery is at least once: a subscription's position in the log moves
//! only after its receiver accepted a batch, so a crash between the two
//! delivers the batch again, with the same notification ids. A failing
//! receiver is retried with exponential backoff for `retry_for`; then the
//! batch is dropped and a `missed` lifecycle notification tells the
//! receiver to resynchronise (with a delta query). Writes never wait for
//! any of this. On PostgreSQL a lease on each subscription makes one
//! replica at a time deliver it.

pub use crate::outbound::{AllowList, BadRule};

use crate::clock::{SharedClock, entity_timestamp};
use crate::domain::subscriptions::{self, ChangeType};
use crate::store::{ChangeWindow, Delivery, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How notifications are sent.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Where notifications may go.
    pub allow: AllowList,
    /// The longest lifetime a subscription may ask for, in minutes.
    pub max_minutes: u32,
    /// How long a failing receiver is retried before its changes are dropped.
    pub retry_for: Duration,
    /// How often the worker looks for changes it was not woken for (those
    /// of other replicas).
    pub poll: Duration,
    /// How long a receiver has to answer a handshake or a delivery.
    pub timeout: Duration,
}

impl NotifySettings {
    pub fn new(allow: AllowList) -> NotifySettings {
        NotifySettings {
            allow,
            max_minutes: 4230,
            retry_for: Duration::from_secs(4 * 3600),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a receiver was not reached, or not as Graph requires.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The URL's host or addresses are not on the allow-list.
    #[error("'{0}' is not on the notification allow-list")]
    NotAllowed(String),
    #[error("the receiver did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("the receiver's answer was not the validation token")]
    WrongToken,
    /// Connection refused, TLS, DNS…: the text is for logs.
    #[error("the receiver could not be reached: {0}")]
    Unreachable(String),
}

impl From<crate::outbound::OutboundError> for NotifyError {
    fn from(e: crate::outbound::OutboundError) -> NotifyError {
        use crate::outbound::OutboundError as O;
        match e {
            O::NotAllowed(host) => NotifyError::NotAllowed(host),
            O::Timeout(t) => NotifyError::Timeout(t),
            O::Unreachable(text) => NotifyError::Unreachable(text),
        }
    }
}

/// The handshake and the delivery worker; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: reqwest::Client,
    allow: Arc<AllowList>,
    settings: NotifySettings,
    wake: Notify,
    /// This process, as the owner of delivery leases.
    owner: String,
    /// Subscriptions being delivered now, by (tenant, id).
    in_flight: Mutex<HashSet<(String, String)>>,
}

/// The annotation of a subscription whose changes were dropped: when.
pub const MISSED: &str = "@agentry.lastMissedDateTime";

/// How long the worker waits after being woken, gathering the writes of a burst.
const COALESCE: Duration = Duration::from_millis(25);

/// Most changes one notification POST carries.
const BATCH: usize = 100;
/// Most subscriptions delivered at once by one process.
const CONCURRENT: usize = 32;
/// How long a replica's claim on a subscription lasts without renewal.
/// Each tick renews the claims on the subscriptions being delivered, so
/// this only needs to outlast a few ticks; a replica that dies hands its
/// subscriptions over this much later.
const LEASE: Duration = Duration::from_secs(5);

impl Notifier {
    pub fn new(settings: NotifySettings) -> Result<Notifier, NotifyError> {
        let allow = Arc::new(settings.allow.clone());
        let client = crate::outbound::client(allow.clone(), settings.timeout)
            .map_err(|e| NotifyError::Unreachable(e.to_string()))?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                client,
                allow,
                settings,
                wake: Notify::new(),
                owner: uuid::Uuid::new_v4().to_string(),
                in_flight: Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.inner.settings
    }

    /// Tells the worker the change log has grown.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    fn parse(&self, url: &str) -> Result<reqwest::Url, NotifyError> {
        crate::outbound::parse_url(&self.inner.allow, url).map_err(NotifyError::from)
    }

    /// Graph's validation handshake: POSTs `validationToken` to the URL,
    /// which must answer 200 with the token as plain text, in time.
    pub async fn validate(&self, url: &str) -> Result<(), NotifyError> {
        let mut url = self.parse(url)?;
        let token = format!(
            "Validation: Testing client application reachability for subscription Request-Id: {}",
            uuid::Uuid::new_v4()
        );
        url.query_pairs_mut().append_pair("validationToken", &token);
        let answer = self
            .inner
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        if answer.status() != reqwest::StatusCode::OK {
            return Err(NotifyError::Status(answer.status().as_u16()));
        }
        let body = answer.text().await.map_err(|e| self.failure(e))?;
        if body.trim() == token {
            Ok(())
        } else {
            Err(NotifyError::WrongToken)
        }
    }

    /// POSTs `{"value": notifications}`; any 2xx is accepted.
    async fn post(&self, url: &str, notifications: Vec<Value>) -> Result<(), NotifyError> {
        let url = self.parse(url)?;
        let answer = self
            .inner
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "value": notifications }).to_string())
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(NotifyError::Status(answer.status().as_u16()))
        }
    }

    fn failure(&self, e: reqwest::Error) -> NotifyError {
        crate::outbound::failure(e, self.inner.settings.timeout).into()
    }

    /// Delivers, until the process ends: woken by local writes, polling
    /// for the rest; expired subscriptions are deleted once a minute.
    pub async fn run(self, store: Arc<dyn Store>, clock: SharedClock) {
        let mut last_sweep: Option<time::OffsetDateTime> = None;
        loop {
            tokio::select! {
                // Writes in a burst wake it once: at most one pass per
                // COALESCE, whatever the write rate.
                () = self.inner.wake.notified() => tokio::time::sleep(COALESCE).await,
                () = tokio::time::sleep(self.inner.settings.poll) => {}
            }
            let now = clock.now();
            if last_sweep.is_none_or(|t| now - t > time::Duration::minutes(1)) {
                last_sweep = Some(now);
                if let Err(e) = store
                    .delete_expired_subscriptions(&entity_timestamp(now))
                    .await
                {
                    tracing::warn!(error = %e, "could not delete expired subscriptions");
                }
            }
            let lease_until = entity_timestamp(now + LEASE);
            let claimed = match store
                .claim_deliveries(
                    &self.inner.owner,
                    &entity_timestamp(now),
                    &lease_until,
                    CONCURRENT,
                )
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim subscriptions to deliver");
                    continue;
                }
            };
            for delivery in claimed {
                let key = (delivery.tenant.clone(), delivery.id.clone());
                if !self
                    .inner
                    .in_flight
                    .lock()
                    .expect("poisoned")
                    .insert(key.clone())
                {
                    continue; // still being delivered since an earlier tick
                }
                let (me, store, clock) = (self.clone(), store.clone(), clock.clone());
                tokio::spawn(async move {
                    me.deliver(store.as_ref(), &clock, delivery).await;
                    me.inner.in_flight.lock().expect("poisoned").remove(&key);
                });
            }
        }
    }

    /// One batch of one subscription's changes, then its saved progress.
    async fn deliver(&self, store: &dyn Store, clock: &SharedClock, mut d: Delivery) {
        let (tenant, sub) = (d.tenant.clone(), d.doc.clone());
        let text = |name: &str| sub.get(name).and_then(Value::as_str).map(str::to_owned);
        let Some(url) = text("notificationUrl") else {
            return;
        };
        let types = subscriptions::change_types(&text("changeType").unwrap_or_default())
            .unwrap_or_else(|_| ChangeType::ALL.to_vec());
        let to = match &d.to {
            Some(to) => to.clone(),
            None => match store.change_position(&tenant).await {
                Ok(p) => p,
                Err(e) => return tracing::warn!(error = %e, "could not read the change log"),
            },
        };
        let window = ChangeWindow {
            from: d.from.clone(),
            to: to.clone(),
            after: d.after,
        };
        let rows = match store.changes(d.entity, &tenant, &window, BATCH).await {
            Ok(rows) => rows,
            Err(StoreError::SyncStateExpired) => {
                // A reset or a restored snapshot: what changed is unknown.
                self.missed(store, clock, &d).await;
                d.from = to;
                d.to = None;
                d.after = 0;
                return self.save(store, clock, &d, Duration::ZERO).await;
            }
            Err(e) => return tracing::warn!(error = %e, "could not read the change log"),
        };
        if rows.is_empty() {
            return; // nothing new; the position is read again next time
        }
        let notes: Vec<Value> = rows
            .iter()
            .filter(|r| types.contains(&r.change))
            .map(|r| subscriptions::notification(&sub, d.entity, &tenant, &r.id, r.change, r.seq))
            .collect();
        if !notes.is_empty()
            && let Err(e) = self.post(&url, notes).await
        {
            let now = clock.now();
            let since = d
                .failing_since
                .clone()
                .unwrap_or_else(|| entity_timestamp(now));
            let given_up = crate::odata::edm::parse_date_time_offset(&since)
                .is_some_and(|t| now - t >= self.inner.settings.retry_for);
            tracing::info!(subscription = %d.id, error = %e, attempts = d.failures + 1, "a notification receiver failed");
            if !given_up {
                d.failures += 1;
                d.failing_since = Some(since);
                d.to = Some(to);
                return self.save(store, clock, &d, backoff(d.failures)).await;
            }
            tracing::warn!(subscription = %d.id, "notifications dropped after retrying for too long");
            self.missed(store, clock, &d).await;
        }
        d.failures = 0;
        d.failing_since = None;
        let more = rows.len() == BATCH;
        if more {
            d.to = Some(to);
            d.after = rows.last().map_or(d.after, |r| r.seq);
        } else {
            d.from = to;
            d.to = None;
            d.after = 0;
        }
        self.save(store, clock, &d, Duration::ZERO).await;
        if more {
            self.wake();
        }
    }

    async fn save(&self, store: &dyn Store, clock: &SharedClock, d: &Delivery, wait: Duration) {
        let next = entity_timestamp(clock.now() + wait);
        match store.save_delivery(&self.inner.owner, d, &next).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(subscription = %d.id, "delivery lease lost or subscription deleted")
            }
            Err(e) => {
                tracing::warn!(subscription = %d.id, error = %e, "could not save delivery progress")
            }
        }
    }

    /// Changes were dropped: the subscription says when (`@agentry.lastMissedDateTime`),
    /// and its lifecycle receiver is told (`missed`).
    async fn missed(&self, store: &dyn Store, clock: &SharedClock, d: &Delivery) {
        let at = Value::String(entity_timestamp(clock.now()));
        if let Err(e) = store
            .annotate_subscription(&d.tenant, &d.id, MISSED, at)
            .await
        {
            tracing::warn!(subscription = %d.id, error = %e, "could not mark a subscription");
        }
        self.lifecycle(d, "missed").await;
    }

    /// Best effort: one attempt, to `lifecycleNotificationUrl` if the
    /// subscription has one.
    async fn lifecycle(&self, d: &Delivery, event: &str) {
        let Some(url) = d
            .doc
            .get("lifecycleNotificationUrl")
            .and_then(Value::as_str)
        else {
            return;
        };
        let note = subscriptions::lifecycle(&d.doc, &d.tenant, event);
        if let Err(e) = self.post(url, vec![note]).await {
            tracing::info!(subscription = %d.id, error = %e, event, "a lifecycle notification failed");
        }
    }
}

/// Waits 250 ms after the first failure, doubling each time, at most 5 min.
fn backoff(failures: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << failures.saturating_sub(1).min(20));
    Duration::from_millis(ms.min(300_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_a_quarter_second_to_five_minutes() {
        let waits: Vec<u64> = [1, 2, 3, 4, 12, 40]
            .into_iter()
            .map(|n| backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 300_000, 300_000]);
    }
}
