//! Clocks and durations as the reports print them: milliseconds and microseconds, times
//! relative to an instant, the wall clock in Unix milliseconds, and random delays.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `d` in microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `at` relative to `t0`, in ms (negative before it).
pub fn signed_ms(at: Instant, t0: Instant) -> f64 {
    if at >= t0 {
        ms(at.duration_since(t0))
    } else {
        -ms(t0.duration_since(at))
    }
}

/// The wall clock now, in milliseconds since the Unix epoch (the unit of the topology's
/// `updated_at_ms`).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since midnight UTC now (to place log lines, which carry the time of day).
pub fn wall_secs_of_day() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() % 86_400.0)
}

/// A random delay, uniform in [0, `max_ms`) ms (zero when `max_ms` is 0): it makes a
/// signal fall at a random point of a probe cycle.
pub fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis(random_below(max_ms))
}

/// A random number in `[0, n)` (0 when `n` is 0).
pub fn random_below(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        fastrand::u64(..n)
    }
}
