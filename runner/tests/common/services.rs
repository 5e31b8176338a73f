//! Where the test services are (`scripts/start-*.sh`), shared by the integration test crates.

#![allow(dead_code)]

use sqlx::Connection;

/// A variable of the test services (`scripts/start-*.sh`): the environment first, else `.cache/run/*.env`.
pub fn service_var(name: &str) -> String {
    if let Ok(v) = std::env::var(name)
        && !v.is_empty()
    {
        return v;
    }
    let run_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/run");
    let prefix = format!("export {name}=");
    std::fs::read_dir(run_dir)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "env"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} is needed: run scripts/test.sh (or scripts/start-postgres.sh / start-mlflow.sh / start-s3.sh)"
            )
        })
}

/// The Postgres URL of the test cluster (`scripts/start-postgres.sh`).
pub fn postgres_admin_url() -> String {
    service_var("THUNDERHELM_PG_URL")
}

/// Creates an empty database on the test cluster and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to test postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}
