/*
 * Tests for appliance/io/call_list.c: the header row, one row a call with
 * the E.164 number kept (its '+' is not a formula), a script that a
 * spreadsheet would run written as text, quotes and newlines in cells
 * quoted, the file readable by its owner only and no temporary file left;
 * a path that cannot be written leaves nothing behind. The call window:
 * the hours a region's quiet hours for calls leave, in its time zone.
 */
#include "call_list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_write(void)
{
    char dir[] = "/tmp/outpost-calls.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/calls.csv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct outreach_handout h = {.channel = "call"};
    h.rows = calloc(2, sizeof *h.rows);
    h.n = 2;
    h.rows[0].id = 7;
    snprintf(h.rows[0].phone, sizeof h.rows[0].phone, "+4930901820");
    snprintf(h.rows[0].language, sizeof h.rows[0].language, "de");
    h.rows[0].body = strdup("=HYPERLINK(\"http://x\")");
    h.rows[0].subject = strdup("s");
    h.rows[0].contact = json_pack("{s:s, s:s}", "given_name", "Jürgen", "family_name", "Weiß");
    h.rows[0].decision.state = CONSENT_GRANTED;
    snprintf(h.rows[0].decision.rule, sizeof h.rows[0].decision.rule, "EU-DE call: granted");
    h.rows[1].id = 8;
    snprintf(h.rows[1].phone, sizeof h.rows[1].phone, "+254712345678");
    h.rows[1].body = strdup("Habari, \"rafiki\"\nline two");
    h.rows[1].subject = strdup("s");
    h.rows[1].contact = json_pack("{s:s}", "family_name", "Otieno");
    h.rows[1].decision.state = CONSENT_NONE;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(call_list_write(path, &h, "09:00-20:00", &err), 0);
    const char *text = slurp(path);
    CHECK(text != NULL);
    CHECK_CONTAINS(text, CALL_LIST_COLUMNS "\r\n");
    CHECK_CONTAINS(text, "7,Jürgen Weiß,\"+4930901820\",de,\"'=HYPERLINK(\"\"http://x\"\")\","
                         "granted,EU-DE call: granted,09:00-20:00\r\n");
    CHECK_CONTAINS(text, "8,Otieno,\"+254712345678\",,\"Habari, \"\"rafiki\"\"\nline two\",none,,");
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK(access(tmp, F_OK) != 0);
    unlink(path);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/calls.csv", dir);
    op_error_clear(&err);
    CHECK(call_list_write(bad, &h, "", &err) < 0);
    CHECK_CONTAINS(err.msg, "cannot write");
    CHECK_STR(err.field, "out");
    outreach_handout_free(&h);
    rmdir(dir);
}

static void test_window(void)
{
    struct quiet_hours q;
    char why[200], w[CALL_LIST_WINDOW_MAX];
    /* quiet across midnight: calls in the day */
    CHECK_EQ(quiet_hours_parse("21:00-08:00", &q, why, sizeof why), 0);
    call_list_window(&q, "America/Los_Angeles", w, sizeof w);
    CHECK_STR(w, "08:00-21:00 America/Los_Angeles");
    CHECK_EQ(quiet_hours_parse("20:00-09:30", &q, why, sizeof why), 0);
    call_list_window(&q, "Europe/Berlin", w, sizeof w);
    CHECK_STR(w, "09:30-20:00 Europe/Berlin");
    /* quiet at midday: the window crosses midnight and says so by its order */
    CHECK_EQ(quiet_hours_parse("12:00-13:15", &q, why, sizeof why), 0);
    call_list_window(&q, "Africa/Nairobi", w, sizeof w);
    CHECK_STR(w, "13:15-12:00 Africa/Nairobi");
    /* no quiet hours for calls: no window, not a made-up one */
    struct quiet_hours none = {0};
    snprintf(w, sizeof w, "stale");
    call_list_window(&none, "Europe/Berlin", w, sizeof w);
    CHECK_STR(w, "");
    call_list_window(NULL, "Europe/Berlin", w, sizeof w);
    CHECK_STR(w, "");
    /* a short buffer is cut, never overrun */
    char small[6];
    CHECK_EQ(quiet_hours_parse("21:00-08:00", &q, why, sizeof why), 0);
    call_list_window(&q, "America/Los_Angeles", small, sizeof small);
    CHECK_STR(small, "08:00");
}

int main(void)
{
    RUN(test_write);
    RUN(test_window);
    return tl_report();
}
