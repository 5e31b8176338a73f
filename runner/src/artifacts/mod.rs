//! The runner's object-store layer (DESIGN §2.5, §2.6): trial artifacts go to S3 (`s3://$MINIO_BUCKET/…`) when an
//! endpoint is configured, else to the local artifact directory; datasets are read from `s3://` URIs with a size cap.
//!
//! Calls fail fast (short timeouts, at most two attempts): the outbox owns the long retries, and
//! [`ArtifactError::is_transient`] tells it which failures are worth retrying.

mod error;
mod local;
mod location;
mod s3;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

pub use error::ArtifactError;
pub use location::{RelPath, S3Uri};
pub use s3::{S3Store, S3Timeouts};

use crate::config::Settings;

/// Running totals for `/metrics`, shared by every clone of a store.
#[derive(Debug, Default)]
pub struct ArtifactCounters {
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    errors: AtomicU64,
}

/// Where artifacts go: a local directory or an S3-compatible store.
#[derive(Debug, Clone)]
pub enum ArtifactStore {
    /// Files under `root` (used when no S3 endpoint is configured).
    Local {
        /// The artifact directory.
        root: PathBuf,
        /// Totals for metrics.
        counters: Arc<ArtifactCounters>,
    },
    /// An S3-compatible store.
    S3 {
        /// The client and default bucket.
        store: S3Store,
        /// Totals for metrics.
        counters: Arc<ArtifactCounters>,
    },
}

impl ArtifactStore {
    /// The store `settings` select: S3 when an endpoint is configured, else the local artifact directory.
    /// Makes no request, so an S3 outage does not stop the runner from starting.
    pub async fn from_settings(settings: &Settings) -> Result<Self, ArtifactError> {
        let counters = Arc::new(ArtifactCounters::default());
        Ok(match &settings.s3 {
            Some(s3) => Self::S3 {
                store: S3Store::new(s3, S3Timeouts::default())?,
                counters,
            },
            None => Self::Local {
                root: settings.artifact_dir.clone(),
                counters,
            },
        })
    }

    /// A local store rooted at `root`.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::Local {
            root: root.into(),
            counters: Arc::default(),
        }
    }

    /// An S3 store around an already built client.
    pub fn s3(store: S3Store) -> Self {
        Self::S3 {
            store,
            counters: Arc::default(),
        }
    }

    /// A one-line description for logs (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Local { root, .. } => format!("local directory {}", root.display()),
            Self::S3 { store, .. } => format!("S3 {} bucket {}", store.endpoint(), store.bucket()),
        }
    }

    /// Writes `bytes` under `prefix/name` in the default location (`s3://$MINIO_BUCKET/<prefix>/<name>` or
    /// `<artifact_dir>/<prefix>/<name>`) and returns the URI written (`s3://…` or `file://…`).
    pub async fn put(
        &self,
        prefix: &str,
        name: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<String, ArtifactError> {
        let len = bytes.len() as u64;
        let result = match RelPath::join(prefix, name) {
            Err(e) => Err(e),
            Ok(rel) => match self {
                Self::Local { root, .. } => local::put(root, &rel, bytes).await,
                Self::S3 { store, .. } => match S3Uri::new(store.bucket(), rel) {
                    Err(e) => Err(e),
                    Ok(uri) => store
                        .put(&uri, bytes, content_type)
                        .await
                        .map(|()| uri.to_string()),
                },
            },
        };
        self.count(result.as_ref().map(|_| len), |c| &c.bytes_written);
        result
    }

    /// Writes to an explicit `s3://bucket/key` URI (used when MLflow's artifact location is `s3://…`);
    /// [`ArtifactError::NotConfigured`] when no S3 store is configured.
    pub async fn put_uri(
        &self,
        uri: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), ArtifactError> {
        let len = bytes.len() as u64;
        let result = match self {
            Self::Local { .. } => Err(ArtifactError::NotConfigured(uri.to_string())),
            Self::S3 { store, .. } => match S3Uri::parse(uri) {
                Err(e) => Err(e),
                Ok(uri) => store.put(&uri, bytes, content_type).await,
            },
        };
        self.count(result.as_ref().map(|()| len), |c| &c.bytes_written);
        result
    }

    /// Reads `s3://bucket/key`, refusing objects larger than `max_bytes`. Errors name the URI and never echo
    /// content: [`ArtifactError::NotFound`], [`ArtifactError::TooLarge`], [`ArtifactError::NotConfigured`].
    pub async fn get_s3(&self, uri: &str, max_bytes: u64) -> Result<Bytes, ArtifactError> {
        let result = match self {
            Self::Local { .. } => Err(ArtifactError::NotConfigured(uri.to_string())),
            Self::S3 { store, .. } => match S3Uri::parse(uri) {
                Err(e) => Err(e),
                Ok(uri) => store.get(&uri, max_bytes).await,
            },
        };
        self.count(result.as_ref().map(|b| b.len() as u64), |c| &c.bytes_read);
        result
    }

    /// Readiness: the local directory accepts a new file, or the S3 bucket answers HeadBucket (created if missing).
    pub async fn check(&self) -> Result<(), ArtifactError> {
        let result = match self {
            Self::Local { root, .. } => local::check(root).await,
            Self::S3 { store, .. } => store.check().await,
        };
        self.count(result.as_ref().map(|()| 0), |c| &c.bytes_written);
        result
    }

    /// Bytes written by successful `put`/`put_uri` calls.
    pub fn bytes_written_total(&self) -> u64 {
        self.counters().bytes_written.load(Ordering::Relaxed)
    }

    /// Bytes returned by successful `get_s3` calls.
    pub fn bytes_read_total(&self) -> u64 {
        self.counters().bytes_read.load(Ordering::Relaxed)
    }

    /// Failed calls of any kind.
    pub fn errors_total(&self) -> u64 {
        self.counters().errors.load(Ordering::Relaxed)
    }

    fn counters(&self) -> &ArtifactCounters {
        match self {
            Self::Local { counters, .. } | Self::S3 { counters, .. } => counters,
        }
    }

    fn count<E>(&self, outcome: Result<u64, &E>, total: impl Fn(&ArtifactCounters) -> &AtomicU64) {
        match outcome {
            Ok(n) => total(self.counters()).fetch_add(n, Ordering::Relaxed),
            Err(_) => self.counters().errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_writes_counts_and_refuses_s3_access() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::local(dir.path());
        store.check().await.unwrap();
        let uri = store
            .put(
                "cerebros/r1/t1",
                "metrics.json",
                Bytes::from_static(b"{}"),
                "application/json",
            )
            .await
            .unwrap();
        assert!(
            uri.starts_with("file://") && uri.ends_with("/cerebros/r1/t1/metrics.json"),
            "{uri}"
        );
        assert_eq!(store.bytes_written_total(), 2);

        let err = store
            .put("..", "x", Bytes::new(), "text/plain")
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::BadUri(_)));
        let err = store.get_s3("s3://bucket/data.csv", 10).await.unwrap_err();
        assert!(
            matches!(err, ArtifactError::NotConfigured(_))
                && err.to_string().contains("s3://bucket/data.csv")
        );
        let err = store
            .put_uri("s3://bucket/k", Bytes::new(), "text/plain")
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::NotConfigured(_)));
        assert_eq!(store.errors_total(), 3);
        assert!(store.describe().contains(&dir.path().display().to_string()));
    }
}
