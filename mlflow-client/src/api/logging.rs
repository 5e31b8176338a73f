//! Logging to runs: metrics, params, batches (split to MLflow's limits), dataset inputs, metric history.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Empty;
use super::batch::{BatchLimits, encode_batches};
use crate::client::MlflowClient;
use crate::error::Result;
use crate::types::{DatasetInput, Metric, Page, Param, Tag};

#[derive(Serialize)]
struct LogMetricBody<'a> {
    run_id: &'a str,
    #[serde(flatten)]
    metric: &'a Metric,
}

#[derive(Deserialize)]
struct HistoryReply {
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Page size used by [`MlflowClient::get_metric_history`].
pub const HISTORY_PAGE_SIZE: u32 = 25_000;

impl MlflowClient {
    /// Logs one metric point.
    pub async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<()> {
        let body = LogMetricBody { run_id, metric };
        self.call::<_, Empty>(Method::POST, "runs/log-metric", &body)
            .await
            .map(drop)
    }

    /// Logs one parameter. Params are write-once: the same value again is accepted, a different value
    /// fails with `INVALID_PARAMETER_VALUE`.
    pub async fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let body = json!({ "run_id": run_id, "key": key, "value": value });
        self.call::<_, Empty>(Method::POST, "runs/log-parameter", &body)
            .await
            .map(drop)
    }

    /// Logs metrics, params and tags, split into as many `log-batch` requests as MLflow's limits need
    /// (1000 metrics, 100 params, 100 tags, 1000 items, 1 MB per request). Returns the number of
    /// requests sent (retries not counted).
    ///
    /// Requests go out in order and stop at the first failure; earlier requests stay written, as with
    /// MLflow's own client.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<usize> {
        self.log_batch_with_limits(run_id, metrics, params, tags, &BatchLimits::MLFLOW)
            .await
    }

    /// [`log_batch`](Self::log_batch) with other limits (for MLflow-compatible servers with tighter ones).
    pub async fn log_batch_with_limits(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
        limits: &BatchLimits,
    ) -> Result<usize> {
        let bodies = encode_batches(run_id, metrics, params, tags, limits)?;
        for body in &bodies {
            self.call_raw::<Empty>(Method::POST, "runs/log-batch", body.clone())
                .await?;
        }
        Ok(bodies.len())
    }

    /// Logs dataset inputs of a run.
    pub async fn log_inputs(&self, run_id: &str, datasets: &[DatasetInput]) -> Result<()> {
        let body = json!({ "run_id": run_id, "datasets": datasets });
        self.call::<_, Empty>(Method::POST, "runs/log-inputs", &body)
            .await
            .map(drop)
    }

    /// One page of the history of metric `key`.
    pub async fn get_metric_history_page(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let mut query = vec![
            ("run_id", run_id.to_owned()),
            ("metric_key", key.to_owned()),
        ];
        if let Some(max) = max_results {
            query.push(("max_results", max.to_string()));
        }
        if let Some(token) = page_token {
            query.push(("page_token", token.to_owned()));
        }
        let reply: HistoryReply = self.get("metrics/get-history", &query).await?;
        Ok(Page {
            items: reply.metrics,
            next_page_token: reply.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// The whole history of metric `key`, fetched page by page.
    pub async fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .get_metric_history_page(run_id, key, Some(HISTORY_PAGE_SIZE), token.as_deref())
                .await?;
            all.extend(page.items);
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
    }
}
