//! Typed contracts of Thunderline's Cerebros bridge (`CerebrosBridge.Contracts`), as they travel in JSON.
//!
//! Parsing one of these is the single place a payload is checked; the rest of the code holds valid values.

mod ids;
mod lenient;
mod objective;
mod run_finalized;
mod run_started;
mod status;
mod trial_reported;

pub use ids::{IdError, MAX_ID_LEN, RunId, TrialId};
pub use objective::Objective;
pub use run_finalized::{ArtifactRef, RunFinalizedV1};
pub use run_started::RunStartedV1;
pub use status::{Direction, RunStatus, TrialStatus, UnknownValue};
pub use trial_reported::TrialReportedV1;
