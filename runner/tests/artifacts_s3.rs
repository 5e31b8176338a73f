//! The object-store layer against a real SeaweedFS started by `scripts/start-s3.sh`.
//!
//! The endpoint comes from `MINIO_ENDPOINT` (and `MINIO_ACCESS_KEY`, `MINIO_SECRET_KEY`, …) or, when unset, from
//! `.cache/run/s3.env` written by the script. With neither, the tests fail: run `scripts/start-s3.sh` first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use runner::artifacts::{ArtifactError, ArtifactStore, S3Store, S3Timeouts};
use runner::config::{S3Settings, Settings};
use sha2::{Digest, Sha256};

/// Variables describing the test S3 server: the process environment when `MINIO_ENDPOINT` is set, else
/// `.cache/run/s3.env`.
fn s3_vars() -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MINIO_") || k.starts_with("AWS_"))
        .collect();
    if vars
        .get("MINIO_ENDPOINT")
        .is_some_and(|v| !v.trim().is_empty())
    {
        return vars;
    }
    let env_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/run/s3.env");
    let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
        panic!(
            "no S3 server for the artifact tests: MINIO_ENDPOINT is unset and {} cannot be read ({e}); \
             run scripts/start-s3.sh first",
            env_file.display()
        )
    });
    for line in text.lines() {
        if let Some((k, v)) = line
            .trim()
            .strip_prefix("export ")
            .and_then(|kv| kv.split_once('='))
        {
            vars.insert(
                k.to_string(),
                v.trim_matches(|c| c == '"' || c == '\'').to_string(),
            );
        }
    }
    assert!(
        vars.contains_key("MINIO_ENDPOINT"),
        "{} has no MINIO_ENDPOINT",
        env_file.display()
    );
    vars
}

fn settings() -> Settings {
    let s = Settings::from_vars(&s3_vars()).expect("S3 settings from the environment");
    assert!(s.s3.is_some(), "the S3 variables did not configure a store");
    s
}

async fn store() -> ArtifactStore {
    let store = ArtifactStore::from_settings(&settings()).await.unwrap();
    assert!(
        matches!(store, ArtifactStore::S3 { .. }),
        "{}",
        store.describe()
    );
    store
}

fn unique_prefix(test: &str) -> String {
    format!("tests/{test}/{}", uuid::Uuid::new_v4().simple())
}

/// Deterministic, incompressible-looking payload.
fn payload(len: usize) -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_5_mib_payload_round_trips_with_the_same_sha256() {
    let store = store().await;
    store.check().await.expect("the bucket answers HeadBucket");
    let data = payload(5 * 1024 * 1024);
    let prefix = unique_prefix("roundtrip");
    let uri = store
        .put(
            &prefix,
            "model.safetensors",
            data.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let bucket = settings().s3.unwrap().bucket;
    assert_eq!(uri, format!("s3://{bucket}/{prefix}/model.safetensors"));
    let back = store.get_s3(&uri, 6 * 1024 * 1024).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(sha256(&back), sha256(&data));
    assert_eq!(store.bytes_written_total(), data.len() as u64);
    assert_eq!(store.bytes_read_total(), data.len() as u64);
    assert_eq!(store.errors_total(), 0);
}

#[tokio::test]
async fn put_uri_writes_to_another_bucket() {
    let store = store().await;
    let uri = format!(
        "s3://mlflow/{}/artifacts/metrics.json",
        unique_prefix("put-uri")
    );
    let body = Bytes::from_static(b"{\"accuracy\":0.97}");
    store
        .put_uri(&uri, body.clone(), "application/json")
        .await
        .unwrap();
    assert_eq!(store.get_s3(&uri, 1024).await.unwrap(), body);
}

#[tokio::test]
async fn a_missing_key_is_not_found_and_names_the_uri() {
    let store = store().await;
    let bucket = settings().s3.unwrap().bucket;
    let uri = format!("s3://{bucket}/{}/absent.csv", unique_prefix("missing"));
    let err = store.get_s3(&uri, 1024).await.unwrap_err();
    assert!(
        matches!(err, ArtifactError::NotFound(ref u) if *u == uri),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(store.errors_total(), 1);

    let err = store
        .put_uri(
            "s3://no-such-bucket-thunderhelm/x.bin",
            Bytes::from_static(b"x"),
            "application/octet-stream",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn objects_over_the_cap_are_too_large_without_echoing_content() {
    let store = store().await;
    let secret_looking = Bytes::from(format!("label,x\n{}\n", "SENSITIVE-ROW,1\n".repeat(100)));
    let uri = store
        .put(
            &unique_prefix("cap"),
            "data.csv",
            secret_looking.clone(),
            "text/csv",
        )
        .await
        .unwrap();
    let err = store.get_s3(&uri, 100).await.unwrap_err();
    assert!(
        matches!(err, ArtifactError::TooLarge { uri: ref u, limit: 100 } if *u == uri),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(&uri) && !shown.contains("SENSITIVE"),
        "{shown}"
    );
    assert_eq!(
        store
            .get_s3(&uri, secret_looking.len() as u64)
            .await
            .unwrap(),
        secret_looking
    );
}

#[tokio::test]
async fn the_default_bucket_is_created_on_first_use() {
    let mut s3 = settings().s3.unwrap();
    s3.bucket = format!("th-test-{}", uuid::Uuid::new_v4().simple());
    let store = ArtifactStore::s3(S3Store::new(&s3, S3Timeouts::default()).unwrap());
    let uri = store
        .put("fresh", "a.txt", Bytes::from_static(b"hello"), "text/plain")
        .await
        .unwrap();
    assert_eq!(uri, format!("s3://{}/fresh/a.txt", s3.bucket));
    assert_eq!(
        store.get_s3(&uri, 10).await.unwrap(),
        Bytes::from_static(b"hello")
    );
    store.check().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_error() {
    let mut s3 = settings().s3.unwrap();
    s3.secret_key = "not-the-secret".into();
    let store = ArtifactStore::s3(S3Store::new(&s3, S3Timeouts::default()).unwrap());
    let err = store.check().await.unwrap_err();
    assert!(
        matches!(
            err,
            ArtifactError::S3 {
                transient: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
}

fn unreachable_settings(port: u16) -> S3Settings {
    S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        access_key: "thunderhelm".into(),
        secret_key: "thunderhelm-secret".into(),
        bucket: "thunderline-artifacts".into(),
        region: "us-east-1".into(),
    }
}

/// A server that is down (nothing listens on the port) gives a transient error without long SDK retries.
/// The 10 s bound only guards against unbounded retrying; the measured time is printed.
#[tokio::test]
async fn a_stopped_server_gives_a_transient_error_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = ArtifactStore::s3(
        S3Store::new(&unreachable_settings(port), S3Timeouts::default()).unwrap(),
    );
    let started = Instant::now();
    let err = store
        .put(
            "p",
            "a.bin",
            Bytes::from_static(b"x"),
            "application/octet-stream",
        )
        .await
        .unwrap_err();
    let put_elapsed = started.elapsed();
    assert!(err.is_transient(), "{err:?}");
    let err = store.check().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = store
        .get_s3("s3://thunderline-artifacts/k.csv", 10)
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("s3://thunderline-artifacts/k.csv"),
        "{err}"
    );
    eprintln!("connection refused → transient error after {put_elapsed:?}: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(store.errors_total(), 3);
}

/// A server that accepts connections but never answers (a fault a real S3 server cannot produce on demand) is cut
/// off by the per-attempt timeout and reported as transient.
#[tokio::test]
async fn a_silent_server_times_out_as_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeouts = S3Timeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(500),
        max_attempts: 2,
    };
    let store = ArtifactStore::s3(S3Store::new(&unreachable_settings(port), timeouts).unwrap());
    let err = store
        .get_s3("s3://thunderline-artifacts/k.csv", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArtifactError::S3 {
                transient: true,
                ..
            }
        ),
        "{err:?}"
    );
    holder.abort();
}

/// Without S3 variables the settings select the local artifact directory, and writes land there atomically.
#[tokio::test]
async fn without_s3_settings_artifacts_go_to_the_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let vars = HashMap::from([(
        "RUNNER_DATA_DIR".to_string(),
        dir.path().display().to_string(),
    )]);
    let settings = Settings::from_vars(&vars).unwrap();
    let store = ArtifactStore::from_settings(&settings).await.unwrap();
    assert!(
        matches!(store, ArtifactStore::Local { .. }),
        "{}",
        store.describe()
    );
    store.check().await.unwrap();
    let data = payload(1024 * 1024);
    let uri = store
        .put(
            "cerebros/r1/t1",
            "model.safetensors",
            data.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let path = dir
        .path()
        .join("artifacts/cerebros/r1/t1/model.safetensors");
    assert_eq!(uri, url::Url::from_file_path(&path).unwrap().to_string());
    assert_eq!(sha256(&std::fs::read(&path).unwrap()), sha256(&data));
    let err = store
        .put("cerebros/../../etc", "x", Bytes::new(), "text/plain")
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::BadUri(_)), "{err:?}");
    assert!(matches!(
        store.get_s3("s3://thunderline-artifacts/a.csv", 10).await,
        Err(ArtifactError::NotConfigured(_))
    ));
}
