//! The sampler's cost for one `/propose` call as the service benchmark makes it (`scripts/bench-runner.sh`):
//! k = 8 TPE proposals in a five-parameter space (two floats, a log float, an int, a categorical) over 100
//! finished trials, with 0 to 512 pending proposals for the constant liar.
//! Run: `cargo bench -p runner --bench propose_batch`; `PROPOSE_BENCH_PENDING=512` times only that
//! many pending proposals (repeated 20× as often, for profiling); `PROPOSE_BENCH_K=64` proposes 64 per call
//! instead of 8.

use std::hint::black_box;
use std::time::Instant;

use runner::search::{
    Direction, Observation, Outcome, ProposeRequest, SearchSpace, Strategy, TpeOptions, propose,
};
use serde_json::{Map, Value, json};

fn main() {
    let space = SearchSpace::parse(&json!({
        "x": {"uniform": [-5, 10]}, "y": {"uniform": [0, 15]}, "lr": {"loguniform": [0.0001, 0.1]},
        "n": {"int": [1, 8]}, "act": {"choice": ["relu", "tanh", "gelu"]}
    }))
    .expect("valid space");
    let random = |k: usize, seed: u64| -> Vec<Map<String, Value>> {
        let req = ProposeRequest {
            space: &space,
            history: &[],
            pending: &[],
            k,
            strategy: Strategy::Random,
            direction: Direction::Maximize,
            seed,
            options: TpeOptions::default(),
        };
        propose(&req).into_iter().map(|p| p.params).collect()
    };
    let history: Vec<Observation> = random(100, 1)
        .into_iter()
        .map(|params| {
            let (x, y) = (
                params["x"].as_f64().unwrap_or(0.0),
                params["y"].as_f64().unwrap_or(0.0),
            );
            let value = -(x - 2.0).powi(2) - (y - 5.0).powi(2);
            Observation {
                params,
                outcome: Outcome::Complete(value),
            }
        })
        .collect();
    let pending_owned = random(512, 2);
    let pending: Vec<&Map<String, Value>> = pending_owned.iter().collect();
    let only: Option<usize> = std::env::var("PROPOSE_BENCH_PENDING").ok().map(|v| {
        v.parse()
            .expect("PROPOSE_BENCH_PENDING is a number of pending proposals")
    });
    let sizes = only.map_or(vec![0usize, 8, 64, 128, 256, 512], |n| vec![n.min(512)]);
    let k: usize = std::env::var("PROPOSE_BENCH_K").map_or(8, |v| {
        v.parse()
            .expect("PROPOSE_BENCH_K is a number of proposals per call")
    });
    let calls: u64 = if only.is_some() { 400 } else { 20 };
    println!("| pending proposals | ms per k = {k} call (median of 7 x {calls} calls) |");
    println!("|---|---|");
    for n_pending in sizes {
        let mut runs: Vec<f64> = (0..7)
            .map(|rep| {
                let started = Instant::now();
                for call in 0..calls {
                    let req = ProposeRequest {
                        space: &space,
                        history: &history,
                        pending: &pending[..n_pending],
                        k,
                        strategy: Strategy::Tpe,
                        direction: Direction::Maximize,
                        seed: rep * 100 + call,
                        options: TpeOptions::default(),
                    };
                    black_box(propose(&req));
                }
                started.elapsed().as_secs_f64() * 1e3 / calls as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!("| {n_pending} | {:.3} |", runs[3]);
    }
}
