//! TPE quality and speed benchmark against Optuna 5.0.0 (`cargo bench -p runner --bench tpe`).
//!
//! Quality: the anchor protocol of `shared/bench/hpo_optuna.py` — Branin, Hartmann6,
//! Rosenbrock-10 on [−5, 10]^10 and a mixed space, minimised, 200 trials, 10 seeds, median regret
//! (best value found − known optimum) at 25/50/100/200 trials — with k = 1 and with batches of
//! k = 4 proposed before any result is reported. Speed: time of one `propose` (k = 1) at 50, 100
//! and 200 trials of history.
//!
//! `TPE_BENCH_QUICK=1` runs 3 seeds and 100 trials, for CI; `TPE_BENCH_SEEDS=n` sets the number
//! of seeds (the Optuna columns stay the 10-seed anchors); `TPE_BENCH_JSON=path` also writes
//! every seed's best-so-far curve there, for statistics against Optuna's per-seed curves.
//!
//! For studies of the sampler's settings: `TPE_BENCH_OPTIONS='{"gamma": "hyperopt"}'` runs TPE
//! with those `TpeOptions` (JSON, unnamed fields at their defaults), `TPE_BENCH_SEED0=s` starts
//! the seeds at `s` (seeds `s..s + n`), and `TPE_BENCH_TPE_ONLY=1` skips random search and the
//! timings. `TPE_BENCH_HELDOUT=1` runs problems the defaults were not chosen on instead
//! (Rosenbrock-4 on [−5, 10]^4, Styblinski–Tang-5 on [−5, 5]^5, Ackley-6 on [−32.768, 32.768]^6,
//! Hartmann3 on [0, 1]^3; no Optuna anchors), and `TPE_BENCH_KS=1,4,8` sets the batch sizes.
//! `TPE_BENCH_NOISE=s` adds Gaussian noise of standard deviation `s` times Optuna's random-search
//! regret at 200 trials to every reported value (anchor problems only); the curves then follow
//! the true value of the trial with the best reported value.

use std::hint::black_box;
use std::time::Instant;

use runner::rng::Rng;
use runner::search::{
    Direction, Observation, Outcome, ProposeRequest, SearchSpace, Strategy, TpeOptions, propose,
};
use serde_json::{Map, Value, json};

const CHECKPOINTS: [usize; 4] = [25, 50, 100, 200];
const TIMING_AT: [usize; 3] = [50, 100, 200];

/// Median regret of Optuna 5.0.0 `TPESampler(seed=s)` (all defaults: multivariate, constant
/// liar), 10 seeds, at 25/50/100/200 trials. k = 1: `shared/bench/optuna_tpe_10seeds_200trials.json`
/// (`hpo_optuna.py`). k = 4: the same problems and seeds with four `ask`s before the four `tell`s,
/// measured on this machine for `docs/benchmarks/search.md`.
const OPTUNA: [(&str, [f64; 4], [f64; 4], f64); 4] = [
    (
        "branin",
        [0.2819, 0.0667, 0.01856, 0.00332],
        [1.655, 0.1429, 0.04096, 0.006226],
        0.1014,
    ),
    (
        "hartmann6",
        [0.6506, 0.2449, 0.1156, 0.03073],
        [1.363, 0.3435, 0.2133, 0.04134],
        1.184,
    ),
    (
        "rosenbrock10",
        [4.045e4, 9453.0, 2169.0, 709.2],
        [4.499e4, 2.144e4, 4140.0, 987.8],
        5.67e4,
    ),
    (
        "mixed",
        [0.29, 0.1074, 0.002777, 1.143e-4],
        [0.2857, 0.0522, 0.003474, 1.449e-4],
        0.1864,
    ),
];

/// Optuna's sampler time per trial (ms, median over seeds) at 50/100/200 trials, same JSON.
const OPTUNA_MS: [[f64; 3]; 4] = [
    [1.13, 1.37, 1.88],
    [1.89, 2.28, 3.57],
    [2.63, 3.46, 5.02],
    [2.00, 2.41, 3.00],
];

struct Problem {
    name: &'static str,
    space: SearchSpace,
    f: fn(&Map<String, Value>) -> f64,
    f_opt: f64,
}

fn x(p: &Map<String, Value>, key: &str) -> f64 {
    p[key].as_f64().expect("numeric parameter")
}

fn branin(p: &Map<String, Value>) -> f64 {
    let (x1, x2) = (x(p, "x1"), x(p, "x2"));
    let pi = std::f64::consts::PI;
    let (b, c, t) = (5.1 / (4.0 * pi * pi), 5.0 / pi, 1.0 / (8.0 * pi));
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

fn hartmann6(p: &Map<String, Value>) -> f64 {
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    hartmann(&A, &P, &xs(p, 6))
}

fn rosenbrock10(p: &Map<String, Value>) -> f64 {
    let xs: Vec<f64> = (0..10).map(|i| x(p, &format!("x{i}"))).collect();
    xs.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn xs(p: &Map<String, Value>, d: usize) -> Vec<f64> {
    (0..d).map(|i| x(p, &format!("x{i}"))).collect()
}

fn rosenbrock4(p: &Map<String, Value>) -> f64 {
    xs(p, 4)
        .windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn styblinski_tang5(p: &Map<String, Value>) -> f64 {
    0.5 * xs(p, 5)
        .iter()
        .map(|x| x.powi(4) - 16.0 * x * x + 5.0 * x)
        .sum::<f64>()
}

fn ackley6(p: &Map<String, Value>) -> f64 {
    let v = xs(p, 6);
    let n = v.len() as f64;
    let sq = v.iter().map(|x| x * x).sum::<f64>() / n;
    let cos = v
        .iter()
        .map(|x| (2.0 * std::f64::consts::PI * x).cos())
        .sum::<f64>()
        / n;
    -20.0 * (-0.2 * sq.sqrt()).exp() - cos.exp() + 20.0 + std::f64::consts::E
}

fn hartmann3(p: &Map<String, Value>) -> f64 {
    const A: [[f64; 3]; 4] = [
        [3.0, 10.0, 30.0],
        [0.1, 10.0, 35.0],
        [3.0, 10.0, 30.0],
        [0.1, 10.0, 35.0],
    ];
    const P: [[f64; 3]; 4] = [
        [3689.0, 1170.0, 2673.0],
        [4699.0, 4387.0, 7470.0],
        [1091.0, 8732.0, 5547.0],
        [381.0, 5743.0, 8828.0],
    ];
    hartmann(&A, &P, &xs(p, 3))
}

/// The Hartmann family: `−Σ_r α_r exp(−Σ_j A_rj (x_j − 10⁻⁴ P_rj)²)`.
fn hartmann<const D: usize>(a: &[[f64; D]; 4], p: &[[f64; D]; 4], xs: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    -(0..4)
        .map(|r| {
            let inner: f64 = (0..D)
                .map(|j| a[r][j] * (xs[j] - 1e-4 * p[r][j]).powi(2))
                .sum();
            ALPHA[r] * (-inner).exp()
        })
        .sum::<f64>()
}

fn mixed(p: &Map<String, Value>) -> f64 {
    let act = p["activation"].as_str().expect("activation");
    let (center, penalty) = match act {
        "gelu" => (-3.0, 0.0),
        "relu" => (-3.0, 0.1),
        "tanh" => (-2.0, 0.4),
        _ => (-1.5, 0.8),
    };
    let layers = p["n_layers"].as_i64().expect("integer n_layers") as f64;
    (x(p, "lr").log10() - center).powi(2)
        + 0.5 * (x(p, "weight_decay").log10() + 4.0).powi(2)
        + 0.3 * (layers - 3.0).powi(2)
        + penalty
}

fn box_space(d: usize, lo: f64, hi: f64) -> SearchSpace {
    let m: Map<String, Value> = (0..d)
        .map(|i| (format!("x{i}"), json!({ "uniform": [lo, hi] })))
        .collect();
    SearchSpace::parse(&Value::Object(m)).expect("valid space")
}

/// Problems no setting was chosen on (`TPE_BENCH_HELDOUT=1`).
fn heldout_problems() -> Vec<Problem> {
    vec![
        Problem {
            name: "rosenbrock4",
            space: box_space(4, -5.0, 10.0),
            f: rosenbrock4,
            f_opt: 0.0,
        },
        Problem {
            name: "styblinski_tang5",
            space: box_space(5, -5.0, 5.0),
            f: styblinski_tang5,
            f_opt: -39.166_165_703_771_41 * 5.0,
        },
        Problem {
            name: "ackley6",
            space: box_space(6, -32.768, 32.768),
            f: ackley6,
            f_opt: 0.0,
        },
        Problem {
            name: "hartmann3",
            space: box_space(3, 0.0, 1.0),
            f: hartmann3,
            f_opt: -3.862_782_147_820_76,
        },
    ]
}

fn problems() -> Vec<Problem> {
    let parse = |v: Value| SearchSpace::parse(&v).expect("valid space");
    vec![
        Problem {
            name: "branin",
            space: parse(json!({"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}})),
            f: branin,
            f_opt: 0.397_887_357_729_738,
        },
        Problem {
            name: "hartmann6",
            space: box_space(6, 0.0, 1.0),
            f: hartmann6,
            f_opt: -3.322_368_011_415_51,
        },
        Problem {
            name: "rosenbrock10",
            space: box_space(10, -5.0, 10.0),
            f: rosenbrock10,
            f_opt: 0.0,
        },
        Problem {
            name: "mixed",
            space: parse(json!({
                "lr": {"loguniform": [1e-5, 1e-1]},
                "weight_decay": {"loguniform": [1e-6, 1e-2]},
                "n_layers": {"int": [1, 8]},
                "activation": {"choice": ["relu", "tanh", "gelu", "sigmoid"]},
            })),
            f: mixed,
            f_opt: 0.0,
        },
    ]
}

fn request<'a>(
    space: &'a SearchSpace,
    history: &'a [Observation],
    k: usize,
    strategy: Strategy,
    seed: u64,
    options: TpeOptions,
) -> ProposeRequest<'a> {
    ProposeRequest {
        space,
        history,
        pending: &[],
        k,
        strategy,
        direction: Direction::Minimize,
        seed,
        options,
    }
}

/// One optimisation run: the history and the best-so-far value after each trial.
fn run(
    p: &Problem,
    strategy: Strategy,
    k: usize,
    seed: u64,
    n: usize,
    options: TpeOptions,
    noise_sd: f64,
) -> (Vec<Observation>, Vec<f64>) {
    let mut history: Vec<Observation> = Vec::with_capacity(n);
    let mut best = Vec::with_capacity(n);
    // With noise: the best observed value so far, and the true value of that trial.
    let mut incumbent = (f64::INFINITY, f64::INFINITY);
    while history.len() < n {
        let call_seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ history.len() as u64;
        let batch = propose(&request(
            &p.space,
            &history,
            k.min(n - history.len()),
            strategy,
            call_seed,
            options,
        ));
        for prop in batch {
            let truth = (p.f)(&prop.params);
            let v = if noise_sd > 0.0 {
                let noise_seed = seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ history.len() as u64;
                truth + noise_sd * Rng::seed_from_u64(noise_seed).normal()
            } else {
                truth
            };
            if v < incumbent.0 {
                incumbent = (v, truth);
            }
            best.push(incumbent.1);
            history.push(Observation {
                params: prop.params,
                outcome: Outcome::Complete(v),
            });
        }
    }
    (history, best)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

fn fmt(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    // Four significant digits.
    let magnitude = x.abs().log10().floor() as i32;
    if !(-3..4).contains(&magnitude) {
        format!("{x:.3e}")
    } else {
        format!("{x:.*}", (3 - magnitude) as usize)
    }
}

/// Median time of one k = 1 proposal (ms) on `history`, over `reps` calls.
fn time_propose(space: &SearchSpace, history: &[Observation], reps: usize) -> f64 {
    let mut times = Vec::with_capacity(reps);
    for r in 0..reps {
        let req = request(
            space,
            history,
            1,
            Strategy::Tpe,
            r as u64,
            TpeOptions::default(),
        );
        let t0 = Instant::now();
        black_box(propose(black_box(&req)));
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

fn main() {
    let quick = std::env::var("TPE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (default_seeds, n_trials) = if quick { (3, 100) } else { (10, 200) };
    let n_seeds = std::env::var("TPE_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_seeds);
    let seed0: u64 = std::env::var("TPE_BENCH_SEED0")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let options: TpeOptions = match std::env::var("TPE_BENCH_OPTIONS") {
        Ok(text) => serde_json::from_str(&text).expect("TPE_BENCH_OPTIONS is TpeOptions JSON"),
        Err(_) => TpeOptions::default(),
    };
    let tpe_only = std::env::var("TPE_BENCH_TPE_ONLY").is_ok_and(|v| v == "1");
    let heldout = std::env::var("TPE_BENCH_HELDOUT").is_ok_and(|v| v == "1");
    let noise: f64 = std::env::var("TPE_BENCH_NOISE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        noise == 0.0 || !heldout,
        "TPE_BENCH_NOISE applies to the anchor problems only"
    );
    let ks: Vec<usize> = match std::env::var("TPE_BENCH_KS") {
        Ok(text) => text
            .split(',')
            .map(|k| {
                k.trim()
                    .parse()
                    .expect("TPE_BENCH_KS is a list of batch sizes")
            })
            .collect(),
        Err(_) => vec![1, 4],
    };
    let checkpoints: Vec<usize> = CHECKPOINTS
        .iter()
        .copied()
        .filter(|c| *c <= n_trials)
        .collect();
    println!(
        "TPE benchmark: {n_seeds} seeds from {seed0}, {n_trials} trials, minimisation; median regret over seeds"
    );
    println!(
        "options: {}",
        serde_json::to_string(&options).expect("options serialise")
    );
    println!();
    let head: Vec<String> = checkpoints.iter().map(|c| format!("@{c}")).collect();
    println!(
        "| problem | k | sampler | {} |\n|---|---|---|{}",
        head.join(" | "),
        "---|".repeat(checkpoints.len())
    );
    let mut timings = Vec::new();
    let mut curves_json = Map::new();
    let t_all = Instant::now();
    let set = if heldout {
        heldout_problems()
    } else {
        problems()
    };
    let runs: Vec<(usize, Strategy)> = ks
        .iter()
        .map(|&k| (k, Strategy::Tpe))
        .chain((!tpe_only).then_some((1, Strategy::Random)))
        .collect();
    for (pi, p) in set.iter().enumerate() {
        let (_, optuna_k1, optuna_k4, optuna_random_200) = OPTUNA[pi];
        let mut k1_histories = Vec::new();
        for &(k, strategy) in &runs {
            let label = match strategy {
                Strategy::Tpe => "thunderhelm TPE",
                Strategy::Random => "thunderhelm random",
            };
            let mut curves = Vec::with_capacity(n_seeds);
            for seed in seed0..seed0 + n_seeds as u64 {
                let noise_sd = noise * optuna_random_200;
                let (history, best) = run(p, strategy, k, seed, n_trials, options, noise_sd);
                if k == 1 && strategy == Strategy::Tpe {
                    k1_histories.push(history);
                }
                curves.push(best);
            }
            let key = format!(
                "{}/{}/k={k}",
                p.name,
                if strategy == Strategy::Tpe {
                    "tpe"
                } else {
                    "random"
                }
            );
            curves_json.insert(key, json!(curves));
            let ours: Vec<String> = checkpoints
                .iter()
                .map(|&c| fmt(median(curves.iter().map(|b| b[c - 1] - p.f_opt).collect())))
                .collect();
            println!("| {} | {k} | {label} | {} |", p.name, ours.join(" | "));
            let anchor = match (strategy, k) {
                _ if heldout => None,
                (Strategy::Tpe, 1) => Some(optuna_k1),
                (Strategy::Tpe, 4) => Some(optuna_k4),
                _ => None,
            };
            match anchor {
                Some(a) => {
                    let cells: Vec<String> = (0..checkpoints.len()).map(|i| fmt(a[i])).collect();
                    println!(
                        "| {} | {k} | Optuna 5.0.0 TPE | {} |",
                        p.name,
                        cells.join(" | ")
                    );
                }
                None if n_trials >= 200 && strategy == Strategy::Random && !heldout => {
                    let mut cells = vec!["".to_string(); checkpoints.len()];
                    cells[checkpoints.len() - 1] = fmt(optuna_random_200);
                    println!(
                        "| {} | 1 | Optuna 5.0.0 random | {} |",
                        p.name,
                        cells.join(" | ")
                    );
                }
                None => {}
            }
        }
        if tpe_only || heldout || k1_histories.is_empty() {
            continue;
        }
        let reps = if quick { 11 } else { 51 };
        let ms: Vec<f64> = TIMING_AT
            .iter()
            .filter(|&&n| n <= n_trials)
            .map(|&n| {
                median(
                    k1_histories
                        .iter()
                        .map(|h| time_propose(&p.space, &h[..n], reps))
                        .collect(),
                )
            })
            .collect();
        timings.push((p.name, ms, OPTUNA_MS[pi]));
    }
    println!();
    println!("Time per proposal (k = 1, ms; median over seeds of the median of repeated calls):");
    println!();
    println!("| problem | @50 | @100 | @200 | Optuna 5.0.0 @50 / @100 / @200 |");
    println!("|---|---|---|---|---|");
    for (name, ms, optuna) in timings {
        let mut cells: Vec<String> = ms.iter().map(|t| format!("{t:.3}")).collect();
        cells.resize(3, "".into());
        println!(
            "| {name} | {} | {:.2} / {:.2} / {:.2} |",
            cells.join(" | "),
            optuna[0],
            optuna[1],
            optuna[2]
        );
    }
    println!();
    println!("total wall time {:.1} s", t_all.elapsed().as_secs_f64());
    if let Ok(path) = std::env::var("TPE_BENCH_JSON") {
        let text = serde_json::to_string(&Value::Object(curves_json)).expect("curves serialise");
        std::fs::write(&path, text).expect("TPE_BENCH_JSON is writable");
        println!("wrote {path}");
    }
}
