//! Expiry of pending proposals (DESIGN §2.4): a proposal nobody reported within `RUNNER_PENDING_TTL_SECS` stops
//! counting as pending. Reads already ignore expired proposals; this task also closes their sets in the database,
//! so that settling a trial and finding a proposal's run only read the sets of the last TTL, however long the
//! service has run.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, now_ms};

/// How often expired sets are closed: a tenth of the TTL, between one second and one minute.
fn period(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Starts the task: it closes expired sets at once and then every [`period`], until `stop`.
pub fn spawn(store: Store, ttl: Duration, stop: CancellationToken) -> JoinHandle<()> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period(ttl));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match store.close_expired(now_ms().saturating_sub(ttl_ms)).await {
                Ok(0) => {}
                Ok(closed) => tracing::debug!(closed, "closed expired proposal sets"),
                Err(e) => tracing::warn!(error = %e, "closing expired proposal sets failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_a_tenth_of_the_ttl_within_a_second_and_a_minute() {
        assert_eq!(period(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(period(Duration::from_secs(100)), Duration::from_secs(10));
        assert_eq!(period(Duration::ZERO), Duration::from_secs(1));
    }
}
