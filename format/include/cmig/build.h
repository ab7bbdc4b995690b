/*
 * cmig/build.h - writing bundles: build, sign, and the append-only check.
 *
 * A build reads the migration directory twice: once to hash every file and
 * decide its transaction mode (the manifest must come first in the
 * archive), and once to write the archive; a file that changes between the
 * two reads fails the build. At most one migration file is held in memory
 * at a time. Output goes to a temporary file in the target directory,
 * fsync'd and renamed into place, so an existing bundle at that path
 * survives any failure.
 */
#ifndef CMIG_BUILD_H
#define CMIG_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/manifest.h"
#include "cmig/srcdir.h"

struct cmig_build_opts {
    const char *dir;                      /* the migrations directory */
    enum cmig_dir_format dir_format;      /* CMIG_DIR_AUTO to detect */
    const char *name;                     /* bundle name */
    const char *version;                  /* SemVer */
    const char *source_revision;          /* NULL or "" when unknown */
    const char *driver;                   /* NULL: inferred (json: mongodb, sql: postgres) */
    int64_t created_at;                   /* SOURCE_DATE_EPOCH, or 0 */
    const char *output;                   /* the .cmig path to write */
    const char *sig_output;               /* NULL: "<output>.minisig"; unused when unsigned */
    const struct cmig_seckey *key;        /* NULL: unsigned bundle */
    const struct cmig_manifest *previous; /* NULL, or the verified previous release */
    const char *builder;                  /* "cmig-bundle X.Y.Z" */
    int mongodb_transactions;             /* record JSON migrations as transactional: cmig-run
                                             runs each in one multi-document transaction */
    /* Optional: called with each warning (skipped files, ...). */
    void (*warn)(void *ctx, const char *msg);
    /* Optional: called as files are written (bytes done, bytes total). */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
};

struct cmig_build_result {
    size_t migrations;
    uint64_t bundle_bytes;
    uint64_t content_bytes;
    uint8_t manifest_sha256[32];
};

int cmig_build(const struct cmig_build_opts *o, struct cmig_build_result *res,
               struct cmig_err *err);

/* Signs an existing bundle file: the caller has opened it (verified
 * structure, CMIG_OPEN_SKIP_SIGNATURE) to learn what it claims (see
 * cmig_claim_of). Writes sig_path atomically. */
struct cmig_claim;
int cmig_sign_file(const char *bundle_path, const char *sig_path, const struct cmig_seckey *key,
                   const struct cmig_claim *claim, struct cmig_err *err);

/* How a migration differs between two manifests. */
enum cmig_diff_kind {
    CMIG_DIFF_ADDED,   /* only in the new manifest */
    CMIG_DIFF_REMOVED, /* only in the old manifest */
    CMIG_DIFF_CHANGED  /* in both, with a different name, up or down file */
};

/* Calls fn for every difference, in version order; old_m or new_m is NULL
 * for added/removed. Returns the number of differences. */
size_t cmig_manifest_diff(const struct cmig_manifest *old, const struct cmig_manifest *cur,
                          void (*fn)(void *ctx, enum cmig_diff_kind kind,
                                     const struct cmig_migration *old_m,
                                     const struct cmig_migration *new_m),
                          void *ctx);

/* What changed in a CMIG_DIFF_CHANGED pair: "name", "up", "down", joined
 * with "+" (e.g. "up+down") into buf. */
void cmig_diff_what(const struct cmig_migration *a, const struct cmig_migration *b, char *buf,
                    size_t cap);

/* The append-only rule between two releases: every migration of old is in
 * new, unchanged (same up and down hashes); no migration new adds is
 * numbered below old's highest; new's version is greater than old's.
 * CMIG_E_HISTORY with one line per violation, naming each migration. */
int cmig_check_append_only(const struct cmig_manifest *old, const struct cmig_manifest *cur,
                           struct cmig_err *err);

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename, fsync of the directory. mode is the file mode (e.g. 0600). */
int cmig_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                           struct cmig_err *err);

#endif
