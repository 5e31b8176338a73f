//! Domain types: identifiers, statuses, objectives and the Thunderline bridge contracts.
//!
//! Raw JSON is parsed into these types once, at the edge; everything past the handlers holds valid values.

pub mod contracts;
pub mod ids;
pub mod keys;
pub mod objective;
pub mod status;

pub use ids::{RunId, TrialId};
pub use objective::{Direction, Objective};
pub use status::{RunStatus, TrialStatus};

/// A request field that failed validation: which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct FieldError {
    /// Dotted path of the offending field (`metrics.accuracy`, `k`, `space.lr`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
