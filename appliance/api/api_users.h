/*
 * GET /api/v1/users: who works at this node, for the manager and admin
 * roles (docs/API.md, "Users"), so that a screen names people instead of
 * showing their ids: the team view of the web app, a report.
 *
 * Invariant: the answer carries only each live user's id, name, display
 * name, role and whether the account is disabled: never a password hash
 * or anything about sessions or tokens; field and hq users get 403.
 */
#ifndef OUTPOST_API_USERS_H
#define OUTPOST_API_USERS_H

#include "api_request.h"
#include "auth.h"
#include "store.h"

/* Answers c with {"items": [{"id", "name", "display_name", "role",
 * "disabled"}...]} in id order, every live user in one answer (200), read
 * from rd; 403 naming the role for field and hq users, 400 for any query
 * parameter (there are none), or the store's error. */
void api_users_list(struct store *rd, struct api_call *c, const struct auth_user *u);

#endif
