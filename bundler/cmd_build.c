/*
 * cmd_build.c - `cmig-bundle build`: directory in, signed bundle out.
 *
 * The previous release given with --previous goes through the same
 * verification as any bundle (against the build key's public half and any
 * --pubkey) before its history is compared: an append-only check against
 * an unverified bundle would prove nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmig/build.h"
#include "cmig/bundle.h"

const char USAGE_BUILD[] =
    "usage: cmig-bundle build DIR --name NAME --version SEMVER --key SECRET_KEY_FILE\n"
    "                         [--previous OLD.cmig] [--source-revision REV] [--output FILE]\n"
    "                         [--unsigned] [--dir-format FORMAT] [--driver DRIVER]\n"
    "                         [--mongodb-transactions]\n"
    "\n"
    "Packs the migrations in DIR into NAME-VERSION.cmig and signs it into\n"
    "NAME-VERSION.cmig.minisig. The same DIR, VERSION and SOURCE_DATE_EPOCH always\n"
    "give a byte-identical bundle.\n"
    "\n"
    "  DIR                       migrations directory (env CMIG_MIGRATIONS_DIR)\n"
    "  -n, --name NAME           bundle name: A-Z a-z 0-9 . _ - (env CMIG_BUNDLE_NAME)\n"
    "  -V, --version SEMVER      bundle version, SemVer 2.0.0 (env CMIG_BUNDLE_VERSION)\n"
    "  -k, --key FILE            minisign secret key (env CMIG_SECRET_KEY_FILE, or the key\n"
    "                            text itself in CMIG_SECRET_KEY); password from\n"
    "                            CMIG_KEY_PASSWORD, CMIG_KEY_PASSWORD_FILE or the terminal\n"
    "  -p, --previous OLD.cmig   the previous release: refuse unless this one only appends\n"
    "                            to it (env CMIG_PREVIOUS); verified against the key's\n"
    "                            public half and any --pubkey\n"
    "  -P, --pubkey PUB          extra trusted key for --previous (repeatable; env\n"
    "                            CMIG_TRUSTED_KEYS, comma-separated)\n"
    "  -r, --source-revision REV recorded in the manifest, e.g. a git commit\n"
    "                            (env CMIG_SOURCE_REVISION)\n"
    "  -o, --output FILE         bundle path, or an existing directory to write into\n"
    "                            (env CMIG_OUTPUT; default NAME-VERSION.cmig)\n"
    "      --unsigned            write no signature (env CMIG_UNSIGNED=1); sign later with\n"
    "                            'cmig-bundle sign'\n"
    "  -F, --dir-format FORMAT   auto (default), golang-migrate, goose, dbmate, flyway\n"
    "                            (env CMIG_DIR_FORMAT)\n"
    "  -d, --driver DRIVER       postgres, sqlite or mongodb (env CMIG_DRIVER; default:\n"
    "                            mongodb for .json migrations, postgres for .sql)\n"
    "      --mongodb-transactions record MongoDB migrations as transactional: cmig-run\n"
    "                            runs each, with its history record, in one transaction\n"
    "                            (replica sets only; env CMIG_MONGODB_TRANSACTIONS=1)\n"
    "  -q, --quiet               print nothing but errors\n"
    "  -v, --verbose             say more\n"
    "\n"
    "SOURCE_DATE_EPOCH sets the creation time and every entry's mtime (default 0).\n";

struct build_ui {
    int tty;
    int last_pct;
};

static void on_warn(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warn("%s", msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct build_ui *ui = ctx;
    if (!ui->tty || cli_quiet || total == 0)
        return;
    int pct = (int)(done * 100 / total);
    if (pct == ui->last_pct)
        return;
    ui->last_pct = pct;
    char d[32], t[32];
    human_size(done, d, sizeof d);
    human_size(total, t, sizeof t);
    fprintf(stderr, "\rcmig-bundle: writing %3d%% (%s of %s)  ", pct, d, t);
    if (done == total)
        fputc('\n', stderr);
}

static int parse_epoch(int64_t *out, struct cmig_err *err)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    *out = 0;
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || s[0] == '-' || s[0] == '+' || s[0] == ' ')
        return cmig_err_set(err, CMIG_E_USAGE, "SOURCE_DATE_EPOCH '%s' is not a number of seconds",
                            s);
    *out = v;
    return 0;
}

int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"version", required_argument, NULL, 'V'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"previous", required_argument, NULL, 'p'},
                                         {"pubkey", required_argument, NULL, 'P'},
                                         {"source-revision", required_argument, NULL, 'r'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"unsigned", no_argument, NULL, 'U'},
                                         {"dir-format", required_argument, NULL, 'F'},
                                         {"driver", required_argument, NULL, 'd'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"mongodb-transactions", no_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    struct cmig_build_opts o;
    memset(&o, 0, sizeof o);
    const char *dir = cli_env("CMIG_MIGRATIONS_DIR");
    o.name = cli_env("CMIG_BUNDLE_NAME");
    o.version = cli_env("CMIG_BUNDLE_VERSION");
    o.source_revision = cli_env("CMIG_SOURCE_REVISION");
    o.driver = cli_env("CMIG_DRIVER");
    o.mongodb_transactions = cli_env_flag("CMIG_MONGODB_TRANSACTIONS");
    const char *key_file = NULL, *previous = cli_env("CMIG_PREVIOUS");
    const char *output = cli_env("CMIG_OUTPUT"), *dir_format = cli_env("CMIG_DIR_FORMAT");
    int unsigned_ = cli_env_flag("CMIG_UNSIGNED"), c;
    char **pubkeys = calloc((size_t)argc + 1, sizeof *pubkeys);
    int n_pubkeys = 0;
    if (!pubkeys)
        return cli_nomem();
    while ((c = getopt_long(argc, argv, "n:V:k:p:P:r:o:F:d:qv", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.name = optarg;
            break;
        case 'V':
            o.version = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'p':
            previous = optarg;
            break;
        case 'P':
            pubkeys[n_pubkeys++] = optarg;
            break;
        case 'r':
            o.source_revision = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'U':
            unsigned_ = 1;
            break;
        case 'F':
            dir_format = optarg;
            break;
        case 'd':
            o.driver = optarg;
            break;
        case 'T':
            o.mongodb_transactions = 1;
            break;
        case 'q':
            cli_quiet = 1;
            break;
        case 'v':
            cli_verbose = 1;
            break;
        default:
            free(pubkeys);
            return cli_usage("build", "bad option");
        }
    }
    if (optind < argc)
        dir = argv[optind++];
    int rc = EXIT_OK;
    if (optind < argc)
        rc = cli_usage("build", "unexpected argument '%s'", argv[optind]);
    else if (!dir)
        rc = cli_usage("build", "the migrations directory DIR is required");
    else if (!o.name)
        rc = cli_usage("build", "--name is required");
    else if (!o.version)
        rc = cli_usage("build", "--version is required");
    if (rc) {
        free(pubkeys);
        return rc;
    }
    o.dir = dir;
    o.dir_format = CMIG_DIR_AUTO;
    if (dir_format) {
        int f = cmig_dir_format_parse(dir_format);
        if (f < 0) {
            free(pubkeys);
            return cli_usage("build", "unknown --dir-format '%s'", dir_format);
        }
        o.dir_format = (enum cmig_dir_format)f;
    }

    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_seckey *sk = NULL;
    struct cmig_bundle *prev = NULL;
    struct cmig_keyring ring = {0, NULL};
    char *out_path = NULL, *sig_path = NULL;
    struct build_ui ui = {.tty = isatty(2), .last_pct = -1};
    struct cmig_build_result res;
    if ((rc = parse_epoch(&o.created_at, &err)))
        goto out;
    struct stat st;
    if (output && stat(output, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (asprintf(&out_path, "%s/%s-%s.cmig", output, o.name, o.version) < 0)
            out_path = NULL;
    } else if (output) {
        out_path = strdup(output);
    } else if (asprintf(&out_path, "%s-%s.cmig", o.name, o.version) < 0) {
        out_path = NULL;
    }
    if (!out_path) {
        rc = cmig_err_nomem(&err);
        goto out;
    }
    if (!unsigned_ && (rc = cli_load_seckey(&sk, key_file, &err)))
        goto out;
    if ((rc = cli_keyring(&ring, pubkeys, n_pubkeys, &err)))
        goto out;
    if (previous) {
        if (sk) {
            struct cmig_pubkey own;
            cmig_seckey_pubkey(sk, &own);
            if ((rc = cmig_keyring_add(&ring, &own, &err)))
                goto out;
        }
        if (ring.n == 0) {
            rc = cmig_err_set(&err, CMIG_E_USAGE,
                              "--previous needs a key to verify it: give --key or --pubkey");
            goto out;
        }
        struct cmig_open_opts oo = {.keys = &ring};
        if ((rc = cmig_bundle_open(&prev, previous, &oo, &err)))
            goto out;
        o.previous = cmig_bundle_manifest(prev);
    }
    o.output = out_path;
    o.key = sk;
    o.builder = "cmig-bundle " CMIG_VERSION;
    o.warn = on_warn;
    o.progress = on_progress;
    o.ctx = &ui;
    if ((rc = cmig_build(&o, &res, &err)))
        goto out;
    char size[32];
    human_size(res.bundle_bytes, size, sizeof size);
    if (sk)
        cli_info("wrote '%s' (%zu migrations, %s) and '%s.minisig'", out_path, res.migrations, size,
                 out_path);
    else
        cli_info("wrote unsigned '%s' (%zu migrations, %s)", out_path, res.migrations, size);
    if (cli_verbose) {
        char hex[65];
        cmig_hex32(res.manifest_sha256, hex);
        cli_info("manifest sha256 %s", hex);
    }
out:
    cmig_bundle_close(prev);
    cmig_keyring_free(&ring);
    cmig_seckey_free(sk);
    free(out_path);
    free(sig_path);
    free(pubkeys);
    if (rc) {
        if (ui.last_pct >= 0 && ui.tty)
            fputc('\n', stderr);
        return cli_fail(&err);
    }
    return EXIT_OK;
}
