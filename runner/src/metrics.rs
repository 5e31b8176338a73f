//! Prometheus metrics of the runner: one explicit [`Registry`] (no globals), typed families, recording
//! methods for each part of the service, the text exposition for `GET /metrics`, and an axum middleware
//! counting HTTP requests by route template.
//!
//! Label values are bounded so a caller cannot grow the series count: routes are axum's templates
//! (`/runs/{run_id}`, never the raw path; `unmatched` for everything the router did not match), methods
//! outside the standard set read `other`, and every other label comes from a closed enum.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::domain::TrialStatus;
use crate::search::Strategy;

/// `Content-Type` of [`Metrics::render`]'s output: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpDurationLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StrategyLabels {
    strategy: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// What became of one outbox delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered; the task is done.
    Delivered,
    /// Failed transiently; the task will be retried.
    Retried,
    /// Failed for good; the task will not be retried.
    Failed,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// Which way bytes went between the runner and the object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Direction {
    /// Written to the store.
    Upload,
    /// Read from the store.
    Download,
}

impl S3Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
        }
    }
}

/// Outbox task kinds longer than this are reported as `other` (kinds are short names set in code).
const MAX_KIND_LEN: usize = 64;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    // 1 ms … ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn propose_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn train_histogram() -> Histogram {
    // 50 ms … ~27 min.
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

/// The runner's metrics; share it as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpDurationLabels>,
    propose_candidates: Family<StrategyLabels, Counter>,
    propose_duration: Histogram,
    train_runs: Family<OutcomeLabels, Counter>,
    train_duration: Histogram,
    train_queue_depth: Gauge,
    train_running: Gauge,
    outbox_backlog: Gauge,
    outbox_deliveries: Family<DeliveryLabels, Counter>,
    mlflow_requests: Counter,
    mlflow_retries: Counter,
    /// Serialises [`Metrics::observe_mlflow_client`] so two callers cannot both add the same delta.
    mlflow_sync: Mutex<()>,
    s3_bytes: Family<DirectionLabels, Counter>,
    s3_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the registry with every family registered (and no series until something is recorded).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<HttpDurationLabels> =
            Family::new_with_constructor(http_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route template and method",
            Unit::Seconds,
            http_duration.clone(),
        );
        let propose_candidates = Family::<StrategyLabels, Counter>::default();
        registry.register(
            "propose_candidates",
            "Candidates proposed, by strategy",
            propose_candidates.clone(),
        );
        let propose_duration = propose_histogram();
        registry.register_with_unit(
            "propose_duration",
            "Time to compute one /propose answer",
            Unit::Seconds,
            propose_duration.clone(),
        );
        let train_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "train_runs",
            "Trainings finished, by outcome",
            train_runs.clone(),
        );
        let train_duration = train_histogram();
        registry.register_with_unit(
            "train_duration",
            "Wall time of one training",
            Unit::Seconds,
            train_duration.clone(),
        );
        let train_queue_depth = Gauge::default();
        registry.register(
            "train_queue_depth",
            "Trainings waiting for a slot",
            train_queue_depth.clone(),
        );
        let train_running = Gauge::default();
        registry.register(
            "train_running",
            "Trainings running now",
            train_running.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "MLflow and S3 writes waiting in the outbox",
            outbox_backlog.clone(),
        );
        let outbox_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "outbox_deliveries",
            "Outbox delivery attempts, by task kind and outcome",
            outbox_deliveries.clone(),
        );
        let mlflow_requests = Counter::default();
        registry.register(
            "mlflow_client_requests",
            "HTTP requests the MLflow client sent, retries included",
            mlflow_requests.clone(),
        );
        let mlflow_retries = Counter::default();
        registry.register(
            "mlflow_client_retries",
            "MLflow client requests that retried an earlier attempt",
            mlflow_retries.clone(),
        );
        let s3_bytes = Family::<DirectionLabels, Counter>::default();
        registry.register_with_unit(
            "s3",
            "Bytes moved to and from the object store, by direction",
            Unit::Bytes,
            s3_bytes.clone(),
        );
        let s3_errors = Counter::default();
        registry.register(
            "s3_errors",
            "Object store operations that failed",
            s3_errors.clone(),
        );
        // Series whose label values are known up front exist from the start, so they read 0 instead of being
        // absent (the text format leaves families without series out entirely).
        for strategy in ["tpe", "random"] {
            propose_candidates.get_or_create_owned(&StrategyLabels { strategy });
        }
        for outcome in [TrialStatus::Succeeded, TrialStatus::Failed] {
            train_runs.get_or_create_owned(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        for direction in [S3Direction::Upload, S3Direction::Download] {
            s3_bytes.get_or_create_owned(&DirectionLabels {
                direction: direction.as_str(),
            });
        }
        Self {
            registry,
            http_requests,
            http_duration,
            propose_candidates,
            propose_duration,
            train_runs,
            train_duration,
            train_queue_depth,
            train_running,
            outbox_backlog,
            outbox_deliveries,
            mlflow_requests,
            mlflow_retries,
            mlflow_sync: Mutex::new(()),
            s3_bytes,
            s3_errors,
        }
    }

    /// Counts one answered HTTP request and its latency. `route` must be a route template (bounded set).
    pub fn record_http(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method,
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpDurationLabels {
                route: route.to_string(),
                method,
            })
            .observe(seconds);
    }

    /// Counts the candidates of one `/propose` answer and the time it took.
    pub fn record_proposals(&self, strategy: Strategy, candidates: u64, seconds: f64) {
        let strategy = match strategy {
            Strategy::Tpe => "tpe",
            Strategy::Random => "random",
        };
        self.propose_candidates
            .get_or_create(&StrategyLabels { strategy })
            .inc_by(candidates);
        self.propose_duration.observe(seconds);
    }

    /// Counts one finished training by its final status, and its wall time.
    pub fn record_train(&self, outcome: TrialStatus, seconds: f64) {
        self.train_runs
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.train_duration.observe(seconds);
    }

    /// Sets the training queue's current depth and the number of trainings running.
    pub fn set_train_load(&self, queued: i64, running: i64) {
        self.train_queue_depth.set(queued);
        self.train_running.set(running);
    }

    /// Sets the number of undelivered outbox tasks.
    pub fn set_outbox_backlog(&self, backlog: i64) {
        self.outbox_backlog.set(backlog);
    }

    /// Counts one outbox delivery attempt of a task of `kind`.
    pub fn record_outbox_delivery(&self, kind: &str, outcome: DeliveryOutcome) {
        let kind = if kind.len() <= MAX_KIND_LEN {
            kind
        } else {
            "other"
        };
        self.outbox_deliveries
            .get_or_create(&DeliveryLabels {
                kind: kind.to_string(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Brings the MLflow client counters up to the client's cumulative totals (`MlflowClient::stats()`).
    /// Totals lower than what was seen (a new client) leave the counters where they are.
    pub fn observe_mlflow_client(&self, requests: u64, retries: u64) {
        let _guard = self
            .mlflow_sync
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        raise_to(&self.mlflow_requests, requests);
        raise_to(&self.mlflow_retries, retries);
    }

    /// Counts bytes moved to or from the object store.
    pub fn record_s3_bytes(&self, direction: S3Direction, bytes: u64) {
        self.s3_bytes
            .get_or_create(&DirectionLabels {
                direction: direction.as_str(),
            })
            .inc_by(bytes);
    }

    /// Counts one failed object store operation.
    pub fn record_s3_error(&self) {
        self.s3_errors.inc();
    }

    /// Raises the object-store counters to the store's cumulative totals (`ArtifactStore` counters).
    pub fn observe_s3(&self, written: u64, read: u64, errors: u64) {
        let _guard = self
            .mlflow_sync
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        raise_to(
            &self.s3_bytes.get_or_create(&DirectionLabels {
                direction: S3Direction::Upload.as_str(),
            }),
            written,
        );
        raise_to(
            &self.s3_bytes.get_or_create(&DirectionLabels {
                direction: S3Direction::Download.as_str(),
            }),
            read,
        );
        raise_to(&self.s3_errors, errors);
    }

    /// Raises the delivery counters of one outbox task kind to the tracker's cumulative totals.
    pub fn observe_outbox(&self, kind: &str, delivered: u64, retried: u64, failed: u64) {
        let _guard = self
            .mlflow_sync
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let kind = if kind.len() <= MAX_KIND_LEN {
            kind
        } else {
            "other"
        };
        for (outcome, total) in [
            (DeliveryOutcome::Delivered, delivered),
            (DeliveryOutcome::Retried, retried),
            (DeliveryOutcome::Failed, failed),
        ] {
            let labels = DeliveryLabels {
                kind: kind.to_string(),
                outcome: outcome.as_str(),
            };
            raise_to(&self.outbox_deliveries.get_or_create(&labels), total);
        }
    }

    /// The metrics in the Prometheus text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String only fails if a metric's encoder does; answer what was written.
        if prometheus_text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("encoding the metrics failed; the exposition is incomplete");
        }
        out
    }

    /// The `GET /metrics` response: [`Metrics::render`] with [`CONTENT_TYPE`].
    pub fn response(&self) -> Response {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            self.render(),
        )
            .into_response()
    }
}

fn raise_to(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Axum middleware: counts every request by route template, method and status, and times it. Requests the
/// router matched no route for are counted under the route `unmatched`.
pub async fn track_http(
    State(metrics): State<Arc<Metrics>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched
        .as_ref()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.record_http(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware;
    use axum::routing::get;
    use tower::ServiceExt;

    /// The value of the sample line starting with `series` (name and labels exactly as rendered).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn series_with_known_labels_start_at_zero() {
        let t = Metrics::new().render();
        assert_eq!(
            sample(&t, r#"propose_candidates_total{strategy="tpe"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&t, r#"train_runs_total{outcome="failed"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&t, r#"s3_bytes_total{direction="download"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn every_family_is_described() {
        let m = Metrics::new();
        m.record_http("/healthz", &Method::GET, 200, 0.001);
        m.record_outbox_delivery("mlflow.run", DeliveryOutcome::Delivered);
        let text = m.render();
        for family in [
            "http_requests_total counter",
            "http_request_duration_seconds histogram",
            "propose_candidates_total counter",
            "propose_duration_seconds histogram",
            "train_runs_total counter",
            "train_duration_seconds histogram",
            "train_queue_depth gauge",
            "train_running gauge",
            "outbox_backlog gauge",
            "outbox_deliveries_total counter",
            "mlflow_client_requests_total counter",
            "mlflow_client_retries_total counter",
            "s3_bytes_total counter",
            "s3_errors_total counter",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}")),
                "missing {family} in\n{text}"
            );
        }
    }

    #[test]
    fn counters_and_gauges_follow_what_is_recorded() {
        let m = Metrics::new();
        m.record_proposals(Strategy::Tpe, 4, 0.01);
        m.record_proposals(Strategy::Tpe, 3, 0.02);
        m.record_proposals(Strategy::Random, 2, 0.001);
        m.record_train(TrialStatus::Succeeded, 1.5);
        m.record_train(TrialStatus::Failed, 0.2);
        m.record_train(TrialStatus::Succeeded, 2.5);
        m.set_train_load(5, 2);
        m.set_outbox_backlog(7);
        m.record_outbox_delivery("mlflow.trial", DeliveryOutcome::Delivered);
        m.record_outbox_delivery("mlflow.trial", DeliveryOutcome::Retried);
        m.record_outbox_delivery("mlflow.trial", DeliveryOutcome::Delivered);
        m.record_s3_bytes(S3Direction::Upload, 1000);
        m.record_s3_bytes(S3Direction::Upload, 24);
        m.record_s3_error();
        let t = m.render();
        assert_eq!(
            sample(&t, r#"propose_candidates_total{strategy="tpe"}"#),
            Some(7.0)
        );
        assert_eq!(
            sample(&t, r#"propose_candidates_total{strategy="random"}"#),
            Some(2.0)
        );
        assert_eq!(sample(&t, "propose_duration_seconds_count"), Some(3.0));
        assert_eq!(
            sample(&t, r#"train_runs_total{outcome="succeeded"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&t, r#"train_runs_total{outcome="failed"}"#),
            Some(1.0)
        );
        assert_eq!(sample(&t, "train_duration_seconds_sum"), Some(4.2));
        assert_eq!(sample(&t, "train_queue_depth"), Some(5.0));
        assert_eq!(sample(&t, "train_running"), Some(2.0));
        assert_eq!(sample(&t, "outbox_backlog"), Some(7.0));
        assert_eq!(
            sample(
                &t,
                r#"outbox_deliveries_total{kind="mlflow.trial",outcome="delivered"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&t, r#"s3_bytes_total{direction="upload"}"#),
            Some(1024.0)
        );
        assert_eq!(sample(&t, "s3_errors_total"), Some(1.0));
    }

    #[test]
    fn mlflow_counters_track_the_clients_cumulative_totals() {
        let m = Metrics::new();
        m.observe_mlflow_client(10, 1);
        m.observe_mlflow_client(25, 3);
        m.observe_mlflow_client(5, 0);
        let t = m.render();
        assert_eq!(sample(&t, "mlflow_client_requests_total"), Some(25.0));
        assert_eq!(sample(&t, "mlflow_client_retries_total"), Some(3.0));
    }

    #[test]
    fn long_outbox_kinds_are_bounded() {
        let m = Metrics::new();
        m.record_outbox_delivery(&"k".repeat(500), DeliveryOutcome::Failed);
        let t = m.render();
        assert_eq!(
            sample(
                &t,
                r#"outbox_deliveries_total{kind="other",outcome="failed"}"#
            ),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn the_middleware_counts_route_templates_not_raw_paths() {
        let metrics = Arc::new(Metrics::new());
        let app = Router::new()
            .route("/runs/{run_id}", get(|| async { "ok" }))
            .layer(middleware::from_fn_with_state(metrics.clone(), track_http));
        for uri in ["/runs/a", "/runs/b", "/runs/c", "/nowhere/at/all"] {
            let request = axum::http::Request::builder()
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let request = axum::http::Request::builder()
            .method("BREW")
            .uri("/runs/a")
            .body(Body::empty())
            .unwrap();
        app.oneshot(request).await.unwrap();
        let t = metrics.render();
        assert_eq!(
            sample(
                &t,
                r#"http_requests_total{route="/runs/{run_id}",method="GET",status="200"}"#
            ),
            Some(3.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"http_requests_total{route="unmatched",method="GET",status="404"}"#
            ),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"http_requests_total{route="/runs/{run_id}",method="other",status="405"}"#
            ),
            Some(1.0),
            "{t}"
        );
        assert!(!t.contains("/runs/a"));
        assert_eq!(
            sample(
                &t,
                r#"http_request_duration_seconds_count{route="/runs/{run_id}",method="GET"}"#
            ),
            Some(3.0)
        );
    }
}
