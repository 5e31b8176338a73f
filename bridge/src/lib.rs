//! Thunderline's Cerebros bridge, in Rust.
//!
//! - [`contracts`]: the typed bridge contracts (`RunStartedV1`, `TrialReportedV1`, `RunFinalizedV1`).
//! - [`client`]: an async client of the Cerebros runner's HTTP API, with deadlines and retries.
//! - [`cli`]: the `cerebros-bridge` command, a drop-in for the Python bridge stub and the TPE CLI.

pub mod cli;
pub mod client;
pub mod contracts;
pub mod error;
pub mod retry;

pub use client::{ClientConfig, RunnerClient};
pub use error::{ClientError, ErrorKind};
