//! Cerebros runner: TPE proposals, Cerebros-style NAS training and Thunderline's bridge endpoints behind one
//! HTTP API, with state in SQL.
//!
//! Layout: `search/` and `nas/` are pure computation; `api/` (axum handlers), `store/` (sqlx) do the I/O;
//! `domain/` holds the types requests are parsed into; `config`, `startup` and `telemetry` assemble the service.

pub mod api;
pub mod artifacts;
pub mod config;
pub mod datasets;
pub mod domain;
pub mod error;
pub mod expiry;
pub mod metrics;
pub mod nas;
pub mod report;
pub mod rng;
pub mod search;
pub mod search_state;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod training;
