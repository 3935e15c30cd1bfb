/* Filling in struct op_error; see op_error.h. */
#include "op_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void op_error_clear(struct op_error *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

int op_error_set(struct op_error *e, int code, const char *field, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    e->ref[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}
