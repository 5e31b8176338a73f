-- Sets migrated by 0003 without key hashes are hashed at startup (store::proposals::hash_unhashed). This index
-- holds only those sets, so the startup check reads nothing once they are hashed, however many sets are open.
CREATE INDEX proposal_sets_unhashed ON proposal_sets (id) WHERE key_hashes = '' AND unsettled > 0;
