//! Typed settings read once from the environment (DESIGN §2.1).
//!
//! Every variable is parsed here; a bad value is a startup error naming the variable, so the rest of the
//! program only ever sees valid settings.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A configuration error: which variable, and why its value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// The value it held.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// Which SQL backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A database URL normalised for sqlx, with its backend.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// The backend the URL selects.
    pub kind: DatabaseKind,
    /// The URL as sqlx expects it (`ecto://` rewritten to `postgres://`).
    pub url: String,
}

impl DatabaseUrl {
    /// Parses `sqlite://…`, `postgres://…`, `postgresql://…` or `ecto://…` (Postgres).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
            "expected a URL such as sqlite://path or postgres://host/db".to_string()
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                if rest.is_empty() {
                    return Err("sqlite URL needs a path".into());
                }
                let url = if rest.contains("mode=") {
                    raw.to_string()
                } else if rest.contains('?') {
                    format!("{raw}&mode=rwc")
                } else {
                    format!("{raw}?mode=rwc")
                };
                Ok(Self {
                    kind: DatabaseKind::Sqlite,
                    url,
                })
            }
            "postgres" | "postgresql" | "ecto" => {
                if rest.is_empty() {
                    return Err("postgres URL needs a host".into());
                }
                Ok(Self {
                    kind: DatabaseKind::Postgres,
                    url: format!("postgres://{rest}"),
                })
            }
            other => Err(format!(
                "unsupported scheme `{other}` (use sqlite://, postgres:// or ecto://)"
            )),
        }
    }

    /// The URL with any password replaced, safe to log.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// MLflow tracking settings (tracking is off when the URI is unset).
#[derive(Debug, Clone)]
pub struct MlflowSettings {
    /// Tracking server base URL.
    pub tracking_uri: String,
    /// Experiment holding every run, created if missing.
    pub experiment_name: String,
}

/// S3-compatible object store settings (artifacts go to the local dir when unset).
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `http://minio:9000`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Bucket for artifacts when MLflow does not dictate one.
    pub bucket: String,
    /// Signing region.
    pub region: String,
}

/// How spans travel to the OTLP collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP `POST …/v1/traces` (`http/protobuf`, the default).
    HttpProtobuf,
    /// gRPC `TraceService/Export` (`grpc`).
    Grpc,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            _ => Err("expected http/protobuf or grpc (http/json is not supported)".into()),
        }
    }
}

/// OpenTelemetry trace export settings (export is off when no OTLP endpoint is set).
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// Where spans go: the full traces URL over HTTP (`…/v1/traces`), the collector's address over gRPC.
    pub traces_endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Further resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), in the order given.
    pub resource_attributes: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
}

/// All runner settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub bind: SocketAddr,
    /// Home of the embedded defaults.
    pub data_dir: PathBuf,
    /// SQL database.
    pub database: DatabaseUrl,
    /// MLflow tracking, if configured.
    pub mlflow: Option<MlflowSettings>,
    /// S3 store, if configured.
    pub s3: Option<S3Settings>,
    /// Local artifact directory used when S3 is not configured.
    pub artifact_dir: PathBuf,
    /// Directories `file://` datasets may be read from.
    pub dataset_dirs: Vec<PathBuf>,
    /// Hosts `http(s)://` datasets may be fetched from.
    pub dataset_http_allow: Vec<String>,
    /// Bearer token required on every route but health and metrics, if set.
    pub api_token: Option<String>,
    /// Trainings running at once.
    pub train_concurrency: usize,
    /// Trainings allowed to wait before `/train` answers 429.
    pub train_queue: usize,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// How long an unreported proposal keeps counting as pending.
    pub pending_ttl: Duration,
    /// How long a training claim lives without a heartbeat before another replica takes it back.
    pub claim_lease: Duration,
    /// Longest a training may run (checked after every epoch) before it stops and fails; `None` = no limit.
    pub train_time_limit: Option<Duration>,
    /// OTLP trace export, if an endpoint is set.
    pub otel: Option<OtelSettings>,
    /// Log filter directive.
    pub log_filter: String,
}

impl Settings {
    /// Reads settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads settings from an explicit variable map (used by tests).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let port: u16 = env.parse("PORT", 8088)?;
        let bind_ip: IpAddr = env.parse("RUNNER_BIND", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let data_dir = PathBuf::from(env.get("RUNNER_DATA_DIR").unwrap_or("./thunderhelm-data"));
        let database = match env.get("RUNNER_DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(raw).map_err(|reason| ConfigError {
                var: "RUNNER_DATABASE_URL",
                value: redact_url(raw),
                reason,
            })?,
            None => DatabaseUrl {
                kind: DatabaseKind::Sqlite,
                url: format!("sqlite://{}?mode=rwc", data_dir.join("runner.db").display()),
            },
        };
        let mlflow = match env.get("MLFLOW_TRACKING_URI") {
            Some(uri) => {
                let parsed = url::Url::parse(uri).map_err(|e| ConfigError {
                    var: "MLFLOW_TRACKING_URI",
                    value: uri.to_string(),
                    reason: e.to_string(),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError {
                        var: "MLFLOW_TRACKING_URI",
                        value: uri.to_string(),
                        reason: "only http:// and https:// tracking servers are supported".into(),
                    });
                }
                Some(MlflowSettings {
                    tracking_uri: uri.trim_end_matches('/').to_string(),
                    experiment_name: env
                        .get("MLFLOW_EXPERIMENT_NAME")
                        .unwrap_or("thunderline-cerebros-demo")
                        .to_string(),
                })
            }
            None => None,
        };
        let s3 = s3_settings(&env)?;
        let dataset_dirs = match env.get("RUNNER_DATASET_DIRS") {
            Some(list) => list
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => vec![data_dir.join("datasets")],
        };
        let dataset_http_allow = env
            .get("RUNNER_DATASET_HTTP_ALLOW")
            .map(|list| {
                list.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let train_concurrency: usize = env.parse("RUNNER_TRAIN_CONCURRENCY", cores)?;
        if train_concurrency == 0 {
            return Err(ConfigError {
                var: "RUNNER_TRAIN_CONCURRENCY",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let log_filter = env
            .get("RUST_LOG")
            .or_else(|| env.get("LOG_LEVEL"))
            .unwrap_or("info")
            .to_string();
        Ok(Self {
            bind: SocketAddr::new(bind_ip, port),
            artifact_dir: data_dir.join("artifacts"),
            data_dir,
            database,
            mlflow,
            s3,
            dataset_dirs,
            dataset_http_allow,
            api_token: env.get("RUNNER_API_TOKEN").map(str::to_string),
            train_concurrency,
            train_queue: env.parse("RUNNER_TRAIN_QUEUE", 64)?,
            max_body_bytes: env.parse("RUNNER_MAX_BODY_BYTES", 32 * 1024 * 1024)?,
            pending_ttl: Duration::from_secs(env.parse("RUNNER_PENDING_TTL_SECS", 3600)?),
            claim_lease: Duration::from_secs(env.parse("RUNNER_CLAIM_LEASE_SECS", 30)?.max(1)),
            train_time_limit: match env.parse("RUNNER_TRAIN_TIMEOUT_SECS", 3600u64)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            otel: otel_settings(&env)?,
            log_filter,
        })
    }
}

fn s3_settings(env: &Env<'_>) -> Result<Option<S3Settings>, ConfigError> {
    let Some(endpoint) = env
        .get("MINIO_ENDPOINT")
        .or_else(|| env.get("MLFLOW_S3_ENDPOINT_URL"))
        .or_else(|| env.get("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
    else {
        return Ok(None);
    };
    let endpoint = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    url::Url::parse(&endpoint).map_err(|e| ConfigError {
        var: "MINIO_ENDPOINT",
        value: endpoint.clone(),
        reason: e.to_string(),
    })?;
    let access_key = env
        .get("MINIO_ACCESS_KEY")
        .or_else(|| env.get("AWS_ACCESS_KEY_ID"))
        .ok_or_else(|| ConfigError {
            var: "MINIO_ACCESS_KEY",
            value: String::new(),
            reason: "required when an S3 endpoint is set (or AWS_ACCESS_KEY_ID)".into(),
        })?;
    let secret_key = env
        .get("MINIO_SECRET_KEY")
        .or_else(|| env.get("AWS_SECRET_ACCESS_KEY"))
        .ok_or_else(|| ConfigError {
            var: "MINIO_SECRET_KEY",
            value: String::new(),
            reason: "required when an S3 endpoint is set (or AWS_SECRET_ACCESS_KEY)".into(),
        })?;
    Ok(Some(S3Settings {
        endpoint,
        access_key: access_key.to_string(),
        secret_key: secret_key.to_string(),
        bucket: env
            .get("MINIO_BUCKET")
            .unwrap_or("thunderline-artifacts")
            .to_string(),
        region: env
            .get("MINIO_REGION")
            .or_else(|| env.get("AWS_REGION"))
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .unwrap_or("us-east-1")
            .to_string(),
    }))
}

/// The OTLP trace export settings, read as the OpenTelemetry SDK specification names them; `None` when no
/// endpoint is set or `OTEL_SDK_DISABLED=true`.
fn otel_settings(env: &Env<'_>) -> Result<Option<OtelSettings>, ConfigError> {
    let protocol_var = if env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    } else {
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    };
    let protocol: OtlpProtocol = env.parse(protocol_var, OtlpProtocol::HttpProtobuf)?;
    let timeout_var = if env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").is_some() {
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
    } else {
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    };
    let timeout = Duration::from_millis(env.parse(timeout_var, 10_000u64)?.max(1));
    let resource_attributes = match env.get("OTEL_RESOURCE_ATTRIBUTES") {
        Some(raw) => parse_resource_attributes(raw).map_err(|reason| ConfigError {
            var: "OTEL_RESOURCE_ATTRIBUTES",
            value: raw.to_string(),
            reason,
        })?,
        None => Vec::new(),
    };
    let disabled = env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (var, traces_endpoint) = if let Some(url) = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.to_string())
    } else if let Some(base) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let url = match protocol {
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            OtlpProtocol::Grpc => base.to_string(),
        };
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    } else {
        return Ok(None);
    };
    let parsed = url::Url::parse(&traces_endpoint).map_err(|e| ConfigError {
        var,
        value: traces_endpoint.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError {
            var,
            value: traces_endpoint,
            reason: "expected an http:// or https:// URL with a host".into(),
        });
    }
    if disabled {
        return Ok(None);
    }
    let service_name = env
        .get("OTEL_SERVICE_NAME")
        .map(str::to_string)
        .or_else(|| {
            resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "cerebros-runner".to_string());
    Ok(Some(OtelSettings {
        traces_endpoint,
        protocol,
        service_name,
        resource_attributes,
        timeout,
    }))
}

/// Parses `key1=value1,key2=value2` (W3C Baggage octets, values percent-encoded).
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("`{pair}` has an empty key"));
        }
        let value =
            percent_decode(value.trim()).ok_or_else(|| format!("`{pair}` has a bad %-escape"))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `None` on a malformed escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `raw` with any password replaced by `***`.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Environment lookup treating empty values as unset.
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError {
                var,
                value: raw.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_environment_gives_the_embedded_defaults() {
        let s = Settings::from_vars(&HashMap::new()).unwrap();
        assert_eq!(s.bind.port(), 8088);
        assert_eq!(s.database.kind, DatabaseKind::Sqlite);
        assert!(
            s.database
                .url
                .ends_with("thunderhelm-data/runner.db?mode=rwc")
        );
        assert!(s.mlflow.is_none() && s.s3.is_none() && s.api_token.is_none());
        assert_eq!(s.train_queue, 64);
        assert_eq!(s.max_body_bytes, 33_554_432);
        assert!(s.otel.is_none());
    }

    #[test]
    fn otlp_endpoint_turns_trace_export_on() {
        let s = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=dev, team=a%2Cb",
            ),
        ]))
        .unwrap();
        let otel = s.otel.unwrap();
        assert_eq!(otel.traces_endpoint, "http://collector:4318/v1/traces");
        assert_eq!(otel.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(otel.service_name, "cerebros-runner");
        assert_eq!(
            otel.resource_attributes,
            vec![
                ("deployment.environment".to_string(), "dev".to_string()),
                ("team".to_string(), "a,b".to_string())
            ]
        );
        assert_eq!(otel.timeout, Duration::from_secs(10));
    }

    #[test]
    fn grpc_keeps_the_endpoint_and_the_traces_endpoint_wins() {
        let s = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "runner-a"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored"),
        ]))
        .unwrap();
        let otel = s.otel.unwrap();
        assert_eq!(
            (otel.traces_endpoint.as_str(), otel.protocol),
            ("http://collector:4317", OtlpProtocol::Grpc)
        );
        assert_eq!(otel.service_name, "runner-a");
        let s = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://other:9999/traces",
            ),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
        ]))
        .unwrap();
        let otel = s.otel.unwrap();
        assert_eq!(otel.traces_endpoint, "http://other:9999/traces");
        assert_eq!(otel.service_name, "from-attrs");
    }

    #[test]
    fn bad_otel_values_name_the_variable() {
        let err = Settings::from_vars(&vars(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]))
            .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let err = Settings::from_vars(&vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]))
            .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
        let err =
            Settings::from_vars(&vars(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")])).unwrap_err();
        assert_eq!(err.var, "OTEL_RESOURCE_ATTRIBUTES");
        let s = Settings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]))
        .unwrap();
        assert!(s.otel.is_none());
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let err = Settings::from_vars(&vars(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(err.var, "PORT");
        assert!(err.to_string().contains("PORT"));
    }

    #[test]
    fn ecto_urls_are_postgres() {
        let db = DatabaseUrl::parse("ecto://u:p@db:5432/thunderline").unwrap();
        assert_eq!(db.kind, DatabaseKind::Postgres);
        assert_eq!(db.url, "postgres://u:p@db:5432/thunderline");
        assert!(!db.redacted().contains(":p@"));
    }

    #[test]
    fn unknown_database_scheme_is_refused() {
        let err =
            Settings::from_vars(&vars(&[("RUNNER_DATABASE_URL", "mysql://x/y")])).unwrap_err();
        assert_eq!(err.var, "RUNNER_DATABASE_URL");
    }

    #[test]
    fn s3_endpoint_without_keys_is_refused() {
        let err =
            Settings::from_vars(&vars(&[("MINIO_ENDPOINT", "http://minio:9000")])).unwrap_err();
        assert_eq!(err.var, "MINIO_ACCESS_KEY");
    }

    #[test]
    fn aws_variables_are_honoured() {
        let s = Settings::from_vars(&vars(&[
            ("MLFLOW_S3_ENDPOINT_URL", "http://s3:8333"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]))
        .unwrap();
        let s3 = s.s3.unwrap();
        assert_eq!(
            (s3.endpoint.as_str(), s3.bucket.as_str()),
            ("http://s3:8333", "thunderline-artifacts")
        );
    }
}
