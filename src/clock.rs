//! Time as Graph writes it, behind a clock that tests can pin.

use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The source of "now" for everything that stamps data.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        wall_now()
    }
}

/// The wall clock's now, for what must agree with the system's time rather
/// than with a server's injected clock: token lifetimes (the JWT library
/// reads the system time), key rotation, and commands run from the shell.
/// Everything a server stamps reads its [`SharedClock`] instead; clippy
/// refuses the wall clock anywhere else (`clippy.toml`).
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The wall clock as time since the Unix epoch, for log lines: what the
/// default log timer reads, without a civil date worked out on each call.
#[allow(clippy::disallowed_methods)]
pub fn wall_since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// A clock that always answers the same instant (for tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

pub type SharedClock = Arc<dyn Clock>;

const ERROR_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// A `DateTimeOffset` as Graph returns it: UTC with seven fractional digits,
/// for example `2025-01-01T00:00:00.1234567Z`.
pub fn entity_timestamp(t: OffsetDateTime) -> String {
    crate::odata::edm::date_time_offset(t)
}

/// The `innerError.date` form: UTC, seconds precision, no zone.
pub fn error_timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(ERROR_TIME)
        .expect("a UTC time always formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn entity_timestamps_have_seven_fractional_digits_in_utc() {
        let t = datetime!(2025-01-01 01:02:03.123456789 +02:00);
        assert_eq!(entity_timestamp(t), "2024-12-31T23:02:03.1234567Z");
    }

    #[test]
    fn error_timestamps_have_no_fraction_and_no_zone() {
        let t = datetime!(2026-04-06 13:37:18.9 UTC);
        assert_eq!(error_timestamp(t), "2026-04-06T13:37:18");
    }
}
