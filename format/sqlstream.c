/*
 * sqlstream.c - a migration's SQL through a bounded window, handed out as
 * whole statements (see cmig/sqlstream.h).
 *
 * The invariant every function keeps: win[0] is where a statement ended
 * (or the text's start), so lexing can always restart there from a clean
 * state. Statements are re-lexed from win[0] at each call and the scan
 * stops as soon as the chunk is full, so each byte is lexed about twice.
 */
#include "cmig/sqlstream.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/sqlscan.h"

/* Moves a position over n bytes of text. Columns count characters (UTF-8
 * lead bytes), as editors and PostgreSQL's error positions do. */
static void advance(const char *p, size_t n, unsigned *line, unsigned *col)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        unsigned c = *col;
        for (; p < stop; p++)
            if (((unsigned char)*p & 0xC0) != 0x80 && c < UINT_MAX)
                c++;
        *col = c;
        if (!nl)
            return;
        if (*line < UINT_MAX)
            (*line)++;
        *col = 1;
        p = nl + 1;
    }
}

int cmig_sqlstream_init_whole(struct cmig_sqlstream *s, const char *sql, size_t len,
                              struct cmig_err *err)
{
    memset(s, 0, sizeof *s);
    s->whole = sql ? sql : "";
    s->total = s->fed = len;
    s->win = s->whole;
    s->win_len = sql ? len : 0;
    s->line = s->col = 1;
    const char *nul = s->win_len ? memchr(s->win, '\0', s->win_len) : NULL;
    if (nul)
        return cmig_err_set(err, CMIG_E_MIGRATION, "the migration contains a NUL byte (offset %zu)",
                            (size_t)(nul - s->win));
    return 0;
}

void cmig_sqlstream_init_reader(struct cmig_sqlstream *s, uint64_t total, cmig_text_read_fn fn,
                                void *src)
{
    memset(s, 0, sizeof *s);
    s->read = fn;
    s->src = src;
    s->total = total;
    s->window = CMIG_SQLSTREAM_WINDOW;
    s->win = "";
    s->line = s->col = 1;
}

void cmig_sqlstream_free(struct cmig_sqlstream *s)
{
    if (!s)
        return;
    free(s->buf);
    s->buf = NULL;
    s->win = "";
    s->win_len = 0;
}

int cmig_sqlstream_at_end(const struct cmig_sqlstream *s)
{
    return s->fed >= s->total;
}

size_t cmig_sqlstream_view(const struct cmig_sqlstream *s)
{
    if (cmig_sqlstream_at_end(s))
        return s->win_len;
    if (!s->win_len)
        return 0;
    const char *nl = memrchr(s->win, '\n', s->win_len);
    return nl ? (size_t)(nl - s->win) + 1 : 0;
}

int cmig_sqlstream_more(struct cmig_sqlstream *s, struct cmig_err *err)
{
    if (cmig_sqlstream_at_end(s) || !s->read)
        return 0;
    if (s->buf && s->win != s->buf) {
        memmove(s->buf, s->win, s->win_len);
        s->win = s->buf;
    }
    if (!s->buf || s->win_len == s->cap) {
        /* Full of one unfinished statement (or line): grow, up to what is
         * left of the text. */
        uint64_t left = s->total - s->off;
        if (left <= s->win_len)
            return 0; /* the window holds the rest of the text already */
        uint64_t want = s->cap ? (uint64_t)s->cap * 2 : s->window ? s->window : 1;
        if (want > left)
            want = left;
        if (want > SIZE_MAX / 2)
            return cmig_err_set(err, CMIG_E_MIGRATION, "a statement is too large to run");
        char *nb = realloc(s->buf, (size_t)want);
        if (!nb)
            return cmig_err_nomem(err);
        s->buf = nb;
        s->win = nb;
        s->cap = (size_t)want;
    }
    while (s->win_len < s->cap && s->fed < s->total) {
        size_t room = s->cap - s->win_len;
        if ((uint64_t)room > s->total - s->fed)
            room = (size_t)(s->total - s->fed);
        size_t got = 0;
        int rc = s->read(s->src, s->buf + s->win_len, room, &got, err);
        if (rc)
            return rc;
        if (got == 0 || got > room)
            return cmig_err_set(err, CMIG_E_INTERNAL,
                                "the migration's text ended after %llu of %llu bytes",
                                (unsigned long long)s->fed, (unsigned long long)s->total);
        const char *nul = memchr(s->buf + s->win_len, '\0', got);
        if (nul)
            return cmig_err_set(err, CMIG_E_MIGRATION,
                                "the migration contains a NUL byte (offset %llu)",
                                (unsigned long long)s->off + (unsigned long long)(nul - s->buf));
        s->win_len += got;
        s->fed += got;
    }
    return 0;
}

void cmig_sqlstream_consume(struct cmig_sqlstream *s, size_t n)
{
    if (n > s->win_len)
        n = s->win_len;
    advance(s->win, n, &s->line, &s->col);
    s->win += n;
    s->win_len -= n;
    s->off += n;
}

void cmig_sqlstream_locate(const struct cmig_sqlstream *s, size_t at, unsigned *line, unsigned *col)
{
    *line = s->line;
    *col = s->col;
    advance(s->win, at < s->win_len ? at : s->win_len, line, col);
}

/* What one scan of the view takes for a chunk. */
struct take {
    size_t target;
    int at_end;
    unsigned n;
    size_t start, end;
    int terminated;
};

static int take_stmt(void *ctx, const struct cmig_sql_stmt *st)
{
    struct take *t = ctx;
    if (!st->terminated && !t->at_end)
        return 1; /* it may go on past the view */
    size_t end = st->offset + st->len;
    if (t->n == 0)
        t->start = st->offset;
    else if (end - t->start > t->target)
        return 1;
    t->end = end;
    t->terminated = st->terminated;
    t->n++;
    return t->target == 0 || t->n == UINT_MAX;
}

int cmig_sqlstream_next(struct cmig_sqlstream *s, size_t target, struct cmig_sql_chunk *out,
                        struct cmig_err *err)
{
    memset(out, 0, sizeof *out);
    for (;;) {
        struct take t = {.target = target, .at_end = cmig_sqlstream_at_end(s)};
        size_t view = cmig_sqlstream_view(s);
        /* The window starts at the text's start or right after a
         * statement's last byte, which is never a line break: a comment
         * there shares that statement's line. */
        cmig_sql_split_at(s->win, view, s->off != 0, take_stmt, &t);
        if (t.n) {
            out->text = s->win + t.start;
            out->len = t.end - t.start;
            out->offset = s->off + t.start;
            cmig_sqlstream_locate(s, t.start, &out->line, &out->col);
            out->first = s->stmts + 1;
            out->n = t.n;
            out->terminated = t.terminated;
            out->lead = t.start;
            s->stmts += t.n;
            /* The text stays where it is until the next call moves it. */
            cmig_sqlstream_consume(s, t.end);
            return 0;
        }
        if (t.at_end) {
            cmig_sqlstream_consume(s, s->win_len);
            return 0;
        }
        int rc = cmig_sqlstream_more(s, err);
        if (rc)
            return rc;
    }
}

struct count_upto {
    size_t at;
    unsigned n;
};

static int count_upto(void *ctx, const struct cmig_sql_stmt *st)
{
    struct count_upto *c = ctx;
    if (st->offset > c->at)
        return 1;
    c->n++;
    return 0;
}

void cmig_sql_chunk_locate(const struct cmig_sql_chunk *c, size_t at, unsigned *line, unsigned *col,
                           unsigned *stmt)
{
    if (at > c->len)
        at = c->len;
    *line = c->line;
    *col = c->col;
    advance(c->text, at, line, col);
    /* Statements are counted from where they were lexed, not from text[0]:
     * a goose block's StatementBegin marker lies before its first byte, and
     * without it the block's inner ';' would count as statement ends. */
    struct count_upto cu = {c->lead + at, 0};
    cmig_sql_split_at(c->text - c->lead, c->lead + c->len, c->offset != c->lead, count_upto, &cu);
    *stmt = c->first + (cu.n ? cu.n - 1 : 0);
}
