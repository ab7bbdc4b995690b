/*
 * drv_mongo.c - the MongoDB driver of cmig-run, built as a shared object
 * (drivers/mongodb.so) that links libmongoc and nothing of the runner.
 *
 * A migration is a JSON array of database commands (golang-migrate's
 * MongoDB format), run one by one with runCommand against the database the
 * URL names. Commands are not transactional, so every migration is
 * recorded dirty before its first command and clean after its last.
 *
 * Invariants it guards:
 * - a migration runs only when the whole file parsed (the same parser as
 *   cmig-bundle's), so a syntax error never leaves half a migration run;
 * - a command counts as failed when the server says ok: 0, and also when
 *   it says ok: 1 with writeErrors or a writeConcernError;
 * - exactly one runner per bundle holds the lock document, whose _id is
 *   derived from the bundle name, so the server's own _id uniqueness (which
 *   every MongoDB-wire server enforces) decides between racing inserts;
 * - a lease is only taken over after it has expired: by the server's clock
 *   when the server reports one (hello's localTime), otherwise after the
 *   waiter itself has seen the holder's heartbeat token unchanged for a
 *   whole lease on its own monotonic clock. No wall clock of a runner is
 *   ever compared with another's, and no TTL index is involved;
 * - the holder stops before its next command or history write once its
 *   lease may have lapsed (a renewal thread keeps it alive meanwhile);
 * - no message carries a credential: libmongoc's URI parse errors (which
 *   may quote the whole URL) are never echoed, and its other messages are
 *   scrubbed of the password and other secrets from the URL.
 *
 * History documents and the per-bundle record have _ids derived from their
 * keys as well (bundle; bundle and version), for the same reason.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>
#include <sodium.h>

#include "cmig/jsoncheck.h"
#include "driver.h"
#include "drv_util.h"

#define EXPORT __attribute__((visibility("default")))

#define C_HISTORY "cmig_history"
#define C_BUNDLES "cmig_bundles"
#define C_LOCKS "cmig_locks"
#define C_LEGACY "schema_migrations" /* golang-migrate's collection */

#define DEFAULT_LEASE_MS 30000
#define MIN_LEASE_MS 200
#define MAX_LEASE_MS 3600000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define MIN_CONNECT_TIMEOUT_MS 2000
#define CONNECT_BACKOFF_FIRST_MS 100
#define CONNECT_BACKOFF_MAX_MS 2000
#define LOCK_BACKOFF_FIRST_MS 25
#define LOCK_BACKOFF_MAX_MS 500
#define POLL_SLICE_MS 50
#define HISTORY_ROWS_MAX 1000000
#define SECRETS_MAX 8
#define TOKEN_HEX 32

/* What the renewal thread shares with the main thread (under mu). */
struct lease {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int lost;         /* the lock document is no longer ours */
    int64_t deadline; /* monotonic ms until which the lease is surely ours */
    char why[256];    /* why it was lost */
};

struct cmig_conn {
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    char *db;
    char *secret[SECRETS_MAX]; /* texts never to print: password, key passwords */
    void (*log)(void *ctx, int level, const char *event, const char *msg);
    void *log_ctx;
    volatile int *interrupted;
    pthread_t main_thread;
    int parsing_uri;        /* libmongoc's messages are dropped meanwhile */
    char unknown_opts[256]; /* URI options libmongoc ignored, for a warning */
    int64_t statement_timeout_ms;
    int server_clock; /* hello reports localTime: -1 not yet known */
    int legacy_seen;  /* golang-migrate's collection has a document */
    int tx_all;       /* URL x-transaction-mode=true: every migration in a transaction */
    mongoc_client_session_t *session; /* the open transaction of a migration, or NULL */

    /* the migration lock */
    char *lock_bundle;
    bson_oid_t lock_id;
    char owner[TOKEN_HEX + 1];
    char host[128];
    int64_t lease_ms;
    struct lease lease;
    int lease_init;
    pthread_t renewer;
    int renewing;
};

/* ---- small utilities ------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int interrupted(const struct cmig_conn *c)
{
    return c->interrupted && *c->interrupted;
}

static int nap(const struct cmig_conn *c, int64_t ms)
{
    return cmig_drv_nap(c->interrupted, ms);
}

/* Copies s into out (cap > 0) with whitespace runs folded into one space,
 * control characters shown as '?', and a cut marked with "...". */
static const char *show(char *out, size_t cap, const char *s)
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
    if (*s && cap > 4)
        memcpy(out + cap - 4, "...", 4);
    return out;
}

/* Replaces every occurrence of each secret in msg (NUL-terminated, cap
 * bytes) with "***". */
static void redact(const struct cmig_conn *c, char *msg, size_t cap)
{
    for (size_t i = 0; i < SECRETS_MAX; i++) {
        const char *secret = c->secret[i];
        if (!secret || !*secret || cap == 0)
            continue;
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
        snprintf(msg, cap, "%s", out);
    }
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

static void hex_encode(char out[65], const uint8_t in[32])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[64] = '\0';
}

static int hex_decode(uint8_t out[32], const char *s, size_t len)
{
    if (len != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* A fresh random token: 32 lower-case hex digits. */
static void new_token(char out[TOKEN_HEX + 1])
{
    uint8_t r[TOKEN_HEX / 2];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, TOKEN_HEX + 1, r, sizeof r);
}

/* The _id of a cmig document: the first 12 bytes of BLAKE2b over a
 * purpose-tagged key. Every MongoDB-wire server enforces the uniqueness of
 * ObjectId _ids (not all accept other _id types, or enforce secondary
 * unique indexes), so this is what makes a duplicate impossible. */
static void derive_id(bson_oid_t *oid, const char *purpose, const char *bundle, int64_t version)
{
    crypto_generichash_state st;
    uint8_t h[16];
    char v[24];
    int n = snprintf(v, sizeof v, "%" PRId64, version);
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)purpose, strlen(purpose) + 1);
    crypto_generichash_update(&st, (const uint8_t *)bundle, strlen(bundle) + 1);
    crypto_generichash_update(&st, (const uint8_t *)v, (size_t)n);
    crypto_generichash_final(&st, h, sizeof h);
    bson_oid_init_from_data(oid, h);
}

static void append_i64(bson_t *b, const char *key, int64_t v)
{
    BSON_APPEND_INT64(b, key, v);
}

/* A string field of doc, or NULL (len receives its length). */
static const char *get_str(const bson_t *doc, const char *key, uint32_t *len)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, len);
    return NULL;
}

/* A whole number held as int32, int64 or an integral double. */
static int iter_int(const bson_iter_t *it, int64_t *v)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
        *v = bson_iter_int32(it);
        return 0;
    case BSON_TYPE_INT64:
        *v = bson_iter_int64(it);
        return 0;
    case BSON_TYPE_DOUBLE: {
        double d = bson_iter_double(it);
        if (d >= -9.0e15 && d <= 9.0e15 && d == (double)(int64_t)d) {
            *v = (int64_t)d;
            return 0;
        }
        return -1;
    }
    default:
        return -1;
    }
}

static int get_int(const bson_t *doc, const char *key, int64_t *v)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return -1;
    return iter_int(&it, v);
}

/* ---- running commands ------------------------------------------------ */

/* What went wrong with one command, in the server's words. */
struct failure {
    int network;   /* no answer: the outcome is unknown */
    int32_t code;  /* the server's error code, 0 when none */
    char name[64]; /* its codeName */
    char msg[512]; /* its errmsg (or libmongoc's message) */
    int64_t item;  /* writeErrors: index of the failed item, else -1 */
    int64_t more;  /* writeErrors: how many more failed */
};

static void fail_from_doc(struct failure *f, const bson_t *doc)
{
    uint32_t len;
    const char *s;
    int64_t v;
    if (get_int(doc, "code", &v) == 0 && v >= INT32_MIN && v <= INT32_MAX)
        f->code = (int32_t)v;
    if ((s = get_str(doc, "codeName", &len)))
        show(f->name, sizeof f->name, s);
    if ((s = get_str(doc, "errmsg", &len)))
        show(f->msg, sizeof f->msg, s);
}

/* After a command returned: 0 when it truly succeeded, else -1 with f
 * describing the first failure. ok is libmongoc's verdict. */
static int check_reply(const struct cmig_conn *c, int ok, const bson_t *reply,
                       const bson_error_t *be, struct failure *f)
{
    bson_iter_t it, sub;
    memset(f, 0, sizeof *f);
    f->item = -1;
    if (!ok) {
        fail_from_doc(f, reply);
        if (!f->code && be->domain == MONGOC_ERROR_SERVER)
            f->code = (int32_t)be->code;
        if (!f->msg[0])
            show(f->msg, sizeof f->msg, be->message);
        /* Anything that is not the server's own answer leaves the outcome
         * of the command unknown. */
        f->network = be->domain == MONGOC_ERROR_STREAM ||
                     be->domain == MONGOC_ERROR_SERVER_SELECTION ||
                     be->domain == MONGOC_ERROR_CLIENT;
        redact(c, f->msg, sizeof f->msg);
        return -1;
    }
    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &sub)) {
        int64_t n = 0;
        while (bson_iter_next(&sub)) {
            if (n++ > 0 || !BSON_ITER_HOLDS_DOCUMENT(&sub))
                continue;
            uint32_t dlen;
            const uint8_t *d;
            bson_t we;
            bson_iter_document(&sub, &dlen, &d);
            if (bson_init_static(&we, d, dlen)) {
                fail_from_doc(f, &we);
                int64_t idx;
                if (get_int(&we, "index", &idx) == 0)
                    f->item = idx;
            }
        }
        if (n > 0) {
            f->more = n - 1;
            if (!f->msg[0])
                snprintf(f->msg, sizeof f->msg, "write error");
            return -1;
        }
    }
    if (bson_iter_init_find(&it, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t dlen;
        const uint8_t *d;
        bson_t wce;
        bson_iter_document(&it, &dlen, &d);
        if (bson_init_static(&wce, d, dlen))
            fail_from_doc(f, &wce);
        char m[sizeof f->msg];
        snprintf(m, sizeof m, "%s", f->msg[0] ? f->msg : "(no message)");
        snprintf(f->msg, sizeof f->msg, "write concern error: %.480s", m);
        return -1;
    }
    return 0;
}

/* "errmsg (code 11000, DuplicateKey)" */
static void describe(char *out, size_t cap, const struct failure *f)
{
    char item[64] = "", more[48] = "", code[96] = "";
    if (f->item >= 0)
        snprintf(item, sizeof item, "write error on item %" PRId64 ": ", f->item);
    if (f->more > 0)
        snprintf(more, sizeof more, " (and %" PRId64 " more write errors)", f->more);
    if (f->code && f->name[0])
        snprintf(code, sizeof code, " (code %" PRId32 ", %s)", f->code, f->name);
    else if (f->code)
        snprintf(code, sizeof code, " (code %" PRId32 ")", f->code);
    snprintf(out, cap, "%s%s%s%s", item, f->msg, code, more);
}

static void set_native(struct cmig_err *err, const struct failure *f)
{
    char n[16];
    if (!err || err->native[0])
        return;
    if (f->code)
        snprintf(n, sizeof n, "mongo:%" PRId32, f->code);
    else
        snprintf(n, sizeof n, "mongo:network");
    cmig_err_native(err, n);
}

/* Records a failed call of this driver's own: "<what>: <description>". */
static int db_fail(struct cmig_err *err, const struct failure *f, const char *what)
{
    char d[CMIG_ERR_MSG_MAX];
    describe(d, sizeof d, f);
    int rc = cmig_err_set(err, CMIG_E_DB, "%s: %s", what, d);
    set_native(err, f);
    return rc;
}

/* Adds the open transaction's session to a command's options, when there
 * is one and the command goes through the main client (the lease renewal
 * thread has a client of its own and stays outside any transaction). */
static int in_session(const struct cmig_conn *c, mongoc_client_t *cl, bson_t *opts,
                      bson_error_t *be)
{
    memset(be, 0, sizeof *be);
    if (!c->session || cl != c->client)
        return 1;
    return mongoc_client_session_append(c->session, opts, be);
}

/* Runs one of this driver's own writes: the URL's write concern applies
 * (inside a transaction, the transaction's). */
static int write_cmd(struct cmig_conn *c, mongoc_client_t *cl, const bson_t *cmd, bson_t *reply,
                     struct failure *f)
{
    bson_error_t be;
    bson_t scratch;
    bson_t opts = BSON_INITIALIZER;
    if (!reply)
        reply = &scratch;
    int ok = in_session(c, cl, &opts, &be);
    if (ok)
        ok = mongoc_client_write_command_with_opts(cl, c->db, cmd, &opts, reply, &be);
    else
        bson_init(reply);
    int rc = check_reply(c, ok, reply, &be, f);
    if (reply == &scratch)
        bson_destroy(&scratch);
    bson_destroy(&opts);
    return rc;
}

/* "n" of a write reply: how many documents matched or were deleted. */
static int64_t reply_n(const bson_t *reply)
{
    int64_t n = 0;
    if (get_int(reply, "n", &n))
        return 0;
    return n;
}

/* ---- libmongoc's own messages ------------------------------------------ */

/* libmongoc logs to stderr by default, and some of its messages quote URL
 * option values. Here they become debug events, scrubbed of the secrets;
 * while the URL is being parsed (the secrets are not known yet) only the
 * names of options it ignores are kept, for one warning afterwards. */
static void mongoc_log_to_core(mongoc_log_level_t level, const char *domain, const char *message,
                               void *user_data)
{
    struct cmig_conn *c = user_data;
    (void)domain;
    if (!c || !message || !pthread_equal(pthread_self(), c->main_thread))
        return;
    if (c->parsing_uri) {
        static const char prefix[] = "Unsupported URI option \"";
        const char *p = strstr(message, prefix);
        if (!p)
            return;
        p += sizeof prefix - 1;
        size_t n = 0;
        while (n < 64 && (isalnum((unsigned char)p[n]) || p[n] == '_'))
            n++;
        size_t used = strlen(c->unknown_opts);
        if (p[n] == '"' && n > 0 && used + n + 3 < sizeof c->unknown_opts)
            snprintf(c->unknown_opts + used, sizeof c->unknown_opts - used, "%s'%.*s'",
                     used ? ", " : "", (int)n, p);
        return;
    }
    if (level > MONGOC_LOG_LEVEL_INFO || !c->log)
        return;
    char m[CMIG_ERR_MSG_MAX];
    show(m, sizeof m, message);
    redact(c, m, sizeof m);
    c->log(c->log_ctx, 0, "db.driver", m);
}

/* ---- open ------------------------------------------------------------ */

/* Says what is wrong with a URL without quoting it: libmongoc's parse
 * errors may hold the whole URL, password included. Only an option name
 * made of plain word characters is ever shown. */
static void uri_problem(char *out, size_t cap, const char *msg)
{
    static const struct {
        const char *prefix, *what;
    } known[] = {
        {"Invalid URI Schema", "the scheme must be mongodb:// or mongodb+srv://"},
        {"Invalid host string", "an invalid host"},
        {"Invalid database name", "an invalid database name"},
        {"Invalid UTF-8", "invalid UTF-8"},
        {"Invalid service name", "an invalid SRV service name"},
        {"Incorrect URI escapes in username", "an invalid percent-encoding in the user name"},
        {"Invalid username", "an invalid user name or password"},
    };
    static const char *const option_msgs[] = {"URI option \"", "Value for URI option \"",
                                              "Unsupported value for \"",
                                              "Unsupported URI option \""};
    snprintf(out, cap, "it could not be parsed");
    if (!msg)
        return;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strstr(msg, known[i].prefix)) {
            snprintf(out, cap, "%s", known[i].what);
            return;
        }
    for (size_t i = 0; i < sizeof option_msgs / sizeof option_msgs[0]; i++) {
        const char *p = strstr(msg, option_msgs[i]);
        if (!p)
            continue;
        p += strlen(option_msgs[i]);
        size_t n = 0;
        while (n < 64 && (isalnum((unsigned char)p[n]) || p[n] == '_'))
            n++;
        if (p[n] == '"' && n > 0)
            snprintf(out, cap, "a bad value or form of option '%.*s'", (int)n, p);
        else
            snprintf(out, cap, "a malformed option");
        return;
    }
}

static int add_secret(struct cmig_conn *c, const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; i < SECRETS_MAX; i++)
        if (!c->secret[i]) {
            c->secret[i] = strdup(s);
            return c->secret[i] ? 0 : -1;
        }
    return 0;
}

static int key_is_secret(const char *k)
{
    char low[64];
    size_t i;
    for (i = 0; k[i] && i + 1 < sizeof low; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[i] = '\0';
    return strstr(low, "password") || strstr(low, "secret") || strstr(low, "token");
}

/* Every string value under a secret-looking key, down to depth 4 (the
 * recursion is bounded by that depth, whatever the document). */
// NOLINTNEXTLINE(misc-no-recursion)
static int collect_secrets(struct cmig_conn *c, const bson_t *doc, int depth)
{
    bson_iter_t it;
    if (!doc || depth > 4 || !bson_iter_init(&it, doc))
        return 0;
    while (bson_iter_next(&it)) {
        if (BSON_ITER_HOLDS_UTF8(&it) && key_is_secret(bson_iter_key(&it))) {
            if (add_secret(c, bson_iter_utf8(&it, NULL)))
                return -1;
        } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *d;
            bson_t sub;
            bson_iter_document(&it, &len, &d);
            if (bson_init_static(&sub, d, len) && collect_secrets(c, &sub, depth + 1))
                return -1;
        }
    }
    return 0;
}

/* Database names MongoDB accepts: no '/', '\', '.', ' ', '"', '$', NUL. */
static int db_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strchr("/\\. \"$*<>:|?", s[i]) || (unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

static void mg_close(struct cmig_conn *c);

static int set_default_int(mongoc_uri_t *uri, const char *key, int32_t v)
{
    if (mongoc_uri_has_option(uri, key))
        return 0;
    return mongoc_uri_set_option_as_int32(uri, key, v) ? 0 : -1;
}

/* "host:port[,host:port...]" of the URL, for messages. */
static void describe_target(char *out, size_t cap, const struct cmig_conn *c)
{
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(c->uri);
    size_t o = 0;
    out[0] = '\0';
    if (!h && mongoc_uri_get_srv_hostname(c->uri)) {
        char s[128];
        snprintf(out, cap, "%s (SRV)/%s", show(s, sizeof s, mongoc_uri_get_srv_hostname(c->uri)),
                 c->db);
        return;
    }
    for (int i = 0; h && i < 3 && o + 1 < cap; h = h->next, i++) {
        char s[300];
        int w =
            snprintf(out + o, cap - o, "%s%s", i ? "," : "", show(s, sizeof s, h->host_and_port));
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o < cap)
        snprintf(out + o, cap - o, "%s/%s", h ? ",..." : "", c->db);
}

/* Connect timeout for one attempt: the user's, else 10 s (no more than
 * --wait, no less than 2 s). */
static int32_t attempt_timeout(const struct cmig_conn_opts *o)
{
    int64_t t = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o->wait_ms > 0 && o->wait_ms < t)
        t = o->wait_ms < MIN_CONNECT_TIMEOUT_MS ? MIN_CONNECT_TIMEOUT_MS : o->wait_ms;
    return (int32_t)t;
}

/* strconv.ParseBool's words, which golang-migrate reads its options with:
 * 1 true, 0 false, -1 neither. */
static int parse_go_bool(const char *v, size_t n)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && memcmp(yes[i], v, n) == 0)
            return 1;
        if (strlen(no[i]) == n && memcmp(no[i], v, n) == 0)
            return 0;
    }
    return -1;
}

#define TX_MODE_OPTION "x-transaction-mode"

/* golang-migrate's MongoDB driver takes x-transaction-mode=true from the
 * URL (every migration in a transaction), so teams that switch keep their
 * URLs. libmongoc does not know the option and would only warn about it:
 * it is taken out of url (in place) here, and everything else goes to
 * libmongoc untouched. The query starts at the first '?' after the user
 * information, whose '@' a password cannot hold unencoded. */
static int take_tx_mode(char *url, int *tx_all, struct cmig_err *err)
{
    char *host = strrchr(url, '@');
    char *q = strchr(host ? host : url, '?');
    if (!q)
        return 0;
    char *p = q + 1;
    while (*p) {
        char *end = p + strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        if (klen != strlen(TX_MODE_OPTION) || strncasecmp(p, TX_MODE_OPTION, klen) != 0) {
            p = *end ? end + 1 : end;
            continue;
        }
        const char *val = p[klen] == '=' ? p + klen + 1 : p + klen;
        int b = parse_go_bool(val, (size_t)(end - val));
        if (b < 0)
            return cmig_err_set(err, CMIG_E_USAGE,
                                "the MongoDB URL option " TX_MODE_OPTION " must be true or false");
        *tx_all = b;
        if (!*end) {
            p[-1] = '\0'; /* it was the last: drop its '&' or the '?' */
            break;
        }
        memmove(p, end + 1, strlen(end + 1) + 1);
    }
    return 0;
}

static int parse_url(struct cmig_conn *c, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    bson_error_t be;
    memset(&be, 0, sizeof be);
    char *url = strdup(o->url ? o->url : "");
    if (!url)
        return cmig_err_nomem(err);
    int rc = take_tx_mode(url, &c->tx_all, err);
    if (!rc) {
        c->parsing_uri = 1;
        c->uri = mongoc_uri_new_with_error(url, &be);
        c->parsing_uri = 0;
    }
    sodium_memzero(url, strlen(url));
    free(url);
    if (rc)
        return rc;
    if (!c->uri) {
        char why[160];
        uri_problem(why, sizeof why, be.message);
        sodium_memzero(be.message, sizeof be.message);
        return cmig_err_set(err, CMIG_E_USAGE, "invalid MongoDB URL: %s", why);
    }
    if (add_secret(c, mongoc_uri_get_password(c->uri)) ||
        collect_secrets(c, mongoc_uri_get_credentials(c->uri), 0) ||
        collect_secrets(c, mongoc_uri_get_options(c->uri), 0))
        return cmig_err_nomem(err);
    if (c->unknown_opts[0])
        say(c, 2, "db.url_option", "libmongoc does not know the MongoDB URL option%s %s; ignored",
            strchr(c->unknown_opts, ',') ? "s" : "", c->unknown_opts);
    const char *db = mongoc_uri_get_database(c->uri);
    if (!db || !*db)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "the MongoDB URL names no database: put it after the host "
                            "(mongodb://HOST:PORT/DATABASE)");
    if (!db_name_ok(db)) {
        char s[80];
        return cmig_err_set(err, CMIG_E_USAGE, "invalid database name '%s' in the MongoDB URL",
                            show(s, sizeof s, db));
    }
    c->db = strdup(db);
    if (!c->db)
        return cmig_err_nomem(err);
    if (o->application_name && !mongoc_uri_get_appname(c->uri))
        mongoc_uri_set_appname(c->uri, o->application_name);
    int32_t t = attempt_timeout(o);
    /* With these unset, libmongoc would wait 30 s per attempt. The user's
     * own values are kept: they go to libmongoc untouched. */
    if (set_default_int(c->uri, MONGOC_URI_CONNECTTIMEOUTMS, t) ||
        set_default_int(c->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, t))
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot set the MongoDB connection timeouts");
    return 0;
}

/* One attempt: a new client (a single-threaded client that failed waits
 * out a cooldown before it tries the same server again) and a ping, which
 * also authenticates. */
static int connect_once(struct cmig_conn *c, char *why, size_t cap, struct cmig_err *err)
{
    bson_error_t be;
    bson_t reply;
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    memset(&be, 0, sizeof be);
    if (!ping)
        return cmig_err_nomem(err);
    mongoc_client_t *cl = mongoc_client_new_from_uri_with_error(c->uri, &be);
    if (!cl) {
        bson_destroy(ping);
        show(why, cap, be.message);
        redact(c, why, cap);
        return cmig_err_set(err, CMIG_E_USAGE, "cannot use the MongoDB URL: %s", why);
    }
    mongoc_client_set_error_api(cl, MONGOC_ERROR_API_VERSION_2);
    int ok = mongoc_client_command_simple(cl, "admin", ping, NULL, &reply, &be);
    bson_destroy(&reply);
    bson_destroy(ping);
    if (ok) {
        c->client = cl;
        return 0;
    }
    show(why, cap, be.message);
    redact(c, why, cap);
    mongoc_client_destroy(cl);
    return -1;
}

static int mg_open(struct cmig_conn **out, const struct cmig_conn_opts *o, struct cmig_err *err)
{
    struct cmig_conn *c;
    int rc = 0;
    *out = NULL;
    if (sodium_init() < 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "libsodium cannot be initialised");
    c = calloc(1, sizeof *c);
    if (!c)
        return cmig_err_nomem(err);
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->interrupted = o->interrupted;
    c->main_thread = pthread_self();
    c->statement_timeout_ms = o->statement_timeout_ms;
    c->server_clock = -1;
    /* MONGOC_DISABLE_SHM is set by plugins.c before this driver loads:
     * libmongoc initialises itself as it is loaded, so here is too late. */
    mongoc_init();
    mongoc_log_set_handler(mongoc_log_to_core, c);
    if ((rc = parse_url(c, o, err)))
        goto out;

    char where[256], why[CMIG_ERR_MSG_MAX / 2];
    describe_target(where, sizeof where, c);
    redact(c, where, sizeof where);
    int64_t start = cmig_drv_now_ms(), give_up = start + (o->wait_ms > 0 ? o->wait_ms : 0);
    int64_t backoff = CONNECT_BACKOFF_FIRST_MS;
    unsigned attempts = 0;
    for (;;) {
        attempts++;
        rc = connect_once(c, why, sizeof why, err);
        if (rc == 0)
            break;
        if (rc > 0)
            goto out;
        int64_t now = cmig_drv_now_ms();
        if (now >= give_up) {
            if (attempts > 1)
                rc = cmig_err_set(err, CMIG_E_CONNECT,
                                  "cannot connect to MongoDB at %s: %s (gave up after %u attempts "
                                  "in %" PRId64 " ms)",
                                  where, why, attempts, now - start);
            else
                rc = cmig_err_set(err, CMIG_E_CONNECT, "cannot connect to MongoDB at %s: %s", where,
                                  why);
            goto out;
        }
        int64_t pause = backoff < give_up - now ? backoff : give_up - now;
        say(c, 1, "db.waiting", "MongoDB at %s is not ready (%s); retrying in %" PRId64 " ms",
            where, why, pause);
        if (nap(c, pause)) {
            rc = cmig_err_set(err, CMIG_E_INTERRUPTED,
                              "interrupted while waiting for MongoDB at %s", where);
            goto out;
        }
        backoff = backoff * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS : backoff * 2;
    }
    *out = c;
    c = NULL;
out:
    mg_close(c);
    return rc;
}

/* ---- history --------------------------------------------------------- */

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

static int cmp_rows(const void *a, const void *b)
{
    const struct cmig_applied *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

static char *dup_opt_str(const bson_t *doc, const char *key, int *nomem)
{
    uint32_t len;
    const char *s = get_str(doc, key, &len);
    if (!s)
        return NULL;
    char *d = strndup(s, len);
    if (!d)
        *nomem = 1;
    return d;
}

static int take_row(struct cmig_history *h, const bson_t *doc, const char *bundle,
                    struct cmig_err *err)
{
    struct cmig_applied *a = &h->rows[h->n];
    char b[128];
    uint32_t len;
    int nomem = 0;
    memset(a, 0, sizeof *a);
    show(b, sizeof b, bundle);
    if (get_int(doc, "version", &a->version))
        return cmig_err_set(err, CMIG_E_DB,
                            C_HISTORY " of bundle '%s': a document without a whole-number version",
                            b);
    h->n++;
    const char *sha = get_str(doc, "sha256", &len);
    if (!sha || hex_decode(a->sha256, sha, len))
        return cmig_err_set(err, CMIG_E_DB,
                            C_HISTORY " of bundle '%s': version %" PRId64 " has a malformed sha256",
                            b, a->version);
    bson_iter_t it;
    a->dirty = bson_iter_init_find(&it, doc, "dirty") && bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, doc, "applied_at") && BSON_ITER_HOLDS_DATE_TIME(&it))
        a->applied_at = bson_iter_date_time(&it) / 1000;
    if (get_int(doc, "execution_ms", &a->execution_ms))
        a->execution_ms = 0;
    a->name = dup_opt_str(doc, "name", &nomem);
    if (!a->name && !nomem)
        a->name = strdup("");
    a->bundle_version = dup_opt_str(doc, "bundle_version", &nomem);
    a->runner_version = dup_opt_str(doc, "runner_version", &nomem);
    if (!a->name || nomem)
        return cmig_err_nomem(err);
    return 0;
}

static int read_rows(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                     struct cmig_err *err)
{
    mongoc_collection_t *coll = mongoc_client_get_collection(c->client, c->db, C_HISTORY);
    bson_t *filter = BCON_NEW("bundle", BCON_UTF8(bundle));
    /* One batch holds every row of any realistic history: one round trip. */
    bson_t *opts =
        BCON_NEW("sort", "{", "version", BCON_INT32(1), "}", "batchSize", BCON_INT32(100000));
    mongoc_cursor_t *cur = NULL;
    const bson_t *doc;
    size_t cap = 0;
    int rc = 0;
    if (!coll || !filter || !opts) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        if (h->n >= HISTORY_ROWS_MAX) {
            rc =
                cmig_err_set(err, CMIG_E_DB, C_HISTORY " holds more than %d documents for a bundle",
                             HISTORY_ROWS_MAX);
            goto out;
        }
        if (h->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct cmig_applied *r = reallocarray(h->rows, ncap, sizeof *r);
            if (!r) {
                rc = cmig_err_nomem(err);
                goto out;
            }
            h->rows = r;
            cap = ncap;
        }
        if ((rc = take_row(h, doc, bundle, err)))
            goto out;
    }
    bson_error_t be;
    const bson_t *edoc;
    if (mongoc_cursor_error_document(cur, &be, &edoc)) {
        struct failure f;
        check_reply(c, 0, edoc, &be, &f);
        rc = db_fail(err, &f, "cannot read the migration history (" C_HISTORY ")");
        goto out;
    }
    if (h->n > 1) {
        qsort(h->rows, h->n, sizeof *h->rows, cmp_rows);
        for (size_t i = 1; i < h->n; i++)
            if (h->rows[i].version == h->rows[i - 1].version) {
                char b[128];
                rc = cmig_err_set(err, CMIG_E_DB,
                                  C_HISTORY " holds version %" PRId64 " of bundle '%s' twice",
                                  h->rows[i].version, show(b, sizeof b, bundle));
                goto out;
            }
    }
out:
    if (cur)
        mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    if (coll)
        mongoc_collection_destroy(coll);
    return rc;
}

/* The first document of coll matching filter; *found = 0 when none. */
static int find_one(struct cmig_conn *c, mongoc_client_t *cl, const char *coll_name,
                    const bson_t *filter, bson_t *out, int *found, struct failure *f)
{
    mongoc_collection_t *coll = mongoc_client_get_collection(cl, c->db, coll_name);
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    int rc = 0;
    *found = 0;
    bson_init(out);
    if (mongoc_cursor_next(cur, &doc)) {
        bson_destroy(out);
        bson_copy_to(doc, out);
        *found = 1;
    }
    bson_error_t be;
    const bson_t *edoc;
    if (mongoc_cursor_error_document(cur, &be, &edoc)) {
        check_reply(c, 0, edoc, &be, f);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    return rc;
}

static int read_record(struct cmig_conn *c, const char *bundle, struct cmig_history *h,
                       int *legacy_flag, struct cmig_err *err)
{
    bson_oid_t id;
    bson_t doc;
    struct failure f;
    int found, rc = 0;
    char b[128];
    derive_id(&id, "cmig_bundles", bundle, 0);
    bson_t *filter = BCON_NEW("_id", BCON_OID(&id));
    if (find_one(c, c->client, C_BUNDLES, filter, &doc, &found, &f)) {
        rc = db_fail(err, &f, "cannot read the bundle record (" C_BUNDLES ")");
        goto out;
    }
    if (!found)
        goto out;
    uint32_t len;
    const char *v = get_str(&doc, "version", &len);
    const char *sha = get_str(&doc, "manifest_sha256", &len);
    if (!v || strlen(v) > 256 || !sha || hex_decode(h->record_manifest_sha256, sha, len)) {
        rc = cmig_err_set(err, CMIG_E_DB, C_BUNDLES ": the record of bundle '%s' is malformed",
                          show(b, sizeof b, bundle));
        goto out;
    }
    h->record_version = strdup(v);
    if (!h->record_version) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    h->has_record = 1;
    bson_iter_t it;
    *legacy_flag = bson_iter_init_find(&it, &doc, "golang_migrate") && bson_iter_as_bool(&it);
out:
    bson_destroy(&doc);
    bson_destroy(filter);
    return rc;
}

/* golang-migrate keeps one document {version, dirty} in schema_migrations. */
static int read_legacy(struct cmig_conn *c, struct cmig_history *h, struct cmig_err *err)
{
    bson_t filter = BSON_INITIALIZER, doc;
    struct failure f;
    int found, rc = 0;
    if (find_one(c, c->client, C_LEGACY, &filter, &doc, &found, &f)) {
        rc = db_fail(err, &f, "cannot read golang-migrate's " C_LEGACY);
        goto out;
    }
    if (found && get_int(&doc, "version", &h->legacy_version) == 0) {
        bson_iter_t it;
        h->legacy_present = 1;
        h->legacy_has_row = 1;
        h->legacy_dirty = bson_iter_init_find(&it, &doc, "dirty") && bson_iter_as_bool(&it);
    }
out:
    c->legacy_seen = h->legacy_present;
    bson_destroy(&doc);
    bson_destroy(&filter);
    return rc;
}

/* Rows, record, and golang-migrate's collection when it matters: two
 * round trips in the common case. golang-migrate's collection is read only
 * when adoption is possible (no cmig rows yet) or the record says it was
 * there, so a plain database pays nothing for it. */
static int read_all(struct cmig_conn *c, const char *bundle, struct cmig_history *out,
                    struct cmig_err *err)
{
    int legacy_flag = 0, rc;
    memset(out, 0, sizeof *out);
    if ((rc = read_rows(c, bundle, out, err)) ||
        (rc = read_record(c, bundle, out, &legacy_flag, err)))
        goto out;
    out->schema_present = out->n > 0 || out->has_record;
    if (out->n == 0 || legacy_flag)
        rc = read_legacy(c, out, err);
out:
    if (rc)
        history_clear(out);
    return rc;
}

static size_t count_dirty(const struct cmig_history *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->rows[i].dirty != 0;
    return n;
}

/* Drops the dirty rows of h, but those that were dirty in before too. */
static void drop_rows(struct cmig_history *h, const struct cmig_history *before)
{
    size_t o = 0;
    for (size_t i = 0; i < h->n; i++) {
        struct cmig_applied *a = &h->rows[i];
        int keep = !a->dirty;
        if (!keep && before) {
            /* dirty then and now, with no lock held in between */
            for (size_t j = 0; j < before->n && !keep; j++)
                keep = before->rows[j].version == a->version && before->rows[j].dirty;
        }
        if (!keep) {
            free(a->name);
            free(a->bundle_version);
            free(a->runner_version);
            continue;
        }
        h->rows[o++] = *a;
    }
    h->n = o;
}

/* Read without the lock, a dirty document may belong to a migration that
 * another runner is applying right now: every MongoDB migration is dirty
 * while it runs. Such documents are left out (the migration shows as
 * pending), so that the core takes the lock, waits for the holder within
 * --lock-timeout and reads again; under the lock every dirty document is
 * reported as it is. Told apart from a migration that failed or whose
 * runner died: while the bundle's lock document exists, a dirty document is
 * in progress (a runner that died keeps it until its lease is taken over);
 * when it does not, the history is read once more, and a document dirty in
 * both reads, with no holder in between, is reported dirty. */
static int mg_read_history(struct cmig_conn *c, const char *bundle, struct cmig_history *out,
                           struct cmig_err *err)
{
    struct cmig_history first;
    bson_oid_t id;
    bson_t doc;
    struct failure f;
    int found, rc;
    memset(out, 0, sizeof *out);
    if ((rc = read_all(c, bundle, &first, err)))
        return rc;
    if (c->lock_bundle || count_dirty(&first) == 0) {
        *out = first;
        return 0;
    }
    derive_id(&id, "cmig_locks", bundle, 0);
    bson_t *filter = BCON_NEW("_id", BCON_OID(&id));
    rc = find_one(c, c->client, C_LOCKS, filter, &doc, &found, &f);
    bson_destroy(filter);
    bson_destroy(&doc);
    if (rc) {
        history_clear(&first);
        return db_fail(err, &f, "cannot read the migration lock (" C_LOCKS ")");
    }
    if (found) {
        drop_rows(&first, NULL);
        *out = first;
        return 0;
    }
    rc = read_all(c, bundle, out, err);
    if (!rc)
        drop_rows(out, &first);
    history_clear(&first);
    return rc;
}

/* ---- the no-op fast path ----------------------------------------------- */

/* One aggregate (one round trip): the bundle's record, then, through
 * $unionWith (MongoDB 4.4+), the version and dirty flag of each of its
 * history documents. The core compares that with the bundle's signed claim
 * and stops there when this very bundle is applied. Anything unexpected
 * (an older server without $unionWith, a malformed document, any error)
 * just says "not known to be applied": the full path then reads the
 * history, applies every rule and reports real errors. */
static int mg_quick_state(struct cmig_conn *c, const char *bundle, struct cmig_quick_state *out,
                          struct cmig_err *err)
{
    bson_oid_t id;
    const bson_t *doc;
    int odd = 0;
    memset(out, 0, sizeof *out);
    out->last = -1;
    derive_id(&id, "cmig_bundles", bundle, 0);
    bson_t *pipeline = BCON_NEW(
        "pipeline", "[", "{", "$match", "{", "_id", BCON_OID(&id), "}", "}", "{", "$project", "{",
        "_id", BCON_INT32(0), "version", BCON_INT32(1), "manifest_sha256", BCON_INT32(1), "}", "}",
        "{", "$unionWith", "{", "coll", BCON_UTF8(C_HISTORY), "pipeline", "[", "{", "$match", "{",
        "bundle", BCON_UTF8(bundle), "}", "}", "{", "$project", "{", "_id", BCON_INT32(0),
        "version", BCON_INT32(1), "dirty", BCON_INT32(1), "}", "}", "]", "}", "}", "]");
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100000));
    mongoc_collection_t *coll = mongoc_client_get_collection(c->client, c->db, C_BUNDLES);
    if (!pipeline || !opts || !coll) {
        bson_destroy(pipeline);
        bson_destroy(opts);
        if (coll)
            mongoc_collection_destroy(coll);
        return cmig_err_nomem(err);
    }
    mongoc_cursor_t *cur =
        mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, opts, NULL);
    while (!odd && mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        int64_t v;
        if (bson_iter_init_find(&it, doc, "version") && BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t len, hlen;
            const char *ver = bson_iter_utf8(&it, &len);
            const char *sha = get_str(doc, "manifest_sha256", &hlen);
            if (out->present || len >= sizeof out->version || !sha ||
                hex_decode(out->manifest_sha256, sha, hlen)) {
                odd = 1;
                break;
            }
            memcpy(out->version, ver, len);
            out->version[len] = '\0';
            out->present = 1;
        } else if (get_int(doc, "version", &v) == 0) {
            out->applied++;
            if (v > out->last)
                out->last = v;
            out->dirty |= bson_iter_init_find(&it, doc, "dirty") && bson_iter_as_bool(&it);
        } else {
            odd = 1;
        }
    }
    bson_error_t be;
    if (mongoc_cursor_error(cur, &be)) {
        char why[256];
        show(why, sizeof why, be.message);
        redact(c, why, sizeof why);
        say(c, 0, "db.quick_state",
            "the one-query check is not available (%s); reading the "
            "history",
            why);
        odd = 1;
    }
    if (odd)
        out->present = 0;
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(opts);
    bson_destroy(pipeline);
    return 0;
}

/* ---- schema ---------------------------------------------------------- */

/* Collections come into being with their first document; the index only
 * makes reading one bundle's rows cheap (uniqueness is the _id's job). */
static int mg_ensure_schema(struct cmig_conn *c, struct cmig_err *err)
{
    struct failure f;
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(C_HISTORY), "indexes", "[", "{", "key", "{",
                           "bundle", BCON_INT32(1), "version", BCON_INT32(1), "}", "name",
                           BCON_UTF8("cmig_bundle_version"), "unique", BCON_BOOL(true), "}", "]");
    if (!cmd)
        return cmig_err_nomem(err);
    int rc = 0;
    if (write_cmd(c, c->client, cmd, NULL, &f))
        rc = db_fail(err, &f, "cannot create the index of " C_HISTORY);
    bson_destroy(cmd);
    return rc;
}

/* ---- lock ------------------------------------------------------------ */

/* The server's clock, from hello's localTime (MongoDB reports it; some
 * MongoDB-wire servers do not). *have = 0 when it is not reported. */
static int server_time(struct cmig_conn *c, mongoc_client_t *cl, int64_t *now, int *have,
                       struct failure *f)
{
    bson_t reply;
    bson_error_t be;
    bson_t *hello = BCON_NEW("hello", BCON_INT32(1));
    *have = 0;
    int ok = mongoc_client_command_simple(cl, "admin", hello, NULL, &reply, &be);
    int rc = check_reply(c, ok, &reply, &be, f);
    bson_iter_t it;
    if (!rc && bson_iter_init_find(&it, &reply, "localTime") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
        *now = bson_iter_date_time(&it);
        *have = 1;
    }
    bson_destroy(&reply);
    bson_destroy(hello);
    return rc;
}

/* The clock that expires_at is written in: the server's when known. */
static int lease_clock(struct cmig_conn *c, mongoc_client_t *cl, int64_t *now, int *server,
                       struct failure *f)
{
    *server = 0;
    if (c->server_clock != 0) {
        int have;
        if (server_time(c, cl, now, &have, f))
            return -1;
        if (c->server_clock < 0 && cl == c->client)
            c->server_clock = have;
        if (have) {
            *server = 1;
            return 0;
        }
    }
    *now = wall_ms();
    return 0;
}

static int64_t lease_setting(void)
{
    const char *s = getenv("CMIG_MONGODB_LEASE_MS");
    if (!s || !*s)
        return DEFAULT_LEASE_MS;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < MIN_LEASE_MS)
        return v < MIN_LEASE_MS && !errno && !*end ? MIN_LEASE_MS : DEFAULT_LEASE_MS;
    return v > MAX_LEASE_MS ? MAX_LEASE_MS : v;
}

/* The fields a holder writes at every acquisition and renewal. */
static void append_lease(bson_t *b, const struct cmig_conn *c, const char *token, int64_t now,
                         int server)
{
    BSON_APPEND_UTF8(b, "token", token);
    append_i64(b, "lease_ms", c->lease_ms);
    BSON_APPEND_DATE_TIME(b, "renewed_at", now);
    BSON_APPEND_DATE_TIME(b, "expires_at", now + c->lease_ms);
    BSON_APPEND_UTF8(b, "clock", server ? "server" : "runner");
}

static void append_owner(bson_t *b, const struct cmig_conn *c, int64_t now)
{
    BSON_APPEND_UTF8(b, "owner", c->owner);
    BSON_APPEND_UTF8(b, "host", c->host);
    BSON_APPEND_INT32(b, "pid", (int32_t)getpid());
    BSON_APPEND_DATE_TIME(b, "acquired_at", now);
}

static int is_duplicate(const struct failure *f)
{
    return f->code == 11000 || f->code == 11001;
}

/* What a waiter knows about the lock document it keeps finding. */
struct watch {
    int seen; /* token and since are set */
    char token[TOKEN_HEX + 1];
    int64_t since; /* monotonic ms: first seen with this token */
    char holder[200];
};

/* Whether the lease of doc has expired, and so may be taken over. */
static int lease_expired(struct watch *w, const bson_t *doc, int64_t srv_now, int have_srv)
{
    uint32_t len;
    const char *tok = get_str(doc, "token", &len);
    const char *clock = get_str(doc, "clock", &len);
    const char *host = get_str(doc, "host", &len);
    int64_t lease = DEFAULT_LEASE_MS, pid = 0;
    bson_iter_t it;
    if (get_int(doc, "lease_ms", &lease) || lease < MIN_LEASE_MS || lease > MAX_LEASE_MS)
        lease = DEFAULT_LEASE_MS;
    char h[128];
    if (get_int(doc, "pid", &pid))
        pid = 0;
    snprintf(w->holder, sizeof w->holder, "host '%s', pid %" PRId64, show(h, sizeof h, host), pid);
    /* By the server's clock, when the holder wrote its expiry in it. */
    if (have_srv && clock && strcmp(clock, "server") == 0 &&
        bson_iter_init_find(&it, doc, "expires_at") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
        bson_iter_date_time(&it) < srv_now)
        return 1;
    /* Otherwise by watching the heartbeat: a token that has not changed
     * for a whole lease (plus a margin for clock rates) belongs to a
     * holder that stopped renewing before its own deadline passed. */
    if (!tok)
        tok = "";
    if (!w->seen || strncmp(w->token, tok, TOKEN_HEX) != 0) {
        snprintf(w->token, sizeof w->token, "%.*s", TOKEN_HEX, tok);
        w->since = cmig_drv_now_ms();
        w->seen = 1;
        return 0;
    }
    return cmig_drv_now_ms() - w->since > lease + lease / 20 + 50;
}

static void lease_set(struct cmig_conn *c, int64_t deadline)
{
    pthread_mutex_lock(&c->lease.mu);
    c->lease.deadline = deadline;
    pthread_mutex_unlock(&c->lease.mu);
}

/* One renewal: a new token and expiry, only while the document is still
 * ours. 1: renewed; 0: not ours any more; -1: no answer (try again). */
static int renew_once(struct cmig_conn *c, mongoc_client_t *cl, char *why, size_t cap)
{
    struct failure f;
    int64_t now;
    int server, rc = -1;
    char token[TOKEN_HEX + 1];
    if (lease_clock(c, cl, &now, &server, &f))
        goto fail;
    new_token(token);
    bson_t *cmd = bson_new();
    bson_t ups, up, q, u, set;
    BSON_APPEND_UTF8(cmd, "update", C_LOCKS);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &ups);
    BSON_APPEND_DOCUMENT_BEGIN(&ups, "0", &up);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "q", &q);
    BSON_APPEND_OID(&q, "_id", &c->lock_id);
    BSON_APPEND_UTF8(&q, "owner", c->owner);
    bson_append_document_end(&up, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "u", &u);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    append_lease(&set, c, token, now, server);
    bson_append_document_end(&u, &set);
    bson_append_document_end(&up, &u);
    bson_append_document_end(&ups, &up);
    bson_append_array_end(cmd, &ups);
    bson_t reply;
    if (write_cmd(c, cl, cmd, &reply, &f) == 0)
        rc = reply_n(&reply) == 1 ? 1 : 0;
    bson_destroy(&reply);
    bson_destroy(cmd);
    if (rc == 0)
        snprintf(why, cap, "another runner took it over, or its document was removed");
    if (rc >= 0)
        return rc;
fail:
    describe(why, cap, &f);
    return -1;
}

static void *renewer_main(void *arg)
{
    struct cmig_conn *c = arg;
    struct lease *l = &c->lease;
    mongoc_uri_t *uri = mongoc_uri_copy(c->uri);
    mongoc_client_t *cl = NULL;
    int32_t t = (int32_t)(c->lease_ms / 3 > 1000 ? c->lease_ms / 3 : 1000);
    /* A renewal must not hang past the lease it is meant to extend. */
    if (uri) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, t);
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, t);
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, t);
        cl = mongoc_client_new_from_uri(uri);
    }
    if (cl)
        mongoc_client_set_error_api(cl, MONGOC_ERROR_API_VERSION_2);
    pthread_mutex_lock(&l->mu);
    int64_t next = cmig_drv_now_ms() + c->lease_ms / 3;
    while (!l->stop) {
        int64_t now = cmig_drv_now_ms();
        if (now < next) {
            struct timespec ts;
            int64_t at = next;
            ts.tv_sec = (time_t)(at / 1000);
            ts.tv_nsec = (long)(at % 1000) * 1000000L;
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&l->mu);
        char why[256] = "cannot create a client to renew the lease";
        int64_t t0 = cmig_drv_now_ms();
        int r = cl ? renew_once(c, cl, why, sizeof why) : -1;
        pthread_mutex_lock(&l->mu);
        if (r == 1) {
            l->deadline = t0 + c->lease_ms;
            next = t0 + c->lease_ms / 3;
        } else if (r == 0 || cmig_drv_now_ms() >= l->deadline) {
            l->lost = 1;
            snprintf(l->why, sizeof l->why, "%s", why);
            break;
        } else {
            next = cmig_drv_now_ms() + (c->lease_ms / 10 > 100 ? c->lease_ms / 10 : 100);
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (cl)
        mongoc_client_destroy(cl);
    if (uri)
        mongoc_uri_destroy(uri);
    return NULL;
}

static int start_renewer(struct cmig_conn *c, struct cmig_err *err)
{
    sigset_t all, old;
    /* Signals are for the main thread: its waits must see them. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&c->renewer, NULL, renewer_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return cmig_err_errno(err, CMIG_E_INTERNAL, e, "cannot start the lease renewal thread");
    c->renewing = 1;
    return 0;
}

static void stop_renewer(struct cmig_conn *c)
{
    if (!c->renewing)
        return;
    pthread_mutex_lock(&c->lease.mu);
    c->lease.stop = 1;
    pthread_cond_signal(&c->lease.cv);
    pthread_mutex_unlock(&c->lease.mu);
    pthread_join(c->renewer, NULL);
    c->renewing = 0;
}

static int lease_init(struct cmig_conn *c, struct cmig_err *err)
{
    pthread_condattr_t ca;
    if (c->lease_init)
        return 0;
    if (pthread_mutex_init(&c->lease.mu, NULL))
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot create a mutex");
    if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
        pthread_cond_init(&c->lease.cv, &ca)) {
        pthread_mutex_destroy(&c->lease.mu);
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot create a condition variable");
    }
    pthread_condattr_destroy(&ca);
    c->lease_init = 1;
    return 0;
}

/* Inserts the lock document, or takes over one whose lease expired. */
static int mg_lock(struct cmig_conn *c, const char *bundle, int64_t timeout_ms,
                   struct cmig_err *err)
{
    char b[128], what[256];
    struct watch w;
    struct failure f;
    int rc = 0;
    show(b, sizeof b, bundle);
    if (c->lock_bundle) {
        if (strcmp(c->lock_bundle, bundle) == 0)
            return 0;
        return cmig_err_set(err, CMIG_E_INTERNAL,
                            "this session already holds the migration lock of another bundle");
    }
    if ((rc = lease_init(c, err)))
        return rc;
    snprintf(what, sizeof what, "cannot take the migration lock of bundle '%s'", b);
    memset(&w, 0, sizeof w);
    derive_id(&c->lock_id, "cmig_locks", bundle, 0);
    new_token(c->owner);
    if (gethostname(c->host, sizeof c->host) != 0)
        snprintf(c->host, sizeof c->host, "unknown");
    c->host[sizeof c->host - 1] = '\0';
    c->lease_ms = lease_setting();
    c->lease.stop = 0;
    c->lease.lost = 0;
    c->lease.why[0] = '\0';

    int64_t start = cmig_drv_now_ms(), delay = LOCK_BACKOFF_FIRST_MS;
    for (;;) {
        int64_t t0 = cmig_drv_now_ms(), now;
        int server;
        char token[TOKEN_HEX + 1];
        if (lease_clock(c, c->client, &now, &server, &f))
            return db_fail(err, &f, what);
        new_token(token);
        bson_t *cmd = bson_new(), docs, doc, reply;
        BSON_APPEND_UTF8(cmd, "insert", C_LOCKS);
        BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);
        BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
        BSON_APPEND_OID(&doc, "_id", &c->lock_id);
        BSON_APPEND_UTF8(&doc, "bundle", bundle);
        append_owner(&doc, c, now);
        append_lease(&doc, c, token, now, server);
        bson_append_document_end(&docs, &doc);
        bson_append_array_end(cmd, &docs);
        int r = write_cmd(c, c->client, cmd, &reply, &f);
        bson_destroy(&reply);
        bson_destroy(cmd);
        if (r == 0)
            goto acquired;
        if (!is_duplicate(&f))
            return db_fail(err, &f, what);

        /* Held: look at the holder's lease. */
        bson_t cur, *filter = BCON_NEW("_id", BCON_OID(&c->lock_id));
        int found;
        r = find_one(c, c->client, C_LOCKS, filter, &cur, &found, &f);
        bson_destroy(filter);
        if (r) {
            bson_destroy(&cur);
            return db_fail(err, &f, what);
        }
        if (found && lease_expired(&w, &cur, now, server)) {
            uint32_t len;
            const char *old = get_str(&cur, "token", &len);
            bson_t *q = old ? BCON_NEW("_id", BCON_OID(&c->lock_id), "token", BCON_UTF8(old))
                            : BCON_NEW("_id", BCON_OID(&c->lock_id), "token", "{", "$exists",
                                       BCON_BOOL(false), "}");
            bson_t ups, up, u, s;
            cmd = bson_new();
            BSON_APPEND_UTF8(cmd, "update", C_LOCKS);
            BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &ups);
            BSON_APPEND_DOCUMENT_BEGIN(&ups, "0", &up);
            BSON_APPEND_DOCUMENT(&up, "q", q);
            BSON_APPEND_DOCUMENT_BEGIN(&up, "u", &u);
            BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &s);
            BSON_APPEND_UTF8(&s, "bundle", bundle);
            append_owner(&s, c, now);
            append_lease(&s, c, token, now, server);
            bson_append_document_end(&u, &s);
            bson_append_document_end(&up, &u);
            bson_append_document_end(&ups, &up);
            bson_append_array_end(cmd, &ups);
            r = write_cmd(c, c->client, cmd, &reply, &f);
            int64_t n = r ? 0 : reply_n(&reply);
            bson_destroy(&reply);
            bson_destroy(cmd);
            bson_destroy(q);
            bson_destroy(&cur);
            if (r)
                return db_fail(err, &f, what);
            if (n == 1) {
                say(c, 2, "lock.taken_over",
                    "took over the migration lock of bundle '%s' from %s, whose lease expired", b,
                    w.holder);
                goto acquired;
            }
            /* Someone else was quicker, or it was renewed: look again. */
            found = 0;
        } else {
            bson_destroy(&cur);
        }
        if (interrupted(c))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted while waiting for the migration lock of bundle '%s'",
                                b);
        int64_t waited = cmig_drv_now_ms() - start;
        if (waited >= timeout_ms)
            return cmig_err_set(err, CMIG_E_LOCK,
                                "timed out after %" PRId64
                                " ms waiting for the migration lock of bundle '%s' (held by %s)",
                                timeout_ms > 0 ? timeout_ms : 0, b,
                                w.holder[0] ? w.holder : "another runner");
        if (!found)
            continue; /* released or changed meanwhile: try again at once */
        int64_t nap_ms = delay < timeout_ms - waited ? delay : timeout_ms - waited;
        if (nap(c, nap_ms))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted while waiting for the migration lock of bundle '%s'",
                                b);
        delay = delay * 2 > LOCK_BACKOFF_MAX_MS ? LOCK_BACKOFF_MAX_MS : delay * 2;
        continue;
    acquired:
        lease_set(c, t0 + c->lease_ms);
        c->lock_bundle = strdup(bundle);
        if (!c->lock_bundle || (rc = start_renewer(c, err))) {
            if (!c->lock_bundle)
                rc = cmig_err_nomem(err);
            free(c->lock_bundle);
            c->lock_bundle = NULL;
            bson_t *del = BCON_NEW("delete", BCON_UTF8(C_LOCKS), "deletes", "[", "{", "q", "{",
                                   "_id", BCON_OID(&c->lock_id), "owner", BCON_UTF8(c->owner), "}",
                                   "limit", BCON_INT32(1), "}", "]");
            write_cmd(c, c->client, del, NULL, &f);
            bson_destroy(del);
            return rc;
        }
        return 0;
    }
}

/* Fails when the lease may have lapsed: nothing more may be done then. */
static int lease_check(struct cmig_conn *c, const char *before, struct cmig_err *err)
{
    if (!c->lock_bundle)
        return 0;
    pthread_mutex_lock(&c->lease.mu);
    int lost = c->lease.lost || cmig_drv_now_ms() >= c->lease.deadline;
    char why[256];
    snprintf(why, sizeof why, "%s",
             c->lease.why[0] ? c->lease.why : "its lease expired before it could be renewed");
    pthread_mutex_unlock(&c->lease.mu);
    if (!lost)
        return 0;
    char b[128];
    return cmig_err_set(err, CMIG_E_LOCK,
                        "the migration lock of bundle '%s' was lost (%s); "
                        "stopped %s",
                        show(b, sizeof b, c->lock_bundle), why, before);
}

static int mg_unlock(struct cmig_conn *c, struct cmig_err *err)
{
    char b[128];
    struct failure f;
    int rc = 0;
    if (!c->lock_bundle)
        return 0;
    stop_renewer(c);
    show(b, sizeof b, c->lock_bundle);
    bson_t *del = BCON_NEW("delete", BCON_UTF8(C_LOCKS), "deletes", "[", "{", "q", "{", "_id",
                           BCON_OID(&c->lock_id), "owner", BCON_UTF8(c->owner), "}", "limit",
                           BCON_INT32(1), "}", "]");
    bson_t reply;
    if (write_cmd(c, c->client, del, &reply, &f)) {
        char what[256];
        snprintf(what, sizeof what, "cannot release the migration lock of bundle '%s'", b);
        rc = db_fail(err, &f, what);
    } else if (reply_n(&reply) != 1) {
        rc = cmig_err_set(err, CMIG_E_LOCK,
                          "the migration lock of bundle '%s' was not held "
                          "any more when it was released",
                          b);
    }
    bson_destroy(&reply);
    bson_destroy(del);
    free(c->lock_bundle);
    c->lock_bundle = NULL;
    return rc;
}

/* ---- apply ----------------------------------------------------------- */

static void append_history_fields(bson_t *b, const struct cmig_step *s, int dirty,
                                  int64_t execution_ms)
{
    char hex[65];
    hex_encode(hex, s->sha256);
    BSON_APPEND_UTF8(b, "bundle", s->bundle);
    append_i64(b, "version", s->version);
    BSON_APPEND_UTF8(b, "name", s->name ? s->name : "");
    BSON_APPEND_UTF8(b, "sha256", hex);
    BSON_APPEND_DATE_TIME(b, "applied_at", wall_ms());
    append_i64(b, "execution_ms", execution_ms);
    if (s->bundle_version)
        BSON_APPEND_UTF8(b, "bundle_version", s->bundle_version);
    else
        BSON_APPEND_NULL(b, "bundle_version");
    if (s->runner_version)
        BSON_APPEND_UTF8(b, "runner_version", s->runner_version);
    else
        BSON_APPEND_NULL(b, "runner_version");
    BSON_APPEND_BOOL(b, "dirty", dirty);
}

/* {update: coll, updates: [{q: {_id}, u: {$set: <set>}, upsert}]} */
static bson_t *update_by_id(const char *coll, const bson_oid_t *id, const bson_t *set, int upsert)
{
    bson_t *cmd = bson_new();
    bson_t ups, up, q, u;
    BSON_APPEND_UTF8(cmd, "update", coll);
    BSON_APPEND_ARRAY_BEGIN(cmd, "updates", &ups);
    BSON_APPEND_DOCUMENT_BEGIN(&ups, "0", &up);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "q", &q);
    BSON_APPEND_OID(&q, "_id", id);
    bson_append_document_end(&up, &q);
    BSON_APPEND_DOCUMENT_BEGIN(&up, "u", &u);
    BSON_APPEND_DOCUMENT(&u, "$set", set);
    bson_append_document_end(&up, &u);
    if (upsert)
        BSON_APPEND_BOOL(&up, "upsert", true);
    bson_append_document_end(&ups, &up);
    bson_append_array_end(cmd, &ups);
    return cmd;
}

static bson_t *delete_by_id(const char *coll, const bson_oid_t *id)
{
    return BCON_NEW("delete", BCON_UTF8(coll), "deletes", "[", "{", "q", "{", "_id", BCON_OID(id),
                    "}", "limit", BCON_INT32(1), "}", "]");
}

/* Keeps golang-migrate's one document in step, as golang-migrate writes
 * it: every document removed, then {version, dirty} unless the version
 * is gone. */
static int write_legacy(struct cmig_conn *c, const struct cmig_step *s, int dirty,
                        struct failure *f)
{
    if (!s->keep_legacy)
        return 0;
    bson_t *del = BCON_NEW("delete", BCON_UTF8(C_LEGACY), "deletes", "[", "{", "q", "{", "}",
                           "limit", BCON_INT32(0), "}", "]");
    int rc = write_cmd(c, c->client, del, NULL, f);
    bson_destroy(del);
    if (rc || s->legacy_version < 0)
        return rc;
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *ins =
        BCON_NEW("insert", BCON_UTF8(C_LEGACY), "documents", "[", "{", "_id", BCON_OID(&id),
                 "version", BCON_INT64(s->legacy_version), "dirty", BCON_BOOL(dirty), "}", "]");
    rc = write_cmd(c, c->client, ins, NULL, f);
    bson_destroy(ins);
    return rc;
}

/* Runs a write that must touch exactly one history document: 0, or
 * CMIG_E_CONFLICT "none" when it touched none. */
static int write_one(struct cmig_conn *c, bson_t *cmd, const char *what, const char *none,
                     struct cmig_err *err)
{
    struct failure f;
    bson_t reply;
    int rc = 0;
    if (write_cmd(c, c->client, cmd, &reply, &f))
        rc = db_fail(err, &f, what);
    else if (none && reply_n(&reply) < 1)
        rc = cmig_err_set(err, CMIG_E_CONFLICT, "%s", none);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return rc;
}

/* The database a command runs against: the URL's, but commands that
 * MongoDB accepts only on admin (they name full namespaces) go there. */
static const char *target_db(const struct cmig_conn *c, const bson_t *cmd, const char **name)
{
    bson_iter_t it;
    *name = "";
    if (bson_iter_init(&it, cmd) && bson_iter_next(&it)) {
        *name = bson_iter_key(&it);
        if (strcmp(*name, "renameCollection") == 0)
            return "admin";
    }
    return c->db;
}

/* A command that left a cursor open on the server (a find whose result
 * did not fit one batch, say) has it closed, so that it does not linger. */
static void close_cursor(struct cmig_conn *c, const char *db, const bson_t *reply)
{
    bson_iter_t it, cur;
    int64_t id = 0;
    uint32_t len;
    const char *ns = NULL;
    if (!bson_iter_init_find(&it, reply, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &cur))
        return;
    while (bson_iter_next(&cur)) {
        if (strcmp(bson_iter_key(&cur), "id") == 0)
            iter_int(&cur, &id);
        else if (strcmp(bson_iter_key(&cur), "ns") == 0 && BSON_ITER_HOLDS_UTF8(&cur))
            ns = bson_iter_utf8(&cur, &len);
    }
    if (id == 0 || !ns || !strchr(ns, '.'))
        return;
    bson_t *kill = BCON_NEW("killCursors", BCON_UTF8(strchr(ns, '.') + 1), "cursors", "[",
                            BCON_INT64(id), "]");
    bson_t r;
    bson_error_t be;
    mongoc_client_command_simple(c->client, db, kill, NULL, &r, &be);
    bson_destroy(&r);
    bson_destroy(kill);
}

/* Runs the commands of m in order. On failure r holds the position of the
 * failed command in the file. */
static int run_commands(struct cmig_conn *c, const struct cmig_step *s,
                        const struct cmig_json_migration *m, struct cmig_step_result *r,
                        struct cmig_err *err)
{
    bson_t all;
    bson_iter_t it;
    if (!bson_init_static(&all, m->bson, m->bson_len) || !bson_iter_init(&it, &all))
        return cmig_err_set(err, CMIG_E_INTERNAL, "the parsed migration is not valid BSON");
    for (size_t i = 0; bson_iter_next(&it); i++) {
        uint32_t dlen;
        const uint8_t *d;
        bson_t cmd, reply;
        bson_error_t be;
        struct failure f;
        char before[64];
        const char *name;
        if (m->offset[i])
            cmig_json_line_col(s->sql, s->len, m->offset[i], &r->line, &r->col);
        snprintf(before, sizeof before, "before command at index %zu", i);
        if (interrupted(c))
            return cmig_err_set(err, CMIG_E_INTERRUPTED,
                                "interrupted before command at index %zu; the migration is left "
                                "dirty",
                                i);
        int rc = lease_check(c, before, err);
        if (rc) {
            cmig_err_prefix(err, "the migration is left dirty");
            return rc;
        }
        bson_iter_document(&it, &dlen, &d);
        if (!bson_init_static(&cmd, d, dlen))
            return cmig_err_set(err, CMIG_E_INTERNAL, "command %zu is not valid BSON", i);
        const char *db = target_db(c, &cmd, &name);
        char cname[64];
        show(cname, sizeof cname, name);
        bson_t *withtime = NULL;
        const bson_t *send = &cmd;
        bson_iter_t has;
        if (c->statement_timeout_ms > 0 && !bson_iter_init_find(&has, &cmd, "maxTimeMS")) {
            withtime = bson_copy(&cmd);
            if (!withtime)
                return cmig_err_nomem(err);
            append_i64(withtime, "maxTimeMS", c->statement_timeout_ms);
            send = withtime;
        }
        /* No read preference, read or write concern is added: a command
         * runs as written, as runCommand runs it (inside the migration's
         * transaction when it has one). */
        bson_t opts = BSON_INITIALIZER;
        int ok = in_session(c, c->client, &opts, &be);
        if (ok)
            ok = mongoc_client_command_with_opts(c->client, db, send, NULL, &opts, &reply, &be);
        else
            bson_init(&reply);
        bson_destroy(&opts);
        bson_destroy(withtime);
        if (check_reply(c, ok, &reply, &be, &f)) {
            char desc[CMIG_ERR_MSG_MAX];
            bson_destroy(&reply);
            describe(desc, sizeof desc, &f);
            if (f.network) {
                cmig_err_set(err, CMIG_E_CONNECT,
                             "command at index %zu ('%s'): no answer from MongoDB (%s); whether "
                             "it ran is unknown, and the migration is left dirty",
                             i, cname, desc);
            } else {
                cmig_err_set(err, CMIG_E_MIGRATION, "command at index %zu ('%s') failed: %s", i,
                             cname, desc);
            }
            set_native(err, &f);
            return err ? err->code : CMIG_E_MIGRATION;
        }
        close_cursor(c, db, &reply);
        bson_destroy(&reply);
    }
    r->line = r->col = 0;
    return 0;
}

static int parse_step(const struct cmig_step *s, struct cmig_json_migration *m,
                      struct cmig_step_result *r, struct cmig_err *err)
{
    if (s->len && !s->sql)
        return cmig_err_set(err, CMIG_E_INTERNAL, "step without its migration");
    int rc = cmig_json_migration_parse(m, s->sql, s->len, NULL, &r->line, &r->col, err);
    if (rc && err && err->code == CMIG_E_INPUT)
        err->code = rc = CMIG_E_MIGRATION;
    return rc;
}

/* Ends the migration's transaction: commits it when commit is set and
 * nothing failed, else aborts it. Returns rc, or the commit's failure. */
static int end_transaction(struct cmig_conn *c, int rc, const struct cmig_step *s,
                           struct cmig_err *err)
{
    mongoc_client_session_t *ses = c->session;
    bson_error_t be;
    c->session = NULL;
    if (!ses)
        return rc;
    if (rc) {
        mongoc_client_session_abort_transaction(ses, &be);
        mongoc_client_session_destroy(ses);
        return rc;
    }
    bson_t reply;
    memset(&be, 0, sizeof be);
    if (!mongoc_client_session_commit_transaction(ses, &reply, &be)) {
        struct failure f;
        char d[CMIG_ERR_MSG_MAX];
        check_reply(c, 0, &reply, &be, &f);
        describe(d, sizeof d, &f);
        if (f.network || mongoc_error_has_label(&reply, "UnknownTransactionCommitResult"))
            rc = cmig_err_set(err, CMIG_E_CONNECT,
                              "migration %" PRId64 ": the commit of its transaction got no "
                              "answer (%s); it is either applied with its history record or "
                              "not at all, and the next run will tell",
                              s->version, d);
        else
            rc = cmig_err_set(err, CMIG_E_MIGRATION,
                              "migration %" PRId64 ": its transaction did not commit: %s; "
                              "nothing of it is applied",
                              s->version, d);
        set_native(err, &f);
    }
    bson_destroy(&reply);
    mongoc_client_session_destroy(ses);
    return rc;
}

/* UP and DOWN in one multi-document transaction (replica sets): the
 * commands and the history change commit together or not at all, so there
 * is no dirty state. A command the server does not allow in a transaction
 * (drop, renameCollection, ...) fails the migration and nothing of it
 * stays. */
static int apply_in_transaction(struct cmig_conn *c, const struct cmig_step *s,
                                const struct cmig_json_migration *m, struct cmig_step_result *r,
                                int64_t t0, struct cmig_err *err)
{
    bson_error_t be;
    bson_oid_t id;
    struct failure f;
    char what[160], none[160];
    int rc;
    memset(&be, 0, sizeof be);
    mongoc_client_session_t *ses = mongoc_client_start_session(c->client, NULL, &be);
    if (!ses || !mongoc_client_session_start_transaction(ses, NULL, &be)) {
        char why[256];
        show(why, sizeof why, be.message);
        redact(c, why, sizeof why);
        if (ses)
            mongoc_client_session_destroy(ses);
        return cmig_err_set(err, CMIG_E_DB,
                            "migration %" PRId64 " is to run in a transaction, which this "
                            "server cannot start (transactions need a replica set): %s",
                            s->version, why);
    }
    c->session = ses;
    r->transaction = s->tx != CMIG_TX_TRANSACTION;
    if ((rc = run_commands(c, s, m, r, err))) {
        if (rc == CMIG_E_MIGRATION)
            cmig_err_prefix(err, "rolled back");
        return end_transaction(c, rc, s, err);
    }
    derive_id(&id, "cmig_history", s->bundle, s->version);
    snprintf(what, sizeof what, "cannot record migration %" PRId64 " (rolled back)", s->version);
    if ((rc = lease_check(c, "before committing the migration", err)))
        return end_transaction(c, rc, s, err);
    if (s->kind == CMIG_STEP_UP) {
        bson_t *set = bson_new();
        append_history_fields(set, s, 0, cmig_drv_now_ms() - t0);
        rc = write_one(c, update_by_id(C_HISTORY, &id, set, 1), what, NULL, err);
        bson_destroy(set);
    } else {
        snprintf(none, sizeof none, "migration %" PRId64 " is not recorded as applied", s->version);
        rc = write_one(c, delete_by_id(C_HISTORY, &id), what, none, err);
    }
    if (!rc && write_legacy(c, s, 0, &f))
        rc = db_fail(err, &f, what);
    return end_transaction(c, rc, s, err);
}

/* UP and DOWN: dirty first, the commands, then clean (UP) or gone (DOWN).
 * A failure leaves the document dirty. */
static int apply_commands(struct cmig_conn *c, const struct cmig_step *s,
                          struct cmig_step_result *r, int64_t t0, struct cmig_err *err)
{
    struct cmig_json_migration m;
    bson_oid_t id;
    struct failure f;
    char what[160], none[160];
    int rc;
    memset(&m, 0, sizeof m);
    if (s->in_outer_tx)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "MongoDB migrations cannot be part of a single transaction");
    if (s->kind == CMIG_STEP_UP && !s->sha256)
        return cmig_err_set(err, CMIG_E_INTERNAL, "migration %" PRId64 " has no sha256",
                            s->version);
    if ((rc = parse_step(s, &m, r, err)))
        goto out;
    if ((rc = lease_check(c, "before the migration started", err)))
        goto out;
    if (s->tx == CMIG_TX_TRANSACTION || c->tx_all) {
        rc = apply_in_transaction(c, s, &m, r, t0, err);
        goto out;
    }
    derive_id(&id, "cmig_history", s->bundle, s->version);
    snprintf(what, sizeof what, "cannot mark migration %" PRId64 " as started", s->version);
    bson_t *set = bson_new();
    if (s->kind == CMIG_STEP_UP) {
        append_history_fields(set, s, 1, 0);
        rc = write_one(c, update_by_id(C_HISTORY, &id, set, 1), what, NULL, err);
    } else {
        BSON_APPEND_BOOL(set, "dirty", true);
        snprintf(none, sizeof none, "migration %" PRId64 " is not recorded as applied", s->version);
        rc = write_one(c, update_by_id(C_HISTORY, &id, set, 0), what, none, err);
    }
    bson_destroy(set);
    if (rc)
        goto out;
    if (write_legacy(c, s, 1, &f)) {
        rc = db_fail(err, &f, what);
        goto out;
    }

    if ((rc = run_commands(c, s, &m, r, err)))
        goto out;

    snprintf(what, sizeof what,
             "migration %" PRId64 " ran, but recording it failed (it is left dirty)", s->version);
    if ((rc = lease_check(c, "before recording the migration (it ran, and is left dirty)", err)))
        goto out;
    if (s->kind == CMIG_STEP_UP) {
        set = bson_new();
        BSON_APPEND_BOOL(set, "dirty", false);
        append_i64(set, "execution_ms", cmig_drv_now_ms() - t0);
        rc = write_one(c, update_by_id(C_HISTORY, &id, set, 0), what, NULL, err);
        bson_destroy(set);
    } else {
        rc = write_one(c, delete_by_id(C_HISTORY, &id), what, NULL, err);
    }
    if (!rc && write_legacy(c, s, 0, &f))
        rc = db_fail(err, &f, what);
out:
    cmig_json_migration_free(&m);
    return rc;
}

/* BASELINE, FORCE_CLEAN, FORCE_REMOVE: history only, no commands. */
static int apply_record(struct cmig_conn *c, const struct cmig_step *s, struct cmig_err *err)
{
    bson_oid_t id;
    struct failure f;
    char what[160], none[160];
    int rc = 0;
    if ((rc = lease_check(c, "before changing the history", err)))
        return rc;
    derive_id(&id, "cmig_history", s->bundle, s->version);
    snprintf(none, sizeof none, "migration %" PRId64 " has no history row", s->version);
    switch (s->kind) {
    case CMIG_STEP_BASELINE: {
        if (!s->sha256)
            return cmig_err_set(err, CMIG_E_INTERNAL, "migration %" PRId64 " has no sha256",
                                s->version);
        snprintf(what, sizeof what, "cannot record migration %" PRId64 " as applied", s->version);
        bson_t *cmd = bson_new(), docs, doc;
        BSON_APPEND_UTF8(cmd, "insert", C_HISTORY);
        BSON_APPEND_ARRAY_BEGIN(cmd, "documents", &docs);
        BSON_APPEND_DOCUMENT_BEGIN(&docs, "0", &doc);
        BSON_APPEND_OID(&doc, "_id", &id);
        append_history_fields(&doc, s, 0, 0);
        bson_append_document_end(&docs, &doc);
        bson_append_array_end(cmd, &docs);
        rc = write_one(c, cmd, what, NULL, err);
        break;
    }
    case CMIG_STEP_FORCE_CLEAN: {
        snprintf(what, sizeof what, "cannot force migration %" PRId64, s->version);
        bson_t *set = bson_new();
        BSON_APPEND_BOOL(set, "dirty", false);
        rc = write_one(c, update_by_id(C_HISTORY, &id, set, 0), what, none, err);
        bson_destroy(set);
        break;
    }
    case CMIG_STEP_FORCE_REMOVE:
        snprintf(what, sizeof what, "cannot force migration %" PRId64, s->version);
        rc = write_one(c, delete_by_id(C_HISTORY, &id), what, none, err);
        break;
    default:
        return cmig_err_set(err, CMIG_E_INTERNAL, "unknown step kind %d", (int)s->kind);
    }
    if (!rc && write_legacy(c, s, 0, &f))
        rc = db_fail(err, &f, what);
    return rc;
}

/* libbson parses a JSON migration whole: a large file handed out as a
 * stream is read into memory first (into *owned, the caller's to free). */
static int whole_step(const struct cmig_step *s, struct cmig_step *copy, char **owned,
                      struct cmig_err *err)
{
    *copy = *s;
    *owned = NULL;
    if (s->sql || !s->read)
        return 0;
    char *text = malloc(s->len ? s->len : 1);
    if (!text)
        return cmig_err_nomem(err);
    size_t have = 0;
    while (have < s->len) {
        size_t got = 0;
        int rc = s->read(s->src, text + have, s->len - have, &got, err);
        if (!rc && got == 0)
            rc = cmig_err_set(err, CMIG_E_INTERNAL, "the migration ended after %zu of %zu bytes",
                              have, s->len);
        if (rc) {
            free(text);
            return rc;
        }
        have += got;
    }
    copy->sql = text;
    copy->read = NULL;
    copy->src = NULL;
    *owned = text;
    return 0;
}

static int mg_apply(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                    struct cmig_err *err)
{
    struct cmig_step_result scratch;
    struct cmig_step whole;
    char *owned = NULL;
    int64_t t0 = cmig_drv_now_ms();
    int rc;
    if (!r)
        r = &scratch;
    memset(r, 0, sizeof *r);
    if (!s->bundle)
        return cmig_err_set(err, CMIG_E_INTERNAL, "step without a bundle name");
    switch (s->kind) {
    case CMIG_STEP_UP:
    case CMIG_STEP_DOWN:
        rc = whole_step(s, &whole, &owned, err);
        if (!rc)
            rc = apply_commands(c, &whole, r, t0, err);
        free(owned);
        break;
    default:
        rc = apply_record(c, s, err);
        break;
    }
    r->execution_ms = cmig_drv_now_ms() - t0;
    return rc;
}

/* ---- bundle record, close ---------------------------------------------- */

static int mg_record_bundle(struct cmig_conn *c, const char *bundle, const char *version,
                            const uint8_t manifest_sha256[32], struct cmig_err *err)
{
    char hex[65], b[128], what[256];
    bson_oid_t id;
    int rc;
    snprintf(what, sizeof what, "cannot record the version of bundle '%s'",
             show(b, sizeof b, bundle));
    if ((rc = lease_check(c, "before recording the bundle version", err)))
        return rc;
    hex_encode(hex, manifest_sha256);
    derive_id(&id, "cmig_bundles", bundle, 0);
    bson_t *set = bson_new();
    BSON_APPEND_UTF8(set, "bundle", bundle);
    BSON_APPEND_UTF8(set, "version", version);
    BSON_APPEND_UTF8(set, "manifest_sha256", hex);
    BSON_APPEND_DATE_TIME(set, "updated_at", wall_ms());
    /* Tells later reads that golang-migrate's collection is worth a look. */
    BSON_APPEND_BOOL(set, "golang_migrate", c->legacy_seen != 0);
    rc = write_one(c, update_by_id(C_BUNDLES, &id, set, 1), what, NULL, err);
    bson_destroy(set);
    return rc;
}

static void mg_close(struct cmig_conn *c)
{
    if (!c)
        return;
    if (c->lock_bundle) {
        struct cmig_err ignored;
        cmig_err_clear(&ignored);
        mg_unlock(c, &ignored);
    }
    stop_renewer(c);
    if (c->client)
        mongoc_client_destroy(c->client);
    if (c->uri)
        mongoc_uri_destroy(c->uri);
    mongoc_log_set_handler(NULL, NULL);
    mongoc_cleanup();
    if (c->lease_init) {
        pthread_mutex_destroy(&c->lease.mu);
        pthread_cond_destroy(&c->lease.cv);
    }
    for (size_t i = 0; i < SECRETS_MAX; i++)
        if (c->secret[i]) {
            sodium_memzero(c->secret[i], strlen(c->secret[i]));
            free(c->secret[i]);
        }
    free(c->db);
    free(c);
}

/* --single-transaction is refused by the core for migrations that cannot
 * run in a transaction, which every MongoDB migration is; these only make
 * sure that a call can never reach a NULL pointer. */
static int mg_begin(struct cmig_conn *c, struct cmig_err *err)
{
    (void)c;
    return cmig_err_set(err, CMIG_E_USAGE, "--single-transaction is not supported for MongoDB");
}

static int mg_commit(struct cmig_conn *c, struct cmig_err *err)
{
    return mg_begin(c, err);
}

static int mg_rollback(struct cmig_conn *c, struct cmig_err *err)
{
    (void)c;
    (void)err;
    return 0;
}

static const char *const mg_schemes[] = {"mongodb://", "mongodb+srv://", NULL};

/* cancel is not offered: libmongoc has no async-signal-safe way to stop a
 * running command. A signal is noticed between commands (the migration is
 * left dirty) and in every wait. */
EXPORT const struct cmig_driver cmig_driver_mongodb = {
    .abi = CMIG_DRIVER_ABI,
    .name = "mongodb",
    .schemes = mg_schemes,
    .caps = 0,
    .open = mg_open,
    .close = mg_close,
    .read_history = mg_read_history,
    .lock = mg_lock,
    .unlock = mg_unlock,
    .ensure_schema = mg_ensure_schema,
    .apply = mg_apply,
    .begin = mg_begin,
    .commit = mg_commit,
    .rollback = mg_rollback,
    .record_bundle = mg_record_bundle,
    .cancel = NULL,
    .quick_state = mg_quick_state,
};
