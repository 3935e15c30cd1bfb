-- Why sync is waiting although nothing is wrong: outside the sync window,
-- or the daily byte budget is spent. '' when it is not waiting. outpostd
-- writes it when a cycle skips the upload and clears it when an upload
-- starts; `outpost status` shows it (docs/UPLINK.md).
ALTER TABLE sync_state ADD COLUMN waiting TEXT NOT NULL DEFAULT '';
