/*
 * Tests for appliance/api/api_users.c, driven through api_serve: a
 * manager or an admin reads who works at the node (id, name, display
 * name, role, disabled) and nothing secret; field and hq users, callers
 * without credentials, other methods and query parameters are refused.
 */
#include "api_users.h"

#include "api_fixture.h"

/* The item of the list whose name is name, or NULL. */
static json_t *user(const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(J, "items"), i, u)
    {
        if (!strcmp(json_string_value(json_object_get(u, "name")), name))
            return u;
    }
    return NULL;
}

static void manager_reads_names(void)
{
    CHECK_EQ(call("GET", "/api/v1/users", &MARIA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 5);
    struct fx_user *all[] = {&ANA, &BEN, &MARIA, &ROOT, &HQ};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        json_t *u = user(all[i]->name);
        CHECK(u != NULL);
        if (!u)
            continue;
        CHECK_STR(json_string_value(json_object_get(u, "id")), all[i]->id);
        CHECK_STR(json_string_value(json_object_get(u, "role")), auth_role_name(all[i]->role));
        CHECK(json_is_false(json_object_get(u, "disabled")));
        CHECK(json_object_get(u, "display_name") != NULL);
        /* exactly these five members: nothing else about the account */
        CHECK_EQ(json_object_size(u), 5);
    }
    /* no password hash, no token, no session in the bytes sent */
    CHECK(strstr(R.body, "$y$") == NULL);
    CHECK(strstr(R.body, "password") == NULL);
    CHECK(strstr(R.body, "token") == NULL);
    CHECK(strstr(R.body, ANA.token) == NULL);
    CHECK(strstr(R.body, ANA.token + 4) == NULL);
}

static void admin_reads_and_sees_disabled(void)
{
    struct op_error err;
    op_error_clear(&err);
    struct store *s = fx_store_reopen();
    struct auth *au = NULL;
    CHECK_EQ(auth_new(s, &au, &err), 0);
    CHECK_EQ(auth_user_set_disabled(au, "ben", 1, &err), 0);
    auth_free(au);
    store_close(s);
    CHECK_EQ(call("GET", "/api/v1/users", &ROOT, NULL, NULL), 200);
    CHECK(json_is_true(json_object_get(user("ben"), "disabled")));
    CHECK(json_is_false(json_object_get(user("ana"), "disabled")));
}

static void others_refused(void)
{
    CHECK_EQ(call("GET", "/api/v1/users", &ANA, NULL, NULL), 403);
    CHECK_PROBLEM(403);
    CHECK(strstr(jstr("detail"), "not field") != NULL);
    CHECK(json_object_get(J, "items") == NULL);
    CHECK_EQ(call("GET", "/api/v1/users", &HQ, NULL, NULL), 403);
    CHECK(strstr(jstr("detail"), "not hq") != NULL);
    CHECK_EQ(call("GET", "/api/v1/users", NULL, NULL, NULL), 401);
    CHECK_EQ(call("POST", "/api/v1/users", &ROOT, "{\"name\":\"eve\"}", NULL), 405);
    CHECK_STR(hdr("Allow"), "GET, HEAD");
    CHECK_EQ(call("HEAD", "/api/v1/users", &MARIA, NULL, NULL), 200);
    CHECK_EQ(call("GET", "/api/v1/users?role=field", &MARIA, NULL, NULL), 400);
    CHECK_PROBLEM(400);
    CHECK(strstr(jstr("detail"), "no query parameters") != NULL);
    /* a user is not a record of the CRM collections either */
    CHECK_EQ(call("GET", "/api/v1/users/x", &MARIA, NULL, NULL), 404);
}

int main(void)
{
    fx_open();
    RUN(manager_reads_names);
    RUN(admin_reads_and_sees_disabled);
    RUN(others_refused);
    fx_close();
    return tl_report();
}
