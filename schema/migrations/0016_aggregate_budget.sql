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
