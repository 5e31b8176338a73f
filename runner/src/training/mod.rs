//! Running trainings: admission (concurrency and queue limits), sync and async execution off the async
//! threads, heartbeats, the shared queue dispatcher and the reaper of abandoned claims.

mod execute;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::datasets::DatasetResolver;
use crate::metrics::Metrics;
use crate::nas::TrainSpec;
use crate::store::Store;
use crate::tracking::Tracker;

pub use execute::{TrainFailure, TrainReply};

/// A validated `/train` request.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The trial to train.
    pub trial_id: crate::domain::TrialId,
    /// The run, when the caller named one.
    pub run_id: Option<crate::domain::RunId>,
    /// Parameters as sent.
    pub params: Map<String, Value>,
    /// The parsed training spec.
    pub spec: TrainSpec,
    /// Unknown-parameter warnings.
    pub warnings: Vec<String>,
    /// `dataset` as sent.
    pub dataset: Option<Value>,
    /// `dataset_id` as sent.
    pub dataset_id: Option<String>,
    /// Answer 202 at once and train in the background.
    pub asynchronous: bool,
    /// The request body, replayed when the trial is claimed.
    pub raw: Value,
}

/// Runs trainings for this replica.
#[derive(Clone)]
pub struct Trainer {
    pub(crate) store: Store,
    pub(crate) resolver: DatasetResolver,
    pub(crate) tracker: Tracker,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) waiting: Arc<AtomicUsize>,
    pub(crate) running: Arc<AtomicUsize>,
    pub(crate) queue_limit: usize,
    pub(crate) replica: Arc<str>,
    pub(crate) lease: Duration,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) stop: CancellationToken,
    pub(crate) metrics: Arc<Metrics>,
}

/// Counters for metrics and readiness.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TrainerLoad {
    /// Sync trainings waiting for a slot on this replica.
    pub waiting: usize,
    /// Trainings running on this replica.
    pub running: usize,
}

impl Trainer {
    /// Creates the trainer; call [`Trainer::spawn_background`] to serve the async queue.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        resolver: DatasetResolver,
        tracker: Tracker,
        concurrency: usize,
        queue_limit: usize,
        lease: Duration,
        time_limit: Option<Duration>,
        stop: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            resolver,
            tracker,
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            running: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            lease,
            time_limit,
            replica: Arc::from(
                format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()).as_str(),
            ),
            wake: Arc::new(Notify::new()),
            stop,
            metrics,
        }
    }

    /// This replica's claim name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Current load.
    pub fn load(&self) -> TrainerLoad {
        TrainerLoad {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    /// Starts the queue dispatcher and the reaper; both stop with the trainer's cancellation token.
    pub fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let dispatcher = {
            let me = self.clone();
            tokio::spawn(async move { me.dispatch_loop().await })
        };
        let reaper = {
            let me = self.clone();
            tokio::spawn(async move { me.reap_loop().await })
        };
        vec![dispatcher, reaper]
    }

    async fn dispatch_loop(&self) {
        loop {
            let permit = tokio::select! {
                () = self.stop.cancelled() => return,
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            match self.store.claim_training(&self.replica).await {
                Ok(Some(trial)) => {
                    let me = self.clone();
                    let span = tracing::info_span!("training.claimed", trial_id = %trial.trial_id);
                    tokio::spawn(
                        async move {
                            me.run_claimed(trial).await;
                            drop(permit);
                            me.wake.notify_one();
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = self.wake.notified() => {},
                        () = tokio::time::sleep(Duration::from_millis(500)) => {},
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "claiming a queued training failed");
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {},
                    }
                }
            }
        }
    }

    async fn reap_loop(&self) {
        loop {
            let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
            match self.store.reap_abandoned(lease_ms).await {
                Ok((requeued, failed)) if requeued + failed > 0 => {
                    tracing::warn!(requeued, failed, "took back abandoned trainings");
                    self.wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaping abandoned trainings failed"),
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep((self.lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))) => {},
            }
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "runner".to_string())
}
