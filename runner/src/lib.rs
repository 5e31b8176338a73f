//! Cerebros runner: search, NAS training and Thunderline's bridge endpoints behind one HTTP API.

pub mod nas;
pub mod rng;
pub mod search;
