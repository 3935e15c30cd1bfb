/*
 * The outreach routes (docs/OUTREACH.md): the two pages a contact reaches
 * from an e-mail without logging in, /o/confirm (double opt-in) and
 * /o/unsubscribe/{token} (RFC 8058 one-click), where a GET only shows a
 * button and the POST acts; and the manager's list of the queue,
 * GET /api/v1/outreach/messages. A bad or unknown token changes nothing.
 */
#ifndef OUTPOST_API_OUTREACH_H
#define OUTPOST_API_OUTREACH_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "store.h"

void api_outreach_confirm(struct api_db *db, struct api_call *c);
void api_outreach_unsubscribe(struct api_db *db, struct api_call *c);
void api_outreach_list(struct store *rd, struct api_call *c, const struct auth_user *u);

#endif
