/*
 * fuzz_sqlstream.c - libFuzzer target for SQL read through a bounded window
 * (format/sqlstream.c), as the drivers read a large migration.
 *
 * Input: byte 0 picks the first window size (1 to 64 bytes), byte 1 the
 * chunk target (0: one statement per chunk), bytes 2-3 the sizes of the
 * pieces the reader hands out; the rest is the SQL text. The property is
 * the one tests/unit/test_sqlstream.c checks over fixed scripts: whatever
 * the window and the pieces, the chunks are exactly the statements of one
 * cmig_sql_split of the whole text, in order, each chunk running from its
 * first statement's start to its last one's end, with the same line,
 * column (in characters) and terminated flag, numbered in sequence, and
 * within the target when they hold more than one statement. The text read
 * whole gives the same chunks. cmig_sql_chunk_locate must name the line,
 * column and statement of any byte of a chunk as the whole text does. A
 * NUL byte must be refused (CMIG_E_MIGRATION), and nothing past it handed
 * out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/sqlscan.h"
#include "cmig/sqlstream.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref_stmt {
    size_t offset, len;
    unsigned line, col; /* col in characters, as the stream counts */
    int terminated;
};

struct ref {
    const char *sql;
    size_t n, cap;
    struct ref_stmt *v;
    int oom;
};

/* 1-based line and character column of byte off of the whole text. */
static void whole_pos(const char *s, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n')
            ++*line, *col = 1;
        else if (((unsigned char)s[i] & 0xC0) != 0x80)
            ++*col;
    }
}

static int add_ref(void *ctx, const struct cmig_sql_stmt *st)
{
    struct ref *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        struct ref_stmt *v = realloc(r->v, cap * sizeof *v);
        if (!v) {
            r->oom = 1;
            return 1;
        }
        r->v = v;
        r->cap = cap;
    }
    struct ref_stmt *s = &r->v[r->n++];
    s->offset = st->offset;
    s->len = st->len;
    whole_pos(r->sql, st->offset, &s->line, &s->col);
    s->terminated = st->terminated;
    return 0;
}

/* A reader that hands out the text in pieces of drawn sizes. */
struct pieces {
    const char *text;
    size_t len, pos;
    struct fuzz_draw sizes;
};

static int read_pieces(void *src, char *buf, size_t cap, size_t *got, struct cmig_err *err)
{
    struct pieces *p = src;
    (void)err;
    /* The stream asks only for what is left, and for at least a byte. */
    REQUIRE(cap > 0 && p->pos < p->len);
    size_t n = fuzz_draw_byte(&p->sizes) % 17 + 1;
    if (n > cap)
        n = cap;
    if (n > p->len - p->pos)
        n = p->len - p->pos;
    memcpy(buf, p->text + p->pos, n);
    p->pos += n;
    *got = n;
    return 0;
}

/* Checks one chunk against the reference: it must hold statements
 * done+1 .. done+n. Returns the new count. */
static size_t check_chunk(const struct ref *r, const struct cmig_sql_chunk *ch, size_t done,
                          size_t target, size_t at_seed)
{
    REQUIRE(ch->n >= 1 && done + ch->n <= r->n && ch->first == done + 1);
    REQUIRE(target != 0 || ch->n == 1);
    REQUIRE(ch->n == 1 || ch->len <= target);
    const struct ref_stmt *a = &r->v[done], *z = &r->v[done + ch->n - 1];
    REQUIRE(ch->offset == a->offset && ch->offset + ch->len == z->offset + z->len);
    REQUIRE(memcmp(ch->text, r->sql + ch->offset, ch->len) == 0);
    REQUIRE(ch->line == a->line && ch->col == a->col);
    REQUIRE(ch->terminated == z->terminated);

    /* Any byte of the chunk is located as in the whole text. */
    size_t at = ch->len ? at_seed % (ch->len + 1) : 0;
    unsigned line, col, stmt, wl, wc;
    cmig_sql_chunk_locate(ch, at, &line, &col, &stmt);
    whole_pos(r->sql, ch->offset + at, &wl, &wc);
    REQUIRE(line == wl && col == wc);
    size_t k = done;
    while (k + 1 < done + ch->n && r->v[k + 1].offset <= ch->offset + at)
        k++;
    REQUIRE(stmt == k + 1);
    return done + ch->n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t window = data[0] % 64 + 1;
    size_t target = data[1] < 64 ? 0 : (size_t)(data[1] - 64) * 2;
    size_t len = size - 4;
    char *sql = malloc(len ? len : 1); /* exact size, no terminator */
    if (!sql)
        return 0;
    memcpy(sql, data + 4, len);
    const char *nul = memchr(sql, '\0', len);

    struct ref r = {.sql = sql};
    cmig_sql_split(sql, len, add_ref, &r);
    if (r.oom)
        goto out;

    static struct cmig_err err;
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct pieces p = {sql, len, 0, {data + 2, 2, 0}};
    size_t done = 0;
    int rc;
    cmig_err_clear(&err);
    cmig_sqlstream_init_reader(&ss, len, read_pieces, &p);
    ss.window = window;
    while ((rc = cmig_sqlstream_next(&ss, target, &ch, &err)) == 0 && ch.n) {
        done = check_chunk(&r, &ch, done, target, (size_t)data[2] * 7 + data[3]);
        REQUIRE(!nul || ch.offset + ch.len <= (size_t)(nul - sql));
    }
    if (nul) {
        REQUIRE(rc == CMIG_E_MIGRATION && err.code == CMIG_E_MIGRATION);
    } else {
        REQUIRE(rc == 0 && done == r.n && p.pos == len && cmig_sqlstream_at_end(&ss));
        /* The end stays the end. */
        REQUIRE(cmig_sqlstream_next(&ss, target, &ch, &err) == 0 && ch.n == 0);
    }
    cmig_sqlstream_free(&ss);

    /* The whole text in memory: refused at once with a NUL, else the same
     * chunks, pointing into the text itself. */
    cmig_err_clear(&err);
    rc = cmig_sqlstream_init_whole(&ss, sql, len, &err);
    if (nul) {
        REQUIRE(rc == CMIG_E_MIGRATION);
    } else {
        REQUIRE(rc == 0);
        done = 0;
        while ((rc = cmig_sqlstream_next(&ss, target, &ch, &err)) == 0 && ch.n) {
            REQUIRE(ch.text == sql + ch.offset);
            done = check_chunk(&r, &ch, done, target, (size_t)data[3] * 5 + data[2]);
        }
        REQUIRE(rc == 0 && done == r.n && ss.buf == NULL);
    }
    cmig_sqlstream_free(&ss);
out:
    free(r.v);
    free(sql);
    return 0;
}
