//! Outbox task kinds, dedupe keys and payloads: what the handlers enqueue (inside the transaction that stores
//! the result) and what the worker parses back before delivering.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::outbox::OutboxEntry;

/// Ensure the MLflow parent run of a run exists: `{"run_id"}`.
pub const KIND_RUN: &str = "mlflow.run";
/// Create the child run of a trial as its training starts, so its id is known early: `{"trial_id"}`.
pub const KIND_TRIAL_START: &str = "mlflow.trial_start";
/// Mirror a finished trial as a child run: `{"trial_id", "history": [{"epoch", "loss", …}]}`.
pub const KIND_TRIAL: &str = "mlflow.trial";
/// Upload a trained trial's files: `{"run_id", "trial_id", "files": [{"name", "content_type", "base64"}]}`.
pub const KIND_ARTIFACTS: &str = "artifacts.trial";
/// Log a finalized run's metrics and status on its parent run: `{"run_id"}`.
pub const KIND_RUN_FINAL: &str = "mlflow.run_final";
/// Every kind the tracker delivers.
pub const KINDS: [&str; 5] = [
    KIND_RUN,
    KIND_TRIAL_START,
    KIND_TRIAL,
    KIND_ARTIFACTS,
    KIND_RUN_FINAL,
];

/// A task ready to enqueue: at most one task per `dedupe_key` is ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// `<kind>:<id>`.
    pub dedupe_key: String,
    /// The JSON payload the worker expects for `kind`.
    pub payload: Value,
}

impl From<NewTask> for OutboxEntry {
    fn from(task: NewTask) -> Self {
        OutboxEntry {
            kind: task.kind.to_string(),
            dedupe_key: task.dedupe_key,
            payload: task.payload,
        }
    }
}

/// The dedupe key of the task of `kind` about `id` (a run id or a trial id).
pub fn dedupe_key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

/// The `mlflow.run` task of a run.
pub fn run_task(run_id: &str) -> NewTask {
    NewTask {
        kind: KIND_RUN,
        dedupe_key: dedupe_key(KIND_RUN, run_id),
        payload: json!({ "run_id": run_id }),
    }
}

/// The `mlflow.trial_start` task of a trial about to train.
pub fn trial_start_task(trial_id: &str) -> NewTask {
    NewTask {
        kind: KIND_TRIAL_START,
        dedupe_key: dedupe_key(KIND_TRIAL_START, trial_id),
        payload: json!({ "trial_id": trial_id }),
    }
}

/// The `mlflow.trial` task of a trial; `history` holds one object per epoch
/// (`{"epoch", "loss", "val_loss", "val_metric", "val_metric_name"}`), empty for reported trials.
pub fn trial_task(trial_id: &str, history: Vec<Value>) -> NewTask {
    NewTask {
        kind: KIND_TRIAL,
        dedupe_key: dedupe_key(KIND_TRIAL, trial_id),
        payload: json!({ "trial_id": trial_id, "history": history }),
    }
}

/// The `artifacts.trial` task of a trained trial; each file is `{"name", "content_type", "base64"}`.
pub fn artifacts_task(run_id: &str, trial_id: &str, files: Vec<Value>) -> NewTask {
    NewTask {
        kind: KIND_ARTIFACTS,
        dedupe_key: dedupe_key(KIND_ARTIFACTS, trial_id),
        payload: json!({ "run_id": run_id, "trial_id": trial_id, "files": files }),
    }
}

/// The `mlflow.run_final` task of a finalized run.
pub fn run_final_task(run_id: &str) -> NewTask {
    NewTask {
        kind: KIND_RUN_FINAL,
        dedupe_key: dedupe_key(KIND_RUN_FINAL, run_id),
        payload: json!({ "run_id": run_id }),
    }
}

/// One epoch of a training, as the `mlflow.trial` payload carries it. Missing or non-finite values are skipped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EpochPoint {
    /// 1-based epoch, the MLflow step.
    pub epoch: i64,
    /// Training loss.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Validation loss.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// Validation metric, logged as `val_<val_metric_name>`.
    #[serde(default)]
    pub val_metric: Option<f64>,
    /// What `val_metric` is (`accuracy`, `rmse`); `metric` when absent.
    #[serde(default)]
    pub val_metric_name: Option<String>,
}

/// A file of an `artifacts.trial` payload, still encoded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EncodedFile {
    /// Relative name under the trial's artifact location, e.g. `model.safetensors`.
    pub name: String,
    /// MIME type.
    #[serde(default = "octet_stream")]
    pub content_type: String,
    /// The content, standard base64.
    pub base64: String,
}

fn octet_stream() -> String {
    "application/octet-stream".to_string()
}

/// `mlflow.run` and `mlflow.run_final` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunPayload {
    /// The run.
    pub run_id: String,
}

/// `mlflow.trial_start` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrialStartPayload {
    /// The trial.
    pub trial_id: String,
}

/// `mlflow.trial` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrialPayload {
    /// The trial.
    pub trial_id: String,
    /// Per-epoch measurements, oldest first.
    #[serde(default)]
    pub history: Vec<EpochPoint>,
}

/// `artifacts.trial` payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArtifactsPayload {
    /// The trial's run.
    pub run_id: String,
    /// The trial.
    pub trial_id: String,
    /// Files to upload.
    pub files: Vec<EncodedFile>,
}

/// A stored task parsed by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// `mlflow.run`.
    Run(RunPayload),
    /// `mlflow.trial_start`.
    TrialStart(TrialStartPayload),
    /// `mlflow.trial`.
    Trial(TrialPayload),
    /// `artifacts.trial`.
    Artifacts(ArtifactsPayload),
    /// `mlflow.run_final`.
    RunFinal(RunPayload),
}

impl Task {
    /// Parses a stored task; the error says what is wrong (such a task can never be delivered).
    pub fn parse(kind: &str, payload: &Value) -> Result<Self, String> {
        fn decode<T: serde::de::DeserializeOwned>(
            kind: &str,
            payload: &Value,
        ) -> Result<T, String> {
            T::deserialize(payload).map_err(|e| format!("malformed {kind} payload: {e}"))
        }
        match kind {
            KIND_RUN => decode(kind, payload).map(Self::Run),
            KIND_TRIAL_START => decode(kind, payload).map(Self::TrialStart),
            KIND_TRIAL => decode(kind, payload).map(Self::Trial),
            KIND_ARTIFACTS => decode(kind, payload).map(Self::Artifacts),
            KIND_RUN_FINAL => decode(kind, payload).map(Self::RunFinal),
            other => Err(format!("unknown outbox task kind {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_round_trip_through_parse() {
        let t = run_task("r-1");
        assert_eq!(
            (t.kind, t.dedupe_key.as_str()),
            (KIND_RUN, "mlflow.run:r-1")
        );
        assert_eq!(
            Task::parse(t.kind, &t.payload).unwrap(),
            Task::Run(RunPayload {
                run_id: "r-1".into()
            })
        );

        let history = vec![
            json!({"epoch": 1, "loss": 0.5, "val_loss": 0.6, "val_metric": 0.9, "val_metric_name": "accuracy"}),
        ];
        let t = trial_task("t-1", history);
        assert_eq!(t.dedupe_key, "mlflow.trial:t-1");
        let Task::Trial(p) = Task::parse(t.kind, &t.payload).unwrap() else {
            panic!("not a trial task")
        };
        assert_eq!(p.history[0].epoch, 1);
        assert_eq!(p.history[0].val_metric_name.as_deref(), Some("accuracy"));

        let files = vec![
            json!({"name": "model.safetensors", "content_type": "application/octet-stream", "base64": "AAE="}),
        ];
        let t = artifacts_task("r-1", "t-1", files);
        assert_eq!(t.dedupe_key, "artifacts.trial:t-1");
        let Task::Artifacts(p) = Task::parse(t.kind, &t.payload).unwrap() else {
            panic!("not an artifacts task")
        };
        assert_eq!(
            (p.run_id.as_str(), p.files[0].name.as_str()),
            ("r-1", "model.safetensors")
        );

        let t = trial_start_task("t-1");
        assert_eq!(t.dedupe_key, "mlflow.trial_start:t-1");
        assert_eq!(
            Task::parse(t.kind, &t.payload).unwrap(),
            Task::TrialStart(TrialStartPayload {
                trial_id: "t-1".into()
            })
        );

        let t = run_final_task("r-1");
        assert_eq!(t.dedupe_key, "mlflow.run_final:r-1");
        let entry = OutboxEntry::from(t);
        assert_eq!(entry.kind, KIND_RUN_FINAL);
    }

    #[test]
    fn nan_history_values_are_skipped_not_fatal() {
        // serde_json writes NaN as null; such a point must still parse.
        let t = trial_task("t", vec![json!({"epoch": 2, "loss": f64::NAN})]);
        let Task::Trial(p) = Task::parse(t.kind, &t.payload).unwrap() else {
            panic!("not a trial task")
        };
        assert_eq!(p.history[0].loss, None);
    }

    #[test]
    fn bad_payloads_and_kinds_are_refused() {
        assert!(
            Task::parse(KIND_RUN, &json!({}))
                .unwrap_err()
                .contains("malformed mlflow.run")
        );
        assert!(Task::parse(KIND_ARTIFACTS, &json!({"run_id": "r", "trial_id": "t"})).is_err());
        assert!(
            Task::parse("mlflow.other", &json!({}))
                .unwrap_err()
                .contains("unknown")
        );
    }
}
