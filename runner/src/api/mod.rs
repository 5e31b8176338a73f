//! HTTP handlers and the router. Each endpoint lives in its own module; this one wires them together with
//! the cross-cutting layers (auth, body limit, panic guard, error fallbacks).

pub mod auth;
pub mod bridge;
pub mod health;
pub mod json;
pub mod pagination;
pub mod propose;
pub mod runs;
pub mod summary;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Settings;
use crate::error::ApiError;
use crate::store::Store;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The settings the runner started with.
    pub settings: Arc<Settings>,
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let protected = Router::new()
        .route("/bridge/start", post(bridge::start))
        .route("/bridge/record", post(bridge::record))
        .route("/bridge/finalize", post(bridge::finalize))
        .route("/propose", post(propose::propose))
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::get).delete(runs::delete))
        .route("/runs/{run_id}/trials", get(runs::trials))
        .route("/trials/{trial_id}", get(runs::trial))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(json::BodyLimit(limit)))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
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
