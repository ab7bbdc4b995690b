/*
 * fuzz_sqlscan.c - libFuzzer target for the SQL lexer.
 *
 * Whatever the bytes, the statements reported must come in order, lie
 * inside the input, not overlap, start and end on significant bytes, and
 * carry the line and column of their first byte; cmig_sql_has_statements
 * must agree with the split; stopping early must return the callback's
 * value; and transaction-mode detection must give a consistent, bounded
 * reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cmig/sqlscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk {
    const uint8_t *data;
    size_t size;
    size_t n;
    size_t prev_end;
    size_t pos; /* line/col recomputed incrementally up to here */
    unsigned line;
    size_t line_start;
    size_t stop_at; /* return 7 at this statement (1-based), 0: never */
};

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int on_stmt(void *ctx, const struct cmig_sql_stmt *st)
{
    struct walk *w = ctx;
    if (st->len == 0 || st->offset < w->prev_end || st->offset > w->size ||
        st->len > w->size - st->offset)
        __builtin_trap();
    const uint8_t *p = w->data + st->offset;
    /* only an unterminated quote or comment may run on to the end */
    if (is_space(p[0]) || (st->offset + st->len < w->size && is_space(p[st->len - 1])))
        __builtin_trap();
    /* a statement never starts with a comment or an empty ';' */
    if (p[0] == ';' || (st->len >= 2 && p[0] == '-' && p[1] == '-') ||
        (st->len >= 2 && p[0] == '/' && p[1] == '*'))
        __builtin_trap();
    for (; w->pos < st->offset; w->pos++)
        if (w->data[w->pos] == '\n') {
            w->line++;
            w->line_start = w->pos + 1;
        }
    if (st->line != w->line || st->col != st->offset - w->line_start + 1)
        __builtin_trap();
    w->prev_end = st->offset + st->len;
    w->n++;
    return w->n == w->stop_at ? 7 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sql = (const char *)data;
    struct walk w;
    char reason[96], small[9];

    memset(&w, 0, sizeof w);
    w.data = data;
    w.size = size;
    w.line = 1;
    if (cmig_sql_split(sql, size, on_stmt, &w) != 0)
        __builtin_trap();
    size_t total = w.n;
    if (cmig_sql_has_statements(sql, size) != (total > 0))
        __builtin_trap();

    if (total > 0) {
        size_t k = total / 2 + 1;
        memset(&w, 0, sizeof w);
        w.data = data;
        w.size = size;
        w.line = 1;
        w.stop_at = k;
        if (cmig_sql_split(sql, size, on_stmt, &w) != 7 || w.n != k)
            __builtin_trap();
    }

    memset(reason, 0x7f, sizeof reason);
    enum cmig_txmode m = cmig_sql_detect_txmode(sql, size, reason, sizeof reason);
    if (m != CMIG_TX_TRANSACTION && m != CMIG_TX_NONE)
        __builtin_trap();
    if (!memchr(reason, '\0', sizeof reason))
        __builtin_trap();
    if (m == CMIG_TX_NONE && reason[0] == '\0')
        __builtin_trap();
    if (reason[0] && strncmp(reason, "line ", 5) != 0 &&
        strncmp(reason, "annotation -- cmig:", 19) != 0)
        __builtin_trap();
    /* keyword reasons need a statement */
    if (strncmp(reason, "line ", 5) == 0 && (total == 0 || m != CMIG_TX_NONE))
        __builtin_trap();

    memset(small, 0x7f, sizeof small);
    if (cmig_sql_detect_txmode(sql, size, small, sizeof small) != m ||
        !memchr(small, '\0', sizeof small) || strncmp(small, reason, sizeof small - 1) != 0)
        __builtin_trap();
    if (cmig_sql_detect_txmode(sql, size, NULL, 0) != m)
        __builtin_trap();
    const char *name = cmig_txmode_name(m);
    if (cmig_txmode_parse(name) != (int)m)
        __builtin_trap();
    return 0;
}
