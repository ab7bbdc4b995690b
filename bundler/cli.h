/*
 * cli.h - what every cmig-bundle command shares: option values from flags
 * or the environment, error reporting and exit codes, secret key loading,
 * and output helpers.
 */
#ifndef CMIG_BUNDLER_CLI_H
#define CMIG_BUNDLER_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "cmig/err.h"
#include "cmig/keys.h"

/* Exit codes of cmig-bundle (docs/EXIT-CODES.md). */
enum {
    EXIT_OK = 0,
    EXIT_NOT_VERIFIED = 1, /* bundle/signature refused; diff: differences found */
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,   /* the migration directory or an input file is invalid */
    EXIT_HISTORY = 4, /* --previous: not an append-only release */
    EXIT_KEY = 5,     /* a key is malformed or its password is wrong */
    EXIT_SYSTEM = 6   /* I/O or another system error */
};

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* full --help text */
};

extern int cli_quiet;
extern int cli_verbose;

/* Prints "cmig-bundle: error: <msg>" and returns the exit code for err. */
int cli_fail(const struct cmig_err *err);
/* Says "out of memory" the same way, before an error record exists. */
int cli_nomem(void);
/* Prints a usage error (printf-style) plus a hint, returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_exit_code(int code);

/* The value of environment variable name when it is set and not empty. */
const char *cli_env(const char *name);
/* Whether an environment flag is set to 1/true/yes. */
int cli_env_flag(const char *name);

/* The secret key from --key FILE, CMIG_SECRET_KEY_FILE or CMIG_SECRET_KEY
 * (the key file's text), decrypted with CMIG_KEY_PASSWORD,
 * CMIG_KEY_PASSWORD_FILE or a prompt on the terminal. */
int cli_load_seckey(struct cmig_seckey **out, const char *key_file, struct cmig_err *err);

/* Reads a password: CMIG_KEY_PASSWORD, CMIG_KEY_PASSWORD_FILE, else the
 * terminal (twice when confirm). *out is sodium memory (cmig_secret_free).
 * Returns CMIG_E_KEY when there is no way to get one. */
int cli_password(char **out, int confirm, const char *prompt, struct cmig_err *err);

/* Trusted keys from --pubkey specs, else CMIG_TRUSTED_KEYS. */
int cli_keyring(struct cmig_keyring *ring, char **specs, int n_specs, struct cmig_err *err);

/* Writes s as a JSON string literal (quotes included). */
void json_str(FILE *f, const char *s);
/* "1.2 KiB" style sizes. */
void human_size(uint64_t n, char *buf, size_t cap);

int cmd_keygen(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_diff(int argc, char **argv);

extern const char USAGE_KEYGEN[], USAGE_BUILD[], USAGE_SIGN[], USAGE_VERIFY[], USAGE_INSPECT[],
    USAGE_DIFF[];

struct cmig_bundle;
/* Opens a bundle for reading: verified against the trusted keys when there
 * are any; otherwise with its structure checked but its signature not
 * (*verified = 0), for looking only. signer_hex receives the key id named
 * by the signature file ("" when there is none). */
int cli_open_for_reading(struct cmig_bundle **out, const char *path, const char *sig_path,
                         const struct cmig_keyring *ring, int *verified, char signer_hex[17],
                         struct cmig_err *err);
#endif
