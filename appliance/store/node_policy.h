/*
 * Which region policy file a node obeys, decided in one place for outpostd
 * (api.c), the sync ledger and the CLI. The invariant: every reader of a
 * node's policy resolves it by the same precedence, so what the API
 * enforces, what the segmenter projects under and what the CLI applies are
 * the same file:
 *   1. an explicit file (a --policy option, the policy_file config key),
 *   2. $OUTPOST_POLICY,
 *   3. policy-override.yaml beside the database (written by the sync
 *      ledger from a validated HQ mailbox message, docs/SYNC.md),
 *   4. the installed profile of the node's region (policy_find_file).
 */
#ifndef OUTPOST_NODE_POLICY_H
#define OUTPOST_NODE_POLICY_H

#include <stddef.h>

#include "op_error.h"

struct policy;

#define NODE_POLICY_OVERRIDE "policy-override.yaml"
/* the largest policy file (or mailbox policy message) read into memory */
#define NODE_POLICY_MAX_BYTES (1024 * 1024)

/* Writes <directory of db_path>/policy-override.yaml to out. Returns 0 or
 * -ENAMETOOLONG. */
int node_policy_override_path(const char *db_path, char *out, size_t cap);

/* Resolves the policy file by the precedence above (explicit_file and
 * db_path may be NULL; an empty string counts as absent) into out. Returns
 * 0; -ENOENT (err says so) when step 4 is needed and region is NULL or has
 * no installed profile; -ENAMETOOLONG. */
int node_policy_path(const char *explicit_file, const char *db_path, const char *region, char *out,
                     size_t cap, struct op_error *err);

/* Resolves and loads the policy, and checks that it is the policy of
 * `region` (when region is not NULL): -EINVAL "PATH is the policy of X, but
 * this node is in Y". Loader errors keep their "FILE:LINE: KEY: what"
 * message. On success *out is the caller's (policy_free). */
int node_policy_load(const char *explicit_file, const char *db_path, const char *region,
                     struct policy **out, struct op_error *err);

#endif
