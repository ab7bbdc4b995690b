/*
 * cmd_verify.c - `cmig-bundle verify`: the same check cmig-run makes
 * before it trusts a bundle, with no way around it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cmig/bundle.h"

const char USAGE_VERIFY[] =
    "usage: cmig-bundle verify BUNDLE --pubkey PUB [--pubkey PUB ...] [--signature FILE]\n"
    "\n"
    "Verifies BUNDLE's minisign signature against the trusted keys, then that the\n"
    "archive holds exactly the manifest's files with the manifest's sizes and\n"
    "hashes. Exit 0 when it verifies, 1 when it does not.\n"
    "\n"
    "  -P, --pubkey PUB      trusted key: a .pub file, a directory of .pub files or a\n"
    "                        base64 key string (repeatable; env CMIG_TRUSTED_KEYS,\n"
    "                        comma-separated)\n"
    "  -s, --signature FILE  signature file (env CMIG_SIGNATURE; default BUNDLE.minisig)\n"
    "  -q, --quiet           print nothing; the exit code says it all\n";

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"pubkey", required_argument, NULL, 'P'},
                                         {"signature", required_argument, NULL, 's'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *sig_path = cli_env("CMIG_SIGNATURE");
    char **pubkeys = calloc((size_t)argc + 1, sizeof *pubkeys);
    int n_pubkeys = 0, c;
    if (!pubkeys)
        return cli_nomem();
    while ((c = getopt_long(argc, argv, "P:s:qv", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            pubkeys[n_pubkeys++] = optarg;
            break;
        case 's':
            sig_path = optarg;
            break;
        case 'q':
            cli_quiet = 1;
            break;
        case 'v':
            cli_verbose = 1;
            break;
        default:
            free(pubkeys);
            return cli_usage("verify", "bad option");
        }
    }
    if (optind + 1 != argc) {
        free(pubkeys);
        return cli_usage("verify", "exactly one BUNDLE is required");
    }
    const char *path = argv[optind];
    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_keyring ring = {0, NULL};
    struct cmig_bundle *b = NULL;
    int rc = cli_keyring(&ring, pubkeys, n_pubkeys, &err);
    if (!rc && ring.n == 0)
        rc = cmig_err_set(&err, CMIG_E_USAGE,
                          "no trusted key: give --pubkey or set CMIG_TRUSTED_KEYS");
    if (!rc) {
        struct cmig_open_opts o = {.keys = &ring, .sig_path = sig_path};
        rc = cmig_bundle_open(&b, path, &o, &err);
    }
    if (!rc && !cli_quiet) {
        const struct cmig_manifest *m = cmig_bundle_manifest(b);
        char id[17];
        cmig_keyid_hex(cmig_bundle_signer(b)->id, id);
        printf("ok: '%s' is %s %s (%zu migration%s), signed by key %s\n", path, m->name,
               m->version.text, m->n, m->n == 1 ? "" : "s", id);
    }
    cmig_bundle_close(b);
    cmig_keyring_free(&ring);
    free(pubkeys);
    if (rc && cli_quiet)
        return cli_exit_code(err.code);
    return rc ? cli_fail(&err) : EXIT_OK;
}
