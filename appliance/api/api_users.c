/*
 * The user list; see api_users.h. Users are few (one office), so the list
 * is read to its end in pages of STORE_LIST_MAX and answered at once, and
 * each record is copied field by field: a field added to entity_user later
 * is not answered until it is named here.
 */
#include "api_users.h"

#include <stdio.h>
#include <string.h>

#include "api_reply.h"

/* The fields of a user the API answers, and no other. */
static const char *const shown[] = {"id", "name", "display_name", "role", "disabled"};

void api_users_list(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    if (u->role != AUTH_ROLE_MANAGER && u->role != AUTH_ROLE_ADMIN) {
        char msg[160];
        snprintf(msg, sizeof msg, "the user list is for the manager and admin roles, not %s",
                 auth_role_name(u->role));
        api_reply_problem(&c->resp, 403, msg, NULL);
        return;
    }
    if (c->req.query && c->req.query[0]) {
        api_reply_problem(&c->resp, 400,
                          "GET /api/v1/users takes no query parameters: it answers every user",
                          NULL);
        return;
    }
    json_t *out = json_array();
    char cursor[STORE_CURSOR_MAX] = "";
    struct op_error err;
    op_error_clear(&err);
    do {
        struct store_query q = {.cursor = cursor[0] ? cursor : NULL, .limit = STORE_LIST_MAX};
        json_t *items = NULL;
        char next[STORE_CURSOR_MAX];
        int rc = store_list(rd, &entity_user, &q, &items, next, &err);
        if (rc < 0) {
            json_decref(out);
            api_reply_store_error(&c->resp, rc, &err);
            return;
        }
        size_t i;
        json_t *rec;
        json_array_foreach(items, i, rec)
        {
            json_t *o = json_object();
            for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
                json_t *v = json_object_get(rec, shown[k]);
                if (!strcmp(shown[k], "disabled"))
                    json_object_set_new(o, shown[k], json_boolean(json_is_true(v)));
                else
                    json_object_set(o, shown[k], v ? v : json_null());
            }
            json_array_append_new(out, o);
        }
        json_decref(items);
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    api_reply_json(&c->resp, 200, json_pack("{s:o}", "items", out));
}
