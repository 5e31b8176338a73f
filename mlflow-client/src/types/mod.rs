//! Wire types of the MLflow REST API (requests and replies).

mod artifact;
mod common;
mod experiment;
mod registry;
mod run;
pub(crate) mod serde_helpers;

pub use artifact::{ArtifactRoot, ArtifactSource, FileInfo};
pub use common::{Page, Param, Tag, ViewType, now_millis};
pub use experiment::{CreateExperiment, Experiment, SearchExperiments};
pub use registry::{
    CreateModelVersion, CreateRegisteredModel, ModelVersion, RegisteredModel, RegisteredModelAlias,
    RegistrySearch,
};
pub use run::{
    CreateRun, Dataset, DatasetInput, InputTag, Metric, Run, RunData, RunInfo, RunInputs,
    RunStatus, SearchRuns,
};
