/*
 * cli.c - the pieces every cmig-bundle command shares.
 *
 * Secrets pass through here: key file text and passwords are only held in
 * sodium_malloc memory and wiped after use; nothing here ever prints them.
 */
#include "cli.h"

#include "cmig/bundle.h"
#include "cmig/sig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int cli_quiet;
int cli_verbose;

int cli_exit_code(int code)
{
    switch (code) {
    case CMIG_OK:
        return EXIT_OK;
    case CMIG_E_VERIFY:
        return EXIT_NOT_VERIFIED;
    case CMIG_E_USAGE:
        return EXIT_USAGE;
    case CMIG_E_INPUT:
        return EXIT_INPUT;
    case CMIG_E_HISTORY:
        return EXIT_HISTORY;
    case CMIG_E_KEY:
        return EXIT_KEY;
    default:
        return EXIT_SYSTEM;
    }
}

int cli_fail(const struct cmig_err *err)
{
    fprintf(stderr, "cmig-bundle: error: %s\n", err->msg[0] ? err->msg : "unknown error");
    return cli_exit_code(err->code);
}

int cli_nomem(void)
{
    fputs("cmig-bundle: error: out of memory\n", stderr);
    return EXIT_SYSTEM;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("cmig-bundle: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\ntry 'cmig-bundle %s --help'\n", cmd);
    else
        fputs("\ntry 'cmig-bundle --help'\n", stderr);
    return EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    if (cli_quiet)
        return;
    va_list ap;
    fputs("cmig-bundle: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_info(const char *fmt, ...)
{
    if (cli_quiet)
        return;
    va_list ap;
    fputs("cmig-bundle: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int cli_env_flag(const char *name)
{
    const char *v = cli_env(name);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* Reads one line from the terminal without echo, into sodium memory. */
static int read_tty_password(char **out, const char *prompt, struct cmig_err *err)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return cmig_err_set(err, CMIG_E_KEY,
                            "the key needs a password: set CMIG_KEY_PASSWORD or "
                            "CMIG_KEY_PASSWORD_FILE (no terminal to ask on)");
    struct termios old, quiet;
    int have_termios = tcgetattr(fd, &old) == 0;
    if (have_termios) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* A prompt that cannot be shown is not fatal. */
    }
    char line[1024];
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (n < sizeof line - 1)
            line[n++] = c;
    }
    line[n] = '\0';
    int rc = 0;
    *out = cmig_secret_dup(line, n);
    explicit_bzero(line, sizeof line);
    if (!*out)
        rc = cmig_err_nomem(err);
    if (have_termios)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* Cosmetic only. */
    }
    close(fd);
    return rc;
}

int cli_password(char **out, int confirm, const char *prompt, struct cmig_err *err)
{
    const char *v = cli_env("CMIG_KEY_PASSWORD");
    const char *file = cli_env("CMIG_KEY_PASSWORD_FILE");
    *out = NULL;
    if (v) {
        *out = cmig_secret_dup(v, strlen(v));
        return *out ? 0 : cmig_err_nomem(err);
    }
    if (file) {
        char *text = NULL;
        size_t len = 0;
        int rc = cmig_secret_read_file(&text, &len, file, err);
        if (rc)
            return rc;
        /* A trailing newline is how files end, not part of the password. */
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        *out = text;
        return 0;
    }
    char *first = NULL, *second = NULL;
    int rc = read_tty_password(&first, prompt, err);
    if (rc)
        return rc;
    if (confirm) {
        rc = read_tty_password(&second, "Password (again): ", err);
        if (!rc && strcmp(first, second) != 0)
            rc = cmig_err_set(err, CMIG_E_USAGE, "the passwords do not match");
        cmig_secret_free(second);
    }
    if (rc) {
        cmig_secret_free(first);
        return rc;
    }
    *out = first;
    return 0;
}

int cli_load_seckey(struct cmig_seckey **out, const char *key_file, struct cmig_err *err)
{
    char *text = NULL, *password = NULL;
    size_t len = 0;
    const char *what;
    int rc;
    *out = NULL;
    if (!key_file)
        key_file = cli_env("CMIG_SECRET_KEY_FILE");
    if (key_file) {
        what = key_file;
        if ((rc = cmig_secret_read_file(&text, &len, key_file, err)))
            return rc;
    } else if (cli_env("CMIG_SECRET_KEY")) {
        what = "CMIG_SECRET_KEY";
        const char *v = cli_env("CMIG_SECRET_KEY");
        len = strlen(v);
        if (len > CMIG_KEY_FILE_MAX)
            return cmig_err_set(err, CMIG_E_KEY, "CMIG_SECRET_KEY is too long");
        if (!(text = cmig_secret_dup(v, len)))
            return cmig_err_nomem(err);
    } else {
        return cmig_err_set(err, CMIG_E_USAGE,
                            "no secret key: give --key FILE, or set CMIG_SECRET_KEY_FILE or "
                            "CMIG_SECRET_KEY");
    }
    int enc = cmig_seckey_text_encrypted(text, len);
    if (enc < 0) {
        rc = cmig_err_set(err, CMIG_E_KEY, "'%s' is not a minisign secret key", what);
        goto out;
    }
    if (enc && (rc = cli_password(&password, 0, "Password for the secret key: ", err)))
        goto out;
    rc = cmig_seckey_parse(out, text, len, password, what, err);
out:
    cmig_secret_free(password);
    cmig_secret_free(text);
    return rc;
}

int cli_keyring(struct cmig_keyring *ring, char **specs, int n_specs, struct cmig_err *err)
{
    int rc = 0;
    for (int i = 0; i < n_specs && !rc; i++)
        rc = cmig_keyring_add_spec(ring, specs[i], err);
    if (!rc && n_specs == 0 && cli_env("CMIG_TRUSTED_KEYS"))
        rc = cmig_keyring_add_list(ring, cli_env("CMIG_TRUSTED_KEYS"), err);
    return rc;
}

void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void human_size(uint64_t n, char *buf, size_t cap)
{
    if (n < 1024)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024);
    else if (n < 1024ull * 1024 * 1024)
        snprintf(buf, cap, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(buf, cap, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
}

int cli_open_for_reading(struct cmig_bundle **out, const char *path, const char *sig_path,
                         const struct cmig_keyring *ring, int *verified, char signer_hex[17],
                         struct cmig_err *err)
{
    signer_hex[0] = '\0';
    *verified = 0;
    if (ring->n > 0) {
        struct cmig_open_opts o = {.keys = ring, .sig_path = sig_path};
        int rc = cmig_bundle_open(out, path, &o, err);
        if (!rc) {
            *verified = 1;
            cmig_keyid_hex(cmig_bundle_signer(*out)->id, signer_hex);
        }
        return rc;
    }
    /* Only to show which key the signature file names; nothing is trusted. */
    char *sp = NULL;
    if (sig_path)
        sp = strdup(sig_path);
    else if (asprintf(&sp, "%s.minisig", path) < 0)
        sp = NULL;
    struct cmig_sig *sig = malloc(sizeof *sig);
    if (sp && sig) {
        struct cmig_err ignored;
        cmig_err_clear(&ignored);
        if (access(sp, F_OK) == 0 && cmig_sig_load(sig, sp, &ignored) == 0)
            cmig_keyid_hex(sig->keyid, signer_hex);
    }
    free(sig);
    free(sp);
    struct cmig_open_opts o = {.flags = CMIG_OPEN_SKIP_SIGNATURE};
    return cmig_bundle_open(out, path, &o, err);
}
