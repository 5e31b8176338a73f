//! `POST /propose`: `k` candidates from the run's search space, by TPE over the run's history (default) or at
//! random. The reply is the original runner's bare array of `{params, score:{l,g}, rank}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::AppState;
use super::json::JsonBody;
use crate::domain::contracts::from_object_at;
use crate::domain::{FieldError, Objective, RunId};
use crate::error::ApiError;
use crate::search::{
    Observation, ProposeRequest, SearchSpace, Strategy, TpeOptions, propose as draw,
};
use crate::store::NewProposal;

/// Most candidates one call may ask for.
pub const MAX_K: u64 = 64;
/// Most EI candidates a call may ask TPE to score per proposal (the sampler's cost grows with them).
pub const MAX_EI_CANDIDATES: usize = 1024;
// A call's proposals are stored as one proposal set.
const _: () = assert!(MAX_K as usize <= crate::store::proposal_writer::MAX_SET_SIZE);

/// A validated `/propose` request.
struct ProposeInput {
    run_id: RunId,
    k: usize,
    space: Option<Value>,
    objective: Option<Objective>,
    strategy: Strategy,
    seed: Option<u64>,
    tpe: TpeOptions,
}

fn parse(body: Value) -> Result<ProposeInput, FieldError> {
    let Value::Object(mut map) = body else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    let run_id = match map.get("run_id") {
        Some(Value::String(s)) => RunId::parse(s)?,
        Some(_) => return Err(FieldError::new("run_id", "must be a string")),
        None => return Err(FieldError::new("run_id", "is required")),
    };
    let k = match map.get("k") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|k| (1..=MAX_K).contains(k))
            .ok_or_else(|| FieldError::new("k", format!("must be an integer from 1 to {MAX_K}")))?,
    } as usize;
    let objective = match map.get("objective") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Objective::parse("objective", v)?),
    };
    let strategy = match map.get("strategy") {
        None | Some(Value::Null) => Strategy::Tpe,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("tpe") => Strategy::Tpe,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("random") => Strategy::Random,
        Some(_) => return Err(FieldError::new("strategy", "must be \"tpe\" or \"random\"")),
    };
    let seed = match map.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| FieldError::new("seed", "must be a non-negative integer"))?,
        ),
    };
    let tpe = match map.remove("tpe") {
        None | Some(Value::Null) => TpeOptions::default(),
        Some(v) => parse_tpe(v)?,
    };
    Ok(ProposeInput {
        run_id,
        k,
        space: map.remove("space").filter(|v| !v.is_null()),
        objective,
        strategy,
        seed,
        tpe,
    })
}

/// The `tpe` settings: [`TpeOptions`] fields, each optional (Optuna 5's `TPESampler` is
/// `{"clip_count": "group", "good_weights": "age"}`).
fn parse_tpe(v: Value) -> Result<TpeOptions, FieldError> {
    // Serde would also read a struct from an array of its fields in order.
    let Value::Object(mut set) = v else {
        return Err(FieldError::new("tpe", "must be an object of TPE settings"));
    };
    // A setting sent as null keeps its default.
    set.retain(|_, value| !value.is_null());
    let options: TpeOptions = from_object_at(Some("tpe"), set)?;
    if !(1..=MAX_EI_CANDIDATES).contains(&options.n_ei_candidates) {
        return Err(FieldError::new(
            "tpe.n_ei_candidates",
            format!("must be an integer from 1 to {MAX_EI_CANDIDATES}"),
        ));
    }
    if !(options.prior_weight.is_finite() && options.prior_weight >= 0.0) {
        return Err(FieldError::new(
            "tpe.prior_weight",
            "must be a finite number ≥ 0",
        ));
    }
    Ok(options)
}

/// A seed derived from the run and the state of its history, so repeated calls differ but are reproducible.
fn derived_seed(run_id: &RunId, n_trials: usize, n_pending: usize, newest_pending: i64) -> u64 {
    let digest = Sha256::digest(
        format!("{run_id}\u{0}{n_trials}\u{0}{n_pending}\u{0}{newest_pending}").as_bytes(),
    );
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// `POST /propose`.
#[utoipa::path(
    post,
    path = "/propose",
    operation_id = "propose",
    tag = "search",
    request_body = super::schemas::ProposeBody,
    responses(
        (status = 200, description = "Candidates sorted by rank (1 = best), each stored as pending until a trial reports it", body = Vec<super::schemas::Proposal>),
        (status = 409, description = "The objective differs from the run's", body = super::schemas::ErrorBody),
        (status = 422, description = "A field or the search space is invalid (`field` names it)", body = super::schemas::ErrorBody),
    )
)]
pub async fn propose(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let input = parse(body)?;
    let requested_space = input
        .space
        .as_ref()
        .map(|json| {
            SearchSpace::parse(json)
                .map_err(|e| FieldError::new(format!("space.{}", e.param), e.reason))
        })
        .transpose()?;
    let ttl = state.settings.pending_ttl;
    // Random search needs no history or pending proposals, only the run's objective and stored space.
    let with_pending = input.strategy == Strategy::Tpe;
    // One TPE call of a run at a time from snapshot to reservation: each call's liar sees the previous one's.
    let sampling_turn = match input.strategy {
        Strategy::Tpe => Some(
            state
                .search_states
                .sampling_turn(input.run_id.as_str())
                .await,
        ),
        Strategy::Random => None,
    };
    let mut snapshot = state
        .search_states
        .snapshot(&state.store, &input.run_id, ttl, with_pending)
        .await?;
    let objective = match &input.objective {
        Some(asked) if snapshot.run.objective_explicit && &snapshot.run.objective != asked => {
            let run = &snapshot.run;
            return Err(ApiError::Conflict(format!(
                "run {} optimises {} ({:?}); this request asked for {} ({:?})",
                run.run_id,
                run.objective.metric,
                run.objective.direction,
                asked.metric,
                asked.direction
            )));
        }
        Some(asked) if !snapshot.run.objective_explicit => {
            let adopted = state.store.adopt_objective(&input.run_id, asked).await?;
            // The history is read for the objective's metric: read it again for the adopted one.
            snapshot = state
                .search_states
                .snapshot(&state.store, &input.run_id, ttl, with_pending)
                .await?;
            adopted
        }
        _ => snapshot.run.objective.clone(),
    };
    let space = match requested_space {
        Some(space) => space,
        None => {
            let stored = snapshot.run.search_space.as_ref().ok_or_else(|| {
                FieldError::new(
                    "space",
                    "is required (the run has no search_space from /bridge/start)",
                )
            })?;
            SearchSpace::parse(stored)
                .map_err(|e| FieldError::new(format!("space.{}", e.param), e.reason))?
        }
    };
    // Random search needs no history; TPE reads the run's trials and pending proposals.
    let (history, pending, seed): (&[Observation], Vec<&Map<String, Value>>, u64) = match input
        .strategy
    {
        Strategy::Tpe => {
            let pending: Vec<&Map<String, Value>> = snapshot.pending.iter().map(|p| &**p).collect();
            let seed = input.seed.unwrap_or_else(|| {
                derived_seed(
                    &input.run_id,
                    snapshot.n_trials,
                    pending.len(),
                    snapshot.newest_pending_id,
                )
            });
            (&snapshot.observations, pending, seed)
        }
        Strategy::Random => (&[], Vec::new(), input.seed.unwrap_or_else(fresh_seed)),
    };
    let request = ProposeRequest {
        space: &space,
        history,
        pending: &pending,
        k: input.k,
        strategy: input.strategy,
        direction: objective.direction,
        seed,
        options: input.tpe,
    };
    let drawing = std::time::Instant::now();
    let proposals = tracing::info_span!(
        "propose.sample",
        run_id = %input.run_id,
        k = input.k,
        strategy = ?input.strategy,
        history = history.len(),
        pending = pending.len(),
    )
    .in_scope(|| draw(&request));
    state.metrics.record_proposals(
        input.strategy,
        proposals.len() as u64,
        drawing.elapsed().as_secs_f64(),
    );
    let scores: Vec<Score> = proposals
        .iter()
        .map(|p| Score {
            l: finite(p.log_l),
            g: finite(p.log_g),
        })
        .collect();
    let params: Vec<Arc<Map<String, Value>>> =
        proposals.into_iter().map(|p| Arc::new(p.params)).collect();
    let run_id = input.run_id.as_str();
    let reserved = state.search_states.reserve(run_id, &params);
    drop(sampling_turn);
    let batch: Vec<NewProposal> = params.into_iter().map(NewProposal::new).collect();
    // The reply reuses the JSON text the store writes, instead of serialising the parameters again.
    let texts: Vec<Arc<str>> = batch.iter().map(|p| p.json.clone()).collect();
    let stored = match state.store.add_pending_batch(run_id, batch).await {
        Ok(stored) => stored,
        Err(e) => {
            state.search_states.release(run_id, &reserved);
            return Err(e.into());
        }
    };
    let body = reply(&texts, &scores).map_err(|e| ApiError::Internal(e.into()))?;
    state.search_states.confirm(run_id, &reserved, stored).await;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The reply, `[{"params": …, "score": {"l": …, "g": …}, "rank": 1}, …]`, from each proposal's parameters as JSON
/// text and its scores, in rank order.
fn reply(params: &[Arc<str>], scores: &[Score]) -> Result<String, serde_json::Error> {
    let mut body = String::with_capacity(params.iter().map(|p| p.len() + 64).sum::<usize>() + 2);
    body.push('[');
    for (i, (params, score)) in params.iter().zip(scores).enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"params\":");
        body.push_str(params);
        body.push_str(",\"score\":");
        body.push_str(&serde_json::to_string(score)?);
        body.push_str(",\"rank\":");
        body.push_str(&(i + 1).to_string());
        body.push('}');
    }
    body.push(']');
    Ok(body)
}

/// TPE's log-densities of a proposal (`null` where not finite, e.g. random proposals' `-inf`).
#[derive(Serialize)]
struct Score {
    l: Option<f64>,
    g: Option<f64>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// A seed for an unseeded random proposal: different on every call.
fn fresh_seed() -> u64 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::rng::Rng::seed_from_u64(nanos ^ call.rotate_left(32)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn k_outside_1_to_64_names_the_field() {
        for bad in [json!(0), json!(65), json!(-1), json!(2.5), json!("3")] {
            let e = parse(json!({"run_id": "r", "k": bad, "space": {}}))
                .err()
                .unwrap();
            assert_eq!(e.field, "k");
        }
    }

    #[test]
    fn a_numeric_run_id_is_not_coerced() {
        assert_eq!(
            parse(json!({"run_id": 5, "k": 1})).err().unwrap().field,
            "run_id"
        );
    }

    #[test]
    fn an_unknown_strategy_is_rejected() {
        let e = parse(json!({"run_id": "r", "strategy": "grid"}))
            .err()
            .unwrap();
        assert_eq!(e.field, "strategy");
    }

    #[test]
    fn the_reply_is_the_original_array_of_params_score_and_rank() {
        let params: Vec<Arc<str>> = vec![
            r#"{"lr":0.01,"act":"a\"b"}"#.into(),
            r#"{"lr":1e-5,"act":"relu"}"#.into(),
        ];
        let scores = [
            Score {
                l: Some(-1.5),
                g: Some(-2.0),
            },
            Score { l: None, g: None },
        ];
        let body: Value = serde_json::from_str(&reply(&params, &scores).unwrap()).unwrap();
        assert_eq!(
            body,
            json!([
                {"params": {"lr": 0.01, "act": "a\"b"}, "score": {"l": -1.5, "g": -2.0}, "rank": 1},
                {"params": {"lr": 1e-5, "act": "relu"}, "score": {"l": null, "g": null}, "rank": 2},
            ])
        );
    }

    #[test]
    fn tpe_settings_default_to_ours_and_parse_field_by_field() {
        let input = parse(json!({"run_id": "r"})).unwrap();
        assert_eq!(input.tpe, TpeOptions::default());
        let optuna =
            parse(json!({"run_id": "r", "tpe": {"clip_count": "group", "good_weights": "age"}}));
        assert_eq!(optuna.unwrap().tpe, TpeOptions::optuna());
        let some =
            parse(json!({"run_id": "r", "tpe": {"n_ei_candidates": 64, "multivariate": false}}));
        let some = some.unwrap().tpe;
        assert_eq!((some.n_ei_candidates, some.multivariate), (64, false));
        assert_eq!(some.gamma, TpeOptions::default().gamma);
    }

    #[test]
    fn bad_tpe_settings_name_the_setting() {
        for (tpe, field) in [
            (json!({"n_ei_candidates": 0}), "tpe.n_ei_candidates"),
            (json!({"n_ei_candidates": 1025}), "tpe.n_ei_candidates"),
            (json!({"n_ei_candidates": -3}), "tpe.n_ei_candidates"),
            (json!({"prior_weight": -1.0}), "tpe.prior_weight"),
            (json!({"clip_count": "sometimes"}), "tpe.clip_count"),
            (json!({"multivariate": "yes"}), "tpe.multivariate"),
            (json!({"bandwidth": 2}), "tpe.bandwidth"),
            (json!([1, 2]), "tpe"),
            (json!("optuna"), "tpe"),
        ] {
            let e = parse(json!({"run_id": "r", "tpe": tpe})).err().unwrap();
            assert_eq!(e.field, field, "{tpe}: {}", e.message);
        }
    }
}
