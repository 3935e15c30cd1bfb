/*
 * The outreach routes (docs/OUTREACH.md): the two pages a contact reaches
 * from an e-mail without logging in, /o/confirm (double opt-in) and
 * /o/unsubscribe/{token} (RFC 8058 one-click), where a GET only shows a
 * button and the POST acts; and the manager's list of the queue,
 * GET /api/v1/outreach/messages, and the result of a listed call,
 * POST /api/v1/outreach/messages/{id}/call-result (managers). A bad or
 * unknown token, or a refused result, changes nothing.
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
/* {"result": "answered|no-answer|refused|wrong-number", "note": "..."}:
 * 201 {"message", "result", "activity_id"}; 400 a bad body or result, 422
 * a message that is not a sent call or has a result, 404 none. */
void api_outreach_call_result(struct api_db *db, struct api_call *c, const struct auth_user *u);

/* The SMS gateway's callbacks (docs/OUTREACH.md "Delivery reports",
 * "Replies and STOP"): GET or POST /o/sms/dlr?t=TOKEN&type=N&smsc=TEXT
 * and /o/sms/mo?k=SECRET&from=NUMBER&text=TEXT. A missing or malformed
 * parameter is 400 naming it, an unknown token 404, a wrong secret 403;
 * nothing changes then. */
void api_outreach_sms_dlr(struct api_db *db, struct api_call *c);
void api_outreach_sms_mo(struct api_db *db, struct api_call *c);

/* The shared secret of /o/sms/mo ("" or NULL: replies are refused); only
 * its SHA-256 is kept. outpostd sets it at start and on SIGHUP. */
void api_outreach_set_mo_secret(const char *secret);

#endif
