//! Where training data comes from: inline rows, built-in names, `file://` paths confined to
//! `RUNNER_DATASET_DIRS`, `http(s)://` hosts listed in `RUNNER_DATASET_HTTP_ALLOW`, and `s3://` objects.
//! Sizes are capped, and no error message echoes what was read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::artifacts::ArtifactStore;
use crate::nas::Dataset;

/// Largest dataset file read, in bytes.
pub const MAX_DATASET_BYTES: u64 = 64 * 1024 * 1024;

/// Why a dataset could not be resolved; `Display` names the reference, never the content.
#[derive(Debug, thiserror::Error)]
pub enum DatasetLoadError {
    /// The request names no dataset and the run has none.
    #[error(
        "no dataset: send `dataset` (rows or references) or `dataset_id`, or start the run with a dataset_id"
    )]
    Missing,
    /// The reference cannot be resolved.
    #[error("dataset {reference:?}: {reason}")]
    Unresolvable {
        /// The reference as given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The data is unusable.
    #[error("dataset {reference:?}: {source}")]
    Invalid {
        /// The reference (or "inline rows").
        reference: String,
        /// The parse error (positions only).
        source: crate::nas::DatasetError,
    },
    /// The object store failed transiently; worth retrying.
    #[error("dataset {reference:?}: object store unavailable: {reason}")]
    Unavailable {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
}

/// Resolves dataset references under the configured confinement rules.
#[derive(Clone)]
pub struct DatasetResolver {
    dirs: Vec<PathBuf>,
    http_allow: Vec<String>,
    http: reqwest::Client,
    artifacts: ArtifactStore,
}

impl DatasetResolver {
    /// Builds a resolver; `dirs` are canonicalised when they exist.
    pub fn new(dirs: &[PathBuf], http_allow: &[String], artifacts: ArtifactStore) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            dirs: dirs
                .iter()
                .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
                .collect(),
            http_allow: http_allow.to_vec(),
            http,
            artifacts,
        }
    }

    /// Resolves the `/train` request's `dataset` / `dataset_id`, falling back to the run's dataset id.
    pub async fn resolve(
        &self,
        dataset: Option<&Value>,
        dataset_id: Option<&str>,
        run_dataset_id: Option<&str>,
    ) -> Result<Dataset, DatasetLoadError> {
        match dataset {
            Some(Value::Array(items))
                if !items.is_empty() && items.iter().all(Value::is_string) =>
            {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(
                        self.load_reference(item.as_str().unwrap_or_default())
                            .await?,
                    );
                }
                Dataset::concat(parts).map_err(|source| DatasetLoadError::Invalid {
                    reference: "dataset references".into(),
                    source,
                })
            }
            Some(rows @ Value::Array(_)) => {
                Dataset::from_rows(rows).map_err(|source| DatasetLoadError::Invalid {
                    reference: "inline rows".into(),
                    source,
                })
            }
            Some(Value::String(reference)) => self.load_reference(reference).await,
            Some(Value::Object(obj)) => {
                match (obj.get("uri").and_then(Value::as_str), obj.get("rows")) {
                    (Some(uri), _) => self.load_reference(uri).await,
                    (None, Some(rows)) => {
                        Dataset::from_rows(rows).map_err(|source| DatasetLoadError::Invalid {
                            reference: "dataset.rows".into(),
                            source,
                        })
                    }
                    _ => Err(DatasetLoadError::Unresolvable {
                        reference: "dataset".into(),
                        reason: "an object dataset needs `uri` or `rows`".into(),
                    }),
                }
            }
            Some(Value::Null) | None => match dataset_id.or(run_dataset_id) {
                Some(reference) => self.load_reference(reference).await,
                None => Err(DatasetLoadError::Missing),
            },
            Some(_) => Err(DatasetLoadError::Unresolvable {
                reference: "dataset".into(),
                reason: "must be rows, a list of references, a reference string or {uri}".into(),
            }),
        }
    }

    /// Loads one reference: a built-in name or a `file://`, `http(s)://` or `s3://` URI.
    pub async fn load_reference(&self, reference: &str) -> Result<Dataset, DatasetLoadError> {
        let unresolvable = |reason: &str| DatasetLoadError::Unresolvable {
            reference: reference.to_string(),
            reason: reason.to_string(),
        };
        if let Some(builtin) = Dataset::builtin(reference) {
            return Ok(builtin);
        }
        let bytes = if let Some(path) = reference.strip_prefix("file://") {
            self.read_file(Path::new(path))
                .map_err(|r| unresolvable(&r))?
        } else if reference.starts_with("http://") || reference.starts_with("https://") {
            self.fetch_http(reference)
                .await
                .map_err(|r| unresolvable(&r))?
        } else if reference.starts_with("s3://") {
            self.artifacts
                .get_s3(reference, MAX_DATASET_BYTES)
                .await
                .map_err(|e| {
                    if e.is_transient() {
                        DatasetLoadError::Unavailable {
                            reference: reference.to_string(),
                            reason: e.to_string(),
                        }
                    } else {
                        unresolvable(&e.to_string())
                    }
                })?
                .to_vec()
        } else {
            let names = Dataset::builtin_names().join(", ");
            return Err(unresolvable(&format!(
                "not a built-in dataset ({names}) nor a file://, http(s):// or s3:// URI"
            )));
        };
        Dataset::from_csv(&bytes).map_err(|source| DatasetLoadError::Invalid {
            reference: reference.to_string(),
            source,
        })
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>, String> {
        let resolved = path
            .canonicalize()
            .map_err(|_| "file not found or not readable".to_string())?;
        if !self.dirs.iter().any(|dir| resolved.starts_with(dir)) {
            return Err("path is outside RUNNER_DATASET_DIRS".into());
        }
        let meta = std::fs::metadata(&resolved).map_err(|_| "file not readable".to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.len() > MAX_DATASET_BYTES {
            return Err(format!("larger than {MAX_DATASET_BYTES} bytes"));
        }
        std::fs::read(&resolved).map_err(|_| "file not readable".to_string())
    }

    async fn fetch_http(&self, reference: &str) -> Result<Vec<u8>, String> {
        let url = url::Url::parse(reference).map_err(|_| "not a valid URL".to_string())?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host_port = url.port().map(|p| format!("{host}:{p}"));
        let allowed = self
            .http_allow
            .iter()
            .any(|a| a == &host || host_port.as_deref() == Some(a.as_str()));
        if !allowed {
            return Err(format!(
                "host {host:?} is not listed in RUNNER_DATASET_HTTP_ALLOW"
            ));
        }
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("fetch failed: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("server answered {}", resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_DATASET_BYTES) {
            return Err(format!("larger than {MAX_DATASET_BYTES} bytes"));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("read failed: {}", e.without_url()))?;
            if body.len() as u64 + chunk.len() as u64 > MAX_DATASET_BYTES {
                return Err(format!("larger than {MAX_DATASET_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
