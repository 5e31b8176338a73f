//! Artifacts.

use std::path::PathBuf;

use bytes::Bytes;
use serde::Deserialize;

use super::serde_helpers::deserialize_opt_i64;

/// A file or directory in an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    /// Path relative to the artifact root (e.g. `model/weights.bin`).
    pub path: String,
    /// True for directories.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes (files only).
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub file_size: Option<i64>,
}

/// Whose artifacts an operation addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactRoot {
    /// The artifact root of a run (looked up with `runs/get`).
    Run(String),
    /// An artifact URI such as `mlflow-artifacts:/1/<run_id>/artifacts`.
    Uri(String),
}

impl ArtifactRoot {
    /// The artifact root of run `run_id`.
    pub fn run(run_id: impl Into<String>) -> Self {
        Self::Run(run_id.into())
    }

    /// An explicit artifact URI.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self::Uri(uri.into())
    }
}

/// What to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    /// Bytes in memory (cheap to clone, so retries resend them).
    Bytes(Bytes),
    /// A local file, streamed from disk (reopened on each retry).
    File(PathBuf),
}

impl From<Bytes> for ArtifactSource {
    fn from(value: Bytes) -> Self {
        Self::Bytes(value)
    }
}

impl From<Vec<u8>> for ArtifactSource {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(value))
    }
}

impl From<PathBuf> for ArtifactSource {
    fn from(value: PathBuf) -> Self {
        Self::File(value)
    }
}

impl From<&std::path::Path> for ArtifactSource {
    fn from(value: &std::path::Path) -> Self {
        Self::File(value.to_path_buf())
    }
}
