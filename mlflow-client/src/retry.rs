//! Retry policy with the same defaults and schedule as MLflow's Python client (urllib3 `Retry`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// HTTP statuses retried by MLflow's Python client.
pub const RETRYABLE_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// True for the HTTP statuses that MLflow's Python client retries.
pub fn is_retryable_status(status: u16) -> bool {
    RETRYABLE_STATUSES.contains(&status)
}

/// How failed requests are retried.
///
/// The `n`-th retry (1-based) waits `backoff_factor · 2^(n−1)` seconds plus a uniform random jitter in
/// `[0, backoff_jitter)`, capped at `backoff_max`; the first retry goes out at once, as urllib3 does.
/// A `Retry-After` header on a 429 or 503 replaces the computed wait when `respect_retry_after` is set
/// (also capped at `backoff_max`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, default 7, at most 10).
    pub max_retries: u32,
    /// Backoff factor in seconds (`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`, default 2, at most 120).
    pub backoff_factor: f64,
    /// Upper bound of the random jitter in seconds (`MLFLOW_HTTP_REQUEST_BACKOFF_JITTER`, default 1).
    pub backoff_jitter: f64,
    /// Longest single wait (120 s, urllib3's maximum).
    pub backoff_max: Duration,
    /// Honour `Retry-After` (`MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER`, default true).
    pub respect_retry_after: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 7,
            backoff_factor: 2.0,
            backoff_jitter: 1.0,
            backoff_max: Duration::from_secs(120),
            respect_retry_after: true,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1-based), given a jitter sample in `[0, 1)`.
    pub fn backoff(&self, retry: u32, jitter_sample: f64) -> Duration {
        if retry <= 1 {
            return Duration::ZERO;
        }
        let exp = 2f64.powi(i32::try_from(retry - 1).unwrap_or(i32::MAX));
        let secs = self.backoff_factor * exp + jitter_sample.clamp(0.0, 1.0) * self.backoff_jitter;
        clamp_secs(secs, self.backoff_max)
    }

    /// The wait before retry number `retry` when the reply carried `Retry-After: <retry_after>`.
    pub fn wait_for(&self, retry: u32, status: Option<u16>, retry_after: Option<&str>) -> Duration {
        if self.respect_retry_after
            && matches!(status, Some(413 | 429 | 503))
            && let Some(wait) = retry_after.and_then(parse_retry_after)
        {
            return wait.min(self.backoff_max);
        }
        self.backoff(retry, jitter_sample())
    }
}

fn clamp_secs(secs: f64, max: Duration) -> Duration {
    if !secs.is_finite() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (RFC 7231 IMF-fixdate).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let at = SystemTime::from(at);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A uniform sample in `[0, 1)` for jitter (SplitMix64 over a global counter seeded by the clock;
/// jitter only needs spread, not unpredictability).
fn jitter_sample() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_urllib3_with_mlflow_defaults() {
        let p = RetryPolicy {
            backoff_jitter: 0.0,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| p.backoff(n, 0.5).as_secs()).collect();
        assert_eq!(waits, vec![0, 4, 8, 16, 32, 64, 120]);
    }

    #[test]
    fn jitter_is_added_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(2, 0.0), Duration::from_secs(4));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(4500));
        for _ in 0..100 {
            let s = jitter_sample();
            assert!((0.0..1.0).contains(&s));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let text = future
            .format(&time::format_description::well_known::Rfc2822)
            .expect("format");
        let wait = parse_retry_after(&text).expect("parse future date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn retry_after_only_on_429_413_503_and_capped() {
        let p = RetryPolicy {
            backoff_jitter: 0.0,
            backoff_max: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        assert_eq!(p.wait_for(1, Some(429), Some("5")), Duration::from_secs(5));
        assert_eq!(
            p.wait_for(1, Some(503), Some("500")),
            Duration::from_secs(10)
        );
        assert_eq!(p.wait_for(1, Some(502), Some("5")), Duration::ZERO);
        let ignoring = RetryPolicy {
            respect_retry_after: false,
            ..p
        };
        assert_eq!(ignoring.wait_for(1, Some(429), Some("5")), Duration::ZERO);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!is_retryable_status(s));
        }
    }
}
