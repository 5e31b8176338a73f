//! Retry schedule: exponential backoff, bounded by the call's deadline rather than a fixed count.

use std::time::Duration;

/// How long to wait between attempts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
    /// Upper bound on attempts; `None` lets the deadline alone decide.
    pub max_attempts: Option<u32>,
    /// Longest `Retry-After` the client honours; longer ones are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_attempts: None,
            max_retry_after: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: Some(1),
            ..Self::default()
        }
    }

    /// Wait before attempt `failed + 1`, after `failed` failures (`failed ≥ 1`): doubling, capped.
    pub fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }

    /// Wait before the next attempt, preferring the server's `Retry-After` (capped) when it sent one.
    pub fn wait(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .map(|d| d.min(self.max_retry_after))
            .unwrap_or_else(|| self.backoff(failed))
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn allows_another(&self, attempts: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let policy = RetryPolicy::default();
        let waits: Vec<u128> = (1..=7).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert_eq!(policy.wait(2, None), Duration::from_millis(100));
    }

    #[test]
    fn attempt_limits() {
        assert!(!RetryPolicy::none().allows_another(1));
        assert!(RetryPolicy::default().allows_another(1_000));
    }
}
