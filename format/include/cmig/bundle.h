/*
 * cmig/bundle.h - opening a bundle: the ONE verification path.
 *
 * Both cmig-bundle and cmig-run open bundles only through cmig_bundle_open.
 * The order is fixed, and is the reason this code exists:
 *
 *   1. read the signature file (capped) and find its key id among the
 *      trusted keys;
 *   2. stream the bundle file (capped) through BLAKE2b-512 and check the
 *      Ed25519 signature and the trusted comment's signature. Until this
 *      succeeds, neither zlib, nor the tar reader, nor SQLite has seen a
 *      byte of the bundle;
 *   3. parse the trusted comment: it names the bundle and the SHA-256 of its
 *      manifest;
 *   4. read the archive again from the same open file: the first entry must
 *      be manifest.db, whose SHA-256 must equal the signed one; only then is
 *      it handed to SQLite (from memory, read-only, hardened);
 *   5. unless CMIG_OPEN_MANIFEST_ONLY, read every further entry and check
 *      that the archive holds exactly the manifest's files, in the
 *      manifest's order, with the manifest's sizes and hashes, and nothing
 *      else, and that the whole file still hashes to the signed value.
 *
 * Every read is capped (struct cmig_limits). A refusal is CMIG_E_VERIFY with
 * a message that names the bundle and the problem.
 */
#ifndef CMIG_BUNDLE_H
#define CMIG_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/manifest.h"
#include "cmig/sig.h"

struct cmig_limits {
    uint64_t max_bundle_bytes;   /* size of the .cmig file */
    uint64_t max_manifest_bytes; /* size of manifest.db */
    uint64_t max_entry_bytes;    /* size of one migration file */
    uint64_t max_total_bytes;    /* sum of all uncompressed entry sizes */
    uint32_t max_entries;        /* number of archive entries */
    uint32_t max_ratio;          /* uncompressed / compressed bytes */
    uint64_t in_memory_max;      /* bundles up to this size are read once into
                                    memory: the signature then covers exactly
                                    the bytes parsed, and nothing is re-read;
                                    larger ones are streamed twice from the
                                    same descriptor, every read hashed */
    uint64_t whole_max;          /* cmig_bundle_each_content hands out files up
                                    to this size whole; larger ones as a
                                    stream from a private compressed copy */
};

/* The defaults documented in docs/FORMAT.md. */
void cmig_limits_default(struct cmig_limits *l);

enum {
    CMIG_OPEN_MANIFEST_ONLY = 1u << 0,  /* stop after the manifest (step 5 skipped) */
    CMIG_OPEN_SKIP_SIGNATURE = 1u << 1, /* no signature: steps 1-3 skipped; the
                                           manifest hash is then not checked
                                           against anything signed. Callers
                                           must say so loudly. */
    CMIG_OPEN_SIGNATURE_ONLY = 1u << 2  /* steps 1-3 only: the archive is not
                                           read (cmig_bundle_manifest returns
                                           NULL until cmig_bundle_load_manifest) */
};

struct cmig_open_opts {
    const struct cmig_keyring *keys; /* trusted keys; required unless SKIP_SIGNATURE */
    const char *sig_path;            /* NULL: "<bundle>.minisig" */
    unsigned flags;
    const struct cmig_limits *limits; /* NULL: defaults */
};

struct cmig_bundle;

/* Opens and verifies a bundle as described above. On success *out owns an
 * open file descriptor on the bundle (so later reads see the same file)
 * and the loaded manifest. Free with cmig_bundle_close. */
int cmig_bundle_open(struct cmig_bundle **out, const char *path, const struct cmig_open_opts *o,
                     struct cmig_err *err);

const struct cmig_manifest *cmig_bundle_manifest(const struct cmig_bundle *b);

/* SHA-256 of manifest.db (the value the trusted comment signs). */
const uint8_t *cmig_bundle_manifest_sha256(const struct cmig_bundle *b);

/* The key that verified the signature, or NULL with SKIP_SIGNATURE. */
const struct cmig_pubkey *cmig_bundle_signer(const struct cmig_bundle *b);

/* The signed trusted comment, or NULL with SKIP_SIGNATURE. */
const char *cmig_bundle_trusted_comment(const struct cmig_bundle *b);

/* Size in bytes of the bundle file. */
uint64_t cmig_bundle_size(const struct cmig_bundle *b);

/* Reads the archive again and hands the content of selected migration files
 * to fn, in archive order. want(ctx, m, is_down) selects files (NULL: all).
 * With fn NULL nothing is handed out: the walk only checks every entry.
 * Every entry is checked against the manifest again as it is read (size
 * and SHA-256 before fn sees it), so what fn receives is exactly what was
 * signed. data is valid only during the call. fn returning non-zero stops
 * the walk and that value is returned. */
int cmig_bundle_each_file(struct cmig_bundle *b,
                          int (*want)(void *ctx, const struct cmig_migration *m, int is_down),
                          int (*fn)(void *ctx, const struct cmig_migration *m, int is_down,
                                    const uint8_t *data, size_t len, struct cmig_err *err),
                          void *ctx, struct cmig_err *err);

struct cmig_spool;

/* A checked migration file, as cmig_bundle_each_content hands it out: whole
 * (data) when it is at most limits.whole_max bytes, else data is NULL and
 * its bytes come from cmig_file_bytes_read, in order, out of a private
 * compressed copy made while its SHA-256 was checked. Valid only during the
 * call. */
struct cmig_file_bytes {
    uint64_t len;
    const uint8_t *data;
    uint64_t pos;             /* bytes cmig_file_bytes_read handed out */
    struct cmig_spool *spool; /* private */
};

/* The next bytes of c (whole or not): *got = 0 at its end. */
int cmig_file_bytes_read(struct cmig_file_bytes *c, uint8_t *buf, size_t cap, size_t *got,
                         struct cmig_err *err);

/* cmig_bundle_each_file for callers that can take a large file as a stream:
 * what is held at once is bounded by whole_max and the compressed size of
 * the largest selected file, not by its size. */
int cmig_bundle_each_content(struct cmig_bundle *b,
                             int (*want)(void *ctx, const struct cmig_migration *m, int is_down),
                             int (*fn)(void *ctx, const struct cmig_migration *m, int is_down,
                                       struct cmig_file_bytes *c, struct cmig_err *err),
                             void *ctx, struct cmig_err *err);

/* Closes the file and frees everything; NULL is fine. */
void cmig_bundle_close(struct cmig_bundle *b);

/* What a bundle's signed trusted comment claims. */
struct cmig_claim {
    char name[CMIG_BUNDLE_NAME_MAX + 1];
    char version[CMIG_SEMVER_MAX + 1];
    uint8_t manifest_sha256[32];
    uint64_t migrations; /* number of migrations in the manifest */
    int64_t last;        /* highest migration version, -1 when there is none */
    int format_version;
};

/* The claim a manifest makes about itself (everything but the hash). */
void cmig_claim_of(struct cmig_claim *c, const struct cmig_manifest *m,
                   const uint8_t manifest_sha256[32]);

/* The trusted comment cmig signs: "cmig-bundle name=NAME version=VERSION
 * manifest-sha256=HEX migrations=N last=V format=N" (docs/FORMAT.md). */
int cmig_trusted_comment_format(char *buf, size_t cap, const struct cmig_claim *c);

/* Parses such a comment. CMIG_E_VERIFY when it is not a cmig trusted
 * comment. */
int cmig_trusted_comment_parse(const char *tc, struct cmig_claim *out, struct cmig_err *err);

/* The signed claim of an opened bundle, or NULL with SKIP_SIGNATURE. */
const struct cmig_claim *cmig_bundle_claim(const struct cmig_bundle *b);

/* After an open with CMIG_OPEN_SIGNATURE_ONLY: reads and checks the
 * manifest (as a MANIFEST_ONLY open does), from the same verified file. */
int cmig_bundle_load_manifest(struct cmig_bundle *b, struct cmig_err *err);

#endif
