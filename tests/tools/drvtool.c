/*
 * drvtool.c - drives a cmig-run database driver (a drivers/NAME.so shared
 * object) through a script given on the command line, printing one line
 * per result, so that shell suites can test a driver against a real
 * server without the runner core.
 *
 *   drvtool [-w WAIT_MS] [-s STATEMENT_TIMEOUT_MS] [-l DB_LOCK_TIMEOUT_MS]
 *           [-a APPLICATION_NAME] DRIVER.so URL OP...
 *
 *   history BUNDLE                   print the history
 *   ensure                           ensure_schema
 *   lock BUNDLE TIMEOUT_MS | unlock
 *   up BUNDLE VERSION NAME FILE tx|none
 *   down BUNDLE VERSION FILE tx|none
 *   baseline BUNDLE VERSION NAME
 *   force-clean BUNDLE VERSION | force-remove BUNDLE VERSION
 *   begin | commit | rollback        (begin also makes later steps
 *                                    in_outer_tx until commit/rollback)
 *   legacy N|off                     later steps keep golang-migrate's
 *                                    schema_migrations at N (-1: no row)
 *   record BUNDLE VERSION            record_bundle (manifest hash: zeros)
 *   sleep MS | echo TEXT
 *
 * Every operation prints "ok OP ..." or "error OP code=NAME native=CODE
 * statement=N line=L col=C: MESSAGE" on stdout and the script goes on.
 * Driver log events go to stderr. SIGINT/SIGTERM set the interrupted flag
 * and call the driver's cancel, as cmig-run does. Exit status: 0 when
 * every operation succeeded, 1 when one failed, 2 for a usage error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../../runner/driver.h"

#define FILE_MAX ((size_t)64 << 20)

static volatile int got_signal;
static const struct cmig_driver *drv;
static struct cmig_conn *volatile conn;

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
    if (drv && conn && drv->cancel)
        drv->cancel(conn);
}

static void log_to_stderr(void *ctx, int level, const char *event, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "log level=%d event=%s: %s\n", level, event, msg);
}

static int usage(void)
{
    fprintf(stderr, "usage: drvtool [-w MS] [-s MS] [-l MS] [-a NAME] DRIVER.so URL OP...\n");
    return 2;
}

static int parse_num(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = malloc(FILE_MAX + 1);
    size_t n = data ? fread(data, 1, FILE_MAX + 1, f) : 0;
    int bad = !data || ferror(f) || n > FILE_MAX;
    fclose(f);
    if (bad) {
        free(data);
        return NULL;
    }
    *len = n;
    return data;
}

static void history_free(struct cmig_history *h)
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

static void print_hex(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static void print_history(const struct cmig_history *h)
{
    printf("history schema=%d rows=%zu record=%s legacy=", h->schema_present, h->n,
           h->has_record ? h->record_version : "-");
    if (!h->legacy_present)
        printf("absent");
    else if (!h->legacy_has_row)
        printf("empty");
    else
        printf("%" PRId64 "%s", h->legacy_version, h->legacy_dirty ? "(dirty)" : "");
    printf("\n");
    for (size_t i = 0; i < h->n; i++) {
        const struct cmig_applied *a = &h->rows[i];
        printf("row %" PRId64 " name=%s sha256=", a->version, a->name);
        print_hex(a->sha256, 32);
        printf(" dirty=%d exec_ms=%" PRId64 " applied_at=%s bundle_version=%s runner_version=%s\n",
               a->dirty, a->execution_ms, a->applied_at > 0 ? "set" : "unset",
               a->bundle_version ? a->bundle_version : "NULL",
               a->runner_version ? a->runner_version : "NULL");
    }
}

static void report(const char *op, int rc, const struct cmig_err *err,
                   const struct cmig_step_result *r)
{
    if (!rc)
        return;
    printf("error %s code=%s native=%s statement=%u line=%u col=%u: %s\n", op, cmig_code_name(rc),
           err->native[0] ? err->native : "-", r ? r->statement : 0, r ? r->line : 0,
           r ? r->col : 0, err->msg);
}

struct state {
    int outer;
    int keep_legacy;
    int64_t legacy_version;
};

/* Runs a step; sql may be NULL. */
static int step(struct state *st, const char *op, enum cmig_step_kind kind, const char *bundle,
                const char *version, const char *name, const char *file, const char *mode)
{
    struct cmig_step s;
    struct cmig_step_result r;
    struct cmig_err err;
    uint8_t sha[32];
    char *sql = NULL;
    size_t len = 0;
    int rc;
    memset(&s, 0, sizeof s);
    memset(&r, 0, sizeof r);
    cmig_err_clear(&err);
    if (parse_num(version, &s.version)) {
        fprintf(stderr, "drvtool: %s: bad version '%s'\n", op, version);
        return 2;
    }
    if (file) {
        sql = read_file(file, &len);
        if (!sql) {
            fprintf(stderr, "drvtool: cannot read '%s'\n", file);
            return 2;
        }
        crypto_hash_sha256(sha, (const unsigned char *)sql, len);
    } else {
        crypto_hash_sha256(sha, (const unsigned char *)(name ? name : ""), name ? strlen(name) : 0);
    }
    s.kind = kind;
    s.bundle = bundle;
    s.bundle_version = "1.0.0";
    s.runner_version = "cmig-run test";
    s.name = name;
    s.sha256 = sha;
    s.sql = sql;
    s.len = len;
    s.tx = CMIG_TX_TRANSACTION;
    if (mode) {
        int m = cmig_txmode_parse(strcmp(mode, "tx") == 0 ? "transaction" : mode);
        if (m < 0) {
            free(sql);
            fprintf(stderr, "drvtool: %s: bad mode '%s'\n", op, mode);
            return 2;
        }
        s.tx = (enum cmig_txmode)m;
    }
    s.in_outer_tx = st->outer;
    s.keep_legacy = st->keep_legacy;
    s.legacy_version = st->legacy_version;
    rc = drv->apply(conn, &s, &r, &err);
    if (rc)
        report(op, rc, &err, &r);
    else
        printf("ok %s %" PRId64 "\n", op, s.version);
    free(sql);
    return rc ? 1 : 0;
}

/* Number of arguments each operation takes. */
static int arity(const char *op)
{
    static const struct {
        const char *name;
        int n;
    } ops[] = {{"history", 1},      {"ensure", 0}, {"lock", 2},     {"unlock", 0},
               {"up", 5},           {"down", 4},   {"baseline", 3}, {"force-clean", 2},
               {"force-remove", 2}, {"begin", 0},  {"commit", 0},   {"rollback", 0},
               {"legacy", 1},       {"record", 2}, {"sleep", 1},    {"echo", 1}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, op) == 0)
            return ops[i].n;
    return -1;
}

static int run_op(struct state *st, char **a)
{
    const char *op = a[0];
    struct cmig_err err;
    int rc = 0;
    cmig_err_clear(&err);
    if (strcmp(op, "history") == 0) {
        struct cmig_history h;
        memset(&h, 0, sizeof h);
        rc = drv->read_history(conn, a[1], &h, &err);
        if (!rc)
            print_history(&h);
        history_free(&h);
    } else if (strcmp(op, "ensure") == 0) {
        rc = drv->ensure_schema(conn, &err);
    } else if (strcmp(op, "lock") == 0) {
        int64_t t;
        if (parse_num(a[2], &t))
            return 2;
        rc = drv->lock(conn, a[1], t, &err);
    } else if (strcmp(op, "unlock") == 0) {
        rc = drv->unlock(conn, &err);
    } else if (strcmp(op, "up") == 0) {
        return step(st, op, CMIG_STEP_UP, a[1], a[2], a[3], a[4], a[5]);
    } else if (strcmp(op, "down") == 0) {
        return step(st, op, CMIG_STEP_DOWN, a[1], a[2], NULL, a[3], a[4]);
    } else if (strcmp(op, "baseline") == 0) {
        return step(st, op, CMIG_STEP_BASELINE, a[1], a[2], a[3], NULL, NULL);
    } else if (strcmp(op, "force-clean") == 0) {
        return step(st, op, CMIG_STEP_FORCE_CLEAN, a[1], a[2], NULL, NULL, NULL);
    } else if (strcmp(op, "force-remove") == 0) {
        return step(st, op, CMIG_STEP_FORCE_REMOVE, a[1], a[2], NULL, NULL, NULL);
    } else if (strcmp(op, "begin") == 0) {
        rc = drv->begin(conn, &err);
        if (!rc)
            st->outer = 1;
    } else if (strcmp(op, "commit") == 0) {
        st->outer = 0;
        rc = drv->commit(conn, &err);
    } else if (strcmp(op, "rollback") == 0) {
        st->outer = 0;
        rc = drv->rollback(conn, &err);
    } else if (strcmp(op, "legacy") == 0) {
        if (strcmp(a[1], "off") == 0) {
            st->keep_legacy = 0;
        } else {
            if (parse_num(a[1], &st->legacy_version))
                return 2;
            st->keep_legacy = 1;
        }
        return 0;
    } else if (strcmp(op, "record") == 0) {
        uint8_t zero[32] = {0};
        rc = drv->record_bundle(conn, a[1], a[2], zero, &err);
    } else if (strcmp(op, "sleep") == 0) {
        int64_t ms;
        if (parse_num(a[1], &ms) || ms < 0)
            return 2;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !got_signal)
            ;
        return 0;
    } else if (strcmp(op, "echo") == 0) {
        printf("%s\n", a[1]);
        return 0;
    }
    if (rc) {
        report(op, rc, &err, NULL);
        return 1;
    }
    printf("ok %s\n", op);
    return 0;
}

int main(int argc, char **argv)
{
    struct cmig_conn_opts o;
    struct cmig_err err;
    struct state st = {0, 0, -1};
    int i = 1, status = 0;
    memset(&o, 0, sizeof o);
    o.application_name = "drvtool";
    for (; i < argc && argv[i][0] == '-' && argv[i][1] && !argv[i][2]; i += 2) {
        int64_t *dst = NULL;
        if (i + 1 >= argc)
            return usage();
        switch (argv[i][1]) {
        case 'w':
            dst = &o.wait_ms;
            break;
        case 's':
            dst = &o.statement_timeout_ms;
            break;
        case 'l':
            dst = &o.lock_timeout_ms;
            break;
        case 'a':
            o.application_name = argv[i + 1];
            break;
        default:
            return usage();
        }
        if (dst && parse_num(argv[i + 1], dst))
            return usage();
    }
    if (argc - i < 2)
        return usage();
    const char *so = argv[i], *url = argv[i + 1];
    i += 2;
    for (int k = i; k < argc;) {
        int n = arity(argv[k]);
        if (n < 0 || argc - k - 1 < n) {
            fprintf(stderr, "drvtool: bad operation '%s'\n", argv[k]);
            return usage();
        }
        k += 1 + n;
    }
    if (sodium_init() < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);

    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "drvtool: %s\n", dlerror());
        return 2;
    }
    const char *base = strrchr(so, '/');
    base = base ? base + 1 : so;
    char sym[128];
    snprintf(sym, sizeof sym, "%s%.*s", CMIG_DRIVER_SYMBOL_PREFIX,
             (int)(strstr(base, ".so") ? strstr(base, ".so") - base : (long)strlen(base)), base);
    drv = dlsym(h, sym);
    if (!drv || drv->abi != CMIG_DRIVER_ABI) {
        fprintf(stderr, "drvtool: '%s' has no %s of ABI %d\n", so, sym, CMIG_DRIVER_ABI);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    o.url = url;
    o.log = log_to_stderr;
    o.interrupted = &got_signal;
    cmig_err_clear(&err);
    struct cmig_conn *c = NULL;
    int rc = drv->open(&c, &o, &err);
    if (rc) {
        report("open", rc, &err, NULL);
        dlclose(h);
        return 1;
    }
    conn = c;
    printf("ok open\n");
    while (i < argc) {
        int n = arity(argv[i]);
        int r = run_op(&st, argv + i);
        if (r == 2) {
            fprintf(stderr, "drvtool: bad arguments to '%s'\n", argv[i]);
            status = 2;
            break;
        }
        if (r)
            status = 1;
        i += 1 + n;
    }
    conn = NULL;
    drv->close(c);
    dlclose(h);
    return status;
}
