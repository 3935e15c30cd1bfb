-- The shipped aggregates (aggregate.c, docs/AGGREGATES.md). Each returns
-- raw cells (r, c, n, x): row key, column key, count, and a second figure
-- (the numerator of a rate or the sum of a value; 0 when unused). Deleted
-- and restricted records never count. Disclosure control is applied in C
-- to what these return; nothing here leaves as it is.

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
-- channel of their first activity; x: won.
-- name: conversion_by_channel
SELECT coalesce((SELECT a.channel FROM activities AS a
                 WHERE a.deal_id = d.id AND a.deleted = 0 AND a.restricted = 0
                 ORDER BY a.occurred_at LIMIT 1), '(none)') AS r,
       'all' AS c, count(*) AS n, sum(d.stage = 'won') AS x
FROM deals AS d
WHERE d.expected_close >= ?1 AND d.expected_close < ?2 AND d.deleted = 0
  AND d.restricted = 0 AND d.stage IN ('won', 'lost')
GROUP BY 1;

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

-- name: answer_get
SELECT body FROM aggregate_answers WHERE name = ?1 AND params = ?2 AND policy_hash = ?3;

-- The first answer for a key is kept; a racing second one changes nothing.
-- name: answer_put
INSERT INTO aggregate_answers (name, params, policy_hash, computed_ms, body)
VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING;

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
