//! Runs against a real MLflow server: create, update, get, search, delete, restore, tags.

mod common;

use mlflow_client::{
    CreateRun, Metric, MlflowClient, PARENT_RUN_ID_TAG, Param, RunStatus, SearchRuns, Tag,
    USER_TAG, ViewType, now_millis,
};

async fn experiment(client: &MlflowClient, prefix: &str) -> String {
    client
        .get_or_create_experiment(&common::unique(prefix))
        .await
        .expect("experiment")
}

#[tokio::test]
async fn create_with_user_tags_and_parent_then_get() {
    let client = common::client();
    let exp = experiment(&client, "runs-create").await;
    let start = now_millis() - 5_000;
    let parent = client
        .create_run(&CreateRun {
            run_name: Some("parent".into()),
            tags: vec![Tag::new("kind", "search")],
            start_time: Some(start),
            user_id: Some("alice".into()),
            ..CreateRun::in_experiment(&exp)
        })
        .await
        .expect("create parent");
    assert_eq!(parent.info.status, RunStatus::Running);
    assert_eq!(parent.info.run_name.as_deref(), Some("parent"));
    assert_eq!(parent.info.user_id.as_deref(), Some("alice"));
    assert_eq!(parent.info.start_time, Some(start));
    assert_eq!(parent.info.experiment_id, exp);
    assert!(parent.info.artifact_uri.starts_with("mlflow-artifacts:/"));

    let child = client
        .create_run(&CreateRun {
            run_name: Some("child".into()),
            parent_run_id: Some(parent.info.run_id.clone()),
            tags: vec![Tag::new(USER_TAG, "bob")],
            ..CreateRun::in_experiment(&exp)
        })
        .await
        .expect("create child");
    assert_eq!(
        child.info.user_id.as_deref(),
        Some("bob"),
        "user id from the mlflow.user tag"
    );

    let fetched = client.get_run(&child.info.run_id).await.expect("get");
    assert_eq!(
        fetched.data.tag(PARENT_RUN_ID_TAG),
        Some(parent.info.run_id.as_str())
    );
    assert_eq!(fetched.data.tag(USER_TAG), Some("bob"));
    assert_eq!(fetched.data.tag("mlflow.runName"), Some("child"));

    let fetched_parent = client
        .get_run(&parent.info.run_id)
        .await
        .expect("get parent");
    assert_eq!(fetched_parent.data.tag("kind"), Some("search"));
    assert_eq!(fetched_parent.data.tag(USER_TAG), Some("alice"));

    let err = client
        .get_run("doesnotexist0000")
        .await
        .expect_err("unknown run");
    assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    assert_eq!(err.status(), Some(404));

    let err = client
        .create_run(&CreateRun::in_experiment("999999999"))
        .await
        .expect_err("unknown experiment");
    assert!(
        err.status().is_some_and(|s| (400..500).contains(&s)),
        "{err}"
    );
}

#[tokio::test]
async fn update_status_end_time_and_name() {
    let client = common::client();
    let exp = experiment(&client, "runs-update").await;
    let run = client
        .create_run(&CreateRun::in_experiment(&exp))
        .await
        .expect("create");
    let id = &run.info.run_id;
    let end = now_millis();
    let info = client
        .update_run(id, RunStatus::Finished, Some(end))
        .await
        .expect("update");
    assert_eq!(info.status, RunStatus::Finished);
    assert_eq!(info.end_time, Some(end));

    let info = client.rename_run(id, "renamed").await.expect("rename");
    assert_eq!(info.run_name.as_deref(), Some("renamed"));
    let got = client.get_run(id).await.expect("get");
    assert_eq!(got.info.status, RunStatus::Finished);
    assert_eq!(got.info.run_name.as_deref(), Some("renamed"));

    for status in [
        RunStatus::Failed,
        RunStatus::Killed,
        RunStatus::Scheduled,
        RunStatus::Running,
    ] {
        let info = client.update_run(id, status, None).await.expect("update");
        assert_eq!(info.status, status);
    }
}

#[tokio::test]
async fn tags_set_overwrite_and_delete() {
    let client = common::client();
    let exp = experiment(&client, "runs-tags").await;
    let run = client
        .create_run(&CreateRun::in_experiment(&exp))
        .await
        .expect("create");
    let id = &run.info.run_id;
    client.set_tag(id, "stage", "dev").await.expect("set");
    client
        .set_tag(id, "stage", "prod")
        .await
        .expect("overwrite");
    assert_eq!(
        client.get_run(id).await.expect("get").data.tag("stage"),
        Some("prod")
    );
    client.delete_tag(id, "stage").await.expect("delete");
    assert_eq!(
        client.get_run(id).await.expect("get").data.tag("stage"),
        None
    );
    let err = client
        .delete_tag(id, "stage")
        .await
        .expect_err("already deleted");
    assert!(err.error_code().is_some(), "{err}");
}

#[tokio::test]
async fn delete_and_restore() {
    let client = common::client();
    let exp = experiment(&client, "runs-delete").await;
    let run = client
        .create_run(&CreateRun::in_experiment(&exp))
        .await
        .expect("create");
    let id = &run.info.run_id;
    client.delete_run(id).await.expect("delete");
    assert_eq!(
        client.get_run(id).await.expect("get").info.lifecycle_stage,
        "deleted"
    );
    let active = client
        .search_all_runs(&SearchRuns {
            experiment_ids: vec![exp.clone()],
            ..SearchRuns::default()
        })
        .await
        .expect("search active");
    assert!(active.is_empty());
    let deleted = client
        .search_all_runs(&SearchRuns {
            experiment_ids: vec![exp.clone()],
            view_type: ViewType::DeletedOnly,
            ..SearchRuns::default()
        })
        .await
        .expect("search deleted");
    assert_eq!(deleted.len(), 1);
    client.restore_run(id).await.expect("restore");
    assert_eq!(
        client.get_run(id).await.expect("get").info.lifecycle_stage,
        "active"
    );
}

#[tokio::test]
async fn search_with_filters_order_and_paging() {
    let client = common::client();
    let exp = experiment(&client, "runs-search").await;
    for i in 0..7 {
        let run = client
            .create_run(&CreateRun {
                run_name: Some(format!("r{i}")),
                ..CreateRun::in_experiment(&exp)
            })
            .await
            .expect("create");
        client
            .log_batch(
                &run.info.run_id,
                &[Metric::new("loss", 1.0 / f64::from(i + 1), 0)],
                &[Param::new("lr", if i % 2 == 0 { "0.01" } else { "0.1" })],
                &[Tag::new("parity", if i % 2 == 0 { "even" } else { "odd" })],
            )
            .await
            .expect("log");
    }

    let mut args = SearchRuns {
        experiment_ids: vec![exp.clone()],
        filter: Some("params.lr = '0.01' and tags.parity = 'even'".into()),
        order_by: vec!["metrics.loss ASC".into()],
        max_results: Some(3),
        ..SearchRuns::default()
    };
    let first = client.search_runs(&args).await.expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.next_page_token.clone().expect("a second page");
    args.page_token = Some(token);
    let second = client.search_runs(&args).await.expect("page 2");
    assert_eq!(second.items.len(), 1);
    assert!(second.next_page_token.is_none());
    let names: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|r| r.info.run_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        vec!["r6", "r4", "r2", "r0"],
        "ordered by loss ascending"
    );

    let losses = client
        .search_all_runs(&SearchRuns {
            experiment_ids: vec![exp.clone()],
            filter: Some("metrics.loss < 0.3".into()),
            max_results: Some(2),
            ..SearchRuns::default()
        })
        .await
        .expect("all");
    assert_eq!(losses.len(), 4, "loss < 0.3 for i = 3..=6");
    for run in &losses {
        assert!(run.data.metric("loss").expect("loss") < 0.3);
    }

    let err = client
        .search_runs(&SearchRuns {
            experiment_ids: vec![exp],
            filter: Some("metrics.loss <<< 3".into()),
            ..SearchRuns::default()
        })
        .await
        .expect_err("bad filter");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
}
