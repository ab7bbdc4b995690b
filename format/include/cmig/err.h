/*
 * cmig/err.h - how every fallible function in cmig reports failure.
 *
 * A fallible function returns 0 on success or an enum cmig_code, and takes a
 * struct cmig_err * as its last argument. The message is formatted once, at
 * the place where the failure happens; the first failure recorded wins, and
 * callers may only add context in front of it (cmig_err_prefix). The library
 * never prints and never exits: the programs map the error to a log line and
 * an exit status.
 */
#ifndef CMIG_ERR_H
#define CMIG_ERR_H

#include <stddef.h>

enum cmig_code {
    CMIG_OK = 0,
    CMIG_E_USAGE,       /* bad arguments or options */
    CMIG_E_IO,          /* reading or writing a file failed (errno saved) */
    CMIG_E_NOMEM,       /* an allocation failed */
    CMIG_E_INPUT,       /* a migration directory or input file is invalid */
    CMIG_E_VERIFY,      /* a bundle or signature did not verify: refused */
    CMIG_E_KEY,         /* a key file is malformed, or the password is wrong */
    CMIG_E_HISTORY,     /* a new bundle breaks the append-only rule (--previous) */
    CMIG_E_INTERNAL,    /* a library call failed in a way that should not happen */
    CMIG_E_DB,          /* a database call failed (native code saved) */
    CMIG_E_CONNECT,     /* the database could not be reached */
    CMIG_E_LOCK,        /* the migration lock could not be taken in time */
    CMIG_E_CONFLICT,    /* dirty database, drift or history conflict */
    CMIG_E_MIGRATION,   /* a migration failed and was rolled back */
    CMIG_E_INTERRUPTED, /* cancelled by a signal */
    CMIG_CODE_COUNT
};

#define CMIG_ERR_MSG_MAX 1024

struct cmig_err {
    int code;        /* enum cmig_code; CMIG_OK when nothing failed */
    int sys_errno;   /* errno at the failure site, or 0 */
    char native[16]; /* SQLSTATE, "sqlite:NNN", "bson:D.C", or "" */
    char msg[CMIG_ERR_MSG_MAX];
};

/* Resets err to "no error". */
void cmig_err_clear(struct cmig_err *err);

/* Records a failure unless one is already recorded; returns err->code. */
int cmig_err_set(struct cmig_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cmig_err_set, appending ": strerror(e)" and saving e. */
int cmig_err_errno(struct cmig_err *err, int code, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Shorthand for an allocation failure. */
int cmig_err_nomem(struct cmig_err *err);

/* For the static analyzer only (make lint): the three calls above never
 * return 0 when given a nonzero code, which it cannot see across files. */
#if defined(__clang_analyzer__) && !defined(CMIG_ERR_DEFINING)
#define cmig_err_set(err, code, ...) ((void)cmig_err_set((err), (code), __VA_ARGS__), (code))
#define cmig_err_errno(err, code, ...) ((void)cmig_err_errno((err), (code), __VA_ARGS__), (code))
#define cmig_err_nomem(err) ((void)cmig_err_nomem(err), CMIG_E_NOMEM)
#endif

/* Adds context in front of the recorded message ("migration 3 'x': ...").
 * Does nothing when no error is recorded. */
void cmig_err_prefix(struct cmig_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Saves a native error code (SQLSTATE, ...) next to the message. */
void cmig_err_native(struct cmig_err *err, const char *native);

/* A short stable name for a code ("verify", "io", ...), for JSON logs. */
const char *cmig_code_name(int code);

#endif
