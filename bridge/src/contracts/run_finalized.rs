//! `RunFinalizedV1`: what `finalize_run` carries, sent flat to `POST /bridge/finalize`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::null_as_default;
use super::{RunId, RunStatus};

/// One artifact of a finished run, as Thunderline's persistence reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// Where the artifact is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The spec it was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_id: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Fields outside the contract.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A run finished (Thunderline's `CerebrosBridge.Contracts.RunFinalizedV1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinalizedV1 {
    /// The run.
    pub run_id: RunId,
    /// Thunderline pulse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_id: Option<String>,
    /// Outcome; `succeeded` when absent.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: RunStatus,
    /// Aggregate or best metrics.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: Map<String, Value>,
    /// Best trial, when the caller already knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_trial_id: Option<String>,
    /// Wall time of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Exit code of the process that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returncode: Option<i64>,
    /// Artifacts of the run.
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifact_refs: Vec<ArtifactRef>,
    /// Warnings raised during the run.
    #[serde(default, deserialize_with = "null_as_default")]
    pub warnings: Vec<String>,
    /// Start of the run's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_excerpt: Option<String>,
    /// Free-form payload.
    #[serde(default, deserialize_with = "null_as_default")]
    pub payload: Map<String, Value>,
    /// Fields outside the contract, forwarded as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RunFinalizedV1 {
    /// A finalisation with only the run id and status set.
    pub fn new(run_id: RunId, status: RunStatus) -> Self {
        Self {
            run_id,
            pulse_id: None,
            status,
            metrics: Map::new(),
            best_trial_id: None,
            duration_ms: None,
            returncode: None,
            artifact_refs: Vec::new(),
            warnings: Vec::new(),
            stdout_excerpt: None,
            payload: Map::new(),
            other: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn artifact_refs_parse_with_their_five_fields() {
        let done: RunFinalizedV1 = serde_json::from_value(json!({
            "run_id": "r", "status": "timeout",
            "artifact_refs": [{"uri": "s3://b/k", "checksum": "ab", "bytes": 10, "spec_id": "s", "semver": "1.0.0"}]
        }))
        .unwrap();
        assert_eq!(done.status, RunStatus::Timeout);
        assert_eq!(done.artifact_refs[0].bytes, Some(10));
    }

    #[test]
    fn a_trial_only_status_is_rejected() {
        assert!(
            serde_json::from_value::<RunFinalizedV1>(json!({"run_id": "r", "status": "skipped"}))
                .is_err()
        );
    }
}
