//! `TrialReportedV1`: what `record_trial` carries, sent flat to `POST /bridge/record`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{lenient_bool, null_as_default};
use super::{RunId, TrialId, TrialStatus};

/// A trial finished (Thunderline's `CerebrosBridge.Contracts.TrialReportedV1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialReportedV1 {
    /// The trial.
    pub trial_id: TrialId,
    /// The run the trial belongs to.
    pub run_id: RunId,
    /// Thunderline pulse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_id: Option<String>,
    /// Candidate architecture id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_id: Option<String>,
    /// Outcome; `succeeded` when absent.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: TrialStatus,
    /// Metric name → value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: Map<String, Value>,
    /// Parameter name → value the trial ran with.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: Map<String, Value>,
    /// Where the trial's artifacts are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_uri: Option<String>,
    /// Wall time of the trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Rank among the run's trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
    /// Warnings raised while running the trial.
    #[serde(default, deserialize_with = "null_as_default")]
    pub warnings: Vec<String>,
    /// Whether spectral normalisation was on.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub spectral_norm: bool,
    /// MLflow run of the trial, when the caller already has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_run_id: Option<String>,
    /// Fields outside the contract, forwarded as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TrialReportedV1 {
    /// A succeeded trial with no metrics or parameters yet.
    pub fn new(run_id: RunId, trial_id: TrialId) -> Self {
        Self {
            trial_id,
            run_id,
            pulse_id: None,
            candidate_id: None,
            status: TrialStatus::Succeeded,
            metrics: Map::new(),
            parameters: Map::new(),
            artifact_uri: None,
            duration_ms: None,
            rank: None,
            warnings: Vec::new(),
            spectral_norm: false,
            mlflow_run_id: None,
            other: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spec_example_parses() {
        let trial: TrialReportedV1 = serde_json::from_value(json!({
            "trial_id":"t-01","run_id":"r-01","pulse_id":null,"candidate_id":null,
            "status":"succeeded","metrics":{"accuracy":0.91,"latency_ms":31.2},
            "parameters":{"lr":0.001,"head":"kgam"},"artifact_uri":null,"duration_ms":5400,
            "rank":1,"warnings":[],"spectral_norm":false,"mlflow_run_id":null
        }))
        .unwrap();
        assert_eq!(trial.status, TrialStatus::Succeeded);
        assert_eq!(trial.duration_ms, Some(5400));
        assert_eq!(trial.metrics["accuracy"], json!(0.91));
    }

    #[test]
    fn an_unknown_status_is_rejected() {
        let err = serde_json::from_value::<TrialReportedV1>(
            json!({"trial_id":"t","run_id":"r","status":"started"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("trial status"));
    }

    #[test]
    fn a_negative_duration_is_rejected() {
        assert!(
            serde_json::from_value::<TrialReportedV1>(
                json!({"trial_id":"t","run_id":"r","duration_ms":-1})
            )
            .is_err()
        );
    }

    #[test]
    fn serialization_is_flat_with_the_canonical_status() {
        let mut trial =
            TrialReportedV1::new(RunId::parse("r").unwrap(), TrialId::parse("t").unwrap());
        trial.status = "Canceled".parse().unwrap();
        let json = serde_json::to_value(&trial).unwrap();
        assert_eq!(json["status"], json!("cancelled"));
        assert_eq!(json["run_id"], json!("r"));
        assert!(json.get("pulse_id").is_none());
    }
}
