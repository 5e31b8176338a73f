//! Endpoint groups, each an `impl MlflowClient` block.

pub mod artifacts;
pub mod batch;
mod experiments;
pub(crate) mod logging;
mod registry;
pub(crate) mod runs;

/// A reply whose content is ignored (`{}` for most write endpoints).
#[derive(serde::Deserialize)]
pub(crate) struct Empty {}
