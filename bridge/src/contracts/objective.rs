//! The run's objective: a bare metric name or `{metric, direction}`.

use serde::{Deserialize, Serialize};

use super::Direction;

/// What a run optimises, as `RunStartedV1.objective` and `/propose` carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Objective {
    /// A metric name; the runner infers the direction from it (`accuracy` up, `loss` down, …).
    Metric(String),
    /// A metric with an explicit direction.
    Spec {
        /// Name of the metric trials report.
        metric: String,
        /// Direction; the runner infers it from the metric when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<Direction>,
    },
}

impl Objective {
    /// An objective with an explicit direction.
    pub fn new(metric: impl Into<String>, direction: Direction) -> Self {
        Self::Spec {
            metric: metric.into(),
            direction: Some(direction),
        }
    }

    /// The metric's name.
    pub fn metric(&self) -> &str {
        match self {
            Self::Metric(metric) | Self::Spec { metric, .. } => metric,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_string_and_an_object_both_parse() {
        let bare: Objective = serde_json::from_str("\"loss\"").unwrap();
        assert_eq!(bare, Objective::Metric("loss".into()));
        let spec: Objective =
            serde_json::from_str(r#"{"metric":"value","direction":"minimize"}"#).unwrap();
        assert_eq!(spec, Objective::new("value", Direction::Minimize));
        assert_eq!(spec.metric(), "value");
    }

    #[test]
    fn a_bad_direction_is_rejected() {
        assert!(serde_json::from_str::<Objective>(r#"{"metric":"v","direction":"up"}"#).is_err());
    }
}
