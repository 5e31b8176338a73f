//! The delivery loop: poll due tasks, claim each one, deliver it, and record the outcome (delivered, retry with
//! backoff, postponed, or dropped). Also the `/train` fast path that pushes one trial's tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
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
    /// them, and returns promptly once `stop` is cancelled, handing back the claim of a task it was delivering.
    pub fn spawn_worker(&self, stop: CancellationToken) -> JoinHandle<()> {
        let tracker = self.clone();
        tokio::spawn(async move { tracker.work(stop).await })
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
            let mut progressed = false;
            for task in tasks {
                let claimed = AtomicBool::new(false);
                tokio::select! {
                    outcome = self.process(&task, false, Some(&claimed)) => {
                        progressed |= outcome != Processed::NotClaimed;
                    }
                    () = stop.cancelled() => {
                        if claimed.load(Ordering::SeqCst) {
                            // Hand the task back so the next start (or another replica) takes it at once.
                            let _ = store.postpone(task.id, 0).await;
                        }
                        return;
                    }
                }
            }
            if full && progressed {
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
    /// never one leased by a delivery in progress). `claimed` is set once the claim is won.
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
            self.settle(task, result).await
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

    /// The fast path's job: delivers the run's, the trial's and the artifacts' tasks in that order until none is
    /// pending, one fails, or `until` passes.
    pub(super) async fn push_trial(&self, trial_id: &str, until: Instant) {
        let store = &self.inner.store;
        let Ok(Some(trial)) = store.get_trial(trial_id).await else {
            return;
        };
        loop {
            let mut pending = false;
            let mut waiting = false;
            for (kind, id) in trial_keys(&trial.run_id, trial_id) {
                let Ok(Some((task, false))) = store.outbox_task_by_key(&dedupe_key(kind, id)).await
                else {
                    continue;
                };
                pending = true;
                match self.process(&task, true, None).await {
                    Processed::Failed => return,
                    Processed::NotClaimed | Processed::Postponed => waiting = true,
                    Processed::Delivered | Processed::Dropped => {}
                }
            }
            if !pending || Instant::now() >= until {
                return;
            }
            if waiting {
                tokio::time::sleep_until((Instant::now() + FAST_PATH_PAUSE).min(until)).await;
            }
        }
    }
}
