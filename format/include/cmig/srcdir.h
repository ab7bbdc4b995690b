/*
 * cmig/srcdir.h - reading migration directories people already have.
 *
 * Four layouts are understood, as the tools that define them read them:
 *   golang-migrate  {version}_{title}.up.sql / .down.sql (.up.json /
 *                   .down.json for MongoDB): one file per direction.
 *   goose           {version}_{name}.sql holding "-- +goose Up" and
 *                   "-- +goose Down" sections ("-- +goose NO TRANSACTION").
 *   dbmate          {version}_{name}.sql holding "-- migrate:up" and
 *                   "-- migrate:down" sections ("transaction:false").
 *   flyway          V{version}__{description}.sql, U{version}__... as down.
 *
 * Scanning looks at names (and, for auto-detection, at the first lines of
 * .sql files); it validates everything that can be known from names:
 * duplicate versions, a down without its up, versions that do not fit in a
 * signed 64-bit integer, names that are not valid UTF-8. Splitting a file's
 * content into its up and down sections is a separate step
 * (cmig_srcdir_sections), so that a builder holds one file in memory at a
 * time.
 */
#ifndef CMIG_SRCDIR_H
#define CMIG_SRCDIR_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/sqlscan.h"

enum cmig_dir_format {
    CMIG_DIR_AUTO = 0,
    CMIG_DIR_GOLANG_MIGRATE,
    CMIG_DIR_GOOSE,
    CMIG_DIR_DBMATE,
    CMIG_DIR_FLYWAY
};

/* "auto", "golang-migrate", "goose", "dbmate", "flyway"; parse returns -1
 * for an unknown word. */
const char *cmig_dir_format_name(enum cmig_dir_format f);
int cmig_dir_format_parse(const char *s);

enum cmig_content {
    CMIG_CONTENT_SQL = 0,
    CMIG_CONTENT_JSON = 1 /* MongoDB commands (golang-migrate's .json) */
};

/* One migration found in a directory. File names are relative to the
 * directory. For goose and dbmate, up_file and down_file are the same file
 * (down_file is NULL when the file has no down section is only known after
 * cmig_srcdir_sections; scanning sets it to the same file). */
struct cmig_src_migration {
    int64_t version;
    char *name;      /* title / description, valid UTF-8, never empty */
    char *up_file;   /* never NULL */
    char *down_file; /* NULL when there is none */
    enum cmig_content content;
};

struct cmig_srcdir {
    enum cmig_dir_format format; /* the format used (detected or forced) */
    size_t n;
    struct cmig_src_migration *migrations; /* sorted by version, ascending */
    size_t n_warnings;
    char **warnings; /* e.g. "skipped 'README.md': not a migration file name" */
};

/* Lists the regular files of dir (not recursive; entries starting with '.'
 * are ignored), detects or applies the format, and fills out. Errors name
 * the file(s) concerned. Free with cmig_srcdir_free (also after failure). */
int cmig_srcdir_scan(struct cmig_srcdir *out, const char *dir, enum cmig_dir_format format,
                     struct cmig_err *err);
void cmig_srcdir_free(struct cmig_srcdir *d);

/* One direction of a migration, as found in a file's content. */
struct cmig_section {
    int present;   /* 0: this direction does not exist */
    size_t offset; /* the section's bytes are data[offset, offset+len) */
    size_t len;
    unsigned line;   /* 1-based line of data where the section starts */
    int tx_override; /* -1: none; else an enum cmig_txmode the file's own
                        syntax asks for (goose NO TRANSACTION, dbmate
                        transaction:false) */
};

/* Splits the content of one migration file (named file, for messages) of
 * the given format into its up and down sections. For golang-migrate and
 * flyway the whole file is one direction: is_down says which. For goose and
 * dbmate, the up section is required; the down section is optional. The
 * section bytes are exactly the file's bytes between the marker lines
 * (marker lines excluded). */
int cmig_srcdir_sections(enum cmig_dir_format format, const char *file, const char *data,
                         size_t len, int is_down, struct cmig_section *up,
                         struct cmig_section *down, struct cmig_err *err);

/* Whether s (len bytes) is valid UTF-8 (no overlongs, no surrogates). */
int cmig_utf8_valid(const char *s, size_t len);

#endif
