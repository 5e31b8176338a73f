-- Reading a run's newest unsettled proposals walks this index backwards instead of sorting every
-- unsettled proposal of the run.
CREATE INDEX proposals_recent ON proposals (run_id, settled_at_ms, id);
