//! Throttling mode: a token bucket per (tenant, application id), as Graph
//! throttles per app and tenant. Off unless configured.

use foldhash::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// `rate` tokens a second, up to `burst` saved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    pub rate: f64,
    pub burst: u32,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Throttle {
    settings: ThrottleSettings,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            buckets: Mutex::new(HashMap::default()),
        }
    }

    /// Takes a token for the caller, or says how many whole seconds until one.
    pub fn take(&self, tenant: &str, app_id: &str) -> Result<(), u64> {
        self.take_at(tenant, app_id, Instant::now())
    }

    fn take_at(&self, tenant: &str, app_id: &str, now: Instant) -> Result<(), u64> {
        let ThrottleSettings { rate, burst } = self.settings;
        let burst = f64::from(burst.max(1));
        let mut buckets = self.buckets.lock().expect("throttle buckets poisoned");
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets
            .entry((tenant.to_owned(), app_id.to_owned()))
            .or_insert(Bucket {
                tokens: burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = if rate > 0.0 {
            ((1.0 - bucket.tokens) / rate).ceil()
        } else {
            3600.0
        };
        Err((wait as u64).clamp(1, 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_the_burst_then_refills_at_the_rate() {
        let t = Throttle::new(ThrottleSettings {
            rate: 2.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.take_at("t", "app", start), Ok(()));
        }
        assert_eq!(t.take_at("t", "app", start), Err(1));
        assert_eq!(
            t.take_at("t", "app", start + Duration::from_millis(500)),
            Ok(())
        );
        assert_eq!(
            t.take_at("t", "app", start + Duration::from_millis(500)),
            Err(1)
        );
    }

    #[test]
    fn each_tenant_and_application_has_its_own_bucket() {
        let t = Throttle::new(ThrottleSettings {
            rate: 0.1,
            burst: 1,
        });
        let now = Instant::now();
        assert_eq!(t.take_at("t", "a", now), Ok(()));
        assert_eq!(t.take_at("t", "a", now), Err(10));
        assert_eq!(t.take_at("t", "b", now), Ok(()));
        assert_eq!(t.take_at("u", "a", now), Ok(()));
    }
}
