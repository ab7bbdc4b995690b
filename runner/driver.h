/*
 * driver.h - what a database driver does for cmig-run, and nothing more.
 *
 * The runner core owns the order of operations and every rule (rollback
 * safety, drift, dirty state, exit codes); a driver only speaks its
 * database. A driver is a const struct of function pointers with an ABI
 * number first (like sqlite3_vfs.iVersion). The SQLite driver is built
 * into cmig-run; the PostgreSQL and MongoDB drivers are shared objects
 * loaded by URL scheme, so that a run only pays for the client library it
 * uses (libpq or libmongoc and their dependencies).
 *
 * Call order, as the core makes it:
 *
 *   open                      connect (retrying until opts->wait_ms)
 *   read_history              without the lock: the no-op fast path
 *   -- if something is to be done:
 *   lock                      per-bundle lock, bounded by a timeout
 *   ensure_schema             create the history tables if missing
 *   read_history              again, under the lock
 *   apply ...                 one step at a time (or begin/apply.../commit
 *                             for --single-transaction)
 *   record_bundle             remember the highest bundle version applied
 *   unlock
 *   close                     always, also after failures
 *
 * Every function but close and cancel returns 0 or an enum cmig_code and
 * fills err at the failure site, with the database's own code in
 * err->native (SQLSTATE, "sqlite:N", ...). Messages never contain a
 * password: drivers must not echo connection strings or the client
 * library's connection-parse errors raw.
 */
#ifndef CMIG_RUNNER_DRIVER_H
#define CMIG_RUNNER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/sqlscan.h"
#include "cmig/sqlstream.h"

#define CMIG_DRIVER_ABI 2

/* The symbol a driver shared object exports: "cmig_driver_<name>". */
#define CMIG_DRIVER_SYMBOL_PREFIX "cmig_driver_"

enum {
    CMIG_CAP_TRANSACTIONAL_DDL = 1u << 0, /* DDL commits atomically with the history row */
    CMIG_CAP_SINGLE_TRANSACTION = 1u << 1 /* begin/commit/rollback are implemented */
};

struct cmig_conn; /* the driver's own */

struct cmig_conn_opts {
    const char *url;              /* as given; may hold a password: never print it */
    int64_t wait_ms;              /* keep retrying a failed connection this long; 0: once */
    int64_t statement_timeout_ms; /* database-side statement timeout; 0: server default */
    int64_t lock_timeout_ms; /* database-side lock wait (PostgreSQL lock_timeout); 0: default */
    const char *application_name; /* e.g. "cmig-run" */
    /* Optional: progress notices (e.g. "database not ready, retrying in 2 s").
     * level: 0 debug, 1 info, 2 warning. event is a stable name. */
    void (*log)(void *ctx, int level, const char *event, const char *msg);
    void *log_ctx;
    /* Set by the core when SIGTERM/SIGINT arrived: drivers stop waiting
     * (connection retries, lock waits) as soon as it is non-zero and return
     * CMIG_E_INTERRUPTED. */
    volatile int *interrupted;
};

/* What the no-op fast path compares with a bundle's signed claim: this
 * bundle's record and a summary of its history, in one round trip. */
struct cmig_quick_state {
    int present;       /* the record of this bundle exists */
    char version[256]; /* the recorded bundle version */
    uint8_t manifest_sha256[32];
    uint64_t applied; /* history rows of this bundle */
    int64_t last;     /* their highest version, -1 when none */
    int dirty;        /* whether any of them is dirty */
};

/* One row of history: a migration applied (or being applied) to the database. */
struct cmig_applied {
    int64_t version;
    char *name;
    uint8_t sha256[32]; /* SHA-256 of the up file, as recorded */
    int dirty;          /* started but not known to have finished */
    int64_t applied_at; /* unix seconds */
    int64_t execution_ms;
    char *bundle_version;
    char *runner_version;
};

struct cmig_history {
    int schema_present; /* the cmig history tables exist */
    size_t n;
    struct cmig_applied *rows; /* this bundle's rows, ascending by version */
    int has_record;            /* the per-bundle record exists */
    char *record_version;      /* highest bundle version applied (SemVer text) */
    uint8_t record_manifest_sha256[32];
    int legacy_present;     /* golang-migrate's schema_migrations table exists */
    int64_t legacy_version; /* its version (when legacy_present and it has a row) */
    int legacy_has_row;
    int legacy_dirty;
    int other_bundles; /* filled only when legacy_present: cmig_history holds
                          rows of other bundles (golang-migrate's table then
                          belongs to one of those, not to this bundle) */
};

/* Frees what a driver put in h (malloc'd strings and rows); h itself is the
 * caller's. Implemented by the core (runner/history.c). */
void cmig_history_free(struct cmig_history *h);

enum cmig_step_kind {
    CMIG_STEP_UP,          /* run sql, then insert the history row */
    CMIG_STEP_DOWN,        /* run sql, then delete the history row */
    CMIG_STEP_BASELINE,    /* no sql: insert the history row only (baseline, adoption) */
    CMIG_STEP_FORCE_CLEAN, /* no sql: mark the row of version clean */
    CMIG_STEP_FORCE_REMOVE /* no sql: delete the (dirty) row of version */
};

struct cmig_step {
    enum cmig_step_kind kind;
    const char *bundle;         /* bundle name */
    const char *bundle_version; /* SemVer of the bundle being run */
    const char *runner_version; /* "cmig-run X.Y.Z" */
    int64_t version;            /* migration version */
    const char *name;           /* migration name */
    const uint8_t *sha256;      /* SHA-256 of the up file (recorded in history) */
    /* The file to run (NULL and 0 for BASELINE/FORCE_*): whole in sql, or,
     * when it is large, sql NULL and its len bytes handed out in order by
     * read(src, ...). SQL drivers take both through cmig_sqlstream, so a
     * large seed file is never held whole. */
    const char *sql;
    size_t len;
    cmig_text_read_fn read;
    void *src;
    enum cmig_txmode tx;    /* how to run sql */
    int in_outer_tx;        /* inside begin()/commit(): no own transaction */
    int keep_legacy;        /* also keep golang-migrate's schema_migrations */
    int64_t legacy_version; /* its version after this step (-1: delete its row) */
};

struct cmig_step_result {
    int64_t execution_ms; /* wall time of the step as the driver measured it */
    unsigned statement;   /* 1-based statement that failed, when known (non-tx) */
    unsigned line, col;   /* 1-based position in sql of the failure; 0 when unknown */
    int transaction;      /* 1: it ran in a transaction although the step's tx said
                             otherwise (MongoDB's URL option x-transaction-mode) */
};

struct cmig_driver {
    int abi;                    /* CMIG_DRIVER_ABI */
    const char *name;           /* "postgres", "sqlite", "mongodb" */
    const char *const *schemes; /* URL prefixes it accepts, NULL-terminated */
    unsigned caps;

    int (*open)(struct cmig_conn **out, const struct cmig_conn_opts *o, struct cmig_err *err);
    void (*close)(struct cmig_conn *c); /* NULL is fine */

    /* History of one bundle. A database without the cmig tables is not an
     * error: schema_present = 0 and no rows. Also reports golang-migrate's
     * schema_migrations when it exists. */
    int (*read_history)(struct cmig_conn *c, const char *bundle, struct cmig_history *out,
                        struct cmig_err *err);

    /* Per-bundle lock, held until unlock or close: exactly one runner
     * applies at a time. Waits at most timeout_ms (CMIG_E_LOCK after). */
    int (*lock)(struct cmig_conn *c, const char *bundle, int64_t timeout_ms, struct cmig_err *err);
    int (*unlock)(struct cmig_conn *c, struct cmig_err *err);

    /* Creates the history tables when missing (lock held). */
    int (*ensure_schema)(struct cmig_conn *c, struct cmig_err *err);

    /* Runs one step (lock held). tx == CMIG_TX_TRANSACTION: sql and the
     * history change commit together or not at all, in as few round trips
     * as the database allows. tx == CMIG_TX_NONE: the history row is first
     * written dirty and committed, then sql runs statement by statement
     * (cmig_sql_split), then the row is marked clean; a failure leaves it
     * dirty. A failing step returns CMIG_E_MIGRATION with the database's
     * message, detail and hint in err and the position in r. */
    int (*apply)(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                 struct cmig_err *err);

    /* --single-transaction (CMIG_CAP_SINGLE_TRANSACTION): steps with
     * in_outer_tx set run between begin and commit. */
    int (*begin)(struct cmig_conn *c, struct cmig_err *err);
    int (*commit)(struct cmig_conn *c, struct cmig_err *err);
    int (*rollback)(struct cmig_conn *c, struct cmig_err *err);

    /* Remembers the bundle version and manifest hash as the highest applied
     * for this bundle name (insert or update; the core decides when). */
    int (*record_bundle)(struct cmig_conn *c, const char *bundle, const char *version,
                         const uint8_t manifest_sha256[32], struct cmig_err *err);

    /* Asks the running statement to stop. Must be async-signal-safe: the
     * core calls it from its SIGTERM/SIGINT handler. */
    void (*cancel)(struct cmig_conn *c);

    /* Optional (NULL: the core always reads the full history). The record
     * and history summary of one bundle, without the lock, in one round
     * trip. Missing tables are not an error: present = 0. */
    int (*quick_state)(struct cmig_conn *c, const char *bundle, struct cmig_quick_state *out,
                       struct cmig_err *err);
};

/* The built-in SQLite driver. */
extern const struct cmig_driver cmig_driver_sqlite;

#endif
