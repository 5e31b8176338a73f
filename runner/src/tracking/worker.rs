//! The delivery loop: poll due tasks, claim each one, deliver it, and record the outcome (delivered, retry with
//! backoff, postponed, or dropped), several tasks at once. Also the push that starts one trial's tasks at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::{LEASE_MS, MAX_RETRY_MS, POSTPONE_MS, retry_delay_ms};
use super::deliver::{Failure, Step};
use super::{Tracker, dedupe_key, trial_keys};
use crate::store::now_ms;
use crate::store::outbox::OutboxTask;

/// How often the worker looks for due tasks when nobody nudges it.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Tasks fetched per poll.
const BATCH: i64 = 32;
/// Deliveries the worker runs at once (each waits on MLflow or S3, not on this process).
const CONCURRENCY: usize = 8;
/// Pause of the fast path while another delivery holds one of its tasks.
const FAST_PATH_PAUSE: Duration = Duration::from_millis(100);

/// What became of one attempt to process a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Processed {
    /// Another delivery holds the task (here or on another replica), or it is not due.
    NotClaimed,
    /// Delivered.
    Delivered,
    /// A prerequisite is missing; tried again shortly without counting an attempt.
    Postponed,
    /// Failed; retried after a backoff.
    Failed,
    /// Closed as undeliverable.
    Dropped,
}

/// Removes a task id from the in-process set when the delivery ends, however it ends.
struct InFlight<'a> {
    tracker: &'a Tracker,
    id: i64,
}

impl<'a> InFlight<'a> {
    fn enter(tracker: &'a Tracker, id: i64) -> Option<Self> {
        // Built only after the insert succeeded: dropping an unused guard would remove the other holder's id.
        let inserted = tracker.inner.in_flight.lock().ok()?.insert(id);
        inserted.then(|| Self { tracker, id })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.tracker.inner.in_flight.lock() {
            set.remove(&self.id);
        }
    }
}

impl Tracker {
    /// Starts the delivery loop: polls due tasks every 250 ms (or at once after [`Tracker::nudge`]), delivers
    /// them, and returns promptly once `stop` is cancelled, handing back the claims of tasks it was delivering.
    /// Background pushes ([`Tracker::push`]) stop with it, and it returns once they have handed back their claims.
    pub fn spawn_worker(&self, stop: CancellationToken) -> JoinHandle<()> {
        let _ = self.inner.stop.set(stop.clone());
        let tracker = self.clone();
        tokio::spawn(async move {
            tracker.work(stop).await;
            tracker.wait_pushes().await;
        })
    }

    async fn work(&self, stop: CancellationToken) {
        let store = &self.inner.store;
        while !stop.is_cancelled() {
            let tasks = match store.due_tasks(BATCH).await {
                Ok(tasks) => tasks,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the outbox failed");
                    Vec::new()
                }
            };
            let full = tasks.len() as i64 == BATCH;
            let progressed = AtomicBool::new(false);
            let claims: Vec<AtomicBool> = tasks.iter().map(|_| AtomicBool::new(false)).collect();
            let all = futures::stream::iter(tasks.iter().zip(&claims)).for_each_concurrent(
                CONCURRENCY,
                |(task, claimed)| {
                    let progressed = &progressed;
                    async move {
                        if self.process(task, false, Some(claimed)).await != Processed::NotClaimed {
                            progressed.store(true, Ordering::SeqCst);
                        }
                    }
                },
            );
            tokio::select! {
                () = all => {}
                () = stop.cancelled() => {
                    for (task, claimed) in tasks.iter().zip(&claims) {
                        if claimed.load(Ordering::SeqCst) {
                            // Hand the task back so the next start (or another replica) takes it at once.
                            let _ = store.postpone(task.id, 0).await;
                        }
                    }
                    return;
                }
            }
            if full && progressed.load(Ordering::SeqCst) {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    /// Claims `task` and delivers it. `force` also takes a task that waits for a retry or a prerequisite (but
    /// never one leased by a delivery in progress). `claimed` is set while this call holds the claim.
    pub(super) fn process<'a>(
        &'a self,
        task: &'a OutboxTask,
        force: bool,
        claimed: Option<&'a AtomicBool>,
    ) -> BoxFuture<'a, Processed> {
        async move {
            let Some(_guard) = InFlight::enter(self, task.id) else {
                return Processed::NotClaimed;
            };
            let now = now_ms();
            let due_by = if force { now + MAX_RETRY_MS } else { now };
            match self
                .inner
                .store
                .claim_outbox_task(task.id, due_by, now + LEASE_MS)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Processed::NotClaimed,
                Err(e) => {
                    tracing::warn!(task = task.id, error = %e, "claiming an outbox task failed");
                    return Processed::NotClaimed;
                }
            }
            if let Some(flag) = claimed {
                flag.store(true, Ordering::SeqCst);
            }
            let result = self.deliver(task).await;
            let processed = self.settle(task, result).await;
            if let Some(flag) = claimed {
                flag.store(false, Ordering::SeqCst);
            }
            processed
        }
        .boxed()
    }

    /// Records the outcome of a delivery in the outbox and the counters.
    async fn settle(&self, task: &OutboxTask, result: Result<Step, Failure>) -> Processed {
        let store = &self.inner.store;
        let counters = self.counters(&task.kind);
        let (processed, written) = match result {
            Ok(Step::Done) => {
                tracing::debug!(task = task.id, kind = %task.kind, "outbox task delivered");
                (Processed::Delivered, store.mark_delivered(task.id).await)
            }
            Ok(Step::Postponed(why)) => {
                tracing::debug!(task = task.id, kind = %task.kind, reason = %why, "outbox task postponed");
                (
                    Processed::Postponed,
                    store.postpone(task.id, POSTPONE_MS).await,
                )
            }
            Err(Failure::Retry(error)) => {
                let delay = retry_delay_ms(task.attempts + 1, self.jitter_sample());
                tracing::warn!(
                    task = task.id, kind = %task.kind, attempts = task.attempts + 1, retry_in_ms = delay, %error,
                    "outbox delivery failed; will retry"
                );
                (
                    Processed::Failed,
                    store.mark_failed(task.id, &error, delay).await,
                )
            }
            Err(Failure::Drop(reason)) => {
                tracing::error!(task = task.id, kind = %task.kind, %reason, "outbox task cannot be delivered; dropped");
                (
                    Processed::Dropped,
                    store.drop_outbox_task(task.id, &reason).await,
                )
            }
        };
        if let Err(e) = written {
            tracing::warn!(task = task.id, error = %e, "recording an outbox outcome failed; the lease will expire");
        }
        if let Some(c) = counters {
            let counter = match processed {
                Processed::Delivered => &c.delivered,
                Processed::Postponed => &c.postponed,
                Processed::Failed => &c.failed,
                Processed::Dropped => &c.dropped,
                Processed::NotClaimed => return processed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        processed
    }

    /// Delivers the run's parent, then the trial's child run, then the trial's metrics and its artifacts (those
    /// two at once) until none is pending, one fails, or `until` passes.
    /// On `stop`, hands the claims it holds back (as the worker does) and returns.
    pub(super) async fn push_trial(
        &self,
        trial_id: &str,
        until: Instant,
        stop: &CancellationToken,
    ) {
        let store = &self.inner.store;
        let Ok(Some(trial)) = store.get_trial(trial_id).await else {
            return;
        };
        let [run, start, metrics, artifacts] = trial_keys(&trial.run_id, trial_id);
        let stages: [&[(&str, &str)]; 3] = [&[run], &[start], &[metrics, artifacts]];
        loop {
            let mut pending = false;
            let mut waiting = false;
            for stage in stages {
                let mut tasks = Vec::new();
                for (kind, id) in stage {
                    if let Ok(Some((task, false))) =
                        store.outbox_task_by_key(&dedupe_key(kind, id)).await
                    {
                        tasks.push(task);
                    }
                }
                if tasks.is_empty() {
                    continue;
                }
                pending = true;
                let claims: Vec<AtomicBool> =
                    tasks.iter().map(|_| AtomicBool::new(false)).collect();
                let all = futures::future::join_all(
                    tasks
                        .iter()
                        .zip(&claims)
                        .map(|(t, claimed)| self.process(t, true, Some(claimed))),
                );
                let outcomes = tokio::select! {
                    outcomes = all => outcomes,
                    () = stop.cancelled() => {
                        for (task, claimed) in tasks.iter().zip(&claims) {
                            if claimed.load(Ordering::SeqCst) {
                                let _ = store.postpone(task.id, 0).await;
                            }
                        }
                        return;
                    }
                };
                if outcomes.contains(&Processed::Failed) {
                    return;
                }
                if outcomes
                    .iter()
                    .any(|o| matches!(o, Processed::NotClaimed | Processed::Postponed))
                {
                    // Later stages need this one; come back after a pause.
                    waiting = true;
                    break;
                }
            }
            if !pending || Instant::now() >= until {
                return;
            }
            if waiting {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until((Instant::now() + FAST_PATH_PAUSE).min(until)) => {}
                }
            }
        }
    }
}
