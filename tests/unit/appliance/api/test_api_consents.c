/*
 * Tests for appliance/api/api_consents.c, driven through api_serve: recording
 * consent (keys accepted, Location and ETag, the confirmation token shown
 * to a manager only), the status check under the policy in force, the
 * contact's confirmation link without a Bearer (404, 409 on replay),
 * withdrawal, and the list of a contact's consents honouring who may see
 * the contact.
 */
#include "api_consents.h"

#include "api_fixture.h"

static char contact[AUTH_ID_LEN];
static char path[200];

static int consents(const char *suffix, const struct fx_user *u, const char *body)
{
    snprintf(path, sizeof path, "/api/v1/contacts/%s/consents%s", contact, suffix);
    return call(body ? "POST" : "GET", path, u, body, NULL);
}

static void record_and_confirm(void)
{
    const char *email = "{\"channel\":\"email\",\"purpose\":\"newsletter\",\"method\":"
                        "\"double_opt_in\",\"evidence\":{\"source\":\"web form\"}}";
    /* a field user records; the token is not theirs to see */
    CHECK_EQ(consents("", &ANA, email), 201);
    CHECK_STR(jstr("status"), "pending");
    CHECK(json_object_get(J, "confirmation_token") == NULL);
    /* a manager may take the token to forward the link */
    CHECK_EQ(consents("", &MARIA, email), 201);
    CHECK_STR(hdr("ETag"), "\"1\"");
    /* the client's address without its port is part of the evidence */
    CHECK_STR(json_string_value(json_object_get(json_object_get(J, "evidence"), "ip")),
              "192.0.2.7");
    char cid[AUTH_ID_LEN], loc[240], token[128];
    snprintf(cid, sizeof cid, "%s", jstr("id") ? jstr("id") : "");
    snprintf(loc, sizeof loc, "/api/v1/contacts/%s/consents/%s", contact, cid);
    CHECK_STR(hdr("Location"), loc);
    snprintf(token, sizeof token, "%s",
             jstr("confirmation_token") ? jstr("confirmation_token") : "");
    CHECK(token[0] != '\0');

    CHECK_EQ(consents("/status?channel=email&purpose=newsletter", &ANA, NULL), 200);
    CHECK(json_is_false(json_object_get(J, "allowed")));
    CHECK_STR(jstr("state"), "pending");
    CHECK_STR(jstr("kind"), "marketing");
    CHECK_STR(jstr("policy_hash"), api_policy_hash(A));
    CHECK(jstr("policy_hash")[0] != '\0');

    CHECK_EQ(call("POST", "/api/v1/consents/confirm", NULL, "{}", NULL), 422);
    CHECK_STR(jstr("detail"), "token: required, the string from the confirmation link");
    CHECK_STR(pointer(), "/token");
    CHECK_EQ(call("POST", "/api/v1/consents/confirm", NULL, "{\"token\":\"nope\"}", NULL), 404);
    CHECK_PROBLEM(404);
    char body[200];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", token);
    CHECK_EQ(call("POST", "/api/v1/consents/confirm", NULL, body, NULL), 200);
    CHECK_STR(jstr("consent_id"), cid);
    CHECK_STR(jstr("status"), "granted");
    CHECK(R.user[0] == '\0'); /* the link is no user */
    CHECK_EQ(call("POST", "/api/v1/consents/confirm", NULL, body, NULL), 409); /* replay */
    CHECK_PROBLEM(409);

    CHECK_EQ(consents("/status?channel=email&purpose=newsletter", &ANA, NULL), 200);
    CHECK(json_is_true(json_object_get(J, "allowed")));
    CHECK_STR(jstr("consent_id"), cid);

    snprintf(path, sizeof path, "/api/v1/contacts/%s/consents/%s/withdraw", contact, cid);
    CHECK_EQ(call("POST", path, &ANA, "{\"reason\":\"asked us\"}", NULL), 200);
    CHECK_STR(jstr("status"), "withdrawn");
    CHECK_STR(jstr("id"), cid);
    CHECK(hdr("ETag") != NULL);
    CHECK_EQ(call("POST", path, &ANA, NULL, NULL),
             200); /* again, without a body: still withdrawn */
    CHECK_STR(jstr("status"), "withdrawn");
    CHECK_EQ(consents("/status?channel=email&purpose=newsletter", &ANA, NULL), 200);
    CHECK(json_is_false(json_object_get(J, "allowed")));

    /* a consent record is withdrawn only through its own contact */
    char other[AUTH_ID_LEN];
    fx_contact(&ANA, "{\"family_name\":\"Other\"}", other);
    snprintf(path, sizeof path, "/api/v1/contacts/%s/consents/%s/withdraw", other, cid);
    CHECK_EQ(call("POST", path, &ANA, NULL, NULL), 404);
    CHECK_CONTAINS(jstr("detail"), "no consent ");
}

static void refused(void)
{
    CHECK_EQ(consents("", &ANA, "{\"channel\":\"sms\",\"status\":\"granted\"}"), 422);
    CHECK_PROBLEM(422);
    CHECK_STR(pointer(), "/status");
    CHECK_STR(jstr("detail"), "status: not accepted; a consent takes channel, purpose, kind, "
                              "method and evidence (its status and times are set by the node)");
    CHECK_EQ(consents("", &ANA, "{\"channel\":1}"), 422);
    CHECK_STR(jstr("detail"), "channel: must be a string");
    CHECK_STR(pointer(), "/channel");
    CHECK_EQ(consents("", &ANA, "{\"channel\":\"fax\",\"purpose\":\"newsletter\"}"), 422);
    CHECK_STR(pointer(), "/channel");
    CHECK_EQ(consents("", &ANA, "[]"), 400);

    CHECK_EQ(consents("/status?channel=email", &ANA, NULL), 400);
    CHECK_STR(jstr("detail"),
              "channel and purpose are required "
              "(GET /api/v1/contacts/{id}/consents/status?channel=email&purpose=newsletter)");
    CHECK_EQ(consents("/status?channel=email&purpose=x&lang=de", &ANA, NULL), 400);
    CHECK_STR(jstr("detail"), "unknown query parameter (channel, purpose, kind)");
}

static void listing(void)
{
    /* a consent of another contact stays out of this contact's list */
    char other[AUTH_ID_LEN], p2[200];
    fx_contact(&ANA, "{\"family_name\":\"Else\",\"phone\":\"+49 30 1234567\"}", other);
    snprintf(p2, sizeof p2, "/api/v1/contacts/%s/consents", other);
    CHECK_EQ(call("POST", p2, &ANA,
                  "{\"channel\":\"sms\",\"purpose\":\"offers\",\"method\":\"single_opt_in\","
                  "\"evidence\":{\"source\":\"paper form\"}}",
                  NULL),
             201);
    CHECK_STR(jstr("status"), "granted");
    CHECK_EQ(call("GET", p2, &ANA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 1);
    CHECK_EQ(consents("", &ANA, NULL), 200);
    CHECK_INT(json_array_size(json_object_get(J, "items")), >=, 2);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(J, "items"), i, item)
        CHECK_STR(json_string_value(json_object_get(item, "contact_id")), contact);
    CHECK_EQ(consents("?limit=1", &ANA, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 1);
    /* ben may not see ana's contact, so neither its consents */
    CHECK_EQ(consents("", &BEN, NULL), 404);
    CHECK_PROBLEM(404);
    CHECK_EQ(consents("/status?channel=email&purpose=newsletter", &BEN, NULL), 404);
}

int main(void)
{
    fx_open();
    fx_contact(&ANA, "{\"family_name\":\"Lima\",\"email\":\"lima@example.org\"}", contact);
    RUN(record_and_confirm);
    RUN(refused);
    RUN(listing);
    fx_close();
    return tl_report();
}
