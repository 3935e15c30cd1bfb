/*
 * Call lists; see call_list.h.
 */
#include "call_list.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "consent.h"
#include "csv_writer.h"
#include "fsutil.h"

static const char *field(json_t *ct, const char *name)
{
    const char *v = json_string_value(json_object_get(ct, name));
    return v ? v : "";
}

void call_list_window(const struct quiet_hours *q, const char *zone, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!q || !q->set)
        return;
    /* the window runs from the end of the quiet hours to their start */
    snprintf(out, cap, "%02u:%02u-%02u:%02u%s%s", q->end_min / 60, q->end_min % 60,
             q->start_min / 60, q->start_min % 60, zone && zone[0] ? " " : "", zone ? zone : "");
}

int call_list_write(const char *path, const struct outreach_handout *h, const char *call_window,
                    struct op_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, "out", "--out: the path is too long");
    /* personal data: readable by the owner only */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return op_error_set(err, -e, "out", "cannot write %s: %s", tmp, strerror(e));
    }
    struct csv_writer w;
    csv_writer_init(&w, f);
    static const char *const cols[] = {"message", "name",    "phone", "language",
                                       "script",  "consent", "rule",  "call_window"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        csv_writer_str(&w, cols[i]);
    int rc = csv_writer_end_row(&w);
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        const struct outreach_handout_row *r = &h->rows[i];
        char id[24], name[512];
        snprintf(id, sizeof id, "%" PRId64, r->id);
        const char *g = field(r->contact, "given_name"), *fam = field(r->contact, "family_name");
        snprintf(name, sizeof name, "%s%s%s", g, g[0] && fam[0] ? " " : "", fam);
        csv_writer_field(&w, id, strlen(id));
        csv_writer_text(&w, name, strlen(name));
        /* E.164 from the store: '+' and digits only, kept as it is */
        csv_writer_quoted(&w, r->phone, strlen(r->phone));
        csv_writer_text(&w, r->language, strlen(r->language));
        csv_writer_text(&w, r->body, strlen(r->body));
        csv_writer_str(&w, consent_state_name(r->decision.state));
        csv_writer_text(&w, r->decision.rule, strlen(r->decision.rule));
        csv_writer_text(&w, call_window ? call_window : "", call_window ? strlen(call_window) : 0);
        rc = csv_writer_end_row(&w);
    }
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return op_error_set(err, rc, "out", "cannot write %s: %s", tmp, strerror(-rc));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return op_error_set(err, -e, "out", "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return fsutil_fsync_dir_of(path, err);
}
