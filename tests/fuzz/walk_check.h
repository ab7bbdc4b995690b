/*
 * walk_check.h - the checks fuzz_archive.c and fuzz_bundle.c make on an
 * accepted bundle: cmig_bundle_each_file and cmig_bundle_each_content
 * must hand out exactly the files the manifest lists (those want() picks),
 * in the manifest's order, each with its listed size and SHA-256; a file is
 * whole up to whole_max and a stream above it, and a stream read back in
 * pieces of varying size gives the same bytes and then stays at its end.
 */
#ifndef CMIG_FUZZ_WALK_CHECK_H
#define CMIG_FUZZ_WALK_CHECK_H

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "cmig/bundle.h"
#include "fuzz_util.h"

/* Where the walk is in the manifest's order of files. */
struct expect {
    const struct cmig_manifest *m;
    size_t mig;  /* index of the migration whose file comes next */
    int is_down; /* whether that file is its down file */
    size_t handed;
    unsigned skip_mask; /* files left out by want() */
    struct fuzz_draw pieces;
    uint64_t whole_max;
};

static void expect_init(struct expect *x, const struct cmig_manifest *m, unsigned skip_mask,
                        const uint8_t *data, size_t size, uint64_t whole_max)
{
    memset(x, 0, sizeof *x);
    x->m = m;
    x->skip_mask = skip_mask;
    x->pieces.p = data;
    x->pieces.n = size < 64 ? size : 64;
    x->whole_max = whole_max;
}

/* Moves past the expected file (m, is_down), which must be the next one
 * wanted in the manifest's order. */
static void expect_next(struct expect *x, const struct cmig_migration *m, int is_down)
{
    REQUIRE(x->mig < x->m->n);
    REQUIRE(m == &x->m->migrations[x->mig] && is_down == x->is_down);
    if (!x->is_down && m->down.path) {
        x->is_down = 1;
    } else {
        x->is_down = 0;
        x->mig++;
    }
}

/* Files counted in the manifest's order: the n-th is left out when bit
 * n % 8 of skip_mask is set. */
static int file_number(const struct cmig_manifest *m, const struct cmig_migration *mg, int is_down)
{
    int n = 0;
    for (const struct cmig_migration *p = m->migrations; p < mg; p++)
        n += p->down.path ? 2 : 1;
    return n + is_down;
}

static int want(void *ctx, const struct cmig_migration *m, int is_down)
{
    struct expect *x = ctx;
    return !((x->skip_mask >> (file_number(x->m, m, is_down) % 8)) & 1);
}

/* Steps the expectation over files want() left out, up to (m, is_down). */
static void skip_unwanted(struct expect *x, const struct cmig_migration *m, int is_down)
{
    while (x->mig < x->m->n && !(&x->m->migrations[x->mig] == m && x->is_down == is_down)) {
        const struct cmig_migration *cur = &x->m->migrations[x->mig];
        REQUIRE(!want(x, cur, x->is_down)); /* only unwanted files may be missing */
        expect_next(x, cur, x->is_down);
    }
}

static int on_file(void *ctx, const struct cmig_migration *m, int is_down, const uint8_t *bytes,
                   size_t len, struct cmig_err *err)
{
    struct expect *x = ctx;
    (void)err;
    skip_unwanted(x, m, is_down);
    REQUIRE(want(x, m, is_down));
    expect_next(x, m, is_down);
    const struct cmig_file *f = is_down ? &m->down : &m->up;
    uint8_t digest[32];
    REQUIRE(f->path != NULL && len == f->size && (bytes != NULL || len == 0));
    crypto_hash_sha256(digest, bytes, len);
    REQUIRE(memcmp(digest, f->sha256, 32) == 0);
    x->handed++;
    return 0;
}

static int on_content(void *ctx, const struct cmig_migration *m, int is_down,
                      struct cmig_file_bytes *c, struct cmig_err *err)
{
    struct expect *x = ctx;
    skip_unwanted(x, m, is_down);
    REQUIRE(want(x, m, is_down));
    expect_next(x, m, is_down);
    const struct cmig_file *f = is_down ? &m->down : &m->up;
    REQUIRE(f->path != NULL && c->len == f->size && c->pos == 0);
    /* Whole up to whole_max, a stream above it. */
    REQUIRE((c->data == NULL) == (c->len > x->whole_max));

    crypto_hash_sha256_state h;
    uint8_t buf[300], digest[32];
    uint64_t total = 0;
    crypto_hash_sha256_init(&h);
    for (;;) {
        size_t cap = fuzz_draw_byte(&x->pieces) % sizeof buf + 1;
        size_t got = 99999;
        REQUIRE(cmig_file_bytes_read(c, buf, cap, &got, err) == 0);
        REQUIRE(got <= cap);
        if (got == 0)
            break;
        total += got;
        REQUIRE(total <= c->len && c->pos == total);
        crypto_hash_sha256_update(&h, buf, got);
    }
    crypto_hash_sha256_final(&h, digest);
    REQUIRE(total == c->len && memcmp(digest, f->sha256, 32) == 0);
    /* The end stays the end. */
    size_t got = 1;
    REQUIRE(cmig_file_bytes_read(c, buf, sizeof buf, &got, err) == 0 && got == 0);
    x->handed++;
    return 0;
}

/* How many of the manifest's files want() selects. */
static size_t wanted_files(struct expect *x)
{
    size_t n = 0;
    for (size_t i = 0; i < x->m->n; i++) {
        n += want(x, &x->m->migrations[i], 0);
        if (x->m->migrations[i].down.path)
            n += want(x, &x->m->migrations[i], 1);
    }
    return n;
}

/* Runs both walks over an open bundle and checks them: every file whole
 * through each_file, then the files skip_mask leaves in through
 * each_content, read back in pieces drawn from the input. */
static void check_walks(struct cmig_bundle *b, unsigned skip_mask, const uint8_t *data, size_t size,
                        uint64_t whole_max)
{
    static struct cmig_err err; /* 1 KiB message: keep it off the stack */
    struct expect x;
    const struct cmig_manifest *m = cmig_bundle_manifest(b);
    REQUIRE(m != NULL);
    expect_init(&x, m, 0, data, size, whole_max);
    cmig_err_clear(&err);
    REQUIRE(cmig_bundle_each_file(b, NULL, on_file, &x, &err) == 0);
    REQUIRE(x.handed == wanted_files(&x) && x.mig == m->n);

    expect_init(&x, m, skip_mask, data, size, whole_max);
    cmig_err_clear(&err);
    REQUIRE(cmig_bundle_each_content(b, want, on_content, &x, &err) == 0);
    REQUIRE(x.handed == wanted_files(&x));
}

#endif
