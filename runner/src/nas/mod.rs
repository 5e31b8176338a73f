//! Cerebros-style network construction and training (pure computation; no I/O).
//!
//! A candidate network is a DAG of dense units arranged in levels: each unit concatenates outputs
//! drawn from earlier levels (the input is level 0) and, optionally, from units to its left in the
//! same level, then applies layer normalisation and/or dropout, a dense layer and an activation; a
//! dense head (softmax for classification, linear for regression) reads the last level and every
//! unit no one else reads. The wiring, initialisation, shuffling and dropout are drawn from the
//! spec's seed, and the trainer is a small hand-written f32 implementation (single-threaded GEMM
//! through `matrixmultiply`), so the same params and data give bit-identical weights on one machine.
//!
//! Entry points: [`TrainSpec::from_params`] to read a params object, [`Dataset`] to read data,
//! [`train`] to fit.

mod activation;
mod builtin;
mod csv;
mod dataset;
mod export;
mod gemm;
mod loss;
mod network;
mod optim;
mod params;
mod split;
mod train;
mod wiring;

pub use activation::Activation;
pub use dataset::{Dataset, DatasetError, MAX_CLASSES, MAX_FEATURES, Task};
pub use export::FORMAT;
pub use params::{
    KNOWN_KEYS, MAX_BATCH_SIZE, MAX_EPOCHS, MAX_LEVELS, MAX_NEURONS_PER_UNIT, MAX_UNITS_PER_LEVEL,
    Optimizer, ParamError, TrainSpec,
};
pub use train::{
    Control, EpochReport, MAX_PARAMS, MAX_WORKSPACE_FLOATS, TrainError, TrainedModel, train,
    train_with_control,
};
