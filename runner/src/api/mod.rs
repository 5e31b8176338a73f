//! HTTP handlers and the router. Each endpoint lives in its own module; this one wires them together with
//! the cross-cutting layers (auth, body limit, panic guard, error fallbacks).

pub mod auth;
pub mod bridge;
pub mod health;
pub mod json;
pub mod pagination;
pub mod propose;
pub mod report;
pub mod runs;
pub mod summary;
pub mod train;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::artifacts::ArtifactStore;
use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::{self, Metrics};
use crate::search_state::SearchStates;
use crate::store::Store;
use crate::telemetry;
use crate::tracking::Tracker;
use crate::training::Trainer;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The settings the runner started with.
    pub settings: Arc<Settings>,
    /// Runs trainings.
    pub trainer: Trainer,
    /// Mirrors runs and trials to MLflow and the object store.
    pub tracker: Tracker,
    /// The object store (for its counters).
    pub artifacts: ArtifactStore,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What `/propose` knows about each run, kept between calls.
    pub search_states: Arc<SearchStates>,
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let protected = Router::new()
        .route("/bridge/start", post(bridge::start))
        .route("/bridge/record", post(bridge::record))
        .route("/bridge/finalize", post(bridge::finalize))
        .route("/propose", post(propose::propose))
        .route("/train", post(train::train))
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::get).delete(runs::delete))
        .route("/runs/{run_id}/trials", get(runs::trials))
        .route("/runs/{run_id}/report", get(report::report))
        .route("/trials/{trial_id}", get(runs::trial))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_endpoint))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(json::BodyLimit(limit)))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track_http,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(telemetry::http::record_response),
        )
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
            REQUEST_ID,
        )))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static(REQUEST_ID),
            MakeRequestUuid,
        ))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text exposition, with gauges refreshed from the store and the workers.
async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let load = state.trainer.load();
    let queued = state.store.queued_trainings().await.unwrap_or(0);
    m.set_train_load(queued + load.waiting as i64, load.running as i64);
    if let Ok(backlog) = state.store.backlog().await {
        m.set_outbox_backlog(backlog.pending);
    }
    let stats = state.tracker.stats();
    m.observe_mlflow_client(stats.mlflow_requests, stats.mlflow_retries);
    for (kind, k) in &stats.kinds {
        m.observe_outbox(kind, k.delivered, k.failed, k.dropped);
    }
    m.observe_s3(
        state.artifacts.bytes_written_total(),
        state.artifacts.bytes_read_total(),
        state.artifacts.errors_total(),
    );
    m.response()
}

/// Header carrying the request id: taken from the caller when present, generated otherwise, echoed back.
const REQUEST_ID: &str = "x-request-id";

/// The span every request's log lines carry (the OpenTelemetry server span when tracing is on).
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    telemetry::http::request_span(req, REQUEST_ID)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
