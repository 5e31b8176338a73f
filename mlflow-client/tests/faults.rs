//! Faults: retries on scripted 5xx/429 replies (a local mock, because a real server cannot produce them
//! on demand), an unreachable server and a real MLflow server killed in the middle of a call.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use mlflow_client::{ArtifactRoot, Config, CreateRun, Error, Metric, MlflowClient, RetryPolicy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        backoff_factor: 0.01,
        backoff_jitter: 0.01,
        ..RetryPolicy::default()
    }
}

fn client_for(uri: &str, retry: RetryPolicy) -> MlflowClient {
    MlflowClient::new(Config::new(uri).expect("config").with_retry(retry)).expect("client")
}

const RUN_JSON: &str = r#"{"run":{"info":{"run_id":"abc","experiment_id":"1","status":"RUNNING","artifact_uri":"mlflow-artifacts:/1/abc/artifacts","lifecycle_stage":"active"},"data":{},"inputs":{}}}"#;

#[tokio::test]
async fn scripted_503_then_200_is_retried_and_counted() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/2.0/mlflow/runs/get"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream busy"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/2.0/mlflow/runs/get"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(RUN_JSON, "application/json"))
        .with_priority(2)
        .mount(&mock)
        .await;

    let client = client_for(&mock.uri(), fast_retry(3));
    let run = client
        .get_run("abc")
        .await
        .expect("succeeds on the third attempt");
    assert_eq!(run.info.run_id, "abc");
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 0));
    assert_eq!(mock.received_requests().await.expect("recorded").len(), 3);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/2.0/mlflow/runs/set-tag"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_raw(
                    r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
                    "application/json",
                ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/2.0/mlflow/runs/set-tag"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
        .with_priority(2)
        .mount(&mock)
        .await;

    let client = client_for(
        &mock.uri(),
        RetryPolicy {
            backoff_jitter: 0.0,
            ..fast_retry(2)
        },
    );
    let started = Instant::now();
    client
        .set_tag("abc", "k", "v")
        .await
        .expect("second attempt succeeds");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}, less than Retry-After",
        started.elapsed()
    );
    assert_eq!(client.retries_total(), 1);
}

#[tokio::test]
async fn exhausted_retries_keep_the_error_code_and_attempts() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/2.0/mlflow/runs/log-batch"))
        .respond_with(ResponseTemplate::new(503).set_body_raw(
            r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"maintenance"}"#,
            "application/json",
        ))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/2.0/mlflow/runs/get"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&mock)
        .await;

    let client = client_for(&mock.uri(), fast_retry(2));
    let err = client
        .log_batch("abc", &[Metric::new("m", 1.0, 0)], &[], &[])
        .await
        .expect_err("always 503");
    match &err {
        Error::Api {
            status,
            error_code,
            message,
            attempts,
            ..
        } => {
            assert_eq!(
                (*status, error_code.as_str(), message.as_str(), *attempts),
                (503, "TEMPORARILY_UNAVAILABLE", "maintenance", 3)
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(err.is_transient());

    let err = client.get_run("abc").await.expect_err("always 502");
    match &err {
        Error::Http {
            status,
            body,
            attempts,
            ..
        } => {
            assert_eq!((*status, *attempts), (502, 3));
            assert!(body.contains("bad gateway"));
        }
        other => panic!("expected Http, got {other:?}"),
    }
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (6, 4, 2));
}

#[tokio::test]
async fn streamed_file_upload_is_resent_whole_after_a_503() {
    let mock = MockServer::start().await;
    let artifact_path = "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/data/blob.bin";
    Mock::given(method("PUT"))
        .and(path(artifact_path))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path(artifact_path))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&mock)
        .await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("blob.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(&content))
        .expect("write");

    let client = client_for(&mock.uri(), fast_retry(2));
    client
        .upload_artifact(
            &ArtifactRoot::uri("mlflow-artifacts:/1/abc/artifacts"),
            "data/blob.bin",
            file.as_path(),
        )
        .await
        .expect("upload succeeds on retry");
    let requests = mock.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.body, content, "each attempt carries the whole file");
        assert_eq!(
            r.headers
                .get("content-length")
                .and_then(|v| v.to_str().ok()),
            Some("3000000")
        );
    }
}

#[tokio::test]
async fn unreachable_server_is_a_typed_transport_error() {
    let port = common::free_port();
    let client = client_for(&format!("http://127.0.0.1:{port}"), fast_retry(2));
    let err = client
        .get_or_create_experiment("nobody-listens")
        .await
        .expect_err("connection refused");
    match &err {
        Error::Transport {
            attempts, endpoint, ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(endpoint, "experiments/create");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert!(err.is_transient());
    assert!(err.status().is_none() && err.error_code().is_none());
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 1));
}

#[tokio::test]
async fn server_killed_mid_call_gives_a_transport_error_with_retries_counted() {
    let mut server = common::PrivateServer::start().await;
    let client = client_for(&server.uri, fast_retry(3));
    let exp = client
        .get_or_create_experiment("killed-mid-call")
        .await
        .expect("experiment");
    let run = client
        .create_run(&CreateRun::in_experiment(exp))
        .await
        .expect("run");
    let before = client.stats();

    // One call that needs 200 requests (200,000 metrics split 1000 per request).
    let metrics: Vec<Metric> = (0..200_000)
        .map(|i| Metric::new(format!("m{}", i % 10), f64::from(i), i64::from(i)))
        .collect();
    let logger = client.clone();
    let run_id = run.info.run_id.clone();
    let call = tokio::spawn(async move { logger.log_batch(&run_id, &metrics, &[], &[]).await });

    let deadline = Instant::now() + Duration::from_secs(120);
    while client.requests_total() < before.requests + 3 {
        assert!(Instant::now() < deadline, "log_batch made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();

    let err = call.await.expect("join").expect_err("server is gone");
    match &err {
        Error::Transport {
            attempts,
            endpoint,
            message,
            ..
        } => {
            assert_eq!(*attempts, 4, "first attempt plus 3 retries");
            assert_eq!(endpoint, "runs/log-batch");
            assert!(!message.is_empty());
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    let after = client.stats();
    assert_eq!(after.retries - before.retries, 3);
    assert_eq!(after.failures - before.failures, 1);
    assert!(after.requests - before.requests >= 4);
}
