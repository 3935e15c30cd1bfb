-- The link figures of `outpost status` beside what HQ acknowledged
-- (bytes_today): bytes put on the wire this UTC day (bytes_day), and of
-- them the ones a cut or a refusal made the node send again; and the round
-- trips the protocol saved since the database was made: receipts that came
-- on the PATCH that completed an upload (no GET /v1/receipts/N), and
-- mailbox checks skipped because HQ's Outpost-Mailbox-Last said nothing
-- was new (docs/UPLINK.md).
ALTER TABLE sync_state ADD COLUMN sent_today INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN resent_today INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN receipts_inline INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN mailbox_skipped INTEGER NOT NULL DEFAULT 0;
