//! HTTP tests of the runner against real SQLite and PostgreSQL databases.

mod bad_input;
mod bridge;
mod helpers;
mod propose;
mod runs;
#[path = "../common/services.rs"]
mod services;
mod train;
mod train_services;
