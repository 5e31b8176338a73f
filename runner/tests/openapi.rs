//! The OpenAPI description: the checked-in `runner/openapi.json` matches what the code generates, documents every
//! route with its errors, and is what `GET /openapi.json` serves.
//!
//! Regenerate the checked-in copy with `UPDATE_OPENAPI=1 cargo test -p runner --test openapi`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use runner::api::openapi::openapi_json;
use runner::config::Settings;
use runner::startup::Application;
use serde_json::Value;

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p runner --test openapi";

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

fn generated() -> Value {
    serde_json::from_str(&openapi_json()).expect("the generated description is JSON")
}

#[test]
fn checked_in_description_matches_the_code() {
    let path = checked_in_path();
    let fresh = openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v != "0") {
        std::fs::write(&path, &fresh).expect("write runner/openapi.json");
        eprintln!("wrote {}", path.display());
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); generate it with `{REGENERATE}`",
            path.display()
        )
    });
    if stored != fresh {
        let (line, ours, theirs) = stored
            .lines()
            .zip(fresh.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
            .unwrap_or_else(|| {
                (
                    stored.lines().count().min(fresh.lines().count()) + 1,
                    "(end of file)".into(),
                    "(more lines)".into(),
                )
            });
        panic!(
            "runner/openapi.json is out of date with the handlers' annotations.\n\
             first difference at line {line}:\n  checked in: {ours}\n  generated:  {theirs}\n\
             Regenerate it with `{REGENERATE}` and commit the result."
        );
    }
}

/// Every route the router serves, by method and path.
const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/bridge/start"),
    ("post", "/bridge/record"),
    ("post", "/bridge/finalize"),
    ("post", "/propose"),
    ("post", "/train"),
    ("get", "/runs"),
    ("get", "/runs/{run_id}"),
    ("delete", "/runs/{run_id}"),
    ("get", "/runs/{run_id}/trials"),
    ("get", "/runs/{run_id}/report"),
    ("get", "/trials/{trial_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

#[test]
fn every_route_is_documented_with_its_errors() {
    let api = generated();
    assert!(api["openapi"].as_str().unwrap().starts_with("3."));
    let paths = api["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            assert!(has("500"), "{method} {path}: 500 undocumented");
            let public = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
            if public {
                assert!(op.get("security").is_none(), "{method} {path} is public");
            } else {
                assert!(has("401"), "{method} {path}: 401 undocumented");
                assert_eq!(
                    op["security"][0]["bearer"],
                    Value::Array(vec![]),
                    "{method} {path}: bearer security missing"
                );
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(has(s), "{method} {path}: {s} undocumented");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || (status.starts_with('5') && path != "/readyz") {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}: not the error model"
                    );
                }
            }
        }
    }
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    assert_eq!(
        api["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let codes = &api["components"]["schemas"]["ErrorCode"]["enum"];
    for code in [
        "malformed_json",
        "malformed_path",
        "unauthorized",
        "not_found",
        "conflict",
        "payload_too_large",
        "unsupported_media_type",
        "invalid_request",
        "queue_full",
        "unavailable",
        "internal",
    ] {
        assert!(
            codes.as_array().unwrap().contains(&Value::from(code)),
            "{code}"
        );
    }
}

#[tokio::test]
async fn the_runner_serves_the_description_behind_the_token() {
    let data_dir = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("RUNNER_BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("RUNNER_DATA_DIR", data_dir.path().display().to_string()),
        (
            "RUNNER_DATABASE_URL",
            format!("sqlite://{}", data_dir.path().join("runner.db").display()),
        ),
        ("RUNNER_API_TOKEN", "s3cret".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let app = Application::build(Settings::from_vars(&vars).unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/openapi.json", app.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();

    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let resp = client.get(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, generated());

    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
