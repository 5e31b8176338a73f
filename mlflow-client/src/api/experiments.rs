//! Experiments: create, get, get-by-name, get-or-create, search, update, delete, restore, set tag.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::Empty;
use crate::client::MlflowClient;
use crate::error::Result;
use crate::types::{CreateExperiment, Experiment, Page, SearchExperiments};

/// Page size used when a search leaves `max_results` unset (MLflow's client default).
const SEARCH_PAGE_SIZE: u32 = 1000;

#[derive(Deserialize)]
struct CreateReply {
    experiment_id: String,
}

#[derive(Deserialize)]
struct ExperimentReply {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct SearchReply {
    #[serde(default)]
    experiments: Vec<Experiment>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl MlflowClient {
    /// Creates an experiment and returns its id. An existing name fails with `RESOURCE_ALREADY_EXISTS`.
    pub async fn create_experiment(&self, args: &CreateExperiment) -> Result<String> {
        let reply: CreateReply = self.call(Method::POST, "experiments/create", args).await?;
        Ok(reply.experiment_id)
    }

    /// Fetches an experiment by id.
    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let reply: ExperimentReply = self
            .get(
                "experiments/get",
                &[("experiment_id", experiment_id.to_owned())],
            )
            .await?;
        Ok(reply.experiment)
    }

    /// Fetches an experiment by name; `None` when no experiment has that name.
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        match self
            .get::<ExperimentReply>(
                "experiments/get-by-name",
                &[("experiment_name", name.to_owned())],
            )
            .await
        {
            Ok(reply) => Ok(Some(reply.experiment)),
            Err(e) if e.error_code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Returns the id of the experiment named `name`, creating it when missing.
    ///
    /// Creates first and falls back to `get-by-name` on `RESOURCE_ALREADY_EXISTS` (a 400), so concurrent
    /// callers all end up with the same id. A deleted experiment of that name is restored.
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        match self.create_experiment(&CreateExperiment::named(name)).await {
            Ok(id) => Ok(id),
            Err(e) if e.is_already_exists() => match self.get_experiment_by_name(name).await? {
                Some(exp) => {
                    if exp.lifecycle_stage == "deleted" {
                        self.restore_experiment(&exp.experiment_id).await?;
                    }
                    Ok(exp.experiment_id)
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// One page of experiments matching `args`.
    ///
    /// `max_results` defaults to 1000 (the server rejects a missing value).
    pub async fn search_experiments(&self, args: &SearchExperiments) -> Result<Page<Experiment>> {
        let args = SearchExperiments {
            max_results: Some(args.max_results.unwrap_or(SEARCH_PAGE_SIZE)),
            ..args.clone()
        };
        let reply: SearchReply = self.call(Method::POST, "experiments/search", &args).await?;
        Ok(Page {
            items: reply.experiments,
            next_page_token: reply.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Every experiment matching `args`, following page tokens.
    pub async fn search_all_experiments(
        &self,
        args: &SearchExperiments,
    ) -> Result<Vec<Experiment>> {
        let mut args = args.clone();
        let mut all = Vec::new();
        loop {
            let page = self.search_experiments(&args).await?;
            all.extend(page.items);
            match page.next_page_token {
                Some(token) => args.page_token = Some(token),
                None => return Ok(all),
            }
        }
    }

    /// Renames an experiment.
    pub async fn update_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        let body = json!({ "experiment_id": experiment_id, "new_name": new_name });
        self.call::<_, Empty>(Method::POST, "experiments/update", &body)
            .await
            .map(drop)
    }

    /// Marks an experiment (and its runs) deleted.
    pub async fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        let body = json!({ "experiment_id": experiment_id });
        self.call::<_, Empty>(Method::POST, "experiments/delete", &body)
            .await
            .map(drop)
    }

    /// Restores a deleted experiment.
    pub async fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        let body = json!({ "experiment_id": experiment_id });
        self.call::<_, Empty>(Method::POST, "experiments/restore", &body)
            .await
            .map(drop)
    }

    /// Sets (or overwrites) a tag on an experiment.
    pub async fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let body = json!({ "experiment_id": experiment_id, "key": key, "value": value });
        self.call::<_, Empty>(Method::POST, "experiments/set-experiment-tag", &body)
            .await
            .map(drop)
    }
}
