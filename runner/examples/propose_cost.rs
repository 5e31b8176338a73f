//! Scratch: time one /propose-shaped draw (k = 8) over 100 trials and P pending proposals.
use runner::search::{
    Direction, Observation, Outcome, ProposeRequest, SearchSpace, Strategy, TpeOptions, propose,
};
use serde_json::{Map, Value, json};
use std::time::Instant;

fn main() {
    let space = SearchSpace::parse(&json!({"x":{"uniform":[-5,10]},"y":{"uniform":[0,15]},"lr":{"loguniform":[0.0001,0.1]},"n":{"int":[1,8]},"act":{"choice":["relu","tanh","gelu"]}})).unwrap();
    let mut hist = Vec::new();
    let mut seed_req = ProposeRequest {
        space: &space,
        history: &[],
        pending: &[],
        k: 100,
        strategy: Strategy::Random,
        direction: Direction::Maximize,
        seed: 1,
        options: TpeOptions::default(),
    };
    let pts = propose(&seed_req);
    for p in &pts {
        let (x, y) = (
            p.params["x"].as_f64().unwrap(),
            p.params["y"].as_f64().unwrap(),
        );
        hist.push(Observation {
            params: p.params.clone(),
            outcome: Outcome::Complete(-(x - 2.0).powi(2) - (y - 5.0).powi(2)),
        });
    }
    seed_req.k = 600;
    seed_req.seed = 2;
    let pend_owned: Vec<Map<String, Value>> =
        propose(&seed_req).into_iter().map(|p| p.params).collect();
    let pend: Vec<&Map<String, Value>> = pend_owned.iter().collect();
    for p in [0usize, 8, 64, 128, 256, 512] {
        let req = ProposeRequest {
            space: &space,
            history: &hist,
            pending: &pend[..p],
            k: 8,
            strategy: Strategy::Tpe,
            direction: Direction::Maximize,
            seed: 3,
            options: TpeOptions::default(),
        };
        let n = 50;
        let t = Instant::now();
        for i in 0..n {
            let mut r = ProposeRequest { seed: i, ..req };
            r.k = 8;
            std::hint::black_box(propose(&r));
        }
        println!(
            "pending {p}: {:.3} ms per k=8 request",
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        );
    }
}
