/*
 * The duplicate choice; see dup_choice.h. The store finds the duplicate
 * (store_create's STORE_EDUP names the record and the rule); this module
 * only decides what to write, through the store's own calls.
 */
#include "dup_choice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const choice_names[] = {"refuse", "skip", "update", "new"};

int dup_choice_parse(const char *text, enum dup_choice *out)
{
    for (size_t i = 0; i < sizeof choice_names / sizeof choice_names[0]; i++)
        if (text && !strcmp(text, choice_names[i])) {
            *out = (enum dup_choice)i;
            return 0;
        }
    return -EINVAL;
}

const char *dup_choice_name(enum dup_choice c)
{
    return (unsigned)c < sizeof choice_names / sizeof choice_names[0] ? choice_names[c] : "?";
}

/* The rule of a duplicate's message: "same e-mail address" out of
 * "probable duplicate of contact ID (same e-mail address); ...", or the
 * message up to its first ';' ("a contact with this e-mail address exists
 * and is not yours") when it names no record. */
static void dup_reason(const char *msg, char *out, size_t cap)
{
    const char *a = strstr(msg, " (");
    const char *b = a ? strstr(a, ")") : NULL;
    if (a && b)
        snprintf(out, cap, "%.*s", (int)(b - a - 2), a + 2);
    else
        snprintf(out, cap, "%.*s", (int)strcspn(msg, ";"), msg);
}

static int is_meta(const char *k)
{
    return !strcmp(k, "id") || !strcmp(k, "version") || !strcmp(k, "created_at") ||
           !strcmp(k, "updated_at") || !strcmp(k, "deleted");
}

/* The existing record `id` takes the non-null fields of `fields` at
 * `version` (0: its current one). */
static int update_existing(struct store *s, const struct entity_def *e, json_t *fields,
                           const char *id, int64_t version, struct dup_outcome *o, json_t **out,
                           struct op_error *err)
{
    if (!version) {
        json_t *cur = NULL;
        int rc = store_get(s, e, id, 0, &cur, err);
        if (rc < 0)
            return rc;
        version = json_integer_value(json_object_get(cur, "version"));
        json_decref(cur);
    }
    json_t *patch = json_object();
    if (!patch)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v)
    {
        if (json_is_null(v) || is_meta(k) || (json_is_object(v) && json_object_size(v) == 0))
            continue;
        if (json_object_set(patch, k, v) < 0) {
            json_decref(patch);
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
    }
    op_error_clear(err);
    int rc = store_update(s, e, id, version, patch, 0, out, err);
    json_decref(patch);
    if (rc == STORE_EVERSION) {
        o->action = DUP_ACTION_CONFLICT;
        snprintf(o->detail, sizeof o->detail, "%.*s", (int)sizeof o->detail - 1,
                 err ? err->msg : "");
        op_error_clear(err);
        return 0;
    }
    if (rc < 0)
        return rc;
    o->action = DUP_ACTION_UPDATED;
    return 0;
}

int dup_choice_resolve(struct store *s, const struct entity_def *e, json_t *fields,
                       enum dup_choice choice, int64_t version, const struct op_error *dup,
                       struct dup_outcome *o, json_t **out, struct op_error *err)
{
    memset(o, 0, sizeof *o);
    if (out)
        *out = NULL;
    snprintf(o->existing_id, sizeof o->existing_id, "%s", dup->ref);
    dup_reason(dup->msg, o->reason, sizeof o->reason);
    switch (choice) {
    case DUP_CHOICE_SKIP:
        o->action = DUP_ACTION_SKIPPED;
        return 0;
    case DUP_CHOICE_UPDATE:
        if (!o->existing_id[0]) { /* the viewer may not see it, so may not change it */
            o->action = DUP_ACTION_REFUSED;
            return 0;
        }
        return update_existing(s, e, fields, o->existing_id, version, o, out, err);
    case DUP_CHOICE_NEW: {
        op_error_clear(err);
        int rc = store_create(s, e, fields, STORE_SKIP_DUP_CHECK, out, err);
        if (rc < 0)
            return rc;
        o->action = DUP_ACTION_NEW;
        return 0;
    }
    case DUP_CHOICE_REFUSE:
    default:
        o->action = DUP_ACTION_REFUSED;
        return 0;
    }
}

int dup_choice_create(struct store *s, const struct entity_def *e, json_t *fields, unsigned flags,
                      enum dup_choice choice, int64_t version, struct dup_outcome *o, json_t **out,
                      struct op_error *err)
{
    struct op_error dup;
    op_error_clear(&dup);
    if (out)
        *out = NULL;
    int rc = store_create(s, e, fields, flags, out, &dup);
    if (rc == STORE_EDUP)
        return dup_choice_resolve(s, e, fields, choice, version, &dup, o, out, err);
    if (rc < 0) {
        if (err)
            *err = dup;
        return rc;
    }
    memset(o, 0, sizeof *o);
    o->action = DUP_ACTION_CREATED;
    const char *ref = NULL, *warning = store_warning(s, &ref);
    if (warning) {
        snprintf(o->reason, sizeof o->reason, "%.*s", (int)sizeof o->reason - 1, warning);
        snprintf(o->existing_id, sizeof o->existing_id, "%s", ref ? ref : "");
    }
    return 0;
}
