/*
 * The mailbox (docs/SYNC.md, "The sync ledger", Mailbox): what HQ sends the
 * node. The invariant: every message's MAC is verified before anything is
 * stored, and the messages and the advanced cursor commit in one
 * transaction. A policy message is judged against the policy in force
 * (appliance/uplink/policy_change.h): one that loosens nothing takes effect at
 * once, one that loosens anything waits for a person at the node, one that
 * is not a valid policy of the node's region is refused.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node_policy.h"
#include "policy_change.h"
#include "residency.h"
#include "sync_mac.h"

int sync_ledger_mailbox_after(struct sync_ledger *l, uint64_t *after, struct op_error *err)
{
    struct ledger_state s;
    int rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0)
        return rc;
    *after = s.mailbox_after;
    return 0;
}

/* A policy took effect on the node (a policy from HQ that loosened
 * nothing): from now on the ledger segments under it, and nothing
 * segmented under the old rules may leave. A failed reload is not fatal
 * here: the caller reports *policy_changed and the uplink reloads (and
 * logs) as after SIGHUP. */
static int policy_took_effect(struct sync_ledger *l, const char *why, struct op_error *err)
{
    struct policy *np = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    if (node_policy_load(l->policy_file, l->db_path, store_region(l->s), &np, &e2) == 0) {
        policy_free(l->p);
        l->p = np;
    }
    /* Nothing cut under the old rules may leave; every record is cut
     * again under the ones in force (the segmenter also checks this before
     * every segment, in case the reload above failed). */
    return store_policy_changed(l->s, l->p->hash, why, NULL, err);
}

/* A policy message from HQ (docs/REGION_POLICY.md, "Policies from HQ"),
 * judged against the policy in force now: one that loosens nothing is
 * written as policy-override.yaml and, when that puts it in force,
 * recorded in the policy ledger (*took_effect = 1); one that loosens
 * anything waits as `pending` for a person at the node; one that does not
 * load for our region is `refused`. Any valid one supersedes older pending
 * ones. Runs inside the mailbox transaction; the override is written
 * before it commits (a crash in between re-reads the message, and an
 * identical policy is then the one in force). */
static int apply_policy_msg(struct sync_ledger *l, uint64_t seq, const char *body, size_t len,
                            const char **status, char *reason, size_t cap, int *took_effect,
                            struct sync_ledger_news *pending, struct op_error *err)
{
    const char *region = store_region(l->s);
    *took_effect = 0;
    /* The policy in force on disk (an acceptance at the node may be newer
     * than our copy); if it cannot be read, the one we enforce. */
    struct policy *cur = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    if (node_policy_load(l->policy_file, l->db_path, region, &cur, &e2) < 0)
        cur = NULL;
    const struct policy *in_force = cur ? cur : l->p;
    struct policy_offer o;
    int rc = policy_change_judge(in_force, seq, body, len, &o, err);
    if (rc == 0 && o.verdict != POLICY_OFFER_REFUSED)
        rc = policy_change_supersede(l->s, seq, err);
    if (rc < 0)
        goto out;
    if (o.verdict != POLICY_OFFER_REFUSED)
        pending->pending_seq = 0; /* superseded */
    snprintf(reason, cap, "%s", o.reason);
    switch (o.verdict) {
    case POLICY_OFFER_REFUSED:
        *status = "refused";
        break;
    case POLICY_OFFER_SAME:
        *status = "applied";
        break;
    case POLICY_OFFER_PENDING:
        *status = "pending";
        pending->pending_seq = seq;
        snprintf(pending->pending_hash, sizeof pending->pending_hash, "%s", o.hash);
        pending->pending_loosens = o.loosens;
        break;
    case POLICY_OFFER_APPLY: {
        *status = "applied";
        rc = policy_change_write_override(l->db_path, body, len, err);
        if (rc < 0)
            goto out;
        struct policy *now = NULL;
        op_error_clear(&e2);
        if (node_policy_load(l->policy_file, l->db_path, region, &now, &e2) == 0 &&
            !strcmp(now->hash, o.hash)) {
            rc = policy_change_record(l->s, POLICY_CHANGE_AUTO, POLICY_CHANGE_AUTO_ACTOR,
                                      in_force->hash, o.hash, seq, o.reason, err);
            *took_effect = rc == 0;
        } else if (now) {
            snprintf(reason, cap,
                     "written to %s, but not in force: %.400s names the policy the node obeys",
                     NODE_POLICY_OVERRIDE, now->path);
        } else {
            snprintf(reason, cap, "written to %s, but the policy in force cannot be read: %.400s",
                     NODE_POLICY_OVERRIDE, e2.msg);
        }
        policy_free(now);
        break;
    }
    }
out:
    policy_free(cur);
    return rc;
}

int sync_ledger_mailbox_store(struct sync_ledger *l, const char *json, size_t len,
                              int *policy_changed, struct op_error *err)
{
    if (len > LEDGER_JSON_MAX)
        return op_error_set(err, -EBADMSG, "mailbox", "mailbox answer is %zu bytes, over the cap",
                            len);
    json_error_t je;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    json_t *msgs = json_object_get(r, "messages");
    int rc = 0;
    if (!json_is_object(r) || !json_is_array(msgs)) {
        rc = op_error_set(err, -EBADMSG, "messages", "mailbox answer has no messages array%s%s",
                          r ? "" : ": ", r ? "" : je.text);
        goto out;
    }
    uint64_t after = 0;
    rc = sync_ledger_mailbox_after(l, &after, err);
    if (rc < 0)
        goto out;
    /* Verify everything before storing anything. */
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        uint64_t seq = 0;
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *jb = json_object_get(m, "body");
        const char *body = json_string_value(jb);
        const char *mac = json_string_value(json_object_get(m, "mac"));
        char want[SYNC_MAC_HEX];
        if (!json_is_object(m) || ledger_get_u64(m, "seq", &seq) < 0 || !kind || !body || !mac) {
            rc = op_error_set(err, -EBADMSG, "messages",
                              "mailbox message %zu lacks seq, kind, body or mac", i);
            goto out;
        }
        if (sync_mailbox_mac(l->cred.hq_key, l->cred.node_id, seq, kind, body,
                             json_string_length(jb), want) < 0 ||
            !sync_mac_equal(mac, want)) {
            rc = op_error_set(err, -EBADMSG, "mac",
                              "mailbox message %" PRIu64 ": MAC does not verify", seq);
            goto out;
        }
    }
    int64_t now = ledger_now(l);
    uint64_t last = after;
    int changed = 0;
    struct sync_ledger_news pending; /* news once the transaction commits */
    memset(&pending, 0, sizeof pending);
    rc = store_begin(l->s, err);
    if (rc < 0)
        goto out;
    json_array_foreach(msgs, i, m)
    {
        uint64_t seq = 0;
        (void)ledger_get_u64(m, "seq", &seq);
        if (seq <= after)
            continue; /* stored before */
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *jb = json_object_get(m, "body");
        const char *created = json_string_value(json_object_get(m, "created_at"));
        const char *status = "pending";
        char reason[POLICY_CHANGE_SUMMARY_MAX] = "";
        if (!strcmp(kind, "policy")) {
            int took = 0;
            rc = apply_policy_msg(l, seq, json_string_value(jb), json_string_length(jb), &status,
                                  reason, sizeof reason, &took, &pending, err);
            if (rc < 0)
                break;
            changed |= took;
        } else if (strcmp(kind, "reference") && strcmp(kind, "aggregate_request")) {
            status = "refused";
            snprintf(reason, sizeof reason, "unknown message kind '%.64s'", kind);
        }
        sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_MAILBOX_STORE_MESSAGE, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
            break;
        }
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, created ? created : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, json_string_value(jb), (int)json_string_length(jb), SQLITE_STATIC);
        sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, now);
        rc = sql_run(&l->q, UPLINK_Q_LEDGER_MAILBOX_STORE_MESSAGE, st, err);
        if (rc < 0)
            break;
        rc = 0;
        if (seq > last)
            last = seq;
    }
    if (rc == 0) {
        sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_MAILBOX_ADVANCE, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)last);
            rc = sql_run(&l->q, UPLINK_Q_LEDGER_MAILBOX_ADVANCE, st, err);
            rc = rc < 0 ? rc : 0;
        }
    }
    rc = ledger_end_tx(l, rc, err);
    if (rc == 0 && pending.pending_seq) {
        l->news.pending_seq = pending.pending_seq;
        memcpy(l->news.pending_hash, pending.pending_hash, sizeof l->news.pending_hash);
        l->news.pending_loosens = pending.pending_loosens;
    }
    if (rc == 0 && changed)
        rc = policy_took_effect(l, "a policy from HQ took effect", err);
    if (rc == 0)
        *policy_changed = changed;
out:
    json_decref(r);
    return rc;
}
