/*
 * cmd_sign.c - `cmig-bundle sign`: sign a bundle built with --unsigned.
 *
 * Signing is a claim about content, so the bundle's structure is verified
 * first (every file against its manifest), and the new signature is
 * verified after it is written: a signature that does not verify is
 * removed rather than left next to the bundle.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmig/build.h"
#include "cmig/bundle.h"

const char USAGE_SIGN[] =
    "usage: cmig-bundle sign BUNDLE --key SECRET_KEY_FILE [--signature FILE]\n"
    "\n"
    "Checks BUNDLE's contents against its manifest, then writes BUNDLE.minisig, a\n"
    "minisign signature whose trusted comment names the bundle, its version and\n"
    "its manifest's SHA-256. For release jobs that sign apart from the build.\n"
    "\n"
    "  -k, --key FILE        minisign secret key (env CMIG_SECRET_KEY_FILE, or the key\n"
    "                        text in CMIG_SECRET_KEY; password from CMIG_KEY_PASSWORD,\n"
    "                        CMIG_KEY_PASSWORD_FILE or the terminal)\n"
    "  -s, --signature FILE  where to write the signature (env CMIG_SIGNATURE;\n"
    "                        default BUNDLE.minisig)\n"
    "  -q, --quiet           print nothing but errors\n";

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"signature", required_argument, NULL, 's'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *key_file = NULL, *sig_arg = cli_env("CMIG_SIGNATURE");
    int c;
    while ((c = getopt_long(argc, argv, "k:s:qv", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_file = optarg;
            break;
        case 's':
            sig_arg = optarg;
            break;
        case 'q':
            cli_quiet = 1;
            break;
        case 'v':
            cli_verbose = 1;
            break;
        default:
            return cli_usage("sign", "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage("sign", "exactly one BUNDLE is required");
    const char *path = argv[optind];

    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_seckey *sk = NULL;
    struct cmig_bundle *b = NULL, *check = NULL;
    struct cmig_keyring ring = {0, NULL};
    char *sig_path = NULL;
    int rc;
    if (sig_arg)
        sig_path = strdup(sig_arg);
    else if (asprintf(&sig_path, "%s.minisig", path) < 0)
        sig_path = NULL;
    if (!sig_path) {
        rc = cmig_err_nomem(&err);
        goto out;
    }
    if ((rc = cli_load_seckey(&sk, key_file, &err)))
        goto out;
    struct cmig_open_opts unverified = {.flags = CMIG_OPEN_SKIP_SIGNATURE};
    if ((rc = cmig_bundle_open(&b, path, &unverified, &err)))
        goto out;
    const struct cmig_manifest *m = cmig_bundle_manifest(b);
    struct cmig_claim claim;
    cmig_claim_of(&claim, m, cmig_bundle_manifest_sha256(b));
    if ((rc = cmig_sign_file(path, sig_path, sk, &claim, &err)))
        goto out;
    struct cmig_pubkey pk;
    cmig_seckey_pubkey(sk, &pk);
    struct cmig_open_opts verified = {.keys = &ring, .sig_path = sig_path};
    if ((rc = cmig_keyring_add(&ring, &pk, &err)))
        goto out;
    if ((rc = cmig_bundle_open(&check, path, &verified, &err))) {
        unlink(sig_path);
        cmig_err_prefix(&err, "the new signature does not verify (removed)");
        goto out;
    }
    char id[17];
    cmig_keyid_hex(pk.id, id);
    cli_info("signed %s %s with key %s into '%s'", m->name, m->version.text, id, sig_path);
out:
    cmig_bundle_close(b);
    cmig_bundle_close(check);
    cmig_keyring_free(&ring);
    cmig_seckey_free(sk);
    free(sig_path);
    return rc ? cli_fail(&err) : EXIT_OK;
}
