//! Search spaces and samplers (pure computation; no I/O).
//!
//! - [`SearchSpace::parse`] reads and validates a space in the map or the list dialect.
//! - [`propose`] turns a space, the finished trials and the pending proposals into `k` new points,
//!   by TPE after Optuna 5 (multivariate kernels, constant liar) or at random.
//!
//! The layout follows Optuna's split between the density model and the policy that uses it:
//! `normal` (Gaussian functions) → `parzen` (the Parzen estimator) → `tpe` (the sampler);
//! `space` and `parse` hold the domain types.

mod normal;
mod parse;
mod parzen;
#[cfg(test)]
mod proptests;
mod space;
mod tpe;

pub use parse::{MAX_CHOICES, MAX_NAME_LEN, MAX_PARAMS};
pub use space::{SearchSpace, SpaceError};
pub use tpe::{
    ClipCount, Direction, Gamma, GoodWeights, Observation, Outcome, Proposal, ProposeRequest,
    Strategy, TpeOptions, Weights, propose,
};
