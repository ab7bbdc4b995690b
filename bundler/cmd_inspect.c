/*
 * cmd_inspect.c - `cmig-bundle inspect`: what a bundle holds, for people
 * (a table) and for programs (--json).
 *
 * Without a trusted key the bundle's structure is still checked, but the
 * output says in its first lines that the signature was not verified.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "cmig/bundle.h"

const char USAGE_INSPECT[] =
    "usage: cmig-bundle inspect BUNDLE [--json] [--pubkey PUB ...] [--signature FILE]\n"
    "\n"
    "Shows a bundle's name, version, creation time, source revision, driver,\n"
    "signer and every migration (version, name, transaction mode, sizes, hash).\n"
    "With --pubkey (or CMIG_TRUSTED_KEYS) the signature is verified first;\n"
    "without, the contents are checked but the signature is reported as not verified.\n"
    "\n"
    "  -j, --json            machine-readable output\n"
    "  -P, --pubkey PUB      trusted key (repeatable; env CMIG_TRUSTED_KEYS)\n"
    "  -s, --signature FILE  signature file (env CMIG_SIGNATURE; default BUNDLE.minisig)\n";

static void format_time(int64_t t, char *buf, size_t cap)
{
    if (t == 0) {
        snprintf(buf, cap, "not set (SOURCE_DATE_EPOCH was not given)");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
}

static void print_json_file(const struct cmig_file *f)
{
    if (!f->path) {
        fputs("null", stdout);
        return;
    }
    char hex[65];
    cmig_hex32(f->sha256, hex);
    fputs("{\"path\":", stdout);
    json_str(stdout, f->path);
    printf(",\"size\":%llu,\"sha256\":\"%s\",\"transaction\":\"%s\",\"transaction_reason\":",
           (unsigned long long)f->size, hex, cmig_txmode_name(f->tx));
    json_str(stdout, f->tx_reason);
    fputs(",\"source\":", stdout);
    json_str(stdout, f->source);
    printf(",\"source_line\":%u}", f->source_line);
}

static void print_json(const struct cmig_manifest *m, const uint8_t *msha, int verified,
                       const char *signer, uint64_t size)
{
    char hex[65];
    cmig_hex32(msha, hex);
    fputs("{\"name\":", stdout);
    json_str(stdout, m->name);
    fputs(",\"version\":", stdout);
    json_str(stdout, m->version.text);
    printf(",\"format_version\":%d,\"created_at\":%lld,\"source_revision\":", m->format_version,
           (long long)m->created_at);
    json_str(stdout, m->source_revision);
    fputs(",\"builder\":", stdout);
    json_str(stdout, m->builder);
    printf(",\"driver\":\"%s\",\"dir_format\":\"%s\",\"manifest_sha256\":\"%s\","
           "\"bundle_size\":%llu,\"signature\":{\"verified\":%s,\"key_id\":",
           m->driver, m->dir_format, hex, (unsigned long long)size, verified ? "true" : "false");
    if (signer[0])
        printf("\"%s\"}", signer);
    else
        fputs("null}", stdout);
    fputs(",\"migrations\":[", stdout);
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        printf("%s{\"version\":%lld,\"name\":", i ? "," : "", (long long)mg->version);
        json_str(stdout, mg->name);
        fputs(",\"up\":", stdout);
        print_json_file(&mg->up);
        fputs(",\"down\":", stdout);
        print_json_file(&mg->down);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

static void print_table(const struct cmig_manifest *m, const uint8_t *msha, int verified,
                        const char *signer, uint64_t size)
{
    char hex[65], when[64], sz[32];
    cmig_hex32(msha, hex);
    format_time(m->created_at, when, sizeof when);
    human_size(size, sz, sizeof sz);
    printf("bundle     %s %s\n", m->name, m->version.text);
    if (verified)
        printf("signature  verified, key %s\n", signer);
    else if (signer[0])
        printf("signature  NOT VERIFIED (no trusted key given); the signature file names key "
               "%s\n",
               signer);
    else
        printf("signature  NONE (unsigned bundle)\n");
    printf("created    %s\n", when);
    printf("revision   %s\n", m->source_revision[0] ? m->source_revision : "-");
    printf("builder    %s\n", m->builder);
    printf("driver     %s\n", m->driver);
    printf("layout     %s\n", m->dir_format);
    printf("format     %d\n", m->format_version);
    printf("manifest   sha256:%s\n", hex);
    printf("size       %s\n", sz);
    printf("migrations %zu\n\n", m->n);
    if (m->n == 0)
        return;
    printf("%-16s %-12s %-9s %-9s %-12s %s\n", "VERSION", "TX", "UP", "DOWN", "SHA256(UP)", "NAME");
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        char up[32], down[32], h[65];
        human_size(mg->up.size, up, sizeof up);
        if (mg->down.path)
            human_size(mg->down.size, down, sizeof down);
        else
            snprintf(down, sizeof down, "-");
        cmig_hex32(mg->up.sha256, h);
        h[12] = '\0';
        printf("%-16lld %-12s %-9s %-9s %-12s %s", (long long)mg->version,
               cmig_txmode_name(mg->up.tx), up, down, h, mg->name);
        if (mg->up.tx == CMIG_TX_NONE && mg->up.tx_reason[0])
            printf("  (%s)", mg->up.tx_reason);
        putchar('\n');
    }
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"pubkey", required_argument, NULL, 'P'},
                                         {"signature", required_argument, NULL, 's'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *sig_path = cli_env("CMIG_SIGNATURE");
    char **pubkeys = calloc((size_t)argc + 1, sizeof *pubkeys);
    int n_pubkeys = 0, json = 0, c;
    if (!pubkeys)
        return cli_nomem();
    while ((c = getopt_long(argc, argv, "jP:s:qv", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
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
            return cli_usage("inspect", "bad option");
        }
    }
    if (optind + 1 != argc) {
        free(pubkeys);
        return cli_usage("inspect", "exactly one BUNDLE is required");
    }
    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_keyring ring = {0, NULL};
    struct cmig_bundle *b = NULL;
    int verified = 0;
    char signer[17];
    int rc = cli_keyring(&ring, pubkeys, n_pubkeys, &err);
    if (!rc)
        rc = cli_open_for_reading(&b, argv[optind], sig_path, &ring, &verified, signer, &err);
    if (!rc) {
        const struct cmig_manifest *m = cmig_bundle_manifest(b);
        if (json)
            print_json(m, cmig_bundle_manifest_sha256(b), verified, signer, cmig_bundle_size(b));
        else
            print_table(m, cmig_bundle_manifest_sha256(b), verified, signer, cmig_bundle_size(b));
    }
    cmig_bundle_close(b);
    cmig_keyring_free(&ring);
    free(pubkeys);
    return rc ? cli_fail(&err) : EXIT_OK;
}
