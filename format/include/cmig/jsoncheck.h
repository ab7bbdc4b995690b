/*
 * cmig/jsoncheck.h - MongoDB migrations: a JSON array of database commands
 * in MongoDB extended JSON (golang-migrate's MongoDB format).
 *
 * One parser serves both programs: cmig-bundle refuses to build a bundle
 * whose migration does not parse, and the MongoDB driver of cmig-run
 * parses the same bytes again before it runs the first command, so a
 * migration either runs whole-file-parsed or not at all. The parser is
 * libbson's (its extended JSON reader); this header exposes no libbson
 * type, so that nothing else needs libbson's headers.
 */
#ifndef CMIG_JSONCHECK_H
#define CMIG_JSONCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"

/* More commands than this in one migration are refused. */
#define CMIG_JSON_COMMANDS_MAX 100000

/* A parsed migration: every command as a BSON document, in file order. */
struct cmig_json_migration {
    uint8_t *bson; /* the array as one BSON document {"0": {...}, "1": {...}} */
    size_t bson_len;
    size_t n;       /* number of commands */
    size_t *offset; /* byte offset in the source where command i starts */
};

/* Parses data (len bytes, not NUL-terminated) into out. It must be exactly
 * one JSON array (whitespace around it is fine) whose elements are
 * non-empty JSON objects; an empty array is allowed. Errors are
 * CMIG_E_INPUT: "'<what>': line L, column C: <libbson's message>" (the
 * position when libbson gives one), or libbson's message alone when what
 * is NULL (the caller names the file and shows the position). *line and
 * *col (either may be NULL) receive the 1-based position of the failure,
 * 0 when unknown. Free out with
 * cmig_json_migration_free, also after a failure. */
int cmig_json_migration_parse(struct cmig_json_migration *out, const char *data, size_t len,
                              const char *what, unsigned *line, unsigned *col,
                              struct cmig_err *err);

void cmig_json_migration_free(struct cmig_json_migration *m);

/* Only checks that data parses (as above); what names the file. */
int cmig_json_migration_check(const char *data, size_t len, const char *what, struct cmig_err *err);

/* The 1-based line and column (in characters) of byte offset off in data. */
void cmig_json_line_col(const char *data, size_t len, size_t off, unsigned *line, unsigned *col);

#endif
