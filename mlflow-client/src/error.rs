//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong when talking to MLflow.
///
/// Server-side failures keep MLflow's `error_code` so callers can branch on it (MLflow sends
/// `RESOURCE_ALREADY_EXISTS` as a 400, so the HTTP status alone is not enough).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// MLflow answered with its JSON error body `{"error_code", "message"}`.
    #[error("MLflow {endpoint} failed with HTTP {status} {error_code}: {message}")]
    Api {
        /// The endpoint that failed, e.g. `runs/log-batch`.
        endpoint: String,
        /// HTTP status of the reply.
        status: u16,
        /// MLflow's error code, e.g. `RESOURCE_DOES_NOT_EXIST`.
        error_code: String,
        /// MLflow's human-readable message.
        message: String,
        /// Attempts made, including the first one.
        attempts: u32,
    },
    /// The server answered with an error status but without MLflow's JSON error body
    /// (an HTML 404 page, a plain-text 403 from the security middleware, a proxy's 502 …).
    #[error("MLflow {endpoint} failed with HTTP {status}: {body}")]
    Http {
        /// The endpoint that failed.
        endpoint: String,
        /// HTTP status of the reply.
        status: u16,
        /// The start of the reply body.
        body: String,
        /// Attempts made, including the first one.
        attempts: u32,
    },
    /// No HTTP reply: connection refused or reset, timeout, TLS failure, broken body stream.
    #[error("MLflow {endpoint} transport error after {attempts} attempt(s): {message}")]
    Transport {
        /// The endpoint that failed.
        endpoint: String,
        /// Attempts made, including the first one.
        attempts: u32,
        /// Description of the last failure (with its causes).
        message: String,
        /// The last underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// A reply with a success status whose body could not be decoded.
    #[error("MLflow {endpoint} returned an unexpected body: {message}")]
    Decode {
        /// The endpoint whose reply could not be decoded.
        endpoint: String,
        /// What was wrong with it.
        message: String,
    },
    /// An artifact URI this client cannot write through the tracking server (for example `s3://…`,
    /// which the caller must write to the object store itself).
    #[error(
        "artifact URI {uri:?} is not served by the MLflow artifact proxy (mlflow-artifacts:/); \
         write it with a client for that store"
    )]
    UnsupportedArtifactUri {
        /// The artifact URI that was refused.
        uri: String,
    },
    /// Configuration (usually from the environment) that cannot be used.
    #[error("invalid MLflow client configuration {name}: {message}")]
    Config {
        /// The setting or environment variable at fault.
        name: String,
        /// Why it was rejected.
        message: String,
    },
    /// An argument the client refuses before sending anything.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A local file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// MLflow's `error_code`, when the server sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Api { error_code, .. } => Some(error_code),
            _ => None,
        }
    }

    /// The HTTP status of the failing reply, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Attempts made for the failing call, including the first one, when a request was sent.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Api { attempts, .. }
            | Error::Http { attempts, .. }
            | Error::Transport { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// True when MLflow reported that the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.error_code() == Some("RESOURCE_DOES_NOT_EXIST")
            || matches!(self, Error::Http { status: 404, .. })
    }

    /// True when MLflow reported that the resource already exists.
    pub fn is_already_exists(&self) -> bool {
        matches!(
            self.error_code(),
            Some("RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS")
        )
    }

    /// True for failures worth retrying later: transport errors and the retryable HTTP statuses.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            _ => self.status().is_some_and(crate::retry::is_retryable_status),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
