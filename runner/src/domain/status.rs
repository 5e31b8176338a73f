//! Trial and run statuses, as Thunderline's contracts name them.

use super::FieldError;

/// Lifecycle of a trial. The first four are TrialReportedV1's enum; `Queued` and `Running` belong to `/train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Waiting for a training slot.
    Queued,
    /// Being trained.
    Running,
    /// Finished with metrics.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Not evaluated on purpose.
    Skipped,
    /// Stopped before finishing.
    Cancelled,
}

impl TrialStatus {
    /// Parses a reported status (TrialReportedV1): case-insensitive, "canceled" accepted.
    pub fn parse_reported(raw: &str) -> Result<Self, FieldError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "succeeded" | "success" | "completed" | "complete" => Ok(Self::Succeeded),
            "failed" | "failure" | "error" => Ok(Self::Failed),
            "skipped" => Ok(Self::Skipped),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            _ => Err(FieldError::new(
                "status",
                format!(
                    "unknown trial status {raw:?} (expected succeeded, failed, skipped or cancelled)"
                ),
            )),
        }
    }

    /// The stored and reported spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Reads a stored status.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            other => Self::parse_reported(other).ok(),
        }
    }

    /// Whether the trial has reached a final state.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// Lifecycle of a run. The last four are RunFinalizedV1's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and accepting trials.
    Running,
    /// Finalized as succeeded.
    Succeeded,
    /// Finalized as failed.
    Failed,
    /// Finalized as cancelled.
    Cancelled,
    /// Finalized as timed out.
    Timeout,
}

impl RunStatus {
    /// Parses a finalize status (RunFinalizedV1): case-insensitive, "canceled" accepted.
    pub fn parse_final(raw: &str) -> Result<Self, FieldError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "succeeded" | "success" | "completed" | "complete" => Ok(Self::Succeeded),
            "failed" | "failure" | "error" => Ok(Self::Failed),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            "timeout" | "timed_out" => Ok(Self::Timeout),
            _ => Err(FieldError::new(
                "status",
                format!(
                    "unknown run status {raw:?} (expected succeeded, failed, cancelled or timeout)"
                ),
            )),
        }
    }

    /// The stored and reported spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
        }
    }

    /// Reads a stored status.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(Self::Running),
            other => Self::parse_final(other).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_statuses_are_case_insensitive_and_accept_us_spelling() {
        assert_eq!(
            TrialStatus::parse_reported("SUCCEEDED").unwrap(),
            TrialStatus::Succeeded
        );
        assert_eq!(
            TrialStatus::parse_reported("canceled").unwrap(),
            TrialStatus::Cancelled
        );
        assert!(TrialStatus::parse_reported("started").is_err());
        assert!(TrialStatus::parse_reported("queued").is_err());
    }

    #[test]
    fn run_statuses_follow_the_finalize_contract() {
        assert_eq!(
            RunStatus::parse_final("Timeout").unwrap(),
            RunStatus::Timeout
        );
        assert!(RunStatus::parse_final("skipped").is_err());
    }

    #[test]
    fn stored_spellings_round_trip() {
        for s in [
            TrialStatus::Queued,
            TrialStatus::Running,
            TrialStatus::Succeeded,
            TrialStatus::Cancelled,
        ] {
            assert_eq!(TrialStatus::from_stored(s.as_str()), Some(s));
        }
    }
}
