/*
 * Duplicate keys in memory; see keyset.h. Open addressing over (kind, key)
 * with linear probing; the table doubles at half full. Each slot keeps
 * the first and last contact of its key, so adding appends in creation
 * order in constant time. A contact and its strings are one allocation,
 * kept until keyset_free: about 600 bytes a contact with its slots.
 */
#include "keyset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    uint32_t hash; /* 0: empty */
    uint32_t kind;
    const char *key; /* the first entry's copy */
    struct keyset_entry *first, *last;
};

struct node {
    struct keyset_entry e;
    const char *keys[KEYSET_NKINDS]; /* into text, NULL for none */
    struct node *older;              /* for keyset_free */
    char text[];                     /* the id and the keys, each ending in '\0' */
};

struct keyset {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    size_t count;
    struct node *newest;
};

/* FNV-1a over the kind and the key; never 0. */
static uint32_t hash_of(uint32_t kind, const char *key)
{
    uint32_t h = 2166136261u ^ kind;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 16777619u;
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
        free(n);
    }
    free(ks->slots);
    free(ks);
}

static struct slot *lookup(struct slot *slots, size_t cap, uint32_t h, uint32_t kind,
                           const char *key)
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
    size_t need = strlen(id) + 1;
    for (int k = 0; k < KEYSET_NKINDS; k++)
        if (keys[k] && *keys[k])
            need += strlen(keys[k]) + 1;
    struct node *n = calloc(1, sizeof *n + need);
    if (!n)
        return -ENOMEM;
    char *p = n->text;
    size_t len = strlen(id) + 1;
    memcpy(p, id, len);
    n->e.id = p;
    p += len;
    for (int k = 0; k < KEYSET_NKINDS; k++) {
        if (!keys[k] || !*keys[k])
            continue;
        len = strlen(keys[k]) + 1;
        memcpy(p, keys[k], len);
        n->keys[k] = p;
        p += len;
    }
    n->e.name_key = n->keys[KEYSET_NAME];
    for (int k = 0; k < KEYSET_NKINDS; k++) {
        if (!n->keys[k])
            continue;
        uint32_t h = hash_of((uint32_t)k, n->keys[k]);
        struct slot *s = lookup(ks->slots, ks->cap, h, (uint32_t)k, n->keys[k]);
        if (!s->hash) {
            s->hash = h;
            s->kind = (uint32_t)k;
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
}

const struct keyset_entry *keyset_find(const struct keyset *ks, enum keyset_kind kind,
                                       const char *key)
{
    if (!key || !*key)
        return NULL;
    struct slot *s = lookup(ks->slots, ks->cap, hash_of((uint32_t)kind, key), (uint32_t)kind, key);
    return s->hash ? s->first : NULL;
}

size_t keyset_count(const struct keyset *ks)
{
    return ks->count;
}
