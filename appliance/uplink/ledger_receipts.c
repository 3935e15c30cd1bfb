/*
 * Receipts (docs/SYNC.md, "The sync ledger", Receipts): HQ's word on one
 * segment. The invariant: an outbox row leaves the outbox only through a
 * receipt whose MAC, node, segment number and `to` range all match;
 * anything else is -EBADMSG naming the field, with nothing changed. An
 * applied receipt acknowledges the range, the segment and the last sync in
 * one transaction and only then unlinks the file; a rejected one blocks
 * sync until a policy with another hash; a replay is harmless but must
 * agree.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sync_mac.h"

/* A receipt for a voided segment: HQ settled it before the node could stop
 * it (a restriction came after its last byte). Its range is being cut
 * again, so the cursor stays; HQ may hold its records (egress_sent kept
 * them), so withdraws follow for what is withheld now; there is nothing
 * left to terminate. */
static int forget_voided(struct sync_ledger *l, uint64_t no, int *voided, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_FORGET_VOIDED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_RECEIPTS_FORGET_VOIDED, st, err);
    if (rc < 0)
        return rc;
    *voided = rc > 0;
    return 0;
}

/* Segment `no` acknowledged up to (to_u, to_o) at `now`: it is marked,
 * and when no lower segment still waits for its receipt the outbox rows of
 * the settled prefix leave the outbox and the cursor advances (with two
 * uploads in flight N+1's receipt can come first: its rows leave with
 * N's). Inside the caller's transaction. */
static int acknowledge(struct sync_ledger *l, uint64_t no, uint64_t to_u, uint64_t to_o,
                       int64_t now, struct op_error *err)
{
    (void)to_u;
    (void)to_o;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_MARK_ACKED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    sqlite3_bind_int64(st, 2, now);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_RECEIPTS_MARK_ACKED, st, err);
    if (rc < 0)
        return rc;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_LOWER_WAITING, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    int64_t lower = 0;
    rc = sql_one_int64(&l->q, UPLINK_Q_LEDGER_RECEIPTS_LOWER_WAITING, st, "sync segments", &lower,
                       1, err);
    if (rc < 0)
        return rc;
    if (lower > 0)
        return 0; /* acknowledged with the lower segment's receipt */
    st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_ACKED_PREFIX, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int64_t upto_v[2] = {0, 0};
    rc = sql_one_int64(&l->q, UPLINK_Q_LEDGER_RECEIPTS_ACKED_PREFIX, st, "sync segments", upto_v, 2,
                       err);
    if (rc < 0)
        return rc;
    struct outbox_cursor upto = {upto_v[0], upto_v[1]};
    rc = outbox_ack(l->s, &upto, now, err);
    if (rc < 0)
        return rc;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_ADVANCE_ACKED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, upto_v[0]);
    sqlite3_bind_int64(st, 2, upto_v[1]);
    sqlite3_bind_int64(st, 3, now);
    rc = sql_run(&l->q, UPLINK_Q_LEDGER_RECEIPTS_ADVANCE_ACKED, st, err);
    return rc < 0 ? rc : 0;
}

/* The receipt's members for field-level deltas, checked before anything
 * changes: with "extras_mac" (an HQ that covers them) the MAC must verify
 * over "patch" and "needs_whole"; without it (an older HQ) a needs_whole
 * list is refused, since nothing vouches for it, and "patch" counts as
 * false. *patches: whether HQ applies patches. */
static int check_extras(struct sync_ledger *l, json_t *r, uint64_t segno, int *patches,
                        struct op_error *err)
{
    const char *mac = json_string_value(json_object_get(r, "extras_mac"));
    json_t *nw = json_object_get(r, "needs_whole");
    *patches = 0;
    if (!mac) {
        if (nw)
            return op_error_set(err, -EBADMSG, "needs_whole",
                                "receipt for segment %" PRIu64
                                " lists needs_whole without extras_mac: nothing vouches for it",
                                segno);
        return 0;
    }
    int patch = json_is_true(json_object_get(r, "patch"));
    char want[SYNC_MAC_HEX];
    if (sync_receipt_extras_mac(l->cred.hq_key, l->cred.node_id, segno, patch, nw, want) < 0 ||
        !sync_mac_equal(mac, want))
        return op_error_set(err, -EBADMSG, "extras_mac",
                            "receipt extras_mac (patch, needs_whole) does not verify under this "
                            "node's HQ key");
    *patches = patch;
    return 0;
}

/* What the receipt says about field-level deltas (docs/SYNC.md, "Nothing
 * new, nothing sent"), inside the caller's transaction: HQ holds what an
 * applied segment carried; the records whose patch HQ could not apply
 * ("needs_whole") are queued again to go whole; and whether HQ applies
 * patches at all ("patch": true under extras_mac; an HQ that does not say
 * so gets whole records only). check_extras passed. */
static int deltas(struct sync_ledger *l, uint64_t no, int applied, int patches, json_t *r,
                  struct op_error *err)
{
    int rc = ledger_deltas_settled(l, no, applied, err);
    json_t *nw = json_object_get(r, "needs_whole");
    size_t requeued = 0;
    if (rc == 0 && json_is_array(nw))
        rc = ledger_deltas_needs_whole(l, nw, &requeued, err);
    if (rc == 0)
        rc = ledger_deltas_set_patches(l, patches, err);
    return rc;
}

/* Segment `no` rejected for `reason` at `now`, and sync blocked. Inside
 * the caller's transaction. */
static int reject(struct sync_ledger *l, uint64_t no, const char *reason, int64_t now,
                  struct op_error *err)
{
    char why[256];
    snprintf(why, sizeof why, "segment %" PRIu64 " rejected by HQ: %.200s", no,
             reason && *reason ? reason : "(no reason given)");
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_RECEIPTS_MARK_REJECTED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    sqlite3_bind_text(st, 2, reason ? reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_RECEIPTS_MARK_REJECTED, st, err);
    if (rc < 0)
        return rc;
    return ledger_set_blocked(l, "rejected", why, l->p->hash, err);
}

int sync_ledger_apply_receipt(struct sync_ledger *l, uint64_t no, const char *json, size_t len,
                              int *outcome, struct op_error *err)
{
    if (len > LEDGER_JSON_MAX)
        return op_error_set(err, -EBADMSG, "receipt",
                            "receipt for segment %" PRIu64 " is %zu bytes, over the cap", no, len);
    json_error_t je;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(r)) {
        json_decref(r);
        return op_error_set(err, -EBADMSG, "receipt", "receipt is not a JSON object: %s", je.text);
    }
    int rc;
    const char *node = json_string_value(json_object_get(r, "node"));
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *mac = json_string_value(json_object_get(r, "mac"));
    const char *reason = json_string_value(json_object_get(r, "reason"));
    json_t *to = json_object_get(r, "to");
    uint64_t segno = 0, to_u = 0, to_o = 0;
    char want[SYNC_MAC_HEX];
    struct sync_segment seg;
    if (!node || strcmp(node, l->cred.node_id)) {
        rc = op_error_set(err, -EBADMSG, "node", "receipt is for node '%s', not this node",
                          node ? node : "");
        goto out;
    }
    if (ledger_get_u64(r, "segment", &segno) < 0 || segno != no) {
        rc = op_error_set(err, -EBADMSG, "segment", "receipt is not for segment %" PRIu64, no);
        goto out;
    }
    if (!status || (strcmp(status, "applied") && strcmp(status, "rejected"))) {
        rc = op_error_set(err, -EBADMSG, "status",
                          "receipt status '%s' is neither applied nor rejected",
                          status ? status : "");
        goto out;
    }
    if (!json_is_object(to) || ledger_get_u64(to, "urgent", &to_u) < 0 ||
        ledger_get_u64(to, "ordinary", &to_o) < 0) {
        rc = op_error_set(err, -EBADMSG, "to", "receipt has no valid to.urgent and to.ordinary");
        goto out;
    }
    if (!mac || sync_receipt_mac(l->cred.hq_key, node, segno, status, to_u, to_o, want) < 0 ||
        !sync_mac_equal(mac, want)) {
        rc = op_error_set(err, -EBADMSG, "mac",
                          "receipt MAC does not verify under this node's HQ key");
        goto out;
    }
    int patches = 0;
    if ((rc = check_extras(l, r, segno, &patches, err)) < 0)
        goto out;
    rc = ledger_get_segment(&l->q, no, &seg, err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        /* HQ settled a voided segment: if it applied it, HQ holds what it
         * carried (ledger_deltas.c), in the same transaction. */
        int voided = 0;
        rc = store_begin(l->s, err);
        if (rc == 0)
            rc = forget_voided(l, no, &voided, err);
        if (rc == 0 && !voided)
            rc = op_error_set(err, -ENOENT, "segment", "no segment %" PRIu64 " in the ledger", no);
        if (rc == 0)
            rc = deltas(l, no, !strcmp(status, "applied"), patches, r, err);
        rc = ledger_end_tx(l, rc, err);
        if (rc == 0)
            *outcome = SYNC_SEG_VOIDED;
        goto out;
    }
    if (seg.to_urgent != to_u || seg.to_ordinary != to_o) {
        rc = op_error_set(err, -EBADMSG, "to",
                          "receipt range (%" PRIu64 ", %" PRIu64 ") is not segment %" PRIu64
                          "'s (%" PRIu64 ", %" PRIu64 ")",
                          to_u, to_o, no, seg.to_urgent, seg.to_ordinary);
        goto out;
    }
    int applied = !strcmp(status, "applied");
    if (seg.state == SYNC_SEG_ACKED || seg.state == SYNC_SEG_REJECTED) {
        /* a replay: harmless, but it must agree */
        if ((seg.state == SYNC_SEG_ACKED) != applied) {
            rc = op_error_set(err, -EBADMSG, "status",
                              "receipt says %s, but the segment was settled otherwise", status);
            goto out;
        }
        ledger_unlink_spool(l, seg.path);
        *outcome = seg.state;
        rc = 0;
        goto out;
    }

    int64_t now = ledger_now(l);
    rc = store_begin(l->s, err);
    if (rc < 0)
        goto out;
    if (applied)
        rc = acknowledge(l, no, to_u, to_o, now, err);
    else
        rc = reject(l, no, reason, now, err);
    if (rc == 0)
        rc = deltas(l, no, applied, patches, r, err);
    rc = ledger_end_tx(l, rc, err);
    if (rc < 0)
        goto out;
    ledger_unlink_spool(l, seg.path);
    *outcome = applied ? SYNC_SEG_ACKED : SYNC_SEG_REJECTED;
out:
    json_decref(r);
    return rc;
}

int sync_ledger_forget_voided(struct sync_ledger *l, uint64_t no, struct op_error *err)
{
    int voided = 0;
    return forget_voided(l, no, &voided, err);
}
