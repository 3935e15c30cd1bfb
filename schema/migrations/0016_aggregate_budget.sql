-- Calibrated noise on aggregates (docs/AGGREGATES.md, "Calibrated noise"):
-- the privacy budget a region has spent in each period, and what each kept
-- answer spent. An answer and its spend are written in one transaction,
-- so a budget is never spent without the answer kept, nor the reverse.

CREATE TABLE aggregate_budget (
    region      TEXT NOT NULL,
    period      TEXT NOT NULL,  -- "2026-12", "2026-Q4" or "2026" (aggregates.noise.period)
    spent_micro INTEGER NOT NULL CHECK (spent_micro >= 0),  -- epsilon, in millionths
    PRIMARY KEY (region, period)
) STRICT, WITHOUT ROWID;

-- What the kept answer spent (0: no noise) and from which period's budget.
ALTER TABLE aggregate_answers ADD COLUMN epsilon_micro INTEGER NOT NULL DEFAULT 0;
ALTER TABLE aggregate_answers ADD COLUMN budget_period TEXT;

-- conversion_by_channel finds each closed deal's first live activity: with
-- deleted, restricted and channel in the index it reads no activity row
-- (half the CPU over a million contacts, docs/BENCHMARKS.md). Same leading
-- columns as the index it replaces, and only activities of a deal are in
-- it, so writes of other activities pay nothing more.
CREATE INDEX activities_deal_first
    ON activities (deal_id, occurred_at, deleted, restricted, channel) WHERE deal_id IS NOT NULL;
DROP INDEX activities_deal_occurred;
