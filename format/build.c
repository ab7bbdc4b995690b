/*
 * build.c - turning a migration directory into a bundle.
 *
 * Pass one reads each migration file once: its sections, sizes, SHA-256
 * and transaction mode go into the manifest, which must be the archive's
 * first entry. Pass two writes the archive: manifest.db, then each file in
 * version order (up, then down), streamed in chunks. A source file whose
 * identity (device, inode, size, mtime, ctime) changed between the passes
 * fails the build, as does a section whose hash changed. Entries are
 * normalised (mode 0644, uid/gid 0, no owner names, mtime = created_at)
 * and gzip carries no timestamp or name, so the same inputs give the same
 * bytes. The bundle is written to a temporary file next to the output,
 * fsync'd and renamed: whatever was at the output path survives a failure.
 */
#include "cmig/build.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmig/bundle.h"
#include "cmig/jsoncheck.h"
#include "cmig/sig.h"

#define CHUNK (256 * 1024)
#define REASON_MAX 160

/* What pass one saw of a source file, to notice changes in pass two. */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct plan {
    const struct cmig_build_opts *o;
    struct cmig_srcdir src;
    struct cmig_manifest m; /* strings owned here, freed by plan_free */
    struct file_id *ids;    /* per migration: [2*i] up file, [2*i+1] down file */
    int whole_file;         /* golang-migrate / flyway: one direction per file */
    uint64_t content_bytes;
    uint8_t *buf; /* one file's content */
    size_t buf_cap;
    struct cmig_limits lim;
};

/* ---- small file helpers ------------------------------------------------- */

static int open_in_dir(const char *dir, const char *name, struct file_id *id, int *fd_out,
                       struct cmig_err *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open directory '%s'", dir);
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, e, "cannot open '%s'", name);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' is not a regular file", name);
    }
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
    id->ctime = st.st_ctim;
    *fd_out = fd;
    return 0;
}

static int same_id(const struct file_id *a, const struct file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int read_all(int fd, struct plan *p, size_t size, const char *name, struct cmig_err *err)
{
    if (size > p->lim.max_entry_bytes)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' is %zu bytes, over the cap of %llu", name,
                            size, (unsigned long long)p->lim.max_entry_bytes);
    if (size + 1 > p->buf_cap) {
        uint8_t *nb = realloc(p->buf, size + 1);
        if (!nb)
            return cmig_err_nomem(err);
        p->buf = nb;
        p->buf_cap = size + 1;
    }
    size_t got = 0;
    while (got < size + 1) {
        ssize_t n = read(fd, p->buf + got, size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cmig_err_errno(err, CMIG_E_IO, errno, "cannot read '%s'", name);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != size)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' changed while being read", name);
    return 0;
}

/* Loads one source file into p->buf; *len receives its size. */
static int load_file(struct plan *p, const char *name, struct file_id *id, size_t *len,
                     struct cmig_err *err)
{
    int fd, rc;
    if ((rc = open_in_dir(p->o->dir, name, id, &fd, err)))
        return rc;
    rc = read_all(fd, p, (size_t)id->size, name, err);
    close(fd);
    *len = (size_t)id->size;
    return rc;
}

/* ---- pass one: the manifest -------------------------------------------- */

/* A file name for the archive: [A-Za-z0-9._-] of the migration's name,
 * others folded to '_', kept short enough for a plain ustar header. */
static char *archive_path(int64_t version, const char *name, int is_down, int json)
{
    char clean[64];
    size_t n = 0;
    for (const char *c = name; *c && n < sizeof clean - 1; c++) {
        char ch = *c;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        clean[n++] = ok ? ch : '_';
    }
    clean[n] = '\0';
    char *out = NULL;
    if (asprintf(&out, "migrations/%lld_%s.%s.%s", (long long)version, clean,
                 is_down ? "down" : "up", json ? "json" : "sql") < 0)
        return NULL;
    return out;
}

static int describe_section(struct plan *p, struct cmig_file *f, const struct cmig_section *s,
                            const char *source, int64_t version, const char *mname, int is_down,
                            int json, struct cmig_err *err)
{
    const uint8_t *data = p->buf + s->offset;
    f->path = archive_path(version, mname, is_down, json);
    f->source = strdup(source);
    f->tx_reason = malloc(REASON_MAX);
    if (!f->path || !f->source || !f->tx_reason)
        return cmig_err_nomem(err);
    f->size = s->len;
    f->source_line = s->line;
    crypto_hash_sha256(f->sha256, data, s->len);
    f->tx_reason[0] = '\0';
    if (json) {
        /* A JSON migration that does not parse is refused here, at build
         * time, with the file and libbson's message, rather than at a pod
         * start; the runner parses it again with the same code. */
        int rc = cmig_json_migration_check((const char *)data, s->len, source, err);
        if (rc)
            return rc;
        /* MongoDB commands are not transactional in general; a team whose
         * servers are replica sets may ask for one transaction each. */
        if (p->o->mongodb_transactions) {
            f->tx = CMIG_TX_TRANSACTION;
            snprintf(f->tx_reason, REASON_MAX, "built with --mongodb-transactions");
        } else {
            f->tx = CMIG_TX_NONE;
            snprintf(f->tx_reason, REASON_MAX, "MongoDB commands");
        }
    } else {
        if (p->o->mongodb_transactions)
            return cmig_err_set(err, CMIG_E_USAGE,
                                "--mongodb-transactions is for MongoDB (JSON) migrations; '%s' "
                                "is SQL",
                                source);
        /* No database client sends SQL holding a NUL byte; refusing it here
         * means no runner finds one halfway through a migration. */
        const uint8_t *nul = s->len ? memchr(data, '\0', s->len) : NULL;
        if (nul) {
            unsigned line = s->line ? s->line : 1;
            for (const uint8_t *c = data; c < nul; c++)
                line += *c == '\n';
            return cmig_err_set(err, CMIG_E_INPUT, "'%s': line %u: a NUL byte in SQL", source,
                                line);
        }
        f->tx = cmig_sql_detect_txmode((const char *)data, s->len, f->tx_reason, REASON_MAX);
    }
    if (s->tx_override >= 0 && !(f->tx_reason[0] && strncmp(f->tx_reason, "annotation", 10) == 0)) {
        f->tx = (enum cmig_txmode)s->tx_override;
        snprintf(f->tx_reason, REASON_MAX, "%s",
                 p->src.format == CMIG_DIR_GOOSE ? "annotation -- +goose NO TRANSACTION"
                                                 : "annotation transaction:false");
    }
    /* Thousands of these live until the end of the build: keep only what
     * the reason needs. */
    char *fit = realloc(f->tx_reason, strlen(f->tx_reason) + 1);
    if (fit)
        f->tx_reason = fit;
    p->content_bytes += s->len;
    return 0;
}

static int plan_migration(struct plan *p, size_t i, struct cmig_err *err)
{
    const struct cmig_src_migration *sm = &p->src.migrations[i];
    struct cmig_migration *mg = &p->m.migrations[i];
    int json = sm->content == CMIG_CONTENT_JSON;
    struct cmig_section up, down;
    size_t len;
    int rc;

    mg->version = sm->version;
    mg->name = strdup(sm->name);
    if (!mg->name)
        return cmig_err_nomem(err);
    if ((rc = load_file(p, sm->up_file, &p->ids[2 * i], &len, err)))
        return rc;
    if ((rc = cmig_srcdir_sections(p->src.format, sm->up_file, (const char *)p->buf, len, 0, &up,
                                   &down, err)))
        return rc;
    if ((rc = describe_section(p, &mg->up, &up, sm->up_file, sm->version, sm->name, 0, json, err)))
        return rc;
    if (!p->whole_file) {
        if (down.present)
            rc = describe_section(p, &mg->down, &down, sm->up_file, sm->version, sm->name, 1, json,
                                  err);
        return rc;
    }
    if (!sm->down_file)
        return 0;
    if ((rc = load_file(p, sm->down_file, &p->ids[2 * i + 1], &len, err)))
        return rc;
    if ((rc = cmig_srcdir_sections(p->src.format, sm->down_file, (const char *)p->buf, len, 1, &up,
                                   &down, err)))
        return rc;
    return describe_section(p, &mg->down, &down, sm->down_file, sm->version, sm->name, 1, json,
                            err);
}

static int plan_driver(struct plan *p, struct cmig_err *err)
{
    int json = 0, sql = 0;
    for (size_t i = 0; i < p->src.n; i++) {
        if (p->src.migrations[i].content == CMIG_CONTENT_JSON)
            json = 1;
        else
            sql = 1;
    }
    const char *d = p->o->driver;
    if (!d)
        d = json ? "mongodb" : "postgres";
    if (!cmig_driver_valid(d))
        return cmig_err_set(err, CMIG_E_USAGE,
                            "unknown driver '%s' (expected postgres, sqlite or mongodb)", d);
    if (json && strcmp(d, "mongodb") != 0)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s' holds JSON migrations, which need driver "
                            "mongodb, not '%s'",
                            p->o->dir, d);
    if (sql && strcmp(d, "mongodb") == 0)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s' holds SQL migrations, which driver mongodb cannot run",
                            p->o->dir);
    p->m.driver = strdup(d);
    return p->m.driver ? 0 : cmig_err_nomem(err);
}

static int plan_build(struct plan *p, struct cmig_err *err)
{
    const struct cmig_build_opts *o = p->o;
    int rc;
    if (!cmig_bundle_name_valid(o->name))
        return cmig_err_set(err, CMIG_E_USAGE,
                            "invalid bundle name '%s' (use 1-%d of A-Z a-z 0-9 . _ -, not "
                            "starting with . or -)",
                            o->name, CMIG_BUNDLE_NAME_MAX);
    if ((rc = cmig_semver_parse(&p->m.version, o->version, strlen(o->version), err))) {
        err->code = CMIG_E_USAGE;
        return rc = CMIG_E_USAGE;
    }
    if (o->source_revision && strlen(o->source_revision) > 1024)
        return cmig_err_set(err, CMIG_E_USAGE, "source revision is longer than 1024 bytes");
    for (const char *c = o->source_revision ? o->source_revision : ""; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return cmig_err_set(err, CMIG_E_USAGE, "source revision holds control characters");
    if ((rc = cmig_srcdir_scan(&p->src, o->dir, o->dir_format, err)))
        return rc;
    if (o->warn)
        for (size_t i = 0; i < p->src.n_warnings; i++)
            o->warn(o->ctx, p->src.warnings[i]);
    if (p->src.n + 1 > p->lim.max_entries / 2)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' holds %zu migrations, over the cap of %u",
                            o->dir, p->src.n, p->lim.max_entries / 2 - 1);
    p->whole_file = p->src.format == CMIG_DIR_GOLANG_MIGRATE || p->src.format == CMIG_DIR_FLYWAY;
    p->m.format_version = CMIG_FORMAT_VERSION;
    p->m.created_at = o->created_at;
    p->m.name = strdup(o->name);
    p->m.source_revision = strdup(o->source_revision ? o->source_revision : "");
    p->m.builder = strdup(o->builder ? o->builder : "cmig-bundle");
    p->m.dir_format = strdup(cmig_dir_format_name(p->src.format));
    p->m.migrations = calloc(p->src.n ? p->src.n : 1, sizeof *p->m.migrations);
    p->ids = calloc(p->src.n ? 2 * p->src.n : 1, sizeof *p->ids);
    if (!p->m.name || !p->m.source_revision || !p->m.builder || !p->m.dir_format ||
        !p->m.migrations || !p->ids)
        return cmig_err_nomem(err);
    if ((rc = plan_driver(p, err)))
        return rc;
    for (size_t i = 0; i < p->src.n; i++) {
        p->m.n = i + 1;
        if ((rc = plan_migration(p, i, err)))
            return rc;
    }
    if (p->content_bytes > p->lim.max_total_bytes)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' holds %llu bytes, over the cap of %llu",
                            o->dir, (unsigned long long)p->content_bytes,
                            (unsigned long long)p->lim.max_total_bytes);
    return 0;
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->m.n; i++) {
        struct cmig_migration *mg = &p->m.migrations[i];
        free(mg->name);
        struct cmig_file *fs[2] = {&mg->up, &mg->down};
        for (int k = 0; k < 2; k++) {
            free(fs[k]->path);
            free(fs[k]->tx_reason);
            free(fs[k]->source);
        }
    }
    free(p->m.migrations);
    free(p->m.name);
    free(p->m.source_revision);
    free(p->m.builder);
    free(p->m.driver);
    free(p->m.dir_format);
    free(p->ids);
    free(p->buf);
    cmig_srcdir_free(&p->src);
}

/* ---- pass two: the archive --------------------------------------------- */

struct sink {
    int fd;
    const char *path; /* the temporary file, named when a write fails */
    crypto_generichash_state hash;
    uint64_t bytes;
    int write_errno;
};

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct sink *s = ctx;
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(s->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s->write_errno = errno;
            archive_set_error(a, errno, "write failed");
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    crypto_generichash_update(&s->hash, buf, len);
    s->bytes += len;
    return (la_ssize_t)len;
}

static int write_fail(struct archive *a, struct sink *s, const char *what, struct cmig_err *err)
{
    if (s->write_errno)
        return cmig_err_errno(err, CMIG_E_IO, s->write_errno, "cannot write '%s'", s->path);
    if (archive_errno(a) == ENOMEM)
        return cmig_err_set(err, CMIG_E_NOMEM, "%s: out of memory (%s)", what,
                            archive_error_string(a) ? archive_error_string(a) : "libarchive");
    /* Some of libarchive's failed allocations set no message at all. */
    return cmig_err_set(err, CMIG_E_INTERNAL, "%s: %s", what,
                        archive_error_string(a) ? archive_error_string(a)
                                                : "libarchive failed without a reason (out of "
                                                  "memory?)");
}

static int write_header(struct archive *a, struct sink *s, const char *path, uint64_t size,
                        int64_t mtime, struct cmig_err *err)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return cmig_err_nomem(err);
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? 0 : write_fail(a, s, path, err);
}

static int write_data(struct archive *a, struct sink *s, const uint8_t *data, size_t len,
                      const char *what, struct cmig_err *err)
{
    while (len > 0) {
        la_ssize_t n = archive_write_data(a, data, len);
        if (n <= 0)
            return write_fail(a, s, what, err);
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

struct progress {
    const struct cmig_build_opts *o;
    uint64_t done, total;
};

static void progress_add(struct progress *pr, uint64_t n)
{
    pr->done += n;
    if (pr->o->progress)
        pr->o->progress(pr->o->ctx, pr->done, pr->total);
}

/* Streams a whole source file into the archive, checking it is the file
 * pass one saw. */
static int stream_file(struct plan *p, struct archive *a, struct sink *s, const char *name,
                       const struct file_id *seen, struct progress *pr, struct cmig_err *err)
{
    struct file_id now;
    int fd, rc;
    if ((rc = open_in_dir(p->o->dir, name, &now, &fd, err)))
        return rc;
    if (!same_id(seen, &now)) {
        close(fd);
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' changed during the build", name);
    }
    if (p->buf_cap < CHUNK) {
        uint8_t *nb = realloc(p->buf, CHUNK);
        if (!nb) {
            close(fd);
            return cmig_err_nomem(err);
        }
        p->buf = nb;
        p->buf_cap = CHUNK;
    }
    uint64_t left = (uint64_t)now.size;
    while (left > 0) {
        ssize_t n = read(fd, p->buf, left < p->buf_cap ? (size_t)left : p->buf_cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? cmig_err_errno(err, CMIG_E_IO, errno, "cannot read '%s'", name)
                       : cmig_err_set(err, CMIG_E_INPUT, "'%s' changed during the build", name);
            break;
        }
        if ((rc = write_data(a, s, p->buf, (size_t)n, name, err)))
            break;
        left -= (uint64_t)n;
        progress_add(pr, (uint64_t)n);
    }
    close(fd);
    return rc;
}

/* Re-extracts a section of a goose/dbmate file and checks its hash. */
static int write_section(struct plan *p, struct archive *a, struct sink *s, size_t i, int is_down,
                         struct progress *pr, struct cmig_err *err)
{
    const struct cmig_src_migration *sm = &p->src.migrations[i];
    const struct cmig_file *f = is_down ? &p->m.migrations[i].down : &p->m.migrations[i].up;
    struct file_id now;
    struct cmig_section up, down;
    size_t len;
    int rc;
    if ((rc = load_file(p, sm->up_file, &now, &len, err)))
        return rc;
    if ((rc = cmig_srcdir_sections(p->src.format, sm->up_file, (const char *)p->buf, len, 0, &up,
                                   &down, err)))
        return rc;
    const struct cmig_section *sec = is_down ? &down : &up;
    uint8_t digest[32];
    crypto_hash_sha256(digest, p->buf + sec->offset, sec->len);
    if (!sec->present || sec->len != f->size || memcmp(digest, f->sha256, 32) != 0)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s' changed during the build", sm->up_file);
    if ((rc = write_data(a, s, p->buf + sec->offset, sec->len, sm->up_file, err)))
        return rc;
    progress_add(pr, sec->len);
    return 0;
}

static int write_archive(struct plan *p, int fd, const char *path, const uint8_t *manifest,
                         size_t manifest_len, struct cmig_build_result *res,
                         uint8_t prehash[CMIG_PREHASH_BYTES], struct cmig_err *err)
{
    struct sink s = {.fd = fd, .path = path};
    struct progress pr = {.o = p->o, .total = p->content_bytes + manifest_len};
    int rc = 0;
    crypto_generichash_init(&s.hash, NULL, 0, CMIG_PREHASH_BYTES);
    struct archive *a = archive_write_new();
    if (!a)
        return cmig_err_nomem(err);
    /* No timestamp or file name in the gzip header: reproducible output.
     * The tar stream is padded to 10240-byte records as tar does; the gzip
     * stream after it is not padded (no zeros after the gzip trailer). */
    if (archive_write_set_format_ustar(a) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "compression-level", "6") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, &s, NULL, sink_write, NULL) != ARCHIVE_OK) {
        rc = write_fail(a, &s, "libarchive setup", err);
        goto out;
    }
    if ((rc = write_header(a, &s, CMIG_MANIFEST_NAME, manifest_len, p->m.created_at, err)) ||
        (rc = write_data(a, &s, manifest, manifest_len, CMIG_MANIFEST_NAME, err)))
        goto out;
    progress_add(&pr, manifest_len);
    for (size_t i = 0; i < p->m.n; i++) {
        const struct cmig_migration *mg = &p->m.migrations[i];
        for (int d = 0; d < 2; d++) {
            const struct cmig_file *f = d ? &mg->down : &mg->up;
            if (!f->path)
                continue;
            if ((rc = write_header(a, &s, f->path, f->size, p->m.created_at, err)))
                goto out;
            if (p->whole_file)
                rc = stream_file(p, a, &s, f->source, &p->ids[2 * i + d], &pr, err);
            else
                rc = write_section(p, a, &s, i, d, &pr, err);
            if (rc)
                goto out;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        rc = write_fail(a, &s, "finishing the archive", err);
        goto out;
    }
    crypto_generichash_final(&s.hash, prehash, CMIG_PREHASH_BYTES);
    res->bundle_bytes = s.bytes;
out:
    archive_write_free(a);
    return rc;
}

/* ---- output ------------------------------------------------------------ */

/* No allocation here: running out of memory must not read as a bad path. */
static int dir_of(const char *path, char *out, size_t cap)
{
    char copy[4096];
    int n = snprintf(copy, sizeof copy, "%s", path);
    if (n < 0 || (size_t)n >= sizeof copy)
        return -1;
    n = snprintf(out, cap, "%s", dirname(copy));
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int fsync_dir(const char *path, struct cmig_err *err)
{
    char dir[4096];
    if (dir_of(path, dir, sizeof dir))
        return cmig_err_set(err, CMIG_E_USAGE, "path too long: '%s'", path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open directory '%s'", dir);
    int r = fsync(dfd);
    int e = errno;
    close(dfd);
    return r == 0 ? 0 : cmig_err_errno(err, CMIG_E_IO, e, "cannot fsync directory '%s'", dir);
}

/* Creates "<dir>/.<base>.tmp-XXXXXX" next to path: its descriptor, or -1
 * with err set. */
static int make_temp(const char *path, char **tmp_out, struct cmig_err *err)
{
    char dir[4096], copy[4096];
    if (dir_of(path, dir, sizeof dir) || snprintf(copy, sizeof copy, "%s", path) < 0) {
        cmig_err_set(err, CMIG_E_USAGE, "bad output path '%s'", path);
        return -1;
    }
    char *tmp = NULL;
    int n = asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, basename(copy));
    if (n < 0) {
        cmig_err_nomem(err);
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        cmig_err_errno(err, CMIG_E_IO, e, "cannot create a file next to '%s'", path);
        return -1;
    }
    *tmp_out = tmp;
    return fd;
}

static int finish_temp(int fd, const char *tmp, unsigned mode, struct cmig_err *err)
{
    if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot write '%s'", tmp);
    return 0;
}

/* Writes data into a new temporary file next to path, with mode, synced
 * to disk; *tmp_out receives its name. On failure nothing is left. */
static int write_temp(const char *path, const void *data, size_t len, unsigned mode, char **tmp_out,
                      struct cmig_err *err)
{
    char *tmp = NULL;
    int fd = make_temp(path, &tmp, err);
    if (fd < 0)
        return err->code;
    int rc = 0;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot write '%s'", path);
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (!rc)
        rc = finish_temp(fd, tmp, mode, err);
    if (close(fd) != 0 && !rc)
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot write '%s'", path);
    if (rc) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    return 0;
}

int cmig_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                           struct cmig_err *err)
{
    char *tmp = NULL;
    int rc = write_temp(path, data, len, mode, &tmp, err);
    if (rc)
        return rc;
    if (rename(tmp, path) != 0)
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot rename into '%s'", path);
    if (rc)
        unlink(tmp);
    else
        rc = fsync_dir(path, err);
    free(tmp);
    return rc;
}

static int sign_text(const struct cmig_seckey *key, const uint8_t prehash[CMIG_PREHASH_BYTES],
                     const struct cmig_claim *claim, char **text, size_t *len, struct cmig_err *err)
{
    char tc[CMIG_TRUSTED_COMMENT_MAX + 1], uc[CMIG_COMMENT_MAX + 1];
    if (cmig_trusted_comment_format(tc, sizeof tc, claim))
        return cmig_err_set(err, CMIG_E_INTERNAL, "trusted comment too long");
    snprintf(uc, sizeof uc, "signature of cmig bundle %s %s", claim->name, claim->version);
    return cmig_sig_create(key, prehash, uc, tc, text, len, err);
}

int cmig_sign_file(const char *bundle_path, const char *sig_path, const struct cmig_seckey *key,
                   const struct cmig_claim *claim, struct cmig_err *err)
{
    uint8_t prehash[CMIG_PREHASH_BYTES];
    uint64_t size;
    char *text = NULL;
    size_t len = 0;
    struct cmig_limits lim;
    cmig_limits_default(&lim);
    int fd = open(bundle_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open '%s'", bundle_path);
    int rc = cmig_prehash_fd(fd, lim.max_bundle_bytes, prehash, &size, bundle_path, err);
    close(fd);
    if (!rc)
        rc = sign_text(key, prehash, claim, &text, &len, err);
    if (!rc)
        rc = cmig_write_file_atomic(sig_path, text, len, 0644, err);
    free(text);
    return rc;
}

int cmig_build(const struct cmig_build_opts *o, struct cmig_build_result *res, struct cmig_err *err)
{
    struct plan p;
    uint8_t *manifest = NULL;
    size_t manifest_len = 0;
    char *tmp = NULL, *sig_path = NULL, *sig_text = NULL, *sig_tmp = NULL;
    size_t sig_len = 0;
    int fd = -1, rc;
    uint8_t prehash[CMIG_PREHASH_BYTES];

    memset(&p, 0, sizeof p);
    memset(res, 0, sizeof *res);
    p.o = o;
    cmig_limits_default(&p.lim);
    if (sodium_init() < 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "libsodium failed to initialise");

    if ((rc = plan_build(&p, err)))
        goto out;
    /* Pass one held the largest file; pass two streams in small chunks, so
     * that buffer is not carried into it. */
    free(p.buf);
    p.buf = NULL;
    p.buf_cap = 0;
    if (o->previous && (rc = cmig_check_append_only(o->previous, &p.m, err)))
        goto out;
    if ((rc = cmig_manifest_serialize(&p.m, &manifest, &manifest_len, err)))
        goto out;
    if (manifest_len > p.lim.max_manifest_bytes) {
        rc = cmig_err_set(err, CMIG_E_INPUT, "manifest would be %zu bytes, over the cap of %llu",
                          manifest_len, (unsigned long long)p.lim.max_manifest_bytes);
        goto out;
    }
    crypto_hash_sha256(res->manifest_sha256, manifest, manifest_len);

    fd = make_temp(o->output, &tmp, err);
    if (fd < 0) {
        rc = err->code;
        goto out;
    }
    if ((rc = write_archive(&p, fd, tmp, manifest, manifest_len, res, prehash, err)) ||
        (rc = finish_temp(fd, tmp, 0644, err)))
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot write '%s'", tmp);
        goto out;
    }
    fd = -1;
    if (o->key) {
        if (o->sig_output)
            sig_path = strdup(o->sig_output);
        else if (asprintf(&sig_path, "%s.minisig", o->output) < 0)
            sig_path = NULL;
        if (!sig_path) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        struct cmig_claim claim;
        cmig_claim_of(&claim, &p.m, res->manifest_sha256);
        if ((rc = sign_text(o->key, prehash, &claim, &sig_text, &sig_len, err)))
            goto out;
        /* Written out before either is renamed into place: a full disk or
         * a failed allocation now leaves the previous bundle and its
         * signature as they were, not the new bundle beside the old
         * signature. */
        if ((rc = write_temp(sig_path, sig_text, sig_len, 0644, &sig_tmp, err)))
            goto out;
    }
    /* The bundle first, then its signature: in between, the old signature
     * does not match the new bundle, which is refused, never trusted. */
    if (rename(tmp, o->output) != 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot rename into '%s'", o->output);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    if (sig_tmp) {
        if (rename(sig_tmp, sig_path) != 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot rename into '%s'", sig_path);
            goto out;
        }
        free(sig_tmp);
        sig_tmp = NULL;
        rc = fsync_dir(sig_path, err);
    } else if (!o->key) {
        /* A signature left from an earlier build would no longer match. */
        char *stale = NULL;
        if (asprintf(&stale, "%s.minisig", o->output) >= 0) {
            unlink(stale);
            free(stale);
        }
    }
    if (!rc)
        rc = fsync_dir(o->output, err);
    if (rc)
        goto out;
    res->migrations = p.m.n;
    res->content_bytes = p.content_bytes;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (sig_tmp) {
        unlink(sig_tmp);
        free(sig_tmp);
    }
    free(sig_path);
    free(sig_text);
    free(manifest);
    plan_free(&p);
    return rc;
}
