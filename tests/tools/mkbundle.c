/*
 * mkbundle.c - writes bundles that are correctly signed but hostile inside.
 *
 * The signature is checked first, so a forged archive never gets past it;
 * to prove the checks that come after it, a hostile bundle must carry a
 * real signature. This tool builds the archive with libarchive by hand
 * (entry types, names, sizes and order as each scenario wants them), the
 * manifest with cmig_manifest_serialize (altered with SQLite when the
 * scenario wants a manifest cmig would never write), and signs the result
 * with a real key and a trusted comment naming the real manifest SHA-256,
 * unless the scenario is about a wrong one. "good" is a valid bundle; every
 * other scenario differs from it in one way, so a refusal can only come
 * from the check that scenario is about.
 *
 *   mkbundle SECRET_KEY OUT SCENARIO   writes OUT and OUT.minisig
 *   mkbundle --list                    prints the scenario names
 *
 * The secret key must be unencrypted. The archive is built in two steps:
 * a tar stream in memory (so that it can end in the middle of an entry, or
 * declare sizes it never writes), then compressed into OUT. Exit 0 on
 * success, 2 on error.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmig/bundle.h"
#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"
#include "cmig/sig.h"

#define MIB (1024ull * 1024)
#define MAX_ENTS 16

enum kind { K_FILE, K_SYMLINK, K_HARDLINK, K_CHR, K_BLK, K_FIFO, K_DIR };

enum compress { C_GZIP, C_GZIP_TWICE, C_NONE, C_XZ };

struct ent {
    const char *name;
    enum kind kind;
    int is_manifest;     /* data is the (final) manifest image */
    const uint8_t *data; /* file content, len bytes */
    size_t len;
    int64_t declared; /* size in the header; -1: len */
    int cut;          /* the tar stream ends after this entry's data */
    int sparse;       /* written as a sparse file with a hole in front */
};

struct plan {
    struct cmig_manifest *m;
    struct ent ents[MAX_ENTS];
    size_t n;
    int tar_format; /* ARCHIVE_FORMAT_TAR_* */
    enum compress compress;
    const char *manifest_sql;    /* run on the serialised manifest */
    const uint8_t *raw_manifest; /* used instead of the serialised one */
    size_t raw_manifest_len;
    const uint8_t *payload; /* compressed instead of a tar stream */
    size_t payload_len;
    int no_tar;                       /* write payload (possibly empty) instead of a tar */
    const char *tc_name, *tc_version; /* NULL: the manifest's */
    int tc_format;                    /* 0: CMIG_FORMAT_VERSION */
    int tc_wrong_hash;
    const char *tc_text; /* the whole trusted comment */
    uint8_t *big;        /* a large content buffer a scenario owns */
    int pax_globals;     /* this many 1 MB pax global headers come first */
    int pax_globals_end; /* this many after the last entry */
    size_t mig_cap;      /* room in m->migrations */
};

/* ---- the valid bundle every scenario starts from ------------------------ */

struct base_file {
    int64_t version;
    const char *name;
    int is_down;
    const char *path;
    const char *sql;
    enum cmig_txmode tx;
    const char *reason;
};

static const struct base_file BASE[] = {
    {1, "create_users", 0, "migrations/1_create_users.up.sql",
     "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);\n", CMIG_TX_TRANSACTION, ""},
    {1, "create_users", 1, "migrations/1_create_users.down.sql", "DROP TABLE users;\n",
     CMIG_TX_TRANSACTION, ""},
    {2, "index_names", 0, "migrations/2_index_names.up.sql",
     "CREATE INDEX CONCURRENTLY users_name ON users (name);\n", CMIG_TX_NONE,
     "line 1: CREATE INDEX CONCURRENTLY"},
    {2, "index_names", 1, "migrations/2_index_names.down.sql",
     "DROP INDEX CONCURRENTLY users_name;\n", CMIG_TX_NONE, "line 1: DROP INDEX CONCURRENTLY"},
    {3, "add_email", 0, "migrations/3_add_email.up.sql",
     "ALTER TABLE users ADD COLUMN email text;\n", CMIG_TX_TRANSACTION, ""},
};
#define N_BASE (sizeof BASE / sizeof BASE[0])

static int fail(const char *what)
{
    fprintf(stderr, "mkbundle: error: %s\n", what);
    return -1;
}

static int fail_err(const struct cmig_err *err)
{
    return fail(err->msg[0] ? err->msg : "unknown error");
}

static int set_file(struct cmig_file *f, const char *path, const uint8_t *data, size_t len,
                    enum cmig_txmode tx, const char *reason, const char *source)
{
    free(f->path);
    free(f->tx_reason);
    free(f->source);
    f->path = strdup(path);
    f->tx_reason = strdup(reason);
    f->source = strdup(source);
    if (!f->path || !f->tx_reason || !f->source)
        return fail("out of memory");
    f->size = len;
    crypto_hash_sha256(f->sha256, data, len);
    f->tx = tx;
    f->source_line = 1;
    return 0;
}

/* Appends a migration (up file only) to the manifest. */
static struct cmig_migration *add_migration(struct cmig_manifest *m, int64_t version,
                                            const char *name, size_t *cap)
{
    if (m->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct cmig_migration *nm = realloc(m->migrations, ncap * sizeof *nm);
        if (!nm)
            return NULL;
        m->migrations = nm;
        *cap = ncap;
    }
    struct cmig_migration *mg = &m->migrations[m->n++];
    memset(mg, 0, sizeof *mg);
    mg->version = version;
    mg->name = strdup(name);
    return mg->name ? mg : NULL;
}

static int base_manifest(struct plan *p)
{
    struct cmig_err err;
    cmig_err_clear(&err);
    p->m = calloc(1, sizeof *p->m);
    if (!p->m)
        return fail("out of memory");
    struct cmig_manifest *m = p->m;
    m->format_version = CMIG_FORMAT_VERSION;
    m->name = strdup("app");
    m->source_revision = strdup("0123abc");
    m->builder = strdup("mkbundle");
    m->driver = strdup("postgres");
    m->dir_format = strdup("golang-migrate");
    m->created_at = 1700000000;
    if (!m->name || !m->source_revision || !m->builder || !m->driver || !m->dir_format)
        return fail("out of memory");
    if (cmig_semver_parse(&m->version, "1.0.0", 5, &err))
        return fail_err(&err);
    for (size_t i = 0; i < N_BASE; i++) {
        const struct base_file *b = &BASE[i];
        struct cmig_migration *mg = NULL;
        if (m->n && m->migrations[m->n - 1].version == b->version)
            mg = &m->migrations[m->n - 1];
        else if (!(mg = add_migration(m, b->version, b->name, &p->mig_cap)))
            return fail("out of memory");
        const char *src = strrchr(b->path, '/') + 1;
        if (set_file(b->is_down ? &mg->down : &mg->up, b->path, (const uint8_t *)b->sql,
                     strlen(b->sql), b->tx, b->reason, src))
            return -1;
    }
    return 0;
}

static struct ent file_ent(const char *name, const char *content)
{
    struct ent e = {.name = name,
                    .kind = K_FILE,
                    .data = (const uint8_t *)content,
                    .len = strlen(content),
                    .declared = -1};
    return e;
}

static void base_entries(struct plan *p)
{
    p->n = 0;
    p->ents[p->n++] = (struct ent){.name = CMIG_MANIFEST_NAME, .is_manifest = 1, .declared = -1};
    for (size_t i = 0; i < N_BASE; i++)
        p->ents[p->n++] = file_ent(BASE[i].path, BASE[i].sql);
}

static void insert_ent(struct plan *p, size_t at, struct ent e)
{
    memmove(&p->ents[at + 1], &p->ents[at], (p->n - at) * sizeof e);
    p->ents[at] = e;
    p->n++;
}

static void remove_ent(struct plan *p, size_t at)
{
    memmove(&p->ents[at], &p->ents[at + 1], (p->n - at - 1) * sizeof p->ents[0]);
    p->n--;
}

/* The manifest's file with this archive path (the base ones only). */
static struct cmig_file *manifest_file(struct plan *p, const char *path)
{
    for (size_t i = 0; i < p->m->n; i++) {
        struct cmig_migration *mg = &p->m->migrations[i];
        if (mg->up.path && strcmp(mg->up.path, path) == 0)
            return &mg->up;
        if (mg->down.path && strcmp(mg->down.path, path) == 0)
            return &mg->down;
    }
    return NULL;
}

/* ---- scenarios ---------------------------------------------------------- */

#define UP1 "migrations/1_create_users.up.sql"
#define DOWN1 "migrations/1_create_users.down.sql"
#define UP3 "migrations/3_add_email.up.sql"

static int sc_good(struct plan *p)
{
    (void)p;
    return 0;
}

static int sc_good_pax(struct plan *p)
{
    p->tar_format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
    return 0;
}

static int sc_good_gnutar(struct plan *p)
{
    p->tar_format = ARCHIVE_FORMAT_TAR_GNUTAR;
    return 0;
}

static int sc_traversal(struct plan *p)
{
    insert_ent(p, 1, file_ent("../x", "x\n"));
    return 0;
}

static int sc_traversal_nested(struct plan *p)
{
    insert_ent(p, 1, file_ent("migrations/../../x", "x\n"));
    return 0;
}

/* A name too long for a ustar header: pax carries it in an extended
 * header, which is what the reader must judge. */
static int sc_traversal_pax(struct plan *p)
{
    p->tar_format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
    insert_ent(p, 1,
               file_ent("migrations/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../../../x",
                        "x\n"));
    return 0;
}

static int sc_absolute(struct plan *p)
{
    insert_ent(p, 1, file_ent("/etc/x", "x\n"));
    return 0;
}

static int sc_unsafe_entry(struct plan *p)
{
    insert_ent(p, 1, file_ent("migrations/1 evil.sql", "x\n"));
    return 0;
}

/* Replaces the first migration file's entry by one of another type. */
static int replace_up1(struct plan *p, enum kind k)
{
    p->ents[1].kind = k;
    p->ents[1].data = NULL;
    p->ents[1].len = 0;
    return 0;
}

static int sc_symlink(struct plan *p)
{
    return replace_up1(p, K_SYMLINK);
}

static int sc_hardlink(struct plan *p)
{
    /* The down file becomes a hard link to the up file just before it. */
    p->ents[2].kind = K_HARDLINK;
    p->ents[2].data = NULL;
    p->ents[2].len = 0;
    return 0;
}

static int sc_device(struct plan *p)
{
    return replace_up1(p, K_CHR);
}

static int sc_block_device(struct plan *p)
{
    return replace_up1(p, K_BLK);
}

static int sc_fifo(struct plan *p)
{
    return replace_up1(p, K_FIFO);
}

static int sc_directory(struct plan *p)
{
    return replace_up1(p, K_DIR);
}

static int sc_sparse(struct plan *p)
{
    p->tar_format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
    p->ents[1].sparse = 1;
    return 0;
}

static int sc_duplicate(struct plan *p)
{
    insert_ent(p, 2, p->ents[1]);
    return 0;
}

static int sc_duplicate_last(struct plan *p)
{
    p->ents[p->n] = p->ents[p->n - 1];
    p->n++;
    return 0;
}

static int sc_duplicate_manifest(struct plan *p)
{
    insert_ent(p, 1, p->ents[0]);
    return 0;
}

static int sc_undeclared(struct plan *p)
{
    p->ents[p->n++] = file_ent("migrations/9_evil.up.sql", "DROP TABLE users;\n");
    return 0;
}

static int sc_undeclared_middle(struct plan *p)
{
    insert_ent(p, 2, file_ent("migrations/9_evil.up.sql", "DROP TABLE users;\n"));
    return 0;
}

static int sc_missing(struct plan *p)
{
    remove_ent(p, p->n - 1);
    return 0;
}

static int sc_missing_middle(struct plan *p)
{
    remove_ent(p, 2);
    return 0;
}

static int sc_reordered(struct plan *p)
{
    struct ent t = p->ents[1];
    p->ents[1] = p->ents[2];
    p->ents[2] = t;
    return 0;
}

/* Same size as the manifest says, other bytes. */
static int sc_hash(struct plan *p)
{
    static char evil[sizeof "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);\n"];
    snprintf(evil, sizeof evil, "%s", BASE[0].sql);
    memcpy(evil, "DROP  ", 6);
    p->ents[1].data = (const uint8_t *)evil;
    return 0;
}

static int sc_size(struct plan *p)
{
    static char more[256];
    snprintf(more, sizeof more, "%s-- one more line\n", BASE[0].sql);
    p->ents[1].data = (const uint8_t *)more;
    p->ents[1].len = strlen(more);
    return 0;
}

/* The header declares 300 MiB; the stream ends right after it, which is
 * all the reader needs to see to refuse it. */
static int sc_oversize(struct plan *p)
{
    p->ents[1].declared = (int64_t)(300 * MIB);
    p->ents[1].len = 0;
    p->ents[1].cut = 1;
    return 0;
}

static int sc_oversize_listed(struct plan *p)
{
    manifest_file(p, UP3)->size = 300 * MIB;
    return 0;
}

/* Seventeen files of 256 MiB each: each under the entry cap, together
 * over the 4 GiB total. Only the manifest says so. */
static int sc_total_over(struct plan *p)
{
    for (int i = 0; i < 17; i++) {
        char path[64], name[16];
        snprintf(name, sizeof name, "big%d", i);
        snprintf(path, sizeof path, "migrations/%d_big.up.sql", 10 + i);
        struct cmig_migration *mg = add_migration(p->m, 10 + i, name, &p->mig_cap);
        if (!mg ||
            set_file(&mg->up, path, (const uint8_t *)"", 0, CMIG_TX_TRANSACTION, "", path + 11))
            return fail("out of memory");
        mg->up.size = 256 * MIB;
    }
    return 0;
}

/* 100000 more files in the manifest (with the base ones, over the cap of
 * 100001 entries). The count is judged from the manifest before any
 * further entry is read, so the archive need not hold them. */
static int sc_too_many(struct plan *p)
{
    for (int i = 0; i < 100000; i++) {
        char path[64];
        snprintf(path, sizeof path, "m/%d.sql", 10 + i);
        struct cmig_migration *mg = add_migration(p->m, 10 + i, "m", &p->mig_cap);
        if (!mg ||
            set_file(&mg->up, path, (const uint8_t *)"", 0, CMIG_TX_TRANSACTION, "", path + 2))
            return fail("out of memory");
    }
    return 0;
}

/* 20 MiB of zeros compress about 1000:1; the manifest declares them with
 * their real hash, so only the ratio check can refuse the bundle. */
static int sc_gzip_bomb(struct plan *p)
{
    size_t len = 20 * MIB;
    p->big = calloc(1, len);
    if (!p->big)
        return fail("out of memory");
    if (set_file(manifest_file(p, UP3), UP3, p->big, len, CMIG_TX_TRANSACTION, "",
                 "3_add_email.up.sql"))
        return -1;
    p->ents[5].data = p->big;
    p->ents[5].len = len;
    return 0;
}

/* The tar reader consumes pax global headers itself (up to 1 MB each, 32
 * in a row); they are never entry data, yet gzip still inflates them. */
static int sc_pax_header_bomb(struct plan *p)
{
    p->pax_globals = 20;
    return 0;
}

/* The same after the last entry: the reader inflates them on its way to
 * the end of the archive, where no entry data is read any more. */
static int sc_pax_header_bomb_end(struct plan *p)
{
    p->pax_globals_end = 20;
    return 0;
}

static int sc_gzip_twice(struct plan *p)
{
    p->compress = C_GZIP_TWICE;
    return 0;
}

static int sc_plain_tar(struct plan *p)
{
    p->compress = C_NONE;
    return 0;
}

static int sc_xz(struct plan *p)
{
    p->compress = C_XZ;
    return 0;
}

static int sc_gzip_not_tar(struct plan *p)
{
    static const char text[] = "this is a gzip-compressed text, not a tar archive\n";
    p->no_tar = 1;
    p->payload = (const uint8_t *)text;
    p->payload_len = sizeof text - 1;
    return 0;
}

static int sc_zero_bytes(struct plan *p)
{
    p->no_tar = 1;
    p->compress = C_NONE;
    return 0;
}

/* A tar stream with only its end-of-archive blocks. */
static int sc_empty(struct plan *p)
{
    p->n = 0;
    return 0;
}

static int sc_manifest_not_first(struct plan *p)
{
    struct ent t = p->ents[0];
    p->ents[0] = p->ents[1];
    p->ents[1] = t;
    return 0;
}

static int sc_truncated(struct plan *p)
{
    p->ents[3].len /= 2;
    p->ents[3].declared = (int64_t)strlen(BASE[2].sql);
    p->ents[3].cut = 1;
    return 0;
}

static int sc_manifest_truncated(struct plan *p)
{
    p->ents[0].len = 1000; /* of a manifest several pages long */
    p->ents[0].cut = 1;
    return 0;
}

static int sc_tc_hash(struct plan *p)
{
    p->tc_wrong_hash = 1;
    return 0;
}

static int sc_tc_name(struct plan *p)
{
    p->tc_name = "other";
    return 0;
}

static int sc_tc_version(struct plan *p)
{
    p->tc_version = "9.9.9";
    return 0;
}

static int sc_tc_format(struct plan *p)
{
    p->tc_format = 2;
    return 0;
}

static int sc_tc_garbage(struct plan *p)
{
    p->tc_text = "timestamp:1700000000\tfile:app.cmig\thashed";
    return 0;
}

/* The header declares 65 MiB for manifest.db (cap 64 MiB); the stream
 * ends after it. */
static int sc_manifest_oversize(struct plan *p)
{
    p->ents[0].declared = (int64_t)(65 * MIB);
    p->ents[0].cut = 1;
    return 0;
}

static int sc_manifest_not_sqlite(struct plan *p)
{
    static uint8_t junk[4096];
    memset(junk, 'x', sizeof junk);
    memcpy(junk, "this is not a database\n", 23);
    p->raw_manifest = junk;
    p->raw_manifest_len = sizeof junk;
    return 0;
}

static int sc_manifest_empty(struct plan *p)
{
    static const uint8_t nothing[1];
    p->raw_manifest = nothing;
    p->raw_manifest_len = 0;
    return 0;
}

static int sc_manifest_app_id(struct plan *p)
{
    p->manifest_sql = "PRAGMA application_id = 1";
    return 0;
}

static int sc_manifest_future(struct plan *p)
{
    p->m->format_version = CMIG_FORMAT_VERSION + 1;
    return 0;
}

static int sc_manifest_extra_table(struct plan *p)
{
    p->manifest_sql = "CREATE TABLE extra (x TEXT)";
    return 0;
}

static int sc_manifest_altered(struct plan *p)
{
    p->manifest_sql = "ALTER TABLE migration ADD COLUMN evil TEXT";
    return 0;
}

static int sc_manifest_trigger(struct plan *p)
{
    p->manifest_sql = "CREATE TRIGGER t AFTER INSERT ON bundle BEGIN SELECT 1; END";
    return 0;
}

static int sc_manifest_index(struct plan *p)
{
    p->manifest_sql = "CREATE INDEX by_name ON migration (name)";
    return 0;
}

static int sc_manifest_unsafe_path(struct plan *p)
{
    struct cmig_file *f = manifest_file(p, UP3);
    free(f->path);
    f->path = strdup("../x");
    return f->path ? 0 : fail("out of memory");
}

static int sc_manifest_bad_hex(struct plan *p)
{
    p->manifest_sql = "UPDATE migration SET up_sha256 = upper(up_sha256) WHERE version = 1";
    return 0;
}

static int sc_manifest_duplicate_path(struct plan *p)
{
    struct cmig_file *f = manifest_file(p, UP3);
    free(f->path);
    f->path = strdup(UP1);
    return f->path ? 0 : fail("out of memory");
}

struct scenario {
    const char *name;
    int (*fn)(struct plan *p);
};

static const struct scenario SCENARIOS[] = {
    {"good", sc_good},
    {"good-pax", sc_good_pax},
    {"good-gnutar", sc_good_gnutar},
    {"traversal", sc_traversal},
    {"traversal-nested", sc_traversal_nested},
    {"traversal-pax", sc_traversal_pax},
    {"absolute", sc_absolute},
    {"unsafe-entry", sc_unsafe_entry},
    {"symlink", sc_symlink},
    {"hardlink", sc_hardlink},
    {"device", sc_device},
    {"block-device", sc_block_device},
    {"fifo", sc_fifo},
    {"directory", sc_directory},
    {"sparse", sc_sparse},
    {"duplicate", sc_duplicate},
    {"duplicate-last", sc_duplicate_last},
    {"duplicate-manifest", sc_duplicate_manifest},
    {"undeclared", sc_undeclared},
    {"undeclared-middle", sc_undeclared_middle},
    {"missing", sc_missing},
    {"missing-middle", sc_missing_middle},
    {"reordered", sc_reordered},
    {"hash", sc_hash},
    {"size", sc_size},
    {"oversize", sc_oversize},
    {"oversize-listed", sc_oversize_listed},
    {"total-over", sc_total_over},
    {"too-many", sc_too_many},
    {"gzip-bomb", sc_gzip_bomb},
    {"pax-header-bomb", sc_pax_header_bomb},
    {"pax-header-bomb-end", sc_pax_header_bomb_end},
    {"gzip-twice", sc_gzip_twice},
    {"plain-tar", sc_plain_tar},
    {"xz", sc_xz},
    {"gzip-not-tar", sc_gzip_not_tar},
    {"zero-bytes", sc_zero_bytes},
    {"empty", sc_empty},
    {"manifest-not-first", sc_manifest_not_first},
    {"truncated", sc_truncated},
    {"manifest-truncated", sc_manifest_truncated},
    {"tc-hash", sc_tc_hash},
    {"tc-name", sc_tc_name},
    {"tc-version", sc_tc_version},
    {"tc-format", sc_tc_format},
    {"tc-garbage", sc_tc_garbage},
    {"manifest-oversize", sc_manifest_oversize},
    {"manifest-not-sqlite", sc_manifest_not_sqlite},
    {"manifest-empty", sc_manifest_empty},
    {"manifest-app-id", sc_manifest_app_id},
    {"manifest-future", sc_manifest_future},
    {"manifest-extra-table", sc_manifest_extra_table},
    {"manifest-altered", sc_manifest_altered},
    {"manifest-trigger", sc_manifest_trigger},
    {"manifest-index", sc_manifest_index},
    {"manifest-unsafe-path", sc_manifest_unsafe_path},
    {"manifest-bad-hex", sc_manifest_bad_hex},
    {"manifest-duplicate-path", sc_manifest_duplicate_path},
};

/* ---- the manifest image ------------------------------------------------- */

/* Runs sql on a writable copy of the image and takes the image again. */
static int alter_manifest(uint8_t **img, size_t *len, const char *sql)
{
    sqlite3 *db = NULL;
    unsigned char *copy = NULL, *out = NULL;
    sqlite3_int64 n = 0;
    int rc = -1;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto out;
    copy = sqlite3_malloc64(*len);
    if (!copy)
        goto out;
    memcpy(copy, *img, *len);
    if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)*len, (sqlite3_int64)*len,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
        copy = NULL; /* freed by SQLite on failure */
        goto out;
    }
    copy = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "mkbundle: error: %s: %s\n", sql, sqlite3_errmsg(db));
        goto out;
    }
    out = sqlite3_serialize(db, "main", &n, 0);
    if (!out || n <= 0)
        goto out;
    uint8_t *nimg = malloc((size_t)n);
    if (!nimg)
        goto out;
    memcpy(nimg, out, (size_t)n);
    free(*img);
    *img = nimg;
    *len = (size_t)n;
    rc = 0;
out:
    sqlite3_free(out);
    sqlite3_close(db);
    if (rc)
        fail("cannot alter the manifest");
    return rc;
}

/* ---- step 1: the tar stream, in memory ---------------------------------- */

struct membuf {
    uint8_t *p;
    size_t len, cap;
    int stopped; /* after a cut: refuse everything, so libarchive stops */
};

static int mem_append(struct membuf *m, const void *buf, size_t len)
{
    if (len > m->cap - m->len) {
        size_t ncap = m->cap ? m->cap : 65536;
        while (len > ncap - m->len)
            ncap *= 2;
        uint8_t *np = realloc(m->p, ncap);
        if (!np)
            return -1;
        m->p = np;
        m->cap = ncap;
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct membuf *m = ctx;
    if (m->stopped) {
        archive_set_error(a, EIO, "stream cut on purpose");
        return -1;
    }
    if (mem_append(m, buf, len)) {
        archive_set_error(a, ENOMEM, "out of memory");
        return -1;
    }
    return (la_ssize_t)len;
}

/* libarchive does not write pax global headers on request, so this one is
 * written by hand: a ustar header of type 'g' and one pax record of exactly
 * 1000000 bytes ("1000000 comment=aaa...a\n"), padded to 512. */
static int append_pax_global(struct membuf *m)
{
    enum { BODY = 1000000, PADDED = (BODY + 511) / 512 * 512 };
    uint8_t h[512];
    memset(h, 0, sizeof h);
    memcpy(h, "pax_global_header", 17);
    memcpy(h + 100, "0000644", 7);
    memcpy(h + 108, "0000000", 7);
    memcpy(h + 116, "0000000", 7);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)BODY);
    snprintf((char *)h + 136, 12, "%011o", 0u);
    memset(h + 148, ' ', 8);
    h[156] = 'g';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    uint8_t *body = malloc(PADDED);
    if (!body)
        return fail("out of memory");
    memset(body, 0, PADDED);
    memset(body, 'a', BODY - 1);
    memcpy(body, "1000000 comment=", 16);
    body[BODY - 1] = '\n';
    int rc = mem_append(m, h, sizeof h) || mem_append(m, body, PADDED) ? -1 : 0;
    free(body);
    return rc ? fail("out of memory") : 0;
}

static int write_entry(struct archive *a, const struct ent *e, const uint8_t *data, size_t len)
{
    struct archive_entry *ae = archive_entry_new();
    int rc = -1;
    if (!ae)
        return fail("out of memory");
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_mtime(ae, 1700000000, 0);
    int64_t size = e->declared >= 0 ? e->declared : (int64_t)len;
    switch (e->kind) {
    case K_FILE:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, size);
        if (e->sparse) {
            /* A hole in front, then the data; the logical size grows. */
            archive_entry_set_size(ae, size + 65536);
            archive_entry_sparse_add_entry(ae, 65536, size);
        }
        break;
    case K_SYMLINK:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, "/etc/passwd");
        break;
    case K_HARDLINK:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, UP1);
        archive_entry_set_size(ae, 0);
        break;
    case K_CHR:
    case K_BLK:
        archive_entry_set_filetype(ae, e->kind == K_CHR ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(ae, 1);
        archive_entry_set_rdevminor(ae, 3);
        break;
    case K_FIFO:
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    case K_DIR:
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, 0755);
        break;
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
        fprintf(stderr, "mkbundle: error: '%s': %s\n", e->name, archive_error_string(a));
        goto out;
    }
    if (e->sparse) {
        /* libarchive writes a sparse file's data as the logical file: the
         * hole first (skipped), then the data. */
        static const uint8_t hole[65536];
        if (archive_write_data(a, hole, sizeof hole) < 0)
            goto out;
    }
    size_t done = 0;
    while (done < len) {
        la_ssize_t w = archive_write_data(a, data + done, len - done);
        if (w <= 0) {
            fprintf(stderr, "mkbundle: error: '%s': %s\n", e->name, archive_error_string(a));
            goto out;
        }
        done += (size_t)w;
    }
    rc = 0;
out:
    archive_entry_free(ae);
    return rc;
}

static int write_tar(const struct plan *p, const uint8_t *manifest, size_t manifest_len,
                     struct membuf *mb)
{
    struct archive *a = archive_write_new();
    int rc = -1;
    if (!a)
        return fail("out of memory");
    for (int i = 0; i < p->pax_globals; i++)
        if (append_pax_global(mb))
            goto out;
    /* No blocking: each header and each data write reaches mem_write at
     * once, so a cut lands exactly after the data written. */
    if (archive_write_set_format(a, p->tar_format) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, mb, NULL, mem_write, NULL) != ARCHIVE_OK) {
        fprintf(stderr, "mkbundle: error: libarchive: %s\n", archive_error_string(a));
        goto out;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct ent *e = &p->ents[i];
        const uint8_t *data = e->is_manifest ? manifest : e->data;
        size_t len = e->len;
        if (e->is_manifest && !e->cut)
            len = manifest_len;
        if (e->is_manifest && e->cut && len > manifest_len)
            len = manifest_len;
        if (write_entry(a, e, data, len))
            goto out;
        if (e->cut) {
            mb->stopped = 1;
            rc = 0;
            goto out;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        fprintf(stderr, "mkbundle: error: libarchive: %s\n", archive_error_string(a));
        goto out;
    }
    if (p->pax_globals_end) {
        /* Unblocked, the stream ends with exactly the two zero blocks that
         * mark the end: the headers go in front of them. */
        static const uint8_t end[1024];
        if (mb->len < sizeof end || memcmp(mb->p + mb->len - sizeof end, end, sizeof end)) {
            fail("the tar stream does not end with two zero blocks");
            goto out;
        }
        mb->len -= sizeof end;
        for (int i = 0; i < p->pax_globals_end; i++)
            if (append_pax_global(mb))
                goto out;
        if (mem_append(mb, end, sizeof end)) {
            fail("out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    archive_write_free(a);
    return rc;
}

/* ---- step 2: compression into the bundle file --------------------------- */

static int compress_to(const char *path, const uint8_t *data, size_t len, enum compress c)
{
    struct archive *a = archive_write_new();
    struct archive_entry *ae = archive_entry_new();
    int rc = -1;
    if (!a || !ae) {
        fail("out of memory");
        goto out;
    }
    int r = archive_write_set_format_raw(a);
    switch (c) {
    case C_GZIP:
        r |= archive_write_add_filter_gzip(a);
        break;
    case C_GZIP_TWICE:
        r |= archive_write_add_filter_gzip(a);
        r |= archive_write_add_filter_gzip(a);
        break;
    case C_NONE:
        r |= archive_write_add_filter_none(a);
        break;
    case C_XZ:
        r |= archive_write_add_filter_xz(a);
        break;
    }
    /* The compressed stream is not padded to a tar record. */
    r |= archive_write_set_bytes_in_last_block(a, 1);
    r |= archive_write_open_filename(a, path);
    archive_entry_set_pathname(ae, "data");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_size(ae, (la_int64_t)len);
    if (r != ARCHIVE_OK || archive_write_header(a, ae) != ARCHIVE_OK)
        goto out;
    size_t done = 0;
    while (done < len) {
        la_ssize_t w = archive_write_data(a, data + done, len - done);
        if (w <= 0)
            goto out;
        done += (size_t)w;
    }
    if (archive_write_close(a) == ARCHIVE_OK)
        rc = 0;
out:
    if (rc && a)
        fprintf(stderr, "mkbundle: error: '%s': %s\n", path,
                archive_error_string(a) ? archive_error_string(a) : "libarchive failed");
    archive_entry_free(ae);
    if (a)
        archive_write_free(a);
    return rc;
}

/* ---- signing ------------------------------------------------------------ */

static int write_all(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail("cannot create the signature file");
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = fail("cannot write the signature file");
            break;
        }
        done += (size_t)w;
    }
    if (close(fd) != 0 && !rc)
        rc = fail("cannot write the signature file");
    return rc;
}

static int sign(const char *out, const struct cmig_seckey *k, const char *tc)
{
    struct cmig_err err;
    uint8_t prehash[CMIG_PREHASH_BYTES];
    char *text = NULL, *sig_path = NULL;
    size_t len = 0;
    int rc = -1;
    cmig_err_clear(&err);
    int fd = open(out, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("cannot open the bundle to sign it");
    int r = cmig_prehash_fd(fd, UINT64_MAX, prehash, NULL, out, &err);
    close(fd);
    if (r || cmig_sig_create(k, prehash, "hostile cmig test bundle", tc, &text, &len, &err)) {
        fail_err(&err);
        goto out;
    }
    if (asprintf(&sig_path, "%s.minisig", out) < 0) {
        sig_path = NULL;
        fail("out of memory");
        goto out;
    }
    rc = write_all(sig_path, text, len);
out:
    free(sig_path);
    free(text);
    return rc;
}

static int load_key(const char *path, struct cmig_seckey **k)
{
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    cmig_err_clear(&err);
    int rc = cmig_secret_read_file(&text, &len, path, &err) ||
             cmig_seckey_parse(k, text, len, NULL, path, &err);
    cmig_secret_free(text);
    return rc ? fail_err(&err) : 0;
}

/* ---- main --------------------------------------------------------------- */

static int make(const char *key_path, const char *out, const struct scenario *sc)
{
    struct plan p;
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    struct membuf mb = {0};
    uint8_t *manifest = NULL;
    size_t manifest_len = 0;
    int rc = -1;

    memset(&p, 0, sizeof p);
    p.tar_format = ARCHIVE_FORMAT_TAR_USTAR;
    p.compress = C_GZIP;
    cmig_err_clear(&err);
    if (load_key(key_path, &k) || base_manifest(&p))
        goto out;
    base_entries(&p);
    if (sc->fn(&p))
        goto out;

    if (p.raw_manifest) {
        manifest = malloc(p.raw_manifest_len ? p.raw_manifest_len : 1);
        if (!manifest) {
            fail("out of memory");
            goto out;
        }
        memcpy(manifest, p.raw_manifest, p.raw_manifest_len);
        manifest_len = p.raw_manifest_len;
    } else if (cmig_manifest_serialize(p.m, &manifest, &manifest_len, &err)) {
        fail_err(&err);
        goto out;
    }
    if (p.manifest_sql && alter_manifest(&manifest, &manifest_len, p.manifest_sql))
        goto out;

    if (p.no_tar) {
        if (compress_to(out, p.payload, p.payload_len, p.compress))
            goto out;
    } else {
        if (write_tar(&p, manifest, manifest_len, &mb) ||
            compress_to(out, mb.p, mb.len, p.compress))
            goto out;
    }

    uint8_t sha[32];
    crypto_hash_sha256(sha, manifest, manifest_len);
    if (p.tc_wrong_hash)
        sha[0] ^= 0x01;
    char tc[CMIG_TRUSTED_COMMENT_MAX + 1];
    if (p.tc_text) {
        snprintf(tc, sizeof tc, "%s", p.tc_text);
    } else {
        struct cmig_claim claim;
        cmig_claim_of(&claim, p.m, sha);
        snprintf(claim.name, sizeof claim.name, "%s", p.tc_name ? p.tc_name : p.m->name);
        snprintf(claim.version, sizeof claim.version, "%s",
                 p.tc_version ? p.tc_version : p.m->version.text);
        claim.format_version = p.tc_format ? p.tc_format : CMIG_FORMAT_VERSION;
        if (cmig_trusted_comment_format(tc, sizeof tc, &claim)) {
            fail("trusted comment too long");
            goto out;
        }
    }
    rc = sign(out, k, tc);
out:
    free(mb.p);
    free(manifest);
    free(p.big);
    cmig_manifest_free(p.m);
    cmig_seckey_free(k);
    return rc;
}

int main(int argc, char **argv)
{
    size_t n = sizeof SCENARIOS / sizeof SCENARIOS[0];
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", SCENARIOS[i].name);
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: mkbundle SECRET_KEY OUT SCENARIO\n       mkbundle --list\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fail("libsodium failed to initialise");
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(SCENARIOS[i].name, argv[3]) == 0)
            return make(argv[1], argv[2], &SCENARIOS[i]) ? 2 : 0;
    fprintf(stderr, "mkbundle: error: unknown scenario '%s' (see --list)\n", argv[3]);
    return 2;
}
