/*
 * cmd_keygen.c - `cmig-bundle keygen`: a new minisign key pair.
 *
 * The secret key is written 0600 through a temp file and rename, and an
 * existing key is never overwritten unless --force says so: losing a
 * release key by accident is worse than an extra flag.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmig/build.h"

const char USAGE_KEYGEN[] =
    "usage: cmig-bundle keygen --output PREFIX [--no-password] [--force]\n"
    "\n"
    "Creates PREFIX.pub and PREFIX.key, a minisign key pair (Ed25519). The secret\n"
    "key is encrypted with a password (scrypt, as minisign does) unless\n"
    "--no-password is given; the password comes from CMIG_KEY_PASSWORD,\n"
    "CMIG_KEY_PASSWORD_FILE, or is asked for twice on the terminal.\n"
    "\n"
    "  -o, --output PREFIX   where to write the keys (env CMIG_KEY_OUTPUT)\n"
    "  -W, --no-password     do not encrypt the secret key (env CMIG_NO_PASSWORD=1)\n"
    "  -f, --force           overwrite existing key files\n"
    "  -q, --quiet           print nothing but errors\n";

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"no-password", no_argument, NULL, 'W'},
        {"force", no_argument, NULL, 'f'},        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},      {NULL, 0, NULL, 0}};
    const char *prefix = cli_env("CMIG_KEY_OUTPUT");
    int no_password = cli_env_flag("CMIG_NO_PASSWORD"), force = 0, c;
    while ((c = getopt_long(argc, argv, "o:Wfqv", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'W':
            no_password = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'q':
            cli_quiet = 1;
            break;
        case 'v':
            cli_verbose = 1;
            break;
        default:
            return cli_usage("keygen", "bad option");
        }
    }
    if (optind != argc)
        return cli_usage("keygen", "unexpected argument '%s'", argv[optind]);
    if (!prefix)
        return cli_usage("keygen", "--output PREFIX is required");

    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_seckey *sk = NULL;
    char *password = NULL, *sk_text = NULL, *pub_path = NULL, *key_path = NULL;
    size_t sk_len = 0;
    int rc = 0;
    if (asprintf(&pub_path, "%s.pub", prefix) < 0 || asprintf(&key_path, "%s.key", prefix) < 0) {
        rc = cmig_err_nomem(&err);
        goto out;
    }
    if (!force && (access(pub_path, F_OK) == 0 || access(key_path, F_OK) == 0)) {
        rc = cmig_err_set(&err, CMIG_E_USAGE, "'%s' or '%s' already exists (use --force)", pub_path,
                          key_path);
        goto out;
    }
    if (!no_password &&
        (rc = cli_password(&password, 1, "Password for the new secret key: ", &err)))
        goto out;
    if (!no_password && !password[0]) {
        rc = cmig_err_set(&err, CMIG_E_USAGE, "empty password (use --no-password for none)");
        goto out;
    }
    if ((rc = cmig_seckey_generate(&sk, &err)) ||
        (rc = cmig_seckey_format(sk, password, &sk_text, &sk_len, &err)))
        goto out;
    struct cmig_pubkey pk;
    cmig_seckey_pubkey(sk, &pk);
    char pub_text[512];
    size_t pub_len = cmig_pubkey_format(&pk, pub_text, sizeof pub_text);
    if ((rc = cmig_write_file_atomic(key_path, sk_text, sk_len, 0600, &err)) ||
        (rc = cmig_write_file_atomic(pub_path, pub_text, pub_len, 0644, &err)))
        goto out;
    char id[17];
    cmig_keyid_hex(pk.id, id);
    cli_info("wrote public key '%s' and %s secret key '%s' (key id %s)", pub_path,
             no_password ? "unencrypted" : "encrypted", key_path, id);
out:
    cmig_secret_free(password);
    cmig_secret_free(sk_text);
    cmig_seckey_free(sk);
    free(pub_path);
    free(key_path);
    return rc ? cli_fail(&err) : EXIT_OK;
}
