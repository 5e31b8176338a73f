//! Tracking (DESIGN §2.6): the outbox delivery worker that mirrors runs and trials to MLflow and writes trial
//! artifacts, retried with backoff until delivered, across restarts and outages.
//!
//! Handlers enqueue the tasks built by [`run_task`], [`trial_start_task`], [`trial_task`], [`artifacts_task`] and
//! [`run_final_task`] in the same transaction as the state they describe; [`Tracker::spawn_worker`] delivers
//! them (several at once), and [`Tracker::push`] starts delivering a trial's tasks at once, in the background,
//! so `/train` never waits for MLflow or S3.
//!
//! - `mlflow.run`: the MLflow parent run of a run (run name = run id, tags `run_id`, `thunderhelm.kind=run`,
//!   params from the run's parameters, budget and objective).
//! - `mlflow.trial_start`: the child run of a sync trial, created (status RUNNING) while it trains, committed
//!   with the trial itself; the trial's other tasks wait for it.
//! - `mlflow.trial`: the child run of a finished trial (run name = trial id, `mlflow.parentRunId`, params, final
//!   metrics, per-epoch history, status FINISHED / FAILED / KILLED), created here when no `mlflow.trial_start` did.
//! - `artifacts.trial`: the trial's files in the child run's artifact location (MLflow's proxy or S3), or under
//!   `cerebros/<run_id>/<trial_id>/` in the artifact store when tracking is off.
//! - `mlflow.run_final`: a finalized run's metrics, `best_<metric>`, `best_trial_id` and status.
//!
//! MLflow runs are found again by their identity tags before one is created, so a crash between creating a run
//! and recording its id never leaves a duplicate. Replicas sharing a database claim a task with a conditional
//! update before delivering it, so one replica at a time works on it.

mod backoff;
mod deliver;
mod mapping;
mod mirror;
mod sql;
mod start;
mod tasks;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::artifacts::ArtifactStore;
use crate::config::Settings;
use crate::rng::Rng;
use crate::store::{Store, now_ms};
use mirror::{Mirror, PROBE_TIMEOUT};

pub use backoff::{LEASE_MS, MAX_RETRY_MS, POSTPONE_MS, retry_delay_ms};
pub use mapping::KIND_TAG;
pub use mirror::{KIND_CHILD, KIND_PARENT, client_config};
pub use sql::TaskState;
pub use tasks::{
    ArtifactsPayload, EncodedFile, EpochPoint, KIND_ARTIFACTS, KIND_RUN, KIND_RUN_FINAL,
    KIND_TRIAL, KIND_TRIAL_START, KINDS, NewTask, RunPayload, Task, TrialPayload,
    TrialStartPayload, artifacts_task, dedupe_key, run_final_task, run_task, trial_start_task,
    trial_task,
};

/// Delivers the outbox: MLflow mirroring and artifact uploads. Cheap to clone (clones share everything).
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    mirror: Option<Mirror>,
    artifacts: ArtifactStore,
    wake: Notify,
    in_flight: Mutex<HashSet<i64>>,
    /// Artifact roots of child runs created here, by MLflow run id (see `start.rs`).
    roots: Mutex<HashMap<String, String>>,
    /// Background pushes, awaited when the worker stops.
    pushes: Mutex<JoinSet<()>>,
    /// The worker's stop token, which pushes obey too.
    stop: OnceLock<CancellationToken>,
    counters: [KindCounters; KINDS.len()],
    jitter: Mutex<Rng>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("mlflow", &self.inner.mirror)
            .field("artifacts", &self.inner.artifacts.describe())
            .finish()
    }
}

/// Where a trial's delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeliveryReport {
    /// The trial's MLflow child run, once created.
    pub mlflow_run_id: Option<String>,
    /// Where the trial's artifacts were written, once written.
    pub artifact_uri: Option<String>,
    /// Kinds of this trial's (and its run's) tasks still waiting for delivery.
    pub pending: Vec<String>,
}

/// Delivery counters of one task kind since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// Delivered.
    pub delivered: u64,
    /// Failed attempts (retried later with backoff).
    pub failed: u64,
    /// Attempts put off because a prerequisite was not delivered yet.
    pub postponed: u64,
    /// Tasks closed as undeliverable (their run or trial is gone, or the payload is malformed).
    pub dropped: u64,
}

/// Counters of the tracker since start, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrackerStats {
    /// Per task kind.
    pub kinds: BTreeMap<&'static str, KindStats>,
    /// HTTP requests sent to MLflow, retries included.
    pub mlflow_requests: u64,
    /// Of those, retries inside a call.
    pub mlflow_retries: u64,
    /// MLflow calls that failed after their retries.
    pub mlflow_failures: u64,
}

#[derive(Default)]
struct KindCounters {
    delivered: AtomicU64,
    failed: AtomicU64,
    postponed: AtomicU64,
    dropped: AtomicU64,
}

impl KindCounters {
    fn snapshot(&self) -> KindStats {
        KindStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            postponed: self.postponed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Tracker {
    /// A tracker for `settings`: MLflow when `settings.mlflow` is set (auth, TLS and HTTP tuning from the
    /// `MLFLOW_*` environment, as MLflow's client reads it), `artifacts` for files. Contacts nothing, so it
    /// starts while MLflow is down; fails only on unusable configuration.
    pub async fn new(
        store: Store,
        settings: &Settings,
        artifacts: ArtifactStore,
    ) -> anyhow::Result<Tracker> {
        let mirror = match &settings.mlflow {
            Some(m) => Some(Mirror::new(
                client_config(m, |name| std::env::var(name).ok())?,
                &m.experiment_name,
            )?),
            None => None,
        };
        Ok(Self::assemble(store, mirror, artifacts))
    }

    fn assemble(store: Store, mirror: Option<Mirror>, artifacts: ArtifactStore) -> Self {
        let seed = (now_ms() as u64) ^ (u64::from(std::process::id()) << 32);
        Self {
            inner: Arc::new(Inner {
                store,
                mirror,
                artifacts,
                wake: Notify::new(),
                in_flight: Mutex::new(HashSet::new()),
                roots: Mutex::new(HashMap::new()),
                pushes: Mutex::new(JoinSet::new()),
                stop: OnceLock::new(),
                counters: Default::default(),
                jitter: Mutex::new(Rng::seed_from_u64(seed)),
            }),
        }
    }

    /// Whether MLflow tracking is configured (handlers enqueue `mlflow.*` tasks only then).
    pub fn mlflow_enabled(&self) -> bool {
        self.inner.mirror.is_some()
    }

    /// Wakes the worker now instead of at its next poll.
    pub fn nudge(&self) {
        self.inner.wake.notify_one();
    }

    /// Counters of deliveries by kind and of the MLflow client.
    pub fn stats(&self) -> TrackerStats {
        let kinds = KINDS
            .iter()
            .zip(&self.inner.counters)
            .map(|(kind, c)| (*kind, c.snapshot()))
            .collect();
        let client = self
            .inner
            .mirror
            .as_ref()
            .map(|m| m.client().stats())
            .unwrap_or_default();
        TrackerStats {
            kinds,
            mlflow_requests: client.requests,
            mlflow_retries: client.retries,
            mlflow_failures: client.failures,
        }
    }

    /// Reachability of MLflow and the artifact store, each probed with a 2 s bound:
    /// `{"mlflow": {"status": "ok"|"down"|"disabled", …}, "artifacts": {"status": "ok"|"down", …}}`.
    pub async fn readiness(&self) -> Value {
        let mlflow = async {
            let Some(mirror) = &self.inner.mirror else {
                return json!({"status": "disabled"});
            };
            let uri = redacted(mirror.client().tracking_uri());
            match tokio::time::timeout(PROBE_TIMEOUT, mirror.probe()).await {
                Ok(Ok(())) => json!({
                    "status": "ok",
                    "tracking_uri": uri,
                    "experiment": mirror.experiment_name(),
                    "experiment_id": mirror.cached_experiment_id().await,
                }),
                Ok(Err(e)) => {
                    json!({"status": "down", "tracking_uri": uri, "error": e.to_string()})
                }
                Err(_) => {
                    json!({"status": "down", "tracking_uri": uri, "error": "no answer within 2 s"})
                }
            }
        };
        let artifacts = async {
            let store = self.inner.artifacts.describe();
            match tokio::time::timeout(PROBE_TIMEOUT, self.inner.artifacts.check()).await {
                Ok(Ok(())) => json!({"status": "ok", "store": store}),
                Ok(Err(e)) => json!({"status": "down", "store": store, "error": e.to_string()}),
                Err(_) => {
                    json!({"status": "down", "store": store, "error": "no answer within 2 s"})
                }
            }
        };
        let (mlflow, artifacts) = tokio::join!(mlflow, artifacts);
        json!({"mlflow": mlflow, "artifacts": artifacts})
    }

    /// Whether a trial's deliveries stay on this machine: no MLflow, and artifacts in the local directory.
    /// Then `/train` delivers before replying, which costs a few file writes.
    pub fn delivers_locally(&self) -> bool {
        self.inner.mirror.is_none() && matches!(self.inner.artifacts, ArtifactStore::Local { .. })
    }

    /// Starts delivering the pending tasks of `trial_id` and of its run now, in the background (the worker would
    /// otherwise take them at its next poll). Returns at once; what fails stays in the outbox for the worker.
    /// It stops with the worker's stop token, handing its claims back.
    pub fn push(&self, trial_id: &str) {
        let tracker = self.clone();
        let id = trial_id.to_string();
        let stop = self.inner.stop.get().cloned().unwrap_or_default();
        let job = async move {
            let until = tokio::time::Instant::now() + PUSH_LIMIT;
            tracker.push_trial(&id, until, &stop).await;
        };
        if let Ok(mut pushes) = self.inner.pushes.lock() {
            while pushes.try_join_next().is_some() {}
            pushes.spawn(job.in_current_span());
        }
    }

    /// Waits for the background pushes to end.
    async fn wait_pushes(&self) {
        let pushes = match self.inner.pushes.lock() {
            Ok(mut set) => std::mem::take(&mut *set),
            Err(_) => return,
        };
        pushes.join_all().await;
    }

    /// What is known of `trial_id`'s delivery now: its MLflow child run and artifact location once recorded,
    /// and the kinds of its (and its run's) tasks still pending. Waits for nothing.
    pub async fn delivery_status(&self, trial_id: &str) -> DeliveryReport {
        self.report(trial_id).await
    }

    /// Tries the pending tasks of `trial_id` and of its run now (the run's parent first, then the trial, then its
    /// artifacts), waiting at most `deadline`; what is left keeps going through the worker. Never fails: what
    /// could not be delivered in time is listed in `pending`.
    pub async fn deliver_for_trial(&self, trial_id: &str, deadline: Duration) -> DeliveryReport {
        let until = tokio::time::Instant::now() + deadline;
        let tracker = self.clone();
        let id = trial_id.to_string();
        let job = tokio::spawn(
            async move {
                tracker
                    .push_trial(&id, until, &CancellationToken::new())
                    .await
            }
            .in_current_span(),
        );
        let _ = tokio::time::timeout_at(until, job).await;
        self.report(trial_id).await
    }

    async fn report(&self, trial_id: &str) -> DeliveryReport {
        let store = &self.inner.store;
        let Ok(Some(trial)) = store.get_trial(trial_id).await else {
            return DeliveryReport::default();
        };
        let mut pending = Vec::new();
        for (kind, id) in trial_keys(&trial.run_id, trial_id) {
            if let Ok(Some((_, false))) = store.outbox_task_by_key(&dedupe_key(kind, id)).await {
                pending.push(kind.to_string());
            }
        }
        DeliveryReport {
            mlflow_run_id: trial.mlflow_run_id,
            artifact_uri: trial.artifact_uri,
            pending,
        }
    }

    fn counters(&self, kind: &str) -> Option<&KindCounters> {
        KINDS
            .iter()
            .position(|k| *k == kind)
            .map(|i| &self.inner.counters[i])
    }

    fn jitter_sample(&self) -> f64 {
        match self.inner.jitter.lock() {
            Ok(mut rng) => rng.next_f64(),
            Err(_) => 0.5,
        }
    }
}

/// How long a background push keeps at a trial's tasks before leaving them to the worker.
const PUSH_LIMIT: Duration = Duration::from_secs(60);

/// A trial's tasks (and its run's parent), in delivery order.
fn trial_keys<'a>(run_id: &'a str, trial_id: &'a str) -> [(&'static str, &'a str); 4] {
    [
        (KIND_RUN, run_id),
        (KIND_TRIAL_START, trial_id),
        (KIND_TRIAL, trial_id),
        (KIND_ARTIFACTS, trial_id),
    ]
}

fn redacted(uri: &url::Url) -> String {
    let mut uri = uri.clone();
    if uri.password().is_some() {
        let _ = uri.set_password(Some("***"));
    }
    uri.to_string()
}
