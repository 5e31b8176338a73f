//! Runs: create, update, get, search, delete, restore, set and delete tags.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Empty;
use crate::client::MlflowClient;
use crate::error::Result;
use crate::types::{CreateRun, Page, Run, RunInfo, RunStatus, SearchRuns, Tag, now_millis};

/// `mlflow.parentRunId`: the tag that nests a run under its parent.
pub const PARENT_RUN_ID_TAG: &str = "mlflow.parentRunId";
/// `mlflow.user`: the tag MLflow's client sets from the user id.
pub const USER_TAG: &str = "mlflow.user";

#[derive(Serialize)]
struct CreateBody<'a> {
    experiment_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_name: Option<&'a str>,
    start_time: i64,
    tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct RunReply {
    run: Run,
}

#[derive(Deserialize)]
struct UpdateReply {
    run_info: RunInfo,
}

#[derive(Deserialize)]
struct SearchReply {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl MlflowClient {
    /// Creates a run.
    ///
    /// `parent_run_id` becomes the `mlflow.parentRunId` tag; `user_id` is sent and mirrored into the
    /// `mlflow.user` tag (or taken from that tag when only the tag is given), as MLflow's client does.
    pub async fn create_run(&self, args: &CreateRun) -> Result<Run> {
        let mut tags = args.tags.clone();
        if let Some(parent) = &args.parent_run_id {
            tags.retain(|t| t.key != PARENT_RUN_ID_TAG);
            tags.push(Tag::new(PARENT_RUN_ID_TAG, parent.clone()));
        }
        let user_id = args.user_id.clone().or_else(|| {
            tags.iter()
                .find(|t| t.key == USER_TAG)
                .map(|t| t.value.clone())
        });
        if let Some(user) = &user_id
            && !tags.iter().any(|t| t.key == USER_TAG)
        {
            tags.push(Tag::new(USER_TAG, user.clone()));
        }
        let body = CreateBody {
            experiment_id: &args.experiment_id,
            run_name: args.run_name.as_deref(),
            start_time: args.start_time.unwrap_or_else(now_millis),
            tags,
            user_id,
        };
        let reply: RunReply = self.call(Method::POST, "runs/create", &body).await?;
        Ok(reply.run)
    }

    /// Sets a run's status and, optionally, its end time.
    pub async fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_time {
            body["end_time"] = json!(end);
        }
        let reply: UpdateReply = self.call(Method::POST, "runs/update", &body).await?;
        Ok(reply.run_info)
    }

    /// Renames a run.
    pub async fn rename_run(&self, run_id: &str, run_name: &str) -> Result<RunInfo> {
        let body = json!({ "run_id": run_id, "run_name": run_name });
        let reply: UpdateReply = self.call(Method::POST, "runs/update", &body).await?;
        Ok(reply.run_info)
    }

    /// Fetches a run with its latest metrics, params, tags and inputs.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        let reply: RunReply = self
            .get("runs/get", &[("run_id", run_id.to_owned())])
            .await?;
        Ok(reply.run)
    }

    /// One page of runs matching `args`.
    pub async fn search_runs(&self, args: &SearchRuns) -> Result<Page<Run>> {
        let reply: SearchReply = self.call(Method::POST, "runs/search", args).await?;
        Ok(Page {
            items: reply.runs,
            next_page_token: reply.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Every run matching `args`, following page tokens.
    pub async fn search_all_runs(&self, args: &SearchRuns) -> Result<Vec<Run>> {
        let mut args = args.clone();
        let mut all = Vec::new();
        loop {
            let page = self.search_runs(&args).await?;
            all.extend(page.items);
            match page.next_page_token {
                Some(token) => args.page_token = Some(token),
                None => return Ok(all),
            }
        }
    }

    /// Marks a run deleted.
    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        self.call::<_, Empty>(Method::POST, "runs/delete", &json!({ "run_id": run_id }))
            .await
            .map(drop)
    }

    /// Restores a deleted run.
    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        self.call::<_, Empty>(Method::POST, "runs/restore", &json!({ "run_id": run_id }))
            .await
            .map(drop)
    }

    /// Sets (or overwrites) a run tag.
    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let body = json!({ "run_id": run_id, "key": key, "value": value });
        self.call::<_, Empty>(Method::POST, "runs/set-tag", &body)
            .await
            .map(drop)
    }

    /// Deletes a run tag.
    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let body = json!({ "run_id": run_id, "key": key });
        self.call::<_, Empty>(Method::POST, "runs/delete-tag", &body)
            .await
            .map(drop)
    }
}
