//! Reading runs and trials back: pagination, 404s, auth, durability across restarts.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app, spawn_app_with, spawn_on};

async fn trials_are_paginated_oldest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..25 {
        let body = json!({"run_id": "p", "trial_id": format!("t{i:02}"), "metrics": {"accuracy": i as f64 / 100.0}});
        assert_eq!(app.post("/bridge/record", &body).await.0, 200);
    }
    let (_, page1) = app.get("/runs/p/trials?limit=10").await;
    let (_, page3) = app.get("/runs/p/trials?limit=10&offset=20").await;
    assert_eq!(page1["total"], 25);
    assert_eq!(page1["trials"][0]["trial_id"], "t00");
    assert_eq!(page1["trials"][9]["trial_id"], "t09");
    assert_eq!(page3["trials"].as_array().unwrap().len(), 5);
    assert_eq!(page3["trials"][4]["trial_id"], "t24");
    let (s, body) = app.get("/runs/p/trials?limit=0").await;
    assert_eq!((s, body["error"]["field"].as_str()), (422, Some("limit")));
    let (_, runs) = app.get("/runs").await;
    assert_eq!(runs["total"], 1);
    app.stop().await;
}
both_backends!(trials_are_paginated_oldest_first);

async fn unknown_ids_are_404_with_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/runs/nope",
        "/runs/nope/trials",
        "/trials/nope",
        "/no/such/route",
    ] {
        let (s, body) = app.get(path).await;
        assert_eq!(s, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let resp = app
        .client
        .delete(app.url("/runs/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    app.stop().await;
}
both_backends!(unknown_ids_are_404_with_json);

async fn runs_can_be_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post("/bridge/record", &json!({"run_id": "d", "trial_id": "dt"}))
        .await;
    let resp = app.client.delete(app.url("/runs/d")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(app.get("/runs/d").await.0, 404);
    assert_eq!(app.get("/trials/dt").await.0, 404);
    app.stop().await;
}
both_backends!(runs_can_be_deleted);

async fn state_survives_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post(
        "/bridge/start",
        &json!({"run_id": "keep", "objective": "loss"}),
    )
    .await;
    app.post(
        "/bridge/record",
        &json!({"run_id": "keep", "trial_id": "k1", "metrics": {"loss": 0.3}}),
    )
    .await;
    let (url, dir) = app.stop().await;
    let app = spawn_on(url, dir, &[]).await;
    let (s, run) = app.get("/runs/keep").await;
    assert_eq!(s, 200);
    assert_eq!(run["best_trial_id"], "k1");
    assert_eq!(run["direction"], "minimize");
    app.stop().await;
}
both_backends!(state_survives_a_restart);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_everything_but_health() {
    let app = spawn_app_with(Backend::Sqlite, &[("RUNNER_API_TOKEN", "s3cret-token")]).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    let (s, body) = app.get("/runs").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let wrong = app
        .client
        .get(app.url("/runs"))
        .bearer_auth("s3cret-tokeN")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = app
        .client
        .get(app.url("/runs"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, body) = app.get("/healthz").await;
    assert_eq!((s, body), (200, json!({"status": "ok"})));
    let resp = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "req-42",
        "the caller's request id is echoed"
    );
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        generated.headers().contains_key("x-request-id"),
        "a request id is generated"
    );
    let (s, body) = app.get("/readyz").await;
    assert_eq!(s, 200);
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["outbox"]["pending"], 0);
    app.stop().await;
}
