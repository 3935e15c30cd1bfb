/*
 * The tus 1.0.0 upload server: routes OPTIONS, POST (creation), HEAD,
 * PATCH (with Upload-Checksum) and DELETE (termination) under one base
 * path, keeps one in-memory
 * record per upload mirrored by a state file in the spool directory, and
 * writes PATCH bodies to the upload's data file: as they arrive when the
 * gate streams them (tus_server_gate; a cut keeps what arrived), or
 * verified and whole otherwise.
 *
 * Invariant: for every upload, state-file offset <= durable bytes of the
 * data file, because each append is written, truncated to its end and
 * fdatasync'ed before the state file that records it replaces the old one
 * (temp file, fsync, rename, fsync of the directory). The in-memory record
 * changes only after the state file did, so memory never runs ahead of
 * disk either. The loop is single-threaded and each request is handled to
 * the end before the next, except a streamed PATCH, which spans loop
 * turns: it is the only writer of its upload (u->st), and any newer
 * request to that upload closes it first, so no upload is ever written by
 * two requests of one process at once. With a spool shared by several
 * processes (cfg.shared) the state file is the truth and memory a cache
 * read again at each request (lookup), and whoever creates, writes or
 * applies an upload holds an flock on its data file (u->lockfd); a
 * request to an upload another process holds gets 423.
 */
#include "tus_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "codec.h"

#define TUS_VERSION "1.0.0"
#define STATE_MAGIC "outpost-tus 1"
#define STATE_FILE_MAX 65536
#define METADATA_HARD_MAX 32768
#define DEFAULT_MAX_UPLOAD (64ull << 20)
#define DEFAULT_MAX_SPOOL (1ull << 30)
#define DEFAULT_MAX_UPLOADS 4096u
#define DEFAULT_MAX_INCOMPLETE 4u
#define DEFAULT_MAX_METADATA 4096u
#define DEFAULT_SETTLED_KEEP 3600u
/* Shared spool: a temp or data file without state younger than this may
 * be another process's creation under way, and is left alone. */
#define SHARED_STALE_S 120u
#define DISCARDED                                                                                  \
    "the completed upload failed its content's own check (digest, MAC or format): it was "         \
    "discarded; create a new upload and send the data again"

struct upload {
    char id[TUS_ID_LEN + 1];
    char principal[TUS_PRINCIPAL_MAX];
    uint64_t length;
    uint64_t offset;
    int complete;
    uint64_t touched;    /* last creation or write, ns since the epoch: for eviction */
    int accepted;        /* on_complete returned 0 in this process */
    int in_callback;     /* on_complete is running for it */
    int released;        /* released during on_complete: free after it returns */
    int wait_status;     /* the status a request waiting for TUS_COMPLETE_LATER gets */
    int settled;         /* data dropped, kept as a complete record (see tus_server_settle) */
    uint64_t settled_at; /* wall-clock seconds since the epoch when it settled */
    struct stream *st;   /* a PATCH whose body is being written, or NULL */
    int lockfd;          /* shared spool: the data file, flock'ed while this process
                            creates, writes or applies the upload; -1 when not held */
    char *meta_raw;      /* the Upload-Metadata header as received ("" if none) */
    char *meta_arena;
    struct tus_metadata md;
};

/* A PATCH whose body goes to the data file as it arrives (tus_server_gate). */
struct stream {
    struct tus_server *s;
    struct upload *u;
    struct http_exchange *x;
    int fd;
    uint64_t start;  /* the upload's offset when the PATCH began */
    uint64_t got;    /* bytes written at start.. */
    int err;         /* the first write error */
    EVP_MD_CTX *mdc; /* Upload-Checksum's digest of the body, or NULL */
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wantlen;
    int creation; /* a POST with its first bytes: answered 201 with Location */
};

struct tus_server {
    struct tus_server_config cfg;
    struct http_exchange *completing; /* the PATCH whose upload is being delivered */
    char *spool_dir;
    char *base_path;
    size_t base_len;
    int dirfd;
    struct upload **up;
    size_t n, cap;
    uint64_t spool_bytes; /* sum of Upload-Length of the uploads that are not settled */
    unsigned n_settled;
    uint64_t last_touch;
    unsigned bad_state;
};

static uint64_t default_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u : 0;
}

/* Wall-clock ns (survives restarts, unlike the monotonic clock, and
 * compares with the data files' mtimes), made strictly increasing so that
 * eviction order is never a tie. */
static uint64_t now_ns(const struct tus_server *s)
{
    uint64_t ms = s->cfg.now_ms(s->cfg.clock_ctx);
    return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

static uint64_t touch(struct tus_server *s)
{
    uint64_t t = now_ns(s);
    s->last_touch = t > s->last_touch ? t : s->last_touch + 1;
    return s->last_touch;
}

static uint64_t wall_seconds(const struct tus_server *s)
{
    return s->cfg.now_ms(s->cfg.clock_ctx) / 1000u;
}

/* ---- small parsers ---- */

/* A decimal without sign or spaces that fits uint64_t. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int is_hex_id(const char *s, size_t len)
{
    return len == TUS_ID_LEN && codec_hex_valid(s, len, CODEC_HEX_LOWER);
}

static int principal_ok(const char *p)
{
    size_t n = strnlen(p, TUS_PRINCIPAL_MAX);
    if (n == 0 || n >= TUS_PRINCIPAL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
            return 0;
    return 1;
}

/* Parses an Upload-Metadata value ("key b64,key b64,key") into *md, the
 * keys and values in a new arena (*arena_out, the caller's to free). Keys
 * are printable ASCII without space or comma and unique; a pair may omit
 * its value (then it is ""). The one decoder of the header: a creation is
 * parsed here once, and what it gives is kept with the upload for admit
 * and on_complete. Returns 0, -ENOMEM, or -EINVAL with what is wrong and
 * where written into why. */
static int parse_metadata(const char *raw, struct tus_metadata *md, char **arena_out, char *why,
                          size_t why_cap)
{
    memset(md, 0, sizeof *md);
    size_t rlen = strlen(raw);
    size_t arena_cap = rlen + 2 * TUS_METADATA_MAX_PAIRS + 2;
    char *arena = malloc(arena_cap);
    if (!arena)
        return -ENOMEM;
    size_t used = 0, n = 0;
    const char *p = raw;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b) { /* "a x,,b y" */
            snprintf(why, why_cap,
                     "Upload-Metadata pair %zu is empty: pairs are 'key base64' "
                     "separated by single commas",
                     n + 1);
            goto bad;
        }
        if (n == TUS_METADATA_MAX_PAIRS) {
            snprintf(why, why_cap, "Upload-Metadata has more than %d pairs",
                     TUS_METADATA_MAX_PAIRS);
            goto bad;
        }
        const char *sp = a;
        while (sp < b && *sp != ' ')
            sp++;
        size_t klen = (size_t)(sp - a);
        for (size_t i = 0; i < klen; i++)
            if ((unsigned char)a[i] < 0x21 || (unsigned char)a[i] > 0x7e) {
                snprintf(why, why_cap,
                         "Upload-Metadata pair %zu: a key is printable ASCII without spaces or "
                         "commas",
                         n + 1);
                goto bad;
            }
        char *key = arena + used;
        memcpy(key, a, klen);
        key[klen] = '\0';
        used += klen + 1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(md->pair[i].key, key) == 0) {
                snprintf(why, why_cap,
                         "Upload-Metadata key '%.64s' appears twice: each key may appear once",
                         key);
                goto bad;
            }
        const char *v = sp < b ? sp + 1 : b;
        char *val = arena + used;
        const char *b64_why = "";
        ssize_t vlen = codec_b64_decode(v, (size_t)(b - v), (unsigned char *)val,
                                        arena_cap - used - 1, &b64_why);
        if (vlen < 0) {
            snprintf(why, why_cap,
                     "Upload-Metadata value of key '%.64s' is not standard base64: %s", key,
                     b64_why);
            goto bad;
        }
        val[vlen] = '\0';
        used += (size_t)vlen + 1;
        md->pair[n].key = key;
        md->pair[n].value = val;
        md->pair[n].len = (size_t)vlen;
        n++;
        p = *end ? end + 1 : end;
        if (*end && !*p) {
            snprintf(why, why_cap, "Upload-Metadata ends with a comma");
            goto bad;
        }
    }
    md->n = n;
    *arena_out = arena;
    return 0;
bad:
    free(arena);
    memset(md, 0, sizeof *md);
    return -EINVAL;
}

const char *tus_metadata_get(const struct tus_metadata *md, const char *key, size_t *len)
{
    if (!md || !key)
        return NULL;
    for (size_t i = 0; i < md->n; i++)
        if (strcmp(md->pair[i].key, key) == 0) {
            if (len)
                *len = md->pair[i].len;
            return md->pair[i].value;
        }
    return NULL;
}

/* ---- uploads in memory ---- */

static void upload_free(struct upload *u)
{
    if (!u)
        return;
    if (u->lockfd >= 0)
        close(u->lockfd); /* the lock goes with it */
    free(u->meta_raw);
    free(u->meta_arena);
    free(u);
}

/* A new in-memory upload holding meta_raw (copied) and the pairs parsed
 * from it (md, pointing into arena, which it takes over, also on
 * failure). -ENOMEM. */
static int upload_new(const char *id, const char *principal, uint64_t length, const char *meta_raw,
                      const struct tus_metadata *md, char *arena, struct upload **out)
{
    struct upload *u = calloc(1, sizeof *u);
    if (!u) {
        free(arena);
        return -ENOMEM;
    }
    u->lockfd = -1;
    memcpy(u->id, id, TUS_ID_LEN);
    u->id[TUS_ID_LEN] = '\0';
    snprintf(u->principal, sizeof u->principal, "%s", principal);
    u->length = length;
    u->meta_arena = arena;
    u->md = *md;
    u->meta_raw = strdup(meta_raw ? meta_raw : "");
    if (!u->meta_raw) {
        upload_free(u);
        return -ENOMEM;
    }
    *out = u;
    return 0;
}

static struct upload *find(const struct tus_server *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->up[i]->id, id) == 0)
            return s->up[i];
    return NULL;
}

static int add(struct tus_server *s, struct upload *u)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        struct upload **nu = realloc(s->up, nc * sizeof *nu);
        if (!nu)
            return -ENOMEM;
        s->up = nu;
        s->cap = nc;
    }
    s->up[s->n++] = u;
    if (u->settled)
        s->n_settled++;
    else
        s->spool_bytes += u->length;
    return 0;
}

static void forget(struct tus_server *s, struct upload *u)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->up[i] == u) {
            memmove(&s->up[i], &s->up[i + 1], (s->n - i - 1) * sizeof *s->up);
            s->n--;
            if (u->settled)
                s->n_settled--;
            else
                s->spool_bytes -= u->length;
            return;
        }
}

/* ---- files ---- */

static void name_of(char *out, size_t cap, const char *id, const char *suffix)
{
    snprintf(out, cap, "%s%s", id, suffix);
}

static int write_all_at(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Replaces <id>.state with the given offset and completion, durably;
 * settled_at != 0 records the upload as settled at that time (two lines
 * after the metadata, so state files written before settling existed
 * still parse). */
static int write_state(struct tus_server *s, const struct upload *u, uint64_t offset, int complete,
                       uint64_t settled_at)
{
    size_t cap = strlen(u->meta_raw) + TUS_PRINCIPAL_MAX + 256;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    int len = snprintf(buf, cap,
                       STATE_MAGIC "\nlength %llu\noffset %llu\ncomplete %d\nprincipal %s\n"
                                   "metadata %s\n",
                       (unsigned long long)u->length, (unsigned long long)offset, complete ? 1 : 0,
                       u->principal, u->meta_raw);
    if (len >= 0 && (size_t)len < cap && settled_at) {
        int more = snprintf(buf + len, cap - (size_t)len, "settled 1\nsettled_at %llu\n",
                            (unsigned long long)settled_at);
        len = more < 0 ? more : len + more;
    }
    if (len < 0 || (size_t)len >= cap) {
        free(buf);
        return -EOVERFLOW;
    }
    char tmp[TUS_ID_LEN + 16], fin[TUS_ID_LEN + 16];
    name_of(tmp, sizeof tmp, u->id, ".state.tmp");
    name_of(fin, sizeof fin, u->id, ".state");
    int rc = 0;
    int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all_at(fd, buf, (size_t)len, 0);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(s->dirfd, tmp, s->dirfd, fin) < 0)
        rc = -errno;
    if (rc == 0 && fsync(s->dirfd) < 0)
        rc = -errno;
    if (rc < 0)
        (void)unlinkat(s->dirfd, tmp, 0);
out:
    free(buf);
    return rc;
}

/* Reads <name> (at most STATE_FILE_MAX bytes) into a NUL-terminated heap
 * buffer. */
static int read_small(int dirfd, const char *name, char **out)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(STATE_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, STATE_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            close(fd);
            free(buf);
            return e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > STATE_FILE_MAX) {
            close(fd);
            free(buf);
            return -EFBIG;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    return 0;
}

/* Takes the next line of *p, which must start with "key "; returns the
 * value (NUL-terminated in place) or NULL. */
static char *state_field(char **p, const char *key)
{
    char *line = *p;
    char *nl = strchr(line, '\n');
    if (!nl)
        return NULL;
    *nl = '\0';
    *p = nl + 1;
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0 || line[kl] != ' ')
        return NULL;
    return line + kl + 1;
}

/* What a state file says. The strings point into buf (the caller frees
 * it). */
struct state_rec {
    uint64_t length, offset, settled_at;
    int complete;
    const char *principal, *meta;
    char *buf;
};

/* Reads and checks <id>.state. 0; -ENOENT when there is none; -EINVAL
 * when it does not parse; another negative errno when it cannot be read. */
static int read_state(int dirfd, const char *id, struct state_rec *r)
{
    char name[TUS_ID_LEN + 16];
    name_of(name, sizeof name, id, ".state");
    memset(r, 0, sizeof *r);
    int rc = read_small(dirfd, name, &r->buf);
    if (rc < 0)
        return rc;
    char *p = r->buf;
    char *nl = strchr(p, '\n');
    const char *v_len, *v_off, *v_comp, *v_set, *v_set_at;
    rc = -EINVAL;
    if (!nl || (size_t)(nl - p) != strlen(STATE_MAGIC) || strncmp(p, STATE_MAGIC, (size_t)(nl - p)))
        goto bad;
    p = nl + 1;
    if (!(v_len = state_field(&p, "length")) || !(v_off = state_field(&p, "offset")) ||
        !(v_comp = state_field(&p, "complete")) || !(r->principal = state_field(&p, "principal")) ||
        !(r->meta = state_field(&p, "metadata")))
        goto bad;
    /* Optional (absent before settling existed): "settled 1", "settled_at T". */
    if (*p != '\0' && (!(v_set = state_field(&p, "settled")) || strcmp(v_set, "1") != 0 ||
                       !(v_set_at = state_field(&p, "settled_at")) ||
                       parse_u64(v_set_at, &r->settled_at) < 0 || r->settled_at == 0))
        goto bad;
    if (*p != '\0')
        goto bad;
    if (parse_u64(v_len, &r->length) < 0 || parse_u64(v_off, &r->offset) < 0 ||
        r->offset > r->length || (strcmp(v_comp, "0") != 0 && strcmp(v_comp, "1") != 0) ||
        !principal_ok(r->principal) || strlen(r->meta) > METADATA_HARD_MAX)
        goto bad;
    r->complete = v_comp[0] == '1';
    if (r->complete != (r->offset == r->length) || (r->settled_at && !r->complete))
        goto bad;
    return 0;
bad:
    free(r->buf);
    r->buf = NULL;
    return rc;
}

/* A new in-memory upload from what its state file says. */
static int upload_from_state(const char *id, const struct state_rec *r, struct upload **out)
{
    struct tus_metadata md;
    char *arena = NULL, why[256];
    int rc = parse_metadata(r->meta, &md, &arena, why, sizeof why);
    if (rc == 0)
        rc = upload_new(id, r->principal, r->length, r->meta, &md, arena, out);
    if (rc < 0)
        return rc;
    (*out)->offset = r->offset;
    (*out)->complete = r->complete;
    return 0;
}

/* Marks u settled at `at` in memory (the counters follow). */
static void mark_settled(struct tus_server *s, struct upload *u, uint64_t at)
{
    if (!u->settled) {
        s->spool_bytes -= u->length;
        s->n_settled++;
    }
    u->settled = 1;
    u->settled_at = at;
    u->offset = u->length;
    u->complete = 1;
}

/* Takes the shared spool's lock of u (flock on its data file, which is
 * never replaced, only unlinked when the upload settles or goes), so no
 * two processes write or apply one upload at once; the kernel drops it
 * when its holder dies. 0 when held (also if held already, or without a
 * shared spool); -EBUSY when another process holds it; -ENOENT when the
 * data is gone (the upload settled or went meanwhile). */
static int lock_upload(struct tus_server *s, struct upload *u)
{
    if (!s->cfg.shared || u->lockfd >= 0)
        return 0;
    char dname[TUS_ID_LEN + 16];
    name_of(dname, sizeof dname, u->id, ".data");
    int fd = openat(s->dirfd, dname, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
        close(fd); /* unlinked between the open and the lock */
        return -ENOENT;
    }
    u->lockfd = fd;
    return 0;
}

static void unlock_upload(struct upload *u)
{
    if (u->lockfd >= 0) {
        close(u->lockfd);
        u->lockfd = -1;
    }
}

static int locked_elsewhere(struct http_exchange *x);
static void unlock_if_idle(struct tus_server *s, const char *id);

/* Whether this process works on u now, so that its memory is the truth
 * and must not be replaced from the spool. */
static int busy_here(const struct upload *u)
{
    return u->lockfd >= 0 || u->st || u->in_callback;
}

/* Shared spool: brings u (in memory) up to what its state file says,
 * another process may have written it. 0; -ENOENT when the state file is
 * gone (u is forgotten and freed unless busy here); another errno when it
 * cannot be read (u as it was). */
static int refresh(struct tus_server *s, struct upload *u)
{
    struct state_rec r;
    int rc = read_state(s->dirfd, u->id, &r);
    if (rc == -ENOENT && !busy_here(u)) {
        forget(s, u);
        upload_free(u);
        return -ENOENT;
    }
    if (rc < 0)
        return rc;
    if (r.settled_at)
        mark_settled(s, u, r.settled_at);
    else if (!u->settled) {
        u->offset = r.offset;
        u->complete = r.complete;
    }
    free(r.buf);
    char dname[TUS_ID_LEN + 16];
    struct stat st;
    name_of(dname, sizeof dname, u->id, ".data");
    if (!u->settled && fstatat(s->dirfd, dname, &st, 0) == 0)
        u->touched = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    return 0;
}

/* The upload id names, as the spool says now: with a shared spool its
 * state file is read again (an upload another process created, wrote,
 * settled or released is seen as it is), unless this process works on
 * it; otherwise the record in memory. NULL if there is none. */
static struct upload *lookup(struct tus_server *s, const char *id)
{
    struct upload *u = find(s, id);
    if (!s->cfg.shared)
        return u;
    if (u)
        return busy_here(u) || refresh(s, u) != -ENOENT ? u : NULL;
    struct state_rec r;
    if (read_state(s->dirfd, id, &r) < 0)
        return NULL;
    int rc = upload_from_state(id, &r, &u);
    if (rc == 0 && r.settled_at) {
        u->settled = 1;
        u->settled_at = r.settled_at;
    }
    free(r.buf);
    if (rc < 0)
        return NULL;
    u->touched = touch(s);
    if (add(s, u) < 0) {
        upload_free(u);
        return NULL;
    }
    if (!u->settled)
        (void)refresh(s, u); /* the data file's mtime for the idle time */
    return u;
}

/* Whether the data file was last written `age_s` seconds ago or more:
 * with a shared spool another process's half-made creation is younger. */
static int older_than(const struct tus_server *s, const char *name, uint64_t age_s)
{
    struct stat st;
    if (fstatat(s->dirfd, name, &st, 0) < 0)
        return 0;
    uint64_t now = wall_seconds(s), m = st.st_mtim.tv_sec > 0 ? (uint64_t)st.st_mtim.tv_sec : 0;
    return m <= now && now - m >= age_s;
}

/* Loads <id>.state; repairs the recorded offset against the data file
 * (with a shared spool only when no other process holds the upload). */
static int load_one(struct tus_server *s, const char *id)
{
    if (find(s, id))
        return 0; /* readdir may show a name again after load_one renamed over it */
    struct state_rec r;
    int rc = read_state(s->dirfd, id, &r);
    if (rc < 0)
        return rc;
    struct upload *u;
    rc = upload_from_state(id, &r, &u);
    uint64_t settled_at = r.settled_at;
    free(r.buf);
    if (rc < 0)
        return rc;
    char dname[TUS_ID_LEN + 16];
    name_of(dname, sizeof dname, id, ".data");
    if (settled_at) {
        /* A crash between the settling state write and the unlink leaves
         * the data behind; nothing will read it again. */
        u->settled = 1;
        u->settled_at = settled_at;
        u->touched = touch(s);
        if (unlinkat(s->dirfd, dname, 0) == 0)
            (void)fsync(s->dirfd);
        rc = add(s, u);
        if (rc < 0)
            upload_free(u);
        return rc;
    }

    /* The data file must hold at least the recorded bytes; if a storage
     * fault lost some, fall back to what is there (the client resumes). */
    struct stat st;
    uint64_t have = 0;
    u->touched = touch(s);
    if (fstatat(s->dirfd, dname, &st, 0) == 0) {
        have = (uint64_t)st.st_size;
        u->touched = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    } else {
        int fd = openat(s->dirfd, dname, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = -errno;
            upload_free(u);
            return rc;
        }
        (void)fsync(fd);
        close(fd);
    }
    /* Shared: a PATCH another process streams has written past the
     * recorded offset, never short of it; a repair needs the lock. */
    if (have < u->offset && lock_upload(s, u) == 0) {
        rc = write_state(s, u, have, 0, 0);
        unlock_upload(u);
        if (rc < 0) {
            upload_free(u);
            return rc;
        }
        u->offset = have;
        u->complete = 0;
    }
    rc = add(s, u);
    if (rc < 0)
        upload_free(u);
    return rc;
}

static int scan(struct tus_server *s, struct op_error *err)
{
    for (int pass = 0; pass < 2; pass++) {
        int dfd = dup(s->dirfd);
        if (dfd < 0)
            return op_error_set(err, -errno, "spool_dir", "cannot read spool directory %s: %s",
                                s->spool_dir, strerror(errno));
        DIR *d = fdopendir(dfd);
        if (!d) {
            int e = errno;
            close(dfd);
            return op_error_set(err, -e, "spool_dir", "cannot read spool directory %s: %s",
                                s->spool_dir, strerror(e));
        }
        rewinddir(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            const char *nm = de->d_name;
            size_t len = strlen(nm);
            if (len < TUS_ID_LEN || !is_hex_id(nm, TUS_ID_LEN))
                continue;
            char id[TUS_ID_LEN + 1];
            memcpy(id, nm, TUS_ID_LEN);
            id[TUS_ID_LEN] = '\0';
            const char *suf = nm + TUS_ID_LEN;
            if (pass == 0 && strcmp(suf, ".state.tmp") == 0) {
                /* A crash during a state write; with a shared spool
                 * maybe another process's write under way, unless old. */
                if (!s->cfg.shared || older_than(s, nm, SHARED_STALE_S))
                    (void)unlinkat(s->dirfd, nm, 0);
            } else if (pass == 0 && strcmp(suf, ".state") == 0) {
                int rc = load_one(s, id);
                if (rc == -ENOMEM) {
                    closedir(d);
                    return op_error_set(err, rc, NULL, "out of memory loading uploads");
                }
                if (rc < 0)
                    s->bad_state++;
            } else if (pass == 1 && strcmp(suf, ".data") == 0 && !find(s, id)) {
                /* Data without any state file: a crash during creation,
                 * before the upload was announced to its client. */
                char st[TUS_ID_LEN + 16];
                name_of(st, sizeof st, id, ".state");
                if (faccessat(s->dirfd, st, F_OK, 0) < 0 && errno == ENOENT &&
                    (!s->cfg.shared || older_than(s, nm, SHARED_STALE_S)))
                    (void)unlinkat(s->dirfd, nm, 0);
            }
        }
        closedir(d);
    }
    return 0;
}

/* ---- lifecycle ---- */

int tus_server_new(const struct tus_server_config *cfg, struct tus_server **out,
                   struct op_error *err)
{
    if (!cfg || !out || !cfg->spool_dir || !cfg->authorize)
        return op_error_set(err, -EINVAL, NULL, "tus_server_new: missing spool_dir or authorize");
    const char *base = cfg->base_path ? cfg->base_path : "/files";
    size_t blen = strlen(base);
    while (blen > 1 && base[blen - 1] == '/')
        blen--;
    if (base[0] != '/' || blen > 256)
        return op_error_set(err, -EINVAL, "base_path", "base_path %s must start with /", base);
    struct tus_server *s = calloc(1, sizeof *s);
    if (!s)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    s->dirfd = -1;
    s->cfg = *cfg;
    if (!s->cfg.max_upload_bytes)
        s->cfg.max_upload_bytes = DEFAULT_MAX_UPLOAD;
    if (!s->cfg.max_spool_bytes)
        s->cfg.max_spool_bytes = DEFAULT_MAX_SPOOL;
    if (!s->cfg.max_uploads)
        s->cfg.max_uploads = DEFAULT_MAX_UPLOADS;
    if (!s->cfg.max_incomplete_per_principal)
        s->cfg.max_incomplete_per_principal = DEFAULT_MAX_INCOMPLETE;
    if (!s->cfg.max_metadata_bytes)
        s->cfg.max_metadata_bytes = DEFAULT_MAX_METADATA;
    if (s->cfg.max_metadata_bytes > METADATA_HARD_MAX)
        s->cfg.max_metadata_bytes = METADATA_HARD_MAX;
    if (!s->cfg.settled_keep_seconds)
        s->cfg.settled_keep_seconds = DEFAULT_SETTLED_KEEP;
    if (!s->cfg.now_ms)
        s->cfg.now_ms = default_clock;
    s->spool_dir = strdup(cfg->spool_dir);
    s->base_path = strndup(base, blen);
    s->base_len = blen == 1 ? 0 : blen; /* "/" as base: uploads at /<id> */
    int rc;
    if (!s->spool_dir || !s->base_path) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    s->cfg.spool_dir = s->spool_dir;
    s->cfg.base_path = s->base_path;
    if (mkdir(s->spool_dir, 0700) < 0 && errno != EEXIST) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot create spool directory %s: %s",
                          s->spool_dir, strerror(errno));
        goto fail;
    }
    s->dirfd = open(s->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot open spool directory %s: %s",
                          s->spool_dir, strerror(errno));
        goto fail;
    }
    rc = scan(s, err);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    tus_server_free(s);
    return rc;
}

void tus_server_free(struct tus_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        upload_free(s->up[i]);
    free(s->up);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->spool_dir);
    free(s->base_path);
    free(s);
}

void tus_server_stats(const struct tus_server *s, struct tus_server_stats *out)
{
    memset(out, 0, sizeof *out);
    out->uploads = (unsigned)s->n - s->n_settled;
    for (size_t i = 0; i < s->n; i++)
        out->complete += s->up[i]->complete && !s->up[i]->settled ? 1u : 0u;
    out->settled = s->n_settled;
    out->spool_bytes = s->spool_bytes;
    out->bad_state_files = s->bad_state;
}

int tus_server_upload_offset(const struct tus_server *s, const char *upload_id, uint64_t *offset,
                             uint64_t *length)
{
    const struct upload *u = upload_id ? find(s, upload_id) : NULL;
    if (!u)
        return -ENOENT;
    if (offset)
        *offset = u->offset;
    if (length)
        *length = u->length;
    return 0;
}

static void stream_abort(struct upload *u);

int tus_server_release(struct tus_server *s, const char *upload_id)
{
    struct upload *u = upload_id ? find(s, upload_id) : NULL;
    if (!u)
        return -ENOENT;
    stream_abort(u); /* its bytes are kept first, then go with the rest */
    /* Shared: never while another process writes or applies it. A data
     * file gone already (settled or released elsewhere) is no obstacle. */
    int lr = u->settled ? 0 : lock_upload(s, u);
    if (lr == -EBUSY)
        return -EBUSY;
    if (lr == -ENOENT && s->cfg.shared) {
        /* Settled or released by another process: its files are that
         * one's; only the stale view here goes. */
        forget(s, u);
        if (u->in_callback)
            u->released = 1;
        else
            upload_free(u);
        return 0;
    }
    /* State first: a crash between the two unlinks leaves a data file
     * without state, which the next start deletes. */
    char name[TUS_ID_LEN + 16];
    int rc = 0;
    name_of(name, sizeof name, u->id, ".state");
    if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
        rc = -errno;
    name_of(name, sizeof name, u->id, ".data");
    if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    if (fsync(s->dirfd) < 0 && rc == 0)
        rc = -errno;
    forget(s, u);
    if (u->in_callback)
        u->released = 1;
    else
        upload_free(u);
    return rc;
}

/* The settled record to forget first when there are too many: the oldest
 * one other than keep. */
static struct upload *oldest_settled(const struct tus_server *s, const struct upload *keep)
{
    struct upload *old = NULL;
    for (size_t i = 0; i < s->n; i++) {
        struct upload *o = s->up[i];
        if (o->settled && o != keep &&
            (!old || o->settled_at < old->settled_at ||
             (o->settled_at == old->settled_at && o->touched < old->touched)))
            old = o;
    }
    return old;
}

int tus_server_settle(struct tus_server *s, const char *upload_id)
{
    struct upload *u = s && upload_id ? find(s, upload_id) : NULL;
    if (!u)
        return -ENOENT;
    if (!u->complete)
        return -EINVAL;
    if (u->settled)
        return 0;
    /* The record first, then the data: a crash in between leaves a data
     * file the next start deletes, never a complete upload without data. */
    uint64_t at = wall_seconds(s);
    if (!at)
        at = 1;
    int rc = write_state(s, u, u->length, 1, at);
    if (rc < 0)
        return rc;
    s->spool_bytes -= u->length;
    s->n_settled++;
    u->settled = 1;
    u->settled_at = at;
    u->touched = touch(s); /* orders records settled in the same second */
    char name[TUS_ID_LEN + 16];
    name_of(name, sizeof name, u->id, ".data");
    if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    if (fsync(s->dirfd) < 0 && rc == 0)
        rc = -errno;
    unlock_upload(u); /* settled: nothing more is written or applied */
    /* Settled records do not count towards max_uploads, but are bounded by
     * it: past it the oldest is forgotten early (its client, if it asks,
     * hears 404 and uploads again, as before settling existed). A failed
     * unlink leaves a state file that the next start reloads and the sweep
     * removes, so it is not this call's failure. */
    while (s->n_settled > s->cfg.max_uploads) {
        struct upload *old = oldest_settled(s, u);
        if (!old)
            break;
        (void)tus_server_release(s, old->id);
    }
    return rc;
}

/* Offers a complete upload to on_complete. Returns 1 when it was taken,
 * 2 when it was taken and the outcome follows (TUS_COMPLETE_LATER), 0
 * when not (or nothing was offered), -EBADMSG when the embedder found the
 * data invalid (the upload is released then: HEAD answers 404). u may be
 * freed. */
static int deliver(struct tus_server *s, struct upload *u)
{
    if (!s->cfg.on_complete || !u->complete || u->accepted || u->settled)
        return 0;
    if (s->cfg.shared) {
        /* Exactly one process applies: the one holding the lock, with
         * the state as it is on the spool (settled elsewhere: done). */
        if (lock_upload(s, u) < 0)
            return 0;
        struct state_rec r;
        int rc = read_state(s->dirfd, u->id, &r);
        if (rc == 0 && r.settled_at)
            mark_settled(s, u, r.settled_at);
        free(r.buf);
        if (rc < 0 || u->settled) {
            unlock_upload(u);
            return 0;
        }
    }
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s.data", s->spool_dir, u->id);
    if (n < 0 || (size_t)n >= sizeof path)
        return 0;
    u->in_callback = 1;
    int rc = s->cfg.on_complete(s->cfg.ctx, u->id, u->principal, &u->md, path, u->length);
    u->in_callback = 0;
    if (u->released) {
        upload_free(u);
        return rc == 0 ? 1 : rc == -EBADMSG ? -EBADMSG : 0;
    }
    if (rc == -EBADMSG) {
        (void)tus_server_release(s, u->id);
        return -EBADMSG;
    }
    if (rc == 0 || rc == TUS_COMPLETE_LATER)
        u->accepted = 1;
    if (!u->accepted || u->settled)
        unlock_upload(u); /* kept while taken and not settled */
    return rc == TUS_COMPLETE_LATER ? 2 : rc == 0;
}

struct http_exchange *tus_server_completing(const struct tus_server *s)
{
    return s->completing;
}

/* Shared spool: brings the view in memory up to the spool, uploads other
 * processes created, settled or released included. */
static void sync_view(struct tus_server *s)
{
    if (!s->cfg.shared)
        return;
    size_t m = 0;
    char(*ids)[TUS_ID_LEN + 1] = malloc((s->n ? s->n : 1) * sizeof *ids);
    if (!ids)
        return;
    for (size_t i = 0; i < s->n; i++)
        memcpy(ids[m++], s->up[i]->id, TUS_ID_LEN + 1);
    for (size_t i = 0; i < m; i++)
        (void)lookup(s, ids[i]); /* forgets the ones gone */
    free(ids);
    int dfd = dup(s->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strlen(nm) != TUS_ID_LEN + 6 || !is_hex_id(nm, TUS_ID_LEN) ||
            strcmp(nm + TUS_ID_LEN, ".state") != 0)
            continue;
        char id[TUS_ID_LEN + 1];
        memcpy(id, nm, TUS_ID_LEN);
        id[TUS_ID_LEN] = '\0';
        if (!find(s, id))
            (void)lookup(s, id);
    }
    closedir(d);
}

int tus_server_expire(struct tus_server *s, uint64_t max_idle_seconds)
{
    if (!s)
        return -EINVAL;
    uint64_t now = now_ns(s);
    uint64_t idle =
        max_idle_seconds > UINT64_MAX / 1000000000u ? UINT64_MAX : max_idle_seconds * 1000000000u;
    uint64_t now_s = wall_seconds(s), keep = s->cfg.settled_keep_seconds;
    int removed = 0;
    sync_view(s);
    for (size_t i = 0; i < s->n;) {
        struct upload *u = s->up[i];
        /* A settled time further ahead than the keep time can only come
         * from a clock that was wrong; it would never expire, so it goes. */
        int settled_done = u->settled && (u->settled_at <= now_s ? now_s - u->settled_at >= keep
                                                                 : u->settled_at - now_s > keep);
        int idle_done = !u->complete && u->touched <= now && now - u->touched >= idle;
        if (settled_done || idle_done) {
            int rc = tus_server_release(s, u->id); /* removes s->up[i] */
            if (rc == -EBUSY) {
                i++; /* another process writes it: not idle after all */
                continue;
            }
            if (rc < 0)
                return rc;
            removed += idle_done;
        } else {
            i++;
        }
    }
    return removed;
}

int tus_server_redeliver(struct tus_server *s)
{
    if (!s)
        return -EINVAL;
    sync_view(s);
    /* Snapshot the ids: a callback may release any upload. */
    size_t m = 0;
    char(*ids)[TUS_ID_LEN + 1] = malloc((s->n ? s->n : 1) * sizeof *ids);
    if (!ids)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        if (s->up[i]->complete && !s->up[i]->accepted && !s->up[i]->settled)
            memcpy(ids[m++], s->up[i]->id, TUS_ID_LEN + 1);
    int accepted = 0;
    for (size_t i = 0; i < m; i++) {
        struct upload *u = find(s, ids[i]);
        if (u)
            accepted += deliver(s, u) > 0;
    }
    free(ids);
    return accepted;
}

enum tus_upload_state tus_server_upload_state(struct tus_server *s, const char *upload_id,
                                              const char *principal)
{
    if (!s || !upload_id || !principal || !is_hex_id(upload_id, strlen(upload_id)))
        return TUS_UPLOAD_NONE;
    struct upload *u = lookup(s, upload_id);
    if (!u || strcmp(u->principal, principal) != 0)
        return TUS_UPLOAD_NONE;
    if (u->settled)
        return TUS_UPLOAD_SETTLED;
    if (!u->complete)
        return TUS_UPLOAD_PARTIAL;
    return u->accepted ? TUS_UPLOAD_TAKEN : TUS_UPLOAD_COMPLETE;
}

int tus_server_offer(struct tus_server *s, const char *upload_id)
{
    struct upload *u = s && upload_id ? find(s, upload_id) : NULL;
    if (!u)
        return 0;
    int rc = deliver(s, u);
    return rc == -EBADMSG ? -EBADMSG : rc > 0;
}

/* ---- HTTP ---- */

static void hdr(struct http_exchange *x, const char *name, const char *value)
{
    (void)http_add_header(x, name, value);
}

static void hdr_u64(struct http_exchange *x, const char *name, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    hdr(x, name, b);
}

/* Answers with a problem+json body (problem.h). detail may quote what the
 * client sent (a metadata key) or come from the embedder: bytes outside
 * printable ASCII become '?' and it is cut to a few hundred bytes, so the
 * document always builds and stays small. */
static int fail(struct http_exchange *x, int status, const char *detail)
{
    char clean[400];
    size_t o = 0, w = 0; /* w: the escaped width, which the cut counts */
    for (const unsigned char *p = (const unsigned char *)detail; *p && w + 2 < sizeof clean; p++) {
        w += *p == '"' || *p == '\\' ? 2 : 1;
        clean[o++] = *p < 0x20 || *p > 0x7e ? '?' : (char)*p;
    }
    clean[o] = '\0';
    hdr(x, "Tus-Resumable", TUS_VERSION);
    http_respond_problem(x, status, status == 460 ? "Checksum Mismatch" : NULL, clean);
    return 0;
}

static int answer(struct http_exchange *x, int status)
{
    hdr(x, "Tus-Resumable", TUS_VERSION);
    http_respond(x, status, NULL, NULL, 0);
    return 0;
}

static void options(struct tus_server *s, struct http_exchange *x)
{
    hdr(x, "Tus-Version", TUS_VERSION);
    hdr(x, "Tus-Extension", "creation,creation-with-upload,checksum,termination");
    hdr(x, "Tus-Checksum-Algorithm", "sha256,sha1");
    hdr_u64(x, "Tus-Max-Size", s->cfg.max_upload_bytes);
    answer(x, 204);
}

static int fs_status(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT ? 507 : 500;
}

int tus_upload_id(const char *principal, const char *key, char out[TUS_ID_LEN + 1])
{
    size_t kl = key ? strlen(key) : 0;
    if (!kl || kl > TUS_KEY_MAX || !principal || !principal_ok(principal))
        return -EINVAL;
    for (size_t i = 0; i < kl; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return -EINVAL;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    /* the label and the principal with their NULs: no two pairs collide */
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(m, "outpost-tus-key", 16) == 1 &&
             EVP_DigestUpdate(m, principal, strlen(principal) + 1) == 1 &&
             EVP_DigestUpdate(m, key, kl) == 1 && EVP_DigestFinal_ex(m, d, &dl) == 1;
    EVP_MD_CTX_free(m);
    if (!ok || dl < TUS_ID_LEN / 2)
        return -EIO;
    return codec_hex_encode(d, TUS_ID_LEN / 2, out, TUS_ID_LEN + 1) < 0 ? -EIO : 0;
}

/* The id a request's Outpost-Upload-Key names for `principal`: 1 and the
 * id, 0 when the request has no key, -EINVAL for a malformed key. */
static int key_id(struct http_exchange *x, const char *principal, char id[TUS_ID_LEN + 1])
{
    const char *k = http_header(x, "Outpost-Upload-Key");
    if (!k)
        return 0;
    return tus_upload_id(principal, k, id) < 0 ? -EINVAL : 1;
}

static void location(const struct tus_server *s, struct http_exchange *x, const char *id)
{
    char loc[300];
    snprintf(loc, sizeof loc, "%s/%s", s->base_path[1] ? s->base_path : "", id);
    hdr(x, "Location", loc);
}

/* Checks a creation's headers and metadata and creates its upload, or,
 * when its Outpost-Upload-Key names an upload that exists, finds that one
 * (*existing = 1) if it has the same Upload-Length and Upload-Metadata.
 * Returns 0 with *out; 1 when it answered a refusal. Nothing is stored
 * or released before every check passed. */
static int create_upload(struct tus_server *s, struct http_exchange *x, const char *principal,
                         struct upload **out, int *existing)
{
    *existing = 0;
    uint64_t length;
    const char *ul = http_header(x, "Upload-Length");
    if (http_header(x, "Upload-Defer-Length"))
        return fail(x, 400, "Upload-Defer-Length is not supported: send Upload-Length"), 1;
    if (!ul)
        return fail(x, 400, "Upload-Length is required"), 1;
    if (parse_u64(ul, &length) < 0)
        return fail(x, 400, "Upload-Length must be a non-negative decimal integer"), 1;
    if (length > s->cfg.max_upload_bytes) {
        hdr_u64(x, "Tus-Max-Size", s->cfg.max_upload_bytes);
        return fail(x, 413, "Upload-Length exceeds Tus-Max-Size"), 1;
    }
    char id[TUS_ID_LEN + 1];
    int keyed = key_id(x, principal, id);
    if (keyed < 0)
        return fail(x, 400,
                    "Outpost-Upload-Key must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' "
                    "and '-'"),
               1;
    const char *meta = http_header(x, "Upload-Metadata");
    if (meta && strlen(meta) > s->cfg.max_metadata_bytes)
        return fail(x, 400, "Upload-Metadata is too long"), 1;
    struct upload *old = keyed ? lookup(s, id) : NULL;
    if (old) {
        /* The same creation again (its answer was lost): the upload as it
         * stands. Anything else under the same key is a conflict. */
        if (strcmp(old->principal, principal) != 0 || old->length != length ||
            strcmp(old->meta_raw, meta ? meta : "") != 0) {
            hdr_u64(x, "Upload-Offset", old->offset);
            hdr_u64(x, "Upload-Length", old->length);
            return fail(x, 409,
                        "an upload with this Outpost-Upload-Key exists with another "
                        "Upload-Length or Upload-Metadata: nothing was changed"),
                   1;
        }
        *existing = 1;
        *out = old;
        return 0;
    }
    /* Parsed once, before anything changes: a refused creation must not
     * have evicted another upload. */
    struct tus_metadata md;
    char *arena = NULL, why[256];
    int rc = parse_metadata(meta ? meta : "", &md, &arena, why, sizeof why);
    if (rc == -EINVAL)
        return fail(x, 400, why), 1;
    if (rc < 0)
        return fail(x, 500, "out of memory"), 1;
    if (s->cfg.admit) {
        char detail[256] = "";
        rc = s->cfg.admit(s->cfg.ctx, principal, &md, detail, sizeof detail);
        if (rc < 0) {
            free(arena);
            int st = rc == -EPERM ? 403 : rc == -EINVAL ? 400 : 503;
            return fail(x, st,
                        detail[0]   ? detail
                        : st == 503 ? "the server cannot take uploads now: retry later"
                                    : "the upload was refused"),
                   1;
        }
    }
    /* At its cap a principal's least recently written unfinished upload
     * makes room. A client that crashed between our 201 and saving the
     * Location has no other way to get rid of its orphans, and refusing it
     * would lock it out for good; an evicted upload was never delivered,
     * so its client simply uploads that data again (HEAD answers 404). */
    unsigned incomplete = 0;
    struct upload *oldest = NULL;
    for (size_t i = 0; i < s->n; i++) {
        struct upload *o = s->up[i];
        if (o->complete || strcmp(o->principal, principal) != 0)
            continue;
        incomplete++;
        if (!oldest || o->touched < oldest->touched)
            oldest = o;
    }
    /* (-EBUSY: another process writes it now, so it is not abandoned.) */
    if (incomplete >= s->cfg.max_incomplete_per_principal && oldest &&
        (rc = tus_server_release(s, oldest->id)) < 0 && rc != -EBUSY) {
        free(arena);
        return fail(x, 500, "cannot remove an abandoned upload"), 1;
    }
    if (s->n - s->n_settled >= s->cfg.max_uploads || s->spool_bytes > s->cfg.max_spool_bytes ||
        length > s->cfg.max_spool_bytes - s->spool_bytes) {
        free(arena);
        return fail(x, 507, "the upload spool is full: retry later"), 1;
    }

    unsigned char rnd[TUS_ID_LEN / 2];
    for (int tries = 0; !keyed; tries++) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd || tries > 3) {
            free(arena);
            return fail(x, 500, "no randomness for an upload id"), 1;
        }
        (void)codec_hex_encode(rnd, sizeof rnd, id, sizeof id);
        if (!find(s, id))
            break;
    }
    struct upload *u;
    rc = upload_new(id, principal, length, meta, &md, arena, &u);
    if (rc < 0)
        return fail(x, 500, "out of memory"), 1;
    char dname[TUS_ID_LEN + 16];
    name_of(dname, sizeof dname, id, ".data");
    int fd;
    if (s->cfg.shared) {
        /* The lock from the first moment the data file exists: another
         * process creating under the same key at once gets 423, and a
         * start's sweep never takes a creation under way for a crash's
         * leftover. A keyed data file without state is such a leftover
         * (or was, until this lock): emptied, it is this upload's. */
        fd = openat(s->dirfd, dname, O_RDWR | O_CREAT | (keyed ? 0 : O_EXCL) | O_CLOEXEC, 0600);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            upload_free(u);
            return locked_elsewhere(x), 1;
        }
        struct state_rec r;
        if (fd >= 0 && keyed && read_state(s->dirfd, id, &r) != -ENOENT) {
            free(r.buf); /* another process made it just now: the retry finds it */
            close(fd);
            upload_free(u);
            return locked_elsewhere(x), 1;
        }
        if (fd >= 0 && ftruncate(fd, 0) < 0) {
            rc = -errno;
            close(fd);
            goto io_fail;
        }
    } else {
        /* A keyed id may have a data file left by a crash during an
         * earlier creation under the same key (no state file: nothing of
         * it counts). */
        if (keyed)
            (void)unlinkat(s->dirfd, dname, 0);
        fd = openat(s->dirfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        rc = -errno;
        goto io_fail;
    }
    rc = fsync(fd) < 0 ? -errno : 0;
    if (s->cfg.shared && rc == 0)
        u->lockfd = fd; /* held until the request is done with it */
    else
        close(fd);
    if (rc == 0)
        rc = write_state(s, u, 0, length == 0, 0);
    if (rc == 0)
        rc = add(s, u);
    if (rc < 0) {
        (void)unlinkat(s->dirfd, dname, 0);
        name_of(dname, sizeof dname, id, ".state");
        (void)unlinkat(s->dirfd, dname, 0);
        goto io_fail;
    }
    u->complete = length == 0;
    u->touched = touch(s);
    *out = u;
    return 0;
io_fail:
    upload_free(u);
    return fail(x, fs_status(rc), "cannot store the upload on the server"), 1;
}

static int patch_done(struct tus_server *s, struct http_exchange *x, struct upload *u, int status);
static int content_type_ok(const char *ct);
static int checksum_check(const char *h, const char *body, size_t len, const char **why);
static int append(struct tus_server *s, struct upload *u, const char *body, size_t len);

/* POST on the collection (creation), with its first bytes when it has a
 * body (creation-with-upload). */
static int create(struct tus_server *s, struct http_exchange *x, const char *principal)
{
    size_t blen;
    const char *body = http_body(x, &blen);
    if (blen > 0) {
        /* the body is checked before anything is created */
        if (!content_type_ok(http_header(x, "Content-Type")))
            return fail(x, 415,
                        "a creation with data needs Content-Type: application/offset+octet-stream");
        uint64_t length;
        const char *ul = http_header(x, "Upload-Length");
        if (ul && parse_u64(ul, &length) == 0 && blen > length)
            return fail(x, 413, "the data would pass Upload-Length: nothing was stored");
        const char *why = "";
        int st = checksum_check(http_header(x, "Upload-Checksum"), body, blen, &why);
        if (st)
            return fail(x, st, why);
    }
    struct upload *u;
    int existing;
    if (create_upload(s, x, principal, &u, &existing))
        return 0;
    char id[TUS_ID_LEN + 1];
    memcpy(id, u->id, sizeof id);
    if (existing && blen > 0 && u->offset == 0 && !u->complete) {
        int lr = lock_upload(s, u); /* shared: the data goes in under the lock */
        if (lr == -EBUSY)
            return locked_elsewhere(x);
        if (lr < 0 || (s->cfg.shared && refresh(s, u) < 0)) {
            unlock_if_idle(s, id);
            return fail(x, 404, "no such upload");
        }
    }
    location(s, x, u->id);
    if (blen > 0 && u->offset == 0 && !u->complete) {
        int rc = append(s, u, body, blen);
        if (rc < 0) {
            unlock_if_idle(s, id);
            hdr_u64(x, "Upload-Offset", u->offset);
            return fail(x, fs_status(rc), "cannot store the data: HEAD and resume");
        }
        (void)patch_done(s, x, u, 201);
        unlock_if_idle(s, id);
        return 0;
    }
    hdr_u64(x, "Upload-Offset", u->offset);
    answer(x, 201);
    if (u->complete && !existing)
        (void)deliver(s, u);
    unlock_if_idle(s, id);
    return 0;
}

static void head(struct http_exchange *x, const struct upload *u)
{
    hdr_u64(x, "Upload-Offset", u->offset);
    hdr_u64(x, "Upload-Length", u->length);
    if (u->meta_raw[0])
        hdr(x, "Upload-Metadata", u->meta_raw);
    hdr(x, "Cache-Control", "no-store");
    answer(x, 200);
}

static int content_type_ok(const char *ct)
{
    static const char want[] = "application/offset+octet-stream";
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Parses an Upload-Checksum header: its algorithm and the digest it
 * announces. 0, or the status to answer and *why. */
static int checksum_parse(const char *h, const EVP_MD **mdp, unsigned char *want, unsigned *wlenp,
                          const char **why)
{
    const char *sp = strchr(h, ' ');
    if (!sp) {
        *why = "Upload-Checksum must be an algorithm and a base64 digest";
        return 400;
    }
    const EVP_MD *md = NULL;
    size_t alen = (size_t)(sp - h);
    if (alen == 6 && memcmp(h, "sha256", 6) == 0)
        md = EVP_sha256();
    else if (alen == 4 && memcmp(h, "sha1", 4) == 0)
        md = EVP_sha1();
    if (!md) {
        *why = "unsupported checksum algorithm: use sha256 or sha1";
        return 400;
    }
    const char *b64 = sp + 1;
    size_t blen = strlen(b64);
    unsigned char buf[EVP_MAX_MD_SIZE + 64];
    if (blen > 2 * EVP_MAX_MD_SIZE) {
        *why = "Upload-Checksum digest is too long";
        return 400;
    }
    ssize_t wlen = codec_b64_decode(b64, blen, buf, sizeof buf, NULL);
    if (wlen < 0 || wlen != EVP_MD_get_size(md)) {
        *why = "Upload-Checksum digest is not base64 of the algorithm's digest length";
        return 400;
    }
    memcpy(want, buf, (size_t)wlen);
    *wlenp = (unsigned)wlen;
    *mdp = md;
    return 0;
}

#define CHECKSUM_MISMATCH                                                                          \
    "the chunk does not match Upload-Checksum: nothing was stored, send it again"

/* 0 when the Upload-Checksum header (if any) matches body; otherwise the
 * status to answer and *why. */
static int checksum_check(const char *h, const char *body, size_t len, const char **why)
{
    if (!h)
        return 0;
    const EVP_MD *md;
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wlen;
    int st = checksum_parse(h, &md, want, &wlen, why);
    if (st)
        return st;
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned glen = 0;
    if (EVP_Digest(body, len, got, &glen, md, NULL) != 1) {
        *why = "cannot compute the checksum";
        return 500;
    }
    if (glen != wlen || memcmp(got, want, glen) != 0) {
        *why = CHECKSUM_MISMATCH;
        return 460;
    }
    return 0;
}

/* Answers the PATCH that brought u to offset noff (durable already) and
 * hands a completed upload to the embedder: before the answer when
 * deliver_before_answer is set (on_complete may add headers to it, or
 * find the data invalid: 460), after it otherwise. */
static int patch_done(struct tus_server *s, struct http_exchange *x, struct upload *u, int status)
{
    hdr_u64(x, "Upload-Offset", u->offset);
    if (!u->complete || !s->cfg.deliver_before_answer) {
        int done = u->complete;
        answer(x, status);
        if (done)
            (void)deliver(s, u);
        return 0;
    }
    u->wait_status = status;
    s->completing = x;
    int rc = deliver(s, u); /* may free u */
    s->completing = NULL;
    if (rc == 2)
        return 0; /* answered by tus_server_finish */
    if (rc == -EBADMSG)
        return fail(x, 460, DISCARDED);
    return answer(x, status);
}

void tus_server_finish(struct tus_server *s, const char *upload_id, struct http_exchange *x, int rc)
{
    struct upload *u = find(s, upload_id);
    int status = u && u->wait_status ? u->wait_status : 204;
    if (u && rc == -EBADMSG)
        (void)tus_server_release(s, upload_id);
    else if (u && rc < 0 && !u->settled)
        u->accepted = 0; /* offered again: by tus_server_redeliver, or after a restart */
    if (u && rc != -EBADMSG)
        u->wait_status = 0;
    if (u && rc != -EBADMSG && (!u->accepted || u->settled))
        unlock_upload(u);
    if (!x)
        return;
    if (rc == -EBADMSG) {
        (void)fail(x, 460, DISCARDED);
    } else if (rc == -ECANCELED) {
        hdr(x, "Retry-After", "5");
        (void)fail(x, 503,
                   "the server is stopping: the upload is complete and kept, and is processed "
                   "when the server is back; HEAD it then");
    } else {
        (void)answer(x, status);
    }
}

int tus_server_answer_waiting(struct tus_server *s, const char *upload_id, struct http_exchange *x)
{
    struct upload *u = find(s, upload_id);
    int status = u && u->wait_status ? u->wait_status : 204;
    if (u) {
        u->wait_status = 0;
        hdr_u64(x, "Upload-Offset", u->offset);
    }
    (void)answer(x, status);
    return u ? 0 : -ENOENT;
}

/* ---- streamed PATCH bodies ---- */

static void stream_free(struct stream *st)
{
    if (st->u)
        st->u->st = NULL;
    if (st->fd >= 0)
        close(st->fd);
    EVP_MD_CTX_free(st->mdc);
    free(st);
}

static int stream_data(void *ctx, struct http_exchange *x, const char *data, size_t len)
{
    (void)x;
    struct stream *st = ctx;
    if (!st->u)
        return -ENOENT;
    if (len > st->u->length - st->start - st->got)
        return -EFBIG; /* cannot happen: the gate capped the body */
    int rc = write_all_at(st->fd, data, len, st->start + st->got);
    if (rc < 0) {
        st->err = rc;
        return rc;
    }
    if (st->mdc && EVP_DigestUpdate(st->mdc, data, len) != 1) {
        EVP_MD_CTX_free(st->mdc);
        st->mdc = NULL;
        st->err = -EIO;
        return -EIO;
    }
    st->got += len;
    return 0;
}

/* Makes the first `keep` bytes written durable and records them: data
 * first (truncated to its new end, fdatasync), then the state file. */
static int stream_publish(struct stream *st, uint64_t keep)
{
    struct upload *u = st->u;
    uint64_t noff = st->start + keep;
    if (ftruncate(st->fd, (off_t)noff) < 0)
        return -errno;
    if (fdatasync(st->fd) < 0)
        return -errno;
    if (noff == u->offset)
        return 0;
    int done = noff == u->length;
    int rc = write_state(st->s, u, noff, done, 0);
    if (rc < 0)
        return rc;
    u->offset = noff;
    u->complete = done;
    u->touched = touch(st->s);
    return 0;
}

/* The body broke off: what arrived is kept, unverified (a checksum covers
 * only a whole request; the upload's content is checked at completion). */
static void stream_cut(void *ctx, struct http_exchange *x, uint64_t received)
{
    (void)x;
    (void)received;
    struct stream *st = ctx;
    struct upload *u = st->u;
    if (st->u && !st->err && st->got > 0)
        (void)stream_publish(st, st->got);
    else if (st->u)
        (void)ftruncate(st->fd, (off_t)st->u->offset);
    /* A cut after the last byte leaves a complete upload undelivered
     * here (this may run inside tus_server_release); the next
     * tus_server_redeliver offers it, or (shared spool) the next HEAD,
     * wherever it arrives, now that the lock goes. */
    stream_free(st);
    if (u)
        unlock_upload(u);
}

static void stream_abort(struct upload *u)
{
    if (u->st)
        http_exchange_abort(u->st->x); /* calls stream_cut */
}

/* The handler's end of a streamed PATCH: the whole body arrived. */
static int stream_finish(struct tus_server *s, struct http_exchange *x, struct stream *st)
{
    struct upload *u = st->u;
    int status = st->creation ? 201 : 204;
    if (st->creation)
        location(s, x, u->id);
    st->u = NULL;
    u->st = NULL;
    if (st->err) {
        (void)ftruncate(st->fd, (off_t)u->offset);
        int rc = st->err;
        stream_free(st);
        hdr_u64(x, "Upload-Offset", u->offset);
        return fail(x, fs_status(rc), "cannot store the chunk: HEAD and resume");
    }
    if (st->mdc) {
        unsigned char got[EVP_MAX_MD_SIZE];
        unsigned glen = 0;
        int ok = EVP_DigestFinal_ex(st->mdc, got, &glen) == 1 && glen == st->wantlen &&
                 memcmp(got, st->want, glen) == 0;
        if (!ok) {
            (void)ftruncate(st->fd, (off_t)u->offset); /* back to where the PATCH began */
            stream_free(st);
            hdr_u64(x, "Upload-Offset", u->offset);
            return fail(x, 460, CHECKSUM_MISMATCH);
        }
    }
    st->u = u;
    int rc = stream_publish(st, st->got);
    st->u = NULL;
    stream_free(st);
    if (rc < 0) {
        hdr_u64(x, "Upload-Offset", u->offset);
        return fail(x, fs_status(rc), "cannot store the chunk: HEAD and resume");
    }
    return patch_done(s, x, u, status);
}

static int patch(struct tus_server *s, struct http_exchange *x, struct upload *u)
{
    if (!content_type_ok(http_header(x, "Content-Type")))
        return fail(x, 415, "Content-Type must be application/offset+octet-stream");
    uint64_t off;
    const char *uo = http_header(x, "Upload-Offset");
    if (!uo)
        return fail(x, 400, "Upload-Offset is required");
    if (parse_u64(uo, &off) < 0)
        return fail(x, 400, "Upload-Offset must be a non-negative decimal integer");
    size_t len;
    const char *body = http_body(x, &len);
    if (off != u->offset) {
        /* The server's offset, so the client can resume without a HEAD. */
        hdr_u64(x, "Upload-Offset", u->offset);
        return fail(x, 409, "Upload-Offset does not match the stored offset: HEAD and resume");
    }
    if (u->settled && len > 0) {
        /* Its data is gone; the offset tells the client it is done. */
        hdr_u64(x, "Upload-Offset", u->offset);
        return fail(x, 409, "the upload is complete and was processed: nothing more is accepted");
    }
    if (len > u->length - u->offset)
        return fail(x, 413, "the chunk would pass Upload-Length: nothing was stored");
    const char *why = "";
    int st = checksum_check(http_header(x, "Upload-Checksum"), body, len, &why);
    if (st)
        return fail(x, st, why);
    if (len == 0) {
        hdr_u64(x, "Upload-Offset", u->offset);
        return answer(x, 204);
    }

    int rc = append(s, u, body, len);
    if (rc < 0) {
        hdr_u64(x, "Upload-Offset", u->offset);
        return fail(x, fs_status(rc), "cannot store the chunk: HEAD and resume");
    }
    return patch_done(s, x, u, 204);
}

/* Appends a whole buffered body at the upload's offset: data durable
 * first, then the state file, then the offset in memory. */
static int append(struct tus_server *s, struct upload *u, const char *body, size_t len)
{
    uint64_t noff = u->offset + len;
    int done = noff == u->length;
    char dname[TUS_ID_LEN + 16];
    name_of(dname, sizeof dname, u->id, ".data");
    int rc = 0;
    int fd = openat(s->dirfd, dname, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
    } else {
        rc = write_all_at(fd, body, len, u->offset);
        /* Drop anything a torn earlier append left past the new end. */
        if (rc == 0 && ftruncate(fd, (off_t)noff) < 0)
            rc = -errno;
        if (rc == 0 && fdatasync(fd) < 0)
            rc = -errno;
        if (rc < 0)
            (void)ftruncate(fd, (off_t)u->offset); /* give back the space of a failed write */
        close(fd);
    }
    if (rc == 0)
        rc = write_state(s, u, noff, done, 0);
    if (rc < 0)
        return rc;
    u->offset = noff;
    u->complete = done;
    u->touched = touch(s);
    return 0;
}

/* DELETE (termination): the client gives the upload up, and its data and
 * state go. An upload the embedder has taken (settled, or accepted and
 * being processed) is past giving up: 409, and it is left as it is, so a
 * later HEAD still says complete. */
static int terminate(struct tus_server *s, struct http_exchange *x, struct upload *u)
{
    if (u->settled || (u->complete && u->accepted)) {
        hdr_u64(x, "Upload-Offset", u->offset);
        hdr_u64(x, "Upload-Length", u->length);
        return fail(x, 409,
                    "the upload is complete and was taken for processing: it cannot be "
                    "terminated; its outcome (the receipt) stands");
    }
    /* State before data (tus_server_release): a crash in between leaves a
     * data file without state, which the next start deletes. */
    if (tus_server_release(s, u->id) < 0)
        return fail(x, 500,
                    "the upload is terminated but a file of it could not be removed: the "
                    "server removes it at its next start");
    return answer(x, 204);
}

/* 423 for a request to an upload another process writes or applies. */
static int locked_elsewhere(struct http_exchange *x)
{
    hdr(x, "Retry-After", "1");
    return fail(x, 423,
                "another receiver is writing or applying this upload now: nothing was stored; "
                "HEAD it and resume after Retry-After");
}

/* After a request: the upload's lock goes unless the upload is still
 * being written here (a streamed PATCH) or was taken and not settled
 * (its apply holds it until the outcome). */
static void unlock_if_idle(struct tus_server *s, const char *id)
{
    struct upload *u = find(s, id);
    if (u && !u->st && !u->in_callback && (!u->accepted || u->settled))
        unlock_upload(u);
}

int tus_server_handle(struct tus_server *s, struct http_exchange *x)
{
    const char *path = http_path(x);
    if (strncmp(path, s->base_path, s->base_len) != 0)
        return 0;
    const char *rest = path + s->base_len;
    if (*rest != '\0' && *rest != '/')
        return 0; /* "/filesystem" is not ours */
    if (*rest == '/')
        rest++;
    int collection = *rest == '\0';

    const char *method = http_method(x);
    const char *ovr = http_header(x, "X-HTTP-Method-Override");
    if (ovr && strcmp(method, "POST") == 0)
        method = ovr; /* for proxies that pass only GET and POST */

    char principal[TUS_PRINCIPAL_MAX] = "";
    int rc = s->cfg.authorize(s->cfg.ctx, x, principal, sizeof principal);
    if (rc == -EACCES || rc == -EPERM) {
        (void)fail(x, 401,
                   s->cfg.unauthorized_detail ? s->cfg.unauthorized_detail
                                              : "authentication required");
        return 1;
    }
    if (rc < 0) {
        (void)fail(x, 503, "the credentials cannot be checked now: retry later");
        return 1;
    }
    if (!principal_ok(principal)) {
        (void)fail(x, 500, "the server cannot tell who is uploading: nothing was stored");
        return 1;
    }
    http_set_user(x, principal);

    if (strcmp(method, "OPTIONS") == 0) {
        options(s, x);
        return 1;
    }
    const char *tr = http_header(x, "Tus-Resumable");
    if (!tr || strcmp(tr, TUS_VERSION) != 0) {
        hdr(x, "Tus-Version", TUS_VERSION);
        (void)fail(x, 412, "Tus-Resumable: 1.0.0 is required");
        return 1;
    }
    if (collection) {
        char kid[TUS_ID_LEN + 1];
        struct upload *ku = NULL;
        if (strcmp(method, "POST") == 0 && key_id(x, principal, kid) == 1)
            ku = find(s, kid);
        if (ku && ku->st && ku->st->x == x) {
            (void)stream_finish(s, x, ku->st); /* its first bytes were streamed */
            unlock_if_idle(s, kid);
        } else if (strcmp(method, "POST") == 0) {
            (void)create(s, x, principal);
        } else {
            hdr(x, "Allow", "OPTIONS, POST");
            (void)fail(x, 405, "the upload collection takes OPTIONS and POST");
        }
        return 1;
    }
    struct upload *u = is_hex_id(rest, strlen(rest)) ? lookup(s, rest) : NULL;
    /* Another principal's upload does not exist for this one. */
    if (!u || strcmp(u->principal, principal) != 0) {
        (void)fail(x, 404, "no such upload");
        return 1;
    }
    char id[TUS_ID_LEN + 1];
    memcpy(id, u->id, sizeof id);
    struct stream *st = u->st;
    if (st && st->x == x) {
        (void)stream_finish(s, x, st);
        unlock_if_idle(s, id);
        return 1;
    }
    /* A request of the client's while an older PATCH of the upload still
     * streams: that connection is dead to the client (it reconnected), so
     * it is closed now and what it brought is kept. */
    stream_abort(u);
    int writes = strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
    if (writes && s->cfg.shared) {
        /* Shared spool: a write needs the upload's lock, and the state as
         * the spool has it once the lock is held. */
        int lr = lock_upload(s, u);
        if (lr == -EBUSY) {
            (void)locked_elsewhere(x);
            return 1;
        }
        if ((lr == 0 ? refresh(s, u) : 0) < 0 || !(u = lookup(s, id))) {
            unlock_if_idle(s, id);
            (void)fail(x, 404, "no such upload");
            return 1;
        }
    }
    if (strcmp(method, "HEAD") == 0) {
        head(x, u);
        /* Complete, not applied, held by nobody: whoever applied it died
         * (another receiver, killed), so it is applied here. */
        if (s->cfg.shared && u->complete && !u->settled && !u->accepted && u->lockfd < 0)
            (void)deliver(s, u);
    } else if (strcmp(method, "PATCH") == 0) {
        (void)patch(s, x, u);
    } else if (strcmp(method, "DELETE") == 0) {
        (void)terminate(s, x, u);
    } else {
        hdr(x, "Allow", "OPTIONS, HEAD, PATCH, DELETE");
        (void)fail(x, 405, "an upload takes OPTIONS, HEAD, PATCH and DELETE");
    }
    unlock_if_idle(s, id);
    return 1;
}

/* Starts streaming the body of x into u from u's offset. 0: the handler
 * answers x instead (it buffers the body). */
static int stream_start(struct tus_server *s, struct http_exchange *x, struct upload *u,
                        uint64_t len, int creation);

/* A request whose body would complete an upload while the embedder cannot
 * take one: 503 with Retry-After before a byte of the body is read. */
static int busy_refused(struct tus_server *s, struct http_exchange *x)
{
    unsigned wait = s->cfg.busy ? s->cfg.busy(s->cfg.ctx) : 0;
    if (!wait)
        return 0;
    hdr_u64(x, "Retry-After", wait);
    (void)fail(x, 503,
               "the server is applying as many completed uploads as it holds: send this "
               "last chunk again after Retry-After; nothing of it was stored");
    return 1;
}

/* A creation with its first bytes and an Outpost-Upload-Key: the upload
 * is created (or found, when the key names it) before the body is read,
 * and the body streams into it as a PATCH's would, so a cut keeps what
 * arrived. An upload found further along answers at once with its offset,
 * without the body. */
static int gate_create(struct tus_server *s, struct http_exchange *x, const char *principal,
                       uint64_t len)
{
    char id[TUS_ID_LEN + 1];
    const char *ul = http_header(x, "Upload-Length");
    uint64_t length;
    if (key_id(x, principal, id) != 1 || !ul || parse_u64(ul, &length) < 0 || len > length)
        return 0; /* the handler answers (it buffers the body) */
    struct upload *u;
    int existing;
    if (create_upload(s, x, principal, &u, &existing))
        return 1; /* refused before a byte of the body */
    if (existing)
        stream_abort(u); /* an older request's connection, dead to the client */
    char uid[TUS_ID_LEN + 1];
    memcpy(uid, u->id, sizeof uid);
    if (existing && u->offset == 0 && !u->complete) {
        int lr = lock_upload(s, u); /* shared: the data goes in under the lock */
        if (lr == -EBUSY)
            return locked_elsewhere(x), 1;
        if (lr < 0 || (s->cfg.shared && refresh(s, u) < 0)) {
            unlock_if_idle(s, uid);
            return 0; /* the handler answers from the spool's state */
        }
    }
    int rc = 1;
    if (u->offset == 0 && !u->complete && len == length && busy_refused(s, x)) {
        rc = 1;
    } else if (u->offset == 0 && !u->complete) {
        rc = stream_start(s, x, u, len, 1); /* 0: the handler buffers it (finds u) */
    } else {
        location(s, x, u->id);
        hdr_u64(x, "Upload-Offset", u->offset);
        answer(x, 201);
        if (u->complete && !existing)
            (void)deliver(s, u);
    }
    unlock_if_idle(s, uid);
    return rc;
}

int tus_server_gate(struct tus_server *s, struct http_exchange *x, const char *principal)
{
    const char *path = http_path(x);
    if (strncmp(path, s->base_path, s->base_len) != 0 ||
        (path[s->base_len] != '/' && path[s->base_len] != '\0'))
        return 0;
    const char *rest = path + s->base_len + (path[s->base_len] == '/');
    const char *method = http_method(x);
    const char *ovr = http_header(x, "X-HTTP-Method-Override");
    if (ovr && strcmp(method, "POST") == 0)
        method = ovr;
    const char *tr = http_header(x, "Tus-Resumable");
    const char *cl = http_header(x, "Content-Length");
    const char *uo = http_header(x, "Upload-Offset");
    uint64_t off, len;
    if (strcmp(method, "POST") == 0 && !rest[0] && tr && strcmp(tr, TUS_VERSION) == 0 && cl &&
        parse_u64(cl, &len) == 0 && len > 0 && !http_header(x, "Transfer-Encoding") &&
        content_type_ok(http_header(x, "Content-Type")))
        return gate_create(s, x, principal, len);
    if (strcmp(method, "PATCH") != 0 || !tr || strcmp(tr, TUS_VERSION) != 0 || !cl ||
        parse_u64(cl, &len) < 0 || len == 0 || !uo || parse_u64(uo, &off) < 0 ||
        http_header(x, "Transfer-Encoding") || !content_type_ok(http_header(x, "Content-Type")) ||
        !is_hex_id(rest, strlen(rest)))
        return 0; /* the handler answers it, whatever it is */
    struct upload *u = lookup(s, rest);
    if (!u || strcmp(u->principal, principal) != 0) {
        /* The handler's answer, before a byte of the body is read:
         * another principal's upload does not exist for this one. */
        (void)fail(x, 404, "no such upload");
        return 1;
    }
    if (u->settled || u->complete)
        return 0;
    stream_abort(u); /* an older PATCH's connection, dead to the client */
    if (s->cfg.shared) {
        /* The lock before the offset: another process may be writing. */
        int lr = lock_upload(s, u);
        if (lr == -EBUSY) {
            (void)locked_elsewhere(x);
            return 1;
        }
        if (lr < 0 || refresh(s, u) < 0 || u->settled || u->complete) {
            unlock_upload(u);
            return 0; /* the handler answers from the spool's state */
        }
    }
    int rc;
    if (off != u->offset) {
        hdr_u64(x, "Upload-Offset", u->offset);
        (void)fail(x, 409, "Upload-Offset does not match the stored offset: HEAD and resume");
        rc = 1;
    } else if (len > u->length - u->offset) {
        rc = 0; /* 413 from the handler */
    } else if (len == u->length - u->offset && busy_refused(s, x)) {
        rc = 1;
    } else {
        rc = stream_start(s, x, u, len, 0);
    }
    if (!u->st)
        unlock_upload(u); /* not streaming: the handler locks again if it writes */
    return rc;
}

static int stream_start(struct tus_server *s, struct http_exchange *x, struct upload *u,
                        uint64_t len, int creation)
{
    const char *ck = http_header(x, "Upload-Checksum");
    const EVP_MD *md = NULL;
    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return 0;
    st->fd = -1;
    if (ck) {
        const char *why = "";
        int bad = checksum_parse(ck, &md, st->want, &st->wantlen, &why);
        if (bad) {
            free(st);
            return 0; /* 400 from the handler */
        }
        st->mdc = EVP_MD_CTX_new();
        if (!st->mdc || EVP_DigestInit_ex(st->mdc, md, NULL) != 1) {
            stream_free(st);
            return 0;
        }
    }
    char dname[TUS_ID_LEN + 16];
    name_of(dname, sizeof dname, u->id, ".data");
    st->fd = openat(s->dirfd, dname, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        stream_free(st);
        return 0;
    }
    st->s = s;
    st->u = u;
    st->x = x;
    st->start = u->offset;
    st->creation = creation;
    u->st = st;
    http_gate_stream(x, (size_t)len, stream_data, stream_cut, st);
    return 1;
}

void tus_server_handler(void *ctx, struct http_exchange *x)
{
    struct tus_server *s = ctx;
    if (!tus_server_handle(s, x))
        (void)fail(x, 404, "not found");
}
