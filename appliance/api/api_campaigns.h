/*
 * The campaign routes (docs/OUTREACH.md "Campaigns", docs/API.md), for
 * the manager role: GET and POST /api/v1/campaigns, GET
 * /api/v1/campaigns/{id} with its figures, and POST
 * /api/v1/campaigns/{id}/{dry-run,start,pause,cancel}. campaign.c decides
 * what is valid; these map requests and errors (bad input 400 naming the
 * member, a state change the state does not allow 409).
 */
#ifndef OUTPOST_API_CAMPAIGNS_H
#define OUTPOST_API_CAMPAIGNS_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "store.h"

/* /api/v1/campaigns: GET (?state=S&limit=N) and POST. */
void api_campaigns_collection(struct api_db *db, struct store *rd, struct api_call *c,
                              const struct auth_user *u);
/* /api/v1/campaigns/{id}: GET. */
void api_campaigns_get(struct store *rd, struct api_call *c, const struct auth_user *u);
/* /api/v1/campaigns/{id}/{action}: POST. */
void api_campaigns_action(struct api_db *db, struct store *rd, struct api_call *c,
                          const struct auth_user *u);

#endif
