/* Tests for appliance/uplink/ledger_mailbox.c: one message whose MAC does not
 * verify, or one without seq, kind, body or mac, refuses the whole answer
 * with nothing stored and the cursor unchanged; authentic messages are
 * stored with their status (pending for a person or a later feature,
 * refused for a kind the node does not know or a policy that is not one)
 * and the cursor advances to the highest seq in one transaction; a
 * replayed answer changes nothing. Policies that take effect or wait are
 * tested through the whole ledger (test_sync_ledger.c). */
#include "ledger_fixture.h"

static json_t *message(uint64_t seq, const char *kind, const char *body, int mac_ok)
{
    char mac[SYNC_MAC_HEX];
    if (sync_mailbox_mac(fx_cred.hq_key, fx_cred.node_id, seq, kind, body, strlen(body), mac) < 0)
        fx_die("sync_mailbox_mac", NULL);
    if (!mac_ok)
        mac[5] = mac[5] == 'a' ? 'b' : 'a';
    return json_pack("{sIssssssss}", "seq", (json_int_t)seq, "kind", kind, "created_at",
                     "2026-11-24T18:00:00.000Z", "body", body, "mac", mac);
}

/* The answer {"messages": msgs} (stolen), stored. */
static int store_msgs(struct sync_ledger *l, json_t *msgs, int *changed, struct op_error *err)
{
    json_t *a = json_pack("{so}", "messages", msgs);
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    op_error_clear(err);
    int rc = sync_ledger_mailbox_store(l, s, strlen(s), changed, err);
    free(s);
    return rc;
}

static void refused(struct sync_ledger *l, json_t *msgs, const char *field)
{
    char *before = fx_snapshot();
    struct op_error err;
    int changed = -1;
    CHECK_EQ(store_msgs(l, msgs, &changed, &err), -EBADMSG);
    CHECK_STR(err.field, field);
    CHECK_EQ(changed, -1);
    fx_check_unchanged(before);
}

static const char *rows(void)
{
    static char out[4096];
    out[0] = '\0';
    fx_dump("SELECT seq, kind, status, reason != '', received_ms FROM mailbox ORDER BY seq", out,
            sizeof out);
    return strchr(out, '\n') + 1;
}

static void test_mailbox(void)
{
    fx_fresh("mailbox");
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    uint64_t after = 99;
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 0);

    /* the second message is forged: the first is not stored either */
    refused(l,
            json_pack("[oo]", message(1, "reference", "{}", 1), message(2, "reference", "{}", 0)),
            "mac");
    refused(l,
            json_pack("[o{sIss}]", message(1, "reference", "{}", 1), "seq", (json_int_t)2, "kind",
                      "reference"),
            "messages");
    const char *junk = "{\"messages\": 5}";
    char *before = fx_snapshot();
    int changed = -1;
    CHECK_EQ(sync_ledger_mailbox_store(l, junk, strlen(junk), &changed, &err), -EBADMSG);
    CHECK_STR(err.field, "messages");
    CHECK_EQ(sync_ledger_mailbox_store(l, "{", 1, &changed, &err), -EBADMSG);
    CHECK_STR(err.field, "messages");
    fx_check_unchanged(before);
    CHECK_EQ(changed, -1);

    /* authentic: stored with their status, cursor at the highest seq */
    CHECK_EQ(store_msgs(l,
                        json_pack("[oooo]", message(3, "reference", "{\"a\":1}", 1),
                                  message(4, "aggregate_request", "{}", 1),
                                  message(5, "telepathy", "{}", 1),
                                  message(7, "policy", "this is not a policy", 1)),
                        &changed, &err),
             0);
    CHECK_EQ(changed, 0);
    CHECK_STR(rows(), "3|reference|pending|0|1795000000000|\n"
                      "4|aggregate_request|pending|0|1795000000000|\n"
                      "5|telepathy|refused|1|1795000000000|\n"
                      "7|policy|refused|1|1795000000000|\n");
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 7);

    /* a replay (and an older message HQ sends again) changes nothing */
    fx_now += 60000;
    before = fx_snapshot();
    CHECK_EQ(store_msgs(l,
                        json_pack("[oo]", message(3, "reference", "{\"a\":2}", 1),
                                  message(6, "reference", "{}", 1)),
                        &changed, &err),
             0);
    CHECK_EQ(changed, 0);
    fx_check_unchanged(before);
    /* an empty answer too */
    CHECK_EQ(store_msgs(l, json_array(), &changed, &err), 0);
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 7);
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();
    test_mailbox();
    return fx_teardown();
}
