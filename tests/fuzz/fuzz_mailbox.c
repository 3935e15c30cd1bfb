/*
 * libFuzzer target for mailbox answers as the node verifies and stores
 * them (sync_ledger_mailbox_store, appliance/uplink/ledger_mailbox.c):
 * the GET /v1/mailbox body, {"messages": [{"seq", "kind", "body", "mac",
 * "created_at"}...]}, given to the node of fuzz_ledger.h. A "policy"
 * message's body is a region policy judged against the one in force
 * (EU-DE's profile): the same, tighter (written as policy-override.yaml
 * and put in force), looser (kept pending) or not valid (refused).
 *
 * Byte 0 of the input: bit 0 signs every message that has seq, kind and
 * body (the "mac" HQ would give it under the node's key), so what lies
 * behind the MAC check is reached. The rest is the answer.
 *
 * Beyond "no crash, no leak, no overflow" it checks the module's
 * promises: an answer with any message whose MAC does not verify is
 * refused with -EBADMSG and nothing is stored (the mailbox cursor, the
 * ledger's counts, the spool and the override file are as before); a
 * refusal names its field; an accepted answer moves the cursor to the
 * highest new seq (never back), and *policy_changed is 0 or 1, 1 only
 * with an override file in place. After an input that changed the node,
 * the fixture is built again.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_mailbox -max_len=60000 tests/fuzz/corpus/mailbox
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

/* The MAC HQ would give message m; 0 and mac filled, or -1 when m lacks
 * what it is computed over. */
static int message_mac(json_t *m, char mac[SYNC_MAC_HEX])
{
    uint64_t seq;
    const char *kind = json_string_value(json_object_get(m, "kind"));
    json_t *body = json_object_get(m, "body");
    if (!json_is_object(m) || fzl_u64(m, "seq", &seq) < 0 || !kind || !json_is_string(body))
        return -1;
    return sync_mailbox_mac(fzl_cred.hq_key, fzl_cred.node_id, seq, kind, json_string_value(body),
                            json_string_length(body), mac) < 0
               ? -1
               : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 2000000)
        return 0;
    int sign = data[0] & 1;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;

    /* Whether every message is authentic (after signing, if asked), and
     * the highest seq the answer carries. */
    char *signed_text = NULL;
    int authentic = 1;
    uint64_t max_seq = 0;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *msgs = json_object_get(r, "messages");
    if (json_is_array(msgs)) {
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            char mac[SYNC_MAC_HEX];
            uint64_t seq = 0;
            if (message_mac(m, mac) < 0) {
                authentic = 0;
                continue;
            }
            if (sign)
                json_object_set_new(m, "mac", json_string(mac));
            else if (!sync_mac_equal(json_string_value(json_object_get(m, "mac")), mac))
                authentic = 0;
            if (fzl_u64(m, "seq", &seq) == 0 && seq > max_seq)
                max_seq = seq;
        }
        if (sign) {
            signed_text = json_dumps(r, JSON_COMPACT);
            must(signed_text != NULL, "memory");
            json = signed_text;
            len = strlen(signed_text);
        }
    } else {
        authentic = 0;
    }
    json_decref(r);

    struct fzl_view before, after;
    fzl_look(&before);
    int changed = 7;
    struct op_error err;
    op_error_clear(&err);
    int rc = sync_ledger_mailbox_store(fzl, json, len, &changed, &err);
    fzl_look(&after);
    free(signed_text);

    if (!authentic)
        must(rc < 0, "an answer with a message that does not verify is refused");
    if (rc < 0) {
        must(err.code == rc && err.msg[0], "a refusal has a code and a message");
        must(changed == 7, "a refusal leaves *policy_changed untouched");
        if (rc == -EBADMSG) {
            must(err.field[0] != '\0', "a refusal names its field");
            must(fzl_same(&before, &after), "a refused answer stores nothing");
        } else {
            /* a store or file error part way: the transaction is rolled
             * back, only an override written before it may remain */
            must(after.mailbox_after == before.mailbox_after, "a failed answer keeps the cursor");
            fzl_fresh();
        }
        return 0;
    }
    must(rc == 0, "success is 0");
    must(changed == 0 || changed == 1, "*policy_changed is 0 or 1");
    must(!changed || after.override_file, "a policy change comes with an override file");
    must(after.mailbox_after == (max_seq > before.mailbox_after ? max_seq : before.mailbox_after),
         "the cursor moves to the highest new seq");
    if (!fzl_same(&before, &after) || changed)
        fzl_fresh();
    return 0;
}
