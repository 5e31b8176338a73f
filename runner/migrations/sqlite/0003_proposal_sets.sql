-- Pending proposals are stored as one row per /propose call (a "set") instead of one row per proposal, so a call
-- adds one table row and one index entry whatever its k. A proposal is identified by (set id, slot).
-- key_hashes lists the params_hash of each element as ',h0,h1,...,' so a reported trial finds its proposal with a
-- LIKE over the run's unsettled sets; the match is then confirmed on the canonical parameters.
CREATE TABLE proposal_sets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    params            TEXT NOT NULL,
    key_hashes        TEXT NOT NULL,
    size              INTEGER NOT NULL,
    unsettled              INTEGER NOT NULL,
    settled_mask      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX proposal_sets_open ON proposal_sets (run_id, id) WHERE unsettled > 0;

-- Which trial settled which proposal, and when.
CREATE TABLE proposal_settlements (
    set_id            INTEGER NOT NULL,
    slot          INTEGER NOT NULL,
    trial_id          TEXT NOT NULL,
    settled_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (set_id, slot)
);

-- Every stored proposal becomes a set of one with the same id; key_hashes is filled in by the runner at startup.
INSERT INTO proposal_sets (id, run_id, created_at_ms, params, key_hashes, size, unsettled, settled_mask)
SELECT id, run_id, created_at_ms, '[' || params || ']', '', 1,
       CASE WHEN settled_at_ms IS NULL THEN 1 ELSE 0 END,
       CASE WHEN settled_at_ms IS NULL THEN 0 ELSE 1 END
FROM proposals;
INSERT INTO proposal_settlements (set_id, slot, trial_id, settled_at_ms)
SELECT id, 0, COALESCE(settled_by, ''), settled_at_ms FROM proposals WHERE settled_at_ms IS NOT NULL;
DROP TABLE proposals;
