//! The training loop: split, wire, initialise, run mini-batch epochs, evaluate, export.
//!
//! Everything random is drawn from generators derived from `spec.seed` (wiring, initialisation,
//! shuffling, dropout) or `spec.split_seed` (the split), and the matrix products are
//! single-threaded, so a run is bit-reproducible on one machine.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use super::dataset::{Dataset, Task};
use super::export::Model;
use super::loss;
use super::network::{Network, UnitOptions, Workspace};
use super::optim::OptimizerState;
use super::params::{ParamError, TrainSpec};
use super::split::{self, Part, Prepared, Targets};
use super::wiring::{self, Shape};
use crate::rng::Rng;

/// Largest network, in trainable parameters.
pub const MAX_PARAMS: u128 = 10_000_000;
/// Largest activation workspace, in `f32` values (256 MiB).
pub const MAX_WORKSPACE_FLOATS: u128 = 64 << 20;
/// Rows per forward pass when evaluating.
const EVAL_CHUNK: usize = 256;
/// Validation rows timed one by one for `latency_ms`.
const LATENCY_ROWS: usize = 256;

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches (cross-entropy, or squared error in target
    /// units).
    pub loss: f64,
    /// Loss on the validation split after the epoch.
    pub val_loss: f64,
    /// Validation accuracy (classification) or RMSE in target units (regression).
    pub val_metric: f64,
    /// `"accuracy"` or `"rmse"`: what `val_metric` is.
    pub val_metric_name: &'static str,
    /// Wall time of the epoch's optimisation pass (excluding validation), in seconds.
    pub seconds: f64,
}

/// A trained network with its measurements.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// Final measurements: `accuracy` or `rmse`/`mae`/`r2` (validation), `loss`, `val_loss`,
    /// `latency_ms`, `param_count`, `artifact_bytes`, `train_seconds`, `epochs_run`.
    pub metrics: BTreeMap<String, f64>,
    /// One report per epoch run.
    pub history: Vec<EpochReport>,
    /// Weights and input statistics in safetensors format.
    pub weights_safetensors: Vec<u8>,
    /// The architecture description (also embedded in the safetensors metadata).
    pub architecture: Value,
}

/// Why training did not produce a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// A hand-built spec breaks a parameter rule.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The drawn network is too large.
    #[error(
        "the network would have {params} parameters, more than the limit of {limit}; use fewer or narrower units"
    )]
    TooManyParams {
        /// Parameters the network would have.
        params: u128,
        /// The limit.
        limit: u128,
    },
    /// The activations of one batch would not fit the memory budget.
    #[error(
        "one batch would need {floats} activation values, more than the limit of {limit}; lower batch_size or the network size"
    )]
    TooMuchMemory {
        /// Values needed.
        floats: u128,
        /// The limit.
        limit: u128,
    },
    /// The loss stopped being a finite number.
    #[error("training diverged at epoch {epoch} (the loss is not finite); lower learning_rate")]
    Diverged {
        /// Epoch at which it was detected.
        epoch: usize,
    },
    /// Serialising the weights failed.
    #[error("could not serialise the weights: {0}")]
    Export(String),
}

/// Validation measurements of one set of weights.
struct Evaluation {
    loss: f64,
    accuracy: f64,
    rmse: f64,
    mae: f64,
    r2: f64,
}

/// What the epoch callback of [`train_with_control`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Run the next epoch.
    Continue,
    /// Stop now and return the model as it is (for deadlines and cancellation).
    Stop,
}

/// Trains a network for `spec` on `data`, calling `on_epoch` after every epoch.
pub fn train(
    spec: &TrainSpec,
    data: &Dataset,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<TrainedModel, TrainError> {
    train_with_control(spec, data, &mut |report| {
        on_epoch(report);
        Control::Continue
    })
}

/// Like [`train`], but the callback may stop training after any epoch; the model trained so far
/// (or its best epoch, with `patience`) is returned, and `epochs_run` says how far it got.
pub fn train_with_control(
    spec: &TrainSpec,
    data: &Dataset,
    on_epoch: &mut dyn FnMut(&EpochReport) -> Control,
) -> Result<TrainedModel, TrainError> {
    spec.validate().map_err(TrainError::Param)?;
    // A dataset always has two distinct targets, hence two rows: one for each side of the split.
    let started = Instant::now();
    let prep = split::prepare(data, spec.validation_fraction, spec.split_seed);
    let n_outputs = match data.task() {
        Task::Classification { classes } => classes,
        Task::Regression => 1,
    };
    let mut master = Rng::seed_from_u64(spec.seed);
    let mut wiring_rng = master.fork(1);
    let mut init_rng = master.fork(2);
    let mut shuffle_rng = master.fork(3);
    let mut dropout_rng = master.fork(4);

    let shape = Shape {
        units_per_level: &spec.units_per_level,
        neurons_per_unit: &spec.neurons_per_unit,
        p_lateral_connection: spec.p_lateral_connection,
        predecessor_affinity: spec.predecessor_affinity,
    };
    let wiring = wiring::draw(&shape, &mut wiring_rng);
    let d = data.n_features();
    let params_needed = Network::count_params(&wiring, d, n_outputs, spec.normalization);
    if params_needed > MAX_PARAMS {
        return Err(TrainError::TooManyParams {
            params: params_needed,
            limit: MAX_PARAMS,
        });
    }
    let opts = UnitOptions {
        activation: spec.activation,
        normalization: spec.normalization,
        dropout: spec.dropout as f32,
    };
    let net = Network::build(&wiring, d, n_outputs, opts);
    let batch = spec.batch_size.min(prep.train.rows);
    let cap = batch.max(prep.val.rows.min(EVAL_CHUNK));
    let floats = net.workspace_floats(cap);
    if floats > MAX_WORKSPACE_FLOATS {
        return Err(TrainError::TooMuchMemory {
            floats,
            limit: MAX_WORKSPACE_FLOATS,
        });
    }
    let mut ws = Workspace::new(&net, cap);
    let mut params = net.init(&mut init_rng);
    let mut grads = vec![0.0_f32; net.n_params];
    let mut opt = OptimizerState::new(
        spec.optimizer,
        spec.learning_rate,
        spec.momentum,
        spec.weight_decay,
        net.weight_ranges(),
        net.n_params,
    );

    let metric_name = match data.task() {
        Task::Classification { .. } => "accuracy",
        Task::Regression => "rmse",
    };
    let loss_scale = prep.target_std * prep.target_std;
    let train = &prep.train;
    let mut order: Vec<usize> = (0..train.rows).collect();
    let mut xb = vec![0.0_f32; batch * d];
    let mut classes_b = vec![0_usize; batch];
    let mut values_b = vec![0.0_f32; batch];
    let mut history: Vec<EpochReport> = Vec::with_capacity(spec.epochs);
    let mut best: Option<(f64, Vec<f32>, usize)> = None;
    let mut since_best = 0;

    for epoch in 1..=spec.epochs {
        let epoch_start = Instant::now();
        shuffle_rng.shuffle(&mut order);
        let mut total = 0.0_f64;
        for chunk in order.chunks(batch) {
            let rows = chunk.len();
            for (slot, &r) in chunk.iter().enumerate() {
                xb[slot * d..(slot + 1) * d].copy_from_slice(&train.x[r * d..(r + 1) * d]);
                match &train.y {
                    Targets::Classes(c) => classes_b[slot] = c[r],
                    Targets::Values(v) => values_b[slot] = v[r],
                }
            }
            net.forward(&params, &xb, rows, &mut ws, Some(&mut dropout_rng));
            let (out, dz) = net.output_and_grad(&mut ws, rows);
            total += match &train.y {
                Targets::Classes(_) => {
                    loss::softmax_cross_entropy(out, n_outputs, &classes_b[..rows], dz)
                }
                Targets::Values(_) => loss::squared_error(out, &values_b[..rows], dz),
            };
            net.backward(&params, &mut grads, rows, &mut ws);
            opt.step(&mut params, &mut grads);
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let train_loss = total / train.rows as f64 * loss_scale;
        let eval = evaluate(&net, &params, &prep.val, &prep, &mut ws);
        if !train_loss.is_finite() || !eval.loss.is_finite() {
            return Err(TrainError::Diverged { epoch });
        }
        let report = EpochReport {
            epoch,
            loss: train_loss,
            val_loss: eval.loss,
            val_metric: if metric_name == "accuracy" {
                eval.accuracy
            } else {
                eval.rmse
            },
            val_metric_name: metric_name,
            seconds,
        };
        let control = on_epoch(&report);
        history.push(report);
        if control == Control::Stop {
            break;
        }
        if let Some(patience) = spec.patience {
            if best.as_ref().is_none_or(|(b, _, _)| eval.loss < *b) {
                best = Some((eval.loss, params.clone(), history.len() - 1));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= patience {
                    break;
                }
            }
        }
    }

    let kept_epoch = match best {
        Some((_, best_params, index)) => {
            params = best_params;
            index
        }
        None => history.len() - 1,
    };
    let eval = evaluate(&net, &params, &prep.val, &prep, &mut ws);
    let latency_ms = measure_latency(&net, &params, &prep.val);
    let train_seconds = started.elapsed().as_secs_f64();

    let model = Model {
        spec,
        data,
        prep: &prep,
        wiring: &wiring,
        net: &net,
        params: &params,
    };
    let architecture = model.architecture();
    let weights_safetensors = model
        .safetensors(&architecture)
        .map_err(TrainError::Export)?;

    let mut metrics = BTreeMap::new();
    match data.task() {
        Task::Classification { .. } => {
            metrics.insert("accuracy".to_string(), eval.accuracy);
        }
        Task::Regression => {
            metrics.insert("rmse".to_string(), eval.rmse);
            metrics.insert("mae".to_string(), eval.mae);
            metrics.insert("r2".to_string(), eval.r2);
        }
    }
    metrics.insert("loss".to_string(), history[kept_epoch].loss);
    metrics.insert("val_loss".to_string(), eval.loss);
    metrics.insert("latency_ms".to_string(), latency_ms);
    metrics.insert("param_count".to_string(), net.n_params as f64);
    metrics.insert(
        "artifact_bytes".to_string(),
        weights_safetensors.len() as f64,
    );
    metrics.insert("train_seconds".to_string(), train_seconds);
    metrics.insert("epochs_run".to_string(), history.len() as f64);
    Ok(TrainedModel {
        metrics,
        history,
        weights_safetensors,
        architecture,
    })
}

/// Validation loss and metrics, in original target units for regression.
fn evaluate(
    net: &Network,
    params: &[f32],
    part: &Part,
    prep: &Prepared,
    ws: &mut Workspace,
) -> Evaluation {
    let d = net.n_inputs;
    let k = net.n_outputs;
    let chunk = ws.rows_cap();
    let (mut loss_sum, mut correct, mut abs_sum) = (0.0_f64, 0_usize, 0.0_f64);
    for start in (0..part.rows).step_by(chunk) {
        let rows = chunk.min(part.rows - start);
        net.forward(
            params,
            &part.x[start * d..(start + rows) * d],
            rows,
            ws,
            None,
        );
        let (out, scratch) = net.output_and_grad(ws, rows);
        match &part.y {
            Targets::Classes(c) => {
                let c = &c[start..start + rows];
                loss_sum += loss::softmax_cross_entropy(out, k, c, scratch);
                for (r, &class) in c.iter().enumerate() {
                    let row = &out[r * k..(r + 1) * k];
                    let argmax =
                        (0..k).fold(0, |best, j| if row[j] > row[best] { j } else { best });
                    correct += usize::from(argmax == class);
                }
            }
            Targets::Values(_) => {
                for (r, &o) in out.iter().enumerate() {
                    let err =
                        f64::from(o) * prep.target_std + prep.target_mean - part.raw[start + r];
                    loss_sum += err * err;
                    abs_sum += err.abs();
                }
            }
        }
    }
    let n = part.rows as f64;
    let mean = part.raw.iter().sum::<f64>() / n;
    let total_sq: f64 = part.raw.iter().map(|t| (t - mean).powi(2)).sum();
    let r2 = if total_sq > 0.0 {
        1.0 - loss_sum / total_sq
    } else {
        0.0
    };
    Evaluation {
        loss: loss_sum / n,
        accuracy: correct as f64 / n,
        rmse: (loss_sum / n).sqrt(),
        mae: abs_sum / n,
        r2,
    }
}

/// Mean wall time to predict one validation row on its own, in milliseconds.
fn measure_latency(net: &Network, params: &[f32], part: &Part) -> f64 {
    let d = net.n_inputs;
    let mut ws = Workspace::new(net, 1);
    let rows = part.rows.min(LATENCY_ROWS);
    net.forward(params, &part.x[..d], 1, &mut ws, None);
    let start = Instant::now();
    for r in 0..rows {
        net.forward(params, &part.x[r * d..(r + 1) * d], 1, &mut ws, None);
    }
    start.elapsed().as_secs_f64() * 1000.0 / rows as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(params: Value) -> TrainSpec {
        TrainSpec::from_params(params.as_object().expect("object"))
            .expect("valid params")
            .0
    }

    fn run(spec: &TrainSpec, data: &Dataset) -> TrainedModel {
        train(spec, data, &mut |_| {}).unwrap_or_else(|e| panic!("training failed: {e}"))
    }

    /// Metrics that do not depend on timing.
    fn stable_metrics(m: &TrainedModel) -> Vec<(String, f64)> {
        m.metrics
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "latency_ms" | "train_seconds"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    #[test]
    fn iris_reaches_high_accuracy_in_a_few_epochs() {
        let iris = Dataset::builtin("iris").unwrap();
        let m = run(&spec(json!({"epochs": 15})), &iris);
        assert!(
            m.metrics["accuracy"] >= 0.9,
            "accuracy {}",
            m.metrics["accuracy"]
        );
        assert_eq!(m.metrics["epochs_run"], 15.0);
        assert_eq!(m.history.len(), 15);
        assert!(m.history[14].loss < m.history[0].loss);
    }

    #[test]
    fn friedman1_regression_explains_most_variance() {
        let data = Dataset::builtin("friedman1").unwrap();
        let m = run(&spec(json!({"epochs": 60, "normalization": true})), &data);
        assert!(m.metrics["r2"] > 0.5, "r2 {}", m.metrics["r2"]);
        assert!((m.metrics["rmse"].powi(2) - m.metrics["val_loss"]).abs() < 1e-9);
        assert!(m.metrics["mae"] <= m.metrics["rmse"]);
        assert_eq!(m.history[0].val_metric_name, "rmse");
    }

    #[test]
    fn same_seed_gives_identical_weights_and_metrics() {
        let data = Dataset::builtin("moons").unwrap();
        let s = spec(json!({"epochs": 5, "dropout": 0.2, "normalization": true, "seed": 42}));
        let (a, b) = (run(&s, &data), run(&s, &data));
        assert_eq!(a.weights_safetensors, b.weights_safetensors);
        assert_eq!(a.architecture, b.architecture);
        assert_eq!(stable_metrics(&a), stable_metrics(&b));
        let strip = |h: &[EpochReport]| {
            h.iter()
                .map(|r| (r.loss, r.val_loss, r.val_metric))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a.history), strip(&b.history));
    }

    #[test]
    fn different_seeds_give_different_wiring() {
        let data = Dataset::builtin("xor").unwrap();
        let units: std::collections::HashSet<String> = (0..8)
            .map(|seed| {
                let s = spec(json!({"epochs": 1, "levels": 3, "units_per_level": 3, "neurons_per_unit": 4, "seed": seed}));
                run(&s, &data).architecture["units"].to_string()
            })
            .collect();
        assert!(
            units.len() > 4,
            "only {} distinct wirings from 8 seeds",
            units.len()
        );
    }

    #[test]
    fn a_fixed_chain_is_exactly_the_requested_mlp() {
        let data = Dataset::builtin("iris").unwrap();
        let s = spec(
            json!({"levels": 2, "units_per_level": 1, "neurons_per_unit": [128, 64],
            "predecessor_affinity": 1.0, "p_lateral_connection": 0, "epochs": 1}),
        );
        let m = run(&s, &data);
        let expected = 4 * 128 + 128 + 128 * 64 + 64 + 64 * 3 + 3;
        assert_eq!(m.metrics["param_count"], expected as f64);
        assert_eq!(m.architecture["units"][1]["inputs"], json!(["u1_0"]));
        assert_eq!(m.architecture["head"]["inputs"], json!(["u2_0"]));
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let data = Dataset::builtin("moons").unwrap();
        let m = run(&spec(json!({"epochs": 2, "normalization": true})), &data);
        let st = safetensors::SafeTensors::deserialize(&m.weights_safetensors).unwrap();
        let floats: usize = st.tensors().iter().map(|(_, t)| t.data().len() / 4).sum();
        assert_eq!(
            floats,
            m.metrics["param_count"] as usize + 2 * data.n_features()
        );
        assert_eq!(st.tensor("head.weight").unwrap().shape()[1], 2);
        assert_eq!(
            m.metrics["artifact_bytes"],
            m.weights_safetensors.len() as f64
        );
        let (_, meta) = safetensors::SafeTensors::read_metadata(&m.weights_safetensors).unwrap();
        let embedded: Value =
            serde_json::from_str(&meta.metadata().as_ref().unwrap()["architecture"]).unwrap();
        assert_eq!(embedded, m.architecture);
    }

    #[test]
    fn every_optimizer_and_activation_trains_moons() {
        let data = Dataset::builtin("moons").unwrap();
        for (opt, act) in [("sgd", "tanh"), ("adam", "gelu"), ("adamw", "elu")] {
            let m = run(
                &spec(json!({"optimizer": opt, "activation": act, "epochs": 20, "lr": 0.02})),
                &data,
            );
            assert!(
                m.metrics["accuracy"] > 0.85,
                "{opt}/{act}: {}",
                m.metrics["accuracy"]
            );
        }
    }

    #[test]
    fn early_stopping_stops_and_keeps_the_best_epoch() {
        let data = Dataset::builtin("moons").unwrap();
        let m = run(
            &spec(json!({"epochs": 400, "patience": 3, "lr": 0.05})),
            &data,
        );
        let runs = m.history.len();
        assert!(runs < 400, "never stopped");
        let best = m
            .history
            .iter()
            .map(|r| r.val_loss)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(m.metrics["val_loss"], best);
        assert!(
            m.history[runs - 4..]
                .iter()
                .skip(1)
                .all(|r| r.val_loss >= best)
        );
    }

    #[test]
    fn divergence_is_an_error() {
        let data = Dataset::builtin("friedman1").unwrap();
        let s = spec(json!({"optimizer": "sgd", "lr": 10, "momentum": 0.99, "epochs": 50}));
        assert!(matches!(
            train(&s, &data, &mut |_| {}),
            Err(TrainError::Diverged { .. })
        ));
    }

    #[test]
    fn oversized_networks_are_refused_before_allocating() {
        let data = Dataset::builtin("moons").unwrap();
        let s = spec(
            json!({"levels": 16, "units_per_level": 64, "neurons_per_unit": 4096, "p_lateral_connection": 1}),
        );
        assert!(matches!(
            train(&s, &data, &mut |_| {}),
            Err(TrainError::TooManyParams { .. })
        ));
    }

    #[test]
    fn epoch_callback_sees_every_epoch() {
        let data = Dataset::builtin("xor").unwrap();
        let mut seen = Vec::new();
        train(&spec(json!({"epochs": 4})), &data, &mut |r| {
            seen.push(r.epoch)
        })
        .unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }

    #[test]
    fn the_callback_can_stop_training_and_keep_the_model() {
        let data = Dataset::builtin("moons").unwrap();
        let m = train_with_control(&spec(json!({"epochs": 50})), &data, &mut |r| {
            if r.epoch == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .unwrap();
        assert_eq!(m.metrics["epochs_run"], 3.0);
        assert!(!m.weights_safetensors.is_empty());
    }

    #[test]
    fn hand_built_invalid_specs_are_errors_not_panics() {
        let data = Dataset::builtin("moons").unwrap();
        let bad = TrainSpec {
            batch_size: 0,
            ..TrainSpec::default()
        };
        let err = train(&bad, &data, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&err, TrainError::Param(p) if p.field == "batch_size"),
            "{err}"
        );
    }

    #[test]
    fn two_rows_are_enough_to_train() {
        let one = Dataset::from_rows(&json!([[1.0, 0.0], [2.0, 1.0]])).unwrap();
        assert!(train(&TrainSpec::default(), &one, &mut |_| {}).is_ok());
    }
}
