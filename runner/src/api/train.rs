//! `POST /train`: trains a real Cerebros-style network for a trial (sync by default, `"mode": "async"` answers
//! 202 with `Location: /trials/{id}`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::json::JsonBody;
use super::schemas::{ErrorBody, TrainBody, TrainReply as TrainReplySchema};
use crate::domain::{FieldError, RunId, TrialId};
use crate::error::ApiError;
use crate::nas::TrainSpec;
use crate::training::{TrainFailure, TrainReply, TrainRequest};

fn parse(body: Value) -> Result<TrainRequest, FieldError> {
    let Value::Object(map) = &body else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    let trial_id = match map.get("trial_id") {
        Some(Value::String(s)) => TrialId::parse(s)?,
        Some(_) => return Err(FieldError::new("trial_id", "must be a string")),
        None => return Err(FieldError::new("trial_id", "is required")),
    };
    let run_id = match map.get("run_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(RunId::parse(s)?),
        Some(_) => return Err(FieldError::new("run_id", "must be a string")),
    };
    let params = match map.get("params") {
        Some(Value::Object(p)) => p.clone(),
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(_) => return Err(FieldError::new("params", "must be an object")),
    };
    let (spec, warnings) = TrainSpec::from_params(&params)
        .map_err(|e| FieldError::new(format!("params.{}", e.field), e.reason))?;
    let dataset_id = match map.get("dataset_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(FieldError::new("dataset_id", "must be a string")),
    };
    let asynchronous = match map.get("mode") {
        None | Some(Value::Null) => false,
        Some(Value::String(m)) if m.eq_ignore_ascii_case("sync") => false,
        Some(Value::String(m)) if m.eq_ignore_ascii_case("async") => true,
        Some(_) => return Err(FieldError::new("mode", "must be \"sync\" or \"async\"")),
    };
    Ok(TrainRequest {
        trial_id,
        run_id,
        params,
        spec,
        warnings,
        dataset: map.get("dataset").cloned(),
        dataset_id,
        asynchronous,
        raw: body.clone(),
    })
}

/// `POST /train`.
#[utoipa::path(
    post,
    path = "/train",
    operation_id = "train",
    tag = "training",
    request_body = TrainBody,
    responses(
        (status = 200, description = "Trained (or already trained with the same parameters): the trial's metrics", body = TrainReplySchema),
        (status = 202, description = "Queued (`mode: async`)", body = TrainReplySchema,
            headers(("Location" = String, description = "`/trials/{trial_id}`"))),
        (status = 409, description = "The trial id is taken by different parameters", body = ErrorBody),
        (status = 422, description = "A field, the parameters or the dataset is invalid (`field` names it)", body = ErrorBody),
        (status = 429, description = "The training queue is full", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The dataset's store is unavailable", body = ErrorBody),
    )
)]
pub async fn train(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = parse(body)?;
    let reply = state.trainer.submit(request).await.map_err(|e| match e {
        TrainFailure::QueueFull => ApiError::QueueFull {
            retry_after_secs: 5,
        },
        TrainFailure::Dataset(d) => ApiError::Invalid(FieldError::new("dataset", d.to_string())),
        TrainFailure::Unbuildable(m) => ApiError::Invalid(FieldError::new("params", m)),
        TrainFailure::Unavailable(m) => ApiError::Unavailable(m),
        TrainFailure::Conflict(m) => ApiError::Conflict(m),
        TrainFailure::Store(e) => ApiError::from(e),
    })?;
    Ok(match reply {
        TrainReply::Done(body) => (StatusCode::OK, Json(body)).into_response(),
        TrainReply::Accepted(body) => {
            let location = format!("/trials/{}", body["trial_id"].as_str().unwrap_or_default());
            let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_training_params_name_the_field() {
        for (params, field) in [
            (json!({"epochs": -3}), "params.epochs"),
            (json!({"lr": 0}), "params.lr"),
            (json!({"activation": "sparkle"}), "params.activation"),
        ] {
            let e = parse(json!({"trial_id": "t", "params": params}))
                .err()
                .unwrap();
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn the_livebook_params_are_accepted_with_warnings() {
        let req = parse(json!({"trial_id": "t", "params": {"head": "kgam", "lr": 0.001, "controller.smooth": 0.2}}))
            .unwrap();
        assert!(req.warnings.iter().any(|w| w.contains("head")));
    }

    #[test]
    fn an_unknown_mode_is_rejected() {
        assert_eq!(
            parse(json!({"trial_id": "t", "mode": "later"}))
                .err()
                .unwrap()
                .field,
            "mode"
        );
    }
}
