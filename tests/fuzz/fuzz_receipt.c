/*
 * libFuzzer target for receipts as the node verifies them
 * (sync_ledger_apply_receipt, appliance/uplink/ledger_receipts.c): HQ's
 * word on one segment, applied to the node of fuzz_ledger.h, whose
 * segment 1 is spooled and not yet acknowledged.
 *
 * Byte 0 of the input: bit 0 signs the receipt (the rest, if it is a JSON
 * object with node, segment, status and to.urgent/to.ordinary, gets the
 * "mac" HQ would give it under the node's key, so the checks behind the
 * MAC are reached); bits 1-2 pick the segment number the node asks about
 * (1, 2, 0, 2^64-1). The rest is the receipt.
 *
 * Beyond "no crash, no leak, no overflow" it checks the module's
 * promises: a receipt whose MAC does not verify is refused; a refusal is
 * -EBADMSG (or -ENOENT for a segment the ledger does not know) naming the
 * field, with the outcome untouched and nothing changed (cursors, counts,
 * blocked, spool file); an applied receipt acknowledges exactly its range
 * and removes the spool file; a rejected one blocks sync with a reason.
 * After an input that changed the node, the fixture is built again.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_receipt -max_len=4000 tests/fuzz/corpus/receipt
 * Seeds name node "fuzz-node-1" and segment 1 with to {urgent 0,
 * ordinary 2}, the fixture's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ledger.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fzl_setup();
    return 0;
}

/* The MAC HQ would give this receipt, if it has the fields to compute
 * one; 0 and mac filled, or -1. */
static int receipt_mac(json_t *r, char mac[SYNC_MAC_HEX])
{
    const char *node = json_string_value(json_object_get(r, "node"));
    const char *status = json_string_value(json_object_get(r, "status"));
    json_t *to = json_object_get(r, "to");
    uint64_t seg, tu, tor;
    if (!node || !status || fzl_u64(r, "segment", &seg) < 0 || fzl_u64(to, "urgent", &tu) < 0 ||
        fzl_u64(to, "ordinary", &tor) < 0)
        return -1;
    return sync_receipt_mac(fzl_cred.hq_key, node, seg, status, tu, tor, mac) < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000)
        return 0;
    static const uint64_t nos[] = {1, 2, 0, UINT64_MAX};
    int sign = data[0] & 1;
    uint64_t no = nos[(data[0] >> 1) & 3];
    const char *json = (const char *)data + 1;
    size_t len = size - 1;

    /* Signed: the same receipt with HQ's MAC. Either way, whether its MAC
     * is the right one. */
    char *signed_text = NULL;
    int authentic = 0;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    char mac[SYNC_MAC_HEX];
    if (json_is_object(r) && receipt_mac(r, mac) == 0) {
        if (sign) {
            json_object_set_new(r, "mac", json_string(mac));
            signed_text = json_dumps(r, JSON_COMPACT);
            must(signed_text != NULL, "memory");
            json = signed_text;
            len = strlen(signed_text);
        }
        authentic = sync_mac_equal(json_string_value(json_object_get(r, "mac")), mac) || sign;
    }
    json_decref(r);

    struct fzl_view before, after;
    fzl_look(&before);
    int outcome = -1;
    struct op_error err;
    op_error_clear(&err);
    int rc = sync_ledger_apply_receipt(fzl, no, json, len, &outcome, &err);
    fzl_look(&after);
    free(signed_text);

    if (!authentic)
        must(rc < 0, "a receipt without a valid MAC is refused");
    if (rc < 0) {
        must(rc == -EBADMSG || rc == -ENOENT, "a refusal is -EBADMSG or -ENOENT");
        must(err.code == rc && err.field[0] && err.msg[0], "a refusal names the field");
        must(outcome == -1, "a refusal leaves the outcome untouched");
        must(fzl_same(&before, &after), "a refused receipt changes nothing");
        return 0;
    }
    must(rc == 0, "success is 0");
    must(no == fzl_seg.no, "only the ledger's segment is settled");
    if (outcome == SYNC_SEG_ACKED) {
        must(after.st.acked_urgent == fzl_seg.to_urgent &&
                 after.st.acked_ordinary == fzl_seg.to_ordinary,
             "an applied receipt acknowledges exactly its range");
        must(after.st.segments_acked == before.st.segments_acked + 1, "the segment is acked");
        must(after.st.outbox_depth < before.st.outbox_depth, "the range left the outbox");
        must(!after.spool_file, "an applied segment's file is removed");
        must(!after.st.blocked[0], "an applied receipt blocks nothing");
    } else {
        must(outcome == SYNC_SEG_REJECTED, "the outcome is acked or rejected");
        must(after.st.segments_rejected == before.st.segments_rejected + 1,
             "the segment is rejected");
        must(after.st.blocked[0] != '\0', "a rejection blocks sync with a reason");
        must(after.st.acked_ordinary == before.st.acked_ordinary &&
                 after.st.outbox_depth == before.st.outbox_depth,
             "a rejection acknowledges nothing");
        must(!after.spool_file, "a rejected segment's file is removed");
    }
    fzl_fresh();
    return 0;
}
