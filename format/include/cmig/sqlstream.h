/*
 * cmig/sqlstream.h - a migration's SQL read through a bounded window and
 * handed out as whole statements.
 *
 * A migration file comes to a driver either whole (in memory) or as a
 * stream (a large file, read back from a private copy as it is needed).
 * Drivers read both through this one interface, so that what the runner
 * holds at once is bounded by a window (a few hundred KiB, or the longest
 * statement when that is longer), not by the largest file in a bundle.
 *
 * The window always starts where a statement ended, so the lexer's state
 * there is known (outside any quote, comment or block). Until the end of
 * the text is in view, the window is cut after its last newline: a token
 * that touches the cut (a word, a goose marker comment) could go on past
 * it, a whole line cannot. A statement is handed out only when its end is
 * certain: its ';' (or a goose marker) is in view, or the text ends.
 *
 * Text with a NUL byte is refused (CMIG_E_MIGRATION): no database client
 * sends it as written.
 */
#ifndef CMIG_SQLSTREAM_H
#define CMIG_SQLSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"

/* Hands out the next bytes of a text in order: *got = 0 at its end. */
typedef int (*cmig_text_read_fn)(void *src, char *buf, size_t cap, size_t *got,
                                 struct cmig_err *err);

struct cmig_sqlstream {
    /* the source: whole text, or a reader */
    const char *whole;
    cmig_text_read_fn read;
    void *src;
    uint64_t total; /* size of the text */
    uint64_t fed;   /* bytes taken from the source (the whole text: total) */
    /* reader mode: the window's storage */
    char *buf;
    size_t cap;
    size_t window; /* the window's first size (CMIG_SQLSTREAM_WINDOW; tests use tiny ones) */
    /* what is in view and not consumed yet */
    const char *win;
    size_t win_len;
    uint64_t off;       /* offset in the text of win[0] */
    unsigned line, col; /* 1-based position of win[0] */
    unsigned stmts;     /* statements handed out so far */
};

/* One or more whole statements. text is not NUL-terminated and stays valid
 * until the next call on the stream. */
struct cmig_sql_chunk {
    const char *text;
    size_t len;
    uint64_t offset;    /* of text[0] in the whole text */
    unsigned line, col; /* 1-based position of text[0] */
    unsigned first;     /* 1-based number of its first statement */
    unsigned n;         /* statements in it; 0: the text has no more */
    int terminated;     /* its last statement ends with ';' (else the text ended it) */
    size_t lead;        /* bytes before text[0] that were lexed with it: blank space and
                           comments, such as the goose StatementBegin marker that makes
                           its first statement a block; text - lead is valid as long as
                           text. 0 when the chunk starts where its lexing did. */
};

/* The initial window of a stream, and the target size drivers use for a
 * chunk of several statements. */
#define CMIG_SQLSTREAM_WINDOW (64u * 1024)

/* A whole text (not copied: it must outlive the stream). Refuses NUL bytes. */
int cmig_sqlstream_init_whole(struct cmig_sqlstream *s, const char *sql, size_t len,
                              struct cmig_err *err);

/* A text of total bytes read through fn. Nothing is read yet. */
void cmig_sqlstream_init_reader(struct cmig_sqlstream *s, uint64_t total, cmig_text_read_fn fn,
                                void *src);

void cmig_sqlstream_free(struct cmig_sqlstream *s);

/* Whether all of the text is in view (or consumed). */
int cmig_sqlstream_at_end(const struct cmig_sqlstream *s);

/* The part of the window a reader of statements may look at: everything in
 * view at the end of the text, else up to and including its last newline
 * (0 bytes when the window holds no newline yet). */
size_t cmig_sqlstream_view(const struct cmig_sqlstream *s);

/* Brings more of the text into view: moves what is in view to the front of
 * the window, grows the window when it is full, and reads. Call it only
 * when not at the end. */
int cmig_sqlstream_more(struct cmig_sqlstream *s, struct cmig_err *err);

/* Consumes the first n bytes in view (n <= win_len), keeping line and col. */
void cmig_sqlstream_consume(struct cmig_sqlstream *s, size_t n);

/* The 1-based line and column of win[at]. */
void cmig_sqlstream_locate(const struct cmig_sqlstream *s, size_t at, unsigned *line,
                           unsigned *col);

/* The next chunk of PostgreSQL statements (cmig_sql_split's grammar): at
 * least one statement, and more while the chunk stays within target bytes
 * (target 0: exactly one). out->n == 0 at the end of the text. */
int cmig_sqlstream_next(struct cmig_sqlstream *s, size_t target, struct cmig_sql_chunk *out,
                        struct cmig_err *err);

/* Where byte at of a chunk is: line, column and statement number (1-based). */
void cmig_sql_chunk_locate(const struct cmig_sql_chunk *c, size_t at, unsigned *line, unsigned *col,
                           unsigned *stmt);

#endif
