/*
 * main.c - cmig-run: verify a bundle, then plan and apply it.
 *
 * The command table maps exact verbs to handlers; `help CMD` and
 * `CMD --help` print the same text. main() owns every exit status; the
 * commands return one from the table in run.h.
 */
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__ /* defined by the headers above */
#include <malloc.h>
#endif

#include "config.h"
#include "log.h"
#include "run.h"

struct command {
    const char *name;
    int (*run)(struct run_config *cfg);
    const char *summary;
    const char *usage;
};

#define GLOBAL_OPTIONS                                                                             \
    "global options (each also an environment variable):\n"                                        \
    "  --bundle FILE            the bundle (CMIG_BUNDLE)\n"                                        \
    "  --signature FILE         its signature (CMIG_SIGNATURE; default BUNDLE.minisig)\n"          \
    "  --trusted-key KEY        a .pub file, a directory of .pub files or a base64 key;\n"         \
    "                           repeatable (CMIG_TRUSTED_KEYS, comma-separated)\n"                 \
    "  --database URL           postgres://..., postgresql://..., libpq key=value,\n"              \
    "                           sqlite:PATH, sqlite:///ABS/PATH, mongodb://... "                   \
    "(CMIG_DATABASE_URL, or\n"                                                                     \
    "                           CMIG_DATABASE_URL_FILE naming a file that holds it)\n"             \
    "  --wait DURATION          keep retrying the connection this long (CMIG_WAIT; default 0)\n"   \
    "  --lock-timeout DURATION  wait at most this long for the migration lock\n"                   \
    "                           (CMIG_LOCK_TIMEOUT; default 15m)\n"                                \
    "  --statement-timeout DURATION  database statement_timeout (CMIG_STATEMENT_TIMEOUT)\n"        \
    "  --db-lock-timeout DURATION    database lock_timeout (CMIG_DB_LOCK_TIMEOUT)\n"               \
    "  --single-transaction     apply all pending migrations in one transaction\n"                 \
    "                           (CMIG_SINGLE_TRANSACTION=1)\n"                                     \
    "  --strict                 an older bundle than the database is an error, not a no-op\n"      \
    "                           (CMIG_STRICT=1)\n"                                                 \
    "  --keep-golang-migrate    keep golang-migrate's schema_migrations up to date\n"              \
    "                           (CMIG_KEEP_GOLANG_MIGRATE=1)\n"                                    \
    "  --log-format text|json   (CMIG_LOG_FORMAT)\n"                                               \
    "  --termination-log FILE   failure summary file (CMIG_TERMINATION_LOG; default\n"             \
    "                           /dev/termination-log when it exists)\n"                            \
    "  -q, --quiet              warnings and errors only (CMIG_QUIET=1)\n"                         \
    "  -v, --verbose            debug events too (CMIG_VERBOSE=1)\n"                               \
    "  --insecure-skip-verify   do not check the signature; refused unless given twice or\n"       \
    "                           with CMIG_INSECURE_SKIP_VERIFY=i-understand\n"

static const struct command commands[] = {
    {"up", cmd_up, "apply pending migrations (the default command)",
     "usage: cmig-run [global options] up [--to VERSION]\n\n"
     "Verifies the bundle, then applies the migrations the database has not applied,\n"
     "in version order, each in one transaction with its history row (or statement by\n"
     "statement, marked dirty until done, when it cannot run in a transaction).\n"
     "With many replicas starting together exactly one applies; the others wait for\n"
     "the lock and then find nothing to do. An older bundle than the database's\n"
     "(an image rollback) does nothing and exits 0.\n\n"
     "  --to VERSION   stop after this migration version\n\n" GLOBAL_OPTIONS},
    {"plan", cmd_plan, "show what up would do; change nothing",
     "usage: cmig-run [global options] plan [--to VERSION] [--json] [--exit-code]\n\n"
     "Prints the migrations up would apply. Changes nothing.\n\n"
     "  --to VERSION   as for up\n"
     "  --json         machine-readable output\n"
     "  --exit-code    exit 10 when migrations are pending, 0 when none\n\n" GLOBAL_OPTIONS},
    {"status", cmd_status, "bundle vs database: applied, pending, dirty, drift",
     "usage: cmig-run [global options] status [--json]\n\n"
     "Shows every migration's state (applied, pending, dirty, changed), the bundle\n"
     "version the database recorded, and any problem up would refuse (exit 6 then).\n\n"
     "  --json         machine-readable output\n\n" GLOBAL_OPTIONS},
    {"verify", cmd_verify, "verify the bundle only; no database",
     "usage: cmig-run [global options] verify\n\n"
     "Checks the bundle's signature against the trusted keys and every archive entry\n"
     "against the manifest. Never connects to a database.\n\n" GLOBAL_OPTIONS},
    {"down", cmd_down, "revert migrations above VERSION (explicit only)",
     "usage: cmig-run [global options] down --to VERSION\n\n"
     "Runs the down migrations of every applied migration above VERSION, newest\n"
     "first. Refuses when one of them has no down file in the bundle, or changed.\n\n"
     "  --to VERSION   required; --to 0 reverts everything\n\n" GLOBAL_OPTIONS},
    {"force", cmd_force, "clear a dirty state after a manual repair",
     "usage: cmig-run [global options] force VERSION\n\n"
     "VERSION equal to the dirty migration: it was completed by hand and is recorded\n"
     "as applied. VERSION below it: it was undone by hand; it is recorded as not\n"
     "applied and the next up runs it again.\n\n" GLOBAL_OPTIONS},
    {"baseline", cmd_baseline, "record migrations <= VERSION as applied without running them",
     "usage: cmig-run [global options] baseline VERSION\n\n"
     "Adopts an existing database: records the bundle's migrations up to VERSION as\n"
     "applied, without running them. Only when the database has no cmig history for\n"
     "this bundle.\n\n" GLOBAL_OPTIONS},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cmig-run [global options] [COMMAND] [options]\n\n"
               "Verifies a signed migration bundle, then applies it to PostgreSQL, SQLite\n"
               "or MongoDB.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  cmig-run help COMMAND    help for one command\n"
               "  cmig-run --version       print the version\n\n" GLOBAL_OPTIONS
               "\nexit codes: 0 ok (also: nothing to do), 1 migration failed, 2 usage,\n"
               "  3 bundle refused, 4 database unreachable, 5 lock timeout,\n"
               "  6 dirty/drift/history conflict, 7 interrupted, 8 other error,\n"
               "  10 plan --exit-code: migrations pending\n");
}

/* glibc raises its mmap threshold to the size of the largest block freed
 * (up to 32 MiB) and keeps twice that in the heap before it trims: after
 * the manifest image is freed, every later megabyte would stay resident.
 * Fixed thresholds give freed memory back, which is what an
 * initContainer's memory limit sees. */
static void keep_memory_small(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
#endif
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s\n", RUNNER_VERSION);
            return RUN_OK;
        }
    }
    if (argc >= 2 && strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return RUN_OK;
        }
        const struct command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "cmig-run: error: unknown command '%s'\n", argv[2]);
            return RUN_USAGE;
        }
        fputs(c->usage, stdout);
        return RUN_OK;
    }
    struct run_config cfg;
    struct cmig_err err;
    cmig_err_clear(&err);
    int help = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = 1;
    int rc = config_parse(&cfg, argc, argv, &err);
    if (help) {
        const struct command *c = rc == 0 ? find(cfg.command) : NULL;
        if (c && argc > 2)
            fputs(c->usage, stdout);
        else
            usage(stdout);
        config_free(&cfg);
        return RUN_OK;
    }
    log_setup(cfg.json_logs, cfg.quiet ? LOG_WARN : cfg.verbose ? LOG_DEBUG : LOG_INFO);
    if (rc == CMIG_E_NOMEM) {
        /* Not the caller's mistake: no usage hint, and the exit of any
         * other error. */
        fprintf(stderr, "cmig-run: error: %s\n", err.msg);
        config_free(&cfg);
        return exit_for(rc);
    }
    if (rc) {
        fprintf(stderr, "cmig-run: error: %s\ntry 'cmig-run --help'\n", err.msg);
        config_free(&cfg);
        return RUN_USAGE;
    }
    const struct command *c = find(cfg.command);
    if (!c) {
        fprintf(stderr, "cmig-run: error: unknown command '%s'\ntry 'cmig-run --help'\n",
                cfg.command);
        config_free(&cfg);
        return RUN_USAGE;
    }
    keep_memory_small();
    signals_install();
    rc = c->run(&cfg);
    config_free(&cfg);
    return rc;
}
