//! HTTP handlers and the router. Each endpoint lives in its own module; this one wires them together with
//! the cross-cutting layers (auth, body limit, panic guard, error fallbacks).

pub mod auth;
pub mod bridge;
pub mod health;
pub mod json;
pub mod openapi;
pub mod pagination;
pub mod path;
pub mod propose;
pub mod report;
pub mod runs;
pub mod schemas;
pub mod summary;
pub mod train;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::artifacts::ArtifactStore;
use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::{self, Metrics};
use crate::search_state::SearchStates;
use crate::store::Store;
use crate::telemetry;
use crate::tracking::Tracker;
use crate::training::Trainer;

/// Shared state of every handler: one allocation, so the clone each request's extractor makes is a single
/// reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl AppState {
    /// Wraps the context for the router.
    pub fn new(context: AppContext) -> Self {
        Self(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// What the handlers share: the database, the workers and the settings.
pub struct AppContext {
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

/// Routes served without a token (see [`openapi::PUBLIC_PATHS`]), with the static part of the description.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics_endpoint))
}

/// Routes behind the optional bearer token.
fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bridge::start))
        .routes(routes!(bridge::record))
        .routes(routes!(bridge::finalize))
        .routes(routes!(propose::propose))
        .routes(routes!(train::train))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get, runs::delete))
        .routes(routes!(runs::trials))
        .routes(routes!(report::report))
        .routes(routes!(runs::trial))
        .routes(routes!(openapi::serve))
}

/// Every documented route, without layers: what [`router`] serves and [`openapi::openapi`] describes.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    public_routes().merge(protected_routes())
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let (public, _) = public_routes().split_for_parts();
    let (protected, _) = protected_routes().split_for_parts();
    let protected = protected.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    Router::new()
        .merge(public)
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
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String))
)]
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
