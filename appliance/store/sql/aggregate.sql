-- The shipped aggregates (aggregate.c, docs/AGGREGATES.md). Each returns
-- raw cells (r, c, n, x): row key, column key, count, and a second figure
-- (the numerator of a rate or the sum of a value; 0 when unused). Deleted
-- and restricted records never count. Disclosure control is applied in C
-- to what these return; nothing here leaves as it is.
--
-- The first six queries say what each aggregate means in plain SQL. Three
-- of them visit a row per contact, consent or activity and group in a
-- temporary B-tree, which takes seconds over a million rows; for those
-- aggregate.c streams rows in index order instead (the *_stream queries
-- below) and counts in C, with the same result. The plain queries stay
-- the reference the fast path is tested against (aggregate_reference).

-- ?1 unused (snapshot).
-- name: contacts_by_segment_district
SELECT coalesce((SELECT nullif(trim(o.industry), '')
                 FROM contact_organizations AS co
                 JOIN organizations AS o ON o.id = co.organization_id
                 WHERE co.contact_id = c.id AND co.deleted = 0 AND o.deleted = 0
                   AND o.restricted = 0
                 ORDER BY co.id LIMIT 1), '(none)') AS r,
       coalesce(nullif(trim(c.region), ''), '(none)') AS c,
       count(*) AS n, 0 AS x
FROM contacts AS c
WHERE c.deleted = 0 AND c.restricted = 0
GROUP BY 1, 2;

-- One unit per contact, channel and purpose: its latest decisive record
-- (pending records decide nothing). x: units whose latest is granted.
-- name: consent_rates_by_channel_purpose
SELECT channel AS r, purpose AS c, count(*) AS n, sum(status = 'granted') AS x
FROM (SELECT channel, purpose, status,
             max(coalesce(withdrawn_at, confirmed_at, requested_at)) AS at
      FROM consents
      WHERE deleted = 0 AND restricted = 0 AND status <> 'pending'
      GROUP BY channel, purpose, contact_id)
GROUP BY 1, 2;

-- ?1 .. ?2: occurred_at from the first Monday of the quarter up to (not
-- including) the first Monday of the next one. Weeks by their Monday.
-- name: activities_by_channel_week
SELECT channel AS r, date(occurred_at, 'weekday 0', '-6 days') AS c, count(*) AS n, 0 AS x
FROM activities
WHERE occurred_at >= ?1 AND occurred_at < ?2 AND deleted = 0 AND restricted = 0
GROUP BY 1, 2;

-- ?1 .. ?2: expected_close within the year. Currencies are never added.
-- name: pipeline_by_stage_month
SELECT coalesce(currency, '---') || ' ' || stage AS r, substr(expected_close, 1, 7) AS c,
       count(*) AS n, coalesce(sum(amount_minor), 0) AS x
FROM deals
WHERE expected_close >= ?1 AND expected_close < ?2 AND deleted = 0 AND restricted = 0
GROUP BY 1, 2;

-- Closed deals (won or lost) with expected_close in ?1 .. ?2, by the
-- channel of their first activity; x: won. The first activity is read
-- from the covering index activities_deal_first (migration 0016).
-- name: conversion_by_channel
SELECT coalesce((SELECT a.channel FROM activities AS a
                 WHERE a.deal_id = d.id AND a.deleted = 0 AND a.restricted = 0
                 ORDER BY a.occurred_at LIMIT 1), '(none)') AS r,
       'all' AS c, count(*) AS n, sum(d.stage = 'won') AS x
FROM deals AS d
WHERE d.expected_close >= ?1 AND d.expected_close < ?2 AND d.deleted = 0
  AND d.restricted = 0 AND d.stage IN ('won', 'lost')
GROUP BY 1;

-- Campaign messages sent in ?1 .. ?2 (days), by channel and the contact's
-- country: n sent, x answered (outcome replied). Deleted and restricted
-- contacts are left out; an erased contact's messages are gone.
-- name: outreach_by_channel_country
SELECT m.channel AS r, coalesce(nullif(c.country, ''), '(none)') AS c, count(*) AS n,
       sum(m.outcome = 'replied') AS x
FROM outreach_messages AS m JOIN contacts AS c ON c.id = m.contact_id
WHERE m.campaign_id IS NOT NULL AND m.state = 'sent'
  AND m.sent_ms >= CAST(strftime('%s', ?1) AS INTEGER) * 1000
  AND m.sent_ms < CAST(strftime('%s', ?2) AS INTEGER) * 1000
  AND c.deleted = 0 AND c.restricted = 0
GROUP BY 1, 2;

-- One row: the live contacts, then how many have each field filled, in
-- the order of aggregate.c's completeness_fields[].
-- name: completeness_by_field
SELECT count(*),
       sum(coalesce(given_name, '') <> ''), sum(coalesce(family_name, '') <> ''),
       sum(coalesce(email, '') <> ''), sum(coalesce(phone, '') <> ''),
       sum(coalesce(street, '') <> ''), sum(coalesce(locality, '') <> ''),
       sum(coalesce(region, '') <> ''), sum(coalesce(postal_code, '') <> ''),
       sum(coalesce(country, '') <> ''), sum(coalesce(language, '') <> ''),
       sum(coalesce(job_title, '') <> ''), sum(coalesce(birth_date, '') <> '')
FROM contacts
WHERE deleted = 0 AND restricted = 0;

-- ---- the streams behind the fast path (aggregate.c) -----------------------

-- contacts_by_segment_district, 1 of 3: the live organizations, by id,
-- with the industry as the definition trims it.
-- name: segment_orgs
SELECT id, nullif(trim(industry), '') FROM organizations
WHERE deleted = 0 AND restricted = 0 ORDER BY id;

-- 2 of 3: the live links by contact, each contact's in id order (the
-- index contact_organizations_first, no sort).
-- name: segment_links
SELECT contact_id, organization_id FROM contact_organizations
WHERE deleted = 0 ORDER BY contact_id, id;

-- 3 of 3: the live contacts by district, each district's by id (the
-- index contacts_region_live, no sort).
-- name: segment_contacts
SELECT region, id FROM contacts
WHERE deleted = 0 AND restricted = 0 ORDER BY region, id;

-- consent_rates_by_channel_purpose: the decisive records in the order of
-- the index consents_latest, the order in which the plain query's GROUP
-- BY meets them (so a tie on the time is broken the same way).
-- name: consent_stream
SELECT channel, purpose, contact_id, status, coalesce(withdrawn_at, confirmed_at, requested_at)
FROM consents
WHERE deleted = 0 AND restricted = 0 AND status <> 'pending'
ORDER BY channel, purpose, contact_id, status, withdrawn_at, confirmed_at, requested_at;

-- activities_by_channel_week: the period's live activities in time order
-- (the index activities_occurred, no sort); the week is worked out in C.
-- name: activity_stream
SELECT occurred_at, channel FROM activities
WHERE occurred_at >= ?1 AND occurred_at < ?2 AND deleted = 0 AND restricted = 0
ORDER BY occurred_at;

-- name: answer_get
SELECT body FROM aggregate_answers WHERE name = ?1 AND params = ?2 AND policy_hash = ?3;

-- The first answer for a key is kept; a racing second one changes nothing
-- (and spends nothing: aggregate_keep charges only a row it inserted).
-- ?6: the epsilon it spends (millionths, 0 without noise), ?7 the period.
-- name: answer_put
INSERT INTO aggregate_answers (name, params, policy_hash, computed_ms, body, epsilon_micro,
                               budget_period)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING;

-- The privacy budget a region spent in a period (0 when none).
-- name: budget_spent
SELECT coalesce((SELECT spent_micro FROM aggregate_budget WHERE region = ?1 AND period = ?2), 0);

-- name: budget_spend
INSERT INTO aggregate_budget (region, period, spent_micro) VALUES (?1, ?2, ?3)
ON CONFLICT (region, period) DO UPDATE SET spent_micro = spent_micro + excluded.spent_micro;

-- The egress ledger (aggregate_record_egress).
-- name: egress_put
INSERT INTO aggregate_egress (sent_ms, via, requester, name, params, policy_hash, segment_no, body)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);

-- Newest first, at most ?1 rows (aggregate_egress_each).
-- name: egress_list
SELECT seq, sent_ms, via, requester, name, params, policy_hash, segment_no, body
FROM aggregate_egress ORDER BY seq DESC LIMIT ?1;

-- Whether an answer for this grid point left in a segment under this
-- policy (a standing aggregate is sent once per grid point).
-- name: egress_sent
SELECT count(*) FROM aggregate_egress
WHERE name = ?1 AND params = ?2 AND policy_hash = ?3 AND via = 'segment';

-- ---- aggregates a profile defines (aggregates.define) -----------------------

-- One query per countable entity: its live, unrestricted records with
-- every field policy_aggregate_dims[] (sync/core/policy.c) lists for it,
-- in that table's `column` order. aggregate.c picks the one or two
-- columns a definition names by that index and counts in C; no text of
-- the profile ever reaches SQL.
-- name: define_contact
SELECT language, country, region FROM contacts WHERE deleted = 0 AND restricted = 0;

-- name: define_organization
SELECT industry, country FROM organizations WHERE deleted = 0 AND restricted = 0;

-- name: define_activity
SELECT channel, direction, occurred_at FROM activities WHERE deleted = 0 AND restricted = 0;

-- name: define_deal
SELECT stage, currency, expected_close FROM deals WHERE deleted = 0 AND restricted = 0;
