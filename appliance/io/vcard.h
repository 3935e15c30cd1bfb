/*
 * Writing contacts as vCard 4.0 (RFC 6350), for `outpost export --format
 * vcard` and anything else that hands a contact to an address book. The
 * invariant: every card written is a complete BEGIN..END block of CRLF
 * lines, none longer than 75 octets, each of them valid UTF-8 (lines are
 * folded between characters, never inside one), with text values escaped
 * so that a reader recovers exactly the stored value.
 */
#ifndef OUTPOST_VCARD_H
#define OUTPOST_VCARD_H

#include <jansson.h>
#include <stdio.h>

/* The longest line before folding, in octets, excluding CRLF (RFC 6350 3.2). */
#define VCARD_LINE_MAX 75

/* Writes `contact` (a contact record as the store returns it; borrowed) as
 * one vCard 4.0 to `out`:
 *   UID:urn:uuid:<id>, FN (given + family name, else the e-mail, else
 *   "(no name)"; FN is required), N:family;given;;;, EMAIL, TEL (a tel: URI
 *   with the E.164 number when the stored one is international, else the
 *   number as stored as text), ADR, TITLE, LANG, BDAY (YYYYMMDD) and REV
 *   (updated_at as 20261124T131035Z).
 * Fields that are absent, null or empty are left out. Values that are not
 * valid UTF-8 have the bad bytes replaced by U+FFFD so the card stays valid.
 * Returns 0, -EINVAL when `contact` is not a JSON object, or the negative
 * errno of the failed write (-EIO when the stream does not say); after a
 * failure the stream may hold a partial card. Does not flush `out`: the
 * caller checks fflush/fclose once at the end of the file. */
int vcard_write(FILE *out, json_t *contact);

#endif
