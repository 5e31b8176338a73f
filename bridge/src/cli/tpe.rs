//! Thunderline's TPE CLI protocol (`tpe_cli.py`), served by the runner: a study is a run.
//!
//! One request line `{"function","args"}` in, one reply line out. Errors are replies with
//! `{"status":"error","reason"}` and exit code 0, as the original CLI did, so the Elixir side reads the reason.
//!
//! Mapping: `init_study` → `POST /bridge/start` (objective metric `value` with the study's direction, the
//! search space stored with the run); `suggest` / `suggest_batch` → `POST /propose`; `record` →
//! `POST /bridge/record`; `best_params` / `get_status` → `GET /runs/{id}`; `delete_study` → `DELETE /runs/{id}`;
//! `list_studies` → `GET /runs`. Optuna's integer trial numbers become runner trial ids `"{study}#{n}"`, where
//! `n` counts the run's reported trials plus its pending proposals, as Optuna counts asked trials.

use serde_json::{Map, Value, json};

use super::reply::Failure;
use crate::client::{ProposeRequest, RunView, RunnerClient, Strategy};
use crate::contracts::{
    Direction, Objective, RunId, RunStartedV1, TrialId, TrialReportedV1, TrialStatus,
};
use crate::error::ClientError;

/// Metric name under which a study's objective value is recorded.
pub const VALUE_METRIC: &str = "value";
/// Most proposals one `suggest_batch` may ask for (the runner's `k` limit).
pub const MAX_BATCH: u64 = 64;
/// Page size when listing studies.
const LIST_PAGE: u32 = 500;
/// Most studies `list_studies` returns.
const LIST_MAX: usize = 10_000;

/// The runner the protocol talks to, or why there is none.
pub type Runner<'a> = Result<&'a RunnerClient, Failure>;

/// Answers one request line; the reply is always a JSON object.
pub async fn respond(line: &[u8], runner: Runner<'_>, now: &str) -> Value {
    let request = match parse_request(line) {
        Ok(request) => request,
        Err(failure) => return failure.to_json(),
    };
    let result = match request.function.as_str() {
        "ping" => Ok(ping(runner).await),
        "init_study" => with_runner(runner, |c| init_study(c, &request.args, now)).await,
        "suggest" => with_runner(runner, |c| suggest(c, &request.args, false)).await,
        "suggest_batch" => with_runner(runner, |c| suggest(c, &request.args, true)).await,
        "record" => with_runner(runner, |c| record(c, &request.args)).await,
        "best_params" => with_runner(runner, |c| best_params(c, &request.args)).await,
        "get_status" => with_runner(runner, |c| get_status(c, &request.args)).await,
        "delete_study" => with_runner(runner, |c| delete_study(c, &request.args)).await,
        "list_studies" => with_runner(runner, list_studies).await,
        other => Err(Failure::local(
            "unknown_function",
            format!("unknown function: {other}"),
        )),
    };
    result.unwrap_or_else(|failure| failure.to_json())
}

/// A parsed request line.
struct Request {
    function: String,
    args: Map<String, Value>,
}

fn parse_request(line: &[u8]) -> Result<Request, Failure> {
    if line.trim_ascii().is_empty() {
        return Err(Failure::local("invalid_request", "empty input"));
    }
    let value: Value = serde_json::from_slice(line.trim_ascii())
        .map_err(|e| Failure::local("invalid_request", format!("invalid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(Failure::local(
            "invalid_request",
            "request must be a JSON object {\"function\", \"args\"}",
        ));
    };
    let function = match object.remove("function") {
        Some(Value::String(function)) => function,
        _ => return Err(Failure::local("invalid_request", "unknown function: None")),
    };
    let args = match object.remove("args") {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(Failure::local(
                "invalid_request",
                "args must be a JSON object",
            ));
        }
    };
    Ok(Request { function, args })
}

async fn with_runner<'a, F, Fut>(runner: Runner<'a>, call: F) -> Result<Value, Failure>
where
    F: FnOnce(&'a RunnerClient) -> Fut,
    Fut: Future<Output = Result<Value, Failure>>,
{
    call(runner?).await
}

async fn ping(runner: Runner<'_>) -> Value {
    match runner {
        Ok(client) => match client.healthz().await {
            Ok(_) => json!({"status": "ok", "optuna_available": true, "backend": "cerebros-runner",
                            "runner": client.base_url()}),
            Err(e) => {
                json!({"status": "ok", "optuna_available": false, "backend": "cerebros-runner",
                             "runner": client.base_url(), "reason": e.message})
            }
        },
        Err(failure) => {
            json!({"status": "ok", "optuna_available": false, "reason": failure.message})
        }
    }
}

async fn init_study(
    client: &RunnerClient,
    args: &Map<String, Value>,
    now: &str,
) -> Result<Value, Failure> {
    let study = study_name(args)?;
    let direction = match args.get("direction") {
        None | Some(Value::Null) => Direction::Maximize,
        Some(Value::String(raw)) => raw.parse().map_err(|e: crate::contracts::UnknownValue| {
            Failure::local("invalid_args", e.to_string())
        })?,
        Some(_) => return Err(Failure::local("invalid_args", "direction must be a string")),
    };
    let search_space = args.get("search_space").cloned().unwrap_or(json!([]));
    let n_params = match &search_space {
        Value::Array(items) => items.len(),
        Value::Object(items) => items.len(),
        _ => {
            return Err(Failure::local(
                "invalid_args",
                "search_space must be a list of parameters or a map",
            ));
        }
    };
    let sampler = args
        .get("sampler")
        .and_then(Value::as_str)
        .unwrap_or("TPESampler")
        .to_owned();
    let mut started = RunStartedV1::new(study.clone());
    started.search_space = search_space;
    started.objective = Some(Objective::new(VALUE_METRIC, direction));
    started.timestamp = Some(now.to_owned());
    started.extra.insert("source".into(), json!("tpe_cli"));
    started.extra.insert("sampler".into(), json!(sampler));
    for key in ["seed", "sampler_kwargs"] {
        if let Some(value) = args.get(key).filter(|v| !v.is_null()) {
            started.extra.insert(key.into(), value.clone());
        }
    }
    client.start_run(&started).await?;
    Ok(
        json!({"status": "ok", "study_name": study.as_str(), "n_params": n_params,
              "direction": direction.as_str(), "sampler": sampler}),
    )
}

async fn suggest(
    client: &RunnerClient,
    args: &Map<String, Value>,
    batch: bool,
) -> Result<Value, Failure> {
    let study = study_name(args)?;
    let k = if batch { batch_size(args)? } else { 1 };
    let view = load_study(client, &study).await?;
    let first = asked_trials(&view);
    let mut request = ProposeRequest::new(study.clone(), k, stored_space(&view));
    let extra = view.other.get("extra");
    request.seed = extra
        .and_then(|e| e.get("seed"))
        .and_then(Value::as_u64)
        .map(|seed| seed.wrapping_add(first));
    request.strategy = extra
        .and_then(|e| e.get("sampler"))
        .and_then(Value::as_str)
        .map(|sampler| match sampler {
            "TPESampler" => Strategy::Tpe,
            _ => Strategy::Random,
        });
    let mut proposals = client.propose(&request).await?;
    proposals.sort_by_key(|p| p.rank);
    let trials: Vec<Value> = proposals
        .into_iter()
        .zip(first..)
        .map(|(p, number)| json!({"params": p.params, "trial_id": number}))
        .collect();
    if batch {
        let count = trials.len();
        return Ok(json!({"status": "ok", "trials": trials, "count": count}));
    }
    let Some(Value::Object(mut trial)) = trials.into_iter().next() else {
        return Err(Failure::local(
            "invalid_response",
            "the runner proposed nothing",
        ));
    };
    trial.insert("status".into(), json!("ok"));
    Ok(Value::Object(trial))
}

async fn record(client: &RunnerClient, args: &Map<String, Value>) -> Result<Value, Failure> {
    let study = study_name(args)?;
    let view = load_study(client, &study).await?;
    let number = match args.get("trial_id") {
        None | Some(Value::Null) => asked_trials(&view),
        Some(given) => trial_number_arg(given).ok_or_else(|| {
            Failure::local("invalid_args", "trial_id must be a non-negative integer")
        })?,
    };
    let trial_id = runner_trial_id(&study, number)?;
    let mut trial = TrialReportedV1::new(study.clone(), trial_id.clone());
    trial.status = match args.get("state").and_then(Value::as_str) {
        Some("fail") => TrialStatus::Failed,
        Some("pruned") => TrialStatus::Cancelled,
        _ => TrialStatus::Succeeded,
    };
    match args.get("value") {
        Some(Value::Number(value)) => {
            trial
                .metrics
                .insert(VALUE_METRIC.into(), Value::Number(value.clone()));
        }
        None | Some(Value::Null) if trial.status == TrialStatus::Succeeded => {
            trial.metrics.insert(VALUE_METRIC.into(), json!(0.0));
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(Failure::local("invalid_args", "value must be a number")),
    }
    trial.parameters = match args.get("params") {
        Some(Value::Object(params)) => params.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(Failure::local(
                "invalid_args",
                "params must be a JSON object",
            ));
        }
    };
    client.record_trial(&trial).await?;
    let after = load_study(client, &study).await?;
    let is_best = after.best_trial_id.as_deref() == Some(trial_id.as_str());
    Ok(
        json!({"status": "ok", "trial_id": number, "is_best": is_best,
              "n_complete": after.n_complete.unwrap_or(0)}),
    )
}

async fn best_params(client: &RunnerClient, args: &Map<String, Value>) -> Result<Value, Failure> {
    let study = study_name(args)?;
    let view = load_study(client, &study).await?;
    let (Some(params), Some(best)) = (&view.best_params, &view.best_trial_id) else {
        return Err(Failure::local("no_trials", "no completed trials"));
    };
    Ok(
        json!({"status": "ok", "params": params, "value": view.best_value,
              "trial_id": trial_number(&study, best)}),
    )
}

async fn get_status(client: &RunnerClient, args: &Map<String, Value>) -> Result<Value, Failure> {
    let study = study_name(args)?;
    let view = load_study(client, &study).await?;
    Ok(
        json!({"status": "ok", "study_name": study.as_str(), "n_trials": asked_trials(&view),
              "n_complete": view.n_complete.unwrap_or(0),
              "direction": view.effective_direction().as_str(),
              "best_value": view.best_value, "best_params": view.best_params}),
    )
}

async fn delete_study(client: &RunnerClient, args: &Map<String, Value>) -> Result<Value, Failure> {
    let study = study_name(args)?;
    client
        .delete_run(&study)
        .await
        .map_err(|e| not_found_as_study(e, &study))?;
    Ok(json!({"status": "ok", "study_name": study.as_str()}))
}

async fn list_studies(client: &RunnerClient) -> Result<Value, Failure> {
    let mut studies = Vec::new();
    loop {
        let page = client.list_runs(LIST_PAGE, studies.len() as u64).await?;
        let fetched = page.runs.len();
        studies.extend(page.runs.iter().map(study_summary));
        if fetched == 0 || studies.len() as u64 >= page.total || studies.len() >= LIST_MAX {
            break;
        }
    }
    let count = studies.len();
    Ok(json!({"status": "ok", "studies": studies, "count": count}))
}

fn study_summary(run: &Value) -> Value {
    let direction = run
        .get("direction")
        .or_else(|| run.get("objective").and_then(|o| o.get("direction")))
        .cloned()
        .unwrap_or(Value::Null);
    json!({"name": run.get("run_id").cloned().unwrap_or(Value::Null),
           "n_trials": run.get("n_trials").cloned().unwrap_or(Value::Null),
           "direction": direction})
}

/// A trial number as the caller may send it: a non-negative integer, or one written as a string.
fn trial_number_arg(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn study_name(args: &Map<String, Value>) -> Result<RunId, Failure> {
    let Some(Value::String(name)) = args.get("study_name") else {
        return Err(Failure::local("invalid_args", "study_name is required"));
    };
    RunId::parse(name.as_str())
        .map_err(|e| Failure::local("invalid_args", format!("study_name: {e}")))
}

fn batch_size(args: &Map<String, Value>) -> Result<u32, Failure> {
    match args.get("n") {
        None | Some(Value::Null) => Ok(1),
        Some(n) => match n.as_u64() {
            Some(n @ 1..=MAX_BATCH) => Ok(n as u32),
            _ => Err(Failure::local(
                "invalid_args",
                format!("n must be an integer from 1 to {MAX_BATCH}"),
            )),
        },
    }
}

async fn load_study(client: &RunnerClient, study: &RunId) -> Result<RunView, Failure> {
    client
        .get_run(study)
        .await
        .map_err(|e| not_found_as_study(e, study))
}

fn not_found_as_study(error: ClientError, study: &RunId) -> Failure {
    if error.is_not_found() {
        Failure {
            kind: "not_found".into(),
            message: format!("study '{study}' not found"),
            ..Failure::from(error)
        }
    } else {
        Failure::from(error)
    }
}

/// Trials asked so far: reported trials plus pending proposals (Optuna's `len(study.trials)`).
fn asked_trials(view: &RunView) -> u64 {
    let pending = view.n_pending.or_else(|| {
        view.other
            .get("trials")
            .and_then(|t| t.get("pending"))
            .and_then(Value::as_u64)
    });
    view.n_trials.unwrap_or(0) + pending.unwrap_or(0)
}

/// The search space stored with the run, when the runner reports one.
fn stored_space(view: &RunView) -> Option<Value> {
    match &view.search_space {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Object(items) if items.is_empty() => None,
        space => Some(space.clone()),
    }
}

/// The runner trial id of study trial `number`: `"{study}#{number}"`, unique across runs.
pub fn runner_trial_id(study: &RunId, number: u64) -> Result<TrialId, Failure> {
    TrialId::parse(format!("{study}#{number}"))
        .map_err(|e| Failure::local("invalid_args", format!("trial id for study '{study}': {e}")))
}

/// The study trial number behind a runner trial id, or the id itself when it is not one of ours.
fn trial_number(study: &RunId, trial_id: &str) -> Value {
    trial_id
        .strip_prefix(study.as_str())
        .and_then(|rest| rest.strip_prefix('#'))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or_else(|| json!(trial_id), |n| json!(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_runner() -> Runner<'static> {
        Err(Failure::local("no_runner", "no runner configured"))
    }

    async fn reply(line: &str) -> Value {
        respond(line.as_bytes(), no_runner(), "2025-01-01T00:00:00Z").await
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn empty_and_invalid_lines_get_the_clis_reasons() {
        block_on(async {
            assert_eq!(reply("").await["reason"], json!("empty input"));
            let invalid = reply("{oops").await;
            assert_eq!(invalid["status"], json!("error"));
            assert!(
                invalid["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("invalid JSON")
            );
            assert_eq!(
                reply(r#"{"function":"fly","args":{}}"#).await["reason"],
                json!("unknown function: fly")
            );
        });
    }

    #[test]
    fn ping_without_a_runner_says_tpe_is_unavailable() {
        block_on(async {
            let pong = reply(r#"{"function":"ping"}"#).await;
            assert_eq!(pong["status"], json!("ok"));
            assert_eq!(pong["optuna_available"], json!(false));
        });
    }

    #[test]
    fn functions_needing_the_runner_fail_clearly_without_one() {
        block_on(async {
            let out = reply(r#"{"function":"suggest","args":{"study_name":"s"}}"#).await;
            assert_eq!(out["status"], json!("error"));
            assert_eq!(out["error"]["kind"], json!("no_runner"));
        });
    }

    #[test]
    fn trial_ids_round_trip_through_the_runner_form() {
        let study = RunId::parse("ca_edge").unwrap();
        let id = runner_trial_id(&study, 12).unwrap();
        assert_eq!(id.as_str(), "ca_edge#12");
        assert_eq!(trial_number(&study, id.as_str()), json!(12));
        assert_eq!(trial_number(&study, "other-7"), json!("other-7"));
    }

    #[test]
    fn trial_numbers_come_as_integers_or_numeric_strings() {
        assert_eq!(trial_number_arg(&json!(7)), Some(7));
        assert_eq!(trial_number_arg(&json!(" 8 ")), Some(8));
        assert_eq!(trial_number_arg(&json!(-1)), None);
        assert_eq!(trial_number_arg(&json!(1.5)), None);
        assert_eq!(trial_number_arg(&json!("x")), None);
    }

    #[test]
    fn batch_sizes_are_bounded() {
        let args = |n: Value| {
            let mut map = Map::new();
            map.insert("n".into(), n);
            map
        };
        assert_eq!(batch_size(&Map::new()).unwrap(), 1);
        assert_eq!(batch_size(&args(json!(64))).unwrap(), 64);
        assert!(batch_size(&args(json!(0))).is_err());
        assert!(batch_size(&args(json!(65))).is_err());
        assert!(batch_size(&args(json!("4"))).is_err());
    }

    #[test]
    fn asked_trials_count_pending_proposals() {
        let view: RunView = serde_json::from_value(json!({
            "run_id": "s", "n_trials": 3, "trials": {"pending": 2}
        }))
        .unwrap();
        assert_eq!(asked_trials(&view), 5);
    }
}
