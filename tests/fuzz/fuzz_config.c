/*
 * fuzz_config.c - libFuzzer target for cmig-run's options: flags parsed by
 * getopt_long and CMIG_* environment variables (runner/config.c), and the
 * duration parser they share.
 *
 * The input is a list of NUL-separated records. A record "CMIG_NAME=VALUE"
 * sets that variable; for CMIG_DATABASE_URL_FILE the value is the file's
 * content (an in-memory file; "-" names a file that does not exist). Any
 * other record is one argument after "cmig-run". Each run is a function of
 * its input alone: the environment a parse reads (CMIG_*, POSIXLY_CORRECT)
 * is emptied before and after, the variables are the input's own strings,
 * and the URL file is the same in-memory file every time. Properties:
 *   - a parse does not depend on an earlier one, even one that failed in
 *     the middle of "-qv"-style clustered flags, nor on POSIXLY_CORRECT;
 *   - every string the config holds points into an argument or at an
 *     environment value (nothing dangles), except the database URL, which
 *     is its own copy;
 *   - against the same arguments without the environment: a flag wins over
 *     its variable, a variable fills only what no flag set, switches are
 *     or-ed, a failure without the environment is one with it, and the
 *     environment can only add a failure that names its own option and
 *     quotes its value (as far as the message holds it);
 *   - the URL read from CMIG_DATABASE_URL_FILE is its content less the
 *     trailing newlines and blanks;
 *   - no message depends on the secrets: with CMIG_DATABASE_URL and the
 *     URL file's content replaced by others of the same length, different
 *     in every byte, a parse fails or succeeds alike, with the same
 *     message to the byte;
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

static const char missing_msg[] = "cannot read CMIG_DATABASE_URL_FILE '" MISSING_FILE "': ";

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

/* Whether msg is PREFIX then v then a quote, as the runner writes a bad
 * value, allowing for the cut at CMIG_ERR_MSG_MAX - 1 bytes that a long
 * value gets: then all of the message after PREFIX is the start of v. */
static int echoes(const char *msg, const char *prefix, const char *v)
{
    size_t m = strlen(msg), p = strlen(prefix), n = strlen(v);
    if (m < p || strncmp(msg, prefix, p) != 0)
        return 0;
    if (p + n < m)
        return strncmp(msg + p, v, n) == 0 && msg[p + n] == '\'';
    return m == CMIG_ERR_MSG_MAX - 1 && strncmp(msg + p, v, m - p) == 0;
}

/* ---- the environment -------------------------------------------------------- */

/* Everything a parse reads from outside its arguments: the CMIG_*
 * variables, and POSIXLY_CORRECT, which changes how glibc's getopt orders
 * the words it is given. */
static void clear_env(void)
{
    clear_cmig_env();
    REQUIRE(unsetenv("POSIXLY_CORRECT") == 0);
}

/* Whether record r sets variable name. */
static int sets(const char *r, const char *name)
{
    size_t n = strlen(name);
    return strncmp(r, name, n) == 0 && r[n] == '=';
}

static int url_file_is_missing(const char *r)
{
    return sets(r, "CMIG_DATABASE_URL_FILE") && strcmp(strchr(r, '=') + 1, "-") == 0;
}

/* The file that CMIG_DATABASE_URL_FILE names: one in-memory file for the
 * whole process, rewritten for each use, so that its path (which messages
 * quote) is the same in every parse, and nothing is left open or on disk
 * from one input to the next. */
static char url_file_var[64];

static void set_url_file(const char *content, size_t n)
{
    static int fd = -1;
    if (fd < 0) {
        char path[32];
        fd = fuzz_memfile("", 0, path, sizeof path);
        REQUIRE(fd >= 0);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(fd, content + done, n - done, (off_t)done);
        REQUIRE(w > 0);
        done += (size_t)w;
    }
    snprintf(url_file_var, sizeof url_file_var, "CMIG_DATABASE_URL_FILE=/proc/self/fd/%d", fd);
}

/* Copies of the records in which the URL secrets (the value of
 * CMIG_DATABASE_URL and the content of the URL file) are others of the same
 * length, different in every byte. NULL entries when out of memory. */
static void make_twins(char *const *rec, char **twin, int n)
{
    for (int i = 0; i < n; i++) {
        twin[i] = strdup(rec[i]);
        if (!twin[i] || !(sets(rec[i], "CMIG_DATABASE_URL") ||
                          (sets(rec[i], "CMIG_DATABASE_URL_FILE") && !url_file_is_missing(rec[i]))))
            continue;
        for (char *v = strchr(twin[i], '=') + 1; *v; v++)
            *v = *v == 'a' ? 'b' : 'a';
    }
}

/* Makes the environment exactly the records (later ones winning), and
 * nothing else a parse reads. They go in with putenv, not copied: glibc's
 * setenv keeps every NAME=VALUE it is ever given until the process ends,
 * so memory would grow with each new value, input after input. Returns the
 * content of the URL file, with its length in *len, or NULL when the last
 * CMIG_DATABASE_URL_FILE was "-" (a file that does not exist) or there is
 * none. */
static const char *set_env(char *const *rec, int n, size_t *len)
{
    const char *file = NULL;
    clear_env();
    for (int i = 0; i < n; i++) {
        if (!sets(rec[i], "CMIG_DATABASE_URL_FILE")) {
            REQUIRE(putenv(rec[i]) == 0);
            continue;
        }
        if (url_file_is_missing(rec[i])) {
            snprintf(url_file_var, sizeof url_file_var, "CMIG_DATABASE_URL_FILE=%s", MISSING_FILE);
            file = NULL;
        } else {
            /* The value runs to the end of the record: NULs cannot be in
             * it, so only the input's end is not a record's. */
            file = strchr(rec[i], '=') + 1;
            *len = strlen(file);
            set_url_file(file, *len);
        }
        REQUIRE(putenv(url_file_var) == 0);
    }
    return file;
}

/* ---- the target ------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a0[] = "cmig-run", posix[] = "POSIXLY_CORRECT=1";
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';

    char *args[MAX_RECORDS + 2] = {a0};
    int argc = 1;
    char *env_rec[MAX_RECORDS], *twin_rec[MAX_RECORDS];
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
     * clean start, and once more under POSIXLY_CORRECT, to the same
     * result. */
    static struct parsed bare, again, twin, full;
    clear_env();
    parse_poison();
    parse(&bare, argc, args);
    optind = 0; /* glibc: start the scan over, forgetting any cluster */
    parse(&again, argc, args);
    require_same(&bare, &again);
    release(&again);
    REQUIRE(putenv(posix) == 0);
    parse(&again, argc, args);
    require_same(&bare, &again);
    release(&again);
    REQUIRE(unsetenv("POSIXLY_CORRECT") == 0);
    if (bare.rc == 0)
        require_anchored(&bare.c, argc, args);
    else
        REQUIRE(bare.rc == bare.err.code && bare.err.code == CMIG_E_USAGE && bare.err.msg[0]);

    /* With it: first with other URL secrets of the same lengths, then with
     * the input's own. The two parses must end alike, to the byte of the
     * message: a message that quoted even one byte of the URL, or of the
     * URL file, would tell them apart. */
    size_t url_file_len = 0;
    make_twins(env_rec, twin_rec, n_env);
    for (int i = 0; i < n_env; i++)
        if (!twin_rec[i])
            goto out;
    set_env(twin_rec, n_env, &url_file_len);
    parse_poison();
    parse(&twin, argc, args);
    const char *url_file = set_env(env_rec, n_env, &url_file_len);
    parse_poison();
    parse(&full, argc, args);
    REQUIRE(twin.rc == full.rc && strcmp(twin.err.msg, full.err.msg) == 0);
    release(&twin);
    const char *env_url = env_value("CMIG_DATABASE_URL");
    int file_used = url_file && !env_url;

    if (bare.rc) {
        /* Arguments that fail alone fail with any environment. */
        REQUIRE(full.rc != 0);
        goto out;
    }
    if (full.rc) {
        /* The environment added the failure: a bad value of its own. */
        REQUIRE(full.rc == CMIG_E_USAGE);
        const char *msg = full.err.msg;
        int named = 0;
        for (int i = 0; i < 4; i++) {
            const char *v = env_value(duration_vars[i]);
            char want[64];
            snprintf(want, sizeof want, "%s: '", duration_opts[i]);
            named |= v && echoes(msg, want, v);
        }
        if (env_value("CMIG_LOG_FORMAT"))
            named |= echoes(msg, "--log-format: '", env_value("CMIG_LOG_FORMAT"));
        if (env_value("CMIG_DATABASE_URL_FILE") && !env_url && !bare.c.database_url)
            named |= url_file ? url_file_len > URL_FILE_MAX && strstr(msg, "is larger than") != NULL
                              : strncmp(msg, missing_msg, sizeof missing_msg - 1) == 0;
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
    /* The environment points into the records: empty it before they go. */
    clear_env();
    for (int i = 0; i < n_env; i++)
        free(twin_rec[i]);
    free(copy);
    return 0;
}
