/*
 * The consent handlers of the API: a contact's consent records, recording
 * and withdrawing consent, whether a message may be sent now, and the
 * contact's confirmation link for double opt-in. What is recorded and
 * what is allowed is consent.c's decision under the region policy in
 * force; these handlers map requests onto it and its errors onto
 * statuses. The invariant: a confirmation token is shown only to a
 * manager, once, in the answer that made it.
 */
#ifndef OUTPOST_API_CONSENTS_H
#define OUTPOST_API_CONSENTS_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "store.h"

/* GET /api/v1/contacts/{id}/consents: the contact's consent records as a
 * list (api_records_list parameters); 404 if the user cannot see the
 * contact. */
void api_consents_list(struct store *rd, struct api_call *c, const struct auth_user *u);

/* POST /api/v1/contacts/{id}/consents {"channel", "purpose", "kind",
 * "method", "evidence"}: 201 with the record, ETag and Location (and, for
 * a manager on a double opt-in channel, the confirmation_token); 422
 * names a key not accepted or not a string, 422 or 400 what consent.c
 * refuses (no rule for the channel, missing evidence). */
void api_consents_create(struct api_db *db, struct api_call *c, const struct auth_user *u);

/* POST /api/v1/contacts/{id}/consents/{cid}/withdraw [{"reason"}]:
 * withdraws the consent the record stands for, 200 with the record; 404
 * if the record is not the contact's. */
void api_consents_withdraw(struct api_db *db, struct api_call *c, const struct auth_user *u);

/* GET /api/v1/contacts/{id}/consents/status?channel=C&purpose=P[&kind=K]:
 * 200 {"allowed", "state", "rule", ...} under one policy throughout
 * (held from db, read on rd); 400 without channel and purpose or for
 * another parameter. */
void api_consents_status(struct api_db *db, struct store *rd, struct api_call *c,
                         const struct auth_user *u);

/* POST /api/v1/consents/confirm {"token"}: the contact confirms a double
 * opt-in; no Bearer, the token is the credential. 200 {"consent_id",
 * "status": "granted"}; 404 unknown token, 409 used before or the request
 * withdrawn, 410 expired. */
void api_consents_confirm(struct api_db *db, struct api_call *c);

#endif
