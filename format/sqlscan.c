/*
 * sqlscan.c - a PostgreSQL-aware SQL lexer: statement splitting and
 * transaction-mode detection.
 *
 * Invariant: a ';' ends a statement only where PostgreSQL itself would see
 * a top-level ';' token - never inside a string (standard_conforming_strings
 * on: only E'' strings know backslash escapes), a quoted identifier, a
 * dollar quote, a comment, parentheses, or the BEGIN ... END body of a
 * SQL-standard CREATE FUNCTION/PROCEDURE (the same heuristic psql uses).
 * Keywords are only ever matched against unquoted word tokens at the start
 * of a statement, so nothing quoted, commented or dollar-quoted can change
 * how a migration runs.
 *
 * The lexer runs over whole migration sets, so it makes one forward pass,
 * never allocates, and looks at each byte a bounded number of times: runs
 * are skipped with memchr, a dollar-quote tag comparison stops at the next
 * '$' (a tag holds none), and line numbers are counted lazily, only for
 * the offsets that are reported.
 *
 * When a script holds both "-- cmig:no-transaction" and
 * "-- cmig:transaction", no-transaction wins: running a transactional
 * script statement by statement only loses atomicity, while forcing a
 * transaction on a statement PostgreSQL refuses in one always fails.
 */
#include "cmig/sqlscan.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum tok {
    T_EOF,
    T_WORD,   /* unquoted identifier or keyword */
    T_QIDENT, /* "quoted identifier", U&"..." */
    T_STRING, /* '...', E'...', U&'...' */
    T_DOLLAR, /* $$...$$, $tag$...$tag$ */
    T_PARAM,  /* $1 */
    T_NUMBER,
    T_SEMI,
    T_LPAREN,
    T_RPAREN,
    T_OP, /* any other byte */
    T_LINE_COMMENT,
    T_BLOCK_COMMENT
};

struct token {
    enum tok kind;
    size_t off, len;
};

struct lexer {
    const unsigned char *s;
    size_t n, pos;
};

/* Byte classes, as PostgreSQL's lexer sees them: SP white space, ST
 * ident_start (letters, '_', every byte >= 0x80), DG digit, DL '$'. Every
 * class but SP may continue an identifier ('$' too, which is why "a$b$" is
 * one identifier and not the start of a dollar quote). */
enum { C_SPACE = 1, C_START = 2, C_DIGIT = 4, C_CONT = 8 };
enum { SP = C_SPACE, ST = C_START | C_CONT, DG = C_DIGIT | C_CONT, DL = C_CONT };

/* clang-format off */
static const unsigned char byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, SP, SP, SP, SP, SP, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    SP, 0, 0, 0, DL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    DG, DG, DG, DG, DG, DG, DG, DG, DG, DG, 0, 0, 0, 0, 0, 0,
    0, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, 0, 0, 0, 0, ST,
    0, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, 0, 0, 0, 0, 0,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
    ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST, ST,
};
/* clang-format on */

static int is_space(unsigned char c)
{
    return byte_class[c] & C_SPACE;
}

static int is_digit(unsigned char c)
{
    return byte_class[c] & C_DIGIT;
}

static int is_ident_start(unsigned char c)
{
    return byte_class[c] & C_START;
}

static int is_ident_cont(unsigned char c)
{
    return byte_class[c] & C_CONT;
}

/* s[i] is just past an opening quote q; returns the index just past the
 * closing one (a doubled quote does not close), or n when unterminated. */
static size_t skip_quoted(const unsigned char *s, size_t n, size_t i, unsigned char q)
{
    for (;;) {
        const unsigned char *p = memchr(s + i, q, n - i);
        if (!p)
            return n;
        i = (size_t)(p - s) + 1;
        if (i < n && s[i] == q) {
            i++;
            continue;
        }
        return i;
    }
}

/* The body of an E'' string: backslash escapes any byte, '' is a quote. */
static size_t skip_escape_string(const unsigned char *s, size_t n, size_t i)
{
    while (i < n) {
        unsigned char c = s[i];
        if (c == '\\') {
            if (n - i < 2)
                return n;
            i += 2;
        } else if (c == '\'') {
            if (i + 1 < n && s[i + 1] == '\'') {
                i += 2;
                continue;
            }
            return i + 1;
        } else {
            i++;
        }
    }
    return n;
}

/* s[i] is '$'. When a dollar-quote delimiter ($$ or $tag$, tag not starting
 * with a digit) starts there, returns the index just past it, else 0. */
static size_t dollar_delim_end(const unsigned char *s, size_t n, size_t i)
{
    size_t j = i + 1;
    if (j < n && is_ident_start(s[j])) {
        j++;
        while (j < n && (is_ident_start(s[j]) || is_digit(s[j])))
            j++;
    }
    if (j < n && s[j] == '$')
        return j + 1;
    return 0;
}

/* Finds the delimiter d (dlen bytes, '$' at both ends, none inside) from
 * s[i]. Each candidate '$' is compared only up to the next '$', so the
 * search stays linear whatever the tag length. */
static size_t skip_dollar_body(const unsigned char *s, size_t n, size_t i, const unsigned char *d,
                               size_t dlen)
{
    while (i < n) {
        const unsigned char *p = memchr(s + i, '$', n - i);
        if (!p)
            return n;
        size_t k = (size_t)(p - s);
        if (n - k >= dlen) {
            size_t m = 1;
            while (m < dlen && s[k + m] == d[m])
                m++;
            if (m == dlen)
                return k + dlen;
        }
        i = k + 1;
    }
    return n;
}

/* s[i] is just past "/" "*"; comments nest. */
static size_t skip_block_comment(const unsigned char *s, size_t n, size_t i)
{
    size_t depth = 1;
    while (i + 1 < n) {
        if (s[i] == '*' && s[i + 1] == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else if (s[i] == '/' && s[i + 1] == '*') {
            i += 2;
            depth++;
        } else {
            i++;
        }
    }
    return n;
}

static inline void lex_next(struct lexer *lx, struct token *t)
{
    const unsigned char *s = lx->s;
    size_t n = lx->n, i = lx->pos, e;
    enum tok k;

    while (i < n && is_space(s[i]))
        i++;
    t->off = i;
    if (i >= n) {
        t->kind = T_EOF;
        t->len = 0;
        lx->pos = n;
        return;
    }
    unsigned char c = s[i];
    unsigned char c1 = i + 1 < n ? s[i + 1] : 0;
    switch (c) {
    case '\'':
        k = T_STRING;
        e = skip_quoted(s, n, i + 1, '\'');
        break;
    case '"':
        k = T_QIDENT;
        e = skip_quoted(s, n, i + 1, '"');
        break;
    case ';':
        k = T_SEMI;
        e = i + 1;
        break;
    case '(':
        k = T_LPAREN;
        e = i + 1;
        break;
    case ')':
        k = T_RPAREN;
        e = i + 1;
        break;
    case '-':
        if (c1 == '-' && i + 1 < n) {
            k = T_LINE_COMMENT;
            e = i + 2;
            while (e < n && s[e] != '\n' && s[e] != '\r')
                e++;
        } else {
            k = T_OP;
            e = i + 1;
        }
        break;
    case '/':
        if (c1 == '*' && i + 1 < n) {
            k = T_BLOCK_COMMENT;
            e = skip_block_comment(s, n, i + 2);
        } else {
            k = T_OP;
            e = i + 1;
        }
        break;
    case '$':
        if (i + 1 < n && is_digit(c1)) {
            k = T_PARAM;
            e = i + 1;
            while (e < n && is_digit(s[e]))
                e++;
        } else if ((e = dollar_delim_end(s, n, i)) != 0) {
            k = T_DOLLAR;
            e = skip_dollar_body(s, n, e, s + i, e - i);
        } else {
            k = T_OP;
            e = i + 1;
        }
        break;
    default:
        if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(c1))) {
            k = T_NUMBER;
            e = i + 1;
            while (e < n && (is_ident_start(s[e]) || is_digit(s[e]) || s[e] == '.'))
                e++;
        } else if ((c | 0x20) == 'e' && c1 == '\'' && i + 1 < n) {
            k = T_STRING;
            e = skip_escape_string(s, n, i + 2);
        } else if ((c | 0x20) == 'u' && c1 == '&' && i + 2 < n &&
                   (s[i + 2] == '\'' || s[i + 2] == '"')) {
            k = s[i + 2] == '"' ? T_QIDENT : T_STRING;
            e = skip_quoted(s, n, i + 3, s[i + 2]);
        } else if (is_ident_start(c)) {
            k = T_WORD;
            e = i + 1;
            while (e < n && is_ident_cont(s[e]))
                e++;
        } else {
            k = T_OP;
            e = i + 1;
        }
        break;
    }
    t->kind = k;
    t->len = e - i;
    lx->pos = e;
}

static int is_comment(enum tok k)
{
    return k == T_LINE_COMMENT || k == T_BLOCK_COMMENT;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Whether token t is the unquoted word w (n bytes, lower case). Keywords
 * are compared as literals (WORD_IS), so no strlen runs per token. */
static int word_eq(const unsigned char *s, const struct token *t, const char *w, size_t n)
{
    if (t->kind != T_WORD || t->len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[t->off + i]) != (unsigned char)w[i])
            return 0;
    return 1;
}

#define WORD_IS(s, t, lit) word_eq((s), (t), (lit), sizeof(lit) - 1)

/* Annotation text helpers: p walks a comment's bytes up to e. */
static const unsigned char *skip_blank(const unsigned char *p, const unsigned char *e)
{
    while (p < e && is_space(*p))
        p++;
    return p;
}

static int eat_word(const unsigned char **p, const unsigned char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - *p) < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((*p)[i]) != (unsigned char)w[i])
            return 0;
    *p += n;
    return 1;
}

enum { GOOSE_NONE, GOOSE_BEGIN, GOOSE_END };

/* "-- +goose StatementBegin" / "-- +goose StatementEnd", as goose reads
 * them: a line of its own (leading blanks allowed), case-insensitive.
 * mid_line: s[0] is not where a line starts. */
static int goose_marker(const unsigned char *s, const struct token *t, int mid_line)
{
    size_t k = t->off;
    while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
        k--;
    if (k > 0 ? s[k - 1] != '\n' && s[k - 1] != '\r' : mid_line)
        return GOOSE_NONE;
    const unsigned char *p = s + t->off + 2, *e = s + t->off + t->len;
    p = skip_blank(p, e);
    if (!eat_word(&p, e, "+goose"))
        return GOOSE_NONE;
    p = skip_blank(p, e);
    int g;
    if (eat_word(&p, e, "statementbegin"))
        g = GOOSE_BEGIN;
    else if (eat_word(&p, e, "statementend"))
        g = GOOSE_END;
    else
        return GOOSE_NONE;
    return skip_blank(p, e) == e ? g : GOOSE_NONE;
}

/* "-- cmig:no-transaction" / "-- cmig:transaction", blanks allowed around
 * the colon, anything after a blank ignored; -1 when it is neither. */
static int cmig_annotation(const unsigned char *s, const struct token *t)
{
    const unsigned char *p = s + t->off + 2, *e = s + t->off + t->len;
    p = skip_blank(p, e);
    if (!eat_word(&p, e, "cmig"))
        return -1;
    p = skip_blank(p, e);
    if (p == e || *p != ':')
        return -1;
    p = skip_blank(p + 1, e);
    int m;
    if (eat_word(&p, e, "no-transaction"))
        m = CMIG_TX_NONE;
    else if (eat_word(&p, e, "transaction"))
        m = CMIG_TX_TRANSACTION;
    else
        return -1;
    if (p != e && !is_space(*p))
        return -1;
    return m;
}

/* Statement boundaries, fed one token at a time. */
struct splitter {
    int goose;    /* honour goose StatementBegin/StatementEnd blocks */
    int mid_line; /* the text starts inside a line */
    int in_block; /* inside such a block */
    int open;     /* a statement has started */
    size_t start, end;
    size_t paren;
    size_t body;     /* BEGIN ... END depth of a SQL-standard routine body */
    unsigned nwords; /* leading words looked at */
    int routine;     /* CREATE [OR REPLACE] FUNCTION|PROCEDURE: 1 yes, -1 no, 0 not known yet */
};

struct span {
    size_t start, end;
    int terminated;
};

static int split_close(struct splitter *sp, struct span *done, int terminated)
{
    if (!sp->open)
        return 0;
    done->start = sp->start;
    done->end = sp->end;
    done->terminated = terminated;
    sp->open = 0;
    return 1;
}

/* psql's heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN
 * ATOMIC ... END: inside such a body (CASE ... END nests) a ';' does not
 * end the statement. Whether the statement is such a routine is settled
 * by its first words, so other statements pay one comparison per word. */
static void track_routine_body(struct splitter *sp, const unsigned char *s, const struct token *t)
{
    if (sp->routine == 0) {
        unsigned k = sp->nwords++;
        if (k == 0)
            sp->routine = WORD_IS(s, t, "create") ? 0 : -1;
        else if (k == 1 && WORD_IS(s, t, "or"))
            sp->routine = 0;
        else if (k == 2)
            sp->routine = WORD_IS(s, t, "replace") ? 0 : -1;
        else if ((k == 1 || k == 3) && (WORD_IS(s, t, "function") || WORD_IS(s, t, "procedure")))
            sp->routine = 1;
        else
            sp->routine = -1;
        return;
    }
    if (sp->routine < 0 || sp->paren)
        return;
    if (WORD_IS(s, t, "begin"))
        sp->body++;
    else if (WORD_IS(s, t, "case")) {
        if (sp->body)
            sp->body++;
    } else if (WORD_IS(s, t, "end")) {
        if (sp->body)
            sp->body--;
    }
}

/* Returns 1 and fills done when token t completes a statement. */
static inline int split_token(struct splitter *sp, const unsigned char *s, const struct token *t,
                              struct span *done)
{
    switch (t->kind) {
    case T_BLOCK_COMMENT:
        return 0;
    case T_LINE_COMMENT:
        if (sp->goose) {
            int g = goose_marker(s, t, sp->mid_line);
            if (g == GOOSE_BEGIN && !sp->in_block) {
                sp->in_block = 1;
                return split_close(sp, done, 1);
            }
            if (g == GOOSE_END && sp->in_block) {
                sp->in_block = 0;
                return split_close(sp, done, 1);
            }
        }
        return 0;
    case T_SEMI:
        if (!sp->open)
            return 0;
        sp->end = t->off + 1;
        if (sp->in_block || sp->paren || sp->body)
            return 0;
        return split_close(sp, done, 1);
    case T_EOF:
        return split_close(sp, done, 0);
    default:
        break;
    }
    if (!sp->open) {
        sp->open = 1;
        sp->start = t->off;
        sp->paren = 0;
        sp->body = 0;
        sp->nwords = 0;
        sp->routine = 0;
    }
    sp->end = t->off + t->len;
    if (t->kind == T_LPAREN)
        sp->paren++;
    else if (t->kind == T_RPAREN && sp->paren)
        sp->paren--;
    else if (t->kind == T_WORD && sp->routine >= 0)
        track_routine_body(sp, s, t);
    return 0;
}

/* A forward-only line counter: reported offsets come in increasing order,
 * so counting newlines costs one memchr pass over the script in total. */
struct linepos {
    size_t off;
    size_t line_start;
    unsigned line;
};

static void line_seek(const unsigned char *s, struct linepos *lp, size_t target)
{
    size_t i = lp->off;
    while (i < target) {
        const unsigned char *p = memchr(s + i, '\n', target - i);
        if (!p)
            break;
        i = (size_t)(p - s) + 1;
        lp->line_start = i;
        if (lp->line < UINT_MAX)
            lp->line++;
    }
    if (target > lp->off)
        lp->off = target;
}

static unsigned line_of(const unsigned char *s, size_t off)
{
    struct linepos lp = {0, 0, 1};
    line_seek(s, &lp, off);
    return lp.line;
}

int cmig_sql_split(const char *sql, size_t len,
                   int (*fn)(void *ctx, const struct cmig_sql_stmt *stmt), void *ctx)
{
    return cmig_sql_split_at(sql, len, 0, fn, ctx);
}

int cmig_sql_split_at(const char *sql, size_t len, int mid_line,
                      int (*fn)(void *ctx, const struct cmig_sql_stmt *stmt), void *ctx)
{
    if (!sql || !len || !fn)
        return 0;
    const unsigned char *s = (const unsigned char *)sql;
    struct lexer lx = {s, len, 0};
    struct splitter sp;
    struct linepos lp = {0, 0, 1};
    struct token t;
    struct span done;

    memset(&sp, 0, sizeof sp);
    sp.goose = 1;
    sp.mid_line = mid_line;
    do {
        lex_next(&lx, &t);
        if (!split_token(&sp, s, &t, &done))
            continue;
        line_seek(s, &lp, done.start);
        size_t col = done.start - lp.line_start + 1;
        struct cmig_sql_stmt st = {
            .offset = done.start,
            .len = done.end - done.start,
            .line = lp.line,
            .col = col > UINT_MAX ? UINT_MAX : (unsigned)col,
            .terminated = done.terminated,
        };
        int rc = fn(ctx, &st);
        if (rc)
            return rc;
    } while (t.kind != T_EOF);
    return 0;
}

/* A statement is reported by cmig_sql_split exactly when it holds a token
 * that is neither a comment nor a ';', so the first such token decides. */
int cmig_sql_has_statements(const char *sql, size_t len)
{
    if (!sql || !len)
        return 0;
    struct lexer lx = {(const unsigned char *)sql, len, 0};
    struct token t;
    for (;;) {
        lex_next(&lx, &t);
        if (t.kind == T_EOF)
            return 0;
        if (!is_comment(t.kind) && t.kind != T_SEMI)
            return 1;
    }
}

/* What a statement's leading tokens say. Forms decided by words further
 * in (ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY, subscription
 * options such as WITH (refresh = false)) are followed while the tokens
 * stream by. */
#define LEAD_MAX 24

enum form {
    FORM_UNKNOWN,
    FORM_OTHER,
    FORM_ALTER_TABLE,
    FORM_CREATE_SUBSCRIPTION,
    FORM_ALTER_SUBSCRIPTION
};

/* Subscription options that decide whether a replication slot is touched. */
enum {
    OPT_REFRESH = 1,
    OPT_CREATE_SLOT = 2,
    OPT_CONNECT = 4,
    OPT_FAILOVER = 8,
    OPT_TWO_PHASE = 16
};

struct analysis {
    size_t ntok; /* significant tokens (not comments, not ;) */
    struct token lead[LEAD_MAX];
    size_t depth; /* parentheses */
    enum form form;
    int detach;   /* 1: DETACH, 2: DETACH PARTITION, 3: ... CONCURRENTLY */
    int opt;      /* OPT_* word just seen inside parentheses, or 0 */
    int opt_eq;   /* ... and the '=' after it */
    int opts_set; /* OPT_* named inside parentheses */
    int opts_off; /* OPT_* given a false value */
};

static void an_reset(struct analysis *an)
{
    an->ntok = 0;
    an->depth = 0;
    an->form = FORM_UNKNOWN;
    an->detach = 0;
    an->opt = 0;
    an->opt_eq = 0;
    an->opts_set = 0;
    an->opts_off = 0;
}

/* false, off, 0 or the same as a string: PostgreSQL's boolean "no". */
static int is_false_value(const unsigned char *s, const struct token *t)
{
    if (t->kind == T_WORD)
        return WORD_IS(s, t, "false") || WORD_IS(s, t, "off");
    if (t->kind == T_NUMBER)
        return t->len == 1 && s[t->off] == '0';
    if (t->kind == T_STRING && t->len >= 2 && s[t->off] == '\'' && s[t->off + t->len - 1] == '\'') {
        struct token in = {T_WORD, t->off + 1, t->len - 2};
        return WORD_IS(s, &in, "false") || WORD_IS(s, &in, "off") ||
               (in.len == 1 && s[in.off] == '0');
    }
    return 0;
}

static int subscription_option(const unsigned char *s, const struct token *t)
{
    if (WORD_IS(s, t, "refresh"))
        return OPT_REFRESH;
    if (WORD_IS(s, t, "create_slot"))
        return OPT_CREATE_SLOT;
    if (WORD_IS(s, t, "connect"))
        return OPT_CONNECT;
    if (WORD_IS(s, t, "failover"))
        return OPT_FAILOVER;
    if (WORD_IS(s, t, "two_phase"))
        return OPT_TWO_PHASE;
    return 0;
}

static void an_add(struct analysis *an, const unsigned char *s, const struct token *t)
{
    if (an->ntok < LEAD_MAX)
        an->lead[an->ntok] = *t;
    an->ntok++;
    if (an->form == FORM_UNKNOWN && an->ntok == 2) {
        int alter = WORD_IS(s, &an->lead[0], "alter");
        int create = WORD_IS(s, &an->lead[0], "create");
        if (alter && WORD_IS(s, &an->lead[1], "table"))
            an->form = FORM_ALTER_TABLE;
        else if ((alter || create) && WORD_IS(s, &an->lead[1], "subscription"))
            an->form = alter ? FORM_ALTER_SUBSCRIPTION : FORM_CREATE_SUBSCRIPTION;
        else
            an->form = FORM_OTHER;
    }
    if (an->form == FORM_ALTER_TABLE && an->depth == 0) {
        if (an->detach == 1)
            an->detach = WORD_IS(s, t, "partition") ? 2 : 0;
        else if (an->detach == 0 && WORD_IS(s, t, "detach"))
            an->detach = 1;
        else if (an->detach == 2 && WORD_IS(s, t, "concurrently"))
            an->detach = 3;
    } else if ((an->form == FORM_ALTER_SUBSCRIPTION || an->form == FORM_CREATE_SUBSCRIPTION) &&
               an->depth > 0) {
        if (an->opt && an->opt_eq && is_false_value(s, t))
            an->opts_off |= an->opt;
        if (an->opt && !an->opt_eq && t->kind == T_OP && s[t->off] == '=') {
            an->opt_eq = 1;
        } else {
            an->opt = subscription_option(s, t);
            an->opts_set |= an->opt;
            an->opt_eq = 0;
        }
    }
    if (t->kind == T_LPAREN)
        an->depth++;
    else if (t->kind == T_RPAREN && an->depth)
        an->depth--;
}

static size_t an_nlead(const struct analysis *an)
{
    return an->ntok < LEAD_MAX ? an->ntok : LEAD_MAX;
}

static int lead_word_eq(const struct analysis *an, const unsigned char *s, size_t i, const char *w,
                        size_t n)
{
    return i < an_nlead(an) && word_eq(s, &an->lead[i], w, n);
}

#define LEAD_WORD(an, s, i, lit) lead_word_eq((an), (s), (i), (lit), sizeof(lit) - 1)

/* When lead[i] opens a parenthesised option list, returns the index past
 * its ')' and sets *on when option w is in it and not turned off; returns
 * i when there is no list, and SIZE_MAX when it runs past the kept tokens. */
static size_t lead_options(const struct analysis *an, const unsigned char *s, size_t i,
                           const char *w, int *on)
{
    size_t n = an_nlead(an), depth = 0, wlen = strlen(w);
    *on = 0;
    if (i >= n || an->lead[i].kind != T_LPAREN)
        return i;
    for (; i < n; i++) {
        const struct token *t = &an->lead[i];
        if (t->kind == T_LPAREN) {
            depth++;
        } else if (t->kind == T_RPAREN) {
            if (--depth == 0)
                return i + 1;
        } else if (depth == 1 && word_eq(s, t, w, wlen)) {
            *on = !(i + 1 < n && is_false_value(s, &an->lead[i + 1]));
        }
    }
    return SIZE_MAX;
}

static const char *analyze_create_drop(const struct analysis *an, const unsigned char *s,
                                       int create)
{
    int unique = create && LEAD_WORD(an, s, 1, "unique");
    size_t i = unique ? 2 : 1;
    if (LEAD_WORD(an, s, i, "index") && LEAD_WORD(an, s, i + 1, "concurrently"))
        return create ? (unique ? "CREATE UNIQUE INDEX CONCURRENTLY" : "CREATE INDEX CONCURRENTLY")
                      : "DROP INDEX CONCURRENTLY";
    if (LEAD_WORD(an, s, 1, "database"))
        return create ? "CREATE DATABASE" : "DROP DATABASE";
    if (LEAD_WORD(an, s, 1, "tablespace"))
        return create ? "CREATE TABLESPACE" : "DROP TABLESPACE";
    /* Creating a replication slot cannot be rolled back: CREATE
     * SUBSCRIPTION is refused unless it says create_slot = false (or
     * connect = false, which implies it). Whether DROP SUBSCRIPTION drops
     * a slot depends on the subscription, so the safe side is to assume. */
    if (create && an->form == FORM_CREATE_SUBSCRIPTION)
        return an->opts_off & (OPT_CREATE_SLOT | OPT_CONNECT) ? NULL : "CREATE SUBSCRIPTION";
    if (!create && LEAD_WORD(an, s, 1, "subscription"))
        return "DROP SUBSCRIPTION";
    return NULL;
}

static const char *analyze_reindex(const struct analysis *an, const unsigned char *s)
{
    int conc;
    size_t i = lead_options(an, s, 1, "concurrently", &conc);
    if (i == SIZE_MAX)
        return NULL;
    if (LEAD_WORD(an, s, i, "schema"))
        return "REINDEX SCHEMA";
    if (LEAD_WORD(an, s, i, "database"))
        return "REINDEX DATABASE";
    if (LEAD_WORD(an, s, i, "system"))
        return "REINDEX SYSTEM";
    conc = conc || LEAD_WORD(an, s, i + 1, "concurrently");
    if (conc && LEAD_WORD(an, s, i, "index"))
        return "REINDEX INDEX CONCURRENTLY";
    if (conc && LEAD_WORD(an, s, i, "table"))
        return "REINDEX TABLE CONCURRENTLY";
    return NULL;
}

static const char *analyze_alter(const struct analysis *an, const unsigned char *s)
{
    if (LEAD_WORD(an, s, 1, "system"))
        return "ALTER SYSTEM";
    if (LEAD_WORD(an, s, 1, "database") && LEAD_WORD(an, s, 3, "set") &&
        LEAD_WORD(an, s, 4, "tablespace"))
        return "ALTER DATABASE ... SET TABLESPACE";
    if (an->form == FORM_ALTER_TABLE && an->detach == 3)
        return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY";
    if (an->form != FORM_ALTER_SUBSCRIPTION)
        return NULL;
    /* ALTER SUBSCRIPTION name ACTION: a subscription name is one token. */
    if (LEAD_WORD(an, s, 3, "refresh") && LEAD_WORD(an, s, 4, "publication"))
        return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION";
    if (LEAD_WORD(an, s, 4, "publication") && !(an->opts_off & OPT_REFRESH)) {
        if (LEAD_WORD(an, s, 3, "set"))
            return "ALTER SUBSCRIPTION ... SET PUBLICATION";
        if (LEAD_WORD(an, s, 3, "add"))
            return "ALTER SUBSCRIPTION ... ADD PUBLICATION";
        if (LEAD_WORD(an, s, 3, "drop"))
            return "ALTER SUBSCRIPTION ... DROP PUBLICATION";
    }
    if (LEAD_WORD(an, s, 3, "set") && an_nlead(an) > 4 && an->lead[4].kind == T_LPAREN) {
        if (an->opts_set & OPT_FAILOVER)
            return "ALTER SUBSCRIPTION ... SET (FAILOVER)";
        if (an->opts_set & OPT_TWO_PHASE)
            return "ALTER SUBSCRIPTION ... SET (TWO_PHASE)";
    }
    return NULL;
}

/* The reason a complete statement cannot run inside a transaction block,
 * or NULL when it can. */
static const char *analyze(const struct analysis *an, const unsigned char *s)
{
    if (an->ntok == 0 || an->lead[0].kind != T_WORD)
        return NULL;
    if (LEAD_WORD(an, s, 0, "create"))
        return analyze_create_drop(an, s, 1);
    if (LEAD_WORD(an, s, 0, "drop"))
        return analyze_create_drop(an, s, 0);
    if (LEAD_WORD(an, s, 0, "reindex"))
        return analyze_reindex(an, s);
    if (LEAD_WORD(an, s, 0, "alter"))
        return analyze_alter(an, s);
    if (LEAD_WORD(an, s, 0, "vacuum"))
        return "VACUUM";
    if (LEAD_WORD(an, s, 0, "cluster")) {
        /* Only CLUSTER of every table (no name) is refused. */
        int unused;
        size_t i = lead_options(an, s, 1, "verbose", &unused);
        if (i != SIZE_MAX && LEAD_WORD(an, s, i, "verbose"))
            i++;
        return i == an->ntok ? "CLUSTER" : NULL;
    }
    if (LEAD_WORD(an, s, 0, "discard"))
        return LEAD_WORD(an, s, 1, "all") ? "DISCARD ALL" : NULL;
    /* Statements that manage transactions themselves. */
    if (LEAD_WORD(an, s, 0, "begin"))
        return "BEGIN";
    if (LEAD_WORD(an, s, 0, "start"))
        return LEAD_WORD(an, s, 1, "transaction") ? "START TRANSACTION" : NULL;
    if (LEAD_WORD(an, s, 0, "commit"))
        return LEAD_WORD(an, s, 1, "prepared") ? "COMMIT PREPARED" : "COMMIT";
    if (LEAD_WORD(an, s, 0, "end"))
        return "END";
    if (LEAD_WORD(an, s, 0, "abort"))
        return "ABORT";
    if (LEAD_WORD(an, s, 0, "rollback")) {
        if (LEAD_WORD(an, s, 1, "prepared"))
            return "ROLLBACK PREPARED";
        size_t i = LEAD_WORD(an, s, 1, "work") || LEAD_WORD(an, s, 1, "transaction") ? 2 : 1;
        return LEAD_WORD(an, s, i, "to") ? NULL : "ROLLBACK"; /* ROLLBACK TO SAVEPOINT is fine */
    }
    if (LEAD_WORD(an, s, 0, "prepare"))
        return LEAD_WORD(an, s, 1, "transaction") ? "PREPARE TRANSACTION" : NULL;
    return NULL;
}

enum cmig_txmode cmig_sql_detect_txmode(const char *sql, size_t len, char *reason,
                                        size_t reason_cap)
{
    if (reason && reason_cap)
        reason[0] = '\0';
    if (!sql || !len)
        return CMIG_TX_TRANSACTION;

    const unsigned char *s = (const unsigned char *)sql;
    struct lexer lx = {s, len, 0};
    struct splitter sp;
    struct analysis an;
    struct token t;
    struct span done;
    const char *found = NULL;
    size_t found_off = 0, tx_note_off = 0;
    int tx_note = 0;

    /* Keyword analysis looks at every ';'-separated statement, even inside
     * goose blocks: several statements sent as one string still run in
     * one implicit transaction. */
    memset(&sp, 0, sizeof sp);
    an_reset(&an);
    do {
        lex_next(&lx, &t);
        if (t.kind == T_LINE_COMMENT) {
            int m = cmig_annotation(s, &t);
            if (m == CMIG_TX_NONE) {
                if (reason && reason_cap)
                    snprintf(reason, reason_cap, "annotation -- cmig:no-transaction (line %u)",
                             line_of(s, t.off));
                return CMIG_TX_NONE;
            }
            if (m == CMIG_TX_TRANSACTION && !tx_note) {
                tx_note = 1;
                tx_note_off = t.off;
            }
            continue;
        }
        if (t.kind == T_BLOCK_COMMENT)
            continue;
        if (found || tx_note)
            continue; /* only a no-transaction annotation can change the answer now */
        if (t.kind != T_SEMI && t.kind != T_EOF) {
            if (!sp.open)
                an_reset(&an);
            an_add(&an, s, &t);
        }
        if (split_token(&sp, s, &t, &done)) {
            found = analyze(&an, s);
            found_off = done.start;
        }
    } while (t.kind != T_EOF);

    if (tx_note) {
        if (reason && reason_cap)
            snprintf(reason, reason_cap, "annotation -- cmig:transaction (line %u)",
                     line_of(s, tx_note_off));
        return CMIG_TX_TRANSACTION;
    }
    if (found) {
        if (reason && reason_cap)
            snprintf(reason, reason_cap, "line %u: %s", line_of(s, found_off), found);
        return CMIG_TX_NONE;
    }
    return CMIG_TX_TRANSACTION;
}

const char *cmig_txmode_name(enum cmig_txmode m)
{
    switch (m) {
    case CMIG_TX_TRANSACTION:
        return "transaction";
    case CMIG_TX_NONE:
        return "none";
    }
    return "unknown";
}

int cmig_txmode_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "transaction") == 0)
        return CMIG_TX_TRANSACTION;
    if (strcmp(s, "none") == 0)
        return CMIG_TX_NONE;
    return -1;
}
