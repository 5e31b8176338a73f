//! Types shared by several endpoints.

use serde::{Deserialize, Serialize};

/// A key/value tag (runs, experiments, registered models, model versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Tag key (at most 250 characters).
    pub key: String,
    /// Tag value (at most 5000 characters).
    #[serde(default)]
    pub value: String,
}

impl Tag {
    /// A tag from any string-like key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A run parameter (write-once: logging a different value for the same key fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Parameter key (at most 250 characters).
    pub key: String,
    /// Parameter value (at most 6000 characters).
    #[serde(default)]
    pub value: String,
}

impl Param {
    /// A parameter from any string-like key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Which lifecycle stages a search returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    /// Only active entities (MLflow's default).
    #[default]
    ActiveOnly,
    /// Only deleted entities.
    DeletedOnly,
    /// Both.
    All,
}

/// One page of a paged search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The entities on this page.
    pub items: Vec<T>,
    /// Token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// Milliseconds since the Unix epoch, MLflow's time unit.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
