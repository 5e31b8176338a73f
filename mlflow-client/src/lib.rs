//! Async client for the MLflow tracking REST API and its artifact proxy.
