/*
 * config.h - cmig-run's settings: every option a flag and an environment
 * variable, secrets also from a file (_FILE) as Kubernetes mounts them.
 */
#ifndef CMIG_RUNNER_CONFIG_H
#define CMIG_RUNNER_CONFIG_H

#include <stdint.h>

#include "cmig/err.h"

struct run_config {
    const char *command;   /* "up" by default */
    const char *arg;       /* VERSION for force / baseline */
    const char *bundle;    /* --bundle, CMIG_BUNDLE */
    const char *signature; /* --signature, CMIG_SIGNATURE */
    const char **trusted;  /* --trusted-key values */
    int n_trusted;
    const char *trusted_env;      /* CMIG_TRUSTED_KEYS */
    char *database_url;           /* --database, CMIG_DATABASE_URL(_FILE); secret */
    int64_t wait_ms;              /* --wait */
    int64_t lock_timeout_ms;      /* --lock-timeout */
    int64_t statement_timeout_ms; /* --statement-timeout */
    int64_t db_lock_timeout_ms;   /* --db-lock-timeout: PostgreSQL lock_timeout */
    int have_to;                  /* --to given */
    int64_t to;                   /* --to VERSION */
    int single_tx;                /* --single-transaction */
    int strict;                   /* --strict */
    int json_logs;                /* --log-format json */
    int quiet, verbose;
    int json_out;                /* --json (status, plan) */
    int exit_code;               /* --exit-code (plan) */
    int skip_verify;             /* --insecure-skip-verify given this many times */
    int keep_golang_migrate;     /* --keep-golang-migrate */
    const char *termination_log; /* CMIG_TERMINATION_LOG */
};

/* Fills c from argv and the environment. Returns 0, or CMIG_E_USAGE with a
 * message in err. --help / --version are handled by the caller first. */
int config_parse(struct run_config *c, int argc, char **argv, struct cmig_err *err);
void config_free(struct run_config *c);

/* "30s", "5m", "1h", "250ms", "1.5s", or a plain number of seconds:
 * DIGITS[.DIGITS] and an optional unit, nothing else (no sign, exponent,
 * hex, "inf" or "nan"). Returns 0, or -1 without writing *ms. */
int parse_duration(const char *s, int64_t *ms);

#endif
