/*
 * cmd_diff.c - `cmig-bundle diff`: what changed between two releases, and
 * whether the newer one only appends (the rule `build --previous` enforces,
 * computed by the same code).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cmig/build.h"
#include "cmig/bundle.h"

const char USAGE_DIFF[] =
    "usage: cmig-bundle diff OLD.cmig NEW.cmig [--json] [--pubkey PUB ...]\n"
    "\n"
    "Lists migrations added (+), removed (-) and changed (~) between two bundles,\n"
    "the version change, and whether NEW is an append-only successor of OLD.\n"
    "Exit 0 when the migrations are the same, 1 when they differ.\n"
    "\n"
    "  -j, --json         machine-readable output\n"
    "  -P, --pubkey PUB   verify both bundles against this key (repeatable; env\n"
    "                     CMIG_TRUSTED_KEYS); without, signatures are not checked\n";

struct diff_out {
    int json;
    int first;
};

static void on_diff(void *ctx, enum cmig_diff_kind kind, const struct cmig_migration *a,
                    const struct cmig_migration *b)
{
    struct diff_out *d = ctx;
    const struct cmig_migration *m = b ? b : a;
    char what[32] = "";
    if (kind == CMIG_DIFF_CHANGED)
        cmig_diff_what(a, b, what, sizeof what);
    if (d->json) {
        static const char *const kinds[] = {"added", "removed", "changed"};
        printf("%s{\"change\":\"%s\",\"version\":%lld,\"name\":", d->first ? "" : ",", kinds[kind],
               (long long)m->version);
        json_str(stdout, m->name);
        if (kind == CMIG_DIFF_CHANGED)
            printf(",\"what\":\"%s\"", what);
        putchar('}');
    } else {
        static const char marks[] = {'+', '-', '~'};
        printf("%c %lld %s", marks[kind], (long long)m->version, m->name);
        if (kind == CMIG_DIFF_CHANGED)
            printf(" (%s changed)", what);
        putchar('\n');
    }
    d->first = 0;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"pubkey", required_argument, NULL, 'P'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    char **pubkeys = calloc((size_t)argc + 1, sizeof *pubkeys);
    int n_pubkeys = 0, json = 0, c;
    if (!pubkeys)
        return cli_nomem();
    while ((c = getopt_long(argc, argv, "jP:qv", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'P':
            pubkeys[n_pubkeys++] = optarg;
            break;
        case 'q':
            cli_quiet = 1;
            break;
        case 'v':
            cli_verbose = 1;
            break;
        default:
            free(pubkeys);
            return cli_usage("diff", "bad option");
        }
    }
    if (optind + 2 != argc) {
        free(pubkeys);
        return cli_usage("diff", "OLD.cmig and NEW.cmig are required");
    }
    struct cmig_err err, append_err;
    cmig_err_clear(&err);
    cmig_err_clear(&append_err);
    struct cmig_keyring ring = {0, NULL};
    struct cmig_bundle *ob = NULL, *nb = NULL;
    int verified_old = 0, verified_new = 0;
    char signer[17];
    int rc = cli_keyring(&ring, pubkeys, n_pubkeys, &err);
    if (!rc)
        rc = cli_open_for_reading(&ob, argv[optind], NULL, &ring, &verified_old, signer, &err);
    if (!rc)
        rc = cli_open_for_reading(&nb, argv[optind + 1], NULL, &ring, &verified_new, signer, &err);
    size_t changes = 0;
    if (!rc) {
        const struct cmig_manifest *om = cmig_bundle_manifest(ob), *nm = cmig_bundle_manifest(nb);
        int append_ok = cmig_check_append_only(om, nm, &append_err) == 0;
        struct diff_out d = {.json = json, .first = 1};
        if (json) {
            fputs("{\"old\":{\"name\":", stdout);
            json_str(stdout, om->name);
            fputs(",\"version\":", stdout);
            json_str(stdout, om->version.text);
            fputs("},\"new\":{\"name\":", stdout);
            json_str(stdout, nm->name);
            fputs(",\"version\":", stdout);
            json_str(stdout, nm->version.text);
            printf("},\"verified\":%s,\"changes\":[",
                   verified_old && verified_new ? "true" : "false");
        } else {
            if (!(verified_old && verified_new))
                printf("note: signatures not verified (no --pubkey)\n");
            printf("version %s %s -> %s %s\n", om->name, om->version.text, nm->name,
                   nm->version.text);
        }
        changes = cmig_manifest_diff(om, nm, on_diff, &d);
        if (json) {
            printf("],\"append_only\":%s,\"append_only_problems\":", append_ok ? "true" : "false");
            if (append_ok)
                fputs("null", stdout);
            else
                json_str(stdout, append_err.msg);
            fputs("}\n", stdout);
        } else {
            if (changes == 0)
                printf("no migration changed\n");
            if (append_ok)
                printf("append-only: yes\n");
            else
                printf("append-only: no: %s\n", append_err.msg);
        }
    }
    cmig_bundle_close(ob);
    cmig_bundle_close(nb);
    cmig_keyring_free(&ring);
    free(pubkeys);
    if (rc)
        return cli_fail(&err);
    return changes ? EXIT_NOT_VERIFIED : EXIT_OK;
}
