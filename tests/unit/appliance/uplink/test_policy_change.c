/* Unit tests for appliance/uplink/policy_change.c on a real node database: an
 * offer is judged refused / same / apply / pending against the policy in
 * force; the pending policy is found and loaded; acceptance needs the
 * pending policy's exact hash, writes the override atomically, marks the
 * message and records who accepted what; a wrong hash, nothing pending or
 * a text that no longer loads changes nothing; the ledger is append-only
 * and lists the newest entries. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "node_policy.h"
#include "outpost_config.h"
#include "policy.h"
#include "policy_change.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

static char dbp[FX_PATH_MAX];
static struct store *st;
static char *profile; /* the EU-DE profile's text */
static size_t profile_len;

static void fresh(const char *name)
{
    char d[FX_PATH_MAX], db[FX_PATH_MAX / 2];
    mkdir(fx_path(d, sizeof d, name), 0700);
    snprintf(db, sizeof db, "%s/node.db", name);
    store_close(st);
    st = fx_store(db);
    snprintf(dbp, sizeof dbp, "%s", fx_db);
}

static void put_msg(uint64_t seq, const char *status, const char *body)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_db(st),
                           "INSERT INTO mailbox (seq, kind, created_at, body, status, reason, "
                           "received_ms) VALUES (?1, 'policy', 'x', ?2, ?3, 'r', 1)",
                           -1, &q, NULL) != SQLITE_OK)
        fx_die("prepare", NULL);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
    sqlite3_bind_text(q, 2, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, status, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        fx_die("insert", NULL);
    sqlite3_finalize(q);
}

static const char *one_text(const char *sql)
{
    static char buf[1024];
    sqlite3_stmt *q;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return buf;
}

static struct policy *in_force(void)
{
    struct policy *p = NULL;
    struct op_error err;
    if (node_policy_load(NULL, dbp, "EU-DE", &p, &err) < 0)
        fx_die("node_policy_load", &err);
    return p;
}

static void test_judge(void)
{
    fresh("judge");
    struct policy *cur = in_force();
    struct policy_offer o;
    struct op_error err;
    CHECK_EQ(policy_change_judge(cur, 3, "format: nope\n", 13, &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_REFUSED);
    CHECK_CONTAINS(o.reason, "not a valid policy for region EU-DE: policy message 3 from HQ:1:");
    CHECK_STR(o.hash, "");

    CHECK_EQ(policy_change_judge(cur, 4, profile, profile_len, &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_SAME);

    char *c = fx_edit(profile, "format:", "# only a comment\nformat:");
    CHECK_EQ(policy_change_judge(cur, 5, c, strlen(c), &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_APPLY);
    CHECK_STR(o.reason, "no change of substance (0 neutral)");
    CHECK_EQ(strlen(o.hash), 64);

    char *t = fx_edit(profile, "contact.phone: {class: pseudonymize",
                      "contact.phone: {class: local_only");
    CHECK_EQ(policy_change_judge(cur, 6, t, strlen(t), &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_APPLY);
    CHECK_EQ(o.tightens, 1);

    char *l = fx_edit(t, "contact.given_name: {class: pseudonymize",
                      "contact.given_name: {class: exportable");
    CHECK_EQ(policy_change_judge(cur, 7, l, strlen(l), &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_PENDING);
    CHECK_EQ(o.loosens, 1);
    CHECK_EQ(o.tightens, 1);
    CHECK_CONTAINS(o.reason, "contact.given_name: pseudonymize -> exportable (loosens)");

    /* another region's profile: refused, naming the region */
    char kp[400];
    size_t klen = 0;
    snprintf(kp, sizeof kp, "%s/KE.yaml", OUTPOST_SOURCE_REGIONS_DIR);
    char *ke = fx_read_file(kp, &klen);
    CHECK_EQ(policy_change_judge(cur, 8, ke, klen, &o, &err), 0);
    CHECK_EQ(o.verdict, POLICY_OFFER_REFUSED);
    CHECK_CONTAINS(o.reason, "region: \"KE\" is not EU-DE");
    free(ke);
    free(c);
    free(t);
    free(l);
    policy_free(cur);
}

static int count_cb(void *ctx, const struct policy_ledger_entry *e)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s%s:%s:%" PRIu64, n ? "," : "", e->kind, e->actor, e->seq);
    return 0;
}

static void test_pending_and_accept(void)
{
    fresh("accept");
    struct op_error err;
    struct policy_accept a;
    struct policy_pending pp;
    int found = -1;
    char over[400];
    CHECK_EQ(node_policy_override_path(dbp, over, sizeof over), 0);

    /* nothing pending */
    CHECK_EQ(policy_change_pending(st, &pp, &found, &err), 0);
    CHECK_EQ(found, 0);
    policy_pending_done(&pp);
    char hash[65];
    memset(hash, 'a', 64);
    hash[64] = '\0';
    CHECK_EQ(policy_change_accept(st, dbp, NULL, hash, "cli:test", &a, &err), -ENOENT);
    CHECK_STR(err.field, "pending");
    CHECK_EQ(policy_change_accept(st, dbp, NULL, "abc", "cli:test", &a, &err), -EINVAL);
    CHECK_STR(err.field, "hash");
    CHECK_CONTAINS(err.msg, "'abc' is not a policy hash (64 hex digits");

    char *l = fx_edit(profile, "contact.given_name: {class: pseudonymize",
                      "contact.given_name: {class: exportable");
    char *l2 =
        fx_edit(l, "contact.email: {class: pseudonymize", "contact.email: {class: exportable");
    put_msg(6, "pending", l);
    put_msg(7, "pending", l2);
    CHECK_EQ(policy_change_pending(st, &pp, &found, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(pp.seq, 7);
    CHECK(pp.p != NULL);
    char want[65];
    snprintf(want, sizeof want, "%s", pp.p ? pp.p->hash : "");
    CHECK_EQ(pp.len, strlen(l2));
    policy_pending_done(&pp);

    /* the older one's hash is not the one waiting */
    struct policy *p6 = NULL;
    CHECK_EQ(policy_change_load_text("m6", "EU-DE", l, strlen(l), &p6, &err), 0);
    CHECK_EQ(policy_change_accept(st, dbp, NULL, p6->hash, "cli:test", &a, &err), -ENOENT);
    CHECK_STR(err.field, "hash");
    CHECK_CONTAINS(err.msg, "the one waiting (policy message 7) is");
    CHECK_CONTAINS(err.msg, want);
    CHECK(access(over, F_OK) != 0);
    policy_free(p6);

    /* accepted by its hash, in capitals too */
    struct policy *before = in_force();
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
    CHECK_EQ(policy_change_accept(st, dbp, NULL, upper, "cli:test", &a, &err), 0);
    CHECK_EQ(a.seq, 7);
    CHECK_STR(a.new_hash, want);
    CHECK_STR(a.old_hash, before->hash);
    CHECK_STR(a.path, over);
    CHECK_EQ(a.loosens, 2);
    CHECK_CONTAINS(a.summary, "2 loosen, 0 tighten");
    struct policy *after = in_force();
    CHECK_STR(after->hash, want);
    CHECK_STR(after->path, over);
    struct stat sb;
    CHECK_EQ(stat(over, &sb), 0);
    CHECK_EQ(sb.st_mode & 0777, 0640);
    CHECK_STR(one_text("SELECT status || ':' || reason FROM mailbox WHERE seq = 7"),
              "applied:accepted at the node by cli:test");
    CHECK_STR(one_text("SELECT status FROM mailbox WHERE seq = 6"), "pending");
    char row[300];
    snprintf(row, sizeof row, "accepted:cli:test:%s:%s:7", before->hash, want);
    CHECK_STR(one_text("SELECT kind || ':' || actor || ':' || old_hash || ':' || new_hash || ':' "
                       "|| mailbox_seq FROM policy_ledger"),
              row);
    CHECK_CONTAINS(one_text("SELECT summary FROM policy_ledger"),
                   "contact.given_name: pseudonymize -> exportable (loosens)");
    policy_free(before);
    policy_free(after);
    /* 6 still waits (older); it is what is pending now */
    CHECK_EQ(policy_change_pending(st, &pp, &found, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(pp.seq, 6);
    policy_pending_done(&pp);
    /* supersede: 6 goes when 8 arrives */
    CHECK_EQ(policy_change_supersede(st, 8, &err), 0);
    CHECK_EQ(policy_change_pending(st, &pp, &found, &err), 0);
    CHECK_EQ(found, 0);
    policy_pending_done(&pp);
    CHECK_STR(one_text("SELECT status || ':' || reason FROM mailbox WHERE seq = 6"),
              "refused:superseded by policy message 8 from HQ");

    /* the ledger: append-only, newest entries, oldest first */
    CHECK_EQ(policy_change_record(st, POLICY_CHANGE_AUTO, POLICY_CHANGE_AUTO_ACTOR, "a", "b", 9,
                                  "s", &err),
             0);
    CHECK(sqlite3_exec(store_db(st), "UPDATE policy_ledger SET actor = 'x'", NULL, NULL, NULL) !=
          SQLITE_OK);
    CHECK(sqlite3_exec(store_db(st), "DELETE FROM policy_ledger", NULL, NULL, NULL) != SQLITE_OK);
    char list[512] = "";
    uint64_t total = 0;
    CHECK_EQ(policy_change_ledger(st, 0, count_cb, list, &total, &err), 0);
    CHECK_STR(list, "accepted:cli:test:7,auto-tightened:hq:9");
    CHECK_EQ(total, 2);
    list[0] = '\0';
    CHECK_EQ(policy_change_ledger(st, 1, count_cb, list, &total, &err), 0);
    CHECK_STR(list, "auto-tightened:hq:9");

    /* a pending text that no longer loads: a precise error, nothing written */
    put_msg(10, "pending",
            "format: outpost-region-policy/1\nregion: EU-DE\ncountry: ZZ\n"
            "default_class: local_only\ndefault_basis: x\n");
    CHECK_EQ(policy_change_pending(st, &pp, &found, &err), 0);
    CHECK_EQ(found, 1);
    CHECK(pp.p == NULL);
    CHECK_CONTAINS(pp.load_error, "policy message 10 from HQ:3: country:");
    policy_pending_done(&pp);
    CHECK_EQ(policy_change_accept(st, dbp, NULL, want, "cli:test", &a, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "policy message 10 from HQ:3: country:");
    free(l);
    free(l2);
}

static void test_files(void)
{
    fresh("files");
    struct op_error err;
    char path[400];
    snprintf(path, sizeof path, "%s/files/offer.txt", fx_dir);
    FILE *f = fopen(path, "w");
    fputs("format: outpost-region-policy/1\nregion: EU-DE\ncountry: DE\ndefault_class: nope\n"
          "default_basis: x\n",
          f);
    fclose(f);
    struct policy *p = NULL;
    CHECK_EQ(policy_change_load_file(path, "EU-DE", &p, &err), -EINVAL);
    char want[512];
    snprintf(want, sizeof want, "%s:4: default_class:", path);
    CHECK_CONTAINS(err.msg, want);
    CHECK_EQ(policy_change_load_file("/nonexistent/x.yaml", "EU-DE", &p, &err), -ENOENT);
    CHECK_EQ(policy_change_load_file(fx_dir, "EU-DE", &p, &err), -EINVAL);
    /* the override: written whole, replacing the last one */
    CHECK_EQ(policy_change_write_override(dbp, "abc", 3, &err), 0);
    CHECK_EQ(policy_change_write_override(dbp, profile, profile_len, &err), 0);
    char over[400];
    CHECK_EQ(node_policy_override_path(dbp, over, sizeof over), 0);
    size_t n = 0;
    char *got = fx_read_file(over, &n);
    CHECK(got && n == profile_len && !memcmp(got, profile, n));
    free(got);
}

int main(void)
{
    fx_tmpdir("polchange");
    unsetenv("OUTPOST_POLICY");
    char path[FX_PATH_MAX];
    profile = fx_read_file(fx_profile_path("EU-DE", path, sizeof path), &profile_len);
    if (!profile)
        fx_die("cannot read the EU-DE profile", NULL);
    RUN(test_judge);
    RUN(test_pending_and_accept);
    RUN(test_files);
    store_close(st);
    free(profile);
    return fx_finish();
}
