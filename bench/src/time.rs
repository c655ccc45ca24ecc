//! Clocks as the bench needs them beyond `redis_failover_tests::stats` (`ms`, `rel_ms`) and
//! `redis_failover_tests::unix_ms`: microseconds, the time of day (to place log lines), and
//! random delays.

use std::time::Duration;

use redis_failover_tests::unix_ms;

/// `d` in microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Seconds since midnight UTC now, to the millisecond (to place log lines, which carry the
/// time of day).
pub fn wall_secs_of_day() -> f64 {
    (unix_ms() % 86_400_000) as f64 / 1000.0
}

/// A random delay, uniform in [0, `max_ms`) ms (zero when `max_ms` is 0): it makes a
/// signal fall at a random point of a probe cycle.
pub fn jitter(max_ms: u64) -> Duration {
    if max_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(fastrand::u64(..max_ms))
    }
}
