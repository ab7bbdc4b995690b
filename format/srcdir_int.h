/*
 * srcdir_int.h - what the pieces of the migration directory reader share:
 * the marker-line recognisers (used both to split a file into sections and
 * to guess a directory's format from its first lines) and the UTF-8
 * helpers used to validate and print file names.
 */
#ifndef CMIG_SRCDIR_INT_H
#define CMIG_SRCDIR_INT_H

#include <stddef.h>

/* How a goose annotation line reads. A line is an annotation line when,
 * without its leading blanks, it starts with "--" and it holds "+goose"
 * anywhere (as goose itself decides). */
enum cmig_goose_ann {
    CMIG_GOOSE_NONE = 0,   /* not an annotation line: plain SQL or comment */
    CMIG_GOOSE_UP,         /* -- +goose Up (any letter case) */
    CMIG_GOOSE_DOWN,       /* -- +goose Down */
    CMIG_GOOSE_STMT_BEGIN, /* -- +goose StatementBegin */
    CMIG_GOOSE_STMT_END,   /* -- +goose StatementEnd */
    CMIG_GOOSE_NO_TX,      /* -- +goose NO TRANSACTION */
    CMIG_GOOSE_ENVSUB_ON,  /* -- +goose ENVSUB ON */
    CMIG_GOOSE_ENVSUB_OFF, /* -- +goose ENVSUB OFF */
    CMIG_GOOSE_INDENTED,   /* an annotation line that does not start at column 1 */
    CMIG_GOOSE_UNKNOWN     /* an annotation line goose would refuse */
};

/* Classifies one line (n bytes, without its line terminator). */
enum cmig_goose_ann cmig_goose_annotation(const char *line, size_t n);

/* dbmate block markers: "--", optional blanks, "migrate:up" or
 * "migrate:down", then only blanks or blanks and options. */
enum cmig_dbmate_marker { CMIG_DBMATE_NONE = 0, CMIG_DBMATE_UP, CMIG_DBMATE_DOWN };

/* Classifies one line; for a marker, *opt receives the offset in line
 * where the options (if any) begin. */
enum cmig_dbmate_marker cmig_dbmate_marker(const char *line, size_t n, size_t *opt);

/* Length (1..4) of the well-formed UTF-8 sequence at s, or 0 when the
 * bytes there are not one (truncated, overlong, surrogate, > U+10FFFF). */
size_t cmig_utf8_seq(const unsigned char *s, size_t len);

/* Writes s (len bytes, any content) into out as printable text for a
 * message: well-formed UTF-8 other than control characters is kept, every
 * other byte becomes \xNN. Always NUL-terminates; "..." marks a cut. */
void cmig_escape_name(char *out, size_t cap, const char *s, size_t len);

/* Whether a file name can be used as is: well-formed UTF-8 without C0 or
 * C1 control characters or DEL. */
int cmig_name_printable(const char *s, size_t len);

#endif
