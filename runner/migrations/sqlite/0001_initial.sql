-- Runs, trials, pending proposals and the delivery outbox (SQLite dialect).
CREATE TABLE runs (
    run_id            TEXT PRIMARY KEY NOT NULL,
    status            TEXT NOT NULL,
    started           INTEGER NOT NULL DEFAULT 0,
    objective_metric  TEXT NOT NULL,
    objective_direction TEXT NOT NULL,
    objective_explicit INTEGER NOT NULL DEFAULT 0,
    dataset_id        TEXT,
    search_space      TEXT,
    pulse_id          TEXT,
    correlation_id    TEXT,
    tau               REAL,
    budget            TEXT,
    parameters        TEXT,
    extra             TEXT,
    started_at        TEXT,
    start_payload     TEXT,
    final_status      TEXT,
    final_metrics     TEXT,
    final_best_trial_id TEXT,
    final_duration_ms INTEGER,
    returncode        INTEGER,
    artifact_refs     TEXT,
    final_warnings    TEXT,
    stdout_excerpt    TEXT,
    finalize_payload  TEXT,
    mlflow_run_id     TEXT,
    created_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    finalized_at_ms   INTEGER
);

CREATE TABLE trials (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id          TEXT NOT NULL UNIQUE,
    run_id            TEXT NOT NULL,
    source            TEXT NOT NULL,
    status            TEXT NOT NULL,
    parameters        TEXT NOT NULL,
    params_key        TEXT NOT NULL,
    metrics           TEXT NOT NULL,
    pulse_id          TEXT,
    candidate_id      TEXT,
    artifact_uri      TEXT,
    duration_ms       INTEGER,
    trial_rank        INTEGER,
    warnings          TEXT NOT NULL,
    spectral_norm     INTEGER NOT NULL DEFAULT 0,
    mlflow_run_id     TEXT,
    content_hash      TEXT NOT NULL,
    raw_payload       TEXT NOT NULL,
    dataset_size      INTEGER,
    error             TEXT,
    train_request     TEXT,
    claimed_by        TEXT,
    claimed_at_ms     INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL
);
CREATE INDEX trials_by_run ON trials (run_id, seq);
CREATE INDEX trials_by_status ON trials (status, seq);

CREATE TABLE proposals (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT NOT NULL,
    params            TEXT NOT NULL,
    params_key        TEXT NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    settled_at_ms     INTEGER,
    settled_by        TEXT
);
CREATE INDEX proposals_pending ON proposals (run_id, settled_at_ms, params_key);

CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT NOT NULL,
    dedupe_key        TEXT NOT NULL UNIQUE,
    payload           TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error        TEXT,
    created_at_ms     INTEGER NOT NULL,
    delivered_at_ms   INTEGER
);
CREATE INDEX outbox_due ON outbox (delivered_at_ms, next_attempt_at_ms);
