//! Delivery of each task kind, with its prerequisites: a trial needs its run's parent run, artifacts need the
//! trial's child run (when MLflow is on), a run's final status needs the parent run.

use std::future::Future;

use base64::Engine;
use bytes::Bytes;
use mlflow_client::{ArtifactRoot, Error as MlflowError};

use super::mapping;
use super::mirror::Mirror;
use super::tasks::{ArtifactsPayload, EpochPoint, KIND_RUN, KIND_TRIAL, KIND_TRIAL_START, Task};
use super::worker::Processed;
use super::{Tracker, dedupe_key};
use crate::artifacts::{ArtifactError, RelPath};
use crate::domain::{Direction, RunId, TrialStatus};
use crate::store::outbox::OutboxTask;
use crate::store::{RunRecord, TrialRecord};

/// A delivery that did not fail.
#[derive(Debug)]
pub(super) enum Step {
    /// Delivered.
    Done,
    /// A prerequisite is not delivered yet (the reason is logged).
    Postponed(String),
}

/// A delivery that failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// May succeed later: retry with backoff.
    Retry(String),
    /// Can never succeed: close the task.
    Drop(String),
}

/// Where a trial's files go.
enum Destination {
    /// Through MLflow's artifact proxy, under this `mlflow-artifacts:/…` root.
    Proxy(String),
    /// Straight to S3, under this `s3://…` root.
    S3(String),
    /// The artifact store's default location (`cerebros/<run_id>/<trial_id>/`).
    Default,
}

/// A decoded file of an `artifacts.trial` task.
struct File {
    name: String,
    content_type: String,
    bytes: Bytes,
}

pub(super) fn db(e: sqlx::Error) -> Failure {
    Failure::Retry(format!("database: {e}"))
}

fn artifact_failure(e: &ArtifactError) -> Failure {
    if e.is_transient() {
        Failure::Retry(e.to_string())
    } else {
        Failure::Drop(e.to_string())
    }
}

/// `uri` without its last `/name` (the directory the files went to).
fn directory_of(uri: &str, name: &str) -> String {
    uri.strip_suffix(name)
        .and_then(|u| u.strip_suffix('/'))
        .unwrap_or(uri)
        .to_string()
}

impl Tracker {
    pub(super) fn mirror(&self) -> Result<&Mirror, Failure> {
        self.inner.mirror.as_ref().ok_or_else(|| {
            Failure::Drop("MLflow tracking is off (MLFLOW_TRACKING_URI unset)".into())
        })
    }

    /// Awaits an MLflow call; a refusal (not a transient failure) also forgets the cached experiment, which may
    /// have been deleted.
    pub(super) async fn mlflow<T>(
        &self,
        call: impl Future<Output = Result<T, MlflowError>>,
    ) -> Result<T, Failure> {
        match call.await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.mlflow_failure(e).await),
        }
    }

    async fn mlflow_failure(&self, e: MlflowError) -> Failure {
        if !e.is_transient()
            && let Some(m) = &self.inner.mirror
        {
            m.forget_experiment().await;
        }
        Failure::Retry(e.to_string())
    }

    pub(super) async fn load_run(&self, run_id: &str) -> Result<RunRecord, Failure> {
        self.inner
            .store
            .get_run(run_id)
            .await
            .map_err(db)?
            .ok_or_else(|| Failure::Drop(format!("run {run_id} no longer exists")))
    }

    pub(super) async fn load_trial(&self, trial_id: &str) -> Result<TrialRecord, Failure> {
        self.inner
            .store
            .get_trial(trial_id)
            .await
            .map_err(db)?
            .ok_or_else(|| Failure::Drop(format!("trial {trial_id} no longer exists")))
    }

    /// Delivers one claimed task.
    #[tracing::instrument(name = "outbox.deliver", skip_all, fields(task.id = task.id, task.kind = %task.kind, task.attempt = task.attempts + 1))]
    pub(super) async fn deliver(&self, task: &OutboxTask) -> Result<Step, Failure> {
        match Task::parse(&task.kind, &task.payload).map_err(Failure::Drop)? {
            Task::Run(p) => self.deliver_run(&p.run_id).await,
            Task::TrialStart(p) => self.deliver_trial_start(&p.trial_id).await,
            Task::Trial(p) => self.deliver_trial(&p.trial_id, &p.history).await,
            Task::Artifacts(p) => self.deliver_artifacts(&p).await,
            Task::RunFinal(p) => self.deliver_run_final(&p.run_id).await,
        }
    }

    /// Delivers the pending task `kind:id` now, if there is one, it is due, and nobody else is delivering it.
    /// `Ok(true)` when nothing about it is pending any more. A prerequisite waiting out a retry delay is left
    /// alone, so the tasks that depend on it do not defeat its backoff during an outage.
    async fn prerequisite(&self, kind: &str, id: &str) -> Result<bool, Failure> {
        match self
            .inner
            .store
            .outbox_task_by_key(&dedupe_key(kind, id))
            .await
            .map_err(db)?
        {
            None | Some((_, true)) => Ok(true),
            Some((task, false)) => {
                Ok(self.process(&task, false, None).await == Processed::Delivered)
            }
        }
    }

    /// `mlflow.run`: find or create the parent run, record its id.
    async fn deliver_run(&self, run_id: &str) -> Result<Step, Failure> {
        let mirror = self.mirror()?;
        let run = self.load_run(run_id).await?;
        if run.mlflow_run_id.is_some() {
            return Ok(Step::Done);
        }
        let parent = self.mlflow(mirror.ensure_parent(&run)).await?;
        self.inner
            .store
            .set_run_mlflow_id(run_id, &parent.info.run_id)
            .await
            .map_err(db)?;
        Ok(Step::Done)
    }

    /// The MLflow parent run id of `run`: recorded, delivered now through its pending `mlflow.run` task, or created
    /// here when no such task exists. `None` while another delivery holds that task.
    pub(super) async fn parent_id(&self, run: &RunRecord) -> Result<Option<String>, Failure> {
        if let Some(id) = &run.mlflow_run_id {
            return Ok(Some(id.clone()));
        }
        if !self.prerequisite(KIND_RUN, &run.run_id).await? {
            return Ok(None);
        }
        let run = self.load_run(&run.run_id).await?;
        if let Some(id) = run.mlflow_run_id {
            return Ok(Some(id));
        }
        self.deliver_run(&run.run_id).await?;
        Ok(self.load_run(&run.run_id).await?.mlflow_run_id)
    }

    /// The child run id recorded for `trial`, once its pending `mlflow.trial_start` task (if any) is delivered.
    /// `Err(Step::Postponed)` while another delivery holds that task.
    async fn started_child(
        &self,
        trial: &TrialRecord,
    ) -> Result<Result<Option<String>, Step>, Failure> {
        if let Some(id) = &trial.mlflow_run_id {
            return Ok(Ok(Some(id.clone())));
        }
        if !self.prerequisite(KIND_TRIAL_START, &trial.trial_id).await? {
            return Ok(Err(Step::Postponed(format!(
                "the child run of trial {} is being created",
                trial.trial_id
            ))));
        }
        Ok(Ok(self.load_trial(&trial.trial_id).await?.mlflow_run_id))
    }

    /// `mlflow.trial`: completes the child run (params, metrics, history, final status), creating it first when
    /// no `mlflow.trial_start` task did.
    async fn deliver_trial(&self, trial_id: &str, history: &[EpochPoint]) -> Result<Step, Failure> {
        let mirror = self.mirror()?;
        let trial = self.load_trial(trial_id).await?;
        let Some(status) = mapping::trial_status(trial.status) else {
            return Ok(Step::Postponed(format!(
                "trial {trial_id} has not finished"
            )));
        };
        let child_id = match self.started_child(&trial).await? {
            Err(postponed) => return Ok(postponed),
            Ok(id) => id,
        };
        if let Some(child_id) = child_id {
            self.mlflow(mirror.finish_child(&child_id, &trial, history, status))
                .await?;
            return Ok(Step::Done);
        }
        let run = self.load_run(&trial.run_id).await?;
        let Some(parent) = self.parent_id(&run).await? else {
            return Ok(Step::Postponed(format!(
                "parent run of {} is being delivered",
                run.run_id
            )));
        };
        let child = self
            .mlflow(mirror.mirror_trial(&parent, &trial, history, status))
            .await?;
        self.remember_root(&child.info.run_id, &child.info.artifact_uri);
        self.inner
            .store
            .set_trial_mlflow_id(trial_id, &child.info.run_id)
            .await
            .map_err(db)?;
        Ok(Step::Done)
    }

    /// Where the trial's files go: its child run's artifact root when MLflow is on. `None` while the child run is
    /// being delivered elsewhere.
    async fn destination(&self, trial: &TrialRecord) -> Result<Option<Destination>, Failure> {
        let Some(mirror) = &self.inner.mirror else {
            return Ok(Some(Destination::Default));
        };
        let started = match self.started_child(trial).await? {
            Err(_) => return Ok(None),
            Ok(id) => id,
        };
        let child_id = match started {
            Some(id) => id,
            None => {
                if !self.prerequisite(KIND_TRIAL, &trial.trial_id).await? {
                    return Ok(None);
                }
                let reloaded = self.load_trial(&trial.trial_id).await?;
                match reloaded.mlflow_run_id {
                    Some(id) => id,
                    None => {
                        // No `mlflow.trial` task was enqueued: mirror the trial without history.
                        if let Step::Postponed(_) = self.deliver_trial(&trial.trial_id, &[]).await?
                        {
                            return Ok(None);
                        }
                        match self.load_trial(&trial.trial_id).await?.mlflow_run_id {
                            Some(id) => id,
                            None => return Ok(None),
                        }
                    }
                }
            }
        };
        let fetched = match self.take_root(&child_id) {
            Some(root) => Ok(root),
            None => mirror
                .client()
                .get_run(&child_id)
                .await
                .map(|run| run.info.artifact_uri),
        };
        let root = match fetched {
            Ok(root) => root,
            Err(e) if e.is_not_found() => {
                tracing::warn!(trial = %trial.trial_id, run = %child_id, "the trial's MLflow run is gone; using the artifact store");
                return Ok(Some(Destination::Default));
            }
            Err(e) => return Err(self.mlflow_failure(e).await),
        };
        Ok(Some(if root.starts_with("mlflow-artifacts:") {
            Destination::Proxy(root)
        } else if root.starts_with("s3://") {
            Destination::S3(root)
        } else {
            tracing::warn!(
                trial = %trial.trial_id, root = %root,
                "MLflow's artifact location is neither proxied nor S3; using the artifact store"
            );
            Destination::Default
        }))
    }

    /// `artifacts.trial`: the files in the trial's artifact location, then its URI on the trial.
    async fn deliver_artifacts(&self, p: &ArtifactsPayload) -> Result<Step, Failure> {
        let files = p
            .files
            .iter()
            .map(|f| {
                RelPath::parse(&f.name, "artifact name")
                    .map_err(|e| Failure::Drop(e.to_string()))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(f.base64.as_bytes())
                    .map_err(|e| {
                        Failure::Drop(format!("file {:?} is not valid base64: {e}", f.name))
                    })?;
                Ok(File {
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    bytes: Bytes::from(bytes),
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let trial = self.load_trial(&p.trial_id).await?;
        let Some(destination) = self.destination(&trial).await? else {
            return Ok(Step::Postponed(format!(
                "MLflow run of trial {} is being delivered",
                p.trial_id
            )));
        };
        let uri = match destination {
            Destination::Proxy(root) => {
                let mirror = self.mirror()?;
                let target = ArtifactRoot::uri(&root);
                futures::future::try_join_all(files.iter().map(|f| {
                    self.mlflow(
                        mirror
                            .client()
                            .upload_artifact(&target, &f.name, f.bytes.clone()),
                    )
                }))
                .await?;
                root
            }
            Destination::S3(root) => match self.put_s3(&root, &files).await {
                Err(ArtifactError::NotConfigured(_)) => {
                    tracing::warn!(trial = %p.trial_id, root = %root, "MLflow stores artifacts in S3 but no S3 store is configured; using the artifact store");
                    self.put_default(p, &files).await?
                }
                Err(e) => return Err(artifact_failure(&e)),
                Ok(()) => root,
            },
            Destination::Default => self.put_default(p, &files).await?,
        };
        self.inner
            .store
            .set_trial_artifact_uri(&p.trial_id, &uri)
            .await
            .map_err(db)?;
        Ok(Step::Done)
    }

    async fn put_s3(&self, root: &str, files: &[File]) -> Result<(), ArtifactError> {
        futures::future::try_join_all(files.iter().map(|f| {
            let uri = format!("{}/{}", root.trim_end_matches('/'), f.name);
            async move {
                self.inner
                    .artifacts
                    .put_uri(&uri, f.bytes.clone(), &f.content_type)
                    .await
            }
        }))
        .await?;
        Ok(())
    }

    /// Writes under `cerebros/<run_id>/<trial_id>/` and returns that directory's URI.
    async fn put_default(&self, p: &ArtifactsPayload, files: &[File]) -> Result<String, Failure> {
        let prefix = format!("cerebros/{}/{}", p.run_id, p.trial_id);
        let mut directory = None;
        for f in files {
            let uri = self
                .inner
                .artifacts
                .put(&prefix, &f.name, f.bytes.clone(), &f.content_type)
                .await
                .map_err(|e| artifact_failure(&e))?;
            directory.get_or_insert_with(|| directory_of(&uri, &f.name));
        }
        Ok(directory.unwrap_or(prefix))
    }

    /// `mlflow.run_final`: final metrics, best value and status on the parent run.
    async fn deliver_run_final(&self, run_id: &str) -> Result<Step, Failure> {
        let mirror = self.mirror()?;
        let run = self.load_run(run_id).await?;
        let Some(status) = mapping::run_status(run.status) else {
            return Ok(Step::Postponed(format!("run {run_id} is not finalized")));
        };
        let Some(parent) = self.parent_id(&run).await? else {
            return Ok(Step::Postponed(format!(
                "parent run of {run_id} is being delivered"
            )));
        };
        let best = self.best_trial(&run).await?;
        self.mlflow(mirror.finalize_parent(
            &parent,
            &run,
            best.as_ref().map(|(id, v)| (id.as_str(), *v)),
            status,
        ))
        .await?;
        Ok(Step::Done)
    }

    /// The best trial and its objective value: the one named at finalization when it reported the metric, else
    /// the best succeeded trial by the run's objective.
    async fn best_trial(&self, run: &RunRecord) -> Result<Option<(String, f64)>, Failure> {
        let metric = run.objective.metric.as_str();
        if let Some(best_id) = &run.final_best_trial_id
            && let Some(trial) = self.inner.store.get_trial(best_id).await.map_err(db)?
            && let Some(value) = trial.metric(metric)
        {
            return Ok(Some((trial.trial_id, value)));
        }
        let run_id = RunId::parse(&run.run_id).map_err(|e| Failure::Drop(e.to_string()))?;
        let trials = self.inner.store.run_trials(&run_id).await.map_err(db)?;
        let better = |a: f64, b: f64| match run.objective.direction {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        };
        let mut best: Option<(String, f64)> = None;
        for t in trials.iter().filter(|t| t.status == TrialStatus::Succeeded) {
            if let Some(v) = t.metric(metric)
                && best.as_ref().is_none_or(|(_, b)| better(v, *b))
            {
                best = Some((t.trial_id.clone(), v));
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::directory_of;

    #[test]
    fn the_directory_of_a_written_file_drops_its_name() {
        assert_eq!(
            directory_of("s3://b/cerebros/r/t/model.safetensors", "model.safetensors"),
            "s3://b/cerebros/r/t"
        );
        assert_eq!(
            directory_of("file:///d/cerebros/r/t/a.json", "a.json"),
            "file:///d/cerebros/r/t"
        );
        assert_eq!(
            directory_of("file:///elsewhere", "a.json"),
            "file:///elsewhere"
        );
    }
}
