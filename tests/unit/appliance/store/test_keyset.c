/* Tests for appliance/store/keyset.c: the duplicate keys a bulk import
 * keeps in memory must answer as the indexed lookups would: the first
 * contact created with a key, the others of that key in creation order,
 * kinds kept apart, and nothing lost when the table grows. */
#include <stdio.h>
#include <string.h>

#include "keyset.h"
#include "testlib.h"

static void add(struct keyset *ks, const char *id, const char *email, const char *phone,
                const char *street, const char *tail, const char *name)
{
    const char *k[KEYSET_NKINDS] = {email, phone, street, tail, name};
    CHECK_EQ(keyset_add(ks, id, k), 0);
}

static void first_and_order(void)
{
    struct keyset *ks = keyset_new();
    CHECK(ks != NULL);
    CHECK(keyset_find(ks, KEYSET_EMAIL, "a@example.org") == NULL);
    add(ks, "id1", "a@example.org", "+4930123", "hauptstr 1|berlin", "0301234",
        "jose muler|berlin");
    add(ks, "id2", "b@example.org", NULL, "hauptstr 1|berlin", "", "ana nowak|berlin");
    add(ks, "id3", "a@example.org", NULL, "hauptstr 1|berlin", NULL, NULL);
    CHECK_EQ(keyset_count(ks), 3);

    /* the first created with the key, as the index's LIMIT 1 */
    const struct keyset_entry *e = keyset_find(ks, KEYSET_EMAIL, "a@example.org");
    CHECK(e && !strcmp(e->id, "id1"));
    CHECK(e && e->next[KEYSET_EMAIL] && !strcmp(e->next[KEYSET_EMAIL]->id, "id3"));
    CHECK(e && e->next[KEYSET_EMAIL] && e->next[KEYSET_EMAIL]->next[KEYSET_EMAIL] == NULL);

    /* a street's contacts in creation order, with their name keys */
    e = keyset_find(ks, KEYSET_STREET, "hauptstr 1|berlin");
    CHECK(e && !strcmp(e->id, "id1") && !strcmp(e->name_key, "jose muler|berlin"));
    e = e ? e->next[KEYSET_STREET] : NULL;
    CHECK(e && !strcmp(e->id, "id2") && !strcmp(e->name_key, "ana nowak|berlin"));
    e = e ? e->next[KEYSET_STREET] : NULL;
    CHECK(e && !strcmp(e->id, "id3") && e->name_key == NULL);
    CHECK(e && e->next[KEYSET_STREET] == NULL);

    /* kinds are apart: the same text under another kind is no match */
    CHECK(keyset_find(ks, KEYSET_PHONE, "a@example.org") == NULL);
    CHECK(keyset_find(ks, KEYSET_NAME, "hauptstr 1|berlin") == NULL);
    /* empty and missing keys are no keys */
    CHECK(keyset_find(ks, KEYSET_TAIL, "") == NULL);
    CHECK(keyset_find(ks, KEYSET_TAIL, NULL) == NULL);
    e = keyset_find(ks, KEYSET_TAIL, "0301234");
    CHECK(e && !strcmp(e->id, "id1") && e->next[KEYSET_TAIL] == NULL);
    /* the caller's strings may go: the set keeps copies */
    char id[8] = "id4", email[32] = "c@example.org";
    const char *k[KEYSET_NKINDS] = {email, NULL, NULL, NULL, NULL};
    CHECK_EQ(keyset_add(ks, id, k), 0);
    memset(id, 'x', sizeof id - 1);
    memset(email, 'x', sizeof email - 1);
    e = keyset_find(ks, KEYSET_EMAIL, "c@example.org");
    CHECK(e && !strcmp(e->id, "id4"));
    keyset_free(ks);
    keyset_free(NULL);
}

/* 50,000 contacts grow the table many times over; every key is still
 * found, and a key shared by every tenth contact keeps its order. */
static void growth(void)
{
    struct keyset *ks = keyset_new();
    CHECK(ks != NULL);
    char id[32], email[64], street[64];
    for (int i = 0; i < 50000; i++) {
        snprintf(id, sizeof id, "id%d", i);
        snprintf(email, sizeof email, "p%d@example.org", i);
        snprintf(street, sizeof street, "street %d|town", i / 10);
        add(ks, id, email, NULL, street, NULL, NULL);
    }
    CHECK_EQ(keyset_count(ks), 50000);
    int lost = 0, misordered = 0;
    for (int i = 0; i < 50000; i++) {
        snprintf(id, sizeof id, "id%d", i);
        snprintf(email, sizeof email, "p%d@example.org", i);
        const struct keyset_entry *e = keyset_find(ks, KEYSET_EMAIL, email);
        lost += !e || strcmp(e->id, id) != 0;
    }
    for (int s = 0; s < 5000; s++) {
        snprintf(street, sizeof street, "street %d|town", s);
        const struct keyset_entry *e = keyset_find(ks, KEYSET_STREET, street);
        for (int i = 0; i < 10; i++, e = e ? e->next[KEYSET_STREET] : NULL) {
            snprintf(id, sizeof id, "id%d", s * 10 + i);
            misordered += !e || strcmp(e->id, id) != 0;
        }
        misordered += e != NULL;
    }
    CHECK_EQ(lost, 0);
    CHECK_EQ(misordered, 0);
    CHECK(keyset_find(ks, KEYSET_EMAIL, "p50000@example.org") == NULL);
    keyset_free(ks);
}

int main(void)
{
    RUN(first_and_order);
    RUN(growth);
    return tl_report();
}
