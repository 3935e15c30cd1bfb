/*
 * Duplicate keys in memory; see keyset.h. Open addressing over (kind, key)
 * with linear probing; the table doubles at half full. Each slot keeps
 * the first and last contact of its key, so adding appends in creation
 * order in constant time. Contacts and their strings are allocated one
 * by one and live until keyset_free.
 */
#include "keyset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    uint64_t hash; /* 0: empty */
    int kind;
    const char *key; /* the first entry's copy */
    struct keyset_entry *first, *last;
};

struct node {
    struct keyset_entry e;
    char *keys[KEYSET_NKINDS];
    char *id;
    struct node *older; /* for keyset_free */
};

struct keyset {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    size_t count;
    struct node *newest;
};

/* FNV-1a over the kind and the key; never 0. */
static uint64_t hash_of(int kind, const char *key)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

struct keyset *keyset_new(void)
{
    struct keyset *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    ks->cap = 1024;
    ks->slots = calloc(ks->cap, sizeof *ks->slots);
    if (!ks->slots) {
        free(ks);
        return NULL;
    }
    return ks;
}

void keyset_free(struct keyset *ks)
{
    if (!ks)
        return;
    for (struct node *n = ks->newest, *older; n; n = older) {
        older = n->older;
        for (int k = 0; k < KEYSET_NKINDS; k++)
            free(n->keys[k]);
        free(n->id);
        free(n);
    }
    free(ks->slots);
    free(ks);
}

static struct slot *lookup(struct slot *slots, size_t cap, uint64_t h, int kind, const char *key)
{
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        struct slot *s = &slots[i];
        if (!s->hash || (s->hash == h && s->kind == kind && !strcmp(s->key, key)))
            return s;
    }
}

static int grow(struct keyset *ks)
{
    size_t cap = ks->cap * 2;
    struct slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < ks->cap; i++) {
        struct slot *s = &ks->slots[i];
        if (s->hash)
            *lookup(slots, cap, s->hash, s->kind, s->key) = *s;
    }
    free(ks->slots);
    ks->slots = slots;
    ks->cap = cap;
    return 0;
}

int keyset_add(struct keyset *ks, const char *id, const char *const keys[KEYSET_NKINDS])
{
    /* room for every key of this contact first, so that a failure below
     * leaves the set as it was */
    while ((ks->used + KEYSET_NKINDS) * 2 > ks->cap)
        if (grow(ks) < 0)
            return -ENOMEM;
    struct node *n = calloc(1, sizeof *n);
    if (!n || !(n->id = strdup(id)))
        goto oom;
    for (int k = 0; k < KEYSET_NKINDS; k++)
        if (keys[k] && *keys[k] && !(n->keys[k] = strdup(keys[k])))
            goto oom;
    n->e.id = n->id;
    n->e.name_key = n->keys[KEYSET_NAME];
    for (int k = 0; k < KEYSET_NKINDS; k++) {
        if (!n->keys[k])
            continue;
        uint64_t h = hash_of(k, n->keys[k]);
        struct slot *s = lookup(ks->slots, ks->cap, h, k, n->keys[k]);
        if (!s->hash) {
            s->hash = h;
            s->kind = k;
            s->key = n->keys[k];
            s->first = s->last = &n->e;
            ks->used++;
        } else {
            s->last->next[k] = &n->e;
            s->last = &n->e;
        }
    }
    n->older = ks->newest;
    ks->newest = n;
    ks->count++;
    return 0;
oom:
    if (n) {
        for (int k = 0; k < KEYSET_NKINDS; k++)
            free(n->keys[k]);
        free(n->id);
        free(n);
    }
    return -ENOMEM;
}

const struct keyset_entry *keyset_find(const struct keyset *ks, enum keyset_kind kind,
                                       const char *key)
{
    if (!key || !*key)
        return NULL;
    struct slot *s = lookup(ks->slots, ks->cap, hash_of((int)kind, key), (int)kind, key);
    return s->hash ? s->first : NULL;
}

size_t keyset_count(const struct keyset *ks)
{
    return ks->count;
}
