/*
 * Tests for sync/core/sync_mac.c: receipt and mailbox MACs equal an HMAC
 * computed here with OpenSSL's one-shot HMAC over the literal text of
 * docs/SYNC_PROTOCOL.md (a known-answer test of the text layout); every
 * field changes the MAC; a receipt MAC is never a mailbox MAC; fields that
 * would make two texts ambiguous are refused; and sync_mac_equal accepts
 * exactly two equal 64-hex-digit strings.
 */
#include "sync_mac.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static unsigned char KEY[32];

/* HMAC-SHA-256 of text (n bytes) under KEY, as lower-case hex. */
static void ref_mac(const unsigned char key[32], const void *text, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    HMAC(EVP_sha256(), key, 32, text, n, md, &l);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_receipt_known_answer(void)
{
    char got[SYNC_MAC_HEX], want[65];
    const char *text = "outpost-receipt-v1\nnairobi-1\n42\napplied\n17\n90210";
    ref_mac(KEY, text, strlen(text), want);
    CHECK_EQ(sync_receipt_mac(KEY, "nairobi-1", 42, "applied", 17, 90210, got), 0);
    CHECK_STR(got, want);
    CHECK_EQ(strlen(got), 64);
    /* the widest numbers, in decimal */
    text = "outpost-receipt-v1\nn\n18446744073709551615\nrejected\n0\n9223372036854775807";
    ref_mac(KEY, text, strlen(text), want);
    CHECK_EQ(sync_receipt_mac(KEY, "n", UINT64_MAX, "rejected", 0, 9223372036854775807ull, got), 0);
    CHECK_STR(got, want);
    /* a fixed vector, so a change to the reference above is noticed too
     * (HMAC-SHA-256, key bytes 0..31, computed with Python's hmac) */
    CHECK_EQ(sync_receipt_mac(KEY, "nairobi-1", 42, "applied", 17, 90210, got), 0);
    CHECK_STR(got, "268b4a5d296849f2f0f6a02b776f66b5f3bca81594743780912bf25802feb835");
}

/* The extras MAC covers the patch flag and the needs_whole list, entry by
 * entry; an entry that is not two one-line strings is refused. */
static void test_receipt_extras(void)
{
    char got[SYNC_MAC_HEX], want[65];
    const char *text =
        "outpost-receipt-extras-v1\nnairobi-1\n42\n1\n2\ncontact\nc1\norganization\no2";
    ref_mac(KEY, text, strlen(text), want);
    json_t *l = json_pack("[[ss][ss]]", "contact", "c1", "organization", "o2");
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, l, got), 0);
    CHECK_STR(got, want);
    text = "outpost-receipt-extras-v1\nn\n7\n0\n0";
    ref_mac(KEY, text, strlen(text), want);
    CHECK_EQ(sync_receipt_extras_mac(KEY, "n", 7, 0, NULL, got), 0);
    CHECK_STR(got, want);
    json_t *empty = json_array();
    CHECK_EQ(sync_receipt_extras_mac(KEY, "n", 7, 0, empty, got), 0);
    CHECK_STR(got, want);
    json_decref(empty);
    /* an entry changed, the flag changed: another MAC */
    char base[SYNC_MAC_HEX];
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, l, base), 0);
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 0, l, got), 0);
    CHECK(!sync_mac_equal(base, got));
    json_array_set_new(json_array_get(l, 1), 1, json_string("o3"));
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, l, got), 0);
    CHECK(!sync_mac_equal(base, got));
    /* entries that would make two lists share a text are refused */
    json_array_set_new(json_array_get(l, 1), 1, json_string("o3\ncontact"));
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, l, got), -EINVAL);
    json_array_set_new(l, 1, json_integer(7));
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, l, got), -EINVAL);
    json_t *obj = json_object();
    CHECK_EQ(sync_receipt_extras_mac(KEY, "nairobi-1", 42, 1, obj, got), -EINVAL);
    json_decref(obj);
    json_decref(l);
}

static void test_mailbox_known_answer(void)
{
    char got[SYNC_MAC_HEX], want[65];
    const char *text = "outpost-mailbox-v1\nnairobi-1\n3\npolicy\nformat: x\nregion: KE\n";
    ref_mac(KEY, text, strlen(text), want);
    const char *body = "format: x\nregion: KE\n";
    CHECK_EQ(sync_mailbox_mac(KEY, "nairobi-1", 3, "policy", body, strlen(body), got), 0);
    CHECK_STR(got, want);
    /* an empty body, and a body with a NUL byte, as bytes */
    text = "outpost-mailbox-v1\nn\n0\nreference\n";
    ref_mac(KEY, text, strlen(text), want);
    CHECK_EQ(sync_mailbox_mac(KEY, "n", 0, "reference", NULL, 0, got), 0);
    CHECK_STR(got, want);
    static const char nul_text[] = "outpost-mailbox-v1\nn\n1\nk\na\0b";
    ref_mac(KEY, nul_text, sizeof nul_text - 1, want);
    CHECK_EQ(sync_mailbox_mac(KEY, "n", 1, "k", "a\0b", 3, got), 0);
    CHECK_STR(got, want);
}

static void test_every_field_counts(void)
{
    char base[SYNC_MAC_HEX], m[SYNC_MAC_HEX];
    CHECK_EQ(sync_receipt_mac(KEY, "n1", 5, "applied", 1, 2, base), 0);
    /* each field of ("n1", 5, "applied", 1, 2) changed in turn; the last
     * row swaps the lanes, which are not interchangeable */
    static const struct {
        const char *node;
        uint64_t segment;
        const char *status;
        uint64_t urgent, ordinary;
    } changed[] = {
        {"n2", 5, "applied", 1, 2}, {"n1", 6, "applied", 1, 2}, {"n1", 5, "rejected", 1, 2},
        {"n1", 5, "applied", 2, 2}, {"n1", 5, "applied", 1, 3}, {"n1", 5, "applied", 2, 1},
    };
    for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++) {
        CHECK_EQ(sync_receipt_mac(KEY, changed[i].node, changed[i].segment, changed[i].status,
                                  changed[i].urgent, changed[i].ordinary, m),
                 0);
        CHECK(strcmp(base, m) != 0);
    }
    unsigned char other[32];
    memcpy(other, KEY, 32);
    other[0] ^= 1;
    CHECK_EQ(sync_receipt_mac(other, "n1", 5, "applied", 1, 2, m), 0);
    CHECK(strcmp(base, m) != 0);
    /* same fields, other message type: other MAC */
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 5, "applied", "1\n2", 3, m), 0);
    CHECK(strcmp(base, m) != 0);

    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 3, "policy", "x", 1, base), 0);
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 3, "policy", "y", 1, m), 0);
    CHECK(strcmp(base, m) != 0);
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 4, "policy", "x", 1, m), 0);
    CHECK(strcmp(base, m) != 0);
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 3, "reference", "x", 1, m), 0);
    CHECK(strcmp(base, m) != 0);
}

static void test_refusals(void)
{
    char m[SYNC_MAC_HEX];
    /* a newline in a field would let "a\nb" + "c" collide with "a" + "b\nc" */
    CHECK_EQ(sync_receipt_mac(KEY, "n\n1", 5, "applied", 1, 2, m), -EINVAL);
    CHECK_EQ(sync_receipt_mac(KEY, "n1", 5, "applied\n", 1, 2, m), -EINVAL);
    CHECK_EQ(sync_receipt_mac(KEY, NULL, 5, "applied", 1, 2, m), -EINVAL);
    CHECK_EQ(sync_receipt_mac(KEY, "n1", 5, NULL, 1, 2, m), -EINVAL);
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 1, "pol\nicy", "x", 1, m), -EINVAL);
    CHECK_EQ(sync_mailbox_mac(KEY, "n\n1", 1, "policy", "x", 1, m), -EINVAL);
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 1, "policy", NULL, 1, m), -EINVAL);
    /* the body may hold newlines: it is last */
    CHECK_EQ(sync_mailbox_mac(KEY, "n1", 1, "policy", "a\nb", 3, m), 0);
}

static void test_equal(void)
{
    char a[SYNC_MAC_HEX], b[SYNC_MAC_HEX];
    CHECK_EQ(sync_receipt_mac(KEY, "n1", 5, "applied", 1, 2, a), 0);
    memcpy(b, a, sizeof b);
    CHECK_EQ(sync_mac_equal(a, b), 1);
    /* upper-case hex from another implementation is the same MAC */
    for (int i = 0; i < 64; i++)
        if (b[i] >= 'a' && b[i] <= 'f')
            b[i] = (char)(b[i] - 'a' + 'A');
    CHECK_EQ(sync_mac_equal(a, b), 1);
    /* any one digit differs */
    for (int i = 0; i < 64; i++) {
        memcpy(b, a, sizeof b);
        b[i] = b[i] == '0' ? '1' : '0';
        CHECK_EQ(sync_mac_equal(a, b), 0);
    }
    /* not 64 hex digits */
    memcpy(b, a, sizeof b);
    b[63] = '\0';
    CHECK_EQ(sync_mac_equal(a, b), 0);
    CHECK_EQ(sync_mac_equal(b, b), 0);
    char longer[70];
    snprintf(longer, sizeof longer, "%s0", a);
    CHECK_EQ(sync_mac_equal(a, longer), 0);
    CHECK_EQ(sync_mac_equal(longer, longer), 0);
    memcpy(b, a, sizeof b);
    b[10] = 'g';
    CHECK_EQ(sync_mac_equal(b, b), 0);
    CHECK_EQ(sync_mac_equal(NULL, a), 0);
    CHECK_EQ(sync_mac_equal(a, NULL), 0);
    CHECK_EQ(sync_mac_equal("", ""), 0);
}

int main(void)
{
    for (int i = 0; i < 32; i++)
        KEY[i] = (unsigned char)i;
    RUN(test_receipt_known_answer);
    RUN(test_receipt_extras);
    RUN(test_mailbox_known_answer);
    RUN(test_every_field_counts);
    RUN(test_refusals);
    RUN(test_equal);
    return tl_report();
}
