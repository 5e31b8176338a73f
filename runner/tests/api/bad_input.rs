//! A corpus of bad requests: each gets the right 4xx with a JSON error, and the server stays up.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app};

async fn send_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON error body for {path}: {text:?}"));
    (status, json)
}

/// One bad request: path, content type, body, expected status, expected field.
type Case = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    Option<&'static str>,
);

async fn bad_inputs_get_clear_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let json_ct = Some("application/json");
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<Case> = vec![
        (
            "/bridge/record",
            json_ct,
            b"{\"run_id\": ".to_vec(),
            400,
            None,
        ),
        ("/bridge/record", json_ct, b"".to_vec(), 400, None),
        (
            "/bridge/record",
            json_ct,
            vec![0xff, 0xfe, b'{', b'}'],
            400,
            None,
        ),
        ("/bridge/record", json_ct, deep.into_bytes(), 400, None),
        (
            "/bridge/record",
            Some("text/plain"),
            b"{}".to_vec(),
            415,
            None,
        ),
        ("/bridge/record", None, b"{}".to_vec(), 415, None),
        ("/bridge/record", json_ct, b"[]".to_vec(), 422, None),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"r"}"#.to_vec(),
            422,
            Some("trial_id"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":7,"trial_id":"t"}"#.to_vec(),
            422,
            Some("run_id"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"r","trial_id":"t","status":"exploded"}"#.to_vec(),
            422,
            Some("status"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"r","trial_id":"t","metrics":"high"}"#.to_vec(),
            422,
            Some("metrics"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"r","trial_id":"t","duration_ms":"slow"}"#.to_vec(),
            422,
            Some("duration_ms"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"r","trial_id":"t","warnings":[1]}"#.to_vec(),
            422,
            Some("warnings[0]"),
        ),
        (
            "/bridge/record",
            json_ct,
            br#"{"run_id":"","trial_id":"t"}"#.to_vec(),
            422,
            Some("run_id"),
        ),
        (
            "/bridge/start",
            json_ct,
            br#"{"run_id":"r","objective":{"direction":"sideways"}}"#.to_vec(),
            422,
            Some("objective.direction"),
        ),
        (
            "/bridge/start",
            json_ct,
            br#"{"run_id":"r","search_space":{"lr":{"loguniform":[0,1]}}}"#.to_vec(),
            422,
            Some("search_space.lr"),
        ),
        (
            "/bridge/finalize",
            json_ct,
            br#"{"run_id":"r","status":"done?"}"#.to_vec(),
            422,
            Some("status"),
        ),
        (
            "/bridge/finalize",
            json_ct,
            br#"{"status":"failed"}"#.to_vec(),
            422,
            Some("run_id"),
        ),
        (
            "/propose",
            json_ct,
            br#"{"run_id":"r","k":0,"space":{}}"#.to_vec(),
            422,
            Some("k"),
        ),
        (
            "/propose",
            json_ct,
            br#"{"run_id":"r","k":2,"space":{"x":{"uniform":[1,0]}}}"#.to_vec(),
            422,
            Some("space.x"),
        ),
    ];
    for (path, ct, body, want, field) in cases {
        let (status, json) = send_raw(&app, path, ct, body).await;
        assert_eq!(status, want, "{path} {json}");
        assert!(
            json["error"]["code"].is_string() && json["error"]["message"].is_string(),
            "{json}"
        );
        if let Some(field) = field {
            assert_eq!(json["error"]["field"], field, "{json}");
        }
    }
    let huge_id = "x".repeat(100_000);
    let (s, body) = app
        .post(
            "/bridge/record",
            &json!({"run_id": huge_id, "trial_id": "t"}),
        )
        .await;
    assert_eq!((s, body["error"]["field"].as_str()), (422, Some("run_id")));
    let forty_mib = vec![b' '; 40 * 1024 * 1024];
    let (s, body) = send_raw(&app, "/bridge/record", json_ct, forty_mib).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let resp = app
        .client
        .put(app.url("/bridge/record"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_object());
    // An id that is not UTF-8 once percent-decoded: a JSON 400, not axum's plain-text rejection.
    for path in [
        "/runs/%FF",
        "/runs/%FF/trials",
        "/runs/%FF/report",
        "/trials/%C3%28",
    ] {
        let (s, body) = app.get(path).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (400, Some("malformed_path")),
            "{path}"
        );
    }
    assert_eq!(app.get("/healthz").await.0, 200);
    // Nothing from the rejected requests was stored.
    let (_, runs) = app.get("/runs").await;
    assert_eq!(runs["total"], 0);
    app.stop().await;
}
both_backends!(bad_inputs_get_clear_json_errors);
