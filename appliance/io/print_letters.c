/*
 * Letters and label sheets as PDF; see print_letters.h. Measures are in
 * PDF points (1/72 in); MM() converts millimetres.
 */
#include "print_letters.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fsutil.h"

#define MM(x) ((x)*72.0 / 25.4)
/* Noto first, in the order fontconfig should fall back for a script the
 * first does not cover; the context's language picks among CJK variants. */
#define FONT "Noto Sans,Noto Sans Arabic,Noto Sans Hebrew,Noto Sans CJK SC,sans-serif"

static const char *field(json_t *ct, const char *name)
{
    const char *v = json_string_value(json_object_get(ct, name));
    return v ? v : "";
}

/* Appends a line to out after cleaning it: runs of spaces collapsed,
 * spaces and dangling separators trimmed at both ends. */
static int put_line(char *out, size_t cap, size_t *len, const char *line, size_t n)
{
    char tmp[PRINT_ADDRESS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof tmp; i++) {
        char ch = line[i] == '\t' ? ' ' : line[i];
        if (ch == ' ' && (k == 0 || tmp[k - 1] == ' '))
            continue;
        tmp[k++] = ch;
    }
    size_t a = 0;
    while (a < k && (tmp[a] == ' ' || tmp[a] == ',' || tmp[a] == '-'))
        a++;
    while (k > a && (tmp[k - 1] == ' ' || tmp[k - 1] == ',' || tmp[k - 1] == '-'))
        k--;
    if (k == a)
        return 0;
    if (*len + (k - a) + 2 > cap)
        return -ENOBUFS;
    if (*len)
        out[(*len)++] = '\n';
    memcpy(out + *len, tmp + a, k - a);
    *len += k - a;
    out[*len] = '\0';
    return 0;
}

int print_address(const char *format, const char *country, const char *language, json_t *contact,
                  char *out, size_t cap)
{
    if (!cap)
        return -ENOBUFS;
    out[0] = '\0';
    size_t len = 0;
    const char *given = field(contact, "given_name"), *family = field(contact, "family_name");
    char name[512];
    int cjk = language && (!strncmp(language, "zh", 2) || !strncmp(language, "ja", 2));
    int ko = language && !strncmp(language, "ko", 2);
    if (cjk || ko)
        snprintf(name, sizeof name, "%s%s%s", family, ko && family[0] && given[0] ? " " : "",
                 given);
    else
        snprintf(name, sizeof name, "%s%s%s", given, given[0] && family[0] ? " " : "", family);
    int rc = put_line(out, cap, &len, name, strlen(name));
    if (rc < 0)
        return rc;
    const char *f = format && *format ? format : PRINT_DEFAULT_FORMAT;
    const char *ctry = field(contact, "country");
    while (*f) {
        const char *eol = strchr(f, '\n');
        size_t n = eol ? (size_t)(eol - f) : strlen(f);
        char line[PRINT_ADDRESS_MAX];
        size_t k = 0;
        int holders = 0, filled = 0;
        for (size_t i = 0; i < n;) {
            const char *close = f[i] == '{' ? memchr(f + i, '}', n - i) : NULL;
            if (close) {
                char key[32];
                size_t kl = (size_t)(close - (f + i)) - 1;
                if (kl < sizeof key) {
                    memcpy(key, f + i + 1, kl);
                    key[kl] = '\0';
                    const char *v = "";
                    if (!strcmp(key, "country"))
                        v = country && !strcasecmp(ctry, country) ? "" : ctry;
                    else if (!strcmp(key, "street") || !strcmp(key, "postal_code") ||
                             !strcmp(key, "locality") || !strcmp(key, "region"))
                        v = field(contact, key);
                    holders++;
                    filled += v[0] != '\0';
                    size_t vl = strlen(v);
                    if (k + vl + 1 >= sizeof line)
                        return -ENOBUFS;
                    memcpy(line + k, v, vl);
                    k += vl;
                    i += kl + 2;
                    continue;
                }
            }
            if (k + 2 >= sizeof line)
                return -ENOBUFS;
            line[k++] = f[i++];
        }
        if (!holders || filled) {
            /* a street may span lines: each of its lines is its own */
            size_t a = 0;
            for (size_t i = 0; i <= k; i++)
                if (i == k || line[i] == '\n') {
                    rc = put_line(out, cap, &len, line + a, i - a);
                    if (rc < 0)
                        return rc;
                    a = i + 1;
                }
        }
        f += n + (eol ? 1 : 0);
    }
    return 0;
}

struct page {
    double w, h;
};

static struct page paper_size(enum print_paper p)
{
    return p == PRINT_LETTER ? (struct page){612.0, 792.0} : (struct page){MM(210), MM(297)};
}

/* A layout of text in lang (BCP 47, "" or NULL: none), which decides
 * among fonts for a script (Chinese or Japanese forms of Han). */
static PangoLayout *layout(cairo_t *cr, const char *font, double width, const char *text,
                           const char *lang)
{
    PangoLayout *l = pango_cairo_create_layout(cr);
    if (lang && *lang) {
        pango_context_set_language(pango_layout_get_context(l), pango_language_from_string(lang));
        pango_layout_context_changed(l);
    }
    PangoFontDescription *d = pango_font_description_from_string(font);
    pango_layout_set_font_description(l, d);
    pango_font_description_free(d);
    pango_layout_set_width(l, (int)(width * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_auto_dir(l, TRUE);
    pango_layout_set_text(l, text, -1);
    return l;
}

static void show(cairo_t *cr, PangoLayout *l, double x, double y)
{
    cairo_move_to(cr, x, y);
    pango_cairo_show_layout(cr, l);
}

/* The body from y down, continued on new pages line by line. */
static void body_pages(cairo_t *cr, struct page pg, const char *text, const char *lang, double x,
                       double y, double width)
{
    PangoLayout *l = layout(cr, FONT " 11", width, text, lang);
    PangoLayoutIter *it = pango_layout_get_iter(l);
    double top = y, bottom = pg.h - MM(20), offset = 0;
    do {
        PangoRectangle log;
        pango_layout_iter_get_line_extents(it, NULL, &log);
        double ly = (double)log.y / PANGO_SCALE, lh = (double)log.height / PANGO_SCALE;
        if (top + ly - offset + lh > bottom && ly > offset) {
            cairo_show_page(cr);
            top = MM(20);
            offset = ly;
        }
        double base = (double)pango_layout_iter_get_baseline(it) / PANGO_SCALE;
        cairo_move_to(cr, x + (double)log.x / PANGO_SCALE, top + base - offset);
        pango_cairo_show_layout_line(cr, pango_layout_iter_get_line_readonly(it));
    } while (pango_layout_iter_next_line(it));
    pango_layout_iter_free(it);
    g_object_unref(l);
}

static int draw_letters(cairo_t *cr, struct page pg, const struct outreach_handout *h,
                        const struct print_options *o)
{
    char addr[PRINT_ADDRESS_MAX];
    for (size_t i = 0; i < h->n; i++) {
        const struct outreach_handout_row *r = &h->rows[i];
        if (print_address(o->format, o->country, o->language, r->contact, addr, sizeof addr) < 0)
            return -ENOBUFS;
        double left = MM(25), width = pg.w - MM(45);
        PangoLayout *l = layout(cr, FONT " 9", width, o->sender, o->language);
        show(cr, l, left, MM(15));
        g_object_unref(l);
        l = layout(cr, FONT " 11", MM(85), addr, o->language);
        show(cr, l, left, MM(50));
        g_object_unref(l);
        l = layout(cr, FONT " Bold 12", width, r->subject, r->language);
        show(cr, l, left, MM(100));
        int sh = 0;
        pango_layout_get_pixel_size(l, NULL, &sh);
        g_object_unref(l);
        body_pages(cr, pg, r->body, r->language, left, MM(100) + sh + MM(8), width);
        cairo_show_page(cr);
    }
    return 0;
}

static int draw_labels(cairo_t *cr, struct page pg, const struct outreach_handout *h,
                       const struct print_options *o)
{
    /* A4: 3 x 8 labels of 70 x 37 mm, edge to edge across, centred down.
     * Letter: 3 x 10 of 2 5/8 x 1 in (Avery 5160 layout). */
    int letter = o->paper == PRINT_LETTER;
    int cols = 3, rows = letter ? 10 : 8;
    double lw = letter ? 189.0 : MM(70), lh = letter ? 72.0 : MM(37);
    double pitch_x = letter ? 198.0 : MM(70);
    double x0 = letter ? 13.5 : 0, y0 = letter ? 36.0 : (pg.h - rows * lh) / 2;
    double pad = MM(4);
    char addr[PRINT_ADDRESS_MAX];
    for (size_t i = 0; i < h->n; i++) {
        size_t slot = i % (size_t)(cols * rows);
        if (i && !slot)
            cairo_show_page(cr);
        if (print_address(o->format, o->country, o->language, h->rows[i].contact, addr,
                          sizeof addr) < 0)
            return -ENOBUFS;
        double x = x0 + (double)(slot % (size_t)cols) * pitch_x;
        double y = y0 + (double)(slot / (size_t)cols) * lh;
        PangoLayout *l = layout(cr, FONT " 9", lw - 2 * pad, addr, o->language);
        pango_layout_set_height(l, (int)((lh - 2 * pad) * PANGO_SCALE));
        pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
        show(cr, l, x + pad, y + pad);
        g_object_unref(l);
    }
    cairo_show_page(cr);
    return 0;
}

static cairo_status_t write_out(void *closure, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

int print_letters_write(const char *path, const struct outreach_handout *h,
                        const struct print_options *o, struct op_error *err)
{
    if (!h->n)
        return op_error_set(err, -EINVAL, NULL, "nothing to print");
    if (!o->labels && (!o->sender || !o->sender[0]))
        return op_error_set(err, -EINVAL, "sender",
                            "the sender's postal address is required on a letter");
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, "out", "--out: the path is too long");
    /* personal data: readable by the owner only */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return op_error_set(err, -e, "out", "cannot write %s: %s", tmp, strerror(e));
    }
    struct page pg = paper_size(o->paper);
    cairo_surface_t *surf = cairo_pdf_surface_create_for_stream(write_out, f, pg.w, pg.h);
    cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR, "Outpost");
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 0, 0, 0);
    int rc = o->labels ? draw_labels(cr, pg, h, o) : draw_letters(cr, pg, h, o);
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    if (cs == CAIRO_STATUS_SUCCESS)
        cs = cairo_surface_status(surf);
    cairo_surface_destroy(surf);
    int e = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (rc < 0) {
        unlink(tmp);
        return op_error_set(err, rc, "address", "an address does not fit the page");
    }
    if (cs != CAIRO_STATUS_SUCCESS || e) {
        unlink(tmp);
        return op_error_set(err, -(e ? e : EIO), "out", "cannot write %s: %s", tmp,
                            e ? strerror(e) : cairo_status_to_string(cs));
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return op_error_set(err, -e, "out", "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return fsutil_fsync_dir_of(path, err);
}
