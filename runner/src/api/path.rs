//! A path-parameter extractor that answers in the API's error model: axum's own `Path` rejects a percent-encoded
//! segment that is not UTF-8 (`/runs/%FF`) with a plain-text 400.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::ApiError;

/// The single path parameter of a route (`{run_id}`, `{trial_id}`), decoded.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|rejection| ApiError::MalformedPath(rejection.body_text()))
    }
}
