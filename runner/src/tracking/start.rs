//! `mlflow.trial_start`: the child run of a trained trial, created while it trains so the training's end only
//! has to complete it, plus the in-memory note of each new child run's artifact root (which saves a `runs/get`
//! before the artifacts are uploaded).

use super::Tracker;
use super::deliver::{Failure, Step};

/// Artifact roots remembered at most; beyond it the note is cleared (a miss only costs one `runs/get`).
const MAX_REMEMBERED_ROOTS: usize = 4096;

impl Tracker {
    /// Creates (or finds) the child run of `trial_id` in status RUNNING under its run's parent, and records its id.
    pub(super) async fn deliver_trial_start(&self, trial_id: &str) -> Result<Step, Failure> {
        let mirror = self.mirror()?;
        let trial = self.load_trial(trial_id).await?;
        if trial.mlflow_run_id.is_some() {
            return Ok(Step::Done);
        }
        let run = self.load_run(&trial.run_id).await?;
        let Some(parent) = self.parent_id(&run).await? else {
            return Ok(Step::Postponed(format!(
                "parent run of {} is being delivered",
                run.run_id
            )));
        };
        let child = self.mlflow(mirror.start_child(&parent, &trial)).await?;
        self.remember_root(&child.info.run_id, &child.info.artifact_uri);
        self.inner
            .store
            .set_trial_mlflow_id(trial_id, &child.info.run_id)
            .await
            .map_err(super::deliver::db)?;
        Ok(Step::Done)
    }

    /// Notes the artifact root of an MLflow run this process created.
    pub(super) fn remember_root(&self, mlflow_run_id: &str, root: &str) {
        if let Ok(mut roots) = self.inner.roots.lock() {
            if roots.len() >= MAX_REMEMBERED_ROOTS {
                roots.clear();
            }
            roots.insert(mlflow_run_id.to_string(), root.to_string());
        }
    }

    /// The noted artifact root of an MLflow run, forgotten as it is read (the artifacts go there once).
    pub(super) fn take_root(&self, mlflow_run_id: &str) -> Option<String> {
        self.inner.roots.lock().ok()?.remove(mlflow_run_id)
    }
}
