//! Logging against a real MLflow server: metrics, params, batches, inputs, metric history.

mod common;

use mlflow_client::{CreateRun, Dataset, DatasetInput, InputTag, Metric, MlflowClient, Param, Tag};

async fn new_run(client: &MlflowClient, prefix: &str) -> String {
    let exp = client
        .get_or_create_experiment(&common::unique(prefix))
        .await
        .expect("experiment");
    client
        .create_run(&CreateRun::in_experiment(exp))
        .await
        .expect("run")
        .info
        .run_id
}

#[tokio::test]
async fn log_metric_and_param() {
    let client = common::client();
    let run = new_run(&client, "log-single").await;
    client
        .log_metric(&run, &Metric::new("acc", 0.75, 3))
        .await
        .expect("metric");
    client.log_param(&run, "lr", "0.01").await.expect("param");
    let got = client.get_run(&run).await.expect("get");
    assert_eq!(got.data.metric("acc"), Some(0.75));
    assert_eq!(got.data.metrics[0].step, 3);
    assert_eq!(got.data.param("lr"), Some("0.01"));
}

#[tokio::test]
async fn params_are_write_once() {
    let client = common::client();
    let run = new_run(&client, "log-param-conflict").await;
    client.log_param(&run, "lr", "0.01").await.expect("first");
    client
        .log_param(&run, "lr", "0.01")
        .await
        .expect("same value again is accepted");
    let before = client.retries_total();
    let err = client
        .log_param(&run, "lr", "0.02")
        .await
        .expect_err("changing a param");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
    assert_eq!(err.status(), Some(400));
    assert_eq!(client.retries_total(), before, "a 400 is not retried");

    let err = client
        .log_batch(&run, &[], &[Param::new("lr", "0.03")], &[])
        .await
        .expect_err("changing a param through log-batch");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
    assert_eq!(
        client.get_run(&run).await.expect("get").data.param("lr"),
        Some("0.01")
    );
}

#[tokio::test]
async fn non_finite_metric_values_round_trip_like_the_python_client() {
    let client = common::client();
    let run = new_run(&client, "log-nan").await;
    let ms: Vec<Metric> = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5]
        .into_iter()
        .enumerate()
        .map(|(i, v)| Metric::new("m", v, i as i64))
        .collect();
    client.log_batch(&run, &ms, &[], &[]).await.expect("batch");
    client
        .log_metric(&run, &Metric::new("single", f64::NAN, 0))
        .await
        .expect("single NaN");
    let mut history = client.get_metric_history(&run, "m").await.expect("history");
    history.sort_by_key(|m| m.step);
    let values: Vec<f64> = history.iter().map(|m| m.value).collect();
    assert!(values[0].is_nan());
    // MLflow's SQL store keeps ±Inf as ±f64::MAX.
    assert!(
        values[1] == f64::INFINITY || values[1] == f64::MAX,
        "{}",
        values[1]
    );
    assert!(
        values[2] == f64::NEG_INFINITY || values[2] == -f64::MAX,
        "{}",
        values[2]
    );
    assert_eq!(values[3], 1.5);
    let single = client
        .get_metric_history(&run, "single")
        .await
        .expect("history");
    assert!(single[0].value.is_nan());
}

#[tokio::test]
async fn five_thousand_metrics_are_split_into_five_requests_and_all_stored() {
    let client = common::client();
    let run = new_run(&client, "log-5000").await;
    let ms: Vec<Metric> = (0..5000)
        .map(|i| Metric::new("loss", 1.0 / f64::from(i + 1), i64::from(i)))
        .collect();
    let before = client.requests_total();
    let sent = client
        .log_batch(
            &run,
            &ms,
            &[Param::new("epochs", "5000")],
            &[Tag::new("t", "v")],
        )
        .await
        .expect("batch");
    assert_eq!(
        sent, 6,
        "5000 metrics + 2 other items at most 1000 per request"
    );
    assert_eq!(client.requests_total() - before, 6);

    let history = client
        .get_metric_history(&run, "loss")
        .await
        .expect("history");
    assert_eq!(history.len(), 5000);
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    assert_eq!(steps, (0..5000).collect::<Vec<i64>>());
    let got = client.get_run(&run).await.expect("get");
    assert_eq!(got.data.param("epochs"), Some("5000"));
    assert_eq!(got.data.tag("t"), Some("v"));
}

#[tokio::test]
async fn many_params_and_large_values_are_split_within_limits() {
    let client = common::client();
    let run = new_run(&client, "log-big").await;
    let params: Vec<Param> = (0..100)
        .map(|i| Param::new(format!("p{i:03}"), format!("{i}-{}", "x".repeat(5990))))
        .collect();
    let tags: Vec<Tag> = (0..100)
        .map(|i| Tag::new(format!("t{i:03}"), "y".repeat(5000)))
        .collect();
    let sent = client
        .log_batch(&run, &[], &params, &tags)
        .await
        .expect("batch");
    assert_eq!(
        sent, 2,
        "about 1.1 MB of params and tags needs two requests"
    );

    let more: Vec<Param> = (100..350)
        .map(|i| Param::new(format!("p{i:03}"), "v"))
        .collect();
    let sent = client
        .log_batch(&run, &[], &more, &[])
        .await
        .expect("batch");
    assert_eq!(sent, 3, "250 params at most 100 per request");

    let got = client.get_run(&run).await.expect("get");
    assert_eq!(got.data.params.len(), 350);
    assert_eq!(got.data.param("p042").map(str::len), Some(5993));
    assert_eq!(
        got.data
            .tags
            .iter()
            .filter(|t| t.key.starts_with('t'))
            .count(),
        100
    );
}

#[tokio::test]
async fn invalid_batch_items_are_rejected_by_the_server() {
    let client = common::client();
    let run = new_run(&client, "log-invalid").await;
    let err = client
        .log_batch(
            &run,
            &[],
            &[Param::new("p", "v"), Param::new("p", "w")],
            &[],
        )
        .await
        .expect_err("duplicate keys in one batch");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
    let err = client
        .log_batch(&run, &[], &[Param::new("k".repeat(251), "v")], &[])
        .await
        .expect_err("over-long key");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
    // MLflow 3 truncates over-long param values (MLFLOW_TRUNCATE_LONG_VALUES defaults to true).
    client
        .log_batch(&run, &[], &[Param::new("long", "z".repeat(6001))], &[])
        .await
        .expect("over-long value is truncated by the server");
    let got = client.get_run(&run).await.expect("get");
    assert_eq!(got.data.param("long").map(str::len), Some(6000));
    let err = client
        .log_metric("doesnotexist0000", &Metric::new("m", 1.0, 0))
        .await
        .expect_err("unknown run");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn metric_history_pages() {
    let client = common::client();
    let run = new_run(&client, "log-history").await;
    let ms: Vec<Metric> = (0..2500)
        .map(|i| Metric::new("acc", f64::from(i) / 2500.0, i64::from(i)))
        .collect();
    client.log_batch(&run, &ms, &[], &[]).await.expect("batch");

    let mut token: Option<String> = None;
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    loop {
        let page = client
            .get_metric_history_page(&run, "acc", Some(1000), token.as_deref())
            .await
            .expect("page");
        sizes.push(page.items.len());
        all.extend(page.items);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(&sizes[..3], &[1000, 1000, 500], "{sizes:?}");
    assert_eq!(all.len(), 2500);
    let full = client.get_metric_history(&run, "acc").await.expect("full");
    assert_eq!(full.len(), 2500);
    assert!(
        client
            .get_metric_history(&run, "never-logged")
            .await
            .expect("empty")
            .is_empty()
    );
}

#[tokio::test]
async fn log_inputs_datasets() {
    let client = common::client();
    let run = new_run(&client, "log-inputs").await;
    let input = DatasetInput {
        tags: vec![InputTag {
            key: "mlflow.data.context".into(),
            value: "training".into(),
        }],
        dataset: Dataset {
            name: "iris".into(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: r#"{"uri": "file:///data/iris.csv"}"#.into(),
            schema: Some(r#"{"mlflow_colspec": []}"#.into()),
            profile: Some(r#"{"num_rows": 150}"#.into()),
        },
    };
    client
        .log_inputs(&run, std::slice::from_ref(&input))
        .await
        .expect("log inputs");
    let got = client.get_run(&run).await.expect("get");
    assert_eq!(got.inputs.dataset_inputs.len(), 1);
    let stored = &got.inputs.dataset_inputs[0];
    assert_eq!(stored.dataset, input.dataset);
    assert_eq!(stored.tags, input.tags);
}
