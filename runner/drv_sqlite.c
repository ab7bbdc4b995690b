/*
 * drv_sqlite.c - the built-in SQLite driver: cmig's history, lock and
 * migrations in a local SQLite database file.
 *
 * Invariants: a migration is applied exactly once however many cmig-run
 * processes start on the same file at once, no wait is unbounded, and a
 * transactional migration commits together with its history row or not at
 * all.
 *
 * URLs: "sqlite:PATH" or "sqlite3:PATH". One "//" right after the colon is
 * dropped, so "sqlite:///srv/app.db" is "/srv/app.db" and
 * "sqlite3://data/app.db" is "data/app.db" (golang-migrate reads it the
 * same way); there is no host part. The rest is the path, byte for byte:
 * no percent-decoding and no options. A '?' is refused rather than guessed
 * at (golang-migrate's x-migrations-table or go-sqlite3's _auth_pass mean
 * nothing here, and the error never echoes what follows the '?'). A path
 * starting with "file:" is opened as "./file:..." because Debian's SQLite
 * is built with SQLITE_USE_URI and would read it as a URI. ":memory:" is a
 * private in-memory database whose lock is trivially held. The file is
 * created when missing. Connection settings stay SQLite's defaults, so a
 * migration runs as it would in the sqlite3 shell: the journal mode is the
 * file's, foreign_keys is off unless compiled otherwise (and PRAGMA
 * foreign_keys is a no-op inside a transaction: a migration that turns it
 * on or off must be marked "-- cmig:no-transaction"). opts->wait_ms is not
 * used: a local file opens at once or not at all.
 *
 * The lock: SQLite's own locks last one transaction, but cmig's lock must
 * cover "read history, then apply" and non-transactional migrations that
 * run in autocommit. lock() therefore takes flock(LOCK_EX) on the database
 * file through a descriptor of its own, polled with LOCK_NB and a backoff
 * so that the wait is bounded by the timeout and ends at a signal. On
 * Linux flock locks and the POSIX fcntl locks SQLite uses are independent:
 * neither blocks the other. The catch is that closing ANY descriptor of a
 * file drops every POSIX lock the process holds on it, so our descriptor
 * stays open until after sqlite3_close. The lock covers the file, so it
 * serialises all bundles of one database rather than one bundle; SQLite
 * has a single writer anyway. It is advisory and local: on NFS Linux
 * emulates flock with fcntl locks (and SQLite itself is unreliable there),
 * so the database must be on a local file system. An application's own
 * connections never flock, so they are not blocked by it.
 *
 * Waits on SQLite's locks: every write transaction is BEGIN IMMEDIATE, so
 * the write lock is taken first and never upgraded from a read lock (which
 * SQLite cannot wait for). A busy handler sleeps with backoff while another
 * connection (the application, or a runner reading history) holds the
 * database, bounded by opts->lock_timeout_ms (--db-lock-timeout) when set,
 * else by the (positive) timeout given to lock() (--lock-timeout), else by
 * 10 s. It stops at once when *opts->interrupted is set.
 * Holding BEGIN EXCLUSIVE for the whole run instead would block the
 * application's readers throughout and cannot span VACUUM.
 *
 * Scripts are split by SQLite's own parser (sqlite3_prepare_v2 and its
 * tail), in both modes, not by cmig_sql_split: that lexer speaks
 * PostgreSQL and would cut "CREATE TRIGGER ... BEGIN ...; END;" in two.
 * Statement numbers count statements as SQLite sees them. A transactional
 * migration may not BEGIN, COMMIT or ROLLBACK itself (an authorizer refuses
 * them; SAVEPOINT and RELEASE are allowed): it would commit half a
 * migration. A step with in_outer_tx runs inside the core's transaction
 * whatever its tx mode says (SQLite itself refuses VACUUM there).
 * opts->statement_timeout_ms bounds each migration statement through a
 * progress handler, since SQLite has no statement timeout.
 *
 * FORCE_CLEAN and FORCE_REMOVE of a version that has no history row fail
 * with CMIG_E_CONFLICT: the core has just read the history under the lock,
 * so a missing row means the two disagree. keep_legacy maintains
 * golang-migrate's schema_migrations(version, dirty) the way golang-migrate
 * does (delete every row, insert the new one; a nil version leaves the
 * table empty unless dirty), creating it when missing, and refuses to touch
 * a schema_migrations table without a dirty column (dbmate's).
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#define SQ_DEFAULT_BUSY_MS 10000      /* busy waits before lock() */
#define SQ_LOCK_POLL_MAX_MS 200       /* longest sleep between flock attempts */
#define SQ_PROGRESS_OPS 1000          /* VM steps between progress checks */
#define SQ_MAX_SQL ((size_t)1 << 30)  /* below SQLite's int lengths and SQL limit */
#define SQ_MAX_ROWS ((size_t)1000000) /* history rows of one bundle */
#define SQ_MAX_TEXT 65536             /* bytes of one text column read back */

struct cmig_conn {
    sqlite3 *db;
    sqlite3 *volatile cancel_db; /* what cancel() may touch; cleared before close */
    char path[PATH_MAX];         /* as opened; named in every message */
    int lock_fd;                 /* the database file, for flock; -1 for :memory: */
    int locked;
    volatile int *interrupted;
    int64_t busy_fixed_ms; /* --db-lock-timeout, 0 when not given */
    int64_t busy_ms;       /* bound of the current busy wait */
    int64_t busy_since;    /* when it began (monotonic ms) */
    int64_t busy_waited;   /* how long the last given-up wait lasted */
    int64_t stmt_timeout_ms;
    int64_t deadline; /* of the running migration statement; 0: none */
    int timed_out;
    int quiet;          /* rolling back: never interrupt that */
    const char *denied; /* transaction verb the authorizer refused */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* a signal ends it early; callers re-check */
}

static int stop_requested(const struct cmig_conn *c)
{
    return c->interrupted && *c->interrupted;
}

/* SQLite calls this while another connection holds the lock it needs. */
static int on_busy(void *ctx, int count)
{
    static const int64_t backoff[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    struct cmig_conn *c = ctx;
    int64_t now = mono_ms();
    if (count == 0)
        c->busy_since = now;
    c->busy_waited = now - c->busy_since;
    if (stop_requested(c))
        return 0;
    int64_t left = c->busy_ms - c->busy_waited;
    if (left <= 0)
        return 0;
    size_t n = sizeof backoff / sizeof backoff[0];
    int64_t d = (size_t)count < n ? backoff[count] : backoff[n - 1];
    sleep_ms(d < left ? d : left);
    return 1;
}

/* Stops a statement on a signal (sqlite3_interrupt alone can be lost
 * between statements) or when its statement timeout has passed. */
static int on_progress(void *ctx)
{
    struct cmig_conn *c = ctx;
    if (c->quiet)
        return 0;
    if (stop_requested(c))
        return 1;
    if (c->deadline && mono_ms() >= c->deadline) {
        c->timed_out = 1;
        return 1;
    }
    return 0;
}

/* Installed while a transactional migration runs: its own transaction
 * control would commit or end ours halfway. */
static int on_authorize(void *ctx, int action, const char *a3, const char *a4, const char *a5,
                        const char *a6)
{
    (void)a4;
    (void)a5;
    (void)a6;
    struct cmig_conn *c = ctx;
    if (action != SQLITE_TRANSACTION)
        return SQLITE_OK;
    c->denied = a3 && strcmp(a3, "BEGIN") == 0      ? "BEGIN"
                : a3 && strcmp(a3, "ROLLBACK") == 0 ? "ROLLBACK"
                                                    : "COMMIT";
    return SQLITE_DENY;
}

/* Records the failure of the last SQLite call: what failed (may be ""),
 * then SQLite's message, with the extended result code as "sqlite:N".
 * A busy timeout is
 * a lock failure (except inside a migration, which it fails); anything
 * cut short by a signal is an interruption. */
static int sq_fail(struct cmig_conn *c, struct cmig_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int sq_fail(struct cmig_conn *c, struct cmig_err *err, int code, const char *fmt, ...)
{
    int ext = sqlite3_extended_errcode(c->db);
    int prim = ext & 0xff;
    const char *why = sqlite3_errmsg(c->db);
    char what[640], extra[80] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if ((prim == SQLITE_INTERRUPT || prim == SQLITE_BUSY) && stop_requested(c)) {
        code = CMIG_E_INTERRUPTED;
        why = "interrupted by a signal";
    } else if (prim == SQLITE_INTERRUPT && c->timed_out) {
        why = "statement timeout exceeded";
        snprintf(extra, sizeof extra, " (%lld ms)", (long long)c->stmt_timeout_ms);
    } else if (prim == SQLITE_BUSY) {
        if (code != CMIG_E_MIGRATION)
            code = CMIG_E_LOCK;
        snprintf(extra, sizeof extra, " (gave up after %lld ms)", (long long)c->busy_waited);
    } else if (prim == SQLITE_NOMEM) {
        /* Not the migration's fault (exit 1 would say so), and the next
         * start may well succeed. */
        code = CMIG_E_NOMEM;
    }
    if (err && err->code != CMIG_OK)
        return err->code;
    cmig_err_set(err, code, "'%s': %s%s%s%s", c->path, what, what[0] ? ": " : "", why, extra);
    char native[16];
    snprintf(native, sizeof native, "sqlite:%u", (unsigned)ext & 0xffffu);
    cmig_err_native(err, native);
    return code;
}

/* Runs fixed SQL without parameters. */
static int exec_sql(struct cmig_conn *c, const char *sql, int code, const char *what,
                    struct cmig_err *err)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    return sq_fail(c, err, code, "%s", what);
}

static int prepare(struct cmig_conn *c, sqlite3_stmt **st, const char *sql, const char *what,
                   struct cmig_err *err)
{
    *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK && *st)
        return 0;
    sqlite3_finalize(*st);
    *st = NULL;
    return sq_fail(c, err, CMIG_E_DB, "%s", what);
}

/* Steps a statement that returns no rows (or whose rows do not matter). */
static int step_done(struct cmig_conn *c, sqlite3_stmt *st, const char *what, struct cmig_err *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(c, err, CMIG_E_DB, "%s", what);
}

static int begin_write(struct cmig_conn *c, struct cmig_err *err)
{
    return exec_sql(c, "BEGIN IMMEDIATE", CMIG_E_DB, "cannot begin a write transaction", err);
}

/* A failed COMMIT leaves the transaction open; a constraint failure there
 * (deferred foreign keys) is the migration's fault. */
static int commit_tx(struct cmig_conn *c, struct cmig_err *err)
{
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    int prim = sqlite3_errcode(c->db) & 0xff;
    return sq_fail(c, err, prim == SQLITE_CONSTRAINT ? CMIG_E_MIGRATION : CMIG_E_DB,
                   "cannot commit");
}

/* Ends whatever transaction is open after a failure. SQLite may already
 * have rolled it back (interrupt, I/O error), and a signal must not stop
 * the rollback itself. */
static int rollback_quiet(struct cmig_conn *c)
{
    int rc = SQLITE_OK;
    c->quiet = 1;
    if (!sqlite3_get_autocommit(c->db))
        rc = sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    c->quiet = 0;
    return rc;
}

/* ---- URL and connection -------------------------------------------- */

static int parse_url(const char *url, char *out, size_t cap, struct cmig_err *err)
{
    const char *p;
    if (!url)
        return cmig_err_set(err, CMIG_E_USAGE, "no sqlite URL given");
    if (strncmp(url, "sqlite3:", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "sqlite:", 7) == 0)
        p = url + 7;
    else
        return cmig_err_set(err, CMIG_E_USAGE,
                            "not a sqlite URL (use sqlite:PATH or sqlite:///ABSOLUTE/PATH)");
    if (p[0] == '/' && p[1] == '/')
        p += 2;
    const char *q = strchr(p, '?');
    if (q)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "'%.*s': sqlite URLs take no query parameters ('?...'); the whole "
                            "rest of the URL is the file path",
                            (int)((q - p) > 512 ? 512 : (q - p)), p);
    if (!*p)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "sqlite URL has no file path (use sqlite:PATH or "
                            "sqlite:///ABSOLUTE/PATH)");
    const char *prefix = strncmp(p, "file:", 5) == 0 ? "./" : "";
    int n = snprintf(out, cap, "%s%s", prefix, p);
    if (n < 0 || (size_t)n >= cap)
        return cmig_err_set(err, CMIG_E_USAGE, "sqlite database path is longer than %zu bytes",
                            cap - 1);
    return 0;
}

static void sq_close(struct cmig_conn *c)
{
    if (!c)
        return;
    c->cancel_db = NULL;
    if (c->db)
        sqlite3_close_v2(c->db); /* rolls back an open transaction */
    /* Only now: closing it earlier would drop SQLite's POSIX locks. */
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c);
}

static int sq_open(struct cmig_conn **out, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    *out = NULL;
    struct cmig_conn *c = calloc(1, sizeof *c);
    if (!c)
        return cmig_err_nomem(err);
    c->lock_fd = -1;
    int rc = parse_url(o->url, c->path, sizeof c->path, err);
    if (rc)
        goto out;
    c->interrupted = o->interrupted;
    c->busy_fixed_ms = o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 0;
    c->busy_ms = c->busy_fixed_ms ? c->busy_fixed_ms : SQ_DEFAULT_BUSY_MS;
    c->stmt_timeout_ms = o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0;

    if (sqlite3_open_v2(c->path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        if (!c->db) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        rc = sq_fail(c, err, CMIG_E_CONNECT, "cannot open the database");
        goto out;
    }
    if (strcmp(c->path, ":memory:") != 0) {
        c->lock_fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat sb;
        if (c->lock_fd < 0 || fstat(c->lock_fd, &sb) != 0) {
            rc = cmig_err_errno(err, CMIG_E_CONNECT, errno, "'%s': cannot open the database file",
                                c->path);
            goto out;
        }
        if (!S_ISREG(sb.st_mode)) {
            rc = cmig_err_set(err, CMIG_E_CONNECT, "'%s': not a regular file", c->path);
            goto out;
        }
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, on_busy, c);
    sqlite3_progress_handler(c->db, SQ_PROGRESS_OPS, on_progress, c);
    c->cancel_db = c->db;
    *out = c;
out:
    if (rc)
        sq_close(c);
    return rc;
}

static void sq_cancel(struct cmig_conn *c)
{
    if (!c)
        return;
    sqlite3 *db = c->cancel_db;
    if (db)
        sqlite3_interrupt(db); /* sets a flag; async-signal-safe in practice */
}

/* ---- lock ------------------------------------------------------------ */

static int sq_lock(struct cmig_conn *c, const char *bundle, int64_t timeout_ms,
                   struct cmig_err *err)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (!c->busy_fixed_ms && timeout_ms > 0)
        c->busy_ms = timeout_ms;
    if (c->locked || c->lock_fd < 0) {
        c->locked = 1;
        return 0;
    }
    int64_t start = mono_ms(), delay = 2;
    for (;;) {
        if (stop_requested(c))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "'%s': interrupted while waiting for the migration lock of "
                                "bundle '%s'",
                                c->path, bundle ? bundle : "");
        if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0) {
            c->locked = 1;
            return 0;
        }
        int e = errno;
        if (e != EWOULDBLOCK && e != EINTR)
            return cmig_err_errno(err, CMIG_E_LOCK, e, "'%s': cannot lock the database file",
                                  c->path);
        int64_t waited = mono_ms() - start;
        if (waited >= timeout_ms)
            return cmig_err_set(err, CMIG_E_LOCK,
                                "'%s': migration lock of bundle '%s' not acquired within %lld ms: "
                                "another cmig-run holds it",
                                c->path, bundle ? bundle : "", (long long)timeout_ms);
        int64_t left = timeout_ms - waited;
        sleep_ms(delay < left ? delay : left);
        delay = delay * 2 > SQ_LOCK_POLL_MAX_MS ? SQ_LOCK_POLL_MAX_MS : delay * 2;
    }
}

static int sq_unlock(struct cmig_conn *c, struct cmig_err *err)
{
    if (!c->locked)
        return 0;
    c->locked = 0;
    if (c->lock_fd >= 0 && flock(c->lock_fd, LOCK_UN) != 0)
        return cmig_err_errno(err, CMIG_E_LOCK, errno, "'%s': cannot unlock the database file",
                              c->path);
    return 0;
}

/* ---- transactions ---------------------------------------------------- */

static int sq_begin(struct cmig_conn *c, struct cmig_err *err)
{
    return begin_write(c, err);
}

static int sq_commit(struct cmig_conn *c, struct cmig_err *err)
{
    if (sqlite3_get_autocommit(c->db))
        return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': commit without a transaction", c->path);
    return commit_tx(c, err);
}

static int sq_rollback(struct cmig_conn *c, struct cmig_err *err)
{
    if (rollback_quiet(c) != SQLITE_OK)
        return sq_fail(c, err, CMIG_E_DB, "cannot roll back");
    return 0;
}

/* Opens our own write transaction unless the step runs inside the core's. */
static int step_begin(struct cmig_conn *c, const struct cmig_step *s, int *own,
                      struct cmig_err *err)
{
    *own = !s->in_outer_tx;
    if (*own)
        return begin_write(c, err);
    if (sqlite3_get_autocommit(c->db))
        return cmig_err_set(err, CMIG_E_INTERNAL,
                            "'%s': step of version %lld is marked in_outer_tx but no "
                            "transaction is open",
                            c->path, (long long)s->version);
    return 0;
}

/* ---- schema and history ---------------------------------------------- */

static int sq_ensure_schema(struct cmig_conn *c, struct cmig_err *err)
{
    static const char ddl[] = "CREATE TABLE IF NOT EXISTS cmig_history (\n"
                              "    bundle TEXT NOT NULL,\n"
                              "    version INTEGER NOT NULL,\n"
                              "    name TEXT NOT NULL,\n"
                              "    sha256 TEXT NOT NULL,\n"
                              "    applied_at INTEGER NOT NULL,\n"
                              "    execution_ms INTEGER NOT NULL,\n"
                              "    bundle_version TEXT NOT NULL,\n"
                              "    runner_version TEXT NOT NULL,\n"
                              "    dirty INTEGER NOT NULL DEFAULT 0,\n"
                              "    PRIMARY KEY (bundle, version)\n"
                              ");\n"
                              "CREATE TABLE IF NOT EXISTS cmig_bundles (\n"
                              "    bundle TEXT NOT NULL PRIMARY KEY,\n"
                              "    version TEXT NOT NULL,\n"
                              "    manifest_sha256 TEXT NOT NULL,\n"
                              "    updated_at INTEGER NOT NULL\n"
                              ");\n";
    int own = sqlite3_get_autocommit(c->db);
    int rc = own ? begin_write(c, err) : 0;
    if (!rc)
        rc = exec_sql(c, ddl, CMIG_E_DB, "cannot create the history tables", err);
    if (!rc && own)
        rc = commit_tx(c, err);
    if (rc && own)
        rollback_quiet(c);
    return rc;
}

static int col_text(struct cmig_conn *c, sqlite3_stmt *st, int i, const char *what, char **out,
                    struct cmig_err *err)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t || n < 0)
        n = 0;
    if ((size_t)n > SQ_MAX_TEXT)
        return cmig_err_set(err, CMIG_E_DB, "'%s': %s is longer than %d bytes", c->path, what,
                            SQ_MAX_TEXT);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return cmig_err_nomem(err);
    if (n)
        memcpy(s, t, (size_t)n);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int col_sha256(sqlite3_stmt *st, int i, uint8_t out[32])
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    size_t bin_len = 0;
    if (!t || sqlite3_column_bytes(st, i) != 64 ||
        sodium_hex2bin(out, 32, t, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
        return -1;
    return 0;
}

/* golang-migrate stores dirty as a Go bool: 0/1, or text from other tools. */
static int col_bool(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_TEXT) {
        const char *t = (const char *)sqlite3_column_text(st, i);
        return t && (strcasecmp(t, "true") == 0 || strcasecmp(t, "t") == 0 || strcmp(t, "1") == 0);
    }
    return sqlite3_column_int64(st, i) != 0;
}

static int read_rows(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                     struct cmig_err *err)
{
    static const char sql[] = "SELECT version, name, sha256, dirty, applied_at, execution_ms, "
                              "bundle_version, runner_version FROM cmig_history "
                              "WHERE bundle = ?1 ORDER BY version";
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc = prepare(c, &st, sql, "cannot read 'cmig_history'", err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, bundle, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (h->n == cap) {
            if (cap >= SQ_MAX_ROWS) {
                rc =
                    cmig_err_set(err, CMIG_E_DB, "'%s': bundle '%s' has more than %zu history rows",
                                 c->path, bundle, SQ_MAX_ROWS);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 16;
            struct cmig_applied *rows = realloc(h->rows, ncap * sizeof *rows);
            if (!rows) {
                rc = cmig_err_nomem(err);
                goto out;
            }
            h->rows = rows;
            cap = ncap;
        }
        struct cmig_applied *a = &h->rows[h->n];
        memset(a, 0, sizeof *a);
        h->n++; /* counted now so that a failure below frees what is set */
        a->version = sqlite3_column_int64(st, 0);
        if (col_sha256(st, 2, a->sha256) != 0) {
            rc = cmig_err_set(err, CMIG_E_DB,
                              "'%s': history row %lld of bundle '%s' has a malformed sha256",
                              c->path, (long long)a->version, bundle);
            goto out;
        }
        a->dirty = sqlite3_column_int64(st, 3) != 0;
        a->applied_at = sqlite3_column_int64(st, 4);
        a->execution_ms = sqlite3_column_int64(st, 5);
        if ((rc = col_text(c, st, 1, "a history name", &a->name, err)) ||
            (rc = col_text(c, st, 6, "a history bundle_version", &a->bundle_version, err)) ||
            (rc = col_text(c, st, 7, "a history runner_version", &a->runner_version, err)))
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = sq_fail(c, err, CMIG_E_DB, "cannot read 'cmig_history'");
out:
    sqlite3_finalize(st);
    return rc;
}

static int read_record(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                       struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, &st, "SELECT version, manifest_sha256 FROM cmig_bundles WHERE bundle = ?1",
                     "cannot read 'cmig_bundles'", err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, bundle, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (col_sha256(st, 1, h->record_manifest_sha256) != 0) {
            rc = cmig_err_set(err, CMIG_E_DB,
                              "'%s': the record of bundle '%s' has a malformed manifest_sha256",
                              c->path, bundle);
            goto out;
        }
        if ((rc = col_text(c, st, 0, "a bundle version", &h->record_version, err)))
            goto out;
        h->has_record = 1;
    } else if (src != SQLITE_DONE) {
        rc = sq_fail(c, err, CMIG_E_DB, "cannot read 'cmig_bundles'");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The no-op fast path's one query: this bundle's record and a summary of
 * its history. Missing tables just mean nothing is recorded. */
static int sq_quick_state(struct cmig_conn *c, const char *bundle, struct cmig_quick_state *out,
                          struct cmig_err *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            c->db,
            "SELECT b.version, b.manifest_sha256, "
            "(SELECT count(*) FROM cmig_history WHERE bundle = ?1), "
            "(SELECT coalesce(max(version), -1) FROM cmig_history WHERE bundle = ?1), "
            "(SELECT coalesce(max(dirty), 0) FROM cmig_history WHERE bundle = ?1) "
            "FROM cmig_bundles AS b WHERE b.bundle = ?1",
            -1, &st, NULL) != SQLITE_OK) {
        /* No cmig tables yet (or unreadable): the full path decides. */
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_bind_text(st, 1, bundle, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && col_sha256(st, 1, out->manifest_sha256) == 0 &&
        sqlite3_column_type(st, 0) == SQLITE_TEXT) {
        snprintf(out->version, sizeof out->version, "%s", (const char *)sqlite3_column_text(st, 0));
        out->applied = (uint64_t)sqlite3_column_int64(st, 2);
        out->last = sqlite3_column_int64(st, 3);
        out->dirty = sqlite3_column_int64(st, 4) != 0;
        out->present = 1;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Which tables exist, and whether schema_migrations is golang-migrate's
 * (it has version and dirty; dbmate's has no dirty). */
struct sq_tables {
    int history, bundles, legacy, legacy_foreign;
};

static int find_tables(struct cmig_conn *c, struct sq_tables *t, struct cmig_err *err)
{
    static const char sql[] =
        "SELECT m.name, (SELECT count(*) FROM pragma_table_info(m.name) AS p "
        "WHERE p.name IN ('version', 'dirty')) FROM sqlite_master AS m WHERE m.type = 'table' "
        "AND m.name IN ('cmig_history', 'cmig_bundles', 'schema_migrations')";
    sqlite3_stmt *st = NULL;
    memset(t, 0, sizeof *t);
    int rc = prepare(c, &st, sql, "cannot read the schema", err);
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name)
            continue;
        if (strcmp(name, "cmig_history") == 0)
            t->history = 1;
        else if (strcmp(name, "cmig_bundles") == 0)
            t->bundles = 1;
        else if (sqlite3_column_int(st, 1) == 2)
            t->legacy = 1;
        else
            t->legacy_foreign = 1;
    }
    if (src != SQLITE_DONE)
        rc = sq_fail(c, err, CMIG_E_DB, "cannot read the schema");
    sqlite3_finalize(st);
    return rc;
}

static int read_legacy(struct cmig_conn *c, struct cmig_history *h, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, &st,
                     "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1",
                     "cannot read 'schema_migrations'", err);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        h->legacy_has_row = 1;
        h->legacy_version = sqlite3_column_int64(st, 0);
        h->legacy_dirty = col_bool(st, 1);
    } else if (src != SQLITE_DONE) {
        rc = sq_fail(c, err, CMIG_E_DB, "cannot read 'schema_migrations'");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Whether other bundles have history here; asked only when golang-migrate's
 * table exists, since adoption is for the first bundle of a database. */
static int read_other_bundles(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                              struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, &st, "SELECT EXISTS (SELECT 1 FROM cmig_history WHERE bundle <> ?1)",
                     "cannot read 'cmig_history'", err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, bundle, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        h->other_bundles = sqlite3_column_int(st, 0) != 0;
    else
        rc = sq_fail(c, err, CMIG_E_DB, "cannot read 'cmig_history'");
    sqlite3_finalize(st);
    return rc;
}

/* One read transaction, so that rows, record and legacy agree. Takes no
 * write lock: this is every pod start's path when there is nothing to do. */
static int sq_read_history(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                           struct cmig_err *err)
{
    memset(h, 0, sizeof *h);
    if (!bundle)
        return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': read_history without a bundle name",
                            c->path);
    int own = sqlite3_get_autocommit(c->db);
    struct sq_tables t = {0};
    int rc = own ? exec_sql(c, "BEGIN", CMIG_E_DB, "cannot read history", err) : 0;
    if (!rc)
        rc = find_tables(c, &t, err);
    if (!rc && t.history) {
        h->schema_present = 1;
        rc = read_rows(c, bundle, h, err);
    }
    if (!rc && t.bundles)
        rc = read_record(c, bundle, h, err);
    if (!rc && t.legacy) {
        h->legacy_present = 1;
        rc = read_legacy(c, h, err);
        if (!rc && t.history)
            rc = read_other_bundles(c, bundle, h, err);
    }
    if (!rc && own)
        rc = exec_sql(c, "COMMIT", CMIG_E_DB, "cannot end the history read", err);
    if (rc) {
        if (own)
            rollback_quiet(c);
        cmig_history_free(h);
        memset(h, 0, sizeof *h);
    }
    return rc;
}

/* Binds ?1 bundle, ?2 version and, when the statement has it, ?3. */
static int hist_exec(struct cmig_conn *c, const struct cmig_step *s, const char *sql, int64_t p3,
                     int64_t *changes, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, &st, sql, "cannot update 'cmig_history'", err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, s->bundle, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->version);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, p3);
    rc = step_done(c, st, "cannot update 'cmig_history'", err);
    if (!rc && changes)
        *changes = sqlite3_changes64(c->db);
    sqlite3_finalize(st);
    return rc;
}

/* Writes the step's history row (replacing one of the same version). */
static int hist_put(struct cmig_conn *c, const struct cmig_step *s, int dirty, int64_t exec_ms,
                    struct cmig_err *err)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO cmig_history (bundle, version, name, sha256, applied_at, "
        "execution_ms, bundle_version, runner_version, dirty) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    char hex[65];
    static const uint8_t none[32];
    sodium_bin2hex(hex, sizeof hex, s->sha256 ? s->sha256 : none, 32);
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, &st, sql, "cannot write 'cmig_history'", err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, s->bundle, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->version);
    sqlite3_bind_text(st, 3, s->name ? s->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hex, 64, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
    sqlite3_bind_int64(st, 6, exec_ms);
    sqlite3_bind_text(st, 7, s->bundle_version ? s->bundle_version : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, s->runner_version ? s->runner_version : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, dirty ? 1 : 0);
    rc = step_done(c, st, "cannot write 'cmig_history'", err);
    sqlite3_finalize(st);
    return rc;
}

static int hist_missing(struct cmig_conn *c, const struct cmig_step *s, struct cmig_err *err)
{
    return cmig_err_set(err, CMIG_E_CONFLICT,
                        "'%s': bundle '%s' has no history row for version %lld", c->path, s->bundle,
                        (long long)s->version);
}

/* golang-migrate's SetVersion: every row goes, then (version, dirty) is
 * inserted unless it is the nil version and clean. */
static int legacy_set(struct cmig_conn *c, int64_t version, int dirty, struct cmig_err *err)
{
    struct sq_tables t = {0};
    int rc = find_tables(c, &t, err);
    if (rc)
        return rc;
    if (t.legacy_foreign)
        return cmig_err_set(err, CMIG_E_CONFLICT,
                            "'%s': 'schema_migrations' is not golang-migrate's (it has no "
                            "version and dirty columns): not updating it",
                            c->path);
    if (!t.legacy &&
        (rc = exec_sql(c,
                       "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool);"
                       "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations "
                       "(version)",
                       CMIG_E_DB, "cannot create 'schema_migrations'", err)))
        return rc;
    if ((rc = exec_sql(c, "DELETE FROM schema_migrations", CMIG_E_DB,
                       "cannot update 'schema_migrations'", err)))
        return rc;
    if (version < 0 && !dirty)
        return 0;
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(c, &st, "INSERT INTO schema_migrations (version, dirty) VALUES (?1, ?2)",
                      "cannot update 'schema_migrations'", err)))
        return rc;
    sqlite3_bind_int64(st, 1, version < 0 ? -1 : version);
    sqlite3_bind_int(st, 2, dirty ? 1 : 0);
    rc = step_done(c, st, "cannot update 'schema_migrations'", err);
    sqlite3_finalize(st);
    return rc;
}

/* ---- running a script ------------------------------------------------ */

/* Skips whitespace and comments, to find where a statement really starts. */
static const char *skip_blank(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') {
            p++;
        } else if (*p == '-' && end - p >= 2 && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == '/' && end - p >= 2 && p[1] == '*') {
            p += 2;
            while (end - p >= 2 && !(p[0] == '*' && p[1] == '/'))
                p++;
            p = end - p >= 2 ? p + 2 : end;
        } else {
            break;
        }
    }
    return p;
}

/* Records where statement n failed in r: SQLite's byte offset of the error
 * when it knows one (parse errors), else the statement's first character.
 * p is where the statement's text starts in the stream's window, view the
 * bytes SQLite was given from there. The message leaves the position out:
 * the core reports it from r, mapped to the line of the source file. */
static int script_fail(struct cmig_conn *c, const struct cmig_sqlstream *ss,
                       struct cmig_step_result *r, unsigned n, const char *p, size_t view,
                       const char *start, struct cmig_err *err)
{
    size_t off = (size_t)(start - ss->win);
#if SQLITE_VERSION_NUMBER >= 3038000
    int eo = sqlite3_error_offset(c->db);
    if (eo >= 0 && (size_t)eo < view)
        off = (size_t)(p - ss->win) + (size_t)eo;
#else
    (void)view;
#endif
    r->statement = n;
    cmig_sqlstream_locate(ss, off, &r->line, &r->col);
    if (c->denied && (sqlite3_errcode(c->db) & 0xff) == SQLITE_AUTH) {
        if (err && err->code != CMIG_OK)
            return err->code;
        cmig_err_set(err, CMIG_E_MIGRATION,
                     "'%s': %s is not allowed in a transactional migration (mark it "
                     "'-- cmig:no-transaction' to run it as written)",
                     c->path, c->denied);
        cmig_err_native(err, "sqlite:23");
        return CMIG_E_MIGRATION;
    }
    return sq_fail(c, err, CMIG_E_MIGRATION, "%s", "");
}

/* Whether a prepared statement's text [p, tail) ended at its own ';': then
 * nothing past the window can change it. */
static int ends_with_semicolon(const char *p, const char *tail)
{
    while (tail > p && (tail[-1] == ' ' || tail[-1] == '\t' || tail[-1] == '\n' ||
                        tail[-1] == '\r' || tail[-1] == '\f' || tail[-1] == '\v'))
        tail--;
    return tail > p && tail[-1] == ';';
}

/* Runs the step's SQL statement by statement, each stepped to completion
 * (a SELECT too). in_tx: we are inside a transaction that must outlive the
 * script. A large file is read through a window (cmig/sqlstream.h): a
 * statement runs only once its ';' is in view or the text has ended; one
 * that does not parse makes the window grow until the text ends, so a
 * failing statement may cost the rest of the file in memory, never a wrong
 * split. */
static int run_script(struct cmig_conn *c, const struct cmig_step *s, int in_tx,
                      struct cmig_step_result *r, struct cmig_err *err)
{
    struct cmig_sqlstream ss;
    sqlite3_stmt *st = NULL;
    unsigned n = 0;
    int rc = 0;
    if (s->sql || !s->read) {
        if ((rc = cmig_sqlstream_init_whole(&ss, s->sql, s->len, err)))
            return rc;
    } else {
        cmig_sqlstream_init_reader(&ss, s->len, s->read, s->src);
    }
    c->denied = NULL;
    if (in_tx)
        sqlite3_set_authorizer(c->db, on_authorize, c);
    for (;;) {
        int at_end = cmig_sqlstream_at_end(&ss);
        size_t view = cmig_sqlstream_view(&ss);
        const char *p = ss.win, *end = ss.win + view;
        const char *start = skip_blank(p, end), *tail = NULL;
        if (start == end) {
            if (at_end)
                break;
            if ((rc = cmig_sqlstream_more(&ss, err)))
                goto out;
            continue;
        }
        if (stop_requested(c)) {
            r->statement = n + 1;
            cmig_sqlstream_locate(&ss, (size_t)(start - p), &r->line, &r->col);
            rc = cmig_err_set(err, CMIG_E_INTERRUPTED, "'%s': interrupted by a signal", c->path);
            goto out;
        }
        if (sqlite3_prepare_v2(c->db, p, (int)view, &st, &tail) != SQLITE_OK) {
            if (!at_end) {
                if ((rc = cmig_sqlstream_more(&ss, err)))
                    goto out;
                continue;
            }
            rc = script_fail(c, &ss, r, n + 1, p, view, start, err);
            goto out;
        }
        if (!tail || tail <= p)
            tail = end;
        if (!st || (!at_end && !ends_with_semicolon(p, tail))) {
            /* Only blanks are in view, or a statement that may go on. */
            sqlite3_finalize(st);
            st = NULL;
            if (at_end)
                break;
            if ((rc = cmig_sqlstream_more(&ss, err)))
                goto out;
            continue;
        }
        n++;
        c->timed_out = 0;
        c->deadline = c->stmt_timeout_ms ? mono_ms() + c->stmt_timeout_ms : 0;
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW)
            ;
        c->deadline = 0;
        if (src != SQLITE_DONE) {
            rc = script_fail(c, &ss, r, n, p, view, start, err);
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (in_tx && sqlite3_get_autocommit(c->db)) {
            r->statement = n;
            cmig_sqlstream_locate(&ss, (size_t)(start - p), &r->line, &r->col);
            rc = cmig_err_set(err, CMIG_E_MIGRATION,
                              "'%s': the statement ended the migration's transaction", c->path);
            goto out;
        }
        cmig_sqlstream_consume(&ss, (size_t)(tail - p));
    }
out:
    c->deadline = 0;
    if (in_tx)
        sqlite3_set_authorizer(c->db, NULL, NULL);
    sqlite3_finalize(st);
    cmig_sqlstream_free(&ss);
    return rc;
}

/* ---- steps ----------------------------------------------------------- */

static int check_step(struct cmig_conn *c, const struct cmig_step *s, struct cmig_err *err)
{
    if (!s || !s->bundle)
        return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': step without a bundle name", c->path);
    switch (s->kind) {
    case CMIG_STEP_UP:
    case CMIG_STEP_DOWN:
        if (!s->sql && !s->read && s->len)
            return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': step of version %lld has no sql",
                                c->path, (long long)s->version);
        if (s->tx != CMIG_TX_TRANSACTION && s->tx != CMIG_TX_NONE)
            return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': step of version %lld: bad tx mode",
                                c->path, (long long)s->version);
        if (s->len > SQ_MAX_SQL)
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': migration %lld is %zu bytes; at most %zu are run", c->path,
                                (long long)s->version, s->len, SQ_MAX_SQL);
        if (s->sql && s->len && memchr(s->sql, '\0', s->len))
            return cmig_err_set(err, CMIG_E_INPUT, "'%s': migration %lld contains a NUL byte",
                                c->path, (long long)s->version);
        if (s->kind == CMIG_STEP_UP && !s->sha256)
            return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': step of version %lld has no sha256",
                                c->path, (long long)s->version);
        return 0;
    case CMIG_STEP_BASELINE:
        if (!s->sha256)
            return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': step of version %lld has no sha256",
                                c->path, (long long)s->version);
        return 0;
    case CMIG_STEP_FORCE_CLEAN:
    case CMIG_STEP_FORCE_REMOVE:
        return 0;
    }
    return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': unknown step kind %d", c->path, (int)s->kind);
}

/* UP: the row, clean; DOWN: no row. */
static int hist_finish(struct cmig_conn *c, const struct cmig_step *s, int64_t exec_ms,
                       struct cmig_err *err)
{
    if (s->kind == CMIG_STEP_UP)
        return hist_put(c, s, 0, exec_ms, err);
    return hist_exec(c, s, "DELETE FROM cmig_history WHERE bundle = ?1 AND version = ?2", 0, NULL,
                     err);
}

/* The script and its history change in one transaction (ours, or the
 * core's for --single-transaction, whatever s->tx says). */
static int apply_tx(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                    int64_t t0, struct cmig_err *err)
{
    int own = 0;
    int rc = step_begin(c, s, &own, err);
    if (rc)
        return rc;
    rc = run_script(c, s, 1, r, err);
    if (!rc)
        rc = hist_finish(c, s, mono_ms() - t0, err);
    if (!rc && s->keep_legacy)
        rc = legacy_set(c, s->legacy_version, 0, err);
    if (!rc && own)
        rc = commit_tx(c, err);
    if (rc && own)
        rollback_quiet(c);
    return rc;
}

/* Dirty row committed first, then the script in autocommit, then clean.
 * Whatever fails after the first commit leaves the row dirty. */
static int apply_none(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                      int64_t t0, struct cmig_err *err)
{
    if (!sqlite3_get_autocommit(c->db))
        return cmig_err_set(err, CMIG_E_INTERNAL,
                            "'%s': a non-transactional step started inside a transaction", c->path);
    int rc = begin_write(c, err);
    if (rc)
        return rc;
    if (s->kind == CMIG_STEP_UP) {
        rc = hist_put(c, s, 1, 0, err);
    } else {
        int64_t n = 0;
        rc = hist_exec(c, s, "UPDATE cmig_history SET dirty = 1 WHERE bundle = ?1 AND version = ?2",
                       0, &n, err);
        if (!rc && n == 0)
            rc = hist_put(c, s, 1, 0, err); /* so that a failure still shows */
    }
    if (!rc && s->keep_legacy)
        rc = legacy_set(c, s->legacy_version, 1, err);
    if (!rc)
        rc = commit_tx(c, err);
    if (rc) {
        rollback_quiet(c);
        return rc;
    }

    rc = run_script(c, s, 0, r, err);
    if (!rc && !sqlite3_get_autocommit(c->db))
        rc = cmig_err_set(err, CMIG_E_MIGRATION,
                          "'%s': the migration left a transaction open (BEGIN without COMMIT)",
                          c->path);
    if (rc) {
        rollback_quiet(c); /* only the script's own transaction, if any */
        return rc;
    }

    if ((rc = begin_write(c, err)))
        return rc;
    if (s->kind == CMIG_STEP_UP)
        rc = hist_exec(c, s,
                       "UPDATE cmig_history SET dirty = 0, execution_ms = ?3 "
                       "WHERE bundle = ?1 AND version = ?2",
                       mono_ms() - t0, NULL, err);
    else
        rc = hist_finish(c, s, 0, err);
    if (!rc && s->keep_legacy)
        rc = legacy_set(c, s->legacy_version, 0, err);
    if (!rc)
        rc = commit_tx(c, err);
    if (rc)
        rollback_quiet(c);
    return rc;
}

/* BASELINE and FORCE_*: history only. */
static int apply_record(struct cmig_conn *c, const struct cmig_step *s, struct cmig_err *err)
{
    int own = 0;
    int64_t n = 0;
    int rc = step_begin(c, s, &own, err);
    if (rc)
        return rc;
    switch (s->kind) {
    case CMIG_STEP_BASELINE:
        rc = hist_put(c, s, 0, 0, err);
        break;
    case CMIG_STEP_FORCE_CLEAN:
        rc = hist_exec(c, s, "UPDATE cmig_history SET dirty = 0 WHERE bundle = ?1 AND version = ?2",
                       0, &n, err);
        if (!rc && n == 0)
            rc = hist_missing(c, s, err);
        break;
    default:
        rc = hist_exec(c, s, "DELETE FROM cmig_history WHERE bundle = ?1 AND version = ?2", 0, &n,
                       err);
        if (!rc && n == 0)
            rc = hist_missing(c, s, err);
        break;
    }
    if (!rc && s->keep_legacy)
        rc = legacy_set(c, s->legacy_version, 0, err);
    if (!rc && own)
        rc = commit_tx(c, err);
    if (rc && own)
        rollback_quiet(c);
    return rc;
}

static int sq_apply(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                    struct cmig_err *err)
{
    struct cmig_step_result unused;
    if (!r)
        r = &unused;
    memset(r, 0, sizeof *r);
    int64_t t0 = mono_ms();
    int rc = check_step(c, s, err);
    if (rc)
        return rc;
    if (stop_requested(c))
        return cmig_err_set(err, CMIG_E_INTERRUPTED, "'%s': interrupted by a signal", c->path);
    if (s->kind == CMIG_STEP_UP || s->kind == CMIG_STEP_DOWN) {
        if (s->tx == CMIG_TX_NONE && !s->in_outer_tx)
            rc = apply_none(c, s, r, t0, err);
        else
            rc = apply_tx(c, s, r, t0, err);
    } else {
        rc = apply_record(c, s, err);
    }
    r->execution_ms = mono_ms() - t0;
    return rc;
}

static int sq_record_bundle(struct cmig_conn *c, const char *bundle, const char *version,
                            const uint8_t manifest_sha256[32], struct cmig_err *err)
{
    static const char sql[] =
        "INSERT INTO cmig_bundles (bundle, version, manifest_sha256, updated_at) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (bundle) DO UPDATE SET version = excluded.version, "
        "manifest_sha256 = excluded.manifest_sha256, updated_at = excluded.updated_at";
    if (!bundle || !version || !manifest_sha256)
        return cmig_err_set(err, CMIG_E_INTERNAL, "'%s': record_bundle without its values",
                            c->path);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, manifest_sha256, 32);
    int own = sqlite3_get_autocommit(c->db);
    sqlite3_stmt *st = NULL;
    int rc = own ? begin_write(c, err) : 0;
    if (!rc)
        rc = prepare(c, &st, sql, "cannot write 'cmig_bundles'", err);
    if (!rc) {
        sqlite3_bind_text(st, 1, bundle, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, hex, 64, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        rc = step_done(c, st, "cannot write 'cmig_bundles'", err);
    }
    sqlite3_finalize(st);
    if (!rc && own)
        rc = commit_tx(c, err);
    if (rc && own)
        rollback_quiet(c);
    return rc;
}

static const char *const sq_schemes[] = {"sqlite:", "sqlite3:", NULL};

const struct cmig_driver cmig_driver_sqlite = {
    .abi = CMIG_DRIVER_ABI,
    .name = "sqlite",
    .schemes = sq_schemes,
    .caps = CMIG_CAP_TRANSACTIONAL_DDL | CMIG_CAP_SINGLE_TRANSACTION,
    .open = sq_open,
    .close = sq_close,
    .read_history = sq_read_history,
    .quick_state = sq_quick_state,
    .lock = sq_lock,
    .unlock = sq_unlock,
    .ensure_schema = sq_ensure_schema,
    .apply = sq_apply,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .record_bundle = sq_record_bundle,
    .cancel = sq_cancel,
};
