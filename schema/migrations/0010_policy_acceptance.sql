-- Policies from HQ (docs/REGION_POLICY.md, "Policies from HQ"). A policy
-- HQ posts to the node's mailbox takes effect by itself only when it
-- loosens nothing; one that loosens anything waits in `mailbox` with
-- status 'pending' until a person at the node accepts it (`outpost policy
-- accept HASH`).
--
-- The egress ledger of policy changes: every policy from HQ that took
-- effect on the node, who let it (an administrator, or the node itself for
-- a policy that only tightens), the policy hashes before and after, and
-- what changed (policy_diff_summary). Written by appliance/uplink/policy_change.c;
-- shown by `outpost policy show`. Append-only.
CREATE TABLE policy_ledger (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,  -- Unix ms
    actor       TEXT NOT NULL,     -- "cli:alice" for an acceptance, "hq" when applied by itself
    kind        TEXT NOT NULL CHECK (kind IN ('accepted', 'auto-tightened')),
    old_hash    TEXT NOT NULL,     -- SHA-256 of the policy in force before
    new_hash    TEXT NOT NULL,     -- and after
    mailbox_seq INTEGER NOT NULL,  -- the mailbox message that carried it
    summary     TEXT NOT NULL
) STRICT;
CREATE TRIGGER policy_ledger_no_update BEFORE UPDATE ON policy_ledger
BEGIN
    SELECT RAISE(ABORT, 'policy_ledger is append-only');
END;
CREATE TRIGGER policy_ledger_no_delete BEFORE DELETE ON policy_ledger
BEGIN
    SELECT RAISE(ABORT, 'policy_ledger is append-only');
END;
