/*
 * fuzz_config.c - libFuzzer target for cmig-run's options: flags parsed by
 * getopt_long and CMIG_* environment variables (runner/config.c), and the
 * duration parser they share.
 *
 * The input is a list of NUL-separated records. A record "CMIG_NAME=VALUE"
 * sets that variable; for CMIG_DATABASE_URL_FILE the value is the file's
 * content (an in-memory file; "-" names a file that does not exist). Any
 * other record is one argument after "cmig-run". Properties:
 *   - a parse does not depend on an earlier one, even one that failed in
 *     the middle of "-qv"-style clustered flags;
 *   - every string the config holds points into an argument or at an
 *     environment value (nothing dangles), except the database URL, which
 *     is its own copy;
 *   - against the same arguments without the environment: a flag wins over
 *     its variable, a variable fills only what no flag set, switches are
 *     or-ed, a failure without the environment is one with it, and the
 *     environment can only add a failure that names its own option;
 *   - the URL read from CMIG_DATABASE_URL_FILE is its content less the
 *     trailing newlines and blanks, and neither it nor CMIG_DATABASE_URL
 *     ever appears in an error message;
 *   - a duration is accepted only as documented (digits, an optional
 *     fraction, then ms, s, m or h, or nothing for seconds), and the
 *     units scale as they should.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

#define MAX_RECORDS 48
#define URL_FILE_MAX 8192 /* as runner/config.c */
#define MISSING_FILE "/nonexistent-cmig-fuzz/url"

static const char *const string_vars[] = {"CMIG_BUNDLE", "CMIG_SIGNATURE", "CMIG_TERMINATION_LOG"};
static const char *const switch_vars[] = {"CMIG_SINGLE_TRANSACTION", "CMIG_STRICT",
                                          "CMIG_KEEP_GOLANG_MIGRATE", "CMIG_QUIET", "CMIG_VERBOSE"};
static const char *const duration_vars[] = {"CMIG_WAIT", "CMIG_LOCK_TIMEOUT",
                                            "CMIG_STATEMENT_TIMEOUT", "CMIG_DB_LOCK_TIMEOUT"};
static const char *const duration_opts[] = {"--wait", "--lock-timeout", "--statement-timeout",
                                            "--db-lock-timeout"};

static const char *string_value(const struct run_config *c, int i)
{
    return i == 0 ? c->bundle : i == 1 ? c->signature : c->termination_log;
}

static int switch_value(const struct run_config *c, int i)
{
    const int v[] = {c->single_tx, c->strict, c->keep_golang_migrate, c->quiet, c->verbose};
    return v[i];
}

static int64_t duration_value(const struct run_config *c, int i)
{
    const int64_t v[] = {c->wait_ms, c->lock_timeout_ms, c->statement_timeout_ms,
                         c->db_lock_timeout_ms};
    return v[i];
}

/* getenv as config.c reads it: unset and empty are the same. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* Unsets every CMIG_* variable, one at a time since unsetenv rewrites
 * environ. The name is copied whole: a name cut to a fixed buffer would
 * never match, and the loop would never end. */
static void clear_cmig_env(void)
{
    for (;;) {
        char *name = NULL;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "CMIG_", 5) == 0) {
                name = strndup(*e, strcspn(*e, "="));
                break;
            }
        }
        if (!name)
            return;
        int rc = unsetenv(name);
        free(name);
        REQUIRE(rc == 0);
    }
}

/* ---- durations ------------------------------------------------------------ */

/* The documented spelling: [0-9]*[.]?[0-9]* with a digit, then a unit. */
static int documented_duration(const char *s)
{
    size_t digits = 0, i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (s[i] == '.')
        i++;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    const char *u = s + i;
    return digits > 0 && (!*u || strcmp(u, "ms") == 0 || strcmp(u, "s") == 0 ||
                          strcmp(u, "m") == 0 || strcmp(u, "h") == 0);
}

static void check_duration(const char *s)
{
    int64_t ms = -7, ms2 = -7;
    if (parse_duration(s, &ms) != 0) {
        REQUIRE(ms == -7); /* a refusal writes nothing */
        return;
    }
    REQUIRE(documented_duration(s));
    REQUIRE(ms >= 0 && ms <= (int64_t)9e15);
    size_t n = strlen(s);
    if (n == 0 || !(s[n - 1] == '.' || (s[n - 1] >= '0' && s[n - 1] <= '9')) || n > 200)
        return;
    /* A bare number is seconds; milliseconds are no more, minutes no less. */
    char buf[256];
    snprintf(buf, sizeof buf, "%ss", s);
    REQUIRE(parse_duration(buf, &ms2) == 0 && ms2 == ms);
    snprintf(buf, sizeof buf, "%sms", s);
    REQUIRE(parse_duration(buf, &ms2) == 0 && ms2 <= ms);
    snprintf(buf, sizeof buf, "%sm", s);
    if (parse_duration(buf, &ms2) == 0)
        REQUIRE(ms2 >= ms);
}

/* ---- one parse -------------------------------------------------------------- */

struct parsed {
    int rc;
    struct cmig_err err;
    struct run_config c;
};

static void parse(struct parsed *p, int argc, char *const *args)
{
    /* getopt_long permutes its argv: every parse gets a fresh array. */
    char *argv[MAX_RECORDS + 2];
    memcpy(argv, args, (size_t)(argc + 1) * sizeof *argv);
    cmig_err_clear(&p->err);
    p->rc = config_parse(&p->c, argc, argv, &p->err);
}

static void release(struct parsed *p)
{
    config_free(&p->c);
}

/* A parse that stops in the middle of a cluster of short flags: getopt
 * keeps its place inside "-qZv" unless told to start over. */
static void parse_poison(void)
{
    static char a0[] = "cmig-run", a1[] = "-qZv";
    char *args[] = {a0, a1, NULL};
    struct parsed p;
    parse(&p, 2, args);
    REQUIRE(p.rc == CMIG_E_USAGE);
    release(&p);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void require_same(const struct parsed *a, const struct parsed *b)
{
    REQUIRE(a->rc == b->rc && strcmp(a->err.msg, b->err.msg) == 0);
    if (a->rc)
        return;
    const struct run_config *x = &a->c, *y = &b->c;
    REQUIRE(same_str(x->command, y->command) && same_str(x->arg, y->arg));
    REQUIRE(same_str(x->bundle, y->bundle) && same_str(x->signature, y->signature));
    REQUIRE(same_str(x->trusted_env, y->trusted_env) && x->n_trusted == y->n_trusted);
    for (int i = 0; i < x->n_trusted; i++)
        REQUIRE(same_str(x->trusted[i], y->trusted[i]));
    REQUIRE(same_str(x->database_url, y->database_url));
    REQUIRE(same_str(x->termination_log, y->termination_log));
    REQUIRE(x->wait_ms == y->wait_ms && x->lock_timeout_ms == y->lock_timeout_ms &&
            x->statement_timeout_ms == y->statement_timeout_ms &&
            x->db_lock_timeout_ms == y->db_lock_timeout_ms);
    REQUIRE(x->have_to == y->have_to && x->to == y->to && x->single_tx == y->single_tx &&
            x->strict == y->strict && x->json_logs == y->json_logs && x->quiet == y->quiet &&
            x->verbose == y->verbose && x->json_out == y->json_out &&
            x->exit_code == y->exit_code && x->skip_verify == y->skip_verify &&
            x->keep_golang_migrate == y->keep_golang_migrate);
}

/* Whether p points into one of the arguments (their bytes or their end). */
static int in_args(const char *p, int argc, char *const *args)
{
    for (int i = 0; i < argc; i++)
        if (p >= args[i] && p <= args[i] + strlen(args[i]))
            return 1;
    return 0;
}

static void require_anchored(const struct run_config *c, int argc, char *const *args)
{
    for (int i = 0; i < 3; i++) {
        const char *v = string_value(c, i);
        REQUIRE(!v || in_args(v, argc, args) || v == getenv(string_vars[i]));
    }
    REQUIRE(!c->trusted_env || c->trusted_env == getenv("CMIG_TRUSTED_KEYS"));
    for (int i = 0; i < c->n_trusted; i++)
        REQUIRE(in_args(c->trusted[i], argc, args));
    REQUIRE(c->command && (strcmp(c->command, "up") == 0 || in_args(c->command, argc, args)));
    REQUIRE(!c->arg || in_args(c->arg, argc, args));
    REQUIRE(!c->database_url || !in_args(c->database_url, argc, args));
}

/* Whether s is in an argument or in a variable other than the URL ones. */
static int said_elsewhere(const char *s, int argc, char *const *args, char *const *env_rec,
                          int n_env)
{
    for (int i = 1; i < argc; i++)
        if (strstr(args[i], s))
            return 1;
    for (int i = 0; i < n_env; i++) {
        const char *eq = strchr(env_rec[i], '=');
        if (strncmp(env_rec[i], "CMIG_DATABASE_URL=", 18) != 0 &&
            strncmp(env_rec[i], "CMIG_DATABASE_URL_FILE=", 23) != 0 && eq && strstr(eq + 1, s))
            return 1;
    }
    return 0;
}

/* ---- the target ------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a0[] = "cmig-run";
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';

    char *args[MAX_RECORDS + 2] = {a0};
    int argc = 1;
    char *env_rec[MAX_RECORDS];
    int n_env = 0;
    for (char *r = copy; r <= copy + size; r += strlen(r) + 1) {
        check_duration(r);
        if (strncmp(r, "CMIG_", 5) == 0 && strchr(r, '=')) {
            check_duration(strchr(r, '=') + 1);
            if (n_env < MAX_RECORDS)
                env_rec[n_env++] = r;
        } else if (argc <= MAX_RECORDS) {
            args[argc++] = r;
        }
    }
    args[argc] = NULL;

    /* Without the environment: twice, after a failed parse and after a
     * clean start, to the same result. */
    static struct parsed bare, again, full;
    clear_cmig_env();
    parse_poison();
    parse(&bare, argc, args);
    optind = 0; /* glibc: start the scan over, forgetting any cluster */
    parse(&again, argc, args);
    require_same(&bare, &again);
    if (bare.rc == 0)
        require_anchored(&bare.c, argc, args);
    else
        REQUIRE(bare.rc == bare.err.code && bare.err.code == CMIG_E_USAGE && bare.err.msg[0]);
    release(&again);

    /* With it. */
    int url_fd = -1;
    const char *url_file = NULL; /* the file's content */
    size_t url_file_len = 0;
    for (int i = 0; i < n_env; i++) {
        char *eq = strchr(env_rec[i], '=');
        *eq = '\0';
        const char *name = env_rec[i], *value = eq + 1;
        if (strcmp(name, "CMIG_DATABASE_URL_FILE") == 0) {
            char path[64];
            if (url_fd >= 0)
                close(url_fd);
            url_fd = -1;
            url_file = NULL;
            if (strcmp(value, "-") == 0) {
                snprintf(path, sizeof path, "%s", MISSING_FILE);
            } else {
                /* The value runs to the end of the record: NULs cannot be
                 * in it, so only the input's end is not a record's. */
                url_file = value;
                url_file_len = strlen(value);
                url_fd = fuzz_memfile(value, url_file_len, path, sizeof path);
                if (url_fd < 0)
                    goto out;
            }
            setenv(name, path, 1);
        } else {
            setenv(name, value, 1);
        }
        *eq = '=';
    }
    parse_poison();
    parse(&full, argc, args);
    const char *env_url = env_value("CMIG_DATABASE_URL");
    int file_used = url_file && !env_url && env_value("CMIG_DATABASE_URL_FILE");

    /* Secrets never reach a message (unless some other input holds them). */
    if (full.rc) {
        if (env_url && strlen(env_url) >= 6 && !said_elsewhere(env_url, argc, args, env_rec, n_env))
            REQUIRE(!strstr(full.err.msg, env_url));
        if (file_used && url_file_len >= 6 && !said_elsewhere(url_file, argc, args, env_rec, n_env))
            REQUIRE(!strstr(full.err.msg, url_file));
    }
    if (bare.rc) {
        /* Arguments that fail alone fail with any environment. */
        REQUIRE(full.rc != 0);
        goto out;
    }
    if (full.rc) {
        /* The environment added the failure: a bad value of its own. */
        REQUIRE(full.rc == CMIG_E_USAGE);
        int named = 0;
        for (int i = 0; i < 4; i++) {
            const char *v = env_value(duration_vars[i]);
            char want[64];
            snprintf(want, sizeof want, "%s: '", duration_opts[i]);
            named |= v && strncmp(full.err.msg, want, strlen(want)) == 0 &&
                     strncmp(full.err.msg + strlen(want), v, strlen(v)) == 0;
        }
        named |= env_value("CMIG_LOG_FORMAT") && strncmp(full.err.msg, "--log-format: '", 15) == 0;
        named |= env_value("CMIG_DATABASE_URL_FILE") && !env_url && !bare.c.database_url &&
                 (strstr(full.err.msg, "CMIG_DATABASE_URL_FILE") ||
                  strstr(full.err.msg, "is larger than"));
        REQUIRE(named);
        goto out;
    }
    require_anchored(&full.c, argc, args);
    const struct run_config *b = &bare.c, *f = &full.c;
    /* Flags win; variables fill in. */
    for (int i = 0; i < 3; i++) {
        const char *bv = string_value(b, i), *fv = string_value(f, i);
        REQUIRE(bv ? same_str(fv, bv) : same_str(fv, env_value(string_vars[i])));
    }
    for (int i = 0; i < 5; i++)
        REQUIRE(switch_value(f, i) == (switch_value(b, i) || truthy(env_value(switch_vars[i]))));
    for (int i = 0; i < 4; i++) {
        const char *v = env_value(duration_vars[i]);
        int64_t ms;
        if (!v)
            REQUIRE(duration_value(f, i) == duration_value(b, i));
        else
            REQUIRE(duration_value(f, i) == duration_value(b, i) ||
                    (parse_duration(v, &ms) == 0 && duration_value(f, i) == ms));
    }
    if (!env_value("CMIG_LOG_FORMAT"))
        REQUIRE(f->json_logs == b->json_logs);
    else if (b->json_logs)
        REQUIRE(f->json_logs);
    REQUIRE(same_str(f->trusted_env, env_value("CMIG_TRUSTED_KEYS")));
    REQUIRE(f->n_trusted == b->n_trusted && same_str(f->command, b->command) &&
            same_str(f->arg, b->arg) && f->have_to == b->have_to && f->to == b->to &&
            f->json_out == b->json_out && f->exit_code == b->exit_code &&
            f->skip_verify == b->skip_verify);
    /* The URL: the flag, else CMIG_DATABASE_URL, else the file. */
    if (b->database_url) {
        REQUIRE(same_str(f->database_url, b->database_url));
    } else if (env_url) {
        REQUIRE(same_str(f->database_url, env_url));
    } else if (file_used) {
        size_t n = url_file_len;
        while (n > 0 &&
               (url_file[n - 1] == '\n' || url_file[n - 1] == '\r' || url_file[n - 1] == ' '))
            n--;
        REQUIRE(url_file_len <= URL_FILE_MAX);
        REQUIRE(f->database_url && strlen(f->database_url) == n &&
                memcmp(f->database_url, url_file, n) == 0);
    } else {
        REQUIRE(f->database_url == NULL);
    }
out:
    release(&bare);
    release(&full);
    memset(&full, 0, sizeof full);
    if (url_fd >= 0)
        close(url_fd);
    clear_cmig_env();
    free(copy);
    return 0;
}
