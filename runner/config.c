/*
 * config.c - reading cmig-run's options from flags and the environment.
 *
 * A flag wins over its environment variable. The database URL is a secret:
 * it may come from CMIG_DATABASE_URL_FILE (a mounted Kubernetes Secret),
 * and it is wiped from memory when the run ends.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define URL_FILE_MAX 8192

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_flag(const char *name)
{
    const char *v = env(name);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* Durations are read by hand, not with strtod, which also takes "1e3",
 * "0x1p4", "nan" and "inf" (and, under another locale, "1,5"): only
 * DIGITS[.DIGITS] then an optional unit is a duration, and the result is
 * computed in integers. Digits past the ninth after the point are below a
 * nanosecond and ignored. */
#define DURATION_MAX_MS 9000000000000000ull /* about 285,000 years */

int parse_duration(const char *s, int64_t *ms)
{
    if (!s)
        return -1;
    const char *p = s;
    uint64_t whole = 0, frac = 0, scale = 1;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (whole > DURATION_MAX_MS / 10)
            return -1;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (scale < 1000000000u) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (digits == 0)
        return -1;
    uint64_t mult;
    if (*p == '\0' || strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "m") == 0)
        mult = 60000;
    else if (strcmp(p, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (whole > DURATION_MAX_MS / mult)
        return -1;
    uint64_t r = whole * mult + frac * mult / scale; /* frac * mult < 2^63 */
    if (r > DURATION_MAX_MS)
        return -1;
    *ms = (int64_t)r;
    return 0;
}

static int read_url_file(char **out, const char *path, struct cmig_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_USAGE, errno, "cannot read CMIG_DATABASE_URL_FILE '%s'",
                              path);
    char *buf = malloc(URL_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return cmig_err_nomem(err);
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, URL_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got > URL_FILE_MAX)
            break;
    }
    close(fd);
    if (got > URL_FILE_MAX) {
        explicit_bzero(buf, URL_FILE_MAX + 1);
        free(buf);
        return cmig_err_set(err, CMIG_E_USAGE, "'%s' is larger than %d bytes", path, URL_FILE_MAX);
    }
    /* Secrets are often written with a trailing newline. */
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
        got--;
    buf[got] = '\0';
    *out = buf;
    return 0;
}

static int duration_opt(const char *name, const char *v, int64_t *ms, struct cmig_err *err)
{
    if (parse_duration(v, ms))
        return cmig_err_set(err, CMIG_E_USAGE, "%s: '%s' is not a duration (e.g. 30s, 5m, 250ms)",
                            name, v);
    return 0;
}

enum {
    OPT_BUNDLE = 256,
    OPT_SIGNATURE,
    OPT_TRUSTED,
    OPT_DATABASE,
    OPT_WAIT,
    OPT_LOCK_TIMEOUT,
    OPT_STMT_TIMEOUT,
    OPT_DB_LOCK_TIMEOUT,
    OPT_SINGLE_TX,
    OPT_STRICT,
    OPT_LOG_FORMAT,
    OPT_TO,
    OPT_JSON,
    OPT_EXIT_CODE,
    OPT_SKIP_VERIFY,
    OPT_KEEP_GM,
    OPT_TERMINATION_LOG
};

int config_parse(struct run_config *c, int argc, char **argv, struct cmig_err *err)
{
    static const struct option opts[] = {
        {"bundle", required_argument, NULL, OPT_BUNDLE},
        {"signature", required_argument, NULL, OPT_SIGNATURE},
        {"trusted-key", required_argument, NULL, OPT_TRUSTED},
        {"database", required_argument, NULL, OPT_DATABASE},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},
        {"statement-timeout", required_argument, NULL, OPT_STMT_TIMEOUT},
        {"db-lock-timeout", required_argument, NULL, OPT_DB_LOCK_TIMEOUT},
        {"single-transaction", no_argument, NULL, OPT_SINGLE_TX},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"to", required_argument, NULL, OPT_TO},
        {"json", no_argument, NULL, OPT_JSON},
        {"exit-code", no_argument, NULL, OPT_EXIT_CODE},
        {"insecure-skip-verify", no_argument, NULL, OPT_SKIP_VERIFY},
        {"keep-golang-migrate", no_argument, NULL, OPT_KEEP_GM},
        {"termination-log", required_argument, NULL, OPT_TERMINATION_LOG},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    memset(c, 0, sizeof *c);
    c->bundle = env("CMIG_BUNDLE");
    c->signature = env("CMIG_SIGNATURE");
    c->trusted_env = env("CMIG_TRUSTED_KEYS");
    c->termination_log = env("CMIG_TERMINATION_LOG");
    c->single_tx = env_flag("CMIG_SINGLE_TRANSACTION");
    c->strict = env_flag("CMIG_STRICT");
    c->keep_golang_migrate = env_flag("CMIG_KEEP_GOLANG_MIGRATE");
    c->quiet = env_flag("CMIG_QUIET");
    c->verbose = env_flag("CMIG_VERBOSE");
    c->lock_timeout_ms = 15 * 60 * 1000;
    const char *log_format = env("CMIG_LOG_FORMAT");
    const char *wait = env("CMIG_WAIT"), *lock_timeout = env("CMIG_LOCK_TIMEOUT");
    const char *stmt_timeout = env("CMIG_STATEMENT_TIMEOUT");
    const char *db_lock_timeout = env("CMIG_DB_LOCK_TIMEOUT");
    const char *url = NULL;
    /* The words that are not options, in the order given: the command, its
     * argument and the first one too many. */
    const char *words[3] = {NULL, NULL, NULL};
    int n_words = 0;
    c->trusted = calloc((size_t)argc + 1, sizeof *c->trusted);
    if (!c->trusted)
        return cmig_err_nomem(err);

    int ch;
    opterr = 0;
    /* 0, not 1: glibc then also forgets where it was inside a cluster of
     * short flags ("-qv") when an earlier parse stopped in one, so a parse
     * never depends on the one before (tests and fuzzing parse many).
     * The leading '-' hands over every other word in place (as option 1)
     * instead of leaving the order to getopt: by default glibc moves them
     * behind the options, unless POSIXLY_CORRECT is set, and then stops at
     * the first, so that "up --wait 30s" would be refused. argv is never
     * reordered. */
    optind = 0;
    while ((ch = getopt_long(argc, argv, "-qv", opts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (n_words < 3)
                words[n_words++] = optarg;
            break;
        case OPT_BUNDLE:
            c->bundle = optarg;
            break;
        case OPT_SIGNATURE:
            c->signature = optarg;
            break;
        case OPT_TRUSTED:
            c->trusted[c->n_trusted++] = optarg;
            break;
        case OPT_DATABASE:
            url = optarg;
            break;
        case OPT_WAIT:
            wait = optarg;
            break;
        case OPT_LOCK_TIMEOUT:
            lock_timeout = optarg;
            break;
        case OPT_STMT_TIMEOUT:
            stmt_timeout = optarg;
            break;
        case OPT_DB_LOCK_TIMEOUT:
            db_lock_timeout = optarg;
            break;
        case OPT_SINGLE_TX:
            c->single_tx = 1;
            break;
        case OPT_STRICT:
            c->strict = 1;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_TO: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0)
                return cmig_err_set(err, CMIG_E_USAGE, "--to: '%s' is not a migration version",
                                    optarg);
            c->have_to = 1;
            c->to = v;
            break;
        }
        case OPT_JSON:
            c->json_out = 1;
            break;
        case OPT_EXIT_CODE:
            c->exit_code = 1;
            break;
        case OPT_SKIP_VERIFY:
            c->skip_verify++;
            break;
        case OPT_KEEP_GM:
            c->keep_golang_migrate = 1;
            break;
        case OPT_TERMINATION_LOG:
            c->termination_log = optarg;
            break;
        case 'q':
            c->quiet = 1;
            break;
        case 'v':
            c->verbose = 1;
            break;
        default:
            if (optopt && optopt < 256)
                return cmig_err_set(err, CMIG_E_USAGE, "unknown option '-%c'", optopt);
            return cmig_err_set(err, CMIG_E_USAGE, "unknown or incomplete option '%s'",
                                argv[optind - 1]);
        }
    }
    /* After "--", the rest are words whatever they look like. */
    for (; optind < argc && n_words < 3; optind++)
        words[n_words++] = argv[optind];
    int rc;
    if (wait && (rc = duration_opt("--wait", wait, &c->wait_ms, err)))
        return rc;
    if (lock_timeout &&
        (rc = duration_opt("--lock-timeout", lock_timeout, &c->lock_timeout_ms, err)))
        return rc;
    if (stmt_timeout &&
        (rc = duration_opt("--statement-timeout", stmt_timeout, &c->statement_timeout_ms, err)))
        return rc;
    if (db_lock_timeout &&
        (rc = duration_opt("--db-lock-timeout", db_lock_timeout, &c->db_lock_timeout_ms, err)))
        return rc;
    if (log_format) {
        if (strcmp(log_format, "json") == 0)
            c->json_logs = 1;
        else if (strcmp(log_format, "text") != 0)
            return cmig_err_set(err, CMIG_E_USAGE, "--log-format: '%s' is not text or json",
                                log_format);
    }
    c->command = n_words > 0 ? words[0] : "up";
    c->arg = words[1];
    if (n_words > 2)
        return cmig_err_set(err, CMIG_E_USAGE, "unexpected argument '%s'", words[2]);

    if (url) {
        c->database_url = strdup(url);
        if (!c->database_url)
            return cmig_err_nomem(err);
    } else if (env("CMIG_DATABASE_URL")) {
        c->database_url = strdup(env("CMIG_DATABASE_URL"));
        if (!c->database_url)
            return cmig_err_nomem(err);
    } else if (env("CMIG_DATABASE_URL_FILE")) {
        if ((rc = read_url_file(&c->database_url, env("CMIG_DATABASE_URL_FILE"), err)))
            return rc;
    }
    return 0;
}

void config_free(struct run_config *c)
{
    if (c->database_url) {
        explicit_bzero(c->database_url, strlen(c->database_url));
        free(c->database_url);
    }
    free(c->trusted);
    c->database_url = NULL;
    c->trusted = NULL;
}
