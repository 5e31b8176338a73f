//! Async client for the MLflow tracking REST API and its artifact proxy.
//!
//! Built on `reqwest` and `serde`; every call is async. The client reads the same environment as
//! MLflow's Python client, retries like it (408/429/500/502/503/504 and connection errors, exponential
//! backoff with jitter, `Retry-After`), splits `log-batch` payloads to MLflow's limits and reports
//! failures as a typed [`Error`] carrying MLflow's `error_code`.
//!
//! ```no_run
//! use mlflow_client::{CreateRun, Metric, MlflowClient, Param, RunStatus, Tag, now_millis};
//!
//! # async fn demo() -> Result<(), mlflow_client::Error> {
//! let Some(client) = MlflowClient::from_env()? else {
//!     return Ok(()); // MLFLOW_TRACKING_URI unset: tracking off
//! };
//! let experiment_id = client.get_or_create_experiment("demo").await?;
//! let run = client
//!     .create_run(&CreateRun {
//!         run_name: Some("trial-1".into()),
//!         ..CreateRun::in_experiment(&experiment_id)
//!     })
//!     .await?;
//! let run_id = &run.info.run_id;
//! let metrics: Vec<Metric> = (0..5000).map(|i| Metric::new("loss", 1.0 / (i + 1) as f64, i)).collect();
//! client
//!     .log_batch(run_id, &metrics, &[Param::new("lr", "0.01")], &[Tag::new("stage", "dev")])
//!     .await?;
//! client.update_run(run_id, RunStatus::Finished, Some(now_millis())).await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod api;
mod client;
mod config;
mod error;
mod quirks;
mod retry;
mod types;

pub use api::artifacts::{ArtifactDownload, proxy_path};
pub use api::batch::{BatchLimits, encode_batches};
pub use api::logging::HISTORY_PAGE_SIZE;
pub use api::runs::{PARENT_RUN_ID_TAG, USER_TAG};
pub use client::{ClientBuilder, ClientStats, HeaderInjector, MlflowClient};
pub use config::{Auth, Config, MAX_BACKOFF_FACTOR_LIMIT, MAX_RETRIES_LIMIT};
pub use error::{Error, Result};
pub use retry::{RETRYABLE_STATUSES, RetryPolicy, is_retryable_status, parse_retry_after};
pub use types::{
    ArtifactRoot, ArtifactSource, CreateExperiment, CreateModelVersion, CreateRegisteredModel,
    CreateRun, Dataset, DatasetInput, Experiment, FileInfo, InputTag, Metric, ModelVersion, Page,
    Param, RegisteredModel, RegisteredModelAlias, RegistrySearch, Run, RunData, RunInfo, RunInputs,
    RunStatus, SearchExperiments, SearchRuns, Tag, ViewType, now_millis,
};
