/*
 * cmig/manifest.h - the bundle manifest: a SQLite database, written
 * deterministically and read back hardened.
 *
 * The manifest is the first entry of a bundle (manifest.db). Its exact
 * schema is in docs/FORMAT.md and manifest.c; a manifest whose schema is
 * not exactly that one is refused. cmig_manifest_load only ever runs on
 * bytes whose SHA-256 was checked against a signed trusted comment, or, for
 * an explicitly unverified read, behind the same hardening (defensive mode,
 * no triggers or views, untrusted schema, limits, quick_check).
 */
#ifndef CMIG_MANIFEST_H
#define CMIG_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/semver.h"
#include "cmig/sqlscan.h"

#define CMIG_FORMAT_VERSION 1
#define CMIG_MANIFEST_APPLICATION_ID 0x434d4947 /* "CMIG" */
#define CMIG_MANIFEST_NAME "manifest.db"
#define CMIG_BUNDLE_NAME_MAX 128
#define CMIG_PATH_MAX 255

struct cmig_strings;

/* One direction (up or down) of a migration as stored in the bundle. */
struct cmig_file {
    char *path; /* entry name in the archive; NULL: no such direction */
    uint64_t size;
    uint8_t sha256[32];
    char *tx_reason; /* "" or e.g. "line 3: CREATE INDEX CONCURRENTLY" */
    char *source;    /* the file it came from, relative to the source dir */
    enum cmig_txmode tx;
    uint32_t source_line; /* first line of the section in that file (1-based) */
};

struct cmig_migration {
    int64_t version;
    char *name;
    struct cmig_file up;
    struct cmig_file down;
};

struct cmig_manifest {
    int format_version;
    char *name; /* [A-Za-z0-9._-], 1..CMIG_BUNDLE_NAME_MAX */
    struct cmig_semver version;
    int64_t created_at;    /* unix seconds: SOURCE_DATE_EPOCH, or 0 */
    char *source_revision; /* "" when not given */
    char *builder;         /* "cmig-bundle X.Y.Z" */
    char *driver;          /* "postgres", "sqlite" or "mongodb" */
    char *dir_format;      /* cmig_dir_format_name() of the source */
    size_t n;
    struct cmig_migration *migrations; /* ascending by version */
    struct cmig_strings *strings;      /* cmig_manifest_load: where the migrations' strings live
                                          (one allocation per 64 KiB, not per string); NULL for a
                                          manifest built by hand, whose strings are malloc'd */
};

/* Whether s is a valid bundle name / a valid driver name. */
int cmig_bundle_name_valid(const char *s);
int cmig_driver_valid(const char *s);

/* Whether an archive path is acceptable: relative, at most CMIG_PATH_MAX
 * bytes, printable ASCII without backslash, no empty, "." or ".."
 * component. */
int cmig_path_safe(const char *p);

/* Serialises m into a SQLite database image (malloc'd, free with free()).
 * The same manifest always gives the same bytes with the same SQLite
 * library version. */
int cmig_manifest_serialize(const struct cmig_manifest *m, uint8_t **out, size_t *len,
                            struct cmig_err *err);

/* Opens a SQLite image (from memory, read-only, hardened), checks that it
 * is a cmig manifest of a format version this code reads and that its
 * schema and every value are valid, and loads it. Errors are CMIG_E_VERIFY
 * naming the problem. */
int cmig_manifest_load(struct cmig_manifest **out, const uint8_t *image, size_t len,
                       struct cmig_err *err);

/* Frees a manifest built by cmig_manifest_load or by hand with malloc'd
 * strings; NULL is fine. */
void cmig_manifest_free(struct cmig_manifest *m);

/* The migration with this version, or NULL (binary search). */
const struct cmig_migration *cmig_manifest_find(const struct cmig_manifest *m, int64_t version);

/* Lower-case hex of a 32-byte digest into out[65]. */
void cmig_hex32(const uint8_t d[32], char out[65]);

#endif
