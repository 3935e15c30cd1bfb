/* Tests for appliance/uplink/ledger_status.c on a clock the test moves:
 * bytes HQ acknowledged count toward the UTC day they were acknowledged
 * on (the daily budget) and start again at midnight, with the bytes put on
 * the wire beside them; goodput is smoothed over uploads; errors are
 * counted by kind and the last one is kept; why sync waits is shown; the
 * round trips saved add up; and `outpost status` read-only beside the
 * daemon shows the same figures as the daemon. */
#include "ledger_fixture.h"

/* sent: on the wire; confirmed: acknowledged by HQ, and the goodput
 * sample over ms when ms is not 0 */
static void note(struct sync_ledger *l, uint64_t sent, uint64_t confirmed, uint64_t ms,
                 const char *kind, const char *msg)
{
    struct sync_link_report r = {.bytes_sent = sent,
                                 .bytes_confirmed = confirmed,
                                 .sample_bytes = ms ? confirmed : 0,
                                 .duration_ms = ms,
                                 .error_kind = kind,
                                 .error_msg = msg};
    struct op_error err;
    CHECK_EQ(sync_ledger_note_link(l, &r, &err), 0);
}

static void test_figures(void)
{
    fx_fresh("status");
    free(fx_contact("Ada"));
    fx_now = 1795000000000 - 1795000000000 % 86400000 + 86400000 - 2000; /* 23:59:58 UTC */
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.enabled, 1);
    CHECK_STR(s.node_id, "test-node-1");
    CHECK_STR(s.region, "EU-DE");
    CHECK_EQ(s.outbox_depth, 1);
    CHECK(s.eta_s < 0); /* no goodput yet: unknown */
    CHECK_EQ(s.bytes_today, 0);

    note(l, 1000, 1000, 1000, NULL, NULL); /* 1000 B/s */
    /* a cut: 500 bytes on the wire, none acknowledged; the budget is not
     * charged for them */
    note(l, 500, 0, 0, "network", "connection reset");
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.bytes_today, 1000);
    CHECK_EQ(s.bytes_sent_today, 1500);
    CHECK(s.goodput_bps == 1000.0);
    CHECK(s.eta_s > 0);
    CHECK_STR(s.last_error, "network: connection reset");
    CHECK_EQ(s.nerrors, 1);
    CHECK_STR(s.errors[0].kind, "network");
    CHECK_EQ(s.errors[0].n, 1);

    /* past midnight UTC: a new day's budget */
    fx_now += 3000;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.bytes_today, 0);
    CHECK_EQ(s.bytes_sent_today, 0);
    note(l, 2000, 2000, 1000, "tls", "handshake"); /* sample 2000 B/s */
    note(l, 0, 0, 0, "network", "timeout");
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.bytes_today, 2000);
    CHECK_EQ(s.bytes_sent_today, 2000);
    CHECK(s.goodput_bps > 1299.0 && s.goodput_bps < 1301.0); /* 0.7 * 1000 + 0.3 * 2000 */
    CHECK_STR(s.last_error, "network: timeout");
    CHECK_EQ(s.nerrors, 2);
    CHECK_STR(s.errors[0].kind, "network");
    CHECK_EQ(s.errors[0].n, 2);
    CHECK_STR(s.errors[1].kind, "tls");

    /* round trips saved add up, across days */
    struct sync_link_report saved = {.receipts_inline = 2, .mailbox_skipped = 3};
    CHECK_EQ(sync_ledger_note_link(l, &saved, &err), 0);
    saved.receipts_inline = 1;
    CHECK_EQ(sync_ledger_note_link(l, &saved, &err), 0);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.receipts_inline, 3);
    CHECK_EQ(s.mailbox_skipped, 6);
    CHECK_EQ(s.bytes_today, 2000);

    CHECK_EQ(sync_ledger_set_waiting(l, "outside the sync window", &err), 0);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_STR(s.waiting, "outside the sync window");

    /* read-only, as `outpost status` does beside the daemon: the same
     * figures (bytes_today counts on the real clock's day there) */
    struct sync_status db;
    CHECK_EQ(sync_ledger_status_db(fx_db, &db, &err), 0);
    CHECK_EQ(db.enabled, 1);
    CHECK_STR(db.node_id, s.node_id);
    CHECK_EQ(db.outbox_depth, s.outbox_depth);
    CHECK_EQ(db.spool_cap, s.spool_cap);
    CHECK(db.goodput_bps == s.goodput_bps);
    CHECK_STR(db.last_error, s.last_error);
    CHECK_STR(db.waiting, s.waiting);
    CHECK_EQ(db.nerrors, s.nerrors);
    CHECK_EQ(db.next_segment, s.next_segment);
    CHECK_EQ(db.receipts_inline, s.receipts_inline);
    CHECK_EQ(db.mailbox_skipped, s.mailbox_skipped);
    CHECK_EQ(sync_ledger_set_waiting(l, "", &err), 0);
    CHECK_EQ(sync_ledger_status_db(fx_db, &db, &err), 0);
    CHECK_STR(db.waiting, "");
    sync_ledger_close(l);
}

static uint64_t charge(struct sync_ledger *l, uint64_t no, uint64_t offset)
{
    struct op_error err;
    uint64_t charged = 99;
    CHECK_EQ(sync_ledger_charge_upload(l, no, offset, &charged, &err), 0);
    return charged;
}

static uint64_t today(struct sync_ledger *l)
{
    struct sync_status s;
    struct op_error err;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    return s.bytes_today;
}

/* HQ's offset of an upload is charged to the day by its difference to
 * what is charged already: an offset learned again (a restart's HEAD, a
 * repeated answer) charges nothing, one HQ took before a kill charges the
 * rest, a new upload of the segment starts again at 0, and a segment the
 * ledger does not know is refused with nothing written. */
static void test_charge_upload(void)
{
    fx_fresh("charge");
    free(fx_contact("Ada"));
    fx_now = 1795000000000 - 1795000000000 % 86400000 + 86400000 - 2000; /* 23:59:58 UTC */
    struct sync_ledger *l = fx_open(0);
    struct sync_segment sg = fx_segment(l);
    struct op_error err;
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/a", &err), 0);
    CHECK_EQ(charge(l, sg.no, 0), 0);
    CHECK_EQ(charge(l, sg.no, 65536), 65536);
    CHECK_EQ(charge(l, sg.no, 65536), 0);
    CHECK_EQ(today(l), 65536);
    /* the same URL again (a resume) keeps what is charged */
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/a", &err), 0);
    CHECK_EQ(charge(l, sg.no, 65536), 0);

    /* a restart: the ledger is opened again; HQ's HEAD says 98304 */
    sync_ledger_close(l);
    l = fx_open(0);
    CHECK_EQ(today(l), 65536);
    CHECK_EQ(charge(l, sg.no, 98304), 32768);
    CHECK_EQ(today(l), 98304);

    /* past midnight UTC: what HQ takes now counts to the new day */
    fx_now += 3000;
    CHECK_EQ(today(l), 0);
    CHECK_EQ(charge(l, sg.no, 100000), 1696);
    CHECK_EQ(today(l), 1696);

    /* HQ forgot the upload: a new one holds nothing yet, and what it takes
     * is charged again */
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/b", &err), 0);
    CHECK_EQ(charge(l, sg.no, 4096), 4096);
    CHECK_EQ(today(l), 5792);

    /* no such segment: refused, nothing written */
    char *before = fx_snapshot();
    uint64_t c = 7;
    op_error_clear(&err);
    CHECK_EQ(sync_ledger_charge_upload(l, sg.no + 100, 5000, &c, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "is not in the ledger");
    CHECK_EQ(c, 0);
    fx_check_unchanged(before);
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();
    test_figures();
    test_charge_upload();
    return fx_teardown();
}
