//! The parallel-coordinates plot: one vertical axis per parameter and the objective as the last axis, one
//! line per trial, coloured from worse (dark) to better (bright) by the objective.
//!
//! Numeric parameters are scaled min–max (logarithmically when every value is positive and they span more
//! than two decades); any other parameter is categorical, its distinct values evenly spaced along the axis.

use std::cmp::Ordering;
use std::fmt::{self, Write};

use serde_json::{Map, Value};

use super::color::{gradient_stops, ramp};
use super::escape::{escape, truncate, value_text};
use super::scale::{Scale, extent, format_number, integer_ticks};
use crate::domain::{Direction, Objective};

/// One trial as the plot sees it.
#[derive(Debug, Clone)]
pub(crate) struct Line<'a> {
    /// The trial id (shown in the tooltip).
    pub trial_id: &'a str,
    /// Its parameters.
    pub params: &'a Map<String, Value>,
    /// Its objective value, when it succeeded with a finite one.
    pub value: Option<f64>,
}

const HEIGHT: f64 = 440.0;
const LEFT: f64 = 90.0;
const SPACING: f64 = 140.0;
const LEGEND_WIDTH: f64 = 150.0;
const AXIS_TOP: f64 = 64.0;
const AXIS_BOTTOM: f64 = HEIGHT - 36.0;
/// Largest ratio of a numeric parameter's max to min that still reads well on a linear axis.
const LOG_SPAN: f64 = 100.0;
/// Category labels beyond this many are thinned out so they do not overlap.
const MAX_CATEGORY_LABELS: usize = 16;

#[derive(Debug)]
enum Kind {
    /// Numbers; `integer` when every value is a whole JSON integer (ticks then fall on whole numbers).
    Numeric {
        scale: Scale,
        integer: bool,
    },
    Categorical(Vec<String>),
}

#[derive(Debug)]
struct Axis {
    name: String,
    kind: Kind,
}

impl Axis {
    /// The vertical position of `value` on this axis, if it has one there.
    fn position(&self, value: &Value) -> Option<f64> {
        match &self.kind {
            Kind::Numeric { scale, .. } => value
                .as_f64()
                .filter(|v| v.is_finite())
                .map(|v| scale.map(v)),
            Kind::Categorical(categories) => {
                let text = value_text(value);
                let i = categories.binary_search(&text).ok()?;
                Some(category_y(i, categories.len()))
            }
        }
    }
}

fn category_y(i: usize, n: usize) -> f64 {
    if n <= 1 {
        (AXIS_TOP + AXIS_BOTTOM) / 2.0
    } else {
        AXIS_BOTTOM - (AXIS_BOTTOM - AXIS_TOP) * i as f64 / (n - 1) as f64
    }
}

/// Parameter names in order of first appearance across trials.
fn parameter_names<'a>(lines: &[Line<'a>]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for line in lines {
        for name in line.params.keys() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
}

fn parameter_axis(name: &str, lines: &[Line<'_>]) -> Axis {
    let values: Vec<&Value> = lines.iter().filter_map(|l| l.params.get(name)).collect();
    let numeric: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
            _ => None,
        })
        .collect();
    let integer = values.iter().all(|v| v.is_i64() || v.is_u64());
    let kind = match numeric.and_then(extent) {
        Some((lo, hi)) if lo > 0.0 && hi / lo > LOG_SPAN => Kind::Numeric {
            scale: Scale::log(lo, hi, AXIS_BOTTOM, AXIS_TOP),
            integer,
        },
        Some((lo, hi)) => Kind::Numeric {
            scale: Scale::linear(lo, hi, AXIS_BOTTOM, AXIS_TOP),
            integer,
        },
        None => {
            let mut categories: Vec<String> = values.iter().map(|v| value_text(v)).collect();
            categories.sort();
            categories.dedup();
            Kind::Categorical(categories)
        }
    };
    Axis {
        name: name.to_string(),
        kind,
    }
}

/// Renders the plot as an inline `<svg>`, or a note when there is nothing to draw.
pub(crate) fn render(out: &mut String, lines: &[Line<'_>], objective: &Objective) -> fmt::Result {
    let names = parameter_names(lines);
    if lines.is_empty() {
        return out.write_str(r#"<p class="note">no trials yet</p>"#);
    }
    if names.is_empty() {
        return out.write_str(r#"<p class="note">the trials recorded no parameters</p>"#);
    }
    let mut axes: Vec<Axis> = names.iter().map(|n| parameter_axis(n, lines)).collect();
    let objective_extent = extent(lines.iter().filter_map(|l| l.value));
    let (lo, hi) = objective_extent.unwrap_or((0.0, 1.0));
    let objective_scale = Scale::linear(lo, hi, AXIS_BOTTOM, AXIS_TOP);
    axes.push(Axis {
        name: objective.metric.clone(),
        kind: Kind::Numeric {
            scale: objective_scale,
            integer: false,
        },
    });
    let last_x = LEFT + SPACING * (axes.len() - 1) as f64;
    let width = last_x + LEGEND_WIDTH;
    write!(
        out,
        r#"<svg class="plot" id="parallel" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" role="img" aria-label="parallel coordinates of parameters and objective">"#
    )?;
    let goodness = |v: f64| {
        let t = objective_scale.fraction(v);
        match objective.direction {
            Direction::Maximize => t,
            Direction::Minimize => 1.0 - t,
        }
    };
    let mut order: Vec<&Line<'_>> = lines.iter().collect();
    // Lines without a value first, then worse to better, so the best trials are drawn on top.
    order.sort_by(|a, b| match (a.value, b.value) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => goodness(x).total_cmp(&goodness(y)),
    });
    out.push_str(r#"<g class="lines">"#);
    for line in order {
        let mut points = String::new();
        for (i, axis) in axes.iter().enumerate() {
            let y = if i + 1 == axes.len() {
                line.value.map(|v| objective_scale.map(v))
            } else {
                line.params.get(&axis.name).and_then(|v| axis.position(v))
            };
            if let Some(y) = y {
                write!(points, "{:.1},{y:.1} ", LEFT + SPACING * i as f64)?;
            }
        }
        let tip = escape(&format!(
            "{}: {}",
            line.trial_id,
            line.value
                .map_or_else(|| "no value".to_string(), format_number)
        ));
        match line.value {
            Some(v) => write!(
                out,
                r#"<polyline class="pc-line" points="{}" stroke="{}"><title>{tip}</title></polyline>"#,
                points.trim_end(),
                ramp(goodness(v))
            )?,
            None => write!(
                out,
                r#"<polyline class="pc-line nov" points="{}"><title>{tip}</title></polyline>"#,
                points.trim_end()
            )?,
        }
    }
    out.push_str("</g>");
    for (i, axis) in axes.iter().enumerate() {
        write_axis(out, axis, LEFT + SPACING * i as f64, i + 1 == axes.len())?;
    }
    write_legend(out, last_x + 46.0, objective, objective_extent)?;
    out.push_str("</svg>");
    Ok(())
}

fn write_axis(out: &mut String, axis: &Axis, x: f64, is_objective: bool) -> fmt::Result {
    write!(
        out,
        r#"<line class="pc-axis" x1="{x}" y1="{AXIS_TOP}" x2="{x}" y2="{AXIS_BOTTOM}"/>"#
    )?;
    let class = if is_objective {
        "label objective"
    } else {
        "label"
    };
    write!(
        out,
        r#"<text class="{class}" x="{x}" y="{}" text-anchor="middle"><title>{}</title>{}</text>"#,
        AXIS_TOP - 30.0,
        escape(&axis.name),
        escape(&truncate(&axis.name, 18))
    )?;
    let note = match &axis.kind {
        Kind::Numeric { scale, .. } if scale.is_log() => "log",
        Kind::Numeric { .. } => "",
        Kind::Categorical(_) => "categorical",
    };
    if !note.is_empty() {
        write!(
            out,
            r#"<text class="axis-note" x="{x}" y="{}" text-anchor="middle">{note}</text>"#,
            AXIS_TOP - 16.0
        )?;
    }
    match &axis.kind {
        Kind::Numeric { scale, integer } => {
            let ticks = if *integer && !scale.is_log() {
                let (lo, hi) = scale.domain();
                integer_ticks(lo, hi, 5)
            } else {
                scale.ticks(5)
            };
            for (v, label) in ticks {
                write_tick(out, x, scale.map(v), &label)?;
            }
        }
        Kind::Categorical(categories) => {
            let every = categories.len().div_ceil(MAX_CATEGORY_LABELS).max(1);
            for (i, category) in categories.iter().enumerate().step_by(every) {
                write_tick(
                    out,
                    x,
                    category_y(i, categories.len()),
                    &truncate(category, 14),
                )?;
            }
        }
    }
    Ok(())
}

fn write_tick(out: &mut String, x: f64, y: f64, label: &str) -> fmt::Result {
    write!(
        out,
        r#"<line class="axis" x1="{}" y1="{y:.1}" x2="{x}" y2="{y:.1}"/><text class="tick halo" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
        x - 4.0,
        x - 6.0,
        y + 3.5,
        escape(label)
    )
}

/// The colour legend: a gradient bar from the worst to the best objective value seen.
fn write_legend(
    out: &mut String,
    x: f64,
    objective: &Objective,
    extent: Option<(f64, f64)>,
) -> fmt::Result {
    let Some((lo, hi)) = extent else {
        return write!(
            out,
            r#"<text class="tick" x="{x}" y="{}">no values yet</text>"#,
            (AXIS_TOP + AXIS_BOTTOM) / 2.0
        );
    };
    let (worst, best) = match objective.direction {
        Direction::Maximize => (lo, hi),
        Direction::Minimize => (hi, lo),
    };
    write!(
        out,
        r#"<defs><linearGradient id="pc-ramp" x1="0" y1="1" x2="0" y2="0">{}</linearGradient></defs><rect x="{x}" y="{AXIS_TOP}" width="14" height="{}" fill="url(#pc-ramp)"/><text class="tick" x="{}" y="{}">best {}</text><text class="tick" x="{}" y="{}">worst {}</text>"#,
        gradient_stops(),
        AXIS_BOTTOM - AXIS_TOP,
        x + 20.0,
        AXIS_TOP + 9.0,
        escape(&format_number(best)),
        x + 20.0,
        AXIS_BOTTOM,
        escape(&format_number(worst))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn render_lines(rows: &[(Map<String, Value>, Option<f64>)]) -> String {
        let lines: Vec<Line<'_>> = rows
            .iter()
            .map(|(p, v)| Line {
                trial_id: "t",
                params: p,
                value: *v,
            })
            .collect();
        let mut out = String::new();
        render(&mut out, &lines, &Objective::default()).unwrap();
        out
    }

    #[test]
    fn one_line_per_trial_and_one_axis_per_parameter_plus_the_objective() {
        let rows = vec![
            (params(json!({"lr": 0.1, "act": "relu"})), Some(0.8)),
            (params(json!({"lr": 0.01, "act": "gelu", "depth": 3})), None),
            (params(json!({"lr": 0.001})), Some(0.9)),
        ];
        let svg = render_lines(&rows);
        assert_eq!(svg.matches("<polyline ").count(), 3);
        assert_eq!(svg.matches(r#"class="pc-axis""#).count(), 4);
        assert_eq!(svg.matches(r#"class="pc-line nov""#).count(), 1);
    }

    #[test]
    fn wide_positive_ranges_use_a_log_axis_and_others_do_not() {
        let wide = render_lines(&[
            (params(json!({"lr": 1e-5})), Some(0.1)),
            (params(json!({"lr": 1e-1})), Some(0.2)),
        ]);
        assert!(wide.contains(">log</text>"));
        let with_zero = render_lines(&[
            (params(json!({"lr": 0.0})), Some(0.1)),
            (params(json!({"lr": 1e3})), Some(0.2)),
        ]);
        assert!(!with_zero.contains(">log</text>"));
        let narrow = render_lines(&[
            (params(json!({"lr": 1.0})), Some(0.1)),
            (params(json!({"lr": 50.0})), Some(0.2)),
        ]);
        assert!(!narrow.contains(">log</text>"));
    }

    #[test]
    fn mixed_types_make_a_categorical_axis_with_every_value() {
        let svg = render_lines(&[
            (params(json!({"units": 32})), Some(0.1)),
            (params(json!({"units": "auto"})), Some(0.2)),
            (params(json!({"units": true})), Some(0.3)),
        ]);
        assert!(svg.contains(">categorical</text>"));
        for label in [">32</text>", ">auto</text>", ">true</text>"] {
            assert!(svg.contains(label), "missing {label}");
        }
    }

    #[test]
    fn integer_parameters_get_whole_number_ticks() {
        let svg = render_lines(&[
            (params(json!({"levels": 1})), Some(0.1)),
            (params(json!({"levels": 3})), Some(0.2)),
        ]);
        for label in [">1</text>", ">2</text>", ">3</text>"] {
            assert!(svg.contains(label), "missing {label}");
        }
        assert!(!svg.contains(">1.5</text>"));
    }

    #[test]
    fn categories_are_evenly_spaced_bottom_to_top() {
        assert_eq!(category_y(0, 3), AXIS_BOTTOM);
        assert_eq!(category_y(2, 3), AXIS_TOP);
        assert_eq!(category_y(1, 3), (AXIS_TOP + AXIS_BOTTOM) / 2.0);
        assert_eq!(category_y(0, 1), (AXIS_TOP + AXIS_BOTTOM) / 2.0);
    }

    #[test]
    fn the_best_line_is_the_brightest_and_drawn_last() {
        let svg = render_lines(&[
            (params(json!({"a": 1})), Some(0.9)),
            (params(json!({"a": 2})), Some(0.1)),
        ]);
        let best = svg.find(&format!(r#"stroke="{}""#, ramp(1.0))).unwrap();
        let worst = svg.find(&format!(r#"stroke="{}""#, ramp(0.0))).unwrap();
        assert!(worst < best);
    }

    #[test]
    fn no_trials_or_no_parameters_give_a_note() {
        assert!(render_lines(&[]).contains("no trials yet"));
        assert!(render_lines(&[(Map::new(), Some(0.5))]).contains("no parameters"));
    }
}
