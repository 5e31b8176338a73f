//! The binary launched as Thunderline's invoker launches it, in echo mode and against servers that fail on
//! purpose. The happy path against the real runner is in `tests/tests/bridge_e2e.rs`.

mod common;

use std::time::Duration;

use common::{ScriptedServer, closed_port, invoke, silent_server};
use serde_json::json;

const STUB: &str = "/app/priv/cerebros_bridge_stub.py";
/// `CEREBROS_TIMEOUT_MS` of the failure tests: the process must be gone before the invoker would give up.
const TIMEOUT_MS: &str = "3000";

fn record_payload() -> String {
    json!({"op": "record_trial", "payload": {
        "trial_id": "t-01", "run_id": "r-01", "pulse_id": null, "candidate_id": null,
        "status": "succeeded", "metrics": {"accuracy": 0.91, "latency_ms": 31.2},
        "parameters": {"lr": 0.001, "head": "kgam"}, "artifact_uri": null, "duration_ms": 5400,
        "rank": 1, "warnings": [], "spectral_norm": false, "mlflow_run_id": null}})
    .to_string()
}

#[test]
fn echo_mode_answers_from_the_env_payload_with_stdin_left_open() {
    let payload = record_payload();
    let call = invoke(
        &[STUB, "--bridge-op", "record_trial"],
        &[
            ("CEREBROS_BRIDGE_OP", "record_trial"),
            ("CEREBROS_BRIDGE_RUN_ID", "r-01"),
            ("CEREBROS_BRIDGE_TRIAL_ID", "t-01"),
            ("CEREBROS_BRIDGE_PAYLOAD", &payload),
        ],
        None,
    );
    assert_eq!(call.code, 0, "{}", call.stderr);
    let reply = call.json();
    assert_eq!(reply["status"], json!("ok"));
    assert_eq!(reply["op"], json!("record_trial"));
    assert_eq!(reply["echo"]["metrics"]["accuracy"], json!(0.91));
}

#[test]
fn echo_mode_with_no_payload_does_not_wait_for_an_eof() {
    let call = invoke(&[STUB, "--bridge-op", "finalize_run"], &[], None);
    assert_eq!(call.code, 0, "{}", call.stderr);
    assert_eq!(
        call.json(),
        json!({"status": "ok", "op": "finalize_run", "echo": {}})
    );
}

#[test]
fn a_payload_on_stdin_is_read_without_closing_stdin() {
    let call = invoke(
        &[],
        &[],
        Some(br#"{"op":"start_run","payload":{"run_id":"r"}}"#),
    );
    assert_eq!(call.code, 0, "{}", call.stderr);
    assert_eq!(
        call.json(),
        json!({"status": "ok", "op": "start_run", "echo": {"run_id": "r"}})
    );
}

#[test]
fn the_op_variable_wins_over_the_flag_and_the_payload() {
    let call = invoke(
        &["--bridge-op", "from_flag", "--unknown-flag"],
        &[
            ("CEREBROS_BRIDGE_OP", "from_env"),
            ("CEREBROS_BRIDGE_PAYLOAD", r#"{"op":"from_payload"}"#),
        ],
        None,
    );
    assert_eq!(call.json()["op"], json!("from_env"));
    let call = invoke(
        &["--bridge-op", "from_flag"],
        &[("CEREBROS_BRIDGE_PAYLOAD", r#"{"op":"from_payload"}"#)],
        None,
    );
    assert_eq!(call.json()["op"], json!("from_flag"));
}

#[test]
fn invalid_json_is_an_empty_payload() {
    let call = invoke(
        &[STUB, "--bridge-op", "start_run"],
        &[("CEREBROS_BRIDGE_PAYLOAD", "{not json")],
        None,
    );
    assert_eq!(call.code, 0);
    assert_eq!(call.json()["echo"], json!({}));
    assert!(call.stderr.contains("not valid JSON"), "{}", call.stderr);
}

#[test]
fn a_runner_that_is_down_ends_non_zero_with_a_json_error_inside_the_deadline() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let call = invoke(
        &[STUB, "--bridge-op", "start_run"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("CEREBROS_TIMEOUT_MS", TIMEOUT_MS),
            (
                "CEREBROS_BRIDGE_PAYLOAD",
                r#"{"op":"start_run","payload":{"run_id":"r"}}"#,
            ),
        ],
        None,
    );
    assert_eq!(call.code, 1, "{}", call.stderr);
    let reply = call.json();
    assert_eq!(reply["status"], json!("error"));
    assert_eq!(reply["error"]["kind"], json!("connect"));
    assert!(reply["error"]["attempts"].as_u64().unwrap() > 1, "{reply}");
    assert!(
        call.elapsed < Duration::from_millis(TIMEOUT_MS.parse().unwrap()),
        "{:?}",
        call.elapsed
    );
}

#[test]
fn a_runner_that_never_answers_ends_non_zero_with_a_json_error_inside_the_deadline() {
    let url = format!("http://127.0.0.1:{}", silent_server());
    let call = invoke(
        &[STUB, "--bridge-op", "record_trial"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("CEREBROS_TIMEOUT_MS", TIMEOUT_MS),
            ("CEREBROS_BRIDGE_PAYLOAD", &record_payload()),
        ],
        None,
    );
    assert_eq!(call.code, 1, "{}", call.stderr);
    let reply = call.json();
    assert_eq!(reply["error"]["kind"], json!("timeout"));
    assert_eq!(reply["error"]["attempts"], json!(1));
    assert!(
        call.elapsed < Duration::from_millis(TIMEOUT_MS.parse().unwrap()),
        "{:?}",
        call.elapsed
    );
}

#[test]
fn a_503_is_retried_and_the_runners_reply_is_printed_as_is() {
    let reply = r#"{"run_id":"r-01","trial":"t-01","status":"succeeded","mlflow_run_id":null}"#;
    let server = ScriptedServer::start(vec![(503, ""), (200, reply)]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let call = invoke(
        &[STUB, "--bridge-op", "record_trial"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("CEREBROS_BRIDGE_PAYLOAD", &record_payload()),
        ],
        None,
    );
    assert_eq!(call.code, 0, "{}", call.stderr);
    assert_eq!(call.stdout, format!("{reply}\n").into_bytes());
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].line, "POST /bridge/record HTTP/1.1");
    let body = &seen[1].body;
    assert_eq!(body["run_id"], json!("r-01"));
    assert_eq!(body["trial_id"], json!("t-01"));
    assert_eq!(body["metrics"]["latency_ms"], json!(31.2));
    assert!(body.get("payload").is_none(), "fields must be flat: {body}");
}

#[test]
fn a_conflict_is_reported_at_once_without_retrying() {
    let server = ScriptedServer::start(vec![(
        409,
        r#"{"error":{"code":"conflict","message":"trial t-01 exists with other parameters"}}"#,
    )]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let call = invoke(
        &[STUB, "--bridge-op", "record_trial"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("CEREBROS_BRIDGE_PAYLOAD", &record_payload()),
        ],
        None,
    );
    assert_eq!(call.code, 1);
    let reply = call.json();
    assert_eq!(reply["error"]["http_status"], json!(409));
    assert_eq!(reply["error"]["code"], json!("conflict"));
    assert_eq!(reply["error"]["attempts"], json!(1));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn the_token_is_sent_as_a_bearer() {
    let server = ScriptedServer::start(vec![(200, r#"{"run_id":"r","status":"started"}"#)]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let call = invoke(
        &[],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("RUNNER_API_TOKEN", "s3cret"),
            (
                "CEREBROS_BRIDGE_PAYLOAD",
                r#"{"op":"start_run","payload":{"run_id":"r"}}"#,
            ),
        ],
        None,
    );
    assert_eq!(call.code, 0, "{}", call.stderr);
    let seen = server.requests();
    assert!(
        seen[0]
            .headers
            .contains(&("authorization".into(), "Bearer s3cret".into())),
        "{:?}",
        seen[0].headers
    );
}

#[test]
fn other_ops_are_a_clear_error_in_remote_mode() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let call = invoke(
        &[STUB, "--bridge-op", "run_nas"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            ("CEREBROS_BRIDGE_PAYLOAD", "{}"),
        ],
        None,
    );
    assert_eq!(call.code, 2);
    let reply = call.json();
    assert_eq!(reply["error"]["kind"], json!("unsupported_op"));
    assert_eq!(reply["error"]["attempts"], json!(0));
}

#[test]
fn an_invalid_contract_is_refused_before_any_request() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let call = invoke(
        &[STUB, "--bridge-op", "record_trial"],
        &[
            ("CEREBROS_REMOTE_URL", &url),
            (
                "CEREBROS_BRIDGE_PAYLOAD",
                r#"{"op":"record_trial","payload":{"run_id":"r"}}"#,
            ),
        ],
        None,
    );
    assert_eq!(call.code, 2);
    let reply = call.json();
    assert_eq!(reply["error"]["kind"], json!("invalid_payload"));
    assert!(
        reply["reason"].as_str().unwrap().contains("trial_id"),
        "{reply}"
    );
}

#[test]
fn the_tpe_protocol_answers_one_line_while_stdin_stays_open() {
    let call = invoke(
        &["python/cerebros/service/tpe_cli.py"],
        &[],
        Some(b"{\"function\":\"ping\",\"args\":{}}\n"),
    );
    assert_eq!(call.code, 0);
    assert_eq!(call.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
    let reply = call.json();
    assert_eq!(reply["status"], json!("ok"));
    assert_eq!(reply["optuna_available"], json!(false));
}

#[test]
fn help_and_version_print_text_and_exit_zero() {
    let call = invoke(&["--version"], &[], None);
    assert_eq!(call.code, 0);
    assert!(String::from_utf8_lossy(&call.stdout).starts_with("cerebros-bridge "));
    let call = invoke(&["--help"], &[], None);
    assert!(String::from_utf8_lossy(&call.stdout).contains("--bridge-op"));
}
