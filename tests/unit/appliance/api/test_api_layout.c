/*
 * Tests for appliance/api/api_layout.c, driven through api_serve: the
 * layout follows the node's region policy (a forbidden field absent, a
 * custom field with its values, office-only marks from the field
 * classes, the consent mode per channel, the address format), and only
 * CRM roles with credentials may read it, with GET or HEAD.
 */
#include "api_layout.h"

#include "api_fixture.h"

/* The field named name in entity's layout, or NULL. */
static json_t *field(const char *entity, const char *name)
{
    json_t *fs = json_object_get(json_object_get(json_object_get(J, "entities"), entity), "fields");
    size_t i;
    json_t *f;
    json_array_foreach(
        fs, i, f) if (!strcmp(json_string_value(json_object_get(f, "name")), name)) return f;
    return NULL;
}

static void shaped_by_policy(void)
{
    CHECK_EQ(call("GET", "/api/v1/layout", &ANA, NULL, NULL), 200);
    CHECK_STR(jstr("region"), "EU-DE");
    CHECK(field("contact", "given_name") != NULL);
    CHECK(field("contact", "birth_date") == NULL); /* forbidden in this region */
    CHECK(field("contact", "email") != NULL);
    CHECK(field("organization", "name") != NULL);
    json_t *seg = field("contact", "custom.segment");
    CHECK(seg != NULL);
    CHECK_STR(json_string_value(json_object_get(seg, "type")), "enum");
    CHECK_STR(json_string_value(json_array_get(json_object_get(seg, "values"), 1)), "wholesale");
    /* default_class local_only: every field stays in the office */
    CHECK(json_is_true(json_object_get(field("contact", "given_name"), "office_only")));
    CHECK(json_is_true(json_object_get(field("organization", "name"), "required")));
    json_t *stage = field("deal", "stage");
    CHECK_STR(json_string_value(json_array_get(json_object_get(stage, "values"), 0)), "lead");
    json_t *consent = json_object_get(J, "consent");
    int seen = 0;
    size_t i;
    json_t *r;
    json_array_foreach(consent, i, r)
    {
        const char *ch = json_string_value(json_object_get(r, "channel"));
        const char *mode = json_string_value(json_object_get(r, "mode"));
        if (!strcmp(ch, "email"))
            seen += !strcmp(mode, "double_opt_in");
        if (!strcmp(ch, "call"))
            seen += !strcmp(mode, "opt_out");
    }
    CHECK_EQ(seen, 2);
    CHECK(json_is_string(json_object_get(J, "address_format")));
}

static void who_may_read(void)
{
    CHECK_EQ(call("GET", "/api/v1/layout", &MARIA, NULL, NULL), 200);
    CHECK_EQ(call("HEAD", "/api/v1/layout", &MARIA, NULL, NULL), 200);
    CHECK_EQ(call("GET", "/api/v1/layout", NULL, NULL, NULL), 401);
    CHECK_EQ(call("GET", "/api/v1/layout", &HQ, NULL, NULL), 403);
    CHECK_EQ(call("POST", "/api/v1/layout", &MARIA, "{}", NULL), 405);
    CHECK_STR(hdr("Allow"), "GET, HEAD");
}

int main(void)
{
    fx_open();
    RUN(shaped_by_policy);
    RUN(who_may_read);
    fx_close();
    return tl_report();
}
