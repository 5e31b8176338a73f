//! The error type of the object-store layer and its transient/permanent split.

/// Why an artifact read or write failed. Messages name the location, never the content.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An `s3://` location was requested but no S3 endpoint is configured.
    #[error("cannot access {0}: no S3 store is configured (set MINIO_ENDPOINT)")]
    NotConfigured(String),
    /// A URI, prefix or name was refused before any I/O.
    #[error("invalid artifact location: {0}")]
    BadUri(String),
    /// The object or bucket does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object is larger than the caller's cap.
    #[error("{uri} is larger than the {limit}-byte limit")]
    TooLarge {
        /// The object's URI.
        uri: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// A local filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path (or `file://` URI) involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An S3 request failed.
    #[error("S3 {op} failed: {message}")]
    S3 {
        /// The S3 operation, e.g. `PutObject`.
        op: &'static str,
        /// What went wrong (status, error code, or the connection failure).
        message: String,
        /// Whether retrying later may succeed (connection failures, timeouts, 5xx, throttling).
        transient: bool,
    },
}

impl ArtifactError {
    /// True when retrying the same operation later may succeed; the outbox keeps retrying these and gives up on
    /// the others.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NotConfigured(_)
            | Self::BadUri(_)
            | Self::NotFound(_)
            | Self::TooLarge { .. } => false,
            Self::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::InvalidFilename
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::NotADirectory
                    | std::io::ErrorKind::IsADirectory
            ),
            Self::S3 { transient, .. } => *transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        assert!(!ArtifactError::BadUri("x".into()).is_transient());
        assert!(!ArtifactError::NotFound("s3://b/k".into()).is_transient());
        let outage = ArtifactError::S3 {
            op: "PutObject",
            message: "connection refused".into(),
            transient: true,
        };
        assert!(outage.is_transient());
        let denied = ArtifactError::Io {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!denied.is_transient());
    }
}
