//! The client handle and its HTTP transport: authentication, retries with backoff, request counters
//! and decoding of MLflow's error bodies.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::config::{Auth, Config};
use crate::error::{Error, Result};
use crate::quirks;
use crate::retry::is_retryable_status;

/// Async client of an MLflow tracking server.
///
/// Cheap to clone: clones share one connection pool and one set of counters.
#[derive(Clone)]
pub struct MlflowClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    stats: Counters,
    header_injector: Option<HeaderInjector>,
}

/// A hook adding headers to every request the client sends, e.g. a W3C `traceparent` taken from the caller's
/// current span. Called once per attempt, just before sending, on the task that sends.
pub type HeaderInjector = Arc<dyn Fn(&mut HeaderMap) + Send + Sync>;

/// Builds an [`MlflowClient`] with options beyond its [`Config`].
pub struct ClientBuilder {
    config: Config,
    header_injector: Option<HeaderInjector>,
}

impl ClientBuilder {
    /// Sets the hook that adds per-request headers (see [`HeaderInjector`]). Headers it sets replace any of
    /// the same name the client would send, authentication included, so it should stick to its own.
    pub fn header_injector(
        mut self,
        inject: impl Fn(&mut HeaderMap) + Send + Sync + 'static,
    ) -> Self {
        self.header_injector = Some(Arc::new(inject));
        self
    }

    /// The client.
    ///
    /// Reads `config.server_cert_path` when set (a small synchronous file read at construction).
    pub fn build(self) -> Result<MlflowClient> {
        MlflowClient::build(self)
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of the client's counters (shared by all clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// Calls that ended in an error after all retries.
    pub failures: u64,
}

impl std::fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowClient")
            .field("tracking_uri", &self.inner.config.tracking_uri.as_str())
            .field("auth", &self.inner.config.auth)
            .finish()
    }
}

/// How much of a successful reply `execute` reads before returning.
pub(crate) trait Finish {
    /// What the caller gets.
    type Out: Send;
    /// Turns a successful reply into the output; a failure here counts as a transport error and is retried.
    fn finish(resp: Response) -> impl Future<Output = reqwest::Result<Self::Out>> + Send;
}

/// Reads the whole body.
pub(crate) struct FullBody;

impl Finish for FullBody {
    type Out = Bytes;
    fn finish(resp: Response) -> impl Future<Output = reqwest::Result<Bytes>> + Send {
        resp.bytes()
    }
}

/// Returns the reply with its body unread, for streaming.
pub(crate) struct Streamed;

impl Finish for Streamed {
    type Out = Response;
    async fn finish(resp: Response) -> reqwest::Result<Response> {
        Ok(resp)
    }
}

impl MlflowClient {
    /// A client for `config`.
    ///
    /// Reads `config.server_cert_path` when set (a small synchronous file read at construction).
    pub fn new(config: Config) -> Result<Self> {
        Self::builder(config).build()
    }

    /// A builder for a client of `config`, for options such as a [`HeaderInjector`].
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            header_injector: None,
        }
    }

    fn build(options: ClientBuilder) -> Result<Self> {
        let ClientBuilder {
            config,
            header_injector,
        } = options;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .user_agent(concat!("mlflow-client-rust/", env!("CARGO_PKG_VERSION")));
        if config.insecure_tls {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(path) = &config.server_cert_path {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Config {
                name: "MLFLOW_TRACKING_SERVER_CERT_PATH".into(),
                message: e.to_string(),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| Error::Config {
            name: "http client".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                stats: Counters::default(),
                header_injector,
            }),
        })
    }

    /// A client configured from the environment (see [`Config::from_lookup`]); `None` when
    /// `MLFLOW_TRACKING_URI` is unset.
    pub fn from_env() -> Result<Option<Self>> {
        Config::from_env()?.map(Self::new).transpose()
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The tracking server's base URL.
    pub fn tracking_uri(&self) -> &url::Url {
        &self.inner.config.tracking_uri
    }

    /// Counters of requests, retries and failed calls since the client was created.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.stats;
        ClientStats {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
        }
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests_total(&self) -> u64 {
        self.inner.stats.requests.load(Ordering::Relaxed)
    }

    /// Retries sent so far.
    pub fn retries_total(&self) -> u64 {
        self.inner.stats.retries.load(Ordering::Relaxed)
    }

    /// Checks that the server answers `GET /health`.
    pub async fn health(&self) -> Result<()> {
        let url = format!(
            "{}/health",
            self.inner
                .config
                .tracking_uri
                .as_str()
                .trim_end_matches('/')
        );
        let http = &self.inner.http;
        self.execute::<FullBody, _, _>("health", || {
            let req = http.get(&url);
            async move { Ok(req) }
        })
        .await
        .map(drop)
    }

    /// The underlying HTTP client (shared connection pool).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `{tracking_uri}/api/2.0/{path}`.
    pub(crate) fn api_url(&self, path: &str) -> String {
        self.inner.config.api_url(path)
    }

    /// Sends a JSON body to `mlflow/{endpoint}` and decodes the JSON reply.
    pub(crate) async fn call<B, R>(&self, method: Method, endpoint: &str, body: &B) -> Result<R>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let payload = Bytes::from(serde_json::to_vec(body).map_err(|e| {
            Error::InvalidArgument(format!("cannot encode request for {endpoint}: {e}"))
        })?);
        self.call_raw(method, endpoint, payload).await
    }

    /// Sends an already encoded JSON body to `mlflow/{endpoint}` and decodes the JSON reply.
    pub(crate) async fn call_raw<R: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        payload: Bytes,
    ) -> Result<R> {
        let url = self.api_url(&format!("mlflow/{endpoint}"));
        let http = &self.inner.http;
        let body = self
            .execute::<FullBody, _, _>(endpoint, || {
                let req = http
                    .request(method.clone(), &url)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(payload.clone());
                async move { Ok(req) }
            })
            .await?;
        decode(endpoint, &body)
    }

    /// Sends a GET with query parameters to `mlflow/{endpoint}` and decodes the JSON reply.
    pub(crate) async fn get<R: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
    ) -> Result<R> {
        let url = self.api_url(&format!("mlflow/{endpoint}"));
        let http = &self.inner.http;
        let body = self
            .execute::<FullBody, _, _>(endpoint, || {
                let req = http.get(&url).query(query);
                async move { Ok(req) }
            })
            .await?;
        decode(endpoint, &body)
    }

    /// Sends the request built by `make` (called once per attempt), retrying as the policy says. The call,
    /// retries included, runs in a client span named after the endpoint.
    pub(crate) async fn execute<F, M, Fut>(&self, endpoint: &str, make: M) -> Result<F::Out>
    where
        F: Finish,
        M: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder>>,
    {
        let span = tracing::info_span!(
            "mlflow",
            otel.name = %format_args!("mlflow {endpoint}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            mlflow.endpoint = endpoint,
            server.address = self.inner.config.tracking_uri.host_str().unwrap_or_default(),
        );
        let result = self
            .execute_inner::<F, M, Fut>(endpoint, make)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            span.record("otel.status_code", "error");
            self.inner.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn execute_inner<F, M, Fut>(&self, endpoint: &str, make: M) -> Result<F::Out>
    where
        F: Finish,
        M: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder>>,
    {
        let policy = &self.inner.config.retry;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let request = self.with_injected_headers(self.authorize(make().await?));
            self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
            let may_retry = attempt <= policy.max_retries;
            let sent = std::time::Instant::now();
            let reply = request.send().await;
            tracing::debug!(
                endpoint,
                attempt,
                status = reply.as_ref().map_or(0, |r| r.status().as_u16()),
                elapsed_ms = sent.elapsed().as_secs_f64() * 1e3,
                "MLflow request"
            );
            let failure = match reply {
                Ok(resp) if resp.status().is_success() => match F::finish(resp).await {
                    Ok(out) => return Ok(out),
                    Err(e) => Failure::Transport(e),
                },
                Ok(resp)
                    if resp.status().as_u16() == 500 && endpoint == quirks::ARTIFACTS_ENDPOINT =>
                {
                    match quirks::missing_s3_artifact(
                        error_from_reply(endpoint, resp, attempt).await,
                    ) {
                        Ok(not_found) => return Err(not_found),
                        Err(other) if !may_retry => return Err(other),
                        Err(_) => Failure::Status(500, None),
                    }
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if !(may_retry && is_retryable_status(status)) {
                        return Err(error_from_reply(endpoint, resp, attempt).await);
                    }
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Failure::Status(status, retry_after)
                }
                Err(e) => Failure::Transport(e),
            };
            let (status, retry_after) = match failure {
                Failure::Transport(e) => {
                    if !may_retry || e.is_builder() {
                        return Err(Error::Transport {
                            endpoint: endpoint.to_owned(),
                            attempts: attempt,
                            message: error_chain(&e),
                            source: e,
                        });
                    }
                    tracing::warn!(endpoint, attempt, error = %error_chain(&e), "MLflow request failed; retrying");
                    (None, None)
                }
                Failure::Status(status, retry_after) => {
                    tracing::warn!(
                        endpoint,
                        attempt,
                        status,
                        "MLflow answered a retryable status; retrying"
                    );
                    (Some(status), retry_after)
                }
            };
            let wait = policy.wait_for(attempt, status, retry_after.as_deref());
            self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn with_injected_headers(&self, request: RequestBuilder) -> RequestBuilder {
        let Some(inject) = &self.inner.header_injector else {
            return request;
        };
        let mut headers = HeaderMap::new();
        inject(&mut headers);
        if headers.is_empty() {
            request
        } else {
            request.headers(headers)
        }
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.inner.config.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

enum Failure {
    Transport(reqwest::Error),
    Status(u16, Option<String>),
}

/// Decodes a successful JSON reply; an empty body counts as `{}`.
pub(crate) fn decode<R: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<R> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        endpoint: endpoint.to_owned(),
        message: format!("{e} in {}", preview(body)),
    })
}

/// Builds the typed error for a non-success reply.
pub(crate) async fn error_from_reply(endpoint: &str, resp: Response, attempts: u32) -> Error {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => Error::Api {
            endpoint: endpoint.to_owned(),
            status,
            error_code: e.error_code,
            message: e.message,
            attempts,
        },
        Err(_) => Error::Http {
            endpoint: endpoint.to_owned(),
            status,
            body: preview(&body),
            attempts,
        },
    }
}

fn preview(body: &[u8]) -> String {
    const MAX: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]).into_owned();
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text
    }
}

/// The error and its causes on one line (reqwest's top-level message alone hides "connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::AUTHORIZATION;

    fn authorization(auth: Auth) -> Option<String> {
        let config = Config::new("http://127.0.0.1:1")
            .expect("config")
            .with_auth(auth);
        let client = MlflowClient::new(config).expect("client");
        let request = client
            .authorize(client.http().get("http://127.0.0.1:1/x"))
            .build()
            .expect("request");
        request
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn auth_headers() {
        assert_eq!(authorization(Auth::None), None);
        assert_eq!(
            authorization(Auth::Basic {
                username: "user".into(),
                password: "pass".into()
            })
            .as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
        assert_eq!(
            authorization(Auth::Bearer("tok".into())).as_deref(),
            Some("Bearer tok")
        );
    }

    #[tokio::test]
    async fn the_header_injector_adds_its_headers_to_every_attempt() {
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        Mock::given(method("GET"))
            .and(path("/health"))
            .and(header("traceparent", traceparent))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/health"))
            .and(header("traceparent", traceparent))
            .and(header("authorization", "Bearer tok"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let config = Config::new(&server.uri())
            .expect("config")
            .with_auth(Auth::Bearer("tok".into()))
            .with_retry(crate::RetryPolicy {
                backoff_factor: 0.0,
                backoff_jitter: 0.0,
                ..crate::RetryPolicy::default()
            });
        let client = MlflowClient::builder(config)
            .header_injector(move |headers| {
                headers.insert("traceparent", HeaderValue::from_static(traceparent));
            })
            .build()
            .expect("client");
        client.health().await.expect("healthy after one retry");
        assert_eq!(client.stats().retries, 1);
    }

    #[test]
    fn decoding_and_error_previews() {
        #[derive(serde::Deserialize)]
        struct Reply {
            experiment_id: String,
        }
        let r: Reply = decode("e", br#"{"experiment_id":"7"}"#).expect("decode");
        assert_eq!(r.experiment_id, "7");
        let empty: crate::api::Empty = decode("e", b"  ").expect("empty body is {}");
        let _ = empty;
        match decode::<Reply>("experiments/create", b"<html>oops</html>") {
            Err(Error::Decode { endpoint, message }) => {
                assert_eq!(endpoint, "experiments/create");
                assert!(message.contains("<html>oops</html>"));
            }
            other => panic!(
                "expected a decode error, got {:?}",
                other.map(|r| r.experiment_id)
            ),
        }
        let long = vec![b'x'; 2000];
        assert_eq!(preview(&long).chars().count(), 513);
    }
}
