//! `?limit=&offset=` parsing with errors in the API's model.

use axum::extract::RawQuery;

use crate::domain::FieldError;

/// The `?limit=&offset=` query as the API description shows it (parsed by [`Page::parse`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub limit: Option<i64>,
    /// Items skipped (default 0).
    #[param(minimum = 0, nullable = false)]
    pub offset: Option<i64>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Items per page (1–1000, default 100).
    pub limit: i64,
    /// Items skipped (default 0).
    pub offset: i64,
}

impl Page {
    /// Parses the query string.
    pub fn parse(query: &RawQuery) -> Result<Self, FieldError> {
        let mut page = Self {
            limit: 100,
            offset: 0,
        };
        for pair in query
            .0
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "limit" => {
                    page.limit = value
                        .parse()
                        .ok()
                        .filter(|l| (1..=1000).contains(l))
                        .ok_or_else(|| {
                            FieldError::new("limit", "must be an integer from 1 to 1000")
                        })?;
                }
                "offset" => {
                    page.offset = value.parse().ok().filter(|o| *o >= 0).ok_or_else(|| {
                        FieldError::new("offset", "must be a non-negative integer")
                    })?;
                }
                _ => {}
            }
        }
        Ok(page)
    }
}
