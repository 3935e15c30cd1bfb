-- The daily byte budget across restarts (docs/UPLINK.md, "Daily budget"):
-- of each segment's upload, the bytes HQ acknowledged that are already
-- charged to bytes_today. Whenever the node learns HQ's offset (a PATCH's
-- answer, the HEAD after a restart) the difference is charged in the same
-- transaction that stores the new value, so the day's count is what HQ
-- acknowledged even when the daemon was killed between two reports. A new
-- upload of the segment (HQ forgot the old one) starts again at 0.
ALTER TABLE sync_segments ADD COLUMN charged INTEGER NOT NULL DEFAULT 0 CHECK (charged >= 0);

-- What an API token may do (docs/OUTPOSTD.md, "Metrics"): '' everything
-- its user's role allows; 'metrics' reading GET /metrics and nothing else,
-- so a monitoring system can scrape the node without a credential that
-- reads every contact (`outpost token create --scope metrics`).
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '' CHECK (scope IN ('', 'metrics'));
