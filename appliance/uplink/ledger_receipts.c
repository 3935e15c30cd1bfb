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
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = ledger_prep(db, "DELETE FROM spool_voided WHERE no = ?1", &st,
                         "cannot forget a voided segment", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    rc = ledger_done(db, st, "cannot forget a voided segment", err);
    if (rc == 0)
        *voided = sqlite3_changes(db) > 0;
    return rc;
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
    rc = ledger_get_segment(store_db(l->s), no, &seg, err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        int voided = 0;
        rc = forget_voided(l, no, &voided, err);
        if (rc == 0 && !voided)
            rc = op_error_set(err, -ENOENT, "segment", "no segment %" PRIu64 " in the ledger", no);
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

    sqlite3 *db = store_db(l->s);
    int64_t now = ledger_now(l);
    rc = store_begin(l->s, err);
    if (rc < 0)
        goto out;
    sqlite3_stmt *st;
    if (applied) {
        struct outbox_cursor upto = {(int64_t)to_u, (int64_t)to_o};
        rc = outbox_ack(l->s, &upto, now, err);
        if (rc == 0)
            rc = ledger_prep(db, "UPDATE sync_segments SET state = 2, acked_ms = ?2 WHERE no = ?1",
                             &st, "cannot mark the segment acknowledged", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
            sqlite3_bind_int64(st, 2, now);
            rc = ledger_done(db, st, "cannot mark the segment acknowledged", err);
        }
        if (rc == 0)
            rc = ledger_prep(
                db,
                "UPDATE sync_state SET acked_urgent = max(acked_urgent, ?1), "
                "acked_ordinary = max(acked_ordinary, ?2), last_sync_ms = ?3 WHERE id = 1",
                &st, "cannot advance the acknowledged cursor", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)to_u);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)to_o);
            sqlite3_bind_int64(st, 3, now);
            rc = ledger_done(db, st, "cannot advance the acknowledged cursor", err);
        }
    } else {
        char why[256];
        snprintf(why, sizeof why, "segment %" PRIu64 " rejected by HQ: %.200s", no,
                 reason && *reason ? reason : "(no reason given)");
        rc = ledger_prep(
            db, "UPDATE sync_segments SET state = 3, reason = ?2, acked_ms = ?3 WHERE no = ?1", &st,
            "cannot mark the segment rejected", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
            sqlite3_bind_text(st, 2, reason ? reason : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, now);
            rc = ledger_done(db, st, "cannot mark the segment rejected", err);
        }
        if (rc == 0)
            rc = ledger_set_blocked(l, "rejected", why, l->p->hash, err);
    }
    if (rc < 0) {
        store_rollback(l->s);
        goto out;
    }
    rc = store_commit(l->s, err);
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
