/*
 * make_segment: builds a segment file the way a node does, for HQ tests.
 * Reads JSON lines {"entity":"contact","op":"upsert","record":{...}} on
 * stdin; upsert/delete records go through egress_project under the
 * region profile, erase/purge/withdraw become egress_tombstone(id,
 * version); the segment writer signs the file with the hq_key of a
 * credentials file. Options forge what a bad peer would send, so HQ's
 * refusals can be tested: another key, another node id, a policy whose
 * rules differ from the profile whose hash it claims.
 *
 * usage: make_segment --credentials FILE --spool DIR --segment N
 *          [--region CODE | --policy FILE] [--forge-policy FILE]
 *          [--from URGENT,ORDINARY] [--to URGENT,ORDINARY]
 *          [--forge-key] [--node-id ID] [--created-ms MS]
 * Prints the segment's path. Exit 0, 1 on failure, 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "entity.h"
#include "node_credentials.h"
#include "policy.h"
#include "segment.h"

static int die(const char *what, const struct op_error *err)
{
    fprintf(stderr, "make_segment: %s: %s\n", what, err ? err->msg : "");
    return 1;
}

static int pair(const char *s, uint64_t *a, uint64_t *b)
{
    char *end;
    errno = 0;
    *a = strtoull(s, &end, 10);
    if (errno || *end != ',')
        return -1;
    *b = strtoull(end + 1, &end, 10);
    return errno || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *cred = NULL, *spool = NULL, *region = NULL, *policy_path = NULL, *forge = NULL,
               *node_id = NULL;
    uint64_t segno = 0, fu = 0, fo = 0, tu = 0, to = 0;
    int64_t created = 0;
    int have_seg = 0, have_to = 0, forge_key = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--forge-key")) {
            forge_key = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "make_segment: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--credentials"))
            cred = v;
        else if (!strcmp(a, "--spool"))
            spool = v;
        else if (!strcmp(a, "--region"))
            region = v;
        else if (!strcmp(a, "--policy"))
            policy_path = v;
        else if (!strcmp(a, "--forge-policy"))
            forge = v;
        else if (!strcmp(a, "--node-id"))
            node_id = v;
        else if (!strcmp(a, "--segment")) {
            segno = strtoull(v, NULL, 10);
            have_seg = 1;
        } else if (!strcmp(a, "--created-ms"))
            created = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--from")) {
            if (pair(v, &fu, &fo) < 0)
                return fprintf(stderr, "make_segment: --from URGENT,ORDINARY\n"), 2;
        } else if (!strcmp(a, "--to")) {
            if (pair(v, &tu, &to) < 0)
                return fprintf(stderr, "make_segment: --to URGENT,ORDINARY\n"), 2;
            have_to = 1;
        } else {
            fprintf(stderr, "make_segment: unknown option %s\n", a);
            return 2;
        }
    }
    if (!cred || !spool || !have_seg) {
        fprintf(stderr, "make_segment: --credentials, --spool and --segment are required\n");
        return 2;
    }
    struct op_error err;
    op_error_clear(&err);
    struct node_credentials c;
    if (node_credentials_load(cred, &c, &err) < 0)
        return die("credentials", &err);
    char path[1024];
    if (!policy_path) {
        if (policy_find_file(region ? region : c.region, path, sizeof path, &err) < 0)
            return die("region", &err);
        policy_path = path;
    }
    struct policy *p = NULL;
    if (policy_load_file(policy_path, &p, &err) < 0)
        return die("policy", &err);
    if (forge) {
        /* Rules from the forged file, the genuine profile's hash. */
        struct policy *f = NULL;
        if (policy_load_file(forge, &f, &err) < 0)
            return die("forge policy", &err);
        memcpy(f->hash, p->hash, sizeof f->hash);
        policy_free(p);
        p = f;
    }
    unsigned char pkey[EGRESS_KEY_BYTES];
    memset(pkey, 0x5a, sizeof pkey); /* the node's pseudonymization key; never at HQ */
    unsigned char hq_key[SEGMENT_KEY_BYTES];
    memcpy(hq_key, c.hq_key, sizeof hq_key);
    if (forge_key)
        hq_key[0] ^= 0xff;

    struct segment_info hdr = {0};
    snprintf(hdr.node_id, sizeof hdr.node_id, "%s", node_id ? node_id : c.node_id);
    hdr.from_urgent = fu;
    hdr.from_ordinary = fo;
    hdr.schema_version = 7;
    memcpy(hdr.policy_hash, p->hash, sizeof hdr.policy_hash);
    hdr.created_ms = created;
    struct segment_writer *w = NULL;
    if (segment_writer_new(&hdr, hq_key, spool, segno, &w, &err) < 0)
        return die("segment", &err);

    struct egress_counts counts = {0};
    char line[1 << 16];
    unsigned long lineno = 0;
    uint64_t n = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        if (line[0] == '\n')
            continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *ename = NULL, *opname = "upsert";
        json_t *rec = NULL;
        if (!j || json_unpack(j, "{s:s, s?s, s:o}", "entity", &ename, "op", &opname, "record",
                              &rec) < 0) {
            fprintf(stderr, "make_segment: stdin:%lu: expected {entity, op, record}\n", lineno);
            segment_writer_abort(w);
            return 1;
        }
        const struct entity_def *e = entity_by_name(ename);
        enum egress_op op;
        if (!e || egress_op_parse(opname, &op) < 0) {
            fprintf(stderr, "make_segment: stdin:%lu: unknown entity or op\n", lineno);
            segment_writer_abort(w);
            return 1;
        }
        struct egress_record *r = NULL;
        int rc;
        if (op == EGRESS_OP_UPSERT || op == EGRESS_OP_DELETE)
            rc = egress_project(p, pkey, e, rec, &r, &counts, &err);
        else
            rc =
                egress_tombstone(p, e, json_string_value(json_object_get(rec, "id")),
                                 json_integer_value(json_object_get(rec, "version")), op, &r, &err);
        json_decref(j);
        if (rc < 0) {
            segment_writer_abort(w);
            return die("record", &err);
        }
        if (!r)
            continue; /* withheld whole: it does not leave */
        rc = segment_writer_add(w, r, &err);
        egress_record_free(r);
        if (rc < 0) {
            segment_writer_abort(w);
            return die("add", &err);
        }
        n++;
    }
    if (!have_to) {
        tu = fu;
        to = fo + n;
    }
    char out[2048];
    struct segment_info info;
    if (segment_writer_finish(w, tu, to, &counts, out, sizeof out, &info, &err) < 0)
        return die("finish", &err);
    printf("%s\n", out);
    policy_free(p);
    return 0;
}
