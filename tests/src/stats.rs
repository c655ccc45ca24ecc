//! Small figures for reports: min / median / max of a sample of durations, and durations as
//! (signed) milliseconds.

use std::time::{Duration, Instant};

/// min / median / max of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

impl Stats {
    /// The figures of `sample` (the median of an even count is the mean of the middle two);
    /// `None` when it is empty.
    pub fn of(sample: impl Iterator<Item = Duration>) -> Option<Stats> {
        let mut v: Vec<Duration> = sample.collect();
        v.sort();
        let (min, max) = (*v.first()?, *v.last()?);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2
        };
        Some(Stats { min, median, max })
    }
}

/// `min / median / max ms` with `decimals` decimals, or `-` without figures.
pub fn fmt_ms(s: &Option<Stats>, decimals: usize) -> String {
    fmt_in(s, decimals, "ms", ms)
}

/// `min / median / max s` with `decimals` decimals, or `-` without figures.
pub fn fmt_s(s: &Option<Stats>, decimals: usize) -> String {
    fmt_in(s, decimals, "s", |d| d.as_secs_f64())
}

fn fmt_in(s: &Option<Stats>, p: usize, unit: &str, f: fn(Duration) -> f64) -> String {
    match s {
        Some(s) => format!(
            "{:.p$} / {:.p$} / {:.p$} {unit}",
            f(s.min),
            f(s.median),
            f(s.max)
        ),
        None => "-".to_string(),
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed milliseconds from `origin` to `t` (negative when `t` is earlier).
pub fn rel_ms(t: Instant, origin: Instant) -> f64 {
    if t >= origin {
        ms(t - origin)
    } else {
        -ms(origin - t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_their_text() {
        let d = Duration::from_millis;
        let s = Stats::of([d(30), d(10), d(20), d(40)].into_iter());
        assert_eq!(
            s,
            Some(Stats {
                min: d(10),
                median: d(25),
                max: d(40)
            })
        );
        assert_eq!(fmt_ms(&s, 1), "10.0 / 25.0 / 40.0 ms");
        assert_eq!(fmt_s(&s, 2), "0.01 / 0.03 / 0.04 s");
        assert_eq!(fmt_ms(&None, 0), "-");
        let t = Instant::now();
        assert_eq!(rel_ms(t, t + d(5)), -5.0);
    }
}
