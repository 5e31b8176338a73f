//! Training benchmark against the PyTorch anchor (`/work/shared/bench/train_torch.py`).
//!
//! Network 64 → 128 (relu) → 64 (relu) → 10 on the 8×8 digits (1797 rows), Adam lr 1e-3,
//! batch 32, 20 epochs, stratified 80/20 split, one run per seed. Single-threaded: the trainer's
//! matrix products use `matrixmultiply` without its threading feature. A second configuration
//! trains a Cerebros-style DAG with the same optimiser settings, to show what the DAG features cost.
//!
//! Run: `cargo bench -p runner --bench train` (data from `$DIGITS_CSV`, default
//! `/work/shared/data/digits.csv`; `$BENCH_SEEDS` seeds, default 3). Results are documented in
//! `docs/benchmarks/training.md`.

use std::time::Instant;

use runner::nas::{Dataset, TrainSpec, train};
use serde_json::{Value, json};

/// The anchor's sequential MLP: a chain of one unit per level, no laterals, norm or dropout.
fn mlp() -> Value {
    json!({
        "levels": 2, "units_per_level": 1, "neurons_per_unit": [128, 64],
        "predecessor_affinity": 1.0, "p_lateral_connection": 0.0,
        "activation": "relu", "dropout": 0.0, "normalization": false,
    })
}

/// A Cerebros-style DAG (3 levels of 3 units, skip and lateral edges, layer norm, dropout), to show
/// what the DAG features cost. No PyTorch counterpart.
fn dag() -> Value {
    json!({
        "levels": 3, "units_per_level": 3, "neurons_per_unit": 64,
        "predecessor_affinity": 0.7, "p_lateral_connection": 0.5,
        "activation": "relu", "dropout": 0.1, "normalization": true,
    })
}

fn spec(network: &Value, seed: u64, epochs: usize) -> TrainSpec {
    let mut map = network
        .as_object()
        .cloned()
        .expect("network params are an object");
    let training = json!({
        "optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0,
        "batch_size": 32, "epochs": epochs,
        "seed": seed, "split_seed": 0, "validation_fraction": 0.2,
    });
    map.extend(
        training
            .as_object()
            .cloned()
            .expect("training params are an object"),
    );
    let (spec, warnings) = TrainSpec::from_params(&map).expect("benchmark params are valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    spec
}

fn stats(xs: &[f64]) -> (f64, f64, f64) {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

fn main() {
    let path =
        std::env::var("DIGITS_CSV").unwrap_or_else(|_| "/work/shared/data/digits.csv".to_string());
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("train bench skipped: cannot read {path} ({e}); set DIGITS_CSV");
            return;
        }
    };
    let seeds: u64 = std::env::var("BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let data = Dataset::from_csv(&bytes).expect("digits CSV parses");
    println!(
        "dataset {path}: {} rows, {} features, task {:?}",
        data.len(),
        data.n_features(),
        data.task()
    );

    for (label, network) in [
        ("runner MLP (rust, 1 thread)", mlp()),
        ("runner DAG 3x3x64, norm, dropout", dag()),
    ] {
        run(label, &network, &data, seeds);
    }
}

fn run(label: &str, network: &Value, data: &Dataset, seeds: u64) {
    println!("## {label}");
    // Warm-up, not recorded (page faults, CPU frequency), like the anchor's warm-up pass.
    train(&spec(network, 0, 1), data, &mut |_| {}).expect("warm-up trains");

    let (mut epoch_means, mut totals, mut accs) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 0..seeds {
        let mut epoch_s = Vec::new();
        let wall = Instant::now();
        let model = train(&spec(network, seed, 20), data, &mut |r| {
            epoch_s.push(r.seconds)
        })
        .expect("training succeeds");
        let wall = wall.elapsed().as_secs_f64();
        let mean_epoch = epoch_s.iter().sum::<f64>() / epoch_s.len() as f64;
        let m = &model.metrics;
        println!(
            "seed {seed}: mean epoch {mean_epoch:.5} s (first {:.5}), train_seconds {:.3} (incl. per-epoch validation), \
             wall {wall:.3} s, val accuracy {:.4}, final train loss {:.4}, params {}, latency {:.4} ms/row, artifact {} B",
            epoch_s[0],
            m["train_seconds"],
            m["accuracy"],
            m["loss"],
            m["param_count"],
            m["latency_ms"],
            m["artifact_bytes"]
        );
        epoch_means.push(mean_epoch);
        totals.push(m["train_seconds"]);
        accs.push(m["accuracy"]);
    }
    let (e, t, a) = (stats(&epoch_means), stats(&totals), stats(&accs));
    println!(
        "| {label} | {:.4} / {:.4} / {:.4} | {:.3} | {:.4} / {:.4} / {:.4} |",
        e.0, e.1, e.2, t.1, a.0, a.1, a.2
    );
    println!(
        "{}",
        json!({"config": label, "mean_epoch_s": {"min": e.0, "median": e.1, "max": e.2},
               "train_seconds": {"min": t.0, "median": t.1, "max": t.2},
               "val_acc": {"min": a.0, "median": a.1, "max": a.2}, "seeds": seeds})
    );
}
