//! Tests of the whole page: escaping, self-containment, plot contents, edge cases.

use serde_json::{Map, Value, json};

use super::render_run_report;
use crate::domain::{Direction, Objective, RunStatus, TrialStatus};
use crate::store::{RunRecord, TrialRecord};

fn run(run_id: &str, objective: Objective) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        status: RunStatus::Running,
        started: true,
        objective,
        objective_explicit: true,
        dataset_id: None,
        search_space: None,
        pulse_id: None,
        correlation_id: None,
        tau: None,
        budget: Value::Null,
        parameters: Value::Null,
        extra: Value::Null,
        started_at: None,
        start_payload: Value::Null,
        final_metrics: Value::Null,
        final_best_trial_id: None,
        final_duration_ms: None,
        returncode: None,
        artifact_refs: Value::Null,
        final_warnings: Value::Null,
        stdout_excerpt: None,
        finalize_payload: Value::Null,
        mlflow_run_id: None,
        created_at_ms: 1_760_000_000_000,
        updated_at_ms: 1_760_000_000_000,
        finalized_at_ms: None,
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn trial(
    seq: i64,
    trial_id: &str,
    status: TrialStatus,
    params: Value,
    metrics: Value,
) -> TrialRecord {
    TrialRecord {
        seq,
        trial_id: trial_id.to_string(),
        run_id: "r".to_string(),
        source: "reported".to_string(),
        status,
        parameters: object(params),
        metrics: object(metrics),
        pulse_id: None,
        candidate_id: None,
        artifact_uri: None,
        duration_ms: Some(1200),
        rank: None,
        warnings: Vec::new(),
        spectral_norm: false,
        mlflow_run_id: None,
        dataset_size: None,
        error: None,
        train_request: Value::Null,
        attempts: 0,
        raw_payload: Value::Null,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn accuracy() -> Objective {
    Objective::for_metric("accuracy")
}

fn sample_trials(n: usize) -> Vec<TrialRecord> {
    (0..n)
        .map(|i| {
            let status = if i % 7 == 3 {
                TrialStatus::Failed
            } else {
                TrialStatus::Succeeded
            };
            let act = ["relu", "gelu"][i % 2];
            trial(
                i as i64,
                &format!("t{i}"),
                status,
                json!({"lr": 10f64.powi(-(i as i32 % 5) - 1), "act": act, "levels": i % 4 + 1}),
                json!({"accuracy": 0.5 + (i as f64 * 0.37).sin().abs() * 0.4}),
            )
        })
        .collect()
}

#[test]
fn user_input_is_escaped_everywhere() {
    let hostile = r#"<script>alert(1)</script>"#;
    let r = run(hostile, Objective::for_metric("acc<u>"));
    let trials = vec![
        trial(
            1,
            r#""><img src=x onerror=alert(2)>"#,
            TrialStatus::Succeeded,
            json!({"<b>name</b>": "</svg><script>alert(3)</script>", "ok": 1}),
            json!({"acc<u>": 0.5}),
        ),
        trial(
            2,
            "t'2",
            TrialStatus::Failed,
            json!({"ok": 2, "x&y": "a\"b"}),
            json!({}),
        ),
    ];
    let html = render_run_report(&r, &trials);
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "a script tag got through");
    assert!(!lower.contains("<img"), "an img tag got through");
    assert!(
        !lower.contains("<b>name"),
        "a parameter name got through unescaped"
    );
    assert!(!html.contains("<u>"));
    assert!(!html.contains("t'2"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("x&amp;y"));
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

#[test]
fn the_page_is_self_contained() {
    let html = render_run_report(&run("demo", accuracy()), &sample_trials(12));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</html>"));
    for needle in [
        "http://", "https://", "<script", "<link", "<img", "@import", "url(http",
    ] {
        assert!(!html.contains(needle), "found {needle}");
    }
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
fn both_plots_are_inline_svg_with_one_line_per_trial() {
    let trials = sample_trials(23);
    let html = render_run_report(&run("demo", accuracy()), &trials);
    assert!(html.contains(r#"<svg class="plot" id="history""#));
    assert!(html.contains(r#"<svg class="plot" id="parallel""#));
    assert_eq!(html.matches("<polyline ").count(), trials.len());
    let failed = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Failed)
        .count();
    assert_eq!(
        html.matches(r#"<path class="failed" d="M"#).count(),
        failed + 1,
        "marks plus the legend's"
    );
    assert_eq!(
        html.matches("<tr>").count() + html.matches(r#"<tr class="best-row">"#).count(),
        trials.len() + 1
    );
}

#[test]
fn an_empty_run_renders() {
    let html = render_run_report(&run("empty-run", accuracy()), &[]);
    assert!(html.contains("empty-run"));
    assert!(html.contains("no trials yet"));
    assert!(html.contains(r#"id="history""#));
    assert_eq!(html.matches("<polyline").count(), 0);
    assert!(html.ends_with("</html>"));
}

#[test]
fn a_single_trial_renders_one_point_and_is_the_best() {
    let trials = vec![trial(
        1,
        "only",
        TrialStatus::Succeeded,
        json!({"lr": 0.1}),
        json!({"accuracy": 0.75}),
    )];
    let html = render_run_report(&run("one", accuracy()), &trials);
    assert_eq!(html.matches(r#"<circle class="pt best-pt""#).count(), 1);
    assert_eq!(html.matches(r#"<tr class="best-row">"#).count(), 1);
    assert!(html.contains("<b>0.75</b>"));
    assert!(!html.contains("NaN"));
}

#[test]
fn non_numeric_and_missing_objective_values_count_as_no_value() {
    let trials = vec![
        trial(
            1,
            "nan",
            TrialStatus::Succeeded,
            json!({"a": 1}),
            json!({"loss": "NaN"}),
        ),
        trial(
            2,
            "missing",
            TrialStatus::Succeeded,
            json!({"a": 2}),
            json!({"other": 1.0}),
        ),
        trial(
            3,
            "good",
            TrialStatus::Succeeded,
            json!({"a": 3}),
            json!({"loss": 0.25}),
        ),
        trial(4, "queued", TrialStatus::Queued, json!({"a": 4}), json!({})),
    ];
    let html = render_run_report(&run("r", Objective::for_metric("loss")), &trials);
    assert_eq!(
        html.matches(r#"<circle class="novalue" cx"#).count(),
        3 + 1,
        "marks plus the legend's"
    );
    assert_eq!(html.matches(r#"class="pc-line nov""#).count(), 3);
    assert!(html.contains("(trial <span class=\"id\">good</span>)"));
    assert!(html.contains("<b>loss</b> (minimize)"));
}

#[test]
fn the_best_trial_follows_the_direction() {
    let trials = vec![
        trial(
            1,
            "low",
            TrialStatus::Succeeded,
            json!({"a": 1}),
            json!({"m": 0.1}),
        ),
        trial(
            2,
            "high",
            TrialStatus::Succeeded,
            json!({"a": 2}),
            json!({"m": 0.9}),
        ),
    ];
    let max = render_run_report(
        &run(
            "r",
            Objective {
                metric: "m".into(),
                direction: Direction::Maximize,
            },
        ),
        &trials,
    );
    assert!(max.contains("(trial <span class=\"id\">high</span>)"));
    let min = render_run_report(
        &run(
            "r",
            Objective {
                metric: "m".into(),
                direction: Direction::Minimize,
            },
        ),
        &trials,
    );
    assert!(min.contains("(trial <span class=\"id\">low</span>)"));
}

#[test]
fn trials_are_shown_in_report_order_whatever_the_input_order() {
    let mut trials = sample_trials(5);
    trials.reverse();
    let html = render_run_report(&run("r", accuracy()), &trials);
    let first = html.find(r#"<td class="id">t0</td>"#).unwrap();
    let last = html.find(r#"<td class="id">t4</td>"#).unwrap();
    assert!(first < last);
}
