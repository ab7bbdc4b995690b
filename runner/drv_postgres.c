/*
 * drv_postgres.c - the PostgreSQL driver of cmig-run, built as a shared
 * object (drivers/postgres.so) that links libpq and nothing of the runner.
 *
 * Invariants it guards:
 * - a transactional migration and its history change commit in one
 *   transaction, together or not at all: a file up to 1 MiB travels with
 *   them as one request (checked to end outside any quote or comment before
 *   anything is appended, so the history statements can never be
 *   swallowed); a larger one goes as chunks of whole statements between
 *   BEGIN and the history change with COMMIT, so that neither the runner
 *   nor libpq holds it whole;
 * - a non-transactional migration is recorded dirty, and committed, before
 *   its first statement runs, and clean only after its last one succeeded;
 * - no message carries the password: libpq's connection-string parse errors
 *   are never echoed, and connection failures are scrubbed of the password
 *   text before they leave this file;
 * - every wait (connection retries, the migration lock, the pipelined
 *   history read) is bounded and ends as soon as the core reports a signal.
 *
 * Error positions: PostgreSQL reports a 1-based character index into the
 * string it received; it is converted back to a byte offset (UTF-8 client
 * encoding is forced for that reason) and then to a line and a column
 * counted in characters, as editors count them, within the migration file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "driver.h"
#include "drv_util.h"

#define EXPORT __attribute__((visibility("default")))

/* A simple-protocol query is one protocol message, and the server caps
 * those at 1 GB; the history statements need a little room too. */
#define SQL_MAX (((size_t)1 << 30) - ((size_t)1 << 20))
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define MIN_CONNECT_TIMEOUT_MS 2000
#define CONNECT_BACKOFF_FIRST_MS 100
#define CONNECT_BACKOFF_MAX_MS 2000
#define LOCK_BACKOFF_FIRST_MS 50
#define LOCK_BACKOFF_MAX_MS 1000
#define POLL_SLICE_MS 50
/* How much longer than the statement timeout a pipelined answer may take
 * before the server is taken for gone: the server ends a statement that
 * runs too long itself, and says so. */
#define ANSWER_GRACE_MS 10000

struct cmig_conn {
    PGconn *pg;
    PGcancel *cancel;
    void (*log)(void *ctx, int level, const char *event, const char *msg);
    void *log_ctx;
    volatile int *interrupted;
    int64_t statement_timeout_ms; /* 0: the server's */
    int pos_in_bytes;             /* server_encoding SQL_ASCII: positions count bytes */
    char *lock_bundle;            /* the bundle whose lock this session holds */
};

/* ---- small utilities ------------------------------------------------ */

static int interrupted(const struct cmig_conn *c)
{
    return c->interrupted && *c->interrupted;
}

static int nap(const struct cmig_conn *c, int64_t ms)
{
    return cmig_drv_nap(c->interrupted, ms);
}

static void say(const struct cmig_conn *c, int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(const struct cmig_conn *c, int level, const char *event, const char *fmt, ...)
{
    if (!c->log)
        return;
    char msg[CMIG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log(c->log_ctx, level, event, msg);
}

/* snprintf for messages, where cutting a long text short is intended. */
static void put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void put(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

/* Copies s into out (cap > 0) with runs of whitespace folded into one
 * space and the ends trimmed: libpq's messages are multi-line. */
static void fold_ws(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    int space = 0;
    if (!s)
        s = "";
    for (; *s && o + 1 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < cap)
            out[o++] = ' ';
        space = 0;
        out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* Replaces every occurrence of secret in msg (NUL-terminated, cap bytes)
 * with "***". */
static void redact(char *msg, size_t cap, const char *secret)
{
    if (!secret || !*secret || cap == 0)
        return;
    size_t sl = strlen(secret);
    char out[CMIG_ERR_MSG_MAX];
    size_t o = 0;
    const char *p = msg;
    while (*p && o + 1 < sizeof out) {
        if (strncmp(p, secret, sl) == 0) {
            for (const char *r = "***"; *r && o + 1 < sizeof out; r++)
                out[o++] = *r;
            p += sl;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    put(msg, cap, "%s", out);
}

/* A name for a message: control characters shown as '?', long names cut. */
static const char *show(char *out, size_t cap, const char *s)
{
    fold_ws(out, cap, s);
    if (s && strlen(s) >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4);
    return out;
}

static void hex_encode(char out[65], const uint8_t in[32])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[64] = '\0';
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* 64 lower-case hex digits, exactly. */
static int hex_decode(uint8_t out[32], const char *s)
{
    if (!s || strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int parse_i64(const char *s, int64_t *v)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

/* ---- a growable string ---------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > SQL_MAX || b->len > SQL_MAX - n) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    char *tmp = malloc((size_t)n + 1);
    if (!tmp) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_add(b, tmp, (size_t)n);
    free(tmp);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- errors from results -------------------------------------------- */

/* "<primary> (detail: ...) (hint: ...)" for an error result, or libpq's
 * own message when there is no result or no primary text. */
static void describe(char *out, size_t cap, const PGresult *res, PGconn *pg)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!primary) {
        const char *m = res ? PQresultErrorMessage(res) : NULL;
        if (!m || !*m)
            m = pg ? PQerrorMessage(pg) : NULL;
        if (!m || !*m)
            m = "unknown error";
        /* libpq's own texts start with a severity ("ERROR:  ") sometimes. */
        if (strncmp(m, "ERROR:  ", 8) == 0)
            m += 8;
        fold_ws(out, cap, m);
        return;
    }
    char part[CMIG_ERR_MSG_MAX];
    fold_ws(out, cap, primary);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    size_t n = strlen(out);
    if (detail && *detail && n < cap) {
        fold_ws(part, sizeof part, detail);
        put(out + n, cap - n, " (detail: %s)", part);
        n = strlen(out);
    }
    if (hint && *hint && n < cap) {
        fold_ws(part, sizeof part, hint);
        put(out + n, cap - n, " (hint: %s)", part);
    }
}

static const char *sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* Records a failed database call: "<what>: <description>", SQLSTATE kept.
 * A call that failed because the connection is gone (the server crashed or
 * restarted, the session was terminated) is reported as such wherever it
 * happens, waiting for the lock as in a migration: the database is no
 * longer reachable, which is exit 4, not an error of the call. */
static int db_fail(struct cmig_err *err, int code, const PGresult *res, PGconn *pg,
                   const char *what)
{
    char d[CMIG_ERR_MSG_MAX];
    describe(d, sizeof d, res, pg);
    if (pg && PQstatus(pg) == CONNECTION_BAD)
        return cmig_err_set(err, CMIG_E_CONNECT, "%s: the connection to PostgreSQL was lost: %s",
                            what, d);
    int rc = cmig_err_set(err, code, "%s: %s", what, d);
    if (err && err->code == code && !err->native[0])
        cmig_err_native(err, sqlstate(res));
    return rc;
}

/* Runs one command that returns no rows (or rows nobody reads). */
static int exec_cmd(struct cmig_conn *c, const char *sql, const char *what, struct cmig_err *err)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
    PQclear(res);
    return rc;
}

/* Sends text (one or more statements) as one simple-protocol query and
 * waits for all of it. Returns 0 when every statement succeeded, else -1
 * with *bad holding the first error result (NULL when the failure is the
 * connection's own: see PQerrorMessage). COPY ... FROM STDIN is refused:
 * a migration carries no data stream. */
static int run_script(struct cmig_conn *c, const char *text, PGresult **bad)
{
    *bad = NULL;
    if (!PQsendQuery(c->pg, text))
        return -1;
    int failed = 0;
    PGresult *res;
    while ((res = PQgetResult(c->pg)) != NULL) {
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN:
            PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported in migrations");
            break;
        case PGRES_COPY_OUT: {
            char *row;
            while (PQgetCopyData(c->pg, &row, 0) > 0)
                PQfreemem(row);
            break;
        }
        case PGRES_COPY_BOTH:
        case PGRES_BAD_RESPONSE:
        case PGRES_NONFATAL_ERROR:
        case PGRES_FATAL_ERROR:
            failed = 1;
            if (!*bad) {
                *bad = res;
                continue;
            }
            break;
        default:
            break;
        }
        PQclear(res);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        failed = 1;
    return failed ? -1 : 0;
}

/* After a failure inside a transaction block the session refuses
 * everything until ROLLBACK: leave it usable. */
static void rollback_if_open(struct cmig_conn *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* ---- open ----------------------------------------------------------- */

/* Says what is wrong with a connection string without quoting any value:
 * libpq's parse messages quote the offending text, which may be the
 * password. Only a keyword name made of plain word characters is shown. */
static void parse_problem(char *out, size_t cap, const char *msg)
{
    static const struct {
        const char *prefix, *what;
    } known[] = {
        {"missing \"=\" after", "a keyword without '=' and a value"},
        {"unterminated quoted string", "an unterminated quoted value"},
        {"invalid percent-encoded token", "an invalid percent-encoding"},
        {"forbidden value %00", "%00 in a percent-encoded value"},
        {"missing key/value separator", "a URI query parameter without '='"},
        {"extra key/value separator", "a URI query parameter with two '='"},
        {"end of string reached when looking for matching \"]\"", "an unterminated IPv6 address"},
        {"IPv6 host address may not be empty", "an empty IPv6 address"},
        {"unexpected character", "an unexpected character in the host part"},
        {"invalid URI propagated", "a malformed URI"},
    };
    static const char *const keyword_msgs[] = {"invalid connection option \"",
                                               "invalid URI query parameter: \""};
    out[0] = '\0';
    if (!msg)
        return;
    for (size_t i = 0; i < sizeof keyword_msgs / sizeof keyword_msgs[0]; i++) {
        size_t pl = strlen(keyword_msgs[i]);
        if (strncmp(msg, keyword_msgs[i], pl) != 0)
            continue;
        const char *k = msg + pl, *e = k;
        while ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') ||
               *e == '_')
            e++;
        if (*e == '"' && e > k && e - k <= 63)
            snprintf(out, cap, ": unknown %s '%.*s'", i == 0 ? "keyword" : "URI query parameter",
                     (int)(e - k), k);
        else
            snprintf(out, cap, ": an unknown keyword");
        return;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strncmp(msg, known[i].prefix, strlen(known[i].prefix)) == 0) {
            snprintf(out, cap, ": %s", known[i].what);
            return;
        }
}

/* The keyword/value arrays handed to libpq: the user's options as parsed
 * by libpq itself, plus what this driver adds. */
struct connspec {
    PQconninfoOption *opts;
    const char **keys, **vals;
    const char *secret[2]; /* password, sslpassword: inside opts, wiped with it */
    int64_t attempt_ms;    /* per attempt; <= 0: no limit (the user's choice) */
    int user_timeout;
    char timeout_text[24];
};

static void connspec_free(struct connspec *cs)
{
    if (cs->opts) {
        for (PQconninfoOption *o = cs->opts; o->keyword; o++)
            if (o->val &&
                (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0))
                explicit_bzero(o->val, strlen(o->val));
        PQconninfoFree(cs->opts);
    }
    free(cs->keys);
    free(cs->vals);
    memset(cs, 0, sizeof *cs);
}

static int user_has(const struct connspec *cs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cs->keys[i], key) == 0)
            return 1;
    return 0;
}

static int connspec_build(struct connspec *cs, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    char *perr = NULL;
    memset(cs, 0, sizeof *cs);
    cs->opts = PQconninfoParse(o->url ? o->url : "", &perr);
    if (!cs->opts) {
        char why[128];
        if (!perr)
            return cmig_err_nomem(err);
        parse_problem(why, sizeof why, perr);
        explicit_bzero(perr, strlen(perr));
        PQfreemem(perr);
        if (!why[0]) {
            /* Not a problem of the string that this file knows: libpq also
             * fails a parse when it runs out of memory (and says so in a
             * message that may be translated). A string is refused every
             * time it is parsed, so a second parse tells which. */
            PQconninfoOption *again = PQconninfoParse(o->url ? o->url : "", NULL);
            if (again) {
                PQconninfoFree(again);
                return cmig_err_nomem(err);
            }
        }
        return cmig_err_set(err, CMIG_E_USAGE, "invalid PostgreSQL connection string%s", why);
    }
    size_t n = 0;
    for (PQconninfoOption *p = cs->opts; p->keyword; p++)
        n++;
    /* Room for the user's options, ours (8) and the terminator. */
    cs->keys = calloc(n + 9, sizeof *cs->keys);
    cs->vals = calloc(n + 9, sizeof *cs->vals);
    if (!cs->keys || !cs->vals)
        return cmig_err_nomem(err);
    size_t k = 0;
    for (PQconninfoOption *p = cs->opts; p->keyword; p++) {
        if (!p->val)
            continue;
        /* Positions are mapped back assuming UTF-8, and a migration file
         * is UTF-8: the client encoding is not the user's to choose. */
        if (strcmp(p->keyword, "client_encoding") == 0)
            continue;
        if (strcmp(p->keyword, "fallback_application_name") == 0 && o->application_name)
            continue;
        if (strcmp(p->keyword, "password") == 0)
            cs->secret[0] = p->val;
        if (strcmp(p->keyword, "sslpassword") == 0)
            cs->secret[1] = p->val;
        if (strcmp(p->keyword, "connect_timeout") == 0) {
            int64_t v = 0;
            cs->user_timeout = 1;
            /* libpq's rules: 0 or less waits forever, 1 means 2. */
            if (parse_i64(p->val, &v) == 0)
                cs->attempt_ms = v <= 0 ? 0 : (v < 2 ? 2 : v > 86400 ? 86400 : v) * 1000;
        }
        cs->keys[k] = p->keyword;
        cs->vals[k] = p->val;
        k++;
    }
    size_t user = k;
    cs->keys[k] = "client_encoding";
    cs->vals[k++] = "UTF8";
    if (o->application_name) {
        cs->keys[k] = "fallback_application_name";
        cs->vals[k++] = o->application_name;
    }
    /* A TCP connection that a NAT or a failed-over server dropped must not
     * hang a migration forever. */
    static const char *const ka[][2] = {{"keepalives", "1"},
                                        {"keepalives_idle", "30"},
                                        {"keepalives_interval", "10"},
                                        {"keepalives_count", "3"}};
    for (size_t i = 0; i < 4; i++)
        if (!user_has(cs, user, ka[i][0])) {
            cs->keys[k] = ka[i][0];
            cs->vals[k++] = ka[i][1];
        }
    if (!cs->user_timeout) {
        int64_t t = DEFAULT_CONNECT_TIMEOUT_MS;
        if (o->wait_ms > 0 && o->wait_ms < t)
            t = o->wait_ms < MIN_CONNECT_TIMEOUT_MS ? MIN_CONNECT_TIMEOUT_MS : o->wait_ms;
        cs->attempt_ms = t;
        snprintf(cs->timeout_text, sizeof cs->timeout_text, "%" PRId64, (t + 999) / 1000);
        cs->keys[k] = "connect_timeout";
        cs->vals[k++] = cs->timeout_text;
    }
    cs->keys[k] = NULL;
    cs->vals[k] = NULL;
    return 0;
}

/* "host:port/dbname" of a (possibly failed) connection, for messages. */
static void describe_target(char *out, size_t cap, PGconn *pg)
{
    char h[256], p[32], d[256];
    show(h, sizeof h, pg ? PQhost(pg) : NULL);
    show(p, sizeof p, pg ? PQport(pg) : NULL);
    show(d, sizeof d, pg ? PQdb(pg) : NULL);
    if (!h[0])
        snprintf(h, sizeof h, "localhost");
    if (strchr(h, ':') && h[0] != '/')
        put(out, cap, "[%s]:%s/%s", h, p[0] ? p : "5432", d);
    else
        put(out, cap, "%s:%s/%s", h, p[0] ? p : "5432", d);
}

enum { ATTEMPT_OK = 0, ATTEMPT_FAILED = -1 };

/* One connection attempt, driven by PQconnectPoll so that a signal or the
 * attempt's deadline ends it (libpq's own connect_timeout is only honoured
 * by the blocking calls). On failure, why and where describe it. */
static int connect_once(struct cmig_conn *c, const struct connspec *cs, int64_t deadline, char *why,
                        size_t why_cap, char *where, size_t where_cap, struct cmig_err *err)
{
    PGconn *pg = PQconnectStartParams(cs->keys, cs->vals, 0);
    if (!pg)
        return cmig_err_nomem(err);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (PQstatus(pg) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (interrupted(c)) {
            PQfinish(pg);
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted while connecting to PostgreSQL");
        }
        int64_t left = deadline > 0 ? deadline - cmig_drv_now_ms() : POLL_SLICE_MS;
        if (left <= 0) {
            describe_target(where, where_cap, pg);
            snprintf(why, why_cap, "timeout expired");
            PQfinish(pg);
            return ATTEMPT_FAILED;
        }
        struct pollfd pfd = {PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        if (pfd.fd < 0)
            break;
        int r = poll(&pfd, 1, (int)(left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
        if (r == 0 || (r < 0 && errno == EINTR))
            continue;
        st = PQconnectPoll(pg);
    }
    if (st == PGRES_POLLING_OK && PQstatus(pg) == CONNECTION_OK) {
        c->pg = pg;
        return ATTEMPT_OK;
    }
    describe_target(where, where_cap, pg);
    fold_ws(why, why_cap, PQerrorMessage(pg));
    if (!why[0])
        snprintf(why, why_cap, "connection failed");
    PQfinish(pg);
    return ATTEMPT_FAILED;
}

static void notice_to_log(void *arg, const char *message)
{
    struct cmig_conn *c = arg;
    char m[CMIG_ERR_MSG_MAX];
    fold_ws(m, sizeof m, message);
    if (c->log)
        c->log(c->log_ctx, 2, "db.notice", m);
}

static int session_setup(struct cmig_conn *c, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    PQsetNoticeProcessor(c->pg, notice_to_log, c);
    const char *enc = PQparameterStatus(c->pg, "server_encoding");
    c->pos_in_bytes = enc && strcmp(enc, "SQL_ASCII") == 0;
    char sql[256];
    int n = snprintf(sql, sizeof sql, "SET client_min_messages = warning");
    if (o->statement_timeout_ms > 0)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "; SET statement_timeout = %" PRId64,
                      o->statement_timeout_ms);
    if (o->lock_timeout_ms > 0)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "; SET lock_timeout = %" PRId64,
                      o->lock_timeout_ms);
    /* A runner killed mid-migration must not leave its backend running the
     * rest of the request (and committing it, and holding the lock) on its
     * own: since PostgreSQL 14 the server can notice the dead client while a
     * statement runs, and abort. */
    if (PQserverVersion(c->pg) >= 140000)
        snprintf(sql + n, sizeof sql - (size_t)n, "; SET client_connection_check_interval = 1000");
    if (exec_cmd(c, sql, "cannot set up the PostgreSQL session", err))
        return err->code;
    c->cancel = PQgetCancel(c->pg);
    return 0;
}

static void pg_close(struct cmig_conn *c)
{
    if (!c)
        return;
    PGcancel *cancel = c->cancel;
    c->cancel = NULL;
    if (cancel)
        PQfreeCancel(cancel);
    if (c->pg)
        PQfinish(c->pg);
    free(c->lock_bundle);
    free(c);
}

static int pg_open(struct cmig_conn **out, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    struct connspec cs;
    struct cmig_conn *c = NULL;
    int rc;
    *out = NULL;
    memset(&cs, 0, sizeof cs);
    if ((rc = connspec_build(&cs, o, err)))
        goto out;
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->interrupted = o->interrupted;
    c->statement_timeout_ms = o->statement_timeout_ms;

    int64_t start = cmig_drv_now_ms();
    int64_t give_up = start + (o->wait_ms > 0 ? o->wait_ms : 0);
    int64_t backoff = CONNECT_BACKOFF_FIRST_MS;
    unsigned attempts = 0;
    char why[CMIG_ERR_MSG_MAX / 2], where[CMIG_ERR_MSG_MAX / 4];
    for (;;) {
        int64_t now = cmig_drv_now_ms(), deadline = 0;
        if (cs.attempt_ms > 0) {
            int64_t t = cs.attempt_ms;
            /* The default timeout never outlasts --wait by much. */
            if (!cs.user_timeout && o->wait_ms > 0 && give_up - now < t)
                t = give_up - now < MIN_CONNECT_TIMEOUT_MS ? MIN_CONNECT_TIMEOUT_MS : give_up - now;
            deadline = now + t;
        }
        attempts++;
        rc = connect_once(c, &cs, deadline, why, sizeof why, where, sizeof where, err);
        if (rc == ATTEMPT_OK)
            break;
        if (rc > 0)
            goto out;
        /* libpq does not put passwords in its messages; this makes sure,
         * also of values it does quote (a database name, an option). */
        const char *secrets[3] = {cs.secret[0], cs.secret[1], getenv("PGPASSWORD")};
        for (size_t i = 0; i < 3; i++) {
            redact(why, sizeof why, secrets[i]);
            redact(where, sizeof where, secrets[i]);
        }
        now = cmig_drv_now_ms();
        if (now >= give_up) {
            if (attempts > 1)
                rc = cmig_err_set(err, CMIG_E_CONNECT,
                                  "cannot connect to PostgreSQL at %s: %s (gave up after %u "
                                  "attempts in %" PRId64 " ms)",
                                  where, why, attempts, now - start);
            else
                rc = cmig_err_set(err, CMIG_E_CONNECT, "cannot connect to PostgreSQL at %s: %s",
                                  where, why);
            goto out;
        }
        /* The last attempt is made when --wait runs out, not before. */
        int64_t pause = backoff < give_up - now ? backoff : give_up - now;
        say(c, 1, "db.waiting", "PostgreSQL at %s is not ready (%s); retrying in %" PRId64 " ms",
            where, why, pause);
        if (nap(c, pause)) {
            rc = cmig_err_set(err, CMIG_E_INTERRUPTED,
                              "interrupted while waiting for PostgreSQL at %s", where);
            goto out;
        }
        backoff = backoff * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS : backoff * 2;
    }
    if ((rc = session_setup(c, o, err)))
        goto out;
    *out = c;
    c = NULL;
out:
    connspec_free(&cs);
    pg_close(c);
    return rc;
}

/* ---- history -------------------------------------------------------- */

static const char Q_HISTORY[] =
    "SELECT version, name, sha256, dirty, floor(extract(epoch FROM applied_at))::bigint, "
    "execution_ms, bundle_version, runner_version FROM cmig_history WHERE bundle = $1 "
    "ORDER BY version";
static const char Q_RECORD[] =
    "SELECT version, manifest_sha256 FROM cmig_bundles WHERE bundle = $1";
/* golang-migrate's table, told apart from other tools' schema_migrations
 * (Rails has one too) by its two typed columns. */
static const char Q_LEGACY_CHECK[] =
    "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = "
    "pg_catalog.to_regclass('schema_migrations') AND attnum > 0 AND NOT attisdropped AND "
    "((attname = 'version' AND atttypid = 'pg_catalog.int8'::pg_catalog.regtype) OR "
    "(attname = 'dirty' AND atttypid = 'pg_catalog.bool'::pg_catalog.regtype))";
static const char Q_LEGACY[] = "SELECT version, dirty FROM schema_migrations LIMIT 1";

static void history_clear(struct cmig_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->rows[i].name);
        free(h->rows[i].bundle_version);
        free(h->rows[i].runner_version);
    }
    free(h->rows);
    free(h->record_version);
    memset(h, 0, sizeof *h);
}

static char *dup_field(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return strdup(PQgetvalue(res, row, col));
}

static int take_rows(struct cmig_history *h, const PGresult *res, const char *bundle,
                     struct cmig_err *err)
{
    int n = PQntuples(res);
    char b[128];
    if (n <= 0)
        return 0;
    h->rows = calloc((size_t)n, sizeof *h->rows);
    if (!h->rows)
        return cmig_err_nomem(err);
    for (int i = 0; i < n; i++) {
        struct cmig_applied *a = &h->rows[i];
        h->n++;
        if (parse_i64(PQgetvalue(res, i, 0), &a->version))
            return cmig_err_set(err, CMIG_E_DB, "cmig_history of bundle '%s': bad version",
                                show(b, sizeof b, bundle));
        if (hex_decode(a->sha256, PQgetvalue(res, i, 2)))
            return cmig_err_set(err, CMIG_E_DB,
                                "cmig_history of bundle '%s': version %" PRId64
                                " has a malformed sha256",
                                show(b, sizeof b, bundle), a->version);
        a->dirty = PQgetvalue(res, i, 3)[0] == 't';
        if (!PQgetisnull(res, i, 4))
            parse_i64(PQgetvalue(res, i, 4), &a->applied_at);
        if (!PQgetisnull(res, i, 5))
            parse_i64(PQgetvalue(res, i, 5), &a->execution_ms);
        a->name = dup_field(res, i, 1);
        if (!a->name)
            a->name = strdup("");
        a->bundle_version = dup_field(res, i, 6);
        a->runner_version = dup_field(res, i, 7);
        if (!a->name || (!a->bundle_version && !PQgetisnull(res, i, 6)) ||
            (!a->runner_version && !PQgetisnull(res, i, 7)))
            return cmig_err_nomem(err);
    }
    return 0;
}

static int take_record(struct cmig_history *h, const PGresult *res, const char *bundle,
                       struct cmig_err *err)
{
    char b[128];
    if (PQntuples(res) < 1)
        return 0;
    if (hex_decode(h->record_manifest_sha256, PQgetvalue(res, 0, 1)))
        return cmig_err_set(err, CMIG_E_DB, "cmig_bundles: bundle '%s' has a malformed sha256",
                            show(b, sizeof b, bundle));
    h->record_version = strdup(PQgetvalue(res, 0, 0));
    if (!h->record_version)
        return cmig_err_nomem(err);
    h->has_record = 1;
    return 0;
}

/* Fails the pipelined read with the first line of the text libpq added to
 * its error message after mark (the earlier text belongs to results
 * already taken: the first new line is the first failure nobody was told
 * of), and why when given. */
static int pipeline_fail(struct cmig_conn *c, size_t mark, const char *what, const char *why,
                         struct cmig_err *err)
{
    char d[CMIG_ERR_MSG_MAX];
    const char *m = PQerrorMessage(c->pg);
    size_t len = m ? strlen(m) : 0;
    d[0] = '\0';
    if (len > mark) {
        const char *nl = strchr(m + mark, '\n');
        size_t n = nl ? (size_t)(nl - (m + mark)) : len - mark;
        char line[CMIG_ERR_MSG_MAX];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), m + mark);
        fold_ws(d, sizeof d, line);
    }
    if (!d[0])
        snprintf(d, sizeof d, "libpq failed");
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return cmig_err_set(err, CMIG_E_CONNECT, "%s: the connection to PostgreSQL was lost: %s",
                            what, d);
    if (why)
        return cmig_err_set(err, CMIG_E_DB, "%s: %s (%s)", what, d, why);
    return cmig_err_set(err, CMIG_E_DB, "%s: %s", what, d);
}

/* Waits until libpq can hand over its next result without blocking. Its
 * own wait, inside PQgetResult, has no bound and outlasts signals; and in
 * pipeline mode it can be a wait for nothing: when libpq cannot allocate
 * the result that stands for a sync point (out of memory), it records the
 * error but stays busy, and if the server has already sent its last answer
 * nothing more will ever arrive to end that state. So this wait ends
 * - with the error, as soon as libpq says busy while holding error text
 *   (beyond mark, the length of its message when the last result was
 *   taken) that no result has carried: a server error is delivered as
 *   soon as it is read, so such text means a failure of libpq's own;
 * - at the deadline (0: none), or when the core has reported a signal and
 *   no answer is there;
 * - when the connection breaks. */
static int pipeline_await(struct cmig_conn *c, size_t mark, int64_t deadline, const char *what,
                          struct cmig_err *err)
{
    for (;;) {
        /* What did arrive before a read failed is still handed over: the
         * server's last words, say, before it closed the connection. */
        int read_ok = PQconsumeInput(c->pg);
        if (!PQisBusy(c->pg))
            return 0;
        if (!read_ok)
            return pipeline_fail(c, mark, what, NULL, err);
        const char *m = PQerrorMessage(c->pg);
        size_t len = m ? strlen(m) : 0;
        if (len < mark)
            mark = len; /* libpq cleared it, starting the next query */
        if (len > mark)
            return pipeline_fail(c, mark, what, NULL, err);
        int64_t slice = POLL_SLICE_MS;
        if (deadline > 0) {
            int64_t left = deadline - cmig_drv_now_ms();
            if (left <= 0)
                return cmig_err_set(err, CMIG_E_CONNECT,
                                    "%s: no answer from PostgreSQL in %" PRId64
                                    " ms (the statement timeout and %d s more)",
                                    what, c->statement_timeout_ms + ANSWER_GRACE_MS,
                                    ANSWER_GRACE_MS / 1000);
            if (left < slice)
                slice = left;
        }
        struct pollfd pfd = {PQsocket(c->pg), POLLIN, 0};
        if (pfd.fd < 0)
            return pipeline_fail(c, mark, what, "the connection has no socket", err);
        int r = poll(&pfd, 1, (int)slice);
        if (r < 0 && errno != EINTR)
            return cmig_err_errno(err, CMIG_E_CONNECT, errno, "%s: waiting for PostgreSQL", what);
        /* A signal ends the wait, not an answer that is there: a read
         * after a cancelled statement (to see what it left) still works. */
        if (r <= 0 && interrupted(c))
            return cmig_err_set(err, CMIG_E_INTERRUPTED, "%s: interrupted", what);
    }
}

/* Reads the results of n pipeline segments, each one query and a sync:
 * res[i] gets segment i's query result. Each segment must give exactly its
 * result, the NULL that ends it, and the sync's PGRES_PIPELINE_SYNC;
 * anything else means libpq lost track of the pipeline (out of memory: an
 * error result where a sync belongs, a sync taken for the next one) and is
 * an error, never a reason to wait for more. On an error the connection
 * is left in pipeline mode with results outstanding: it is good only for
 * closing. */
static int pipeline_collect(struct cmig_conn *c, PGresult **res, int n, const char *what,
                            struct cmig_err *err)
{
    static const char *const expected[3] = {"a query result", "the end of a query's results",
                                            "a sync point"};
    size_t mark = strlen(PQerrorMessage(c->pg));
    for (int seg = 0; seg < n; seg++) {
        for (int step = 0; step < 3; step++) {
            int64_t deadline = 0;
            if (c->statement_timeout_ms > 0)
                deadline = cmig_drv_now_ms() + c->statement_timeout_ms + ANSWER_GRACE_MS;
            int rc = pipeline_await(c, mark, deadline, what, err);
            if (rc)
                return rc;
            PGresult *r = PQgetResult(c->pg);
            ExecStatusType st = r ? PQresultStatus(r) : PGRES_COMMAND_OK;
            int fits;
            if (step == 0)
                fits = r && st != PGRES_PIPELINE_SYNC && st != PGRES_PIPELINE_ABORTED;
            else if (step == 1)
                fits = !r;
            else
                fits = r && st == PGRES_PIPELINE_SYNC;
            if (!fits) {
                /* The text libpq added since the last result says why (an
                 * error result out of place carries its text there too). */
                char why[128];
                snprintf(why, sizeof why, "libpq's results out of step: %s expected",
                         expected[step]);
                rc = pipeline_fail(c, mark, what, why, err);
                PQclear(r);
                return rc;
            }
            mark = strlen(PQerrorMessage(c->pg));
            if (step == 0)
                res[seg] = r;
            else
                PQclear(r);
        }
    }
    return 0;
}

static int segment_ok(const PGresult *r)
{
    return PQresultStatus(r) == PGRES_TUPLES_OK;
}

static int undefined_table(const PGresult *r)
{
    return PQresultStatus(r) == PGRES_FATAL_ERROR && strcmp(sqlstate(r), "42P01") == 0;
}

/* The history rows, the bundle record and the check for golang-migrate's
 * table go out together, each after its own sync point so that a missing
 * table fails only its own query: one round trip. Only a database that
 * has golang-migrate's table pays a second one, to read it. */
static int pg_read_history(struct cmig_conn *c, const char *bundle, struct cmig_history *out,
                           struct cmig_err *err)
{
    PGresult *res[3] = {NULL, NULL, NULL};
    const char *params[1] = {bundle};
    const char *what = "cannot read the migration history";
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!PQenterPipelineMode(c->pg))
        return db_fail(err, CMIG_E_DB, NULL, c->pg, what);
    if (!PQsendQueryParams(c->pg, Q_HISTORY, 1, NULL, params, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg) ||
        !PQsendQueryParams(c->pg, Q_RECORD, 1, NULL, params, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg) ||
        !PQsendQueryParams(c->pg, Q_LEGACY_CHECK, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg) || PQflush(c->pg) != 0) {
        /* Not all three segments went out (libpq out of memory, or the
         * connection broke): the server answers only what it received, so
         * waiting for three answers would wait forever. The connection is
         * given up, and closing it is all that is left to do with it. */
        rc = db_fail(err, CMIG_E_DB, NULL, c->pg, what);
        goto out;
    }
    if ((rc = pipeline_collect(c, res, 3, what, err)))
        goto out;
    if (!PQexitPipelineMode(c->pg)) {
        rc = db_fail(err, CMIG_E_DB, NULL, c->pg, what);
        goto out;
    }

    if (segment_ok(res[0])) {
        out->schema_present = 1;
        if ((rc = take_rows(out, res[0], bundle, err)))
            goto out;
    } else if (!undefined_table(res[0])) {
        rc = db_fail(err, CMIG_E_DB, res[0], c->pg, what);
        goto out;
    }
    if (segment_ok(res[1])) {
        if ((rc = take_record(out, res[1], bundle, err)))
            goto out;
    } else if (!undefined_table(res[1])) {
        rc = db_fail(err, CMIG_E_DB, res[1], c->pg, what);
        goto out;
    }
    if (!segment_ok(res[2])) {
        rc = db_fail(err, CMIG_E_DB, res[2], c->pg, what);
        goto out;
    }
    if (strcmp(PQgetvalue(res[2], 0, 0), "2") == 0) {
        PGresult *lr = PQexec(c->pg, Q_LEGACY);
        if (!segment_ok(lr)) {
            rc = db_fail(err, CMIG_E_DB, lr, c->pg,
                         "cannot read golang-migrate's schema_migrations");
            PQclear(lr);
            goto out;
        }
        out->legacy_present = 1;
        if (PQntuples(lr) > 0) {
            out->legacy_has_row = 1;
            parse_i64(PQgetvalue(lr, 0, 0), &out->legacy_version);
            out->legacy_dirty = PQgetvalue(lr, 0, 1)[0] == 't';
        }
        PQclear(lr);
        if (out->schema_present) {
            /* Only asked when golang-migrate's table exists: adoption is for
             * the first bundle of a database. */
            PGresult *ob = PQexecParams(c->pg,
                                        "SELECT EXISTS (SELECT 1 FROM cmig_history "
                                        "WHERE bundle <> $1)",
                                        1, NULL, params, NULL, NULL, 0);
            if (!segment_ok(ob)) {
                rc = db_fail(err, CMIG_E_DB, ob, c->pg, what);
                PQclear(ob);
                goto out;
            }
            out->other_bundles = PQgetvalue(ob, 0, 0)[0] == 't';
            PQclear(ob);
        }
    }
out:
    for (int i = 0; i < 3; i++)
        PQclear(res[i]);
    if (rc)
        history_clear(out);
    return rc;
}

/* The no-op fast path's one query: this bundle's record and a summary of
 * its history. No cmig tables yet (42P01) just means nothing is recorded. */
static const char Q_QUICK[] =
    "SELECT b.version, b.manifest_sha256, h.n, h.last, h.dirty FROM cmig_bundles AS b, "
    "LATERAL (SELECT count(*) AS n, coalesce(max(version), -1) AS last, "
    "coalesce(bool_or(dirty), false) AS dirty FROM cmig_history WHERE bundle = $1) AS h "
    "WHERE b.bundle = $1";

static int pg_quick_state(struct cmig_conn *c, const char *bundle, struct cmig_quick_state *out,
                          struct cmig_err *err)
{
    const char *params[1] = {bundle};
    memset(out, 0, sizeof *out);
    PGresult *res = PQexecParams(c->pg, Q_QUICK, 1, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (!segment_ok(res)) {
        if (!undefined_table(res))
            rc = db_fail(err, CMIG_E_DB, res, c->pg, "cannot read the migration history");
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) == 1 && hex_decode(out->manifest_sha256, PQgetvalue(res, 0, 1)) == 0 &&
        parse_i64(PQgetvalue(res, 0, 3), &out->last) == 0) {
        int64_t n = 0;
        snprintf(out->version, sizeof out->version, "%s", PQgetvalue(res, 0, 0));
        if (parse_i64(PQgetvalue(res, 0, 2), &n) == 0 && n >= 0) {
            out->applied = (uint64_t)n;
            out->dirty = PQgetvalue(res, 0, 4)[0] == 't';
            out->present = 1;
        }
    }
    PQclear(res);
    return 0;
}

/* ---- schema --------------------------------------------------------- */

static const char Q_SCHEMA_CHECK[] =
    "SELECT pg_catalog.to_regclass('cmig_history') IS NOT NULL AND "
    "pg_catalog.to_regclass('cmig_bundles') IS NOT NULL";

/* Replicas of different bundles may create the tables at the same moment,
 * and two concurrent CREATE TABLE IF NOT EXISTS can still collide on the
 * catalog (a unique violation on pg_type): one transaction-scoped advisory
 * lock, on a key no bundle lock can have ('cmig:' prefixes those),
 * serialises them. */
static const char Q_SCHEMA_DDL[] =
    "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('cmig-schema', 0));\n"
    "CREATE TABLE IF NOT EXISTS cmig_history (\n"
    "    bundle text NOT NULL,\n"
    "    version bigint NOT NULL,\n"
    "    name text NOT NULL,\n"
    "    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),\n"
    "    applied_at timestamptz NOT NULL DEFAULT now(),\n"
    "    execution_ms bigint,\n"
    "    bundle_version text,\n"
    "    runner_version text,\n"
    "    dirty boolean NOT NULL DEFAULT false,\n"
    "    PRIMARY KEY (bundle, version)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS cmig_bundles (\n"
    "    bundle text PRIMARY KEY,\n"
    "    version text NOT NULL,\n"
    "    manifest_sha256 text NOT NULL,\n"
    "    updated_at timestamptz NOT NULL DEFAULT now()\n"
    ")";

static int pg_ensure_schema(struct cmig_conn *c, struct cmig_err *err)
{
    const char *what = "cannot create the history tables";
    /* Checked first: CREATE TABLE IF NOT EXISTS needs the CREATE privilege
     * even when the table is there, and the tables may have been made by
     * someone who has it for a role that has not. */
    PGresult *res = PQexec(c->pg, Q_SCHEMA_CHECK);
    if (!segment_ok(res)) {
        int rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
        PQclear(res);
        return rc;
    }
    int present = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (present)
        return 0;
    int own_tx = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    struct buf b = {0};
    if (own_tx)
        buf_str(&b, "BEGIN;\n");
    buf_str(&b, Q_SCHEMA_DDL);
    if (own_tx)
        buf_str(&b, ";\nCOMMIT");
    if (b.failed) {
        buf_free(&b);
        return cmig_err_nomem(err);
    }
    PGresult *bad;
    int rc = 0;
    if (run_script(c, b.p, &bad)) {
        rc = db_fail(err, CMIG_E_DB, bad, c->pg, what);
        if (own_tx)
            rollback_if_open(c);
    }
    PQclear(bad);
    buf_free(&b);
    return rc;
}

/* ---- lock ----------------------------------------------------------- */

static const char Q_TRY_LOCK[] =
    "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended('cmig:' || $1, 0))";
static const char Q_UNLOCK[] =
    "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtextextended('cmig:' || $1, 0))";
/* A bigint advisory key shows in pg_locks as classid (high half) and
 * objid (low half) with objsubid 1. */
static const char Q_LOCK_HOLDER[] =
    "SELECT l.pid FROM pg_catalog.pg_locks l, "
    "(SELECT pg_catalog.hashtextextended('cmig:' || $1, 0) AS k) h "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
    "WHERE datname = pg_catalog.current_database()) "
    "AND l.classid = ((h.k >> 32) & 4294967295)::oid AND l.objid = (h.k & 4294967295)::oid "
    "AND l.pid <> pg_catalog.pg_backend_pid() LIMIT 1";

static int lock_query(struct cmig_conn *c, const char *q, const char *bundle, char *value,
                      size_t cap, const char *what, struct cmig_err *err)
{
    const char *params[1] = {bundle};
    PGresult *res = PQexecParams(c->pg, q, 1, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (!segment_ok(res))
        rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
    else if (PQntuples(res) > 0)
        snprintf(value, cap, "%s", PQgetvalue(res, 0, 0));
    else
        value[0] = '\0';
    PQclear(res);
    return rc;
}

static int pg_lock(struct cmig_conn *c, const char *bundle, int64_t timeout_ms,
                   struct cmig_err *err)
{
    char b[128], v[32], what[256];
    show(b, sizeof b, bundle);
    if (c->lock_bundle) {
        if (strcmp(c->lock_bundle, bundle) == 0)
            return 0; /* advisory locks stack: do not take it twice */
        return cmig_err_set(err, CMIG_E_INTERNAL,
                            "this session already holds the migration lock of another bundle");
    }
    snprintf(what, sizeof what, "cannot take the migration lock of bundle '%s'", b);
    int64_t start = cmig_drv_now_ms(), delay = LOCK_BACKOFF_FIRST_MS;
    for (;;) {
        int rc = lock_query(c, Q_TRY_LOCK, bundle, v, sizeof v, what, err);
        if (rc)
            return rc;
        if (v[0] == 't')
            break;
        if (interrupted(c))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted while waiting for the migration lock of bundle '%s'",
                                b);
        int64_t waited = cmig_drv_now_ms() - start;
        if (waited >= timeout_ms) {
            char pid[32] = "";
            struct cmig_err ignored;
            cmig_err_clear(&ignored);
            lock_query(c, Q_LOCK_HOLDER, bundle, pid, sizeof pid, what, &ignored);
            if (pid[0])
                return cmig_err_set(err, CMIG_E_LOCK,
                                    "timed out after %" PRId64
                                    " ms waiting for the migration lock of bundle '%s' (held by "
                                    "pid %s)",
                                    timeout_ms > 0 ? timeout_ms : 0, b, pid);
            return cmig_err_set(err, CMIG_E_LOCK,
                                "timed out after %" PRId64
                                " ms waiting for the migration lock of bundle '%s'",
                                timeout_ms > 0 ? timeout_ms : 0, b);
        }
        int64_t nap_ms = delay < timeout_ms - waited ? delay : timeout_ms - waited;
        if (nap(c, nap_ms))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted while waiting for the migration lock of bundle '%s'",
                                b);
        delay = delay * 2 > LOCK_BACKOFF_MAX_MS ? LOCK_BACKOFF_MAX_MS : delay * 2;
    }
    c->lock_bundle = strdup(bundle);
    if (!c->lock_bundle) {
        PGresult *res;
        const char *params[1] = {bundle};
        res = PQexecParams(c->pg, Q_UNLOCK, 1, NULL, params, NULL, NULL, 0);
        PQclear(res);
        return cmig_err_nomem(err);
    }
    return 0;
}

static int pg_unlock(struct cmig_conn *c, struct cmig_err *err)
{
    char b[128], v[32], what[256];
    if (!c->lock_bundle)
        return 0;
    show(b, sizeof b, c->lock_bundle);
    snprintf(what, sizeof what, "cannot release the migration lock of bundle '%s'", b);
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        rollback_if_open(c);
    int rc = lock_query(c, Q_UNLOCK, c->lock_bundle, v, sizeof v, what, err);
    if (!rc && v[0] != 't')
        rc = cmig_err_set(err, CMIG_E_DB, "the migration lock of bundle '%s' was not held", b);
    free(c->lock_bundle);
    c->lock_bundle = NULL;
    return rc;
}

/* ---- apply ---------------------------------------------------------- */

/* The step's values as SQL literals (PQescapeLiteral); NULL members stand
 * for SQL NULL. */
struct lits {
    char *bundle, *name, *sha, *bver, *rver;
};

static void lits_free(struct lits *l)
{
    PQfreemem(l->bundle);
    PQfreemem(l->name);
    PQfreemem(l->sha);
    PQfreemem(l->bver);
    PQfreemem(l->rver);
    memset(l, 0, sizeof *l);
}

static int quote(struct cmig_conn *c, const char *s, char **out, struct cmig_err *err)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = PQescapeLiteral(c->pg, s, strlen(s));
    if (!*out)
        return db_fail(err, CMIG_E_DB, NULL, c->pg, "cannot quote a history value");
    return 0;
}

static int lits_make(struct cmig_conn *c, const struct cmig_step *s, struct lits *l,
                     struct cmig_err *err)
{
    char hex[65] = "";
    memset(l, 0, sizeof *l);
    if (!s->bundle)
        return cmig_err_set(err, CMIG_E_INTERNAL, "step without a bundle name");
    int need_row = s->kind == CMIG_STEP_UP || s->kind == CMIG_STEP_BASELINE;
    if (need_row && !s->sha256)
        return cmig_err_set(err, CMIG_E_INTERNAL, "migration %" PRId64 " has no sha256",
                            s->version);
    if (s->sha256)
        hex_encode(hex, s->sha256);
    if (quote(c, s->bundle, &l->bundle, err) || quote(c, s->name ? s->name : "", &l->name, err) ||
        quote(c, s->sha256 ? hex : NULL, &l->sha, err) ||
        quote(c, s->bundle_version, &l->bver, err) || quote(c, s->runner_version, &l->rver, err))
        return err->code;
    return 0;
}

static const char *lit(const char *p)
{
    return p ? p : "NULL";
}

/* The server's time since it received the request: with the simple
 * protocol, statement_timestamp() is when the whole string arrived. */
#define SERVER_MS_EXPR                                                                             \
    "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint"

static void add_insert(struct buf *b, const struct lits *l, int64_t version, int dirty,
                       const char *ms_expr, int upsert)
{
    buf_fmt(b,
            "INSERT INTO cmig_history (bundle, version, name, sha256, execution_ms, "
            "bundle_version, runner_version, dirty) VALUES (%s, %" PRId64
            ", %s, %s, %s, %s, %s, %s)",
            l->bundle, version, l->name, l->sha, ms_expr, lit(l->bver), lit(l->rver),
            dirty ? "true" : "false");
    if (upsert)
        buf_fmt(
            b,
            " ON CONFLICT (bundle, version) DO UPDATE SET name = EXCLUDED.name, "
            "sha256 = EXCLUDED.sha256, applied_at = now(), execution_ms = EXCLUDED.execution_ms, "
            "bundle_version = EXCLUDED.bundle_version, runner_version = "
            "EXCLUDED.runner_version, dirty = EXCLUDED.dirty");
}

static void add_where(struct buf *b, const struct lits *l, int64_t version)
{
    buf_fmt(b, " WHERE bundle = %s AND version = %" PRId64, l->bundle, version);
}

/* golang-migrate's table holds one row: the version and its dirty flag. */
static void add_legacy(struct buf *b, const struct cmig_step *s, int dirty)
{
    if (!s->keep_legacy)
        return;
    buf_str(b, ";\nDELETE FROM schema_migrations");
    if (s->legacy_version >= 0)
        buf_fmt(b, ";\nINSERT INTO schema_migrations (version, dirty) VALUES (%" PRId64 ", %s)",
                s->legacy_version, dirty ? "true" : "false");
}

/* 1-based character position pos in text -> byte offset. */
static size_t char_to_byte(const char *text, size_t len, long pos, int bytes)
{
    if (pos < 1)
        return 0;
    if (bytes)
        return (size_t)(pos - 1) < len ? (size_t)(pos - 1) : len;
    long seen = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80 && ++seen == pos)
            return i;
    }
    return len;
}

/* Whether a statement starts exactly at byte want of a request. */
struct find_start {
    size_t want;
    int found;
};

static int find_start_cb(void *ctx, const struct cmig_sql_stmt *st)
{
    struct find_start *f = ctx;
    if (st->offset == f->want)
        f->found = 1;
    return st->offset >= f->want;
}

static int touches_history(const PGresult *bad, const struct cmig_step *s)
{
    const char *t = PQresultErrorField(bad, PG_DIAG_TABLE_NAME);
    if (!t)
        return 0;
    return strcmp(t, "cmig_history") == 0 ||
           (s->keep_legacy && strcmp(t, "schema_migrations") == 0);
}

/* What one request carried: text[base..base + chunk->len) is the chunk of
 * the migration (none when chunk is NULL); anything at or past hist_off is
 * what this driver appended. */
struct sent {
    const char *text;
    size_t len;
    size_t base;
    size_t hist_off;
    const struct cmig_sql_chunk *chunk;
};

/* A failed migration: the server's words, its SQLSTATE, and the failure's
 * place in the migration file. */
static int migration_fail(struct cmig_conn *c, const PGresult *bad, const struct sent *x,
                          const struct cmig_step *s, struct cmig_step_result *r,
                          struct cmig_err *err)
{
    char d[CMIG_ERR_MSG_MAX];
    const char *where = "";
    describe(d, sizeof d, bad, c->pg);
    const char *p = bad ? PQresultErrorField(bad, PG_DIAG_STATEMENT_POSITION) : NULL;
    long pos = p ? strtol(p, NULL, 10) : 0;
    if (pos > 0) {
        size_t at = char_to_byte(x->text, x->len, pos, c->pos_in_bytes);
        if (at >= x->hist_off) {
            where = " (in the history statements run after the migration)";
        } else if (x->chunk && at >= x->base) {
            unsigned stmt;
            cmig_sql_chunk_locate(x->chunk, at - x->base, &r->line, &r->col, &stmt);
            if (!r->statement)
                r->statement = stmt;
        }
    } else if (bad && touches_history(bad, s)) {
        where = " (in the history statements run after the migration)";
    }
    /* Nothing is known about the step's outcome but that it committed
     * whole or not at all (transactional) or left its row dirty; the
     * operator reads which of the two from the message. */
    const char *outcome = s->tx == CMIG_TX_NONE ? "the migration is left dirty"
                                                : "its transaction committed whole or not at "
                                                  "all; the next run sees which";
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return cmig_err_set(err, CMIG_E_CONNECT,
                            "the connection to PostgreSQL was lost during the step (%s): %s",
                            outcome, d);
    if (!bad || !PQresultErrorField(bad, PG_DIAG_SQLSTATE)) {
        /* Every error of the server's has a SQLSTATE: this one is libpq's
         * own (out of memory building the request, or reading an answer
         * whose request the server may have run to its COMMIT). It is not
         * a failed migration, and no rollback can be promised. */
        return cmig_err_set(err, CMIG_E_DB, "%s, during the step (%s)", d, outcome);
    }
    cmig_err_set(err, CMIG_E_MIGRATION, "%s%s", d, where);
    cmig_err_native(err, sqlstate(bad));
    return CMIG_E_MIGRATION;
}

static int check_sql(const struct cmig_step *s, struct cmig_err *err)
{
    if (s->len && !s->sql && !s->read)
        return cmig_err_set(err, CMIG_E_INTERNAL, "step without its SQL");
    return 0;
}

/* The migration's text, whole or streamed, as statements. */
static int open_text(struct cmig_sqlstream *ss, const struct cmig_step *s, struct cmig_err *err)
{
    if (s->sql || !s->read)
        return cmig_sqlstream_init_whole(ss, s->sql, s->len, err);
    cmig_sqlstream_init_reader(ss, s->len, s->read, s->src);
    return 0;
}

static int interrupted_at(struct cmig_err *err, unsigned stmt, int dirty)
{
    return cmig_err_set(err, CMIG_E_INTERRUPTED, "interrupted before statement %u%s", stmt,
                        dirty ? "; the migration is left dirty" : "");
}

/* A migration up to this size travels with its history change as one
 * request; a larger one is sent in chunks of whole statements inside the
 * same transaction, so that neither this process nor libpq ever holds it
 * whole. */
#define ONE_REQUEST_MAX ((size_t)1 << 20)

/* "BEGIN; <sql> ; <history>; COMMIT" as one request. The SQL is checked to
 * end outside any quote, comment or block before anything is appended. */
static int apply_tx_one(struct cmig_conn *c, const struct cmig_step *s, const struct lits *l,
                        struct cmig_step_result *r, struct cmig_err *err)
{
    struct buf b = {0};
    PGresult *bad = NULL;
    int rc = 0;
    if (s->len && memchr(s->sql, '\0', s->len))
        return cmig_err_set(err, CMIG_E_MIGRATION, "the migration contains a NUL byte");
    if (!s->in_outer_tx)
        buf_str(&b, "BEGIN;\n");
    size_t base = b.len;
    if (s->len)
        buf_add(&b, s->sql, s->len);
    /* The newline ends a trailing line comment; the ';' a last statement
     * without one (an empty statement is harmless). */
    buf_str(&b, "\n;\n");
    size_t hist_off = b.len;
    if (s->kind == CMIG_STEP_UP) {
        add_insert(&b, l, s->version, 0, SERVER_MS_EXPR, 0);
    } else {
        buf_str(&b, "DELETE FROM cmig_history");
        add_where(&b, l, s->version);
    }
    add_legacy(&b, s, 0);
    if (!s->in_outer_tx)
        buf_str(&b, ";\nCOMMIT");
    if (b.failed) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    struct find_start f = {.want = hist_off};
    cmig_sql_split(b.p, b.len, find_start_cb, &f);
    if (!f.found) {
        rc = cmig_err_set(err, CMIG_E_MIGRATION,
                          "the migration ends inside an unterminated string, quoted identifier, "
                          "comment, parenthesis or statement block; refusing to run it");
        goto out;
    }
    struct cmig_sql_chunk whole = {
        .text = s->sql ? s->sql : "", .len = s->len, .line = 1, .col = 1, .first = 1};
    struct sent x = {b.p, b.len, base, hist_off, &whole};
    if (run_script(c, b.p, &bad)) {
        rc = migration_fail(c, bad, &x, s, r, err);
        if (!s->in_outer_tx)
            rollback_if_open(c);
    }
out:
    PQclear(bad);
    buf_free(&b);
    return rc;
}

/* A large migration: BEGIN, then chunks of whole statements, then the
 * history change and COMMIT; one transaction, as for a small one. */
static int apply_tx_chunked(struct cmig_conn *c, const struct cmig_step *s, const struct lits *l,
                            struct cmig_step_result *r, int64_t t0, struct cmig_err *err)
{
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct buf b = {0};
    PGresult *bad = NULL;
    int rc = open_text(&ss, s, err);
    if (rc)
        goto out;
    if (!s->in_outer_tx &&
        (rc = exec_cmd(c, "BEGIN", "cannot begin the migration's transaction", err)))
        goto out;
    for (;;) {
        if ((rc = cmig_sqlstream_next(&ss, CMIG_SQLSTREAM_WINDOW, &ch, err)))
            goto out;
        if (!ch.n)
            break;
        if (interrupted(c)) {
            rc = interrupted_at(err, ch.first, 0);
            goto out;
        }
        b.len = 0;
        buf_add(&b, ch.text, ch.len);
        if (b.failed) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        if (run_script(c, b.p, &bad)) {
            struct sent x = {b.p, b.len, 0, SIZE_MAX, &ch};
            rc = migration_fail(c, bad, &x, s, r, err);
            goto out;
        }
    }
    b.len = 0;
    if (s->kind == CMIG_STEP_UP) {
        char ms[32];
        snprintf(ms, sizeof ms, "%" PRId64, cmig_drv_now_ms() - t0);
        add_insert(&b, l, s->version, 0, ms, 0);
    } else {
        buf_str(&b, "DELETE FROM cmig_history");
        add_where(&b, l, s->version);
    }
    add_legacy(&b, s, 0);
    if (!s->in_outer_tx)
        buf_str(&b, ";\nCOMMIT");
    if (b.failed) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    if (run_script(c, b.p, &bad)) {
        struct sent x = {b.p, b.len, 0, 0, NULL};
        rc = migration_fail(c, bad, &x, s, r, err);
    }
out:
    if (rc && !s->in_outer_tx)
        rollback_if_open(c);
    PQclear(bad);
    buf_free(&b);
    cmig_sqlstream_free(&ss);
    return rc;
}

static int apply_tx(struct cmig_conn *c, const struct cmig_step *s, const struct lits *l,
                    struct cmig_step_result *r, int64_t t0, struct cmig_err *err)
{
    int rc = check_sql(s, err);
    if (rc)
        return rc;
    if (s->sql && s->len <= ONE_REQUEST_MAX)
        return apply_tx_one(c, s, l, r, err);
    return apply_tx_chunked(c, s, l, r, t0, err);
}

/* Runs first, which must change at least one row (else: CMIG_E_CONFLICT
 * "none"), then rest, in one transaction (the caller's when outer). */
static int run_checked(struct cmig_conn *c, const char *first, const char *rest, int outer,
                       const char *what, const char *none, struct cmig_err *err)
{
    PGresult *res = NULL;
    int rc = 0;
    if (!outer && (rc = exec_cmd(c, "BEGIN", what, err)))
        return rc;
    res = PQexec(c->pg, first);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
        goto out;
    }
    if (strcmp(PQcmdTuples(res), "0") == 0) {
        rc = cmig_err_set(err, CMIG_E_CONFLICT, "%s", none);
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (rest && *rest) {
        if (run_script(c, rest, &res)) {
            rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
            goto out;
        }
    }
    if (!outer && (rc = exec_cmd(c, "COMMIT", what, err)))
        goto out;
out:
    PQclear(res);
    if (rc && !outer)
        rollback_if_open(c);
    return rc;
}

/* tx == NONE: mark dirty (committed), run each statement on its own, then
 * mark clean (UP) or delete the row (DOWN). A failure leaves the row dirty. */
static int apply_none(struct cmig_conn *c, const struct cmig_step *s, const struct lits *l,
                      struct cmig_step_result *r, int64_t t0, struct cmig_err *err)
{
    struct buf b = {0}, one = {0};
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    PGresult *bad = NULL;
    int rc;
    char what[160];
    memset(&ss, 0, sizeof ss);
    if ((rc = check_sql(s, err)))
        return rc;
    if (s->in_outer_tx)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "a migration that runs outside a transaction cannot be part of a "
                            "single transaction");
    /* A whole text is checked (NUL bytes) before anything changes. */
    if ((rc = open_text(&ss, s, err)))
        goto out;
    snprintf(what, sizeof what, "cannot mark migration %" PRId64 " as started", s->version);
    if (s->kind == CMIG_STEP_UP) {
        add_insert(&b, l, s->version, 1, "0", 1);
        add_legacy(&b, s, 1);
        if (b.failed) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        /* Several statements in one simple query form one transaction. */
        if (run_script(c, b.p, &bad)) {
            rc = db_fail(err, CMIG_E_DB, bad, c->pg, what);
            goto out;
        }
    } else {
        struct buf rest = {0};
        buf_str(&b, "UPDATE cmig_history SET dirty = true");
        add_where(&b, l, s->version);
        add_legacy(&rest, s, 1);
        if (b.failed || rest.failed) {
            buf_free(&rest);
            rc = cmig_err_nomem(err);
            goto out;
        }
        char none[160];
        snprintf(none, sizeof none, "migration %" PRId64 " is not recorded as applied", s->version);
        rc = run_checked(c, b.p, rest.p ? rest.p + 2 : NULL, 0, what, none, err);
        buf_free(&rest);
        if (rc)
            goto out;
    }

    for (;;) {
        if ((rc = cmig_sqlstream_next(&ss, 0, &ch, err))) {
            if (rc != CMIG_E_NOMEM)
                cmig_err_prefix(err, "after statement %u (the migration is left dirty)", ss.stmts);
            goto out;
        }
        if (!ch.n)
            break;
        r->statement = ch.first;
        if (interrupted(c)) {
            r->line = ch.line;
            r->col = ch.col;
            rc = interrupted_at(err, ch.first, 1);
            goto out;
        }
        one.len = 0;
        buf_add(&one, ch.text, ch.len);
        if (one.failed) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        if (run_script(c, one.p, &bad)) {
            struct sent x = {one.p, one.len, 0, SIZE_MAX, &ch};
            rc = migration_fail(c, bad, &x, s, r, err);
            if (!r->line) {
                r->line = ch.line;
                r->col = ch.col;
            }
            rollback_if_open(c);
            goto out;
        }
    }
    r->statement = 0;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        rollback_if_open(c);
        rc = cmig_err_set(err, CMIG_E_MIGRATION,
                          "the migration left a transaction block open; it was rolled back");
        goto out;
    }

    b.len = 0;
    if (s->kind == CMIG_STEP_UP) {
        buf_fmt(&b, "UPDATE cmig_history SET dirty = false, execution_ms = %" PRId64,
                cmig_drv_now_ms() - t0);
    } else {
        buf_str(&b, "DELETE FROM cmig_history");
    }
    add_where(&b, l, s->version);
    add_legacy(&b, s, 0);
    if (b.failed) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    PQclear(bad);
    bad = NULL;
    if (run_script(c, b.p, &bad)) {
        snprintf(what, sizeof what,
                 "migration %" PRId64 " ran, but recording it failed (it is left dirty)",
                 s->version);
        rc = db_fail(err, CMIG_E_DB, bad, c->pg, what);
    }
out:
    PQclear(bad);
    cmig_sqlstream_free(&ss);
    buf_free(&one);
    buf_free(&b);
    return rc;
}

/* BASELINE, FORCE_CLEAN, FORCE_REMOVE: history only, no migration SQL. */
static int apply_record(struct cmig_conn *c, const struct cmig_step *s, const struct lits *l,
                        struct cmig_err *err)
{
    struct buf b = {0}, rest = {0};
    PGresult *bad = NULL;
    char what[160], none[160];
    int rc = 0;
    snprintf(none, sizeof none, "migration %" PRId64 " has no history row", s->version);
    switch (s->kind) {
    case CMIG_STEP_BASELINE:
        snprintf(what, sizeof what, "cannot record migration %" PRId64 " as applied", s->version);
        add_insert(&b, l, s->version, 0, "0", 0);
        add_legacy(&b, s, 0);
        if (b.failed) {
            rc = cmig_err_nomem(err);
            break;
        }
        if (run_script(c, b.p, &bad))
            rc = db_fail(err, CMIG_E_DB, bad, c->pg, what);
        break;
    case CMIG_STEP_FORCE_CLEAN:
    case CMIG_STEP_FORCE_REMOVE:
        snprintf(what, sizeof what, "cannot force migration %" PRId64, s->version);
        if (s->kind == CMIG_STEP_FORCE_CLEAN)
            buf_str(&b, "UPDATE cmig_history SET dirty = false");
        else
            buf_str(&b, "DELETE FROM cmig_history");
        add_where(&b, l, s->version);
        add_legacy(&rest, s, 0);
        if (b.failed || rest.failed) {
            rc = cmig_err_nomem(err);
            break;
        }
        rc = run_checked(c, b.p, rest.p ? rest.p + 2 : NULL, s->in_outer_tx, what, none, err);
        break;
    default:
        rc = cmig_err_set(err, CMIG_E_INTERNAL, "unknown step kind %d", (int)s->kind);
        break;
    }
    PQclear(bad);
    buf_free(&b);
    buf_free(&rest);
    return rc;
}

static int pg_apply(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                    struct cmig_err *err)
{
    struct cmig_step_result scratch;
    struct lits l;
    int64_t t0 = cmig_drv_now_ms();
    int rc;
    if (!r)
        r = &scratch;
    memset(r, 0, sizeof *r);
    if ((rc = lits_make(c, s, &l, err)))
        goto out;
    switch (s->kind) {
    case CMIG_STEP_UP:
    case CMIG_STEP_DOWN:
        if (s->tx == CMIG_TX_NONE)
            rc = apply_none(c, s, &l, r, t0, err);
        else
            rc = apply_tx(c, s, &l, r, t0, err);
        break;
    default:
        rc = apply_record(c, s, &l, err);
        break;
    }
out:
    lits_free(&l);
    r->execution_ms = cmig_drv_now_ms() - t0;
    return rc;
}

/* ---- single transaction, bundle record, cancel ------------------------ */

static int pg_begin(struct cmig_conn *c, struct cmig_err *err)
{
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return cmig_err_set(err, CMIG_E_INTERNAL, "a transaction is already open");
    return exec_cmd(c, "BEGIN", "cannot begin the transaction", err);
}

static int pg_commit(struct cmig_conn *c, struct cmig_err *err)
{
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        rollback_if_open(c);
        return cmig_err_set(err, CMIG_E_DB, "the transaction failed earlier and was rolled back");
    }
    PGresult *res = PQexec(c->pg, "COMMIT");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_fail(err, CMIG_E_DB, res, c->pg, "cannot commit the transaction");
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        /* COMMIT of a failed transaction "succeeds" as ROLLBACK. */
        rc = cmig_err_set(err, CMIG_E_DB, "the transaction was rolled back instead of committed");
    PQclear(res);
    return rc;
}

static int pg_rollback(struct cmig_conn *c, struct cmig_err *err)
{
    if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        return 0;
    return exec_cmd(c, "ROLLBACK", "cannot roll back the transaction", err);
}

static const char Q_RECORD_BUNDLE[] =
    "INSERT INTO cmig_bundles (bundle, version, manifest_sha256) VALUES ($1, $2, $3) "
    "ON CONFLICT (bundle) DO UPDATE SET version = EXCLUDED.version, "
    "manifest_sha256 = EXCLUDED.manifest_sha256, updated_at = now()";

static int pg_record_bundle(struct cmig_conn *c, const char *bundle, const char *version,
                            const uint8_t manifest_sha256[32], struct cmig_err *err)
{
    char hex[65], b[128], what[256];
    hex_encode(hex, manifest_sha256);
    const char *params[3] = {bundle, version, hex};
    snprintf(what, sizeof what, "cannot record the version of bundle '%s'",
             show(b, sizeof b, bundle));
    PGresult *res = PQexecParams(c->pg, Q_RECORD_BUNDLE, 3, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_fail(err, CMIG_E_DB, res, c->pg, what);
    PQclear(res);
    return rc;
}

/* Called from a signal handler: PQcancel is async-signal-safe. */
static void pg_cancel(struct cmig_conn *c)
{
    char errbuf[256];
    if (c && c->cancel)
        (void)PQcancel(c->cancel, errbuf, (int)sizeof errbuf);
}

static const char *const pg_schemes[] = {"postgres://", "postgresql://", NULL};

EXPORT const struct cmig_driver cmig_driver_postgres = {
    .abi = CMIG_DRIVER_ABI,
    .name = "postgres",
    .schemes = pg_schemes,
    .caps = CMIG_CAP_TRANSACTIONAL_DDL | CMIG_CAP_SINGLE_TRANSACTION,
    .open = pg_open,
    .close = pg_close,
    .read_history = pg_read_history,
    .quick_state = pg_quick_state,
    .lock = pg_lock,
    .unlock = pg_unlock,
    .ensure_schema = pg_ensure_schema,
    .apply = pg_apply,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .record_bundle = pg_record_bundle,
    .cancel = pg_cancel,
};
