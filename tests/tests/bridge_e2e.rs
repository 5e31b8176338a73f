//! `cerebros-bridge` end to end against the real `cerebros-runner`, launched exactly as Thunderline's invoker
//! launches the stub: `<bridge> <script path> --bridge-op OP`, the per-op environment variables, the payload in
//! `CEREBROS_BRIDGE_PAYLOAD`, stdin open and never closed. The TPE protocol is driven as `TPEClient` drives
//! `tpe_cli.py`: one JSON line on stdin, one reply line read back.
//!
//! Needs `cargo build --workspace --bins` first (the binaries are found with `binary_path`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bridge::client::{ProposeRequest, TrainRequest};
use bridge::contracts::{
    Direction, Objective, RunFinalizedV1, RunId, RunStartedV1, RunStatus, TrialId, TrialReportedV1,
};
use bridge::{ClientConfig, ErrorKind, RunnerClient};
use serde_json::{Value, json};
use thunderhelm_tests::binary_path;

const STUB: &str = "/app/lib/thunderline/priv/cerebros_bridge_stub.py";

/// A runner on a free loopback port with its own data directory; killed on drop.
struct Runner {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Runner {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut command = Command::new(binary_path("cerebros-runner"));
        for (name, _) in std::env::vars() {
            if name.starts_with("MLFLOW_")
                || name.starts_with("MINIO_")
                || name.starts_with("AWS_")
                || name.starts_with("RUNNER_")
                || name.starts_with("CEREBROS_")
            {
                command.env_remove(name);
            }
        }
        let child = command
            .env("PORT", port.to_string())
            .env("RUNNER_BIND", "127.0.0.1")
            .env("RUNNER_DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cerebros-runner");
        let runner = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let started = Instant::now();
        while block_on(runner.client().healthz()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cerebros-runner did not answer /healthz within 60 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
        runner
    }

    fn client(&self) -> RunnerClient {
        let mut config = ClientConfig::new(&self.url);
        config.call_timeout = Duration::from_secs(120);
        RunnerClient::new(config).expect("client")
    }

    fn run(&self, run_id: &str) -> Value {
        let view = block_on(
            self.client()
                .get_run(&RunId::parse(run_id).expect("run id")),
        )
        .expect("GET /runs/{id}");
        serde_json::to_value(view).expect("view as JSON")
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// What one bridge call produced.
struct Call {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {:?}; stderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Spawns the bridge with `args` and `env`, writes `stdin` without ever closing it, and waits for the exit.
fn spawn_bridge(args: &[&str], env: &[(&str, String)], stdin: Option<&str>) -> Call {
    let mut command = Command::new(binary_path("cerebros-bridge"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CEREBROS_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PYTHONUNBUFFERED", "1")
        .env("MLFLOW_TRACKING_URI", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cerebros-bridge");
    let mut child_stdin = child.stdin.take().expect("stdin");
    if let Some(data) = stdin {
        child_stdin.write_all(data.as_bytes()).expect("write stdin");
        child_stdin.flush().expect("flush stdin");
    }
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("cerebros-bridge still running after 60 s");
        }
        thread::sleep(Duration::from_millis(5));
    };
    drop(child_stdin);
    Call {
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        code: status.code().unwrap_or(-1),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// One bridge op, with the environment Thunderline's invoker sets for it.
fn bridge_op(runner: &Runner, op: &str, script: &str, payload: Value) -> Call {
    let body = &payload;
    let mut env = vec![
        ("CEREBROS_REMOTE_URL", runner.url.clone()),
        ("CEREBROS_TIMEOUT_MS", "15000".to_owned()),
        ("CEREBROS_BRIDGE_OP", op.to_owned()),
        (
            "CEREBROS_BRIDGE_PAYLOAD",
            json!({"op": op, "payload": payload}).to_string(),
        ),
    ];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let run_id = text(&body["run_id"]).or_else(|| text(&body["opts"]["run_id"]));
    if let Some(run_id) = run_id {
        env.push(("CEREBROS_BRIDGE_RUN_ID", run_id.clone()));
        if op == "start_run" {
            let correlation = text(&body["correlation_id"]).unwrap_or(run_id);
            env.push(("CEREBROS_BRIDGE_CORRELATION", correlation));
        }
    }
    if let (Some(trial), "record_trial") = (text(&body["trial_id"]), op) {
        env.push(("CEREBROS_BRIDGE_TRIAL_ID", trial));
    }
    if let (Some(status), "finalize_run") = (text(&body["status"]), op) {
        env.push(("CEREBROS_BRIDGE_STATUS", status));
    }
    spawn_bridge(&[script, "--bridge-op", op], &env, None)
}

fn trial(run_id: &str, trial_id: &str, status: &str, accuracy: f64, lr: f64) -> Value {
    json!({"trial_id": trial_id, "run_id": run_id, "pulse_id": null, "candidate_id": null,
           "status": status, "metrics": {"accuracy": accuracy, "latency_ms": 31.2},
           "parameters": {"lr": lr, "head": "kgam"}, "artifact_uri": null, "duration_ms": 5400,
           "rank": null, "warnings": [], "spectral_norm": false, "mlflow_run_id": null})
}

#[test]
fn every_contract_op_reaches_the_runner_and_duplicates_are_absorbed() {
    let runner = Runner::start();
    let start = json!({"run_id": "run-e2e", "pulse_id": "p-1", "budget": {"max_trials": 4},
        "parameters": {"lr": 0.01}, "tau": 0.5, "correlation_id": "corr-1",
        "timestamp": "2025-09-27T18:38:59.123456Z", "extra": {"note": "e2e"}, "objective": "accuracy",
        "dataset_id": "moons", "search_space": {"lr": {"loguniform": [1e-4, 1e-1]}}});
    let call = bridge_op(&runner, "start_run", STUB, start.clone());
    assert_eq!(call.code, 0, "{}", call.stderr);
    let reply = call.json();
    assert_eq!(
        (reply["run_id"].as_str(), reply["status"].as_str()),
        (Some("run-e2e"), Some("started"))
    );

    let again = bridge_op(&runner, "start_run", STUB, start);
    assert_eq!(
        again.code, 0,
        "a repeated start is idempotent: {}",
        again.stdout
    );

    let trials = [
        trial("run-e2e", "t-1", "succeeded", 0.81, 0.01),
        trial("run-e2e", "t-2", "succeeded", 0.93, 0.001),
        trial("run-e2e", "t-3", "failed", 0.99, 0.1),
    ];
    for t in &trials {
        let call = bridge_op(&runner, "record_trial", STUB, t.clone());
        assert_eq!(call.code, 0, "{}", call.stderr);
        let reply = call.json();
        assert_eq!(reply["trial"], t["trial_id"]);
        assert_eq!(reply["status"], t["status"]);
    }

    // Thunderline retries every error: the same record again must not add a trial.
    let duplicate = bridge_op(&runner, "record_trial", STUB, trials[1].clone());
    assert_eq!(duplicate.code, 0, "{}", duplicate.stderr);
    assert_eq!(duplicate.json()["trial"], json!("t-2"));
    assert_eq!(runner.run("run-e2e")["n_trials"], json!(3));

    // The same trial id with other parameters is a permanent error, reported once, exit non-zero.
    let conflicting = bridge_op(
        &runner,
        "record_trial",
        STUB,
        trial("run-e2e", "t-2", "succeeded", 0.5, 0.5),
    );
    assert_eq!(conflicting.code, 1, "{}", conflicting.stdout);
    let error = conflicting.json();
    assert_eq!(error["status"], json!("error"));
    assert_eq!(error["error"]["http_status"], json!(409));
    assert_eq!(error["error"]["attempts"], json!(1));

    let fin = json!({"run_id": "run-e2e", "pulse_id": "p-1", "status": "succeeded", "metrics": {},
        "best_trial_id": null, "duration_ms": 1200, "returncode": 0, "artifact_refs": [],
        "warnings": [], "stdout_excerpt": null, "payload": {}});
    let call = bridge_op(&runner, "finalize_run", STUB, fin);
    assert_eq!(call.code, 0, "{}", call.stderr);
    let reply = call.json();
    assert_eq!(reply["status"], json!("succeeded"));
    assert_eq!(reply["trials"], json!(3));
    assert_eq!(
        reply["best_trial_id"],
        json!("t-2"),
        "the failed trial must not win: {reply}"
    );

    let run = runner.run("run-e2e");
    assert_eq!(run["n_complete"], json!(2));
    assert_eq!(run["best_trial_id"], json!("t-2"));
}

#[test]
fn the_spec_opts_start_run_with_a_generated_script_is_mapped_onto_bridge_start() {
    let runner = Runner::start();
    let payload = json!({
        "spec": {"dataset_id": "moons", "search_space": {"lr": {"loguniform": [1e-4, 1e-1]},
                 "units": {"int": [4, 32]}}, "objective": "accuracy"},
        "opts": {"run_id": "run-nas-1", "budget": {"max_trials": 10, "population_size": 20},
                 "parameters": {"mutation_rate": 0.1, "crossover_rate": 0.7, "elite_size": 2}, "tau": 1.0}
    });
    let script = "/tmp/cerebros_scripts/cerebros_run-nas-1_1733400000000.py";
    let call = bridge_op(&runner, "start_run", script, payload);
    assert_eq!(call.code, 0, "{}", call.stderr);
    assert_eq!(call.json()["status"], json!("started"));

    let run = runner.run("run-nas-1");
    assert_eq!(run["dataset_id"], json!("moons"));
    assert_eq!(run["search_space"]["units"], json!({"int": [4, 32]}));
    assert_eq!(run["budget"]["population_size"], json!(20));
    assert_eq!(run["parameters"]["elite_size"], json!(2));
    assert_eq!(run["objective"]["metric"], json!("accuracy"));
}

/// One TPE CLI call: the request line on stdin (never closed), the last line starting with `{` back.
fn tpe(runner: &Runner, function: &str, args: Value) -> Value {
    let line = format!("{}\n", json!({"function": function, "args": args}));
    let call = spawn_bridge(
        &["python/cerebros/service/tpe_cli.py"],
        &[("CEREBROS_REMOTE_URL", runner.url.clone())],
        Some(&line),
    );
    assert_eq!(call.code, 0, "the TPE CLI always exits 0: {}", call.stderr);
    let last = call
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in {:?}", call.stdout));
    serde_json::from_str(last).expect("reply line is JSON")
}

/// A smooth bowl with its minimum at x = 0.3, y = 12.
fn bowl(params: &Value) -> f64 {
    let x = params["x"].as_f64().expect("x is a float");
    let y = params["y"].as_f64().expect("y is a number");
    (x - 0.3).powi(2) + ((y - 12.0) / 20.0).powi(2)
}

#[test]
fn the_tpe_protocol_runs_a_full_suggest_record_loop() {
    let runner = Runner::start();
    let study = "bowl-study";
    assert_eq!(
        tpe(&runner, "ping", json!({}))["optuna_available"],
        json!(true)
    );

    let space = json!([
        {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
        {"name": "y", "type": "int", "low": 1, "high": 40},
        {"name": "act", "type": "categorical", "choices": ["relu", "tanh"]}
    ]);
    let init = tpe(
        &runner,
        "init_study",
        json!({"study_name": study, "search_space": space,
        "direction": "minimize", "seed": 7, "sampler": "TPESampler"}),
    );
    assert_eq!(init["status"], json!("ok"), "{init}");
    assert_eq!(
        (init["n_params"].clone(), init["direction"].clone()),
        (json!(3), json!("minimize"))
    );

    let mut best = f64::INFINITY;
    for round in 0..14u64 {
        let suggestion = tpe(&runner, "suggest", json!({"study_name": study}));
        assert_eq!(suggestion["status"], json!("ok"), "{suggestion}");
        assert_eq!(suggestion["trial_id"], json!(round));
        let params = suggestion["params"].clone();
        let x = params["x"].as_f64().expect("x");
        assert!((0.0..=1.0).contains(&x), "{params}");
        assert!(
            ["relu", "tanh"].contains(&params["act"].as_str().expect("act")),
            "{params}"
        );
        let value = bowl(&params);
        let recorded = tpe(
            &runner,
            "record",
            json!({"study_name": study, "params": params,
            "value": value, "trial_id": suggestion["trial_id"], "state": "complete"}),
        );
        assert_eq!(recorded["status"], json!("ok"), "{recorded}");
        assert_eq!(recorded["trial_id"], json!(round));
        assert_eq!(recorded["n_complete"], json!(round + 1));
        assert_eq!(
            recorded["is_best"],
            json!(value < best),
            "value {value}, best so far {best}"
        );
        best = best.min(value);
    }

    let batch = tpe(
        &runner,
        "suggest_batch",
        json!({"study_name": study, "n": 4}),
    );
    assert_eq!(batch["count"], json!(4), "{batch}");
    let ids: Vec<u64> = batch["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .map(|t| t["trial_id"].as_u64().expect("int trial id"))
        .collect();
    assert_eq!(ids, vec![14, 15, 16, 17]);

    let failed = tpe(
        &runner,
        "record",
        json!({"study_name": study, "params": batch["trials"][0]["params"],
        "value": null, "trial_id": 14, "state": "fail"}),
    );
    assert_eq!(failed["status"], json!("ok"), "{failed}");
    assert_eq!(failed["is_best"], json!(false));

    let best_params = tpe(&runner, "best_params", json!({"study_name": study}));
    assert_eq!(best_params["status"], json!("ok"), "{best_params}");
    assert_eq!(best_params["value"].as_f64(), Some(best));
    assert!(best_params["trial_id"].is_u64(), "{best_params}");

    let status = tpe(&runner, "get_status", json!({"study_name": study}));
    assert_eq!(status["n_complete"], json!(14), "{status}");
    assert_eq!(status["direction"], json!("minimize"));
    assert_eq!(status["best_value"].as_f64(), Some(best));
    assert_eq!(status["best_params"], best_params["params"]);

    let listed = tpe(&runner, "list_studies", json!({}));
    let names: Vec<&str> = listed["studies"]
        .as_array()
        .expect("studies")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&study), "{listed}");
    assert_eq!(listed["count"], json!(names.len()));

    assert_eq!(
        tpe(&runner, "delete_study", json!({"study_name": study}))["status"],
        json!("ok")
    );
    let gone = tpe(&runner, "get_status", json!({"study_name": study}));
    assert_eq!(gone["status"], json!("error"));
    assert_eq!(gone["reason"], json!(format!("study '{study}' not found")));
}

#[test]
fn repeated_suggestions_before_any_record_get_distinct_trial_numbers() {
    let runner = Runner::start();
    let space = json!([{"name": "x", "type": "float", "low": -1.0, "high": 1.0}]);
    let init = tpe(
        &runner,
        "init_study",
        json!({"study_name": "parallel", "search_space": space}),
    );
    assert_eq!(init["status"], json!("ok"), "{init}");
    let first = tpe(&runner, "suggest", json!({"study_name": "parallel"}));
    let second = tpe(&runner, "suggest", json!({"study_name": "parallel"}));
    assert_ne!(first["trial_id"], second["trial_id"], "{first} / {second}");
    for s in [&second, &first] {
        let r = tpe(
            &runner,
            "record",
            json!({"study_name": "parallel", "params": s["params"],
            "value": s["params"]["x"], "trial_id": s["trial_id"]}),
        );
        assert_eq!(r["status"], json!("ok"), "{r}");
    }
    assert_eq!(
        tpe(&runner, "get_status", json!({"study_name": "parallel"}))["n_complete"],
        json!(2)
    );
}

#[test]
fn the_typed_client_covers_the_runners_api() {
    let runner = Runner::start();
    let client = runner.client();
    block_on(async {
        let run = RunId::parse("client-run").unwrap();
        let mut started = RunStartedV1::new(run.clone());
        started.dataset_id = Some("moons".into());
        started.objective = Some(Objective::new("accuracy", Direction::Maximize));
        started.search_space = json!({"learning_rate": {"loguniform": [1e-3, 1e-1]},
                                      "neurons_per_unit": {"int": [4, 16]}});
        let reply = client.start_run(&started).await.expect("start");
        assert_eq!(
            (reply.run_id.as_str(), reply.status.as_str()),
            ("client-run", "started")
        );

        let proposals = client
            .propose(&ProposeRequest::new(run.clone(), 3, None))
            .await
            .expect("propose with the stored space");
        assert_eq!(
            proposals.iter().map(|p| p.rank).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for p in &proposals {
            let lr = p.params["learning_rate"].as_f64().expect("learning_rate");
            assert!((1e-3..=1e-1).contains(&lr), "{:?}", p.params);
            let units = p.params["neurons_per_unit"]
                .as_i64()
                .expect("an int stays an int");
            assert!((4..=16).contains(&units), "{:?}", p.params);
        }

        let mut params = proposals[0].params.clone();
        params.insert("epochs".into(), json!(2));
        let trained = client
            .train(&TrainRequest {
                trial_id: TrialId::parse("client-t1").unwrap(),
                run_id: Some(run.clone()),
                params,
                dataset: None,
                dataset_id: Some("moons".into()),
                mode: None,
            })
            .await
            .expect("train");
        let accuracy = trained.metrics["accuracy"].as_f64().expect("accuracy");
        assert!((0.0..=1.0).contains(&accuracy), "{:?}", trained.metrics);

        let mut report = TrialReportedV1::new(run.clone(), TrialId::parse("client-t2").unwrap());
        report.metrics.insert("accuracy".into(), json!(0.25));
        report.parameters = proposals[1].params.clone();
        let recorded = client.record_trial(&report).await.expect("record");
        assert_eq!(recorded.trial, "client-t2");

        let view = client.get_run(&run).await.expect("run");
        assert_eq!(view.n_trials, Some(2));
        assert_eq!(
            view.best_trial_id.as_deref(),
            Some(if accuracy >= 0.25 {
                "client-t1"
            } else {
                "client-t2"
            })
        );
        let page = client.list_trials(&run, 1, 1).await.expect("trials");
        assert_eq!((page.trials.len(), page.total), (1, 2));
        let trial = client
            .get_trial(&TrialId::parse("client-t1").unwrap())
            .await
            .expect("trial");
        assert_eq!(trial.run_id.as_deref(), Some("client-run"));

        let finalized = client
            .finalize_run(&RunFinalizedV1::new(run.clone(), RunStatus::Succeeded))
            .await
            .expect("finalize");
        assert_eq!(finalized.trials, Some(2));
        let runs = client.list_runs(100, 0).await.expect("runs");
        assert!(runs.runs.iter().any(|r| r["run_id"] == json!("client-run")));

        client.delete_run(&run).await.expect("delete");
        let gone = client.get_run(&run).await.expect_err("deleted");
        assert_eq!(
            (gone.kind, gone.http_status, gone.attempts),
            (ErrorKind::HttpStatus, Some(404), 1)
        );
    });
}
