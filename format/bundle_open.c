/*
 * bundle_open.c - the one verification path for bundles.
 *
 * Order is the whole point (see cmig/bundle.h): the signature is checked
 * over the file's exact bytes before zlib, the tar reader or SQLite sees
 * any of them; the manifest is trusted only when its SHA-256 equals the
 * signed one; every later entry is trusted only when its size and SHA-256
 * equal the manifest's. All reads happen through one open descriptor, so a
 * file replaced on disk after the signature check cannot be read instead,
 * and a file modified in place is caught by the hashes.
 */
#include "cmig/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "zimage.h"

#define READ_CHUNK (64 * 1024)
#define RATIO_FLOOR (16u * 1024 * 1024) /* ratios are judged above this output */

struct cmig_bundle {
    int fd;
    uint8_t *mem; /* the whole file when it is small, else NULL (streamed) */
    char *path;
    uint64_t size;
    struct cmig_limits lim;
    int is_signed;
    uint8_t prehash[CMIG_PREHASH_BYTES];
    struct cmig_pubkey signer;
    char trusted_comment[CMIG_TRUSTED_COMMENT_MAX + 1];
    struct cmig_claim claim; /* what the trusted comment says, when signed */
    uint8_t manifest_sha256[32];
    struct cmig_manifest *manifest;
};

/* Where the walk is among the expected entries after the manifest: every
 * migration's up, then its down when it has one, in version order. A
 * cursor rather than an index: a 10,000-migration bundle's index would be
 * 640 KB held through the whole run, for a lookup the order already gives. */
struct expect {
    size_t mig;
    int is_down;
};

void cmig_limits_default(struct cmig_limits *l)
{
    l->max_bundle_bytes = 1ull << 30;
    l->max_manifest_bytes = 64ull << 20;
    l->max_entry_bytes = 256ull << 20;
    l->max_total_bytes = 4ull << 30;
    l->max_entries = 100001;
    l->max_ratio = 200;
    l->in_memory_max = 1ull << 20;
    l->whole_max = 1ull << 20;
}

/* ---- reading the file under a hash -------------------------------------- */

struct source {
    struct cmig_bundle *b;
    uint8_t buf[READ_CHUNK];
    crypto_generichash_state hash;
    uint64_t consumed;
    struct cmig_err *err;
};

static la_ssize_t source_read(struct archive *a, void *ctx, const void **out)
{
    struct source *s = ctx;
    if (s->b->mem) {
        /* Already verified bytes: hand them out, no copy, no re-hash. */
        uint64_t left = s->b->size - s->consumed;
        size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        *out = s->b->mem + s->consumed;
        s->consumed += n;
        return (la_ssize_t)n;
    }
    ssize_t n;
    do
        n = read(s->b->fd, s->buf, sizeof s->buf);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        cmig_err_errno(s->err, CMIG_E_IO, errno, "read failed");
        archive_set_error(a, EIO, "read failed");
        return -1;
    }
    s->consumed += (uint64_t)n;
    if (s->consumed > s->b->size) {
        cmig_err_set(s->err, CMIG_E_VERIFY, "file grew while being read");
        archive_set_error(a, EIO, "file grew");
        return -1;
    }
    crypto_generichash_update(&s->hash, s->buf, (unsigned long long)n);
    *out = s->buf;
    return n;
}

/* Hashes what libarchive did not read, to compare the whole file again. */
static int source_drain(struct source *s)
{
    if (s->b->mem)
        return 0;
    for (;;) {
        ssize_t n = read(s->b->fd, s->buf, sizeof s->buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cmig_err_errno(s->err, CMIG_E_IO, errno, "read failed");
        if (n == 0)
            return 0;
        s->consumed += (uint64_t)n;
        crypto_generichash_update(&s->hash, s->buf, (unsigned long long)n);
    }
}

/* ---- step 1-3: signature ------------------------------------------------- */

static int check_signature(struct cmig_bundle *b, const struct cmig_open_opts *o,
                           struct cmig_err *err)
{
    struct cmig_sig *sig = NULL;
    char *sig_path = NULL;
    int rc;
    if (!o->keys || o->keys->n == 0) {
        rc = cmig_err_set(err, CMIG_E_USAGE, "no trusted public key given");
        goto out;
    }
    if (o->sig_path) {
        sig_path = strdup(o->sig_path);
    } else if (asprintf(&sig_path, "%s.minisig", b->path) < 0) {
        sig_path = NULL;
    }
    sig = malloc(sizeof *sig);
    if (!sig_path || !sig) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    if (access(sig_path, F_OK) != 0 && errno == ENOENT) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "unsigned bundle refused: no signature file '%s'",
                          sig_path);
        goto out;
    }
    if ((rc = cmig_sig_load(sig, sig_path, err)))
        goto out;
    const struct cmig_pubkey *key = cmig_keyring_find(o->keys, sig->keyid);
    if (!key) {
        char hex[17];
        cmig_keyid_hex(sig->keyid, hex);
        rc = cmig_err_set(err, CMIG_E_VERIFY,
                          "signed by key %s, which is not among the %zu trusted key(s)", hex,
                          o->keys->n);
        goto out;
    }
    uint64_t size = 0;
    if (b->mem) {
        crypto_generichash(b->prehash, sizeof b->prehash, b->mem, b->size, NULL, 0);
        size = b->size;
    } else if ((rc = cmig_prehash_fd(b->fd, b->lim.max_bundle_bytes, b->prehash, &size, b->path,
                                     err))) {
        goto out;
    }
    if (size != b->size) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "file changed size while being read");
        goto out;
    }
    if ((rc = cmig_sig_verify(sig, key, b->prehash, err)))
        goto out;
    b->signer = *key;
    memcpy(b->trusted_comment, sig->trusted_comment, sizeof b->trusted_comment);
    if ((rc = cmig_trusted_comment_parse(sig->trusted_comment, &b->claim, err)))
        goto out;
    if (b->claim.format_version != CMIG_FORMAT_VERSION) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "signed for format version %d; this cmig reads %d",
                          b->claim.format_version, CMIG_FORMAT_VERSION);
        goto out;
    }
    memcpy(b->manifest_sha256, b->claim.manifest_sha256, 32);
    b->is_signed = 1;
out:
    free(sig_path);
    free(sig);
    return rc;
}

/* ---- per-entry checks ---------------------------------------------------- */

static int has_dotdot(const char *p)
{
    const char *c = p;
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return 1;
        if (!slash)
            return 0;
        c = slash + 1;
    }
}

/* The checks every archive entry passes before its name means anything. */
static int check_entry(struct archive_entry *e, uint64_t max_size, struct cmig_err *err)
{
    const char *p = archive_entry_pathname(e);
    if (!p || !*p)
        return cmig_err_set(err, CMIG_E_VERIFY, "archive entry without a name");
    if (p[0] == '/')
        return cmig_err_set(err, CMIG_E_VERIFY, "absolute path '%.300s' in archive", p);
    if (has_dotdot(p))
        return cmig_err_set(err, CMIG_E_VERIFY, "path traversal '%.300s' in archive", p);
    if (archive_entry_hardlink(e))
        return cmig_err_set(err, CMIG_E_VERIFY, "hardlink '%.300s' in archive", p);
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        break;
    case AE_IFLNK:
        return cmig_err_set(err, CMIG_E_VERIFY, "symlink '%.300s' in archive", p);
    case AE_IFCHR:
    case AE_IFBLK:
        return cmig_err_set(err, CMIG_E_VERIFY, "device node '%.300s' in archive", p);
    case AE_IFIFO:
        return cmig_err_set(err, CMIG_E_VERIFY, "FIFO '%.300s' in archive", p);
    case AE_IFDIR:
        return cmig_err_set(err, CMIG_E_VERIFY, "directory '%.300s' where a file belongs", p);
    default:
        return cmig_err_set(err, CMIG_E_VERIFY, "entry '%.300s' is not a regular file", p);
    }
    if (!cmig_path_safe(p))
        return cmig_err_set(err, CMIG_E_VERIFY, "unsafe path '%.300s' in archive", p);
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "entry '%s' has no size", p);
    if ((uint64_t)archive_entry_size(e) > max_size)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "entry '%s' is %lld bytes, over the cap of %llu bytes", p,
                            (long long)archive_entry_size(e), (unsigned long long)max_size);
    if (archive_entry_sparse_count(e) > 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "sparse entry '%s' in archive", p);
    return 0;
}

/* The file expected at x; NULL past the last one. */
static const struct cmig_file *expect_file(const struct cmig_manifest *m, const struct expect *x)
{
    if (x->mig >= m->n)
        return NULL;
    const struct cmig_migration *mg = &m->migrations[x->mig];
    return x->is_down ? &mg->down : &mg->up;
}

static void expect_next(const struct cmig_manifest *m, struct expect *x)
{
    if (!x->is_down && m->migrations[x->mig].down.path) {
        x->is_down = 1;
    } else {
        x->mig++;
        x->is_down = 0;
    }
}

/* Says precisely why entry name is not the file expected at x. This ends
 * the walk, so a scan of the manifest is cheap enough. */
static int wrong_entry(const struct cmig_manifest *m, const struct expect *x, const char *name,
                       struct cmig_err *err)
{
    if (strcmp(name, CMIG_MANIFEST_NAME) == 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "duplicate entry '%s' in archive", name);
    const struct cmig_file *want = expect_file(m, x);
    for (size_t i = 0; m->migrations && i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        for (int d = 0; d < 2; d++) {
            const struct cmig_file *f = d ? &mg->down : &mg->up;
            if (!f->path || strcmp(f->path, name) != 0)
                continue;
            int passed = i < x->mig || (i == x->mig && d < x->is_down);
            if (passed || !want)
                return cmig_err_set(err, CMIG_E_VERIFY, "duplicate entry '%.300s' in archive",
                                    name);
            return cmig_err_set(err, CMIG_E_VERIFY,
                                "missing file '%s' (found '%.300s' in its place)", want->path,
                                name);
        }
    }
    return cmig_err_set(err, CMIG_E_VERIFY, "undeclared file '%.300s' in archive", name);
}

/* The caps a manifest can break on its own, checked on every open. */
static int check_manifest_caps(const struct cmig_bundle *b, struct cmig_err *err)
{
    const struct cmig_manifest *m = b->manifest;
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        for (int d = 0; d < 2; d++) {
            const struct cmig_file *f = d ? &mg->down : &mg->up;
            if (!f->path)
                continue;
            n++;
            if (f->size > b->lim.max_entry_bytes)
                return cmig_err_set(err, CMIG_E_VERIFY,
                                    "manifest lists '%s' at %llu bytes, over the cap of %llu",
                                    f->path, (unsigned long long)f->size,
                                    (unsigned long long)b->lim.max_entry_bytes);
            total += f->size;
        }
    }
    if (n + 1 > b->lim.max_entries)
        return cmig_err_set(err, CMIG_E_VERIFY, "too many entries: %zu, over the cap of %u", n + 1,
                            b->lim.max_entries);
    if (total > b->lim.max_total_bytes)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "manifest lists %llu bytes in all, over the cap of %llu",
                            (unsigned long long)total, (unsigned long long)b->lim.max_total_bytes);
    return 0;
}

/* ---- the archive walk --------------------------------------------------- */

enum walk_mode { WALK_OPEN, WALK_OPEN_MANIFEST_ONLY, WALK_EACH_FILE };

struct walk {
    struct cmig_bundle *b;
    enum walk_mode mode;
    struct archive *a;
    struct source *src;
    uint64_t out_bytes; /* uncompressed bytes seen: headers and data */
    uint8_t *chunk;
    int (*want)(void *ctx, const struct cmig_migration *m, int is_down);
    int (*fn)(void *ctx, const struct cmig_migration *m, int is_down, const uint8_t *data,
              size_t len, struct cmig_err *err);
    int (*content_fn)(void *ctx, const struct cmig_migration *m, int is_down,
                      struct cmig_file_bytes *c, struct cmig_err *err);
    void *ctx;
    struct cmig_err *err;
};

static int archive_fail(struct walk *w, const char *what)
{
    int e = errno; /* what the failing call left, before anything else runs */
    if (w->err->code)
        return w->err->code;
    const char *msg = archive_error_string(w->a);
    /* libarchive's "Can't allocate ..." errors are not the bundle's fault:
     * refusing it as damaged would send someone looking for an attacker. */
    if (archive_errno(w->a) == ENOMEM)
        return cmig_err_set(w->err, CMIG_E_NOMEM, "%s: out of memory (%s)", what,
                            msg ? msg : "libarchive");
    /* Some failures come without a message: a few of libarchive's failed
     * allocations (errno then says ENOMEM), and some damaged gzip streams
     * (found by fuzz_archive), which are refused like any other. */
    if (!msg) {
        if (e == ENOMEM)
            return cmig_err_set(w->err, CMIG_E_NOMEM, "%s: out of memory (libarchive)", what);
        return cmig_err_set(w->err, CMIG_E_VERIFY, "%s: libarchive refused it without a reason",
                            what);
    }
    return cmig_err_set(w->err, CMIG_E_VERIFY, "%s: %s", what, msg);
}

static int check_ratio(struct walk *w)
{
    uint64_t in = w->src->consumed ? w->src->consumed : 1;
    /* What the tar reader took from gzip counts too: it inflates pax and
     * GNU special headers (up to 32 of 1 MB before each entry) and padding
     * itself, and they are no entry's data. */
    uint64_t out = w->out_bytes;
    la_int64_t taken = archive_filter_bytes(w->a, 0);
    if (taken > 0 && (uint64_t)taken > out)
        out = (uint64_t)taken;
    if (out > RATIO_FLOOR && out / in > w->b->lim.max_ratio)
        return cmig_err_set(w->err, CMIG_E_VERIFY,
                            "compression ratio over the cap of %u:1 (a gzip bomb?)",
                            w->b->lim.max_ratio);
    return 0;
}

/* Reads the current entry's data (size bytes) into dst when given (else
 * into spool or zi when given), hashing it with SHA-256 into digest when
 * that is given. */
static int read_data_to(struct walk *w, const char *name, uint64_t size, uint8_t *dst,
                        struct cmig_spool *spool, struct cmig_zimage *zi, uint8_t digest[32])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    uint64_t got = 0;
    for (;;) {
        uint8_t *into = dst ? dst + got : w->chunk;
        size_t cap = READ_CHUNK;
        if (dst) {
            /* Room for the declared size plus one byte to notice more. */
            cap = size - got < READ_CHUNK ? (size_t)(size - got) : READ_CHUNK;
            if (cap == 0)
                into = w->chunk, cap = 1;
        }
        la_ssize_t n = archive_read_data(w->a, into, cap);
        if (n < 0)
            return archive_fail(w, name);
        if (n == 0)
            break;
        got += (uint64_t)n;
        w->out_bytes += (uint64_t)n;
        if (got > size)
            return cmig_err_set(w->err, CMIG_E_VERIFY, "entry '%s' holds more than its size", name);
        if (digest)
            crypto_hash_sha256_update(&h, into, (unsigned long long)n);
        int rc = check_ratio(w);
        if (!rc && spool)
            rc = cmig_spool_write(spool, into, (size_t)n, w->err);
        if (!rc && zi)
            rc = cmig_zimage_write(zi, into, (size_t)n, w->err);
        if (rc)
            return rc;
    }
    if (got != size)
        return cmig_err_set(w->err, CMIG_E_VERIFY, "entry '%s' is truncated", name);
    if (digest)
        crypto_hash_sha256_final(&h, digest);
    return 0;
}

static int read_data(struct walk *w, const char *name, uint64_t size, uint8_t *dst,
                     uint8_t digest[32])
{
    return read_data_to(w, name, size, dst, NULL, NULL, digest);
}

static int walk_manifest(struct walk *w, struct archive_entry *e)
{
    struct cmig_bundle *b = w->b;
    struct cmig_err *err = w->err;
    struct cmig_zimage *image = NULL;
    uint8_t digest[32];
    int rc;
    const char *name = archive_entry_pathname(e);
    if (strcmp(name, CMIG_MANIFEST_NAME) != 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "first entry is '%.300s', not '%s'", name,
                            CMIG_MANIFEST_NAME);
    uint64_t size = (uint64_t)archive_entry_size(e);
    if (w->mode == WALK_EACH_FILE) {
        /* The manifest in memory is already trusted; this copy is only
         * stepped over. */
        if ((rc = read_data(w, name, size, NULL, digest)))
            return rc;
        if (memcmp(digest, b->manifest_sha256, 32) != 0)
            return cmig_err_set(err, CMIG_E_VERIFY,
                                b->mem ? "manifest SHA-256 does not match "
                                         "the signed trusted comment"
                                       : "manifest changed since it was "
                                         "verified");
        return 0;
    }
    /* The entry's size is checked against the manifest cap already; a
     * large image is held compressed while it is parsed (zimage.h). */
    if ((rc = cmig_zimage_open(&image, size, CMIG_ZIMAGE_FLAT_MAX, err)))
        return rc;
    /* A small bundle was read once and its signature checked over exactly
     * these bytes, so on the no-op path the signed comment's manifest hash
     * is taken as it is; any walk over the entries (before a migration
     * runs) hashes the manifest again and compares. Streamed bundles are
     * read twice and hash it here. */
    int trust_signed_hash = b->mem && b->is_signed && w->mode == WALK_OPEN_MANIFEST_ONLY;
    if ((rc = read_data_to(w, name, size, NULL, NULL, image, trust_signed_hash ? NULL : digest)) ||
        (rc = cmig_zimage_seal(image, err)))
        goto out;
    if (!trust_signed_hash) {
        if (b->is_signed && memcmp(digest, b->manifest_sha256, 32) != 0) {
            rc = cmig_err_set(err, CMIG_E_VERIFY,
                              "manifest SHA-256 does not match the signed trusted comment");
            goto out;
        }
        memcpy(b->manifest_sha256, digest, 32);
    }
    if ((rc = cmig_manifest_load_zimage(&b->manifest, image, err)))
        goto out;
    if (b->is_signed) {
        struct cmig_claim own;
        cmig_claim_of(&own, b->manifest, b->manifest_sha256);
        if (strcmp(b->claim.name, own.name) != 0 || strcmp(b->claim.version, own.version) != 0) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "signed as '%s %s' but the manifest says '%s %s'",
                              b->claim.name, b->claim.version, own.name, own.version);
            goto out;
        }
        if (b->claim.migrations != own.migrations || b->claim.last != own.last) {
            rc = cmig_err_set(err, CMIG_E_VERIFY,
                              "signed as %llu migrations up to %lld but the manifest holds %llu "
                              "up to %lld",
                              (unsigned long long)b->claim.migrations, (long long)b->claim.last,
                              (unsigned long long)own.migrations, (long long)own.last);
            goto out;
        }
    }
    rc = check_manifest_caps(b, err);
out:
    cmig_zimage_free(image);
    return rc;
}

static int walk_entry(struct walk *w, const struct expect *x, struct archive_entry *e)
{
    struct cmig_bundle *b = w->b;
    const char *name = archive_entry_pathname(e);
    const struct cmig_file *f = expect_file(b->manifest, x);
    if (!f || strcmp(name, f->path) != 0)
        return wrong_entry(b->manifest, x, name, w->err);
    const struct cmig_migration *mg = &b->manifest->migrations[x->mig];
    int is_down = x->is_down;
    uint64_t size = (uint64_t)archive_entry_size(e);
    if (size != f->size)
        return cmig_err_set(w->err, CMIG_E_VERIFY,
                            "size mismatch for '%s': archive has %llu bytes, manifest %llu", name,
                            (unsigned long long)size, (unsigned long long)f->size);
    uint8_t digest[32];
    uint8_t *data = NULL;
    struct cmig_spool *spool = NULL;
    int rc;
    int wanted = w->mode == WALK_EACH_FILE && (w->fn || w->content_fn) &&
                 (!w->want || w->want(w->ctx, mg, is_down));
    /* Large files for a caller that takes streams are kept compressed. */
    int spooled = wanted && w->content_fn && size > b->lim.whole_max;
    if (spooled) {
        if ((rc = cmig_spool_open(&spool, w->err)))
            return rc;
    } else if (wanted) {
        data = malloc(size ? size : 1);
        if (!data)
            return cmig_err_nomem(w->err);
    }
    if ((rc = read_data_to(w, name, size, data, spool, NULL, digest)))
        goto out;
    if (memcmp(digest, f->sha256, 32) != 0) {
        rc = cmig_err_set(w->err, CMIG_E_VERIFY, "hash mismatch for '%s'", name);
        goto out;
    }
    if (!wanted)
        goto out;
    if (w->fn) {
        rc = w->fn(w->ctx, mg, is_down, data, (size_t)size, w->err);
        goto out;
    }
    struct cmig_file_bytes c = {.len = size, .data = data, .pos = 0, .spool = spool};
    if (spool && (rc = cmig_spool_seal(spool, w->err)))
        goto out;
    rc = w->content_fn(w->ctx, mg, is_down, &c, w->err);
out:
    cmig_spool_free(spool);
    free(data);
    return rc;
}

static int walk(struct walk *w)
{
    struct cmig_bundle *b = w->b;
    struct cmig_err *err = w->err;
    int rc = 0;
    w->src = malloc(sizeof *w->src);
    w->chunk = malloc(READ_CHUNK);
    w->a = archive_read_new();
    /* An entry of our own for archive_read_next_header2: the one
     * archive_read_new makes is not checked by libarchive (3.6), and
     * archive_read_next_header would write through a NULL one. */
    struct archive_entry *e = archive_entry_new();
    if (!w->src || !w->chunk || !w->a || !e) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    w->src->b = b;
    w->src->consumed = 0;
    w->src->err = err;
    crypto_generichash_init(&w->src->hash, NULL, 0, CMIG_PREHASH_BYTES);
    if (!b->mem && lseek(b->fd, 0, SEEK_SET) != 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "seek failed");
        goto out;
    }
    /* gzip is the only filter enabled: a second gzip layer shows up as a
     * second filter, anything else as no filter at all. */
    if (archive_read_support_filter_gzip(w->a) != ARCHIVE_OK ||
        archive_read_support_format_tar(w->a) != ARCHIVE_OK) {
        rc = archive_fail(w, "libarchive setup");
        goto out;
    }
    /* archive_read_open in pieces: it ignores a failure to store the
     * callback data (an allocation), after which libarchive 3.6 reads
     * through a NULL pointer. */
    if (archive_read_set_read_callback(w->a, source_read) != ARCHIVE_OK ||
        archive_read_set_callback_data(w->a, w->src) != ARCHIVE_OK) {
        rc = archive_fail(w, "libarchive setup");
        goto out;
    }
    if (archive_read_open1(w->a) != ARCHIVE_OK) {
        rc = archive_fail(w, "not a gzip-compressed tar archive");
        goto out;
    }
    int filters = archive_filter_count(w->a);
    if (filters > 2) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "more than one compression layer (%d)", filters - 1);
        goto out;
    }
    if (filters < 2 || archive_filter_code(w->a, 0) != ARCHIVE_FILTER_GZIP) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "not gzip-compressed");
        goto out;
    }

    struct expect x = {0, 0};
    for (size_t entries = 0;; entries++) {
        int r = archive_read_next_header2(w->a, e);
        /* Special headers are inflated inside this call, even on the way
         * to the end of the archive. */
        if ((rc = check_ratio(w)))
            goto out;
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = archive_fail(w, "unreadable archive");
            goto out;
        }
        w->out_bytes += 512;
        if (entries >= b->lim.max_entries) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "too many entries (over the cap of %u)",
                              b->lim.max_entries);
            goto out;
        }
        uint64_t cap = entries == 0 ? b->lim.max_manifest_bytes : b->lim.max_entry_bytes;
        if ((rc = check_entry(e, cap, err)))
            goto out;
        if (entries == 0) {
            if ((rc = walk_manifest(w, e)))
                goto out;
            if (w->mode == WALK_OPEN_MANIFEST_ONLY)
                goto out;
            continue;
        }
        if ((rc = walk_entry(w, &x, e)))
            goto out;
        expect_next(b->manifest, &x);
    }
    if (!b->manifest) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "empty archive: no '%s'", CMIG_MANIFEST_NAME);
        goto out;
    }
    if (expect_file(b->manifest, &x)) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "missing file '%s'",
                          expect_file(b->manifest, &x)->path);
        goto out;
    }
    if (b->is_signed && !b->mem) {
        uint8_t again[CMIG_PREHASH_BYTES];
        if ((rc = source_drain(w->src)))
            goto out;
        crypto_generichash_final(&w->src->hash, again, sizeof again);
        if (w->src->consumed != b->size || memcmp(again, b->prehash, sizeof again) != 0)
            rc = cmig_err_set(err, CMIG_E_VERIFY, "file changed while being read");
    }
out:
    if (w->a)
        archive_read_free(w->a);
    archive_entry_free(e);
    free(w->src);
    free(w->chunk);
    return rc;
}

/* ---- public ------------------------------------------------------------- */

static int read_whole(struct cmig_bundle *b, struct cmig_err *err)
{
    b->mem = malloc(b->size ? b->size : 1);
    if (!b->mem)
        return cmig_err_nomem(err);
    uint64_t got = 0;
    for (;;) {
        uint8_t extra;
        ssize_t n = got < b->size ? read(b->fd, b->mem + got, (size_t)(b->size - got))
                                  : read(b->fd, &extra, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cmig_err_errno(err, CMIG_E_IO, errno, "read failed");
        if (n == 0)
            break;
        got += (uint64_t)n;
        if (got > b->size)
            return cmig_err_set(err, CMIG_E_VERIFY, "file grew while being read");
    }
    if (got != b->size)
        return cmig_err_set(err, CMIG_E_VERIFY, "file changed size while being read");
    return 0;
}

int cmig_bundle_open(struct cmig_bundle **out, const char *path, const struct cmig_open_opts *o,
                     struct cmig_err *err)
{
    struct cmig_bundle *b = NULL;
    struct stat st;
    int rc;
    *out = NULL;
    if (sodium_init() < 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "libsodium failed to initialise");
    b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(b);
        return cmig_err_nomem(err);
    }
    b->fd = -1;
    if (o->limits)
        b->lim = *o->limits;
    else
        cmig_limits_default(&b->lim);

    b->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (b->fd < 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot open");
        goto out;
    }
    if (fstat(b->fd, &st) != 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot stat");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "not a regular file");
        goto out;
    }
    b->size = (uint64_t)st.st_size;
    if (b->size > b->lim.max_bundle_bytes) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "%llu bytes, over the cap of %llu bytes",
                          (unsigned long long)b->size, (unsigned long long)b->lim.max_bundle_bytes);
        goto out;
    }
    if (b->size <= b->lim.in_memory_max && (rc = read_whole(b, err)))
        goto out;
    if (!(o->flags & CMIG_OPEN_SKIP_SIGNATURE) && (rc = check_signature(b, o, err)))
        goto out;
    if ((o->flags & CMIG_OPEN_SIGNATURE_ONLY) && !(o->flags & CMIG_OPEN_SKIP_SIGNATURE))
        goto out;

    struct walk w = {.b = b, .err = err};
    w.mode = (o->flags & CMIG_OPEN_MANIFEST_ONLY) ? WALK_OPEN_MANIFEST_ONLY : WALK_OPEN;
    rc = walk(&w);
out:
    if (rc) {
        cmig_err_prefix(err, "bundle '%s'", path);
        cmig_bundle_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

int cmig_bundle_each_file(struct cmig_bundle *b,
                          int (*want)(void *ctx, const struct cmig_migration *m, int is_down),
                          int (*fn)(void *ctx, const struct cmig_migration *m, int is_down,
                                    const uint8_t *data, size_t len, struct cmig_err *err),
                          void *ctx, struct cmig_err *err)
{
    struct walk w = {
        .b = b, .mode = WALK_EACH_FILE, .want = want, .fn = fn, .ctx = ctx, .err = err};
    int rc = walk(&w);
    if (rc && err->code != CMIG_OK && rc == err->code && rc == CMIG_E_VERIFY)
        cmig_err_prefix(err, "bundle '%s'", b->path);
    return rc;
}

int cmig_bundle_each_content(struct cmig_bundle *b,
                             int (*want)(void *ctx, const struct cmig_migration *m, int is_down),
                             int (*fn)(void *ctx, const struct cmig_migration *m, int is_down,
                                       struct cmig_file_bytes *c, struct cmig_err *err),
                             void *ctx, struct cmig_err *err)
{
    struct walk w = {
        .b = b, .mode = WALK_EACH_FILE, .want = want, .content_fn = fn, .ctx = ctx, .err = err};
    int rc = walk(&w);
    if (rc && err->code != CMIG_OK && rc == err->code && rc == CMIG_E_VERIFY)
        cmig_err_prefix(err, "bundle '%s'", b->path);
    return rc;
}

int cmig_file_bytes_read(struct cmig_file_bytes *c, uint8_t *buf, size_t cap, size_t *got,
                         struct cmig_err *err)
{
    *got = 0;
    if (c->spool) {
        int rc = cmig_spool_read(c->spool, buf, cap, got, err);
        c->pos += *got;
        return rc;
    }
    uint64_t left = c->len - c->pos;
    size_t n = left < cap ? (size_t)left : cap;
    if (n)
        memcpy(buf, c->data + c->pos, n);
    c->pos += n;
    *got = n;
    return 0;
}

int cmig_bundle_load_manifest(struct cmig_bundle *b, struct cmig_err *err)
{
    if (b->manifest)
        return 0;
    struct walk w = {.b = b, .mode = WALK_OPEN_MANIFEST_ONLY, .err = err};
    int rc = walk(&w);
    if (rc)
        cmig_err_prefix(err, "bundle '%s'", b->path);
    return rc;
}

const struct cmig_claim *cmig_bundle_claim(const struct cmig_bundle *b)
{
    return b->is_signed ? &b->claim : NULL;
}

const struct cmig_manifest *cmig_bundle_manifest(const struct cmig_bundle *b)
{
    return b->manifest;
}

const uint8_t *cmig_bundle_manifest_sha256(const struct cmig_bundle *b)
{
    return b->manifest_sha256;
}

const struct cmig_pubkey *cmig_bundle_signer(const struct cmig_bundle *b)
{
    return b->is_signed ? &b->signer : NULL;
}

const char *cmig_bundle_trusted_comment(const struct cmig_bundle *b)
{
    return b->is_signed ? b->trusted_comment : NULL;
}

uint64_t cmig_bundle_size(const struct cmig_bundle *b)
{
    return b->size;
}

void cmig_bundle_close(struct cmig_bundle *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    free(b->mem);
    cmig_manifest_free(b->manifest);
    free(b->path);
    free(b);
}
