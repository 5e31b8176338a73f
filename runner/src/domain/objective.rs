//! The metric a run optimises and its direction (DESIGN §2.4).

use serde_json::Value;

use super::FieldError;

pub use crate::search::Direction;

const MINIMIZED_METRICS: &[&str] = &[
    "loss",
    "val_loss",
    "error",
    "rmse",
    "mae",
    "mse",
    "latency_ms",
    "perplexity",
];

/// What a run optimises.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Objective {
    /// Metric name, as reported in trial metrics.
    pub metric: String,
    /// Whether larger or smaller is better.
    pub direction: Direction,
}

impl Default for Objective {
    fn default() -> Self {
        Self::for_metric("accuracy")
    }
}

impl Objective {
    /// The objective implied by a bare metric name.
    pub fn for_metric(metric: &str) -> Self {
        let direction = if MINIMIZED_METRICS.contains(&metric.to_ascii_lowercase().as_str()) {
            Direction::Minimize
        } else {
            Direction::Maximize
        };
        Self {
            metric: metric.to_string(),
            direction,
        }
    }

    /// Parses `"metric"` or `{"metric": …, "direction": "maximize"|"minimize"}`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, FieldError> {
        match value {
            Value::String(metric) => {
                super::keys::check_metric_name(field, metric)?;
                Ok(Self::for_metric(metric))
            }
            Value::Object(map) => {
                let metric = match map
                    .get("metric")
                    .or_else(|| map.get("name"))
                    .filter(|v| !v.is_null())
                {
                    Some(Value::String(m)) => m.clone(),
                    Some(_) => {
                        return Err(FieldError::new(
                            format!("{field}.metric"),
                            "must be a string",
                        ));
                    }
                    None => "accuracy".to_string(),
                };
                super::keys::check_metric_name(&format!("{field}.metric"), &metric)?;
                let mut objective = Self::for_metric(&metric);
                match map.get("direction") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(d)) => {
                        objective.direction = parse_direction(d).ok_or_else(|| {
                            FieldError::new(
                                format!("{field}.direction"),
                                "must be maximize or minimize",
                            )
                        })?;
                    }
                    Some(_) => {
                        return Err(FieldError::new(
                            format!("{field}.direction"),
                            "must be maximize or minimize",
                        ));
                    }
                }
                Ok(objective)
            }
            _ => Err(FieldError::new(
                field,
                "must be a metric name or {metric, direction}",
            )),
        }
    }
}

/// Parses a direction spelling (`maximize`, `max`, `minimize`, `min`), case-insensitive.
pub fn parse_direction(raw: &str) -> Option<Direction> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "maximize" | "maximise" | "max" => Some(Direction::Maximize),
        "minimize" | "minimise" | "min" => Some(Direction::Minimize),
        _ => None,
    }
}

/// Stored spelling of a direction.
pub fn direction_str(direction: Direction) -> &'static str {
    match direction {
        Direction::Maximize => "maximize",
        Direction::Minimize => "minimize",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_metric_names_imply_their_direction() {
        assert_eq!(
            Objective::for_metric("accuracy").direction,
            Direction::Maximize
        );
        assert_eq!(
            Objective::for_metric("val_loss").direction,
            Direction::Minimize
        );
        assert_eq!(
            Objective::for_metric("latency_ms").direction,
            Direction::Minimize
        );
        assert_eq!(
            Objective::for_metric("reward").direction,
            Direction::Maximize
        );
    }

    #[test]
    fn an_explicit_direction_wins() {
        let o = Objective::parse(
            "objective",
            &json!({"metric": "accuracy", "direction": "minimize"}),
        )
        .unwrap();
        assert_eq!(o.direction, Direction::Minimize);
    }

    #[test]
    fn a_null_metric_means_the_default_like_an_absent_one() {
        let o = Objective::parse(
            "objective",
            &json!({"metric": null, "direction": "minimize"}),
        )
        .unwrap();
        assert_eq!(
            (o.metric.as_str(), o.direction),
            ("accuracy", Direction::Minimize)
        );
    }

    #[test]
    fn a_bad_direction_names_the_field() {
        let e = Objective::parse("objective", &json!({"metric": "loss", "direction": "up"}))
            .unwrap_err();
        assert_eq!(e.field, "objective.direction");
    }
}
