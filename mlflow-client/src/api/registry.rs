//! Model registry: registered models, model versions and aliases.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::Empty;
use crate::client::MlflowClient;
use crate::error::Result;
use crate::types::{
    CreateModelVersion, CreateRegisteredModel, ModelVersion, Page, RegisteredModel, RegistrySearch,
};

#[derive(Deserialize)]
struct ModelReply {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct ModelSearchReply {
    #[serde(default)]
    registered_models: Vec<RegisteredModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct VersionReply {
    model_version: ModelVersion,
}

#[derive(Deserialize)]
struct VersionSearchReply {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl MlflowClient {
    /// Creates a registered model.
    pub async fn create_registered_model(
        &self,
        args: &CreateRegisteredModel,
    ) -> Result<RegisteredModel> {
        let reply: ModelReply = self
            .call(Method::POST, "registered-models/create", args)
            .await?;
        Ok(reply.registered_model)
    }

    /// Fetches a registered model by name.
    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let reply: ModelReply = self
            .get("registered-models/get", &[("name", name.to_owned())])
            .await?;
        Ok(reply.registered_model)
    }

    /// One page of registered models matching `args`.
    pub async fn search_registered_models(
        &self,
        args: &RegistrySearch,
    ) -> Result<Page<RegisteredModel>> {
        let reply: ModelSearchReply = self.get("registered-models/search", &args.query()).await?;
        Ok(Page {
            items: reply.registered_models,
            next_page_token: reply.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Deletes a registered model and all its versions.
    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.call::<_, Empty>(
            Method::DELETE,
            "registered-models/delete",
            &json!({ "name": name }),
        )
        .await
        .map(drop)
    }

    /// Sets a tag on a registered model.
    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let body = json!({ "name": name, "key": key, "value": value });
        self.call::<_, Empty>(Method::POST, "registered-models/set-tag", &body)
            .await
            .map(drop)
    }

    /// Points alias `alias` of model `name` at `version` (moving it if it pointed elsewhere).
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        let body = json!({ "name": name, "alias": alias, "version": version });
        self.call::<_, Empty>(Method::POST, "registered-models/alias", &body)
            .await
            .map(drop)
    }

    /// Removes alias `alias` from model `name`.
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        let body = json!({ "name": name, "alias": alias });
        self.call::<_, Empty>(Method::DELETE, "registered-models/alias", &body)
            .await
            .map(drop)
    }

    /// The model version alias `alias` of model `name` points at.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        let reply: VersionReply = self
            .get(
                "registered-models/alias",
                &[("name", name.to_owned()), ("alias", alias.to_owned())],
            )
            .await?;
        Ok(reply.model_version)
    }

    /// Creates a new version of a registered model.
    pub async fn create_model_version(&self, args: &CreateModelVersion) -> Result<ModelVersion> {
        let reply: VersionReply = self
            .call(Method::POST, "model-versions/create", args)
            .await?;
        Ok(reply.model_version)
    }

    /// Fetches one model version.
    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let reply: VersionReply = self
            .get(
                "model-versions/get",
                &[("name", name.to_owned()), ("version", version.to_owned())],
            )
            .await?;
        Ok(reply.model_version)
    }

    /// One page of model versions matching `args` (e.g. filter `name = 'my-model'`).
    pub async fn search_model_versions(&self, args: &RegistrySearch) -> Result<Page<ModelVersion>> {
        let reply: VersionSearchReply = self.get("model-versions/search", &args.query()).await?;
        Ok(Page {
            items: reply.model_versions,
            next_page_token: reply.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Deletes one model version.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let body = json!({ "name": name, "version": version });
        self.call::<_, Empty>(Method::DELETE, "model-versions/delete", &body)
            .await
            .map(drop)
    }
}
