//! Retry timing of outbox tasks: exponential backoff with jitter, the postpone delay, and the claim lease.
//!
//! The numbers are tied together: a failed task waits at most [`MAX_RETRY_MS`], so a task whose next attempt
//! lies further ahead than that is leased by a replica delivering it right now ([`LEASE_MS`] is longer), and
//! the fast path must not take it over.

/// First retry delay.
pub const BASE_DELAY_MS: i64 = 1_000;
/// Longest backoff before jitter.
pub const MAX_DELAY_MS: i64 = 60_000;
/// Longest retry delay once jitter (±25 %) is applied.
pub const MAX_RETRY_MS: i64 = MAX_DELAY_MS + MAX_DELAY_MS / 4;
/// How long a claimed task is reserved for the replica delivering it; a crashed replica's task is retried after.
pub const LEASE_MS: i64 = 180_000;
/// Delay of a task waiting for a prerequisite (not counted as an attempt).
pub const POSTPONE_MS: i64 = 1_000;

// A lease must outlast any retry delay, or the fast path could not tell a leased task from a waiting one.
const _: () = assert!(LEASE_MS > MAX_RETRY_MS && POSTPONE_MS < MAX_RETRY_MS);

/// The delay before attempt `attempts + 1`, for a task that has failed `attempts` times (≥ 1), given a uniform
/// sample in `[0, 1)`: `1 s · 2^(attempts−1)`, capped at 60 s, then scaled by a factor in `[0.75, 1.25)`.
pub fn retry_delay_ms(attempts: i64, jitter_sample: f64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 32) - 1).unwrap_or(0);
    let base = BASE_DELAY_MS
        .saturating_mul(1_i64 << exponent.min(20))
        .min(MAX_DELAY_MS);
    let factor = 0.75 + 0.5 * jitter_sample.clamp(0.0, 1.0);
    ((base as f64) * factor)
        .round()
        .clamp(0.0, MAX_RETRY_MS as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_cap_with_bounded_jitter() {
        assert_eq!(retry_delay_ms(1, 0.5), 1_000);
        assert_eq!(retry_delay_ms(2, 0.5), 2_000);
        assert_eq!(retry_delay_ms(3, 0.5), 4_000);
        assert_eq!(retry_delay_ms(7, 0.5), 60_000);
        assert_eq!(retry_delay_ms(1_000, 0.5), 60_000);
        assert_eq!(retry_delay_ms(1, 0.0), 750);
        assert_eq!(retry_delay_ms(50, 1.0), MAX_RETRY_MS);
        assert_eq!(
            retry_delay_ms(0, 0.5),
            1_000,
            "a zero count behaves as the first failure"
        );
    }
}
