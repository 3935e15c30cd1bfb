/* Tests for appliance/uplink/ledger_segmenter.c: where a full segment may stop
 * (ledger_cursor_after, on rows as outbox_next_batch returns them: each
 * lane in seq order, urgent first), and cutting: segments follow each
 * other without gap or overlap and hold every change once; nothing to cut
 * changes nothing once the policy in force is recorded; each segment's row and the segmented cursor
 * commit with its file. */
#include "ledger_fixture.h"
#include "segment.h"
#include "sync_ledger_int.h"

static struct outbox_row row(int priority, int64_t seq)
{
    struct outbox_row r;
    memset(&r, 0, sizeof r);
    r.priority = priority;
    r.seq = seq;
    return r;
}

/* A segment may stop after rows[0..i], with the cursor at urgent/ordinary. */
static void stops_at(const struct outbox_row *rows, size_t n, size_t i,
                     const struct outbox_cursor *from, int64_t urgent, int64_t ordinary)
{
    struct outbox_cursor out = {-1, -1};
    CHECK_EQ(ledger_cursor_after(rows, n, i, from, &out), 1);
    CHECK_EQ(out.urgent, urgent);
    CHECK_EQ(out.ordinary, ordinary);
}

static void test_cursor_after(void)
{
    struct outbox_cursor from = {0, 0}, out = {-1, -1};
    /* urgent rows first, then ordinary ones */
    struct outbox_row a[] = {row(OUTBOX_URGENT, 3), row(OUTBOX_URGENT, 4), row(OUTBOX_ORDINARY, 2),
                             row(OUTBOX_ORDINARY, 9)};
    stops_at(a, 4, 0, &from, 3, 0);
    stops_at(a, 4, 1, &from, 4, 0);
    stops_at(a, 4, 2, &from, 4, 2);
    stops_at(a, 4, 3, &from, 4, 9);

    /* the urgent lane holds two priorities: stopping after seq 7 would
     * skip seq 5 of the same lane, so it may not stop there */
    struct outbox_row b[] = {row(0, 7), row(1, 5), row(OUTBOX_ORDINARY, 1)};
    CHECK_EQ(ledger_cursor_after(b, 3, 0, &from, &out), 0);
    CHECK_EQ(out.urgent, -1); /* untouched */
    CHECK_EQ(out.ordinary, -1);
    stops_at(b, 3, 1, &from, 7, 0);

    /* the cursor starts where the segment starts */
    struct outbox_cursor mid = {10, 20};
    struct outbox_row c[] = {row(OUTBOX_ORDINARY, 21), row(OUTBOX_ORDINARY, 22)};
    stops_at(c, 2, 0, &mid, 10, 21);
    /* in place, as the segmenter calls it */
    CHECK_EQ(ledger_cursor_after(c, 2, 1, &mid, &mid), 1);
    CHECK_EQ(mid.urgent, 10);
    CHECK_EQ(mid.ordinary, 22);
}

static uint64_t records_in(const char *path)
{
    struct segment *sg = NULL;
    struct op_error err;
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len;
    uint64_t n = 0;
    while (segment_next_record(sg, &entity, &op, &json, &len, &err) == 1)
        n++;
    segment_close(sg);
    return n;
}

static void test_cut(void)
{
    fx_fresh("cut");
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    struct sync_segment sg;
    int made = -1;
    /* the first call records the policy in force; after that, with
     * nothing to cut, nothing changes */
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    char *before = fx_snapshot();
    made = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    fx_check_unchanged(before);
    sync_ledger_close(l);

    for (int i = 0; i < 600; i++) {
        char name[32];
        snprintf(name, sizeof name, "Person %d", i);
        free(fx_contact(name));
    }
    l = fx_open(4000); /* small segments */
    uint64_t prev_u = 0, prev_o = 0, total = 0, no = 0;
    int segments = 0;
    for (;;) {
        CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
        if (!made)
            break;
        segments++;
        CHECK_EQ(sg.no, ++no);
        CHECK_EQ(sg.from_urgent, prev_u);
        CHECK_EQ(sg.from_ordinary, prev_o);
        CHECK(sg.to_ordinary > sg.from_ordinary);
        CHECK_EQ(sg.state, SYNC_SEG_SPOOLED);
        CHECK_EQ(sg.created_ms, fx_now);
        CHECK(fx_exists(sg.path));
        CHECK_EQ(records_in(sg.path), sg.records);
        prev_u = sg.to_urgent;
        prev_o = sg.to_ordinary;
        total += sg.records;
    }
    CHECK(segments > 1);
    CHECK_EQ(total, 600);
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.spool_segments, (uint64_t)segments);
    CHECK_EQ(s.next_segment, no + 1);
    CHECK_EQ(s.outbox_depth, 600); /* nothing leaves the outbox before a receipt */
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();
    test_cursor_after();
    test_cut();
    return fx_teardown();
}
