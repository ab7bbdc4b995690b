/*
 * cmig/sqlscan.h - a PostgreSQL-aware SQL lexer: statement splitting and
 * transaction-mode detection.
 *
 * The lexer understands what makes a ';' not end a statement: single-quoted
 * strings (with '' escapes), E'' strings (with backslash escapes),
 * double-quoted identifiers, dollar-quoted strings ($$ and $tag$), line
 * comments (--) and nested block comments. It never allocates and never
 * fails: unterminated quotes or comments simply run to the end of the input.
 * It is used by cmig-bundle (to detect statements that cannot run inside a
 * transaction block) and by cmig-run (to split non-transactional
 * migrations into statements).
 */
#ifndef CMIG_SQLSCAN_H
#define CMIG_SQLSCAN_H

#include <stddef.h>

enum cmig_txmode {
    CMIG_TX_TRANSACTION = 0, /* run inside one transaction with its history row */
    CMIG_TX_NONE = 1         /* run statement by statement, outside a transaction */
};

/* "transaction" / "none"; and the reverse (returns -1 for an unknown word). */
const char *cmig_txmode_name(enum cmig_txmode m);
int cmig_txmode_parse(const char *s);

/* One statement of a script. offset/len cover the statement's text from its
 * first significant character through its terminating ';' (when there is
 * one). Leading whitespace and comments are not part of it. line and col
 * (both 1-based, col in bytes) locate offset in the script. terminated is 1
 * when the statement was ended by its ';' (or a goose StatementEnd or
 * StatementBegin marker) and 0 when the end of the input ended it: text
 * read through a window (cmig/sqlstream.h) then does not know yet whether
 * the statement goes on. */
struct cmig_sql_stmt {
    size_t offset;
    size_t len;
    unsigned line;
    unsigned col;
    int terminated;
};

/* Calls fn for each statement in order; a statement made only of
 * whitespace and comments is not reported. Stops early and returns fn's
 * value when fn returns non-zero; returns 0 otherwise.
 *
 * goose's "-- +goose StatementBegin" / "-- +goose StatementEnd" comments
 * are honoured: everything between them is one statement. */
int cmig_sql_split(const char *sql, size_t len,
                   int (*fn)(void *ctx, const struct cmig_sql_stmt *stmt), void *ctx);

/* cmig_sql_split of text that goes on from where a statement of a longer
 * script ended (cmig/sqlstream.h restarts there): mid_line says that
 * sql[0] is not at the start of a line, so a goose marker comment right
 * there is not a marker, as it is not in the whole script. */
int cmig_sql_split_at(const char *sql, size_t len, int mid_line,
                      int (*fn)(void *ctx, const struct cmig_sql_stmt *stmt), void *ctx);

/* Whether the script holds at least one statement (not just comments). */
int cmig_sql_has_statements(const char *sql, size_t len);

/* Decides how a SQL migration must run.
 *
 * An explicit annotation wins: a line comment "-- cmig:no-transaction" or
 * "-- cmig:transaction" anywhere in the script (case-insensitive, blanks
 * allowed; when both appear, no-transaction wins). Otherwise the mode is NONE
 * when any statement is one that PostgreSQL refuses inside a transaction
 * block (CREATE/DROP INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY, VACUUM,
 * CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER SYSTEM, ...) or one
 * that manages transactions itself (BEGIN, COMMIT, ...), and TRANSACTION
 * otherwise.
 *
 * When reason is not NULL it receives a short NUL-terminated explanation
 * such as "line 3: CREATE INDEX CONCURRENTLY" or "annotation
 * -- cmig:no-transaction (line 1)" (at most reason_cap bytes), or "" for a
 * plain transactional script. */
enum cmig_txmode cmig_sql_detect_txmode(const char *sql, size_t len, char *reason,
                                        size_t reason_cap);

#endif
