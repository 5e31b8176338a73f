//! OTLP trace export of the runner binary, against in-process collectors: OTLP/HTTP (protobuf `POST /v1/traces`)
//! and OTLP/gRPC (`TraceService/Export`). Each test runs `cerebros-runner` with the OTEL variables pointing at its
//! collector, calls it with a caller `traceparent`, stops it with SIGTERM and checks what was flushed.

#[path = "common/binary.rs"]
mod binary;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

use binary::{free_port, wait_healthy};

/// The caller's trace: W3C `traceparent` = version-trace_id-parent_id-flags (sampled).
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// A second caller trace, for the training request.
const TRAIN_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const TRAIN_SPAN: &str = "b7ad6b7169203331";

/// Every export request a collector received.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// One exported span, flattened with its resource.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    resource: HashMap<String, String>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn flatten(received: &Received) -> Vec<Exported> {
    let mut out = Vec::new();
    for request in received.lock().unwrap().iter() {
        for rs in &request.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push(Exported {
                        name: span.name.clone(),
                        kind: span.kind,
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        attributes: attributes(&span.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    out
}

async fn http_export(State(received): State<Received>, body: Bytes) -> impl IntoResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            (
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/plain")],
            b"bad protobuf".to_vec(),
        ),
    }
}

/// An OTLP/HTTP collector on a free port.
async fn http_collector() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(http_export))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

struct GrpcCollector(Received);

#[async_trait::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC collector on a free port.
async fn grpc_collector() -> (SocketAddr, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(GrpcCollector(received.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    (addr, received)
}

/// A stand-in MLflow server that answers 503 to everything and keeps each request's `traceparent` and
/// `tracestate`, as `traceparent;tracestate`.
async fn fake_mlflow() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .fallback(any(
            |State(seen): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap| async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let traceparent = header("traceparent");
                if !traceparent.is_empty() {
                    seen.lock()
                        .unwrap()
                        .push(format!("{traceparent};{}", header("tracestate")));
                }
                StatusCode::SERVICE_UNAVAILABLE
            },
        ))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn start(data_dir: &std::path::Path, port: u16, env: &[(&str, String)]) -> Child {
    let log = std::fs::File::create(data_dir.join("stderr.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cerebros-runner"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUNNER_DATA_DIR", data_dir)
        .env("RUNNER_BIND", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start cerebros-runner")
}

/// SIGTERM, then the exit status.
async fn stop(child: Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    tokio::task::spawn_blocking(move || child.wait().unwrap().code())
        .await
        .unwrap()
}

async fn call(
    client: &reqwest::Client,
    port: u16,
    path: &str,
    traceparent: &str,
    body: Value,
) -> Value {
    let resp = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=opaque")
        .header("x-request-id", format!("req-{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

fn one<'a>(spans: &'a [Exported], name: &str) -> &'a Exported {
    let found: Vec<&Exported> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span named {name:?} among {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// `POST /propose` (two proposals) in the caller's trace.
async fn propose_as_caller(client: &reqwest::Client, port: u16) -> Value {
    let body = json!({"run_id": "otlp", "k": 2, "space": {"lr": {"loguniform": [0.0001, 0.1]}}});
    call(
        client,
        port,
        "/propose",
        &format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_carries_the_callers_trace_through_propose_training_and_mlflow() {
    let (collector, received) = http_collector().await;
    let (mlflow, traceparents) = fake_mlflow().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        dir.path(),
        port,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test".into(),
            ),
            ("MLFLOW_TRACKING_URI", format!("http://{mlflow}")),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    let proposals = propose_as_caller(&client, port).await;
    assert_eq!(proposals.as_array().map(Vec::len), Some(2));
    let trained = call(
        &client,
        port,
        "/train",
        &format!("00-{TRAIN_TRACE}-{TRAIN_SPAN}-01"),
        json!({"trial_id": "t1", "run_id": "otlp", "dataset_id": "moons",
               "params": {"epochs": 2, "levels": 1, "neurons_per_unit": 4}}),
    )
    .await;
    assert_eq!(trained["status"], "succeeded", "{trained}");
    assert_eq!(stop(child).await, Some(0));

    let spans = flatten(&received);
    // The resource.
    let resource = &spans.first().expect("spans were exported").resource;
    assert_eq!(resource["service.name"], "cerebros-runner");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(resource["deployment.environment"], "test");

    // The /propose server span continues the caller's trace; sampling is its child.
    let request = one(&spans, "POST /propose");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.trace_id, CALLER_TRACE);
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.route"], "/propose");
    assert_eq!(request.attributes["http.response.status_code"], "200");
    assert_eq!(request.attributes["request_id"], "req-/propose");
    let sample = one(&spans, "propose.sample");
    assert_eq!(sample.trace_id, CALLER_TRACE);
    assert_eq!(sample.parent_span_id, request.span_id);
    assert_eq!(sample.attributes["k"], "2");

    // /train: the training span, the blocking fit inside it, and the MLflow deliveries, all in the caller's trace.
    let train = one(&spans, "POST /train");
    assert_eq!(
        (train.trace_id.as_str(), train.parent_span_id.as_str()),
        (TRAIN_TRACE, TRAIN_SPAN)
    );
    let training = one(&spans, "training");
    assert_eq!(training.trace_id, TRAIN_TRACE);
    assert_eq!(training.parent_span_id, train.span_id);
    assert_eq!(training.attributes["trial_id"], "t1");
    let fit = one(&spans, "training.fit");
    assert_eq!(fit.parent_span_id, training.span_id);
    let deliveries: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.name == "outbox.deliver" && s.trace_id == TRAIN_TRACE)
        .collect();
    assert!(!deliveries.is_empty(), "no outbox delivery in the trace");
    let mlflow_calls: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.name.starts_with("mlflow ") && s.trace_id == TRAIN_TRACE)
        .collect();
    assert!(!mlflow_calls.is_empty(), "no MLflow client span");
    assert!(
        mlflow_calls
            .iter()
            .all(|s| s.kind == SpanKind::Client as i32)
    );

    // The MLflow requests carried the trace: traceparent names an exported MLflow client span.
    let traceparents = traceparents.lock().unwrap().clone();
    let in_trace: Vec<&String> = traceparents
        .iter()
        .filter(|tp| tp.starts_with(&format!("00-{TRAIN_TRACE}-")))
        .collect();
    assert!(
        !in_trace.is_empty(),
        "MLflow saw no traceparent of the /train trace: {traceparents:?}"
    );
    for seen in in_trace {
        let (tp, tracestate) = seen.split_once(';').unwrap();
        assert_eq!(
            tracestate, "vendor=opaque",
            "the caller's tracestate is passed on"
        );
        let parent = tp.split('-').nth(2).unwrap();
        assert!(
            mlflow_calls.iter().any(|s| s.span_id == parent),
            "{tp} names no MLflow client span"
        );
    }

    // Log lines written inside the request carry its trace and span ids.
    let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let correlated = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["trace_id"] == TRAIN_TRACE)
        .count();
    assert!(correlated > 0, "no log line carries the trace id:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_with_service_name_and_flush_on_sigterm() {
    let (collector, received) = grpc_collector().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(
        dir.path(),
        port,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_SERVICE_NAME", "runner-under-test".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;
    propose_as_caller(&client, port).await;
    assert_eq!(stop(child).await, Some(0));

    let spans = flatten(&received);
    let request = one(&spans, "POST /propose");
    assert_eq!(request.resource["service.name"], "runner-under-test");
    assert_eq!(
        (request.trace_id.as_str(), request.parent_span_id.as_str()),
        (CALLER_TRACE, CALLER_SPAN)
    );
    assert_eq!(request.attributes["http.response.status_code"], "200");
    assert_eq!(
        one(&spans, "propose.sample").parent_span_id,
        request.span_id
    );
    let health = spans
        .iter()
        .find(|s| s.name == "GET /healthz")
        .expect("health checks are traced too");
    assert_ne!(
        health.trace_id, CALLER_TRACE,
        "a request without traceparent starts its own trace"
    );
    assert!(health.parent_span_id.is_empty());
}

#[test]
fn an_invalid_protocol_stops_startup_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cerebros-runner"))
        .env_clear()
        .env("RUNNER_DATA_DIR", dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_neither_fails_requests_nor_blocks_shutdown() {
    for protocol in ["http/protobuf", "grpc"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let closed = free_port();
        let child = start(
            dir.path(),
            port,
            &[
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{closed}"),
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
            ],
        );
        let client = reqwest::Client::new();
        wait_healthy(&client, port).await;
        propose_as_caller(&client, port).await;
        let stopping = Instant::now();
        assert_eq!(stop(child).await, Some(0), "{protocol}");
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "{protocol}: shutdown took {:?}",
            stopping.elapsed()
        );
        let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
        assert!(!logs.contains("panicked"), "{protocol}:\n{logs}");
    }
}
