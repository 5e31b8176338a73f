//! Client configuration, read from the same environment variables as MLflow's Python client.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// Most retries accepted (`_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT` in MLflow).
pub const MAX_RETRIES_LIMIT: u32 = 10;
/// Largest backoff factor accepted (`_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT` in MLflow).
pub const MAX_BACKOFF_FACTOR_LIMIT: f64 = 120.0;

/// How requests authenticate.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic (`MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// Bearer token (`MLFLOW_TRACKING_TOKEN`).
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Everything the client needs to reach a tracking server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the tracking server, e.g. `http://127.0.0.1:5000` (a path prefix is kept).
    pub tracking_uri: Url,
    /// Authentication.
    pub auth: Auth,
    /// Skip TLS certificate verification (`MLFLOW_TRACKING_INSECURE_TLS`).
    pub insecure_tls: bool,
    /// Extra PEM CA certificate to trust (`MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub server_cert_path: Option<PathBuf>,
    /// Connect timeout and the longest wait for any read (`MLFLOW_HTTP_REQUEST_TIMEOUT`, default 120 s).
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Config {
    /// A configuration for `tracking_uri` with MLflow's defaults: no auth, 120 s timeout, 7 retries.
    pub fn new(tracking_uri: &str) -> Result<Self> {
        Ok(Self {
            tracking_uri: parse_tracking_uri(tracking_uri)?,
            auth: Auth::None,
            insecure_tls: false,
            server_cert_path: None,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        })
    }

    /// Sets the authentication.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the connect/read timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the configuration from the process environment; `None` when `MLFLOW_TRACKING_URI` is unset
    /// or empty.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a stand-in for the environment).
    ///
    /// Variables: `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` (Basic;
    /// wins over the token when both are set, as in the Python client), `MLFLOW_TRACKING_TOKEN` (Bearer),
    /// `MLFLOW_TRACKING_INSECURE_TLS`, `MLFLOW_TRACKING_SERVER_CERT_PATH`, `MLFLOW_HTTP_REQUEST_TIMEOUT`,
    /// `MLFLOW_HTTP_REQUEST_MAX_RETRIES`, `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`,
    /// `MLFLOW_HTTP_REQUEST_BACKOFF_JITTER`, `MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let Some(uri) = get("MLFLOW_TRACKING_URI") else {
            return Ok(None);
        };
        let mut config =
            Self::new(uri.trim()).map_err(|e| rename_config_error(e, "MLFLOW_TRACKING_URI"))?;

        let username = get("MLFLOW_TRACKING_USERNAME");
        let password = get("MLFLOW_TRACKING_PASSWORD");
        config.auth = match (username, password, get("MLFLOW_TRACKING_TOKEN")) {
            (Some(username), Some(password), _) => Auth::Basic { username, password },
            (_, _, Some(token)) => Auth::Bearer(token),
            _ => Auth::None,
        };

        if let Some(v) = get("MLFLOW_TRACKING_INSECURE_TLS") {
            config.insecure_tls = parse_bool("MLFLOW_TRACKING_INSECURE_TLS", &v)?;
        }
        config.server_cert_path = get("MLFLOW_TRACKING_SERVER_CERT_PATH").map(PathBuf::from);
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_TIMEOUT") {
            let secs = parse_number("MLFLOW_HTTP_REQUEST_TIMEOUT", &v)?;
            if secs <= 0.0 {
                return Err(config_error(
                    "MLFLOW_HTTP_REQUEST_TIMEOUT",
                    "must be positive",
                ));
            }
            config.timeout = Duration::try_from_secs_f64(secs)
                .map_err(|e| config_error("MLFLOW_HTTP_REQUEST_TIMEOUT", &e.to_string()))?;
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") {
            let retries: u32 = v.trim().parse().map_err(|_| {
                config_error(
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                    "must be a non-negative integer",
                )
            })?;
            if retries > MAX_RETRIES_LIMIT {
                return Err(config_error(
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                    &format!("{retries} is above the limit of {MAX_RETRIES_LIMIT}"),
                ));
            }
            config.retry.max_retries = retries;
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") {
            let factor = parse_number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", &v)?;
            if !(0.0..=MAX_BACKOFF_FACTOR_LIMIT).contains(&factor) {
                return Err(config_error(
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                    &format!("must be between 0 and {MAX_BACKOFF_FACTOR_LIMIT}"),
                ));
            }
            config.retry.backoff_factor = factor;
        }
        if let Some(v) = get("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER") {
            let jitter = parse_number("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", &v)?;
            if jitter < 0.0 {
                return Err(config_error(
                    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
                    "must be >= 0",
                ));
            }
            config.retry.backoff_jitter = jitter;
        }
        if let Some(v) = get("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER") {
            config.retry.respect_retry_after =
                parse_bool("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", &v)?;
        }
        Ok(Some(config))
    }

    /// `{tracking_uri}/api/2.0/{path}` as a string.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!(
            "{}/api/2.0/{}",
            self.tracking_uri.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

fn parse_tracking_uri(uri: &str) -> Result<Url> {
    let url = Url::parse(uri)
        .map_err(|e| config_error("tracking_uri", &format!("{uri:?} is not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(config_error(
            "tracking_uri",
            &format!(
                "{uri:?} is not an http(s) tracking server; file, sqlite and databricks stores are not supported"
            ),
        )),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(config_error(name, "must be one of true, false, 1, 0")),
    }
}

fn parse_number(name: &str, value: &str) -> Result<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| config_error(name, "must be a number"))
}

fn config_error(name: &str, message: &str) -> Error {
    Error::Config {
        name: name.to_owned(),
        message: message.to_owned(),
    }
}

fn rename_config_error(error: Error, name: &str) -> Error {
    match error {
        Error::Config { message, .. } => config_error(name, &message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Option<Config>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn unset_uri_is_none() {
        assert!(from(&[]).expect("ok").is_none());
        assert!(from(&[("MLFLOW_TRACKING_URI", " ")]).expect("ok").is_none());
    }

    #[test]
    fn defaults_match_python_client() {
        let c = from(&[("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")])
            .expect("ok")
            .expect("some");
        assert_eq!(c.auth, Auth::None);
        assert_eq!(c.timeout, Duration::from_secs(120));
        assert_eq!(c.retry, RetryPolicy::default());
        assert!(!c.insecure_tls);
        assert_eq!(
            c.api_url("mlflow/runs/get"),
            "http://127.0.0.1:5000/api/2.0/mlflow/runs/get"
        );
    }

    #[test]
    fn path_prefix_is_kept() {
        let c = Config::new("https://example.org/mlflow/").expect("ok");
        assert_eq!(
            c.api_url("mlflow/experiments/get"),
            "https://example.org/mlflow/api/2.0/mlflow/experiments/get"
        );
    }

    #[test]
    fn basic_wins_over_token_when_both_set() {
        let c = from(&[
            ("MLFLOW_TRACKING_URI", "http://h:1"),
            ("MLFLOW_TRACKING_USERNAME", "u"),
            ("MLFLOW_TRACKING_PASSWORD", "p"),
            ("MLFLOW_TRACKING_TOKEN", "t"),
        ])
        .expect("ok")
        .expect("some");
        assert_eq!(
            c.auth,
            Auth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let c = from(&[
            ("MLFLOW_TRACKING_URI", "http://h:1"),
            ("MLFLOW_TRACKING_USERNAME", "u"),
            ("MLFLOW_TRACKING_TOKEN", "t"),
        ])
        .expect("ok")
        .expect("some");
        assert_eq!(c.auth, Auth::Bearer("t".into()));
        assert_eq!(format!("{:?}", c.auth), "Bearer(<redacted>)");
    }

    #[test]
    fn retry_and_tls_variables() {
        let c = from(&[
            ("MLFLOW_TRACKING_URI", "http://h:1"),
            ("MLFLOW_TRACKING_INSECURE_TLS", "TRUE"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
            ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.5"),
            ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0"),
            ("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "false"),
        ])
        .expect("ok")
        .expect("some");
        assert!(c.insecure_tls);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.retry.max_retries, 3);
        assert_eq!(c.retry.backoff_factor, 0.5);
        assert_eq!(c.retry.backoff_jitter, 0.0);
        assert!(!c.retry.respect_retry_after);
    }

    #[test]
    fn bad_values_are_config_errors() {
        for (name, value) in [
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "11"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1"),
            ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "121"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "0"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "soon"),
            ("MLFLOW_TRACKING_INSECURE_TLS", "yes"),
            ("MLFLOW_TRACKING_URI", "file:///tmp/mlruns"),
            ("MLFLOW_TRACKING_URI", "databricks"),
        ] {
            let mut vars = vec![("MLFLOW_TRACKING_URI", "http://h:1")];
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            match from(&vars) {
                Err(Error::Config { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}={value}: expected a config error, got {other:?}"),
            }
        }
    }
}
