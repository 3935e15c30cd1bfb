/*
 * Printed mail as a PDF (docs/OUTREACH.md, "Printed mail and call
 * lists"): one letter a page (the sender's postal address, the
 * recipient's name and address laid out by the region profile's
 * locale.address_format, the subject and the body), or sheets of address
 * labels (3 x 8 on A4, 3 x 10 on US Letter). Text is shaped by Pango and
 * drawn by cairo, so every script the installed fonts cover is laid out
 * right, right-to-left ones included. The file is written beside its
 * final name, synced, and renamed into place: a reader sees the whole
 * file or none.
 *
 * The file holds only what the letter needs: no record ids, no consent
 * data.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_PRINT_LETTERS_H
#define OUTPOST_PRINT_LETTERS_H

#include <jansson.h>
#include <stddef.h>

#include "op_error.h"
#include "outreach_handout.h"
#include "policy.h"

#define PRINT_ADDRESS_MAX 2048
#define PRINT_DEFAULT_FORMAT "{street}\n{postal_code} {locality}\n{region}\n{country}"

enum print_paper { PRINT_A4, PRINT_LETTER };

struct print_options {
    enum print_paper paper;
    int labels;           /* 1: label sheets, 0: letters */
    const char *sender;   /* the sender's postal address, lines separated by newlines */
    const char *country;  /* the region's ISO 3166-1 code: a domestic address has no country line */
    const char *format;   /* locale.address_format; NULL or "" the default above */
    const char *language; /* the region's language (name order: family first for zh, ja, ko) */
};

/* The recipient block: the name, then the address by `format`
 * ({street}, {postal_code}, {locality}, {region}, {country}; other text
 * kept), a line whose placeholders are all empty dropped, runs of spaces
 * collapsed and separators left dangling (", " " - ") trimmed. The
 * country line is dropped when the contact's country is `country`.
 * -ENOBUFS when it does not fit cap. */
int print_address(const char *format, const char *country, const char *language, json_t *contact,
                  char *out, size_t cap);

/* Writes the PDF of every row of h to path (via path.tmp, fsync, rename,
 * fsync of the directory). -EINVAL bad options (sender missing for
 * letters, an empty hand-out); -EIO and the like when the file cannot be
 * written (no file is left behind). */
int print_letters_write(const char *path, const struct outreach_handout *h,
                        const struct print_options *o, struct op_error *err);

#endif
