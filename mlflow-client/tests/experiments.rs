//! Experiments against a real MLflow server.

mod common;

use mlflow_client::{CreateExperiment, SearchExperiments, Tag, ViewType};

#[tokio::test]
async fn create_get_by_id_and_name() {
    let client = common::client();
    let name = common::unique("exp-create");
    let id = client
        .create_experiment(&CreateExperiment {
            name: name.clone(),
            tags: vec![Tag::new("team", "thunderhelm")],
            ..CreateExperiment::default()
        })
        .await
        .expect("create");

    let exp = client.get_experiment(&id).await.expect("get");
    assert_eq!(exp.name, name);
    assert_eq!(exp.lifecycle_stage, "active");
    assert!(exp.tags.contains(&Tag::new("team", "thunderhelm")));
    assert!(
        exp.artifact_location
            .as_deref()
            .is_some_and(|l| l.starts_with("mlflow-artifacts:/")),
        "{:?}",
        exp.artifact_location
    );

    let by_name = client
        .get_experiment_by_name(&name)
        .await
        .expect("get by name")
        .expect("found");
    assert_eq!(by_name.experiment_id, id);

    let missing = client
        .get_experiment_by_name(&common::unique("exp-missing"))
        .await
        .expect("lookup");
    assert!(missing.is_none());

    let err = client
        .get_experiment("999999999")
        .await
        .expect_err("unknown id");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn duplicate_create_is_resource_already_exists_400() {
    let client = common::client();
    let name = common::unique("exp-dup");
    client
        .create_experiment(&CreateExperiment::named(&name))
        .await
        .expect("create");
    let err = client
        .create_experiment(&CreateExperiment::named(&name))
        .await
        .expect_err("duplicate");
    assert_eq!(err.error_code(), Some("RESOURCE_ALREADY_EXISTS"));
    assert_eq!(err.status(), Some(400));
    assert!(err.is_already_exists());
    assert_eq!(err.attempts(), Some(1), "a 400 is not retried");
}

#[tokio::test]
async fn get_or_create_is_idempotent_and_concurrent_safe() {
    let client = common::client();
    let name = common::unique("exp-goc");
    let first = client.get_or_create_experiment(&name).await.expect("first");
    let second = client
        .get_or_create_experiment(&name)
        .await
        .expect("second");
    assert_eq!(first, second);

    let racing = common::unique("exp-goc-race");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let c = client.clone();
            let n = racing.clone();
            tokio::spawn(async move { c.get_or_create_experiment(&n).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("join").expect("get or create"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all callers see one experiment: {ids:?}");
}

#[tokio::test]
async fn get_or_create_restores_a_deleted_experiment() {
    let client = common::client();
    let name = common::unique("exp-goc-deleted");
    let id = client
        .get_or_create_experiment(&name)
        .await
        .expect("create");
    client.delete_experiment(&id).await.expect("delete");
    let again = client.get_or_create_experiment(&name).await.expect("again");
    assert_eq!(again, id);
    assert_eq!(
        client
            .get_experiment(&id)
            .await
            .expect("get")
            .lifecycle_stage,
        "active"
    );
}

#[tokio::test]
async fn update_delete_restore_and_tag() {
    let client = common::client();
    let name = common::unique("exp-upd");
    let id = client
        .get_or_create_experiment(&name)
        .await
        .expect("create");

    let renamed = format!("{name}-renamed");
    client
        .update_experiment(&id, &renamed)
        .await
        .expect("rename");
    assert_eq!(client.get_experiment(&id).await.expect("get").name, renamed);

    client
        .set_experiment_tag(&id, "owner", "alice")
        .await
        .expect("tag");
    client
        .set_experiment_tag(&id, "owner", "bob")
        .await
        .expect("overwrite tag");
    let exp = client.get_experiment(&id).await.expect("get");
    assert_eq!(
        exp.tags
            .iter()
            .filter(|t| t.key == "owner")
            .collect::<Vec<_>>(),
        vec![&Tag::new("owner", "bob")]
    );

    client.delete_experiment(&id).await.expect("delete");
    assert_eq!(
        client
            .get_experiment(&id)
            .await
            .expect("get")
            .lifecycle_stage,
        "deleted"
    );
    let deleted = client
        .search_all_experiments(&SearchExperiments {
            filter: Some(format!("name = '{renamed}'")),
            view_type: ViewType::DeletedOnly,
            ..SearchExperiments::default()
        })
        .await
        .expect("search deleted");
    assert_eq!(deleted.len(), 1);

    client.restore_experiment(&id).await.expect("restore");
    assert_eq!(
        client
            .get_experiment(&id)
            .await
            .expect("get")
            .lifecycle_stage,
        "active"
    );

    let err = client
        .set_experiment_tag("999999999", "k", "v")
        .await
        .expect_err("unknown experiment");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn search_pages_through_all_matches() {
    let client = common::client();
    let prefix = common::unique("exp-page");
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            client
                .get_or_create_experiment(&format!("{prefix}-{i}"))
                .await
                .expect("create"),
        );
    }
    let args = SearchExperiments {
        filter: Some(format!("name LIKE '{prefix}-%'")),
        order_by: vec!["name ASC".into()],
        max_results: Some(2),
        ..SearchExperiments::default()
    };

    let mut pages = Vec::new();
    let mut args_page = args.clone();
    loop {
        let page = client.search_experiments(&args_page).await.expect("page");
        assert!(page.items.len() <= 2);
        pages.push(
            page.items
                .iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>(),
        );
        match page.next_page_token {
            Some(t) => args_page.page_token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3, "{pages:?}");
    let names: Vec<String> = pages.concat();
    let expected: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    assert_eq!(names, expected);

    let all = client.search_all_experiments(&args).await.expect("all");
    let mut ids: Vec<String> = all.into_iter().map(|e| e.experiment_id).collect();
    ids.sort();
    created.sort();
    assert_eq!(ids, created);

    let err = client
        .search_experiments(&SearchExperiments {
            filter: Some("name <<< 'x'".into()),
            ..SearchExperiments::default()
        })
        .await
        .expect_err("bad filter");
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));
}
