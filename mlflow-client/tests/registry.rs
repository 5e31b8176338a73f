//! Model registry against a real MLflow server: registered models, versions, aliases.

mod common;

use mlflow_client::{
    ArtifactRoot, CreateModelVersion, CreateRegisteredModel, CreateRun, RegistrySearch, Tag,
};

#[tokio::test]
async fn registered_models_create_get_search_tag_delete() {
    let client = common::client();
    let prefix = common::unique("model");
    for i in 0..3 {
        let model = client
            .create_registered_model(&CreateRegisteredModel {
                name: format!("{prefix}-{i}"),
                tags: vec![Tag::new("i", i.to_string())],
                description: Some(format!("model {i}")),
            })
            .await
            .expect("create");
        assert_eq!(model.name, format!("{prefix}-{i}"));
    }
    let err = client
        .create_registered_model(&CreateRegisteredModel {
            name: format!("{prefix}-0"),
            ..CreateRegisteredModel::default()
        })
        .await
        .expect_err("duplicate");
    assert!(err.is_already_exists(), "{err}");

    let got = client
        .get_registered_model(&format!("{prefix}-1"))
        .await
        .expect("get");
    assert_eq!(got.description.as_deref(), Some("model 1"));
    assert!(got.tags.contains(&Tag::new("i", "1")));
    client
        .set_registered_model_tag(&got.name, "owner", "alice")
        .await
        .expect("tag");
    assert!(
        client
            .get_registered_model(&got.name)
            .await
            .expect("get")
            .tags
            .contains(&Tag::new("owner", "alice"))
    );

    let mut search = RegistrySearch {
        filter: Some(format!("name LIKE '{prefix}-%'")),
        max_results: Some(2),
        order_by: vec!["name ASC".into()],
        page_token: None,
    };
    let first = client
        .search_registered_models(&search)
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    search.page_token = Some(first.next_page_token.expect("second page"));
    let second = client
        .search_registered_models(&search)
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].name, format!("{prefix}-2"));

    client
        .delete_registered_model(&format!("{prefix}-2"))
        .await
        .expect("delete");
    let err = client
        .get_registered_model(&format!("{prefix}-2"))
        .await
        .expect_err("deleted");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn model_versions_and_aliases() {
    let client = common::client();
    let exp = client
        .get_or_create_experiment(&common::unique("registry-exp"))
        .await
        .expect("experiment");
    let run = client
        .create_run(&CreateRun::in_experiment(exp))
        .await
        .expect("run");
    let root = ArtifactRoot::run(&run.info.run_id);
    client
        .upload_artifact(&root, "model/MLmodel", b"artifact_path: model\n".to_vec())
        .await
        .expect("upload model file");

    let name = common::unique("versioned");
    client
        .create_registered_model(&CreateRegisteredModel {
            name: name.clone(),
            ..CreateRegisteredModel::default()
        })
        .await
        .expect("create model");
    let source = format!("{}/model", run.info.artifact_uri);
    let mut versions = Vec::new();
    for i in 0..2 {
        let v = client
            .create_model_version(&CreateModelVersion {
                name: name.clone(),
                source: source.clone(),
                run_id: Some(run.info.run_id.clone()),
                tags: vec![Tag::new("n", i.to_string())],
                description: Some(format!("v{i}")),
            })
            .await
            .expect("create version");
        assert_eq!(v.name, name);
        assert_eq!(v.run_id.as_deref(), Some(run.info.run_id.as_str()));
        versions.push(v.version);
    }
    assert_eq!(versions, vec!["1", "2"]);

    let v1 = client.get_model_version(&name, "1").await.expect("get v1");
    assert_eq!(v1.source, source);
    assert_eq!(v1.description.as_deref(), Some("v0"));
    assert!(v1.tags.contains(&Tag::new("n", "0")));

    let found = client
        .search_model_versions(&RegistrySearch {
            filter: Some(format!("name = '{name}'")),
            ..RegistrySearch::default()
        })
        .await
        .expect("search versions");
    let mut found: Vec<_> = found.items.into_iter().map(|v| v.version).collect();
    found.sort();
    assert_eq!(found, vec!["1", "2"]);

    client
        .set_registered_model_alias(&name, "champion", "1")
        .await
        .expect("alias");
    assert_eq!(
        client
            .get_model_version_by_alias(&name, "champion")
            .await
            .expect("by alias")
            .version,
        "1"
    );
    client
        .set_registered_model_alias(&name, "champion", "2")
        .await
        .expect("move alias");
    let model = client.get_registered_model(&name).await.expect("get");
    assert_eq!(model.aliases.len(), 1);
    assert_eq!(model.aliases[0].alias, "champion");
    assert_eq!(model.aliases[0].version, "2");
    assert_eq!(
        client
            .get_model_version(&name, "2")
            .await
            .expect("v2")
            .aliases,
        vec!["champion"]
    );
    client
        .delete_registered_model_alias(&name, "champion")
        .await
        .expect("delete alias");
    let err = client
        .get_model_version_by_alias(&name, "champion")
        .await
        .expect_err("alias gone");
    // MLflow 3.17 answers a missing alias with 400 INVALID_PARAMETER_VALUE, not 404.
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"), "{err}");

    client
        .delete_model_version(&name, "1")
        .await
        .expect("delete v1");
    let err = client
        .get_model_version(&name, "1")
        .await
        .expect_err("v1 gone");
    assert!(err.is_not_found(), "{err}");
    client
        .delete_registered_model(&name)
        .await
        .expect("delete model");
}
