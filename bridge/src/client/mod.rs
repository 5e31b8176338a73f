//! Async client of the Cerebros runner's HTTP API.
//!
//! Every call has a deadline (the configured call timeout, capped by an optional absolute deadline) and retries
//! transient failures inside it. The runner is idempotent on every route this client retries (`/bridge/*` dedupes
//! on run and trial ids, reads have no effect), so a retry after a lost reply is safe.

mod path;
mod types;

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::contracts::{RunFinalizedV1, RunId, RunStartedV1, TrialId, TrialReportedV1};
use crate::error::{ClientError, ErrorKind};
use crate::retry::RetryPolicy;

pub use path::encode_segment;
pub use types::{
    FinalizedReply, Proposal, ProposeRequest, RecordedReply, RunPage, RunView, Score, StartedReply,
    Strategy, TrainMode, TrainReply, TrainRequest, TrialPage,
};

/// Longest runner error message kept in a [`ClientError`].
const MAX_ERROR_MESSAGE: usize = 1024;

/// How to reach the runner and how long to try.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, for example `http://127.0.0.1:8088` (trailing slashes are ignored).
    pub base_url: String,
    /// Bearer token, when the runner has `RUNNER_API_TOKEN` set.
    pub token: Option<String>,
    /// Budget of one call, retries included.
    pub call_timeout: Duration,
    /// Budget of one TCP (and TLS) connection attempt.
    pub connect_timeout: Duration,
    /// An absolute deadline no call may pass, whatever `call_timeout` says.
    pub deadline: Option<Instant>,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults: 15 s per call, 2 s per connection attempt, no absolute deadline, default retries.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token: None,
            call_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(2),
            deadline: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// A 2xx answer of the runner: its status and raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// HTTP status (2xx).
    pub status: u16,
    /// Body bytes, possibly empty.
    pub body: Vec<u8>,
    /// Requests sent to get it.
    pub attempts: u32,
}

/// Client of one runner. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct RunnerClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    call_timeout: Duration,
    deadline: Option<Instant>,
    retry: RetryPolicy,
}

/// One failed attempt: the error, and the server's `Retry-After` if it sent one.
struct Failure {
    error: ClientError,
    retry_after: Option<Duration>,
}

impl RunnerClient {
    /// Builds a client; fails only on a base URL that is not `http://` or `https://`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::new(ErrorKind::InvalidUrl, format!("{base:?}: {e}")))?;
        let plain_http = match url.scheme() {
            "http" => true,
            "https" => false,
            other => {
                return Err(ClientError::new(
                    ErrorKind::InvalidUrl,
                    format!("{base:?}: scheme {other:?} is not http or https"),
                ));
            }
        };
        let builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("cerebros-bridge/", env!("CARGO_PKG_VERSION")))
            // Loading the built-in root certificates is the costliest part of building a client and
            // buys nothing on plain http; skipping it keeps a one-shot process fast to start.
            .tls_built_in_root_certs(!plain_http);
        let http = builder
            .build()
            .map_err(|e| ClientError::new(ErrorKind::InvalidUrl, e.to_string()))?;
        Ok(Self {
            http,
            base,
            token: config.token.filter(|t| !t.is_empty()),
            call_timeout: config.call_timeout,
            deadline: config.deadline,
            retry: config.retry,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request (retrying transient failures) and returns the 2xx reply as it came.
    ///
    /// `path` starts with `/`; ids in it must already be encoded ([`encode_segment`]).
    pub async fn execute(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawReply, ClientError> {
        let deadline = self.call_deadline();
        let url = format!("{}{}", self.base, path);
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::new(ErrorKind::InvalidResponse, e.to_string()))?;
        let mut attempts = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let mut error = ClientError::new(
                    ErrorKind::Timeout,
                    format!("deadline passed before {method} {path} could be sent"),
                );
                error.attempts = attempts;
                return Err(error);
            }
            attempts += 1;
            match self
                .attempt(method.clone(), &url, body.as_deref(), remaining)
                .await
            {
                Ok((status, bytes)) => {
                    return Ok(RawReply {
                        status,
                        body: bytes,
                        attempts,
                    });
                }
                Err(Failure {
                    mut error,
                    retry_after,
                }) => {
                    error.attempts = attempts;
                    if !error.is_transient() || !self.retry.allows_another(attempts) {
                        return Err(error);
                    }
                    let wait = self.retry.wait(attempts, retry_after);
                    if Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Sends a request and parses the 2xx reply as JSON (`null` for an empty body).
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let reply = self.execute(method, path, body).await?;
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&reply.body).map_err(|e| ClientError {
            attempts: reply.attempts,
            ..ClientError::new(
                ErrorKind::InvalidResponse,
                format!("runner reply is not JSON: {e}"),
            )
        })
    }

    /// `POST /bridge/start` with the contract flat.
    pub async fn start_run(&self, started: &RunStartedV1) -> Result<StartedReply, ClientError> {
        self.post_typed("/bridge/start", started).await
    }

    /// `POST /bridge/record` with the contract flat; the runner dedupes on `(run_id, trial_id)`.
    pub async fn record_trial(
        &self,
        trial: &TrialReportedV1,
    ) -> Result<RecordedReply, ClientError> {
        self.post_typed("/bridge/record", trial).await
    }

    /// `POST /bridge/finalize` with the contract flat.
    pub async fn finalize_run(
        &self,
        finalized: &RunFinalizedV1,
    ) -> Result<FinalizedReply, ClientError> {
        self.post_typed("/bridge/finalize", finalized).await
    }

    /// `POST /propose`: `k` candidates, best first.
    pub async fn propose(&self, request: &ProposeRequest) -> Result<Vec<Proposal>, ClientError> {
        self.post_typed("/propose", request).await
    }

    /// `POST /train`: trains one candidate.
    pub async fn train(&self, request: &TrainRequest) -> Result<TrainReply, ClientError> {
        self.post_typed("/train", request).await
    }

    /// `GET /runs/{run_id}`.
    pub async fn get_run(&self, run_id: &RunId) -> Result<RunView, ClientError> {
        let path = format!("/runs/{}", encode_segment(run_id.as_str()));
        self.get_typed(&path).await
    }

    /// `GET /runs/{run_id}/trials?limit&offset`.
    pub async fn list_trials(
        &self,
        run_id: &RunId,
        limit: u32,
        offset: u64,
    ) -> Result<TrialPage, ClientError> {
        let path = format!(
            "/runs/{}/trials?limit={limit}&offset={offset}",
            encode_segment(run_id.as_str())
        );
        self.get_typed(&path).await
    }

    /// `GET /trials/{trial_id}`.
    pub async fn get_trial(&self, trial_id: &TrialId) -> Result<TrainReply, ClientError> {
        let path = format!("/trials/{}", encode_segment(trial_id.as_str()));
        self.get_typed(&path).await
    }

    /// `GET /runs?limit&offset`.
    pub async fn list_runs(&self, limit: u32, offset: u64) -> Result<RunPage, ClientError> {
        self.get_typed(&format!("/runs?limit={limit}&offset={offset}"))
            .await
    }

    /// `DELETE /runs/{run_id}`.
    pub async fn delete_run(&self, run_id: &RunId) -> Result<(), ClientError> {
        let path = format!("/runs/{}", encode_segment(run_id.as_str()));
        self.execute(Method::DELETE, &path, None).await.map(drop)
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<Value, ClientError> {
        self.send_json(Method::GET, "/healthz", None).await
    }

    fn call_deadline(&self) -> Instant {
        let own = Instant::now() + self.call_timeout;
        self.deadline.map_or(own, |cap| cap.min(own))
    }

    async fn post_typed<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let body = serde_json::to_value(body)
            .map_err(|e| ClientError::new(ErrorKind::InvalidResponse, e.to_string()))?;
        let value = self.send_json(Method::POST, path, Some(&body)).await?;
        decode(path, value)
    }

    async fn get_typed<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        let value = self.send_json(Method::GET, path, None).await?;
        decode(path, value)
    }

    async fn attempt(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let mut request = self
            .http
            .request(method, url)
            .timeout(timeout)
            .header(ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(transport_failure)?;
        if status.is_success() {
            return Ok((status.as_u16(), bytes.to_vec()));
        }
        Err(Failure {
            error: status_error(status, &bytes),
            retry_after,
        })
    }
}

fn decode<R: DeserializeOwned>(path: &str, value: Value) -> Result<R, ClientError> {
    serde_json::from_value(value).map_err(|e| {
        ClientError::new(
            ErrorKind::InvalidResponse,
            format!("unexpected reply from {path}: {e}"),
        )
    })
}

fn transport_failure(error: reqwest::Error) -> Failure {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Transport
    };
    Failure {
        error: ClientError::new(kind, describe(&error)),
        retry_after: None,
    }
}

/// The error and its causes on one line (reqwest's own message names only the outermost layer).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// Builds the error for a non-2xx answer from the runner's `{"error":{"code","message"}}` body, or its text.
fn status_error(status: StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error_object = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error_object
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message = error_object
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let message = if message.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", truncate(&message, MAX_ERROR_MESSAGE))
    };
    ClientError {
        http_status: Some(status.as_u16()),
        code,
        ..ClientError::new(ErrorKind::HttpStatus, message)
    }
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_error_body_gives_code_and_message() {
        let error = status_error(
            StatusCode::CONFLICT,
            br#"{"error":{"code":"conflict","message":"trial t1 exists with other params"}}"#,
        );
        assert_eq!(error.http_status, Some(409));
        assert_eq!(error.code.as_deref(), Some("conflict"));
        assert!(
            error.message.contains("trial t1 exists"),
            "{}",
            error.message
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn a_plain_text_error_keeps_its_text() {
        let error = status_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(error.code, None);
        assert!(error.message.ends_with("upstream down"));
        assert!(error.is_transient());
    }

    #[test]
    fn an_empty_error_body_names_the_status() {
        let error = status_error(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(error.message, "503 Service Unavailable");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("ééé", 2), "éé");
        assert_eq!(truncate("ab", 5), "ab");
    }

    #[test]
    fn a_bad_base_url_is_refused() {
        let err = RunnerClient::new(ClientConfig::new("ftp://host")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidUrl);
        assert!(RunnerClient::new(ClientConfig::new("not a url")).is_err());
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        let client = RunnerClient::new(ClientConfig::new("http://127.0.0.1:1//")).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:1");
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
