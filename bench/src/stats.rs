//! Summaries of a sample as the bench reports print them, beyond
//! `redis_failover_tests::stats`: min / median / max with a text for "no sample", and
//! nearest-rank percentiles.

use std::time::Duration;

use redis_failover_tests::stats::{fmt_ms, ms, Stats};

/// `min / median / max ms` with one decimal, or `none` when there is no sample.
pub fn fmt_stats_or(s: &Option<Stats>, none: &str) -> String {
    if s.is_some() {
        fmt_ms(s, 1)
    } else {
        none.to_string()
    }
}

/// [`fmt_stats_or`] saying that no run succeeded.
pub fn fmt_stats(s: &Option<Stats>) -> String {
    fmt_stats_or(s, "n/a (no successful run)")
}

/// Nearest-rank percentile of a sorted sample (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nearest-rank percentile of a sample of durations (`None` when empty).
pub fn pct_dur(sample: &[Duration], p: f64) -> Option<Duration> {
    let mut v: Vec<u64> = sample.iter().map(|d| d.as_nanos() as u64).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(Duration::from_nanos(percentile(&v, p)))
}

/// `min / p50 / p99 / max` in ms with two decimals.
pub fn fmt_dist(sample: &[Duration]) -> String {
    match (
        pct_dur(sample, 0.0),
        pct_dur(sample, 0.5),
        pct_dur(sample, 0.99),
        pct_dur(sample, 1.0),
    ) {
        (Some(min), Some(p50), Some(p99), Some(max)) => format!(
            "min {:>7.2} / p50 {:>7.2} / p99 {:>7.2} / max {:>7.2} ms",
            ms(min),
            ms(p50),
            ms(p99),
            ms(max)
        ),
        _ => "n/a (no sample)".to_string(),
    }
}

/// The median (NaN when empty).
pub fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
