/*
 * Tests for appliance/api/api_records.c, driven through api_serve: create
 * (Location, ETag, ownership), get, update and delete with If-Match
 * (428 without, 412 malformed or stale, W/ and *), bodies that are not
 * JSON objects (400 with line and column, no pointer), fields the store
 * or the region policy refuses (422 naming them by pointer), a field
 * user's rules (no change of owner, no clearing of restricted, a
 * colleague's private records neither named by the duplicate check nor
 * reachable by reference), duplicates (409 with the existing record), and
 * list and search parameters.
 */
#include "api_records.h"

#include "api_fixture.h"

static void create_get(void)
{
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                  "\"email\":\"jose@example.org\",\"locality\":\"Łódź\"}",
                  NULL),
             201);
    CHECK_STR(R.type, "application/json");
    char id[AUTH_ID_LEN], loc[160];
    snprintf(id, sizeof id, "%s", jstr("id") ? jstr("id") : "");
    snprintf(loc, sizeof loc, "/api/v1/contacts/%s", id);
    CHECK_STR(hdr("Location"), loc);
    CHECK_STR(hdr("ETag"), "\"1\"");
    CHECK_STR(hdr("Cache-Control"), "no-store");
    CHECK_EQ(json_integer_value(json_object_get(J, "version")), 1);
    CHECK_STR(jstr("owner_id"), ANA.id); /* a field user's records are theirs */
    CHECK_STR(jstr("locality"), "Łódź");

    CHECK_EQ(call("GET", loc, &ANA, NULL, NULL), 200);
    CHECK_STR(jstr("id"), id);
    CHECK_STR(hdr("ETag"), "\"1\"");
    CHECK(hdr("Location") == NULL);
    CHECK_EQ(call("GET", loc, &MARIA, NULL, NULL), 200); /* a manager sees everything */
    CHECK_EQ(call("GET", loc, &BEN, NULL, NULL), 404);   /* another field user does not */
    CHECK_PROBLEM(404);
    CHECK_EQ(
        call("GET", "/api/v1/contacts/0190abcd-0000-7000-8000-000000000000", &MARIA, NULL, NULL),
        404);
}

static void if_match(void)
{
    char id[AUTH_ID_LEN], path[160];
    fx_contact(&ANA, "{\"family_name\":\"Weber\"}", id);
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    const char *body = "{\"locality\":\"Bonn\"}";

    CHECK_EQ(call("PATCH", path, &ANA, body, NULL), 428);
    CHECK_PROBLEM(428);
    CHECK_STR(jstr("detail"), "If-Match is required: send the ETag of the version you last "
                              "read, so that no one else's change is overwritten");
    static const char *const malformed[] = {"1", "\"x\"", "\"0\"", "\"1", "W/1", "\"1\"x", ""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        CHECK_EQ(call("PATCH", path, &ANA, body, malformed[i]), 412);
        CHECK_STR(jstr("detail"), "If-Match must be an ETag such as \"3\" (or *)");
    }
    CHECK_EQ(call("PATCH", path, &ANA, body, "\"1\""), 200);
    CHECK_STR(hdr("ETag"), "\"2\"");
    CHECK_STR(jstr("locality"), "Bonn");
    /* the same ETag again is stale now: someone's change would be lost */
    CHECK_EQ(call("PATCH", path, &ANA, "{\"locality\":\"Köln\"}", "\"1\""), 412);
    CHECK_PROBLEM(412);
    CHECK_CONTAINS(jstr("detail"), "is at version 2, not 1");
    CHECK(pointer() == NULL);
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 200);
    CHECK_STR(jstr("locality"), "Bonn"); /* the stale write changed nothing */
    CHECK_EQ(call("PATCH", path, &ANA, "{\"locality\":\"Köln\"}", "W/\"2\""), 200);
    CHECK_STR(hdr("ETag"), "\"3\"");
    CHECK_EQ(call("PATCH", path, &ANA, "{\"locality\":\"Ulm\"}", "*"), 200);
    CHECK_STR(hdr("ETag"), "\"4\"");

    CHECK_EQ(call("DELETE", path, &ANA, NULL, NULL), 428);
    CHECK_EQ(call("DELETE", path, &ANA, NULL, "\"3\""), 412);
    CHECK_EQ(call("DELETE", path, &ANA, NULL, "\"4\""), 204);
    CHECK(R.body == NULL);
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 404);
    CHECK_EQ(call("PATCH", path, &ANA, body, "*"), 404);
}

static void bad_bodies(void)
{
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, "{\"family_name\":\"X\",", NULL), 400);
    CHECK_PROBLEM(400);
    CHECK_CONTAINS(jstr("detail"), "invalid JSON at line 1, column ");
    CHECK(json_object_get(J, "errors") == NULL);
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, "{\"a\":1,\n\"a\":2}", NULL), 400);
    CHECK_CONTAINS(jstr("detail"), "invalid JSON at line 2");
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, "[1]", NULL), 400);
    CHECK_STR(jstr("detail"), "the body must be a JSON object");
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, "", NULL), 400);
    CHECK_CONTAINS(jstr("detail"), "invalid JSON");

    char id[AUTH_ID_LEN], path[160];
    fx_contact(&ANA, "{\"family_name\":\"Body\"}", id);
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    CHECK_EQ(call("PATCH", path, &ANA, "nope", "*"), 400);
    CHECK_CONTAINS(jstr("detail"), "invalid JSON at line 1, column ");
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 200);
    CHECK_STR(hdr("ETag"), "\"1\"");
}

static void refused_fields(void)
{
    /* forbidden by the region policy: 422, the pointer naming it */
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Refused\",\"birth_date\":\"1980-01-02\"}", NULL),
             422);
    CHECK_PROBLEM(422);
    CHECK_STR(jstr("title"), "Unprocessable Content");
    CHECK_STR(pointer(), "/birth_date");
    CHECK_CONTAINS(jstr("detail"), "birth_date: not collected in EU-DE: not asked here");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(J, "errors"), 0), "detail")),
              jstr("detail"));
    /* a custom field the policy does not define, and one whose value it refuses */
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Refused\",\"custom\":{\"shoe\":\"42\"}}", NULL),
             422);
    CHECK_STR(pointer(), "/custom/shoe");
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Refused\",\"custom\":{\"segment\":\"nope\"}}", NULL),
             422);
    CHECK_STR(pointer(), "/custom/segment");
    /* a value the data model refuses, and a field it does not have */
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Refused\",\"email\":\"ana@\"}", NULL),
             422);
    CHECK_STR(pointer(), "/email");
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, "{\"family_name\":\"Refused\",\"nonsense\":1}",
                  NULL),
             422);
    CHECK_STR(pointer(), "/nonsense");
    /* nothing of it was written */
    CHECK_EQ(call("GET", "/api/v1/search?q=refused", &MARIA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 0);
}

static void ownership(void)
{
    char body[200];
    snprintf(body, sizeof body, "{\"family_name\":\"Given\",\"owner_id\":\"%s\"}", BEN.id);
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA, body, NULL), 403);
    CHECK_PROBLEM(403);
    CHECK_STR(jstr("detail"), "owner_id: field users can only create records owned by "
                              "themselves or by nobody (shared)");
    CHECK_STR(pointer(), "/owner_id");
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Shared\",\"owner_id\":null}", NULL),
             201);
    CHECK(json_is_null(json_object_get(J, "owner_id")) || !json_object_get(J, "owner_id"));
    char path[160];
    snprintf(path, sizeof path, "/api/v1/contacts/%s", jstr("id"));
    CHECK_EQ(call("GET", path, &BEN, NULL, NULL), 200); /* shared: everyone sees it */
    snprintf(body, sizeof body, "{\"owner_id\":\"%s\"}", ANA.id);
    CHECK_EQ(call("PATCH", path, &BEN, body, "*"), 403);
    CHECK_STR(pointer(), "/owner_id");
    /* taking a shared record would hide it from everyone else: refused */
    snprintf(body, sizeof body, "{\"owner_id\":\"%s\"}", BEN.id);
    CHECK_EQ(call("PATCH", path, &BEN, body, "*"), 403);
    CHECK_PROBLEM(403);
    CHECK_STR(jstr("detail"), "owner_id: only a manager can change who owns a record");
    CHECK_STR(pointer(), "/owner_id");
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 200); /* still shared, unchanged */
    CHECK_STR(hdr("ETag"), "\"1\"");
    CHECK(json_is_null(json_object_get(J, "owner_id")));
    /* sending the owner it already has is no change */
    CHECK_EQ(call("PATCH", path, &BEN, "{\"owner_id\":null,\"locality\":\"Ulm\"}", "*"), 200);
    /* a field user's own record cannot be handed on or to the pool either */
    char mine[AUTH_ID_LEN], mypath[160];
    fx_contact(&BEN, "{\"family_name\":\"Mine\"}", mine);
    snprintf(mypath, sizeof mypath, "/api/v1/contacts/%s", mine);
    CHECK_EQ(call("PATCH", mypath, &BEN, "{\"owner_id\":null}", "*"), 403);
    CHECK_STR(pointer(), "/owner_id");
    /* a manager moves records freely */
    snprintf(body, sizeof body, "{\"owner_id\":\"%s\"}", BEN.id);
    CHECK_EQ(call("PATCH", path, &MARIA, body, "*"), 200);
    CHECK_STR(jstr("owner_id"), BEN.id);
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 404);
    CHECK_EQ(call("PATCH", mypath, &MARIA, "{\"owner_id\":null}", "*"), 200);
    CHECK(json_is_null(json_object_get(J, "owner_id")));
    snprintf(body, sizeof body, "{\"family_name\":\"Given\",\"owner_id\":\"%s\"}", BEN.id);
    CHECK_EQ(call("POST", "/api/v1/contacts?skip_duplicate_check=true", &MARIA, body, NULL),
             201); /* managers may give records to anyone */
    CHECK_STR(jstr("owner_id"), BEN.id);
}

/* The restricted flag keeps a record at the node: a field user may set it,
 * only a manager may clear it. */
static void restricted_flag(void)
{
    char id[AUTH_ID_LEN], path[160];
    fx_contact(&MARIA, "{\"family_name\":\"Kept\",\"owner_id\":null,\"restricted\":true}", id);
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    CHECK_EQ(call("PATCH", path, &ANA, "{\"restricted\":false}", "*"), 403);
    CHECK_PROBLEM(403);
    CHECK_STR(jstr("detail"), "restricted: only a manager can clear the restricted flag");
    CHECK_STR(pointer(), "/restricted");
    CHECK_EQ(call("PATCH", path, &ANA, "{\"restricted\":null}", "*"), 403); /* null is false */
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 200);
    CHECK(json_is_true(json_object_get(J, "restricted")));
    CHECK_STR(hdr("ETag"), "\"1\"");
    /* other changes to a restricted record are fine, and it stays restricted */
    CHECK_EQ(call("PATCH", path, &ANA, "{\"locality\":\"Bonn\",\"restricted\":true}", "*"), 200);
    CHECK(json_is_true(json_object_get(J, "restricted")));
    CHECK_EQ(call("PATCH", path, &MARIA, "{\"restricted\":false}", "*"), 200);
    CHECK(json_is_false(json_object_get(J, "restricted")));
    /* tightening is anyone's */
    CHECK_EQ(call("PATCH", path, &ANA, "{\"restricted\":true}", "*"), 200);
    CHECK(json_is_true(json_object_get(J, "restricted")));
}

/* A colleague's private contact does not exist for a field user: the
 * duplicate check says one exists without naming it, and a reference to it
 * gets the answer a missing contact gets. */
static void hidden_records(void)
{
    char theirs[AUTH_ID_LEN], shared[AUTH_ID_LEN];
    fx_contact(&BEN, "{\"family_name\":\"Private\",\"email\":\"private@x.org\"}", theirs);
    fx_contact(&MARIA, "{\"family_name\":\"Open\",\"email\":\"open@x.org\",\"owner_id\":null}",
               shared);
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Again\",\"email\":\"PRIVATE@x.org\"}", NULL),
             409);
    CHECK_PROBLEM(409);
    CHECK_STR(jstr("detail"), "a contact with this e-mail address exists and is not yours; ask a "
                              "manager, or pass the skip-duplicate-check option to create it "
                              "anyway");
    CHECK_STR(pointer(), "/email");
    CHECK(json_object_get(J, "existing_id") == NULL);
    CHECK(json_object_get(J, "existing") == NULL);
    CHECK(R.body && !strstr(R.body, theirs));
    /* the same for a change of one's own contact onto the other's address */
    char mine[AUTH_ID_LEN], path[160];
    fx_contact(&ANA, "{\"family_name\":\"Mine\",\"email\":\"mine@x.org\"}", mine);
    snprintf(path, sizeof path, "/api/v1/contacts/%s", mine);
    CHECK_EQ(call("PATCH", path, &ANA, "{\"email\":\"private@x.org\"}", "*"), 409);
    CHECK(R.body && !strstr(R.body, theirs));
    /* one the field user may see is named, as for a manager */
    CHECK_EQ(call("POST", "/api/v1/contacts", &ANA,
                  "{\"family_name\":\"Again\",\"email\":\"open@x.org\"}", NULL),
             409);
    CHECK_STR(jstr("existing_id"), shared);
    CHECK_EQ(call("POST", "/api/v1/contacts", &MARIA,
                  "{\"family_name\":\"Again\",\"email\":\"private@x.org\"}", NULL),
             409);
    CHECK_STR(jstr("existing_id"), theirs);

    /* notes, deals and links to the hidden contact: as if it did not exist */
    const char *missing = "0190abcd-0000-7000-8000-000000000000";
    static const char *const posts[][2] = {
        {"/api/v1/notes", "{\"body\":\"hello\",\"contact_id\":\""},
        {"/api/v1/deals", "{\"title\":\"Deal\",\"contact_id\":\""},
        {"/api/v1/tasks", "{\"title\":\"Call\",\"contact_id\":\""},
    };
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        char body[200], want[200];
        snprintf(body, sizeof body, "%s%s\"}", posts[i][1], missing);
        CHECK_EQ(call("POST", posts[i][0], &ANA, body, NULL), 422);
        snprintf(want, sizeof want, "contact_id: no contact with id %s", missing);
        CHECK_STR(jstr("detail"), want);
        snprintf(body, sizeof body, "%s%s\"}", posts[i][1], theirs);
        CHECK_EQ(call("POST", posts[i][0], &ANA, body, NULL), 422);
        CHECK_PROBLEM(422);
        snprintf(want, sizeof want, "contact_id: no contact with id %s", theirs);
        CHECK_STR(jstr("detail"), want);
        CHECK_STR(pointer(), "/contact_id");
        snprintf(body, sizeof body, "%s%s\"}", posts[i][1], shared);
        CHECK_EQ(call("POST", posts[i][0], &ANA, body, NULL), 201);
        snprintf(body, sizeof body, "%s%s\"}", posts[i][1], theirs);
        CHECK_EQ(call("POST", posts[i][0], &BEN, body, NULL), 201); /* the owner may */
    }
    /* moving one's own note onto it: the same */
    char note[AUTH_ID_LEN], body[200];
    snprintf(body, sizeof body, "{\"body\":\"n\",\"contact_id\":\"%s\"}", shared);
    CHECK_EQ(call("POST", "/api/v1/notes", &ANA, body, NULL), 201);
    snprintf(note, sizeof note, "%s", jstr("id"));
    snprintf(path, sizeof path, "/api/v1/notes/%s", note);
    snprintf(body, sizeof body, "{\"contact_id\":\"%s\"}", theirs);
    CHECK_EQ(call("PATCH", path, &ANA, body, "*"), 422);
    CHECK_STR(pointer(), "/contact_id");
    /* a link between the hidden contact and an organization */
    CHECK_EQ(call("POST", "/api/v1/organizations", &ANA, "{\"name\":\"Firm\"}", NULL), 201);
    char org[AUTH_ID_LEN];
    snprintf(org, sizeof org, "%s", jstr("id"));
    snprintf(body, sizeof body, "{\"contact_id\":\"%s\",\"organization_id\":\"%s\"}", theirs, org);
    CHECK_EQ(call("POST", "/api/v1/contact_organizations", &ANA, body, NULL), 422);
    CHECK_STR(pointer(), "/contact_id");
    /* a manager sees everything, so may link anything */
    CHECK_EQ(call("POST", "/api/v1/contact_organizations", &MARIA, body, NULL), 201);
}

static void duplicates(void)
{
    char first[AUTH_ID_LEN];
    fx_contact(&MARIA,
               "{\"given_name\":\"Dup\",\"family_name\":\"Licate\",\"email\":\"dup@x.org\"}",
               first);
    const char *again = "{\"given_name\":\"D\",\"family_name\":\"L\",\"email\":\"DUP@x.org\"}";
    CHECK_EQ(call("POST", "/api/v1/contacts", &MARIA, again, NULL), 409);
    CHECK_PROBLEM(409);
    CHECK_STR(jstr("existing_id"), first);
    char url[160];
    snprintf(url, sizeof url, "/api/v1/contacts/%s", first);
    CHECK_STR(jstr("existing"), url);
    CHECK_EQ(call("POST", "/api/v1/contacts?skip_duplicate_check=true", &MARIA, again, NULL), 201);
    CHECK_EQ(call("POST", "/api/v1/contacts?skip_duplicate_check=1", &MARIA, again, NULL), 201);
    CHECK_EQ(call("POST", "/api/v1/contacts?skip_duplicate_check=yes", &MARIA, again, NULL), 409);
}

static void lists(void)
{
    /* runs before anything else gives ben records */
    char a[AUTH_ID_LEN], b[AUTH_ID_LEN], path[400];
    fx_contact(&BEN, "{\"family_name\":\"Listed\"}", a);
    fx_contact(&BEN, "{\"family_name\":\"Listed\"}", b);
    snprintf(path, sizeof path, "/api/v1/contacts?owner=%s&limit=1", BEN.id);
    CHECK_EQ(call("GET", path, &BEN, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 1);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(J, "items"), 0), "id")),
        a);
    CHECK(jstr("next_cursor") != NULL);
    snprintf(path, sizeof path, "/api/v1/contacts?owner=%s&limit=1&cursor=%s", BEN.id,
             jstr("next_cursor") ? jstr("next_cursor") : "");
    CHECK_EQ(call("GET", path, &BEN, NULL, NULL), 200);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(J, "items"), 0), "id")),
        b);
    CHECK(json_is_null(json_object_get(J, "next_cursor")));
    /* owner is owner_id by another name; a field user sees only their own and shared ones */
    snprintf(path, sizeof path, "/api/v1/contacts?owner_id=%s", BEN.id);
    CHECK_EQ(call("GET", path, &MARIA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 2);
    snprintf(path, sizeof path, "/api/v1/contacts?owner=%s", BEN.id);
    CHECK_EQ(call("GET", path, &ANA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 0);

    CHECK_EQ(call("GET", "/api/v1/contacts?limit=0", &BEN, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "limit: expected a whole number from 1 to 1000");
    CHECK_EQ(call("GET", "/api/v1/contacts?sort=name", &BEN, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "sort: expected id or updated");
    CHECK_EQ(call("GET", "/api/v1/contacts?sort=updated", &BEN, NULL, NULL), 200);
    CHECK_EQ(call("GET", "/api/v1/contacts?color=red", &BEN, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "unknown query parameter 'color' (limit, cursor, sort, "
                              "updated_since or a filter field)");
    CHECK_EQ(call("GET", "/api/v1/contacts?owner=%zz", &BEN, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "query parameter 'owner' is badly encoded or too long");
}

static void search(void)
{
    char id[AUTH_ID_LEN];
    fx_contact(&MARIA, "{\"given_name\":\"Zofia\",\"family_name\":\"Kowalczyk\"}", id);
    CHECK_EQ(call("GET", "/api/v1/search?q=zof+kowal", &MARIA, NULL, NULL), 200);
    json_t *hit = json_array_get(json_object_get(J, "items"), 0);
    CHECK_STR(json_string_value(json_object_get(hit, "id")), id);
    CHECK(json_object_get(hit, "rank") == NULL); /* internal, not shown */
    CHECK_EQ(call("GET", "/api/v1/search?q=zofia&limit=1", &ANA, NULL, NULL), 200);
    CHECK_EQ(json_array_size(json_object_get(J, "items")), 1); /* a manager's records are shared */
    CHECK_EQ(call("GET", "/api/v1/search", &MARIA, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "q: the search text is required (GET /api/v1/search?q=TEXT)");
    CHECK_EQ(call("GET", "/api/v1/search?q=x&sort=id", &MARIA, NULL, NULL), 400);
    CHECK_STR(jstr("detail"), "unknown query parameter (q, limit)");
    CHECK_EQ(call("GET", "/api/v1/search?q=x&limit=201", &MARIA, NULL, NULL), 400);
}

int main(void)
{
    fx_open();
    RUN(lists);
    RUN(create_get);
    RUN(if_match);
    RUN(bad_bodies);
    RUN(refused_fields);
    RUN(ownership);
    RUN(restricted_flag);
    RUN(hidden_records);
    RUN(duplicates);
    RUN(search);
    fx_close();
    return tl_report();
}
