/*
 * The node's policy file precedence (see node_policy.h): explicit file,
 * $OUTPOST_POLICY, the HQ override beside the database, the region's
 * installed profile.
 */
#include "node_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

static int copy(char *out, size_t cap, const char *s)
{
    int n = snprintf(out, cap, "%s", s);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int node_policy_override_path(const char *db_path, char *out, size_t cap)
{
    const char *slash = strrchr(db_path, '/');
    int n;
    if (!slash)
        n = snprintf(out, cap, "%s", NODE_POLICY_OVERRIDE);
    else
        n = snprintf(out, cap, "%.*s/%s", (int)(slash - db_path), db_path, NODE_POLICY_OVERRIDE);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int node_policy_path(const char *explicit_file, const char *db_path, const char *region, char *out,
                     size_t cap, struct op_error *err)
{
    const char *env = getenv("OUTPOST_POLICY");
    if (explicit_file && *explicit_file) {
        if (copy(out, cap, explicit_file) < 0)
            return op_error_set(err, -ENAMETOOLONG, "policy_file", "policy path too long");
        return 0;
    }
    if (env && *env) {
        if (copy(out, cap, env) < 0)
            return op_error_set(err, -ENAMETOOLONG, "OUTPOST_POLICY", "policy path too long");
        return 0;
    }
    if (db_path && *db_path && strcmp(db_path, ":memory:")) {
        char over[1024];
        if (node_policy_override_path(db_path, over, sizeof over) == 0 && access(over, F_OK) == 0) {
            if (copy(out, cap, over) < 0)
                return op_error_set(err, -ENAMETOOLONG, "policy_file", "policy path too long");
            return 0;
        }
    }
    if (!region)
        return op_error_set(err, -ENOENT, "region",
                            "the node is not initialized, so it has no region policy");
    struct op_error e2;
    op_error_clear(&e2);
    int rc = policy_find_file(region, out, cap, &e2);
    if (rc < 0)
        return op_error_set(err, rc, "region", "no region policy for %s: %s", region, e2.msg);
    return 0;
}

/* The override's file name is not REGION.yaml, which policy_load_file
 * insists on, so it is loaded from memory under the region's name and
 * then named by its path. */
static int load_override(const char *path, const char *region, struct policy **out,
                         struct op_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return op_error_set(err, -errno, NULL, "%s: %s", path, strerror(errno));
    char *buf = malloc(NODE_POLICY_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    size_t len = fread(buf, 1, NODE_POLICY_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad) {
        rc = op_error_set(err, -EIO, NULL, "%s: read error", path);
    } else if (len > NODE_POLICY_MAX_BYTES) {
        rc = op_error_set(err, -EFBIG, NULL, "%s: larger than %d bytes", path,
                          NODE_POLICY_MAX_BYTES);
    } else {
        char name[64];
        snprintf(name, sizeof name, "%s.yaml", region);
        struct op_error e2;
        op_error_clear(&e2);
        rc = policy_load_buffer(name, buf, len, out, &e2);
        if (rc < 0)
            op_error_set(err, rc, e2.field[0] ? e2.field : NULL, "%s (the HQ override): %s", path,
                         e2.msg);
        else
            snprintf((*out)->path, sizeof(*out)->path, "%s", path);
    }
    free(buf);
    return rc;
}

int node_policy_load(const char *explicit_file, const char *db_path, const char *region,
                     struct policy **out, struct op_error *err)
{
    char path[1024];
    int rc = node_policy_path(explicit_file, db_path, region, path, sizeof path, err);
    if (rc < 0)
        return rc;
    struct policy *p = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    char over[1024] = "";
    if (db_path && region)
        (void)node_policy_override_path(db_path, over, sizeof over);
    if (over[0] && !strcmp(path, over))
        rc = load_override(path, region, &p, &e2);
    else
        rc = policy_load_file(path, &p, &e2);
    if (rc < 0)
        return op_error_set(err, rc, e2.field[0] ? e2.field : NULL, "invalid region policy: %s",
                            e2.msg);
    if (region && strcmp(p->region, region)) {
        rc = op_error_set(err, -EINVAL, "region", "%s is the policy of %s, but this node is in %s",
                          path, p->region, region);
        policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
