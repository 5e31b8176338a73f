//! The MLflow side of tracking: the experiment, parent runs for runs and child runs for trials, found again by
//! their identity tags so that a crash between creating a run and recording its id never creates a second one.

use std::time::Duration;

use mlflow_client::{
    Config, CreateRun, Error as MlflowError, Metric, MlflowClient, Param, RetryPolicy, Run,
    RunStatus as MlflowStatus, SearchRuns, Tag, ViewType, now_millis,
};
use serde_json::Value;
use tokio::sync::Mutex;

use super::mapping::{self, KIND_TAG};
use super::tasks::EpochPoint;
use crate::config::MlflowSettings;
use crate::store::{RunRecord, TrialRecord};

/// Per-request timeout of delivery calls unless `MLFLOW_HTTP_REQUEST_TIMEOUT` says otherwise.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of readiness probes.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// `thunderhelm.kind` of a run's parent run.
pub const KIND_PARENT: &str = "run";
/// `thunderhelm.kind` of a trial's child run.
pub const KIND_CHILD: &str = "trial";
/// Runs fetched per identity search (a second one only appears after a race, and is deleted).
const SEARCH_PAGE: u32 = 50;

/// The tracking server, the experiment (resolved once, then cached) and the calls deliveries make.
pub struct Mirror {
    client: MlflowClient,
    probe: MlflowClient,
    experiment_name: String,
    experiment_id: Mutex<Option<String>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("tracking_uri", &self.client.tracking_uri().as_str())
            .field("experiment_name", &self.experiment_name)
            .finish()
    }
}

/// The client configuration: the settings' URI, auth and TLS from the environment (as MLflow's client reads
/// them), and — unless the environment sets them — short in-call retries and timeouts, since the outbox
/// retries failed deliveries itself.
pub fn client_config(
    settings: &MlflowSettings,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, MlflowError> {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    let mut config = Config::from_lookup(|name| {
        if name == "MLFLOW_TRACKING_URI" {
            Some(settings.tracking_uri.clone())
        } else {
            lookup(name)
        }
    })?
    .ok_or_else(|| MlflowError::Config {
        name: "MLFLOW_TRACKING_URI".into(),
        message: "empty tracking URI".into(),
    })?;
    if !set("MLFLOW_HTTP_REQUEST_TIMEOUT") {
        config.timeout = DELIVERY_TIMEOUT;
    }
    if !set("MLFLOW_HTTP_REQUEST_MAX_RETRIES") {
        config.retry.max_retries = 2;
    }
    if !set("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") {
        config.retry.backoff_factor = 0.5;
    }
    Ok(config)
}

impl Mirror {
    /// A mirror for `config` writing to the experiment `experiment_name`. Sends nothing.
    pub fn new(config: Config, experiment_name: &str) -> Result<Self, MlflowError> {
        let probe_config = config
            .clone()
            .with_timeout(PROBE_TIMEOUT)
            .with_retry(RetryPolicy::none());
        Ok(Self {
            client: MlflowClient::builder(config)
                .header_injector(crate::telemetry::inject_trace_context)
                .build()?,
            probe: MlflowClient::new(probe_config)?,
            experiment_name: experiment_name.to_string(),
            experiment_id: Mutex::new(None),
        })
    }

    /// The delivery client.
    pub fn client(&self) -> &MlflowClient {
        &self.client
    }

    /// The experiment name.
    pub fn experiment_name(&self) -> &str {
        &self.experiment_name
    }

    /// The experiment id if already resolved.
    pub async fn cached_experiment_id(&self) -> Option<String> {
        self.experiment_id.lock().await.clone()
    }

    /// Quick reachability check (no retries, short timeout).
    pub async fn probe(&self) -> Result<(), MlflowError> {
        self.probe.health().await
    }

    /// The experiment id, created on first use and cached.
    pub async fn experiment_id(&self) -> Result<String, MlflowError> {
        let mut cached = self.experiment_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let id = self
            .client
            .get_or_create_experiment(&self.experiment_name)
            .await?;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// Forgets the cached experiment (after MLflow refused a call in it, it may have been deleted).
    pub async fn forget_experiment(&self) {
        *self.experiment_id.lock().await = None;
    }

    /// The active run carrying all `identity` tags; of several (left by a race), the earliest created.
    async fn find(
        &self,
        experiment_id: &str,
        identity: &[(&str, &str)],
    ) -> Result<Option<Run>, MlflowError> {
        let mut runs = match mapping::tags_filter(identity) {
            Some(filter) => {
                let args = SearchRuns {
                    experiment_ids: vec![experiment_id.to_string()],
                    filter: Some(filter),
                    view_type: ViewType::ActiveOnly,
                    max_results: Some(SEARCH_PAGE),
                    ..SearchRuns::default()
                };
                self.client.search_runs(&args).await?.items
            }
            None => {
                // A value no filter literal can hold: scan the runs of that kind and compare here.
                let kind = identity
                    .iter()
                    .find(|(k, _)| *k == KIND_TAG)
                    .map_or("", |(_, v)| *v);
                let args = SearchRuns {
                    experiment_ids: vec![experiment_id.to_string()],
                    filter: mapping::tags_filter(&[(KIND_TAG, kind)]),
                    view_type: ViewType::ActiveOnly,
                    ..SearchRuns::default()
                };
                self.client.search_all_runs(&args).await?
            }
        };
        runs.retain(|r| identity.iter().all(|(k, v)| r.data.tag(k) == Some(*v)));
        runs.sort_by(|a, b| {
            (a.info.start_time, &a.info.run_id).cmp(&(b.info.start_time, &b.info.run_id))
        });
        Ok(runs.into_iter().next())
    }

    /// The run with `identity`, created from `create` when none exists. After creating, searches again: when a
    /// concurrent delivery created one too, every party keeps the earliest and the later ones are deleted.
    async fn find_or_create(
        &self,
        experiment_id: &str,
        identity: &[(&str, &str)],
        create: CreateRun,
    ) -> Result<Run, MlflowError> {
        if let Some(run) = self.find(experiment_id, identity).await? {
            return Ok(run);
        }
        let created = self.client.create_run(&create).await?;
        match self.find(experiment_id, identity).await? {
            Some(winner) if winner.info.run_id != created.info.run_id => {
                tracing::warn!(
                    kept = %winner.info.run_id,
                    deleted = %created.info.run_id,
                    "a concurrent delivery created the same MLflow run; keeping the earliest"
                );
                if let Err(e) = self.client.delete_run(&created.info.run_id).await {
                    tracing::warn!(run = %created.info.run_id, error = %e, "deleting a duplicate MLflow run failed");
                }
                Ok(winner)
            }
            _ => Ok(created),
        }
    }

    /// Logs write-once params; a value that differs from one already logged is reported and skipped, since it
    /// can never be written.
    async fn log_params(&self, mlflow_run_id: &str, params: &[Param]) -> Result<(), MlflowError> {
        match self.client.log_batch(mlflow_run_id, &[], params, &[]).await {
            Ok(_) => Ok(()),
            Err(e) if e.error_code() == Some("INVALID_PARAMETER_VALUE") => {
                tracing::warn!(run = mlflow_run_id, error = %e, "MLflow refused params (already logged with other values)");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Finds or creates the parent run of `run` and logs its params.
    pub async fn ensure_parent(&self, run: &RunRecord) -> Result<Run, MlflowError> {
        let experiment_id = self.experiment_id().await?;
        let identity = [("run_id", run.run_id.as_str()), (KIND_TAG, KIND_PARENT)];
        let mut tags = vec![
            mapping::tag("run_id", &run.run_id),
            mapping::tag(KIND_TAG, KIND_PARENT),
        ];
        for (key, value) in [
            ("pulse_id", &run.pulse_id),
            ("correlation_id", &run.correlation_id),
            ("dataset_id", &run.dataset_id),
        ] {
            if let Some(v) = value {
                tags.push(mapping::tag(key, v));
            }
        }
        let create = CreateRun {
            run_name: Some(mapping::truncate_chars(
                &run.run_id,
                mapping::MAX_RUN_NAME_CHARS,
            )),
            tags,
            ..CreateRun::in_experiment(&experiment_id)
        };
        let parent = self
            .find_or_create(&experiment_id, &identity, create)
            .await?;
        self.log_params(&parent.info.run_id, &run_params(run))
            .await?;
        Ok(parent)
    }

    /// What creates the child run of `trial` under `parent_id`, and the identity tags it is found by.
    fn child_create<'t>(
        experiment_id: &str,
        parent_id: &str,
        trial: &'t TrialRecord,
    ) -> (CreateRun, [(&'static str, &'t str); 2]) {
        let create = CreateRun {
            run_name: Some(mapping::truncate_chars(
                &trial.trial_id,
                mapping::MAX_RUN_NAME_CHARS,
            )),
            tags: trial_tags(trial),
            parent_run_id: Some(parent_id.to_string()),
            ..CreateRun::in_experiment(experiment_id)
        };
        let identity = [
            ("trial_id", trial.trial_id.as_str()),
            (KIND_TAG, KIND_CHILD),
        ];
        (create, identity)
    }

    /// The child run of a trial about to train: found by its identity tags (left by an earlier attempt that
    /// crashed before recording it), else created, in status RUNNING. Two requests. No search after creating:
    /// the `mlflow.trial_start` task is the only creator of a trained trial's child run (the trial's other
    /// tasks wait for it), and its claim keeps other deliveries away.
    pub async fn start_child(
        &self,
        parent_id: &str,
        trial: &TrialRecord,
    ) -> Result<Run, MlflowError> {
        let experiment_id = self.experiment_id().await?;
        let (create, identity) = Self::child_create(&experiment_id, parent_id, trial);
        if let Some(run) = self.find(&experiment_id, &identity).await? {
            return Ok(run);
        }
        self.client.create_run(&create).await
    }

    /// Completes an existing child run: params, final metrics, per-epoch history and tags in one `log-batch`
    /// (split only beyond MLflow's limits), then the trial's status. A param MLflow refuses because it was
    /// logged before with another value is reported and skipped, and the rest is logged without it.
    pub async fn finish_child(
        &self,
        child_id: &str,
        trial: &TrialRecord,
        history: &[EpochPoint],
        status: MlflowStatus,
    ) -> Result<(), MlflowError> {
        let mut params = Vec::new();
        mapping::params_from(None, &trial.parameters, &mut params);
        let metrics = trial_metrics(trial, history);
        let tags = trial_tags(trial);
        match self
            .client
            .log_batch(child_id, &metrics, &params, &tags)
            .await
        {
            Ok(_) => {}
            Err(e) if !params.is_empty() && e.error_code() == Some("INVALID_PARAMETER_VALUE") => {
                self.log_params(child_id, &params).await?;
                self.client
                    .log_batch(child_id, &metrics, &[], &tags)
                    .await?;
            }
            Err(e) => return Err(e),
        }
        self.client
            .update_run(child_id, status, Some(now_millis()))
            .await?;
        Ok(())
    }

    /// Finds or creates the child run of `trial` under `parent_id` (searching again after creating, against a
    /// concurrent creator), then completes it with [`Mirror::finish_child`]. For trials without a
    /// `mlflow.trial_start` task: reported ones, async ones, and those enqueued before that task existed.
    pub async fn mirror_trial(
        &self,
        parent_id: &str,
        trial: &TrialRecord,
        history: &[EpochPoint],
        status: MlflowStatus,
    ) -> Result<Run, MlflowError> {
        let experiment_id = self.experiment_id().await?;
        let (create, identity) = Self::child_create(&experiment_id, parent_id, trial);
        let child = self
            .find_or_create(&experiment_id, &identity, create)
            .await?;
        self.finish_child(&child.info.run_id, trial, history, status)
            .await?;
        Ok(child)
    }

    /// Logs a finalized run's metrics (and `best_<metric>`), tags the best trial and ends the parent run.
    pub async fn finalize_parent(
        &self,
        parent_id: &str,
        run: &RunRecord,
        best: Option<(&str, f64)>,
        status: MlflowStatus,
    ) -> Result<(), MlflowError> {
        let timestamp = run.finalized_at_ms.unwrap_or(run.updated_at_ms);
        let mut metrics = match &run.final_metrics {
            Value::Object(map) => mapping::metrics_from(map, 0, timestamp),
            _ => Vec::new(),
        };
        let mut tags = vec![mapping::tag("status", run.status.as_str())];
        if let Some((trial_id, value)) = best {
            metrics.retain(|m| m.key != format!("best_{}", run.objective.metric));
            metrics.push(Metric {
                key: mapping::sanitize_key(&format!("best_{}", run.objective.metric)),
                value,
                timestamp,
                step: 0,
            });
            tags.push(mapping::tag("best_trial_id", trial_id));
        } else if let Some(best_id) = &run.final_best_trial_id {
            tags.push(mapping::tag("best_trial_id", best_id));
        }
        self.client
            .log_batch(parent_id, &metrics, &[], &tags)
            .await?;
        self.client
            .update_run(parent_id, status, Some(timestamp))
            .await?;
        Ok(())
    }
}

/// Params of a parent run: the run's `parameters` and `budget` flattened with dots, and its objective.
pub fn run_params(run: &RunRecord) -> Vec<Param> {
    let mut params = Vec::new();
    if let Value::Object(map) = &run.parameters {
        mapping::params_from(Some("parameters"), map, &mut params);
    }
    if let Value::Object(map) = &run.budget {
        mapping::params_from(Some("budget"), map, &mut params);
    }
    params.push(Param::new(
        "objective.metric",
        mapping::param_value(&Value::String(run.objective.metric.clone())),
    ));
    params.push(Param::new(
        "objective.direction",
        crate::domain::objective::direction_str(run.objective.direction),
    ));
    if let Some(tau) = run.tau {
        params.push(Param::new("tau", tau.to_string()));
    }
    params
}

/// Tags of a child run (`mlflow.parentRunId` is added at creation).
pub fn trial_tags(trial: &TrialRecord) -> Vec<Tag> {
    let mut tags = vec![
        mapping::tag("trial_id", &trial.trial_id),
        mapping::tag("run_id", &trial.run_id),
        mapping::tag(KIND_TAG, KIND_CHILD),
        mapping::tag("status", trial.status.as_str()),
        mapping::tag("source", &trial.source),
    ];
    for (key, value) in [
        ("pulse_id", &trial.pulse_id),
        ("candidate_id", &trial.candidate_id),
    ] {
        if let Some(v) = value {
            tags.push(mapping::tag(key, v));
        }
    }
    tags
}

/// Metrics of a child run: the per-epoch history (step = epoch), then the final numeric metrics at the last
/// epoch (step 0 without history). All stamped with the trial's creation time, so a repeated delivery logs
/// identical points, which MLflow stores once.
pub fn trial_metrics(trial: &TrialRecord, history: &[EpochPoint]) -> Vec<Metric> {
    let timestamp = trial.created_at_ms;
    let final_step = history.iter().map(|p| p.epoch).max().unwrap_or(0);
    let mut metrics = mapping::history_metrics(history, timestamp);
    metrics.extend(mapping::metrics_from(&trial.metrics, final_step, timestamp));
    metrics
}
