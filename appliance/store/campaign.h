/*
 * Campaigns: a saved segment (a filter over contacts, their organizations
 * and activities), a channel, a purpose, a template per language with a
 * fallback, a schedule and a state (docs/OUTREACH.md, "Campaigns").
 * Running a campaign plans it: every contact of the segment gets one
 * outreach message (campaign_id set) carrying the consent ledger's
 * decision and rule, `queued` when the ledger allows it and `refused` with
 * the reason when not. Planning goes in batches, each one transaction that
 * also moves the campaign's cursor, so a plan cut by a crash continues
 * after the last committed batch, and a unique (campaign, contact) index
 * keeps a contact to one message whatever happens. The sender sends a
 * campaign's queued messages only while the campaign runs.
 *
 * This module reads contacts, consent and the queue; it never talks to
 * the network and does not log.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 * -EINVAL bad input (err->field names the member, e.g.
 * "segment.country[1]" or "templates.de.body"); -ENOENT no such campaign;
 * -EALREADY a state change the campaign's state does not allow.
 */
#ifndef OUTPOST_CAMPAIGN_H
#define OUTPOST_CAMPAIGN_H

#include <jansson.h>
#include <stdint.h>

#include "op_error.h"
#include "policy.h"
#include "store.h"

#define CAMPAIGN_BATCH 1000   /* contacts planned per transaction */
#define CAMPAIGN_LIST_MAX 500 /* campaigns in one list */
#define CAMPAIGN_CURSOR_BUF 40

/* Validates a campaign as JSON (docs/OUTREACH.md lists the members) and
 * stores it as a draft. Nothing is written when anything is wrong. */
int campaign_create(struct store *s, const json_t *spec, const char *created_by, int64_t now_ms,
                    int64_t *id, struct op_error *err);

/* Only the validation of campaign_create, for callers that answer before
 * writing. */
int campaign_validate(const json_t *spec, struct op_error *err);

/* One campaign with its figures as a JSON object (new reference). */
int campaign_get(struct store *s, int64_t id, json_t **out, struct op_error *err);

/* Campaigns newest first, of one state (NULL: all), at most limit
 * (1..CAMPAIGN_LIST_MAX), each with its figures: a JSON array. */
int campaign_list(struct store *s, const char *state, unsigned limit, json_t **out,
                  struct op_error *err);

/* The figures of a campaign: planned, queued, sending, sent, failed,
 * unknown, refused (and refused_by_reason), delivered, bounced,
 * unsubscribed, responded. */
int campaign_figures(struct store *s, int64_t id, json_t **out, struct op_error *err);

/* What planning would do now, written nowhere: {"segment": N,
 * "would_send": N, "refused": N, "refused_by_reason": {...}}. */
int campaign_dry_run(struct store *s, const struct policy *p, int64_t id, int64_t now_ms,
                     json_t **out, struct op_error *err);

/* The dry run a page (CAMPAIGN_BATCH contacts) at a time, for a caller
 * that holds the policy only while a page is decided: cursor starts ""
 * and is moved on; acc (an object) gathers the counts; *done = 1 after
 * the last page. */
int campaign_dry_run_step(struct store *s, const struct policy *p, int64_t id, int64_t now_ms,
                          char cursor[CAMPAIGN_CURSOR_BUF], json_t *acc, int *done,
                          struct op_error *err);

/* draft or paused -> running (start time reached) or scheduled. */
int campaign_start(struct store *s, int64_t id, int64_t now_ms, struct op_error *err);
/* scheduled or running -> paused: its queued messages wait. */
int campaign_pause(struct store *s, int64_t id, int64_t now_ms, struct op_error *err);
/* any state but done or cancelled -> cancelled; its queued messages fail
 * ("the campaign was cancelled"). */
int campaign_cancel(struct store *s, int64_t id, int64_t now_ms, struct op_error *err);

/* Plans the next batch (at most `batch` contacts) of a running campaign
 * in one transaction. *done = 1 when the segment is exhausted; *planned
 * (may be NULL) gets how many contacts this batch went through. */
int campaign_plan_step(struct store *s, const struct policy *p, int64_t id, unsigned batch,
                       int64_t now_ms, int *done, int64_t *planned, struct op_error *err);

/* The campaigns' clock, for the sender between messages: scheduled
 * campaigns whose start came run, campaigns past their end are done (their
 * queued messages fail), one batch of the oldest running campaign is
 * planned, and running campaigns with nothing left are done. *busy = 1
 * when a batch was planned (more may follow). */
int campaign_tick(struct store *s, const struct policy *p, unsigned batch, int64_t now_ms,
                  int *busy, struct op_error *err);

/* 1 when state is one of a campaign's states. */
int campaign_state_valid(const char *state);

#endif
