//! The optimisation history plot: the objective of every trial in report order, the best value so far as a
//! step line, and trials without a value (failed, pending, skipped) marked in a strip under the plot.

use std::fmt::{self, Write};

use super::escape::escape;
use super::scale::{Scale, extent, format_number, integer_ticks, nice_domain};
use crate::domain::{Direction, Objective};

/// What one trial contributes to the history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Succeeded with a finite objective value.
    Value(f64),
    /// Failed.
    Failed,
    /// Anything else: still queued or running, skipped, cancelled, or succeeded without the objective metric.
    NoValue,
}

/// One trial of the history, in report order.
#[derive(Debug, Clone)]
pub(crate) struct Point<'a> {
    /// The trial id (shown in the tooltip).
    pub trial_id: &'a str,
    /// Its status (shown in the tooltip).
    pub status: &'a str,
    /// What it scored.
    pub outcome: Outcome,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;
/// Bottom of the value area; the strip of trials without a value sits below it.
const VALUE_BOTTOM: f64 = HEIGHT - 92.0;
const STRIP_Y: f64 = HEIGHT - 72.0;
const AXIS_Y: f64 = HEIGHT - 56.0;

/// Renders the history plot as an inline `<svg>`.
pub(crate) fn render(
    out: &mut String,
    points: &[Point<'_>],
    objective: &Objective,
    best: Option<usize>,
) -> fmt::Result {
    write!(
        out,
        r#"<svg class="plot" id="history" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="optimisation history">"#
    )?;
    let plot_right = WIDTH - RIGHT;
    write!(
        out,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{}" height="{}"/>"#,
        plot_right - LEFT,
        AXIS_Y - TOP
    )?;
    let n = points.len();
    let xs = Scale::linear(0.5, n as f64 + 0.5, LEFT, plot_right);
    let values = points.iter().filter_map(|p| match p.outcome {
        Outcome::Value(v) => Some(v),
        _ => None,
    });
    let (lo, hi) = extent(values).map_or((0.0, 1.0), |(lo, hi)| nice_domain(lo, hi, 6));
    let ys = Scale::linear(lo, hi, VALUE_BOTTOM, TOP + 6.0);

    write_y_axis(out, &ys, objective)?;
    write_x_axis(out, &xs, n)?;
    write!(
        out,
        r#"<line class="strip" x1="{LEFT}" y1="{}" x2="{plot_right}" y2="{}"/><text class="tick" x="{}" y="{}" text-anchor="end">no value</text>"#,
        STRIP_Y - 10.0,
        STRIP_Y - 10.0,
        LEFT - 6.0,
        STRIP_Y + 4.0
    )?;
    if n == 0 {
        write!(
            out,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no trials yet</text>"#,
            (LEFT + plot_right) / 2.0,
            (TOP + VALUE_BOTTOM) / 2.0
        )?;
    }
    write_best_so_far(out, points, objective.direction, &xs, &ys)?;
    for (i, p) in points.iter().enumerate() {
        let x = xs.map((i + 1) as f64);
        let tip = escape(&format!(
            "#{} {} ({}): {}",
            i + 1,
            p.trial_id,
            p.status,
            match p.outcome {
                Outcome::Value(v) => format_number(v),
                Outcome::Failed => "failed".to_string(),
                Outcome::NoValue => "no value".to_string(),
            }
        ));
        match p.outcome {
            Outcome::Value(v) => {
                let class = if best == Some(i) { "pt best-pt" } else { "pt" };
                let r = if best == Some(i) { 6.0 } else { 4.0 };
                write!(
                    out,
                    r#"<circle class="{class}" cx="{x:.1}" cy="{:.1}" r="{r}"><title>{tip}</title></circle>"#,
                    ys.map(v)
                )?;
            }
            Outcome::Failed => write!(
                out,
                r#"<path class="failed" d="M{:.1} {:.1}l8 8m0 -8l-8 8"><title>{tip}</title></path>"#,
                x - 4.0,
                STRIP_Y - 4.0
            )?,
            Outcome::NoValue => write!(
                out,
                r#"<circle class="novalue" cx="{x:.1}" cy="{STRIP_Y}" r="4"><title>{tip}</title></circle>"#
            )?,
        }
    }
    write_legend(out, plot_right)?;
    out.push_str("</svg>");
    Ok(())
}

fn write_y_axis(out: &mut String, ys: &Scale, objective: &Objective) -> fmt::Result {
    for (v, label) in ys.ticks(6) {
        let y = ys.map(v);
        write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&label)
        )?;
    }
    let arrow = match objective.direction {
        Direction::Maximize => "↑ better",
        Direction::Minimize => "↓ better",
    };
    let mid = (TOP + VALUE_BOTTOM) / 2.0;
    write!(
        out,
        r#"<text class="label" x="18" y="{mid}" text-anchor="middle" transform="rotate(-90 18 {mid})">{} ({arrow})</text>"#,
        escape(&super::escape::truncate(&objective.metric, 40))
    )
}

fn write_x_axis(out: &mut String, xs: &Scale, n: usize) -> fmt::Result {
    let ticks = if n == 0 {
        Vec::new()
    } else {
        integer_ticks(1.0, n as f64, 10)
    };
    for (v, label) in ticks {
        let x = xs.map(v);
        write!(
            out,
            r#"<line class="axis" x1="{x:.1}" y1="{AXIS_Y}" x2="{x:.1}" y2="{}"/><text class="tick" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            AXIS_Y + 5.0,
            AXIS_Y + 19.0,
            escape(&label)
        )?;
    }
    write!(
        out,
        r#"<text class="label" x="{}" y="{}" text-anchor="middle">trial (in the order reported)</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 14.0
    )
}

/// The best value so far as a step line: flat until a trial improves on it, then a vertical jump.
fn write_best_so_far(
    out: &mut String,
    points: &[Point<'_>],
    direction: Direction,
    xs: &Scale,
    ys: &Scale,
) -> fmt::Result {
    let mut path = String::new();
    let mut best: Option<f64> = None;
    for (i, p) in points.iter().enumerate() {
        let Outcome::Value(v) = p.outcome else {
            continue;
        };
        let x = xs.map((i + 1) as f64);
        match best {
            None => {
                write!(path, "M{x:.1} {:.1}", ys.map(v))?;
                best = Some(v);
            }
            Some(b) => {
                let improves = match direction {
                    Direction::Maximize => v > b,
                    Direction::Minimize => v < b,
                };
                if improves {
                    write!(path, "H{x:.1}V{:.1}", ys.map(v))?;
                    best = Some(v);
                }
            }
        }
    }
    if best.is_none() {
        return Ok(());
    }
    write!(path, "H{:.1}", xs.map(points.len() as f64))?;
    write!(
        out,
        r#"<path class="best-line" id="best-so-far" d="{path}"/>"#
    )
}

fn write_legend(out: &mut String, plot_right: f64) -> fmt::Result {
    let x = plot_right - 330.0;
    let y = 14.0;
    write!(
        out,
        r#"<g class="legend"><circle class="pt" cx="{x}" cy="{y}" r="4"/><text x="{}" y="{}">trial</text><path class="best-line" d="M{} {y}h22"/><text x="{}" y="{}">best so far</text><path class="failed" d="M{} {}l8 8m0 -8l-8 8"/><text x="{}" y="{}">failed</text><circle class="novalue" cx="{}" cy="{y}" r="4"/><text x="{}" y="{}">no value</text></g>"#,
        x + 8.0,
        y + 4.0,
        x + 52.0,
        x + 80.0,
        y + 4.0,
        x + 170.0,
        y - 4.0,
        x + 184.0,
        y + 4.0,
        x + 240.0,
        x + 248.0,
        y + 4.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(outcomes: &[Outcome]) -> Vec<Point<'static>> {
        outcomes
            .iter()
            .map(|o| Point {
                trial_id: "t",
                status: "succeeded",
                outcome: o.clone(),
            })
            .collect()
    }

    fn svg(outcomes: &[Outcome], direction: Direction) -> String {
        let mut out = String::new();
        let objective = Objective {
            metric: "accuracy".into(),
            direction,
        };
        render(&mut out, &points(outcomes), &objective, None).unwrap();
        out
    }

    /// The plot without its legend, whose sample marks would otherwise be counted.
    fn marks(svg: &str) -> &str {
        svg.find(r#"<g class="legend">"#)
            .map_or(svg, |end| &svg[..end])
    }

    fn best_line(svg: &str) -> &str {
        let marker = r#"id="best-so-far" d=""#;
        let start = svg.find(marker).unwrap() + marker.len();
        let end = start + svg[start..].find('"').unwrap();
        &svg[start..end]
    }

    #[test]
    fn every_trial_gets_one_mark() {
        let s = svg(
            &[
                Outcome::Value(0.5),
                Outcome::Failed,
                Outcome::NoValue,
                Outcome::Value(0.7),
            ],
            Direction::Maximize,
        );
        let s = marks(&s);
        assert_eq!(s.matches(r#"<circle class="pt""#).count(), 2);
        assert_eq!(s.matches(r#"<path class="failed""#).count(), 1);
        assert_eq!(s.matches(r#"<circle class="novalue""#).count(), 1);
    }

    #[test]
    fn the_best_line_steps_only_on_improvements() {
        let up = svg(
            &[
                Outcome::Value(0.5),
                Outcome::Value(0.4),
                Outcome::Value(0.7),
            ],
            Direction::Maximize,
        );
        assert_eq!(best_line(&up).matches('V').count(), 1);
        let down = svg(
            &[
                Outcome::Value(0.5),
                Outcome::Value(0.4),
                Outcome::Value(0.7),
            ],
            Direction::Minimize,
        );
        assert_eq!(best_line(&down).matches('V').count(), 1);
        assert_ne!(best_line(&up), best_line(&down));
    }

    #[test]
    fn no_trials_and_one_trial_render() {
        let empty = svg(&[], Direction::Maximize);
        assert!(empty.contains("no trials yet"));
        assert!(!empty.contains("best-so-far"));
        let one = svg(&[Outcome::Value(0.9)], Direction::Maximize);
        assert_eq!(marks(&one).matches(r#"<circle class="pt""#).count(), 1);
        assert!(!one.contains("NaN"));
    }

    #[test]
    fn only_failures_draw_no_best_line() {
        let s = svg(&[Outcome::Failed, Outcome::Failed], Direction::Maximize);
        assert!(!s.contains("best-so-far"));
    }
}
