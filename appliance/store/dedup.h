/*
 * The duplicate rule's name comparison (docs/DATA_MODEL.md, "Duplicate
 * detection"). A name is first folded by fold.h (lower case, diacritics
 * off, "Łódź" -> "lodz"); dedup_skeleton then writes Cyrillic in Latin
 * letters, evens out spellings of one sound ("mueller" and "muller",
 * "ivanoff" and "ivanov", "schmidt" and "shmidt") and sorts the words, so
 * reordered names meet. dedup_names_match then allows a typo or two and a
 * missing middle name or second surname. Pure functions on strings: no
 * database, no state.
 */
#ifndef OUTPOST_DEDUP_H
#define OUTPOST_DEDUP_H

#include <stddef.h>

#define DEDUP_SKELETON_MAX 512

/* The skeleton of a folded name ("José María García" folded is "jose maria
 * garcia") into out: its words spelled evenly, sorted, joined by one space.
 * Returns the length, or 0 when nothing of the name is left. */
size_t dedup_skeleton(const char *folded, char *out, size_t cap);

/* Whether two skeletons are probably one person's name: the same words
 * with at most two typos in all (one in a word of 4 to 7 letters, two in
 * a longer one; none in shorter words), or every word of the shorter name
 * (at least two words) found in the longer one. */
int dedup_names_match(const char *a, const char *b);

/* The street's key part from its folded text into out: the words with the
 * common abbreviations evened out ("hauptstrasse 5", "hauptstr 5" and
 * "haupt str 5" all become "hauptstr 5"; "avenida", "av"; "ulica",
 * "ul"; "street", "st"). Returns the length. */
size_t dedup_street(const char *folded, char *out, size_t cap);

/* The last 7 digits of a phone text into out ("" when it has fewer): two
 * spellings of one local number end alike even when neither has a key. */
void dedup_phone_tail(const char *phone, char out[8]);

#endif
