/*
 * test_bundle.c - unit tests for the one verification path
 * (format/bundle_open.c) through the library, where a test can pass its
 * own limits.
 *
 * Bundles come from cmig_build (over examples/migrations) or, when they
 * must be hostile, from a small writer here that builds the archive with
 * libarchive and signs it with a real key, so that the refusal can only
 * come from the check under test. Every cap is tried at its boundary: the
 * limit itself passes, one less refuses. The command-line suites
 * (tests/cli/hostile.sh, tests/cli/tamper.sh) cover the rest.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cmig/build.h"
#include "cmig/bundle.h"
#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"
#include "cmig/sig.h"
#include "harness.h"

static char tmpdir[256];
static char examples[512];
static struct cmig_seckey *key1, *key2;
static struct cmig_pubkey pub1, pub2;
static struct cmig_keyring ring1, ring2, ring_both;
static char signed_path[600];   /* examples, signed with key1 */
static char unsigned_path[600]; /* examples, no signature */

static void die(const char *what, const struct cmig_err *err)
{
    printf("# setup failed: %s: %s\n", what, err ? err->msg : "");
    exit(2);
}

static void tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int rc = in && out ? 0 : -1;
    char buf[8192];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

static int build(const char *out, const struct cmig_seckey *k, const char *version,
                 struct cmig_err *err)
{
    struct cmig_build_opts o = {.dir = examples,
                                .name = "app",
                                .version = version,
                                .source_revision = "abc123",
                                .created_at = 1700000000,
                                .output = out,
                                .key = k,
                                .builder = "test"};
    struct cmig_build_result res;
    cmig_err_clear(err);
    return cmig_build(&o, &res, err);
}

/* Opens path with these keys, flags and limits; returns the code. */
static int open_with(struct cmig_bundle **b, const char *path, const struct cmig_keyring *ring,
                     unsigned flags, const struct cmig_limits *lim, struct cmig_err *err)
{
    struct cmig_open_opts o = {.keys = ring, .flags = flags, .limits = lim};
    cmig_err_clear(err);
    *b = NULL;
    int rc = cmig_bundle_open(b, path, &o, err);
    if (rc && *b) {
        printf("#   a refused open handed out a bundle\n");
        cmig_bundle_close(*b);
        *b = NULL;
        return -1;
    }
    return rc;
}

/* Opens and closes; returns the code. */
static int try_open(const char *path, const struct cmig_keyring *ring, unsigned flags,
                    const struct cmig_limits *lim, struct cmig_err *err)
{
    struct cmig_bundle *b = NULL;
    int rc = open_with(&b, path, ring, flags, lim, err);
    cmig_bundle_close(b);
    return rc;
}

/* ---- a small writer of hostile (but signed) bundles --------------------- */

struct hentry {
    const char *name;
    const char *data;
};

static void add_file(struct cmig_manifest *m, int64_t version, const char *name, const char *path,
                     const char *data)
{
    struct cmig_migration *mg = &m->migrations[m->n++];
    memset(mg, 0, sizeof *mg);
    mg->version = version;
    mg->name = strdup(name);
    mg->up.path = strdup(path);
    mg->up.size = strlen(data);
    crypto_hash_sha256(mg->up.sha256, (const uint8_t *)data, strlen(data));
    mg->up.tx_reason = strdup("");
    mg->up.source = strdup(path);
}

/* A manifest listing two files, 1.sql and 2.sql, with this content. */
static struct cmig_manifest *two_files(void)
{
    struct cmig_err err;
    struct cmig_manifest *m = calloc(1, sizeof *m);
    if (!m || !(m->migrations = calloc(2, sizeof *m->migrations)))
        die("calloc", NULL);
    m->format_version = CMIG_FORMAT_VERSION;
    m->name = strdup("app");
    m->source_revision = strdup("");
    m->builder = strdup("test");
    m->driver = strdup("sqlite");
    m->dir_format = strdup("golang-migrate");
    cmig_err_clear(&err);
    if (cmig_semver_parse(&m->version, "1.0.0", 5, &err))
        die("semver", &err);
    add_file(m, 1, "one", "1.sql", "CREATE TABLE one (x);\n");
    add_file(m, 2, "two", "2.sql", "CREATE TABLE two (x);\n");
    return m;
}

/* Writes path (ustar + gzip): manifest.db first, then entries; signs it
 * with key1 and a trusted comment naming the real manifest hash. */
static int write_hostile(const char *path, const struct cmig_manifest *m, const struct hentry *ents,
                         size_t n)
{
    struct cmig_err err;
    uint8_t *img = NULL, sha[32], prehash[CMIG_PREHASH_BYTES];
    size_t img_len = 0;
    int rc = -1;
    char *sig = NULL, sig_path[700], tc[CMIG_TRUSTED_COMMENT_MAX + 1];
    struct cmig_claim claim;
    size_t sig_len = 0;
    struct archive *a = archive_write_new();
    cmig_err_clear(&err);
    if (!a || cmig_manifest_serialize(m, &img, &img_len, &err))
        goto out;
    if (archive_write_set_format_ustar(a) || archive_write_add_filter_gzip(a) ||
        archive_write_open_filename(a, path))
        goto out;
    for (size_t i = 0; i <= n; i++) {
        const char *name = i ? ents[i - 1].name : CMIG_MANIFEST_NAME;
        const void *data = i ? (const void *)ents[i - 1].data : img;
        size_t len = i ? strlen(ents[i - 1].data) : img_len;
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)len);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK || archive_write_data(a, data, len) != (la_ssize_t)len)
            goto out;
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        goto out;
    crypto_hash_sha256(sha, img, img_len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    int r = cmig_prehash_fd(fd, UINT64_MAX, prehash, NULL, path, &err);
    close(fd);
    if (r || (cmig_claim_of(&claim, m, sha), cmig_trusted_comment_format(tc, sizeof tc, &claim)) ||
        cmig_sig_create(key1, prehash, NULL, tc, &sig, &sig_len, &err))
        goto out;
    snprintf(sig_path, sizeof sig_path, "%s.minisig", path);
    rc = cmig_write_file_atomic(sig_path, sig, sig_len, 0644, &err);
out:
    if (rc)
        printf("#   cannot write '%s': %s %s\n", path, err.msg,
               a && archive_error_string(a) ? archive_error_string(a) : "");
    if (a)
        archive_write_free(a);
    free(img);
    free(sig);
    return rc;
}

/* ---- each_file callbacks ----------------------------------------------- */

struct collect {
    int calls;
    int stop_at; /* return 7 on this call (1-based); 0: never */
    int bad;     /* content not what the source file holds */
    int downs;
    int64_t last_version;
    int order_bad;
};

static int collect_fn(void *ctx, const struct cmig_migration *m, int is_down, const uint8_t *data,
                      size_t len, struct cmig_err *err)
{
    (void)err;
    struct collect *c = ctx;
    const struct cmig_file *f = is_down ? &m->down : &m->up;
    c->calls++;
    c->downs += is_down;
    if (m->version < c->last_version)
        c->order_bad++;
    c->last_version = m->version;
    /* What fn gets is what the manifest promised... */
    uint8_t digest[32];
    crypto_hash_sha256(digest, data, len);
    if (len != f->size || memcmp(digest, f->sha256, 32) != 0)
        c->bad++;
    /* ... and, byte for byte, the source file it was built from. */
    char path[700];
    snprintf(path, sizeof path, "%s/%s", examples, f->source);
    FILE *in = fopen(path, "rb");
    uint8_t *want = malloc(len + 1);
    size_t got = in && want ? fread(want, 1, len + 1, in) : 0;
    if (!in || !want || got != len || memcmp(want, data, len) != 0)
        c->bad++;
    if (in)
        fclose(in);
    free(want);
    return c->stop_at && c->calls == c->stop_at ? 7 : 0;
}

static int only_downs(void *ctx, const struct cmig_migration *m, int is_down)
{
    (void)ctx;
    (void)m;
    return is_down;
}

/* ---- tests: a normal round trip ------------------------------------------ */

TEST(roundtrip_signed)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, signed_path, &ring1, 0, NULL, &err), 0);
    CHECK_STR(err.msg, "");
    if (!b)
        return;
    const struct cmig_manifest *m = cmig_bundle_manifest(b);
    CHECK_STR(m->name, "app");
    CHECK_STR(m->version.text, "1.2.3");
    CHECK_STR(m->source_revision, "abc123");
    CHECK_EQ_INT(m->created_at, 1700000000);
    CHECK_EQ_INT(m->n, 4);
    CHECK(cmig_bundle_signer(b) && memcmp(cmig_bundle_signer(b)->id, pub1.id, 8) == 0);
    char hex[65], want[200];
    cmig_hex32(cmig_bundle_manifest_sha256(b), hex);
    snprintf(want, sizeof want,
             "cmig-bundle name=app version=1.2.3 manifest-sha256=%s migrations=4 last=4 format=1",
             hex);
    CHECK_STR(cmig_bundle_trusted_comment(b), want);
    CHECK_EQ_INT(cmig_bundle_size(b), file_size(signed_path));

    struct collect c = {0};
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, collect_fn, &c, &err), 0);
    CHECK_EQ_INT(c.calls, 8);
    CHECK_EQ_INT(c.downs, 4);
    CHECK_EQ_INT(c.bad, 0);
    CHECK_EQ_INT(c.order_bad, 0);

    /* A second walk gives the same again. */
    struct collect again = {0};
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, collect_fn, &again, &err), 0);
    CHECK_EQ_INT(again.calls, 8);
    CHECK_EQ_INT(again.bad, 0);
    cmig_bundle_close(b);
}

TEST(each_file_selects_and_stops)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, signed_path, &ring1, 0, NULL, &err), 0);
    if (!b)
        return;
    struct collect c = {0};
    CHECK_EQ_INT(cmig_bundle_each_file(b, only_downs, collect_fn, &c, &err), 0);
    CHECK_EQ_INT(c.calls, 4);
    CHECK_EQ_INT(c.downs, 4);
    CHECK_EQ_INT(c.bad, 0);

    struct collect s = {.stop_at = 3};
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, collect_fn, &s, &err), 7);
    CHECK_EQ_INT(s.calls, 3);
    cmig_bundle_close(b);
}

TEST(key_rotation)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, signed_path, &ring_both, 0, NULL, &err), 0);
    CHECK(b && memcmp(cmig_bundle_signer(b)->id, pub1.id, 8) == 0 &&
          memcmp(cmig_bundle_signer(b)->pk, pub1.pk, 32) == 0);
    cmig_bundle_close(b);
}

/* ---- tests: signatures --------------------------------------------------- */

TEST(wrong_key_refused)
{
    struct cmig_err err;
    char id[17], want[128];
    cmig_keyid_hex(pub1.id, id);
    snprintf(want, sizeof want, "signed by key %s, which is not among the 1 trusted key(s)", id);
    CHECK_EQ_INT(try_open(signed_path, &ring2, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, "bundle '");
    /* Same key id, other public key: the signature itself fails. */
    struct cmig_pubkey forged = pub2;
    memcpy(forged.id, pub1.id, 8);
    struct cmig_keyring ring = {0, NULL};
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_keyring_add(&ring, &forged, &err), 0);
    CHECK_EQ_INT(try_open(signed_path, &ring, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "signature verification failed");
    cmig_keyring_free(&ring);
}

TEST(no_keys_is_usage_error)
{
    struct cmig_err err;
    struct cmig_keyring empty = {0, NULL};
    CHECK_EQ_INT(try_open(signed_path, NULL, 0, NULL, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "no trusted public key given");
    CHECK_EQ_INT(try_open(signed_path, &empty, 0, NULL, &err), CMIG_E_USAGE);
}

TEST(unsigned_refused_unless_skipped)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    char sig[700];
    snprintf(sig, sizeof sig, "%s.minisig", unsigned_path);
    CHECK(access(sig, F_OK) != 0);
    CHECK_EQ_INT(try_open(unsigned_path, &ring1, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "unsigned bundle refused: no signature file");
    CHECK_EQ_INT(try_open(unsigned_path, &ring1, CMIG_OPEN_MANIFEST_ONLY, NULL, &err),
                 CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "unsigned bundle refused");

    CHECK_EQ_INT(open_with(&b, unsigned_path, NULL, CMIG_OPEN_SKIP_SIGNATURE, NULL, &err), 0);
    if (b) {
        CHECK(cmig_bundle_signer(b) == NULL);
        CHECK(cmig_bundle_trusted_comment(b) == NULL);
        CHECK_EQ_INT(cmig_bundle_manifest(b)->n, 4);
        struct collect c = {0};
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, collect_fn, &c, &err), 0);
        CHECK_EQ_INT(c.calls, 8);
        CHECK_EQ_INT(c.bad, 0);
    }
    cmig_bundle_close(b);
    /* Skipping also works on a signed bundle, and says it did not check. */
    CHECK_EQ_INT(open_with(&b, signed_path, NULL, CMIG_OPEN_SKIP_SIGNATURE, NULL, &err), 0);
    CHECK(b && cmig_bundle_signer(b) == NULL);
    cmig_bundle_close(b);
}

TEST(signature_of_another_bundle)
{
    struct cmig_err err;
    char other[600], sig[700];
    tmp(other, sizeof other, "other.cmig");
    CHECK_EQ_INT(build(other, key1, "1.2.4", &err), 0);
    struct cmig_open_opts o = {.keys = &ring1};
    struct cmig_bundle *b = NULL;
    snprintf(sig, sizeof sig, "%s.minisig", other);
    o.sig_path = sig; /* a valid signature, of another file */
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_bundle_open(&b, signed_path, &o, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "signature verification failed");
    CHECK(b == NULL);
    /* An explicit sig_path is honoured. */
    snprintf(sig, sizeof sig, "%s.minisig", signed_path);
    char moved[700];
    tmp(moved, sizeof moved, "moved.minisig");
    CHECK_EQ_INT(copy_file(sig, moved), 0);
    o.sig_path = moved;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_bundle_open(&b, signed_path, &o, &err), 0);
    cmig_bundle_close(b);
    /* A signature path that is a directory. */
    o.sig_path = tmpdir;
    cmig_err_clear(&err);
    b = NULL;
    CHECK_EQ_INT(cmig_bundle_open(&b, signed_path, &o, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "not a regular file");
    cmig_bundle_close(b);
}

TEST(not_a_bundle_file)
{
    struct cmig_err err;
    char missing[600];
    tmp(missing, sizeof missing, "missing.cmig");
    CHECK_EQ_INT(try_open(missing, &ring1, 0, NULL, &err), CMIG_E_IO);
    CHECK_CONTAINS(err.msg, "cannot open");
    CHECK_EQ_INT(try_open(tmpdir, NULL, CMIG_OPEN_SKIP_SIGNATURE, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "not a regular file");
}

/* ---- tests: MANIFEST_ONLY ------------------------------------------------ */

TEST(manifest_only_stops_after_manifest)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "extra.cmig");
    struct cmig_manifest *m = two_files();
    const struct hentry ents[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                  {"2.sql", "CREATE TABLE two (x);\n"},
                                  {"3.sql", "DROP TABLE one;\n"}};
    CHECK_EQ_INT(write_hostile(path, m, ents, 3), 0);
    /* The full check finds the undeclared file... */
    CHECK_EQ_INT(try_open(path, &ring1, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "undeclared file '3.sql' in archive");
    /* ... which MANIFEST_ONLY never reads. */
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, CMIG_OPEN_MANIFEST_ONLY, NULL, &err), 0);
    if (b) {
        CHECK_EQ_INT(cmig_bundle_manifest(b)->n, 2);
        CHECK(cmig_bundle_signer(b) != NULL);
    }
    cmig_bundle_close(b);

    /* A later file whose hash is wrong: same story. */
    tmp(path, sizeof path, "badhash.cmig");
    const struct hentry bad[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                 {"2.sql", "CREATE TABLE TWO (x);\n"}};
    CHECK_EQ_INT(write_hostile(path, m, bad, 2), 0);
    CHECK_EQ_INT(try_open(path, &ring1, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "hash mismatch for '2.sql'");
    CHECK_EQ_INT(try_open(path, &ring1, CMIG_OPEN_MANIFEST_ONLY, NULL, &err), 0);
    cmig_manifest_free(m);
}

static int count_fn(void *ctx, const struct cmig_migration *m, int is_down, const uint8_t *data,
                    size_t len, struct cmig_err *err)
{
    (void)m, (void)is_down, (void)data, (void)len, (void)err;
    ++*(int *)ctx;
    return 0;
}

/* each_file after a MANIFEST_ONLY open: files that match reach fn, the
 * one that does not is refused before fn sees it, and the walk fails. */
TEST(each_file_checks_what_open_skipped)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "badhash2.cmig");
    struct cmig_manifest *m = two_files();
    const struct hentry bad[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                 {"2.sql", "CREATE TABLE TWO (x);\n"}};
    CHECK_EQ_INT(write_hostile(path, m, bad, 2), 0);
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, CMIG_OPEN_MANIFEST_ONLY, NULL, &err), 0);
    if (b) {
        int calls = 0;
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "hash mismatch for '2.sql'");
        CHECK_EQ_INT(calls, 1);
    }
    cmig_bundle_close(b);
    cmig_manifest_free(m);

    /* An undeclared file at the end: every declared file is delivered, then
     * the walk is refused. */
    tmp(path, sizeof path, "extra2.cmig");
    m = two_files();
    const struct hentry ents[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                  {"2.sql", "CREATE TABLE two (x);\n"},
                                  {"3.sql", "DROP TABLE one;\n"}};
    CHECK_EQ_INT(write_hostile(path, m, ents, 3), 0);
    CHECK_EQ_INT(open_with(&b, path, &ring1, CMIG_OPEN_MANIFEST_ONLY, NULL, &err), 0);
    if (b) {
        int calls = 0;
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "undeclared file '3.sql'");
        CHECK_EQ_INT(calls, 2);
    }
    cmig_bundle_close(b);
    cmig_manifest_free(m);
}

/* ---- tests: limits, each at its boundary --------------------------------- */

TEST(limit_bundle_bytes)
{
    struct cmig_err err;
    struct cmig_limits l;
    cmig_limits_default(&l);
    l.max_bundle_bytes = file_size(signed_path);
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), 0);
    l.max_bundle_bytes--;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    char want[128];
    snprintf(want, sizeof want, "%llu bytes, over the cap of %llu bytes",
             (unsigned long long)file_size(signed_path), (unsigned long long)l.max_bundle_bytes);
    CHECK_CONTAINS(err.msg, want);
    /* Without a signature too: the cap comes before everything. */
    CHECK_EQ_INT(try_open(signed_path, NULL, CMIG_OPEN_SKIP_SIGNATURE, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, want);
}

TEST(limit_manifest_bytes)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    struct cmig_limits l;
    CHECK_EQ_INT(open_with(&b, signed_path, &ring1, 0, NULL, &err), 0);
    cmig_bundle_close(b);
    cmig_limits_default(&l);
    l.max_manifest_bytes = 12288; /* the example manifest: 3 pages */
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), 0);
    l.max_manifest_bytes = 12287;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "entry 'manifest.db' is 12288 bytes, over the cap of 12287 bytes");
    CHECK_EQ_INT(try_open(signed_path, &ring1, CMIG_OPEN_MANIFEST_ONLY, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "over the cap of 12287 bytes");
}

static uint64_t largest_file(const struct cmig_manifest *m, uint64_t *total)
{
    uint64_t max = 0;
    *total = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_file *fs[2] = {&m->migrations[i].up, &m->migrations[i].down};
        for (int d = 0; d < 2; d++) {
            if (!fs[d]->path)
                continue;
            *total += fs[d]->size;
            if (fs[d]->size > max)
                max = fs[d]->size;
        }
    }
    return max;
}

TEST(limit_entry_and_total_bytes)
{
    struct cmig_err err;
    struct cmig_bundle *b = NULL;
    struct cmig_limits l;
    uint64_t total = 0, max = 0;
    CHECK_EQ_INT(open_with(&b, signed_path, &ring1, 0, NULL, &err), 0);
    if (!b)
        return;
    max = largest_file(cmig_bundle_manifest(b), &total);
    cmig_bundle_close(b);
    CHECK(max > 0 && total > max);

    cmig_limits_default(&l);
    l.max_entry_bytes = max;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), 0);
    l.max_entry_bytes = max - 1;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    char want[128];
    snprintf(want, sizeof want, "at %llu bytes, over the cap of %llu", (unsigned long long)max,
             (unsigned long long)(max - 1));
    CHECK_CONTAINS(err.msg, "manifest lists 'migrations/");
    CHECK_CONTAINS(err.msg, want);

    cmig_limits_default(&l);
    l.max_total_bytes = total;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), 0);
    l.max_total_bytes = total - 1;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    snprintf(want, sizeof want, "manifest lists %llu bytes in all, over the cap of %llu",
             (unsigned long long)total, (unsigned long long)(total - 1));
    CHECK_CONTAINS(err.msg, want);
}

/* The entry header is judged before the manifest is asked: a file the
 * manifest lists small but whose header says more than the cap. */
TEST(limit_entry_header)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "bigheader.cmig");
    struct cmig_manifest *m = two_files();
    const struct hentry ents[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                  {"2.sql", "CREATE TABLE two (x); -- and a longer tail\n"}};
    CHECK_EQ_INT(write_hostile(path, m, ents, 2), 0);
    struct cmig_limits l;
    cmig_limits_default(&l);
    l.max_entry_bytes = 30;
    CHECK_EQ_INT(try_open(path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "entry '2.sql' is 43 bytes, over the cap of 30 bytes");
    /* With the default cap it is the size check that refuses it. */
    CHECK_EQ_INT(try_open(path, &ring1, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "size mismatch for '2.sql': archive has 43 bytes, manifest 22");
    cmig_manifest_free(m);
}

TEST(limit_entries)
{
    struct cmig_err err;
    struct cmig_limits l;
    cmig_limits_default(&l);
    /* manifest.db + 8 files */
    l.max_entries = 9;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), 0);
    l.max_entries = 8;
    CHECK_EQ_INT(try_open(signed_path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "too many entries: 9, over the cap of 8");
    /* Judged from the manifest, so MANIFEST_ONLY refuses as well. */
    CHECK_EQ_INT(try_open(signed_path, &ring1, CMIG_OPEN_MANIFEST_ONLY, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "too many entries: 9");

    /* The archive's own count: a manifest within the cap, an archive over
     * it. The count is checked before the extra entry's name. */
    char path[600];
    tmp(path, sizeof path, "toomany.cmig");
    struct cmig_manifest *m = two_files();
    const struct hentry ents[] = {{"1.sql", "CREATE TABLE one (x);\n"},
                                  {"2.sql", "CREATE TABLE two (x);\n"},
                                  {"3.sql", "x\n"},
                                  {"4.sql", "x\n"}};
    CHECK_EQ_INT(write_hostile(path, m, ents, 4), 0);
    l.max_entries = 3;
    CHECK_EQ_INT(try_open(path, &ring1, 0, &l, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "too many entries (over the cap of 3)");
    CHECK_EQ_INT(try_open(path, &ring1, 0, NULL, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "undeclared file '3.sql' in archive");
    cmig_manifest_free(m);
}

/* ---- tests: the file under the open descriptor --------------------------- */

/* Replacing the path after open changes nothing: reads go through the
 * descriptor opened and verified. */
TEST(replaced_file_is_not_read)
{
    struct cmig_err err;
    char path[600], other[600];
    tmp(path, sizeof path, "replace.cmig");
    tmp(other, sizeof other, "replacement.cmig");
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    CHECK_EQ_INT(build(other, key1, "9.9.9", &err), 0);
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, 0, NULL, &err), 0);
    if (!b)
        return;
    CHECK_EQ_INT(rename(other, path), 0);
    struct collect c = {0};
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, collect_fn, &c, &err), 0);
    CHECK_EQ_INT(c.calls, 8);
    CHECK_EQ_INT(c.bad, 0);
    CHECK_STR(cmig_bundle_manifest(b)->version.text, "1.2.3");
    cmig_bundle_close(b);
}

/* A small bundle is read once: changing the file after open changes
 * nothing the reader hands out. */
TEST(small_bundle_is_read_once)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "once.cmig");
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, 0, NULL, &err), 0);
    if (!b)
        return;
    uint64_t size = file_size(path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    for (uint64_t at = 0; fd >= 0 && at < size; at++) {
        uint8_t byte = 0xa5;
        CHECK(pwrite(fd, &byte, 1, (off_t)at) == 1);
    }
    if (fd >= 0)
        close(fd);
    int calls = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), 0);
    CHECK(calls > 0);
    cmig_bundle_close(b);
}

/* Limits that force the streamed path (read twice, every read hashed),
 * which is what these tests probe. Small bundles are otherwise read once
 * into memory, where later changes to the file cannot reach the reader. */
static const struct cmig_limits *streamed(void)
{
    static struct cmig_limits l;
    cmig_limits_default(&l);
    l.in_memory_max = 0;
    return &l;
}

/* ---- each_content: large files as streams ----------------------------- */

struct stream_check {
    int calls, streamed, whole, bad;
    size_t piece; /* read in pieces of this size (grows, to vary the cuts) */
};

static int stream_fn(void *ctx, const struct cmig_migration *m, int is_down,
                     struct cmig_file_bytes *c, struct cmig_err *err)
{
    struct stream_check *k = ctx;
    const struct cmig_file *f = is_down ? &m->down : &m->up;
    k->calls++;
    if (c->data)
        k->whole++;
    else
        k->streamed++;
    uint8_t *all = malloc(f->size + 1);
    size_t have = 0, got = 0;
    if (!all)
        return cmig_err_nomem(err);
    do {
        size_t want = k->piece++ % 13 + 1;
        if (want > f->size + 1 - have)
            want = f->size + 1 - have;
        int rc = cmig_file_bytes_read(c, all + have, want, &got, err);
        if (rc) {
            free(all);
            return rc;
        }
        have += got;
    } while (got && have <= f->size);
    uint8_t digest[32];
    crypto_hash_sha256(digest, all, have);
    if (have != f->size || c->len != f->size || memcmp(digest, f->sha256, 32) != 0)
        k->bad++;
    /* Reading past the end gives nothing, again. */
    if (cmig_file_bytes_read(c, all, 1, &got, err) != 0 || got != 0)
        k->bad++;
    free(all);
    return 0;
}

/* Files above whole_max come as streams out of a private copy, byte for
 * byte what was signed; the others whole. Both from memory and from disk. */
TEST(each_content_streams_large_files)
{
    struct cmig_err err;
    for (int from_disk = 0; from_disk < 2; from_disk++) {
        for (uint64_t whole_max = 0; whole_max < 400; whole_max += 150) {
            struct cmig_limits lim;
            cmig_limits_default(&lim);
            if (from_disk)
                lim.in_memory_max = 0;
            lim.whole_max = whole_max;
            struct cmig_bundle *b = NULL;
            CHECK_EQ_INT(open_with(&b, signed_path, &ring1, 0, &lim, &err), 0);
            if (!b)
                return;
            const struct cmig_manifest *m = cmig_bundle_manifest(b);
            int want_streamed = 0;
            for (size_t i = 0; i < m->n; i++) {
                want_streamed += m->migrations[i].up.size > whole_max;
                want_streamed +=
                    m->migrations[i].down.path && m->migrations[i].down.size > whole_max;
            }
            struct stream_check k = {0};
            CHECK_EQ_INT(cmig_bundle_each_content(b, NULL, stream_fn, &k, &err), 0);
            CHECK_STR(err.msg, "");
            CHECK_EQ_INT(k.calls, 8);
            CHECK_EQ_INT(k.streamed, want_streamed);
            CHECK_EQ_INT(k.whole, 8 - want_streamed);
            CHECK_EQ_INT(k.bad, 0);
            cmig_bundle_close(b);
        }
    }
}

/* A streamed walk over a file modified on disk refuses the changed entry
 * before fn sees a byte of it. */
TEST(each_content_refuses_modified_entries)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "modify-stream.cmig");
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    uint64_t size = file_size(path);
    struct cmig_limits lim;
    cmig_limits_default(&lim);
    lim.in_memory_max = 0;
    lim.whole_max = 0;
    int refused = 0, tries = 0;
    for (uint64_t at = size / 3; at < size - 64; at += size / 9) {
        CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
        struct cmig_bundle *b = NULL;
        CHECK_EQ_INT(open_with(&b, path, &ring1, 0, &lim, &err), 0);
        if (!b)
            return;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        uint8_t byte = 0;
        CHECK(fd >= 0 && pread(fd, &byte, 1, (off_t)at) == 1);
        byte ^= 0x55;
        CHECK(fd >= 0 && pwrite(fd, &byte, 1, (off_t)at) == 1);
        if (fd >= 0)
            close(fd);
        struct stream_check k = {0};
        cmig_err_clear(&err);
        int rc = cmig_bundle_each_content(b, NULL, stream_fn, &k, &err);
        tries++;
        refused += rc == CMIG_E_VERIFY;
        CHECK_EQ_INT(k.bad, 0); /* what fn saw was always what was signed */
        cmig_bundle_close(b);
    }
    CHECK_EQ_INT(refused, tries);
}

/* Modifying the file in place after open is caught on the next walk. */
TEST(modified_file_is_refused)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "modify.cmig");
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    uint64_t size = file_size(path);
    for (uint64_t at = 20; at < size; at += size / 7) {
        CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
        struct cmig_bundle *b = NULL;
        CHECK_EQ_INT(open_with(&b, path, &ring1, 0, streamed(), &err), 0);
        if (!b)
            return;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        uint8_t byte = 0;
        CHECK(fd >= 0 && pread(fd, &byte, 1, (off_t)at) == 1);
        byte ^= 0x55;
        CHECK(fd >= 0 && pwrite(fd, &byte, 1, (off_t)at) == 1);
        if (fd >= 0)
            close(fd);
        int calls = 0;
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        cmig_bundle_close(b);
    }
    /* Growing the file is caught as well. */
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, 0, streamed(), &err), 0);
    FILE *f = fopen(path, "ab");
    CHECK(f && fwrite("more", 1, 4, f) == 4);
    if (f)
        fclose(f);
    if (b) {
        int calls = 0;
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "while being read");
    }
    cmig_bundle_close(b);
}

/* A change no content check can see (the gzip header's time field, which
 * the reader ignores) is still caught: the whole file is hashed again and
 * compared with what the signature covered. */
TEST(invisible_change_is_refused)
{
    struct cmig_err err;
    char path[600];
    tmp(path, sizeof path, "invisible.cmig");
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, &ring1, 0, streamed(), &err), 0);
    if (!b)
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t hdr[10] = {0};
    CHECK(fd >= 0 && pread(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr);
    CHECK(hdr[0] == 0x1f && hdr[1] == 0x8b);
    hdr[4] ^= 0x01; /* MTIME */
    CHECK(fd >= 0 && pwrite(fd, &hdr[4], 1, 4) == 1);
    if (fd >= 0)
        close(fd);
    int calls = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "file changed while being read");
    cmig_bundle_close(b);
    /* Without the signature nothing vouches for those bytes. */
    CHECK_EQ_INT(try_open(path, NULL, CMIG_OPEN_SKIP_SIGNATURE, NULL, &err), 0);
    /* Growing is named as such. */
    CHECK_EQ_INT(build(path, key1, "1.2.3", &err), 0);
    CHECK_EQ_INT(open_with(&b, path, &ring1, 0, streamed(), &err), 0);
    FILE *f = fopen(path, "ab");
    CHECK(f && fwrite("x", 1, 1, f) == 1);
    if (f)
        fclose(f);
    if (b) {
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "file grew while being read");
    }
    cmig_bundle_close(b);
}

/* An unsigned bundle rewritten in place (same file, other manifest) after
 * it was opened: the walk must not mix the old manifest with new bytes. */
TEST(rewritten_manifest_is_refused)
{
    struct cmig_err err;
    char path[600], other[600];
    tmp(path, sizeof path, "rewrite.cmig");
    tmp(other, sizeof other, "rewrite-other.cmig");
    CHECK_EQ_INT(build(path, NULL, "1.2.3", &err), 0);
    uint64_t size = file_size(path);
    /* Another revision gives another manifest; pick one that is not
     * larger, so that the change is not seen as growth. */
    static const char *const revisions[] = {"", "a", "b", "c", "d", "e", "f", "g"};
    int found = 0;
    for (size_t i = 0; i < sizeof revisions / sizeof revisions[0] && !found; i++) {
        struct cmig_build_opts o = {.dir = examples,
                                    .name = "app",
                                    .version = "1.2.3",
                                    .source_revision = revisions[i],
                                    .created_at = 1700000000,
                                    .output = other,
                                    .builder = "test"};
        struct cmig_build_result res;
        cmig_err_clear(&err);
        found = cmig_build(&o, &res, &err) == 0 && file_size(other) <= size;
    }
    CHECK(found);
    uint8_t *bytes = NULL;
    size_t len = 0;
    FILE *in = fopen(other, "rb");
    if (in) {
        bytes = malloc(size + 1);
        len = bytes ? fread(bytes, 1, size + 1, in) : 0;
        fclose(in);
    }
    struct cmig_bundle *b = NULL;
    CHECK_EQ_INT(open_with(&b, path, NULL, CMIG_OPEN_SKIP_SIGNATURE, streamed(), &err), 0);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    CHECK(fd >= 0 && bytes && write(fd, bytes, len) == (ssize_t)len);
    if (fd >= 0)
        close(fd);
    if (b && found) {
        int calls = 0;
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_bundle_each_file(b, NULL, count_fn, &calls, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "manifest changed since it was verified");
        CHECK_EQ_INT(calls, 0);
    }
    cmig_bundle_close(b);
    free(bytes);
}

/* ---- setup --------------------------------------------------------------- */

static void setup(void)
{
    struct cmig_err err;
    const char *top = getenv("CMIG_TOP");
    snprintf(examples, sizeof examples, "%s/examples/migrations", top && *top ? top : ".");
    snprintf(tmpdir, sizeof tmpdir, "%s/cmig-bundle-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        die("mkdtemp", NULL);
    cmig_err_clear(&err);
    if (sodium_init() < 0 || cmig_seckey_generate(&key1, &err) || cmig_seckey_generate(&key2, &err))
        die("keys", &err);
    cmig_seckey_pubkey(key1, &pub1);
    cmig_seckey_pubkey(key2, &pub2);
    if (cmig_keyring_add(&ring1, &pub1, &err) || cmig_keyring_add(&ring2, &pub2, &err) ||
        cmig_keyring_add(&ring_both, &pub2, &err) || cmig_keyring_add(&ring_both, &pub1, &err))
        die("keyring", &err);
    tmp(signed_path, sizeof signed_path, "app-1.2.3.cmig");
    tmp(unsigned_path, sizeof unsigned_path, "unsigned.cmig");
    if (build(signed_path, key1, "1.2.3", &err))
        die("build", &err);
    if (build(unsigned_path, NULL, "1.2.3", &err))
        die("build unsigned", &err);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        printf("# could not remove %s\n", tmpdir);
    cmig_seckey_free(key1);
    cmig_seckey_free(key2);
    cmig_keyring_free(&ring1);
    cmig_keyring_free(&ring2);
    cmig_keyring_free(&ring_both);
}

/* The claim grammar has one spelling for each claim: what parses formats
 * back to the same text, and every other spelling of a number is refused. */
TEST(trusted_comment_has_one_spelling)
{
    static const char *const good[] = {
        "cmig-bundle name=demo version=1.0.0 manifest-sha256="
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff migrations=4 last=4 "
        "format=1",
        "cmig-bundle name=e version=0.1.0-rc.1+b.7 manifest-sha256="
        "0000000000000000000000000000000000000000000000000000000000000000 migrations=0 last=-1 "
        "format=1",
    };
    static const char *const bad[] = {"last=-0",       "last=04",       "last=-01",  "last=-2",
                                      "migrations=04", "migrations=-1", "format=01", "format=0"};
    struct cmig_claim c;
    struct cmig_err err;
    char again[512], tc[512];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_trusted_comment_parse(good[i], &c, &err), 0);
        CHECK_EQ_INT(cmig_trusted_comment_format(again, sizeof again, &c), 0);
        CHECK_STR(again, good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* The first good comment with one field spelled differently. */
        const char *key = bad[i];
        size_t klen = (size_t)(strchr(key, '=') - key) + 1;
        const char *at = strstr(good[0], " ") + 1;
        while (strncmp(at, key, klen) != 0)
            at = strchr(at, ' ') + 1;
        const char *end = strchr(at, ' ');
        snprintf(tc, sizeof tc, "%.*s%s%s", (int)(at - good[0]), good[0], key, end ? end : "");
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_trusted_comment_parse(tc, &c, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "does not describe a cmig bundle");
    }
}

int main(void)
{
    SUITE("test_bundle");
    setup();
    RUN(roundtrip_signed);
    RUN(each_file_selects_and_stops);
    RUN(each_content_streams_large_files);
    RUN(each_content_refuses_modified_entries);
    RUN(key_rotation);
    RUN(wrong_key_refused);
    RUN(no_keys_is_usage_error);
    RUN(unsigned_refused_unless_skipped);
    RUN(signature_of_another_bundle);
    RUN(not_a_bundle_file);
    RUN(manifest_only_stops_after_manifest);
    RUN(each_file_checks_what_open_skipped);
    RUN(limit_bundle_bytes);
    RUN(limit_manifest_bytes);
    RUN(limit_entry_and_total_bytes);
    RUN(limit_entry_header);
    RUN(limit_entries);
    RUN(replaced_file_is_not_read);
    RUN(small_bundle_is_read_once);
    RUN(modified_file_is_refused);
    RUN(invisible_change_is_refused);
    RUN(rewritten_manifest_is_refused);
    RUN(trusted_comment_has_one_spelling);
    teardown();
    return harness_done();
}
