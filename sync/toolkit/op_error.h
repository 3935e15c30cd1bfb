/*
 * The error detail every appliance module fills in for its caller. Library
 * code never logs: it returns a negative code and, when given one of these,
 * says what went wrong and where (the field, the related record), so that
 * the caller that decides can report it once, with its own context.
 */
#ifndef OUTPOST_OP_ERROR_H
#define OUTPOST_OP_ERROR_H

#include <stddef.h>

struct op_error {
    int code;       /* the negative code the function returned */
    char field[64]; /* field, column or key the error is about; "" if none */
    char ref[40];   /* a related record id (an existing duplicate); "" if none */
    char msg[512];  /* one line, no trailing newline, for a person */
};

/* Clears e (NULL is allowed everywhere an op_error pointer is taken). */
void op_error_clear(struct op_error *e);

/* Fills e and returns `code`, so callers can write `return op_error_set(...)`.
 * `field` may be NULL. */
int op_error_set(struct op_error *e, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
