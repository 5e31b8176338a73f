//! The S3-compatible store (MinIO, SeaweedFS, AWS): path-style addressing, static credentials, short timeouts and
//! at most two attempts per call, because the runner's outbox does the long retries.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::{Bytes, BytesMut};

use super::ArtifactError;
use super::location::S3Uri;
use crate::config::S3Settings;

/// Timeouts and attempts of every S3 call.
#[derive(Debug, Clone, Copy)]
pub struct S3Timeouts {
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect: Duration,
    /// Time allowed for one attempt of an operation, body transfer included.
    pub attempt: Duration,
    /// Attempts per call (the SDK's own retry); the outbox retries beyond that.
    pub max_attempts: u32,
}

impl Default for S3Timeouts {
    /// 5 s to connect, 30 s per attempt, 2 attempts.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(30),
            max_attempts: 2,
        }
    }
}

/// A client bound to one S3 endpoint and its default bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: String,
    bucket_ready: Arc<tokio::sync::OnceCell<()>>,
}

impl S3Store {
    /// Builds a client for `settings` (no request is made).
    pub fn new(settings: &S3Settings, timeouts: S3Timeouts) -> Result<Self, ArtifactError> {
        let bucket = S3Uri::bucket_name(&settings.bucket).map_err(|why| {
            ArtifactError::BadUri(format!("MINIO_BUCKET {:?}: {why}", settings.bucket))
        })?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .endpoint_url(settings.endpoint.trim_end_matches('/'))
            .credentials_provider(Credentials::new(
                settings.access_key.clone(),
                settings.secret_key.clone(),
                None,
                None,
                "thunderhelm-static",
            ))
            .force_path_style(true)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .operation_attempt_timeout(timeouts.attempt)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(timeouts.max_attempts.max(1)))
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            bucket,
            endpoint: settings.endpoint.clone(),
            bucket_ready: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The default bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Uploads to `uri` with one PutObject; the default bucket is created on first use.
    pub(crate) async fn put(
        &self,
        uri: &S3Uri,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), ArtifactError> {
        if uri.bucket() == self.bucket {
            self.bucket_ready
                .get_or_try_init(|| self.ensure_bucket())
                .await?;
        }
        self.client
            .put_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .content_type(content_type)
            .content_length(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", uri, e))?;
        Ok(())
    }

    /// Downloads `uri`, refusing objects larger than `max_bytes` (by their length, and while reading).
    pub(crate) async fn get(&self, uri: &S3Uri, max_bytes: u64) -> Result<Bytes, ArtifactError> {
        let too_large = || ArtifactError::TooLarge {
            uri: uri.to_string(),
            limit: max_bytes,
        };
        let out = self
            .client
            .get_object()
            .bucket(uri.bucket())
            .key(uri.key())
            .send()
            .await
            .map_err(|e| s3_error("GetObject", uri, e))?;
        let declared = out.content_length().and_then(|n| u64::try_from(n).ok());
        if declared.is_some_and(|n| n > max_bytes) {
            return Err(too_large());
        }
        let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
        let mut buf = BytesMut::with_capacity(capacity);
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ArtifactError::S3 {
                op: "GetObject",
                message: format!(
                    "{uri}: reading the body failed: {}",
                    DisplayErrorContext(&e)
                ),
                transient: true,
            })?;
            if buf.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// HeadBucket on the default bucket, creating it when missing.
    pub(crate) async fn check(&self) -> Result<(), ArtifactError> {
        self.ensure_bucket().await
    }

    async fn ensure_bucket(&self) -> Result<(), ArtifactError> {
        let uri = format!("s3://{}", self.bucket);
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(e))
                if e.err().is_not_found() || e.raw().status().as_u16() == 404 => {}
            Err(e) => return Err(s3_error("HeadBucket", &uri, e)),
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created the artifact bucket");
                Ok(())
            }
            Err(SdkError::ServiceError(e))
                if e.err().is_bucket_already_owned_by_you()
                    || e.err().is_bucket_already_exists() =>
            {
                Ok(())
            }
            Err(e) => Err(s3_error("CreateBucket", &uri, e)),
        }
    }
}

/// Maps an SDK error to [`ArtifactError`]: 404-like answers become `NotFound`, connection failures, timeouts,
/// throttling and 5xx are transient, everything else (403, 400, …) is permanent.
fn s3_error<E>(
    op: &'static str,
    location: &impl std::fmt::Display,
    err: SdkError<E, HttpResponse>,
) -> ArtifactError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("");
            if status == 404 || matches!(code, "NoSuchKey" | "NoSuchBucket" | "NotFound") {
                return ArtifactError::NotFound(location.to_string());
            }
            let transient = status >= 500
                || status == 429
                || matches!(
                    code,
                    "SlowDown"
                        | "RequestTimeout"
                        | "Throttling"
                        | "ServiceUnavailable"
                        | "InternalError"
                );
            let detail = if code.is_empty() {
                "no error code".to_string()
            } else {
                code.to_string()
            };
            let message = match ctx.err().message() {
                Some(m) => format!("{location}: HTTP {status} {detail}: {m}"),
                None => format!("{location}: HTTP {status} {detail}"),
            };
            ArtifactError::S3 {
                op,
                message,
                transient,
            }
        }
        SdkError::ConstructionFailure(_) => ArtifactError::S3 {
            op,
            message: format!("{location}: {}", DisplayErrorContext(&err)),
            transient: false,
        },
        _ => ArtifactError::S3 {
            op,
            message: format!("{location}: {}", DisplayErrorContext(&err)),
            transient: true,
        },
    }
}
