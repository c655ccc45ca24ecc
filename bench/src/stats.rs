//! Summaries of a sample: min / median / max, nearest-rank percentiles, and how the reports
//! print them.

use std::time::Duration;

use crate::time::ms;

/// min / median / max of a sample.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

impl Stats {
    /// `None` for an empty sample; the median of an even sample is the mean of the middle two.
    pub fn of(sample: impl Iterator<Item = Duration>) -> Option<Stats> {
        let mut v: Vec<Duration> = sample.collect();
        v.sort();
        let (first, last) = (*v.first()?, *v.last()?);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2
        };
        Some(Stats {
            min: first,
            median,
            max: last,
        })
    }
}

/// `min / median / max ms` with one decimal, or `none` when there is no sample.
pub fn fmt_stats_or(s: &Option<Stats>, none: &str) -> String {
    match s {
        Some(s) => format!(
            "{:.1} / {:.1} / {:.1} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => none.to_string(),
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
