/*
 * err.c - recording failures where they happen.
 *
 * Invariant: the first failure recorded in a struct cmig_err wins. Later
 * calls to cmig_err_set are ignored, so a cleanup path that fails after the
 * real failure cannot hide it; callers only ever add context in front.
 */
/* err.c defines the functions that err.h wraps for the static analyzer. */
#define CMIG_ERR_DEFINING
#include "cmig/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cmig_err_clear(struct cmig_err *err)
{
    if (!err)
        return;
    err->code = CMIG_OK;
    err->sys_errno = 0;
    err->native[0] = '\0';
    err->msg[0] = '\0';
}

static int err_vset(struct cmig_err *err, int code, int e, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    if (err->code != CMIG_OK)
        return err->code;
    err->code = code;
    err->sys_errno = e;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (e) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(e));
    }
    return code;
}

int cmig_err_set(struct cmig_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int cmig_err_errno(struct cmig_err *err, int code, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, e, fmt, ap);
    va_end(ap);
    return rc;
}

int cmig_err_nomem(struct cmig_err *err)
{
    return cmig_err_set(err, CMIG_E_NOMEM, "out of memory");
}

void cmig_err_prefix(struct cmig_err *err, const char *fmt, ...)
{
    if (!err || err->code == CMIG_OK)
        return;
    char prefix[CMIG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* prefix + ": " + old message, truncated to fit. */
    char joined[CMIG_ERR_MSG_MAX];
    size_t np = strlen(prefix), no = strlen(err->msg);
    if (np > sizeof joined - 3)
        np = sizeof joined - 3;
    memcpy(joined, prefix, np);
    memcpy(joined + np, ": ", 2);
    if (no > sizeof joined - np - 3)
        no = sizeof joined - np - 3;
    memcpy(joined + np + 2, err->msg, no);
    joined[np + 2 + no] = '\0';
    memcpy(err->msg, joined, sizeof joined);
}

void cmig_err_native(struct cmig_err *err, const char *native)
{
    if (!err)
        return;
    snprintf(err->native, sizeof err->native, "%s", native ? native : "");
}

const char *cmig_code_name(int code)
{
    static const char *const names[CMIG_CODE_COUNT] = {
        [CMIG_OK] = "ok",
        [CMIG_E_USAGE] = "usage",
        [CMIG_E_IO] = "io",
        [CMIG_E_NOMEM] = "nomem",
        [CMIG_E_INPUT] = "input",
        [CMIG_E_VERIFY] = "verify",
        [CMIG_E_KEY] = "key",
        [CMIG_E_HISTORY] = "history",
        [CMIG_E_INTERNAL] = "internal",
        [CMIG_E_DB] = "db",
        [CMIG_E_CONNECT] = "connect",
        [CMIG_E_LOCK] = "lock",
        [CMIG_E_CONFLICT] = "conflict",
        [CMIG_E_MIGRATION] = "migration",
        [CMIG_E_INTERRUPTED] = "interrupted",
    };
    if (code < 0 || code >= CMIG_CODE_COUNT || !names[code])
        return "unknown";
    return names[code];
}
