//! The trial table: one row per trial in report order, the best trial highlighted.

use std::fmt::{self, Write};

use serde_json::{Map, Value};

use super::escape::{escape, value_text};
use super::scale::format_significant;
use crate::store::TrialRecord;

/// Renders the table; `best` is the index of the best trial, `metric` the objective's name.
pub(crate) fn render(
    out: &mut String,
    trials: &[&TrialRecord],
    metric: &str,
    best: Option<usize>,
) -> fmt::Result {
    if trials.is_empty() {
        return out.write_str(r#"<p class="note">no trials yet</p>"#);
    }
    write!(
        out,
        r#"<table class="trials"><thead><tr><th>#</th><th>trial id</th><th>status</th><th>{}</th><th>parameters</th><th>duration</th></tr></thead><tbody>"#,
        escape(metric)
    )?;
    for (i, trial) in trials.iter().enumerate() {
        let class = if best == Some(i) {
            " class=\"best-row\""
        } else {
            ""
        };
        let objective = match trial.metrics.get(metric) {
            None => "—".to_string(),
            Some(v) => match v.as_f64() {
                Some(f) => format_significant(f, 6),
                None => value_text(v),
            },
        };
        write!(
            out,
            r#"<tr{class}><td class="num">{}</td><td class="id">{}</td><td><span class="status {}">{}</span></td><td class="num">{}</td><td class="params">"#,
            i + 1,
            escape(&trial.trial_id),
            trial.status.as_str(),
            trial.status.as_str(),
            escape(&objective),
        )?;
        write_params(out, &trial.parameters)?;
        write!(
            out,
            r#"</td><td class="num">{}</td></tr>"#,
            trial
                .duration_ms
                .map_or_else(|| "—".to_string(), duration_text)
        )?;
    }
    out.push_str("</tbody></table>");
    Ok(())
}

/// Writes parameters as `name=value` chips; fractional numbers are shortened to six significant digits, with
/// the exact value in the tooltip.
pub(crate) fn write_params(out: &mut String, params: &Map<String, Value>) -> fmt::Result {
    for (name, value) in params {
        let exact = value_text(value);
        let shown = match value.as_f64() {
            Some(v) if value.is_f64() => format_significant(v, 6),
            _ => exact.clone(),
        };
        write!(
            out,
            r#"<span class="param" title="{}"><b>{}</b>={}</span> "#,
            escape(&exact),
            escape(name),
            escape(&shown)
        )?;
    }
    Ok(())
}

/// A duration in milliseconds as people read it.
pub(crate) fn duration_text(ms: i64) -> String {
    if ms < 0 {
        return "—".to_string();
    }
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        return format!("{} s", format_significant(secs, 3));
    }
    let total = ms / 1000;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_parameters_are_shortened_with_the_exact_value_in_the_tooltip() {
        let params = match serde_json::json!({"lr": 0.000123456789, "units": 64, "act": "<relu>"}) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut out = String::new();
        write_params(&mut out, &params).unwrap();
        assert!(out.contains(r#"title="0.000123456789"><b>lr</b>=1.23457e-4<"#));
        assert!(out.contains("<b>units</b>=64<"));
        assert!(out.contains("<b>act</b>=&lt;relu&gt;<"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(1234), "1.23 s");
        assert_eq!(duration_text(125_000), "2 min 5 s");
        assert_eq!(duration_text(3_900_000), "1 h 5 min");
        assert_eq!(duration_text(-1), "—");
    }
}
