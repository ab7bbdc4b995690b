/*
 * test_zimage.c - unit tests for the manifest image store and its SQLite
 * VFS (format/zimage.c, format/zvfs.c).
 *
 * A large manifest is held in deflated 64 KiB chunks while it is parsed;
 * what SQLite reads through the VFS must be byte for byte the image, at
 * every offset and across chunk boundaries, and a manifest loaded from
 * chunks must be the manifest loaded from the flat image, field by field,
 * refusals included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../format/zimage.h"
#include "cmig/err.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"
#include "harness.h"
#include "manifest_fixture.h"

#define CHUNK (64u * 1024)

static char *fmt(const char *f, long long a)
{
    char buf[160];
    snprintf(buf, sizeof buf, f, a);
    char *d = strdup(buf);
    if (!d)
        exit(2);
    return d;
}

static void fill(struct cmig_file *f, long long v, const char *dir)
{
    char p[120];
    snprintf(p, sizeof p, "migrations/%lld_step_%lld.%s.sql", v, v * 7, dir);
    f->path = strdup(p);
    snprintf(p, sizeof p, "%06lld_step.%s.sql", v, dir);
    f->source = strdup(p);
    f->tx_reason = fmt(v % 50 ? "" : "line %lld: CREATE INDEX CONCURRENTLY", v % 97);
    if (!f->path || !f->source)
        exit(2);
    f->size = (uint64_t)(v * 131 % 100000);
    for (int i = 0; i < 32; i++)
        f->sha256[i] = (uint8_t)(v * 31 + i * 17);
    f->tx = v % 50 ? CMIG_TX_TRANSACTION : CMIG_TX_NONE;
    f->source_line = (uint32_t)(v % 1000);
}

/* A manifest of n migrations whose image spans many chunks. */
static struct cmig_manifest *big(size_t n)
{
    struct cmig_manifest *m =
        fixture_manifest("big", "3.0.0", "golang-migrate", "cmig-bundle 0.1.0", n);
    for (size_t i = 0; i < n; i++) {
        struct cmig_migration *mg = &m->migrations[i];
        mg->version = (int64_t)(i + 1) * 3;
        mg->name = fmt("step_%lld", mg->version * 7);
        fill(&mg->up, mg->version, "up");
        if (i % 3)
            fill(&mg->down, mg->version, "down");
    }
    return m;
}

static uint8_t *image_of(const struct cmig_manifest *m, size_t *len)
{
    struct cmig_err err;
    uint8_t *img = NULL;
    cmig_err_clear(&err);
    if (cmig_manifest_serialize(m, &img, len, &err)) {
        printf("#   serialize failed: %s\n", err.msg);
        return NULL;
    }
    return img;
}

/* img in a chunked zimage, written in pieces of step bytes. */
static struct cmig_zimage *chunked(const uint8_t *img, size_t len, size_t step)
{
    struct cmig_zimage *z = NULL;
    struct cmig_err err;
    cmig_err_clear(&err);
    if (cmig_zimage_open(&z, len, 0, &err))
        return NULL;
    for (size_t at = 0; at < len; at += step) {
        size_t n = len - at < step ? len - at : step;
        if (cmig_zimage_write(z, img + at, n, &err)) {
            cmig_zimage_free(z);
            return NULL;
        }
    }
    if (cmig_zimage_seal(z, &err)) {
        cmig_zimage_free(z);
        return NULL;
    }
    return z;
}

static int same_manifest(const struct cmig_manifest *a, const struct cmig_manifest *b)
{
    if (a->n != b->n || strcmp(a->name, b->name) != 0 ||
        strcmp(a->version.text, b->version.text) != 0 || strcmp(a->driver, b->driver) != 0)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct cmig_migration *x = &a->migrations[i], *y = &b->migrations[i];
        if (x->version != y->version || strcmp(x->name, y->name) != 0 ||
            !fixture_same_file(&x->up, &y->up) || !fixture_same_file(&x->down, &y->down))
            return 0;
    }
    return 1;
}

TEST(reads_match_the_image)
{
    struct cmig_manifest *m = big(4000);
    size_t len = 0;
    uint8_t *img = image_of(m, &len);
    CHECK(img != NULL);
    CHECK(len > 8 * CHUNK);
    struct cmig_zimage *z = img ? chunked(img, len, 7777) : NULL;
    CHECK(z != NULL);
    if (z) {
        CHECK(cmig_zimage_size(z) == len);
        /* Hex digests and paths: well under half. */
        CHECK(cmig_zimage_held(z) < len / 2);
        uint8_t *buf = malloc(3 * CHUNK + 10);
        int bad = 0;
        /* Every boundary, both sides, whole pages, spans of three chunks,
         * the last partial chunk and the very last byte. */
        uint64_t spots[] = {0,          1,      CHUNK - 1, CHUNK, CHUNK + 4096, 2 * CHUNK - 5,
                            len - 4096, len - 1};
        size_t sizes[] = {1, 100, 4096, CHUNK, 2 * CHUNK + 9};
        for (size_t i = 0; buf && i < sizeof spots / sizeof *spots; i++)
            for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
                size_t n = sizes[j];
                if (spots[i] + n > len)
                    n = len - spots[i];
                if (cmig_zimage_read(z, buf, n, spots[i]) != 0 ||
                    memcmp(buf, img + spots[i], n) != 0)
                    bad++;
            }
        CHECK_EQ_INT(bad, 0);
        /* A whole pass in page order, then backwards (the slots get reused). */
        for (uint64_t off = 0; buf && off + 4096 <= len; off += 4096)
            if (cmig_zimage_read(z, buf, 4096, off) != 0 || memcmp(buf, img + off, 4096) != 0)
                bad++;
        for (uint64_t off = len - 4096; buf && off > 0; off -= 4096)
            if (cmig_zimage_read(z, buf, 4096, off) != 0 || memcmp(buf, img + off, 4096) != 0)
                bad++;
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(cmig_zimage_read(z, buf, 2, len - 1), CMIG_E_INTERNAL);
        CHECK_EQ_INT(cmig_zimage_read(z, buf, 1, len + 1), CMIG_E_INTERNAL);
        free(buf);
    }
    cmig_zimage_free(z);
    free(img);
    cmig_manifest_free(m);
}

TEST(chunked_load_equals_flat_load)
{
    struct cmig_manifest *m = big(4000), *flat = NULL, *fromz = NULL;
    struct cmig_err err;
    size_t len = 0;
    uint8_t *img = image_of(m, &len);
    struct cmig_zimage *z = img ? chunked(img, len, CHUNK) : NULL;
    CHECK(z != NULL);
    cmig_err_clear(&err);
    CHECK_EQ_INT(img ? cmig_manifest_load(&flat, img, len, &err) : -1, 0);
    CHECK_STR(err.msg, "");
    CHECK_EQ_INT(z ? cmig_manifest_load_zimage(&fromz, z, &err) : -1, 0);
    CHECK_STR(err.msg, "");
    CHECK(flat && same_manifest(m, flat));
    CHECK(fromz && same_manifest(m, fromz));
    cmig_manifest_free(flat);
    cmig_manifest_free(fromz);
    cmig_zimage_free(z);
    free(img);
    cmig_manifest_free(m);
}

/* Damage anywhere must get the same verdict and message both ways. */
TEST(chunked_refusals_equal_flat_refusals)
{
    struct cmig_manifest *m = big(1500);
    size_t len = 0;
    uint8_t *img = image_of(m, &len);
    int differ = 0, refused = 0;
    for (size_t k = 0; img && k < 60; k++) {
        uint8_t *bad = malloc(len);
        if (!bad)
            break;
        memcpy(bad, img, len);
        size_t at = (k * 104729 + 13) % len;
        bad[at] ^= (uint8_t)(0x5a + k);
        bad[(at * 7 + 1) % len] ^= 0xff;
        struct cmig_manifest *a = NULL, *b = NULL;
        struct cmig_err ea, eb;
        cmig_err_clear(&ea);
        cmig_err_clear(&eb);
        int ra = cmig_manifest_load(&a, bad, len, &ea);
        struct cmig_zimage *z = chunked(bad, len, 5000);
        int rb = z ? cmig_manifest_load_zimage(&b, z, &eb) : -1;
        if (ra != rb || strcmp(ea.msg, eb.msg) != 0 || (!a) != (!b)) {
            differ++;
            printf("#   at %zu: flat %d '%s', chunked %d '%s'\n", at, ra, ea.msg, rb, eb.msg);
        }
        if (ra == CMIG_E_VERIFY)
            refused++;
        cmig_manifest_free(a);
        cmig_manifest_free(b);
        cmig_zimage_free(z);
        free(bad);
    }
    CHECK_EQ_INT(differ, 0);
    CHECK(refused > 0);
    free(img);
    cmig_manifest_free(m);
}

TEST(misuse_is_refused)
{
    struct cmig_zimage *z = NULL;
    struct cmig_err err;
    uint8_t data[100] = {0};
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_zimage_open(&z, 50, 0, &err), 0);
    if (z) {
        CHECK_EQ_INT(cmig_zimage_write(z, data, 60, &err), CMIG_E_INTERNAL);
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_zimage_write(z, data, 40, &err), 0);
        CHECK_EQ_INT(cmig_zimage_seal(z, &err), CMIG_E_INTERNAL); /* 10 bytes short */
        CHECK_CONTAINS(err.msg, "sealed at 40 of 50 bytes");
        cmig_err_clear(&err);
        uint8_t b[4];
        CHECK_EQ_INT(cmig_zimage_read(z, b, 4, 0), CMIG_E_INTERNAL); /* not sealed */
    }
    cmig_zimage_free(z);
    /* Too small to be a database, flat or not. */
    z = NULL;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_zimage_open(&z, 100, 0, &err), 0);
    if (z) {
        struct cmig_manifest *m = NULL;
        CHECK_EQ_INT(cmig_zimage_write(z, data, 100, &err), 0);
        CHECK_EQ_INT(cmig_zimage_seal(z, &err), 0);
        CHECK_EQ_INT(cmig_manifest_load_zimage(&m, z, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "not a SQLite database");
        CHECK(m == NULL);
    }
    cmig_zimage_free(z);
}

int main(void)
{
    SUITE("test_zimage");
    RUN(reads_match_the_image);
    RUN(chunked_load_equals_flat_load);
    RUN(chunked_refusals_equal_flat_refusals);
    RUN(misuse_is_refused);
    return harness_done();
}
