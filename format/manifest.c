/*
 * manifest.c - the bundle manifest as a SQLite database.
 *
 * Writing is deterministic: an in-memory database with a fixed page size,
 * one transaction, rows inserted in version order, no clock; the image is
 * taken with sqlite3_serialize. The same manifest gives the same bytes.
 *
 * Reading treats the image as hostile even though the caller has checked
 * its hash against a signature: the header is checked by hand first, then
 * SQLite opens it from memory, read-only, in defensive mode with triggers
 * and views off, an untrusted schema, tight limits and quick_check; the
 * schema must be exactly the one below, and every value is validated
 * before it leaves this file.
 */
#include "cmig/manifest.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/srcdir.h"
#include "zimage.h"

/* The schema, byte for byte as stored in sqlite_schema.sql. */
static const char SCHEMA_BUNDLE[] = "CREATE TABLE bundle (\n"
                                    "  format_version INTEGER NOT NULL,\n"
                                    "  name TEXT NOT NULL,\n"
                                    "  version TEXT NOT NULL,\n"
                                    "  created_at INTEGER NOT NULL,\n"
                                    "  source_revision TEXT NOT NULL,\n"
                                    "  builder TEXT NOT NULL,\n"
                                    "  driver TEXT NOT NULL,\n"
                                    "  dir_format TEXT NOT NULL\n"
                                    ")";

static const char SCHEMA_MIGRATION[] = "CREATE TABLE migration (\n"
                                       "  version INTEGER PRIMARY KEY,\n"
                                       "  name TEXT NOT NULL,\n"
                                       "  up_path TEXT NOT NULL,\n"
                                       "  up_size INTEGER NOT NULL,\n"
                                       "  up_sha256 TEXT NOT NULL,\n"
                                       "  up_tx TEXT NOT NULL,\n"
                                       "  up_tx_reason TEXT NOT NULL,\n"
                                       "  up_source TEXT NOT NULL,\n"
                                       "  up_source_line INTEGER NOT NULL,\n"
                                       "  down_path TEXT,\n"
                                       "  down_size INTEGER,\n"
                                       "  down_sha256 TEXT,\n"
                                       "  down_tx TEXT,\n"
                                       "  down_tx_reason TEXT,\n"
                                       "  down_source TEXT,\n"
                                       "  down_source_line INTEGER\n"
                                       ")";

#define MIGRATION_COLUMNS                                                                          \
    "version, name, up_path, up_size, up_sha256, up_tx, up_tx_reason, up_source, "                 \
    "up_source_line, down_path, down_size, down_sha256, down_tx, down_tx_reason, "                 \
    "down_source, down_source_line"

#define PAGE_SIZE 4096
#define TEXT_MAX 4096 /* cap on any text value in a manifest */

void cmig_hex32(const uint8_t d[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = '\0';
}

static int unhex32(const char *s, size_t len, uint8_t out[32])
{
    if (len != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char c = s[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

int cmig_bundle_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CMIG_BUNDLE_NAME_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int cmig_driver_valid(const char *s)
{
    return strcmp(s, "postgres") == 0 || strcmp(s, "sqlite") == 0 || strcmp(s, "mongodb") == 0;
}

int cmig_path_safe(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > CMIG_PATH_MAX || p[0] == '/')
        return 0;
    const char *comp = p;
    for (size_t i = 0; i <= n; i++) {
        char c = p[i];
        if (c == '/' || c == '\0') {
            size_t clen = (size_t)(p + i - comp);
            if (clen == 0 || (clen == 1 && comp[0] == '.') ||
                (clen == 2 && comp[0] == '.' && comp[1] == '.'))
                return 0;
            comp = p + i + 1;
            continue;
        }
        if (c < 0x21 || c > 0x7e || c == '\\')
            return 0;
    }
    return 1;
}

/* Text that may appear in a manifest: valid UTF-8, no control characters. */
static int text_ok(const char *s, size_t n)
{
    if (n > TEXT_MAX || !cmig_utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

static int sql_fail(struct cmig_err *err, sqlite3 *db, const char *what)
{
    char native[16];
    snprintf(native, sizeof native, "sqlite:%d", sqlite3_extended_errcode(db));
    cmig_err_set(err, sqlite3_errcode(db) == SQLITE_NOMEM ? CMIG_E_NOMEM : CMIG_E_INTERNAL,
                 "manifest: %s: %s", what, sqlite3_errmsg(db));
    cmig_err_native(err, native);
    return err->code;
}

static int bind_file(sqlite3_stmt *st, int col, const struct cmig_file *f)
{
    int rc = 0;
    if (!f->path) {
        for (int i = 0; i < 7; i++)
            rc |= sqlite3_bind_null(st, col + i);
        return rc;
    }
    char hex[65];
    cmig_hex32(f->sha256, hex);
    rc |= sqlite3_bind_text(st, col, f->path, -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int64(st, col + 1, (sqlite3_int64)f->size);
    rc |= sqlite3_bind_text(st, col + 2, hex, 64, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_text(st, col + 3, cmig_txmode_name(f->tx), -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(st, col + 4, f->tx_reason ? f->tx_reason : "", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_text(st, col + 5, f->source ? f->source : "", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int64(st, col + 6, f->source_line);
    return rc;
}

int cmig_manifest_serialize(const struct cmig_manifest *m, uint8_t **out, size_t *len,
                            struct cmig_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    unsigned char *image = NULL;
    int rc = 0;
    *out = NULL;
    *len = 0;

    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = db ? sql_fail(err, db, "open") : cmig_err_nomem(err);
        goto out;
    }
    char setup[512];
    snprintf(setup, sizeof setup,
             "PRAGMA page_size=%d; PRAGMA application_id=%d; PRAGMA user_version=%d; BEGIN;",
             PAGE_SIZE, CMIG_MANIFEST_APPLICATION_ID, m->format_version);
    if (sqlite3_exec(db, setup, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, SCHEMA_BUNDLE, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, SCHEMA_MIGRATION, NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_fail(err, db, "create schema");
        goto out;
    }

    if (sqlite3_prepare_v2(db, "INSERT INTO bundle VALUES (?,?,?,?,?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = sql_fail(err, db, "prepare");
        goto out;
    }
    int b = 0;
    b |= sqlite3_bind_int(st, 1, m->format_version);
    b |= sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 3, m->version.text, -1, SQLITE_STATIC);
    b |= sqlite3_bind_int64(st, 4, m->created_at);
    b |= sqlite3_bind_text(st, 5, m->source_revision ? m->source_revision : "", -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 6, m->builder, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 7, m->driver, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 8, m->dir_format, -1, SQLITE_STATIC);
    /* The statement and its indexes are fixed: a bind fails only when it
     * cannot copy its value, and SQLite then records no error to report. */
    if (b != SQLITE_OK) {
        rc = cmig_err_set(err, CMIG_E_NOMEM, "manifest: insert bundle: out of memory");
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = sql_fail(err, db, "insert bundle");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO migration (" MIGRATION_COLUMNS
                           ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(err, db, "prepare");
        goto out;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        b = sqlite3_bind_int64(st, 1, mg->version);
        b |= sqlite3_bind_text(st, 2, mg->name, -1, SQLITE_STATIC);
        b |= bind_file(st, 3, &mg->up);
        b |= bind_file(st, 10, &mg->down);
        if (b != SQLITE_OK) {
            rc = cmig_err_set(err, CMIG_E_NOMEM, "manifest: insert migration: out of memory");
            goto out;
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = sql_fail(err, db, "insert migration");
            goto out;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_fail(err, db, "commit");
        goto out;
    }

    sqlite3_int64 size = 0;
    image = sqlite3_serialize(db, "main", &size, 0);
    if (!image || size <= 0) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    *out = malloc((size_t)size);
    if (!*out) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memcpy(*out, image, (size_t)size);
    *len = (size_t)size;
out:
    sqlite3_free(image);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the 100-byte SQLite header before SQLite sees the image. */
static int check_header(const uint8_t *img, size_t len, struct cmig_err *err)
{
    static const char magic[16] = "SQLite format 3";
    if (len < 512 || memcmp(img, magic, 16) != 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "manifest: not a SQLite database");
    unsigned page = (unsigned)img[16] << 8 | img[17];
    if (page == 1)
        page = 65536;
    if (page < 512 || (page & (page - 1)) != 0 || len % page != 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "manifest: invalid page size %u", page);
    uint32_t pages = be32(img + 28);
    if ((uint64_t)pages * page != len)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "manifest: page count %u does not match its size %zu", pages, len);
    if (be32(img + 68) != CMIG_MANIFEST_APPLICATION_ID)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "manifest: not a cmig manifest (application_id 0x%08x)",
                            be32(img + 68));
    uint32_t format = be32(img + 60);
    if (format == 0 || format > CMIG_FORMAT_VERSION)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "manifest: format version %u is not supported (this cmig reads %d)",
                            format, CMIG_FORMAT_VERSION);
    return 0;
}

static void harden(sqlite3 *db)
{
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
    sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 50);
    sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 3);
    sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25000);
    sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50);
    sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 10);
    sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
}

/* The strings of a loaded manifest, packed into blocks: a 10,000-migration
 * manifest has 50,000 of them, and one malloc each would cost a third more
 * memory than the text itself, at every start that reads the manifest. */
#define STRINGS_BLOCK (64u * 1024)

struct cmig_strings {
    struct cmig_strings *next;
    size_t used, cap;
    char data[];
};

static char *strings_add(struct cmig_strings **head, const char *s, size_t n)
{
    struct cmig_strings *b = *head;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > STRINGS_BLOCK ? n + 1 : STRINGS_BLOCK;
        struct cmig_strings *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        /* A block made for one long string goes behind the current one, so
         * the current one keeps filling. */
        if (b && cap > STRINGS_BLOCK) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            *head = nb;
        }
        b = nb;
    }
    char *out = b->data + b->used;
    memcpy(out, s, n);
    out[n] = '\0';
    b->used += n + 1;
    return out;
}

static void strings_free(struct cmig_strings *b)
{
    while (b) {
        struct cmig_strings *next = b->next;
        free(b);
        b = next;
    }
}

/* Copies a TEXT column (into strings when given, else malloc'd); NULL
 * column gives *out = NULL when allowed. */
static int col_str(sqlite3_stmt *st, int i, int nullable, struct cmig_strings **strings, char **out,
                   const char *what, struct cmig_err *err)
{
    *out = NULL;
    int type = sqlite3_column_type(st, i);
    if (type == SQLITE_NULL && nullable)
        return 0;
    if (type != SQLITE_TEXT)
        return cmig_err_set(err, CMIG_E_VERIFY, "%s is not text", what);
    const char *s = (const char *)sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!s || n < 0 || !text_ok(s, (size_t)n))
        return cmig_err_set(err, CMIG_E_VERIFY, "%s is not valid text", what);
    if (strings) {
        *out = strings_add(strings, s, (size_t)n);
        return *out ? 0 : cmig_err_nomem(err);
    }
    *out = malloc((size_t)n + 1);
    if (!*out)
        return cmig_err_nomem(err);
    memcpy(*out, s, (size_t)n);
    (*out)[n] = '\0';
    return 0;
}

static int col_text(sqlite3_stmt *st, int i, int nullable, char **out, const char *what,
                    struct cmig_err *err)
{
    return col_str(st, i, nullable, NULL, out, what, err);
}

static int col_int(sqlite3_stmt *st, int i, int64_t *out, const char *what, struct cmig_err *err)
{
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
        return cmig_err_set(err, CMIG_E_VERIFY, "%s is not an integer", what);
    *out = sqlite3_column_int64(st, i);
    return 0;
}

/* Column names of one direction, in table order; also what errors call them. */
static const char *const UP_COLS[7] = {"up_path",      "up_size",   "up_sha256",     "up_tx",
                                       "up_tx_reason", "up_source", "up_source_line"};
static const char *const DOWN_COLS[7] = {"down_path",       "down_size",      "down_sha256",
                                         "down_tx",         "down_tx_reason", "down_source",
                                         "down_source_line"};

/* Reads one direction's seven columns. This runs for every row of every
 * manifest at every pod start: nothing is formatted unless it fails. */
static int read_file_cols(sqlite3_stmt *st, int col, int is_down, struct cmig_strings **strings,
                          struct cmig_file *f, struct cmig_err *err)
{
    const char *const *name = is_down ? DOWN_COLS : UP_COLS;
    int64_t size = 0, line = 0;
    char *hex = NULL, *tx = NULL;
    int rc;
    if ((rc = col_str(st, col, is_down, strings, &f->path, name[0], err)))
        return rc;
    if (!f->path) {
        for (int i = 1; i < 7; i++)
            if (sqlite3_column_type(st, col + i) != SQLITE_NULL)
                return cmig_err_set(err, CMIG_E_VERIFY, "%s is set but down_path is not", name[i]);
        return 0;
    }
    if (!cmig_path_safe(f->path) || strcmp(f->path, CMIG_MANIFEST_NAME) == 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "unsafe path '%s'", f->path);
    if ((rc = col_int(st, col + 1, &size, name[1], err)))
        return rc;
    if (size < 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "negative %s", name[1]);
    f->size = (uint64_t)size;
    if ((rc = col_text(st, col + 2, 0, &hex, name[2], err)))
        return rc;
    int bad = unhex32(hex, strlen(hex), f->sha256);
    free(hex);
    if (bad)
        return cmig_err_set(err, CMIG_E_VERIFY, "%s is not 64 lower-case hex digits", name[2]);
    if ((rc = col_text(st, col + 3, 0, &tx, name[3], err)))
        return rc;
    int mode = cmig_txmode_parse(tx);
    free(tx);
    if (mode < 0)
        return cmig_err_set(err, CMIG_E_VERIFY, "%s is not a transaction mode", name[3]);
    f->tx = (enum cmig_txmode)mode;
    if ((rc = col_str(st, col + 4, 0, strings, &f->tx_reason, name[4], err)) ||
        (rc = col_str(st, col + 5, 0, strings, &f->source, name[5], err)) ||
        (rc = col_int(st, col + 6, &line, name[6], err)))
        return rc;
    if (line < 0 || line > UINT32_MAX)
        return cmig_err_set(err, CMIG_E_VERIFY, "%s out of range", name[6]);
    f->source_line = (uint32_t)line;
    return 0;
}

static int check_schema(sqlite3 *db, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, seen = 0;
    if (sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK) {
        rc =
            cmig_err_set(err, CMIG_E_VERIFY, "manifest: unreadable schema: %s", sqlite3_errmsg(db));
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *sql = (const char *)sqlite3_column_text(st, 2);
        const char *want = NULL;
        if (seen == 0 && name && strcmp(name, "bundle") == 0)
            want = SCHEMA_BUNDLE;
        else if (seen == 1 && name && strcmp(name, "migration") == 0)
            want = SCHEMA_MIGRATION;
        if (!want || !type || strcmp(type, "table") != 0 || !sql || strcmp(sql, want) != 0) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: unexpected schema object '%s'",
                              name ? name : "?");
            goto out;
        }
        seen++;
    }
    if (step != SQLITE_DONE || seen != 2)
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: schema is incomplete or unreadable");
out:
    sqlite3_finalize(st);
    return rc;
}

static int quick_check(sqlite3 *db, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: database is corrupt: %s",
                          sqlite3_errmsg(db));
    } else {
        /* The finding is the row itself ("*** in database main ***\nPage 4
         * is never used"); its last line says what is wrong. */
        const char *res = (const char *)sqlite3_column_text(st, 0);
        const char *why = res ? strrchr(res, '\n') : NULL;
        why = why ? why + 1 : res ? res : "no result";
        /* A page the check could not load for want of memory is reported
         * as a finding, with SQLite's code at the end. */
        char nomem[32];
        size_t nl = (size_t)snprintf(nomem, sizeof nomem, "error code=%d", SQLITE_NOMEM);
        size_t wl = strlen(why);
        if (res && strcmp(res, "ok") != 0 && wl >= nl && strcmp(why + wl - nl, nomem) == 0)
            rc = cmig_err_set(err, CMIG_E_NOMEM, "manifest: out of memory");
        else if (!res || strcmp(res, "ok") != 0)
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: database is corrupt: %.200s", why);
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_bundle_row(sqlite3 *db, struct cmig_manifest *m, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    char *version = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT format_version, name, version, created_at, source_revision, "
                           "builder, driver, dir_format FROM bundle",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: no bundle row");
        goto out;
    }
    int64_t fv = 0;
    if ((rc = col_int(st, 0, &fv, "format_version", err)) ||
        (rc = col_text(st, 1, 0, &m->name, "name", err)) ||
        (rc = col_text(st, 2, 0, &version, "version", err)) ||
        (rc = col_int(st, 3, &m->created_at, "created_at", err)) ||
        (rc = col_text(st, 4, 0, &m->source_revision, "source_revision", err)) ||
        (rc = col_text(st, 5, 0, &m->builder, "builder", err)) ||
        (rc = col_text(st, 6, 0, &m->driver, "driver", err)) ||
        (rc = col_text(st, 7, 0, &m->dir_format, "dir_format", err))) {
        cmig_err_prefix(err, "manifest: bundle");
        goto out;
    }
    if (fv != CMIG_FORMAT_VERSION) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: format_version %lld is not supported",
                          (long long)fv);
        goto out;
    }
    m->format_version = (int)fv;
    if (!cmig_bundle_name_valid(m->name)) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: invalid bundle name '%s'", m->name);
        goto out;
    }
    if ((rc = cmig_semver_parse(&m->version, version, strlen(version), err))) {
        cmig_err_prefix(err, "manifest");
        rc = err->code = CMIG_E_VERIFY;
        goto out;
    }
    if (!cmig_driver_valid(m->driver)) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: unknown driver '%s'", m->driver);
        goto out;
    }
    if (cmig_dir_format_parse(m->dir_format) <= CMIG_DIR_AUTO) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: unknown directory format '%s'",
                          m->dir_format);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: more than one bundle row");
out:
    free(version);
    sqlite3_finalize(st);
    return rc;
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every archive path must be unique across ups and downs. */
static int check_unique_paths(const struct cmig_manifest *m, struct cmig_err *err)
{
    size_t n = 0;
    char **paths = malloc((2 * m->n + 1) * sizeof *paths);
    if (!paths)
        return cmig_err_nomem(err);
    for (size_t i = 0; i < m->n; i++) {
        paths[n++] = m->migrations[i].up.path;
        if (m->migrations[i].down.path)
            paths[n++] = m->migrations[i].down.path;
    }
    qsort(paths, n, sizeof *paths, path_cmp);
    int rc = 0;
    for (size_t i = 1; i < n; i++)
        if (strcmp(paths[i - 1], paths[i]) == 0) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: path '%s' is listed twice", paths[i]);
            break;
        }
    free(paths);
    return rc;
}

static int load_migrations(sqlite3 *db, struct cmig_manifest *m, struct cmig_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    sqlite3_int64 count = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM migration", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: %s", sqlite3_errmsg(db));
        goto out;
    }
    count = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (count < 0 || count > 10000000) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: too many migrations (%lld)",
                          (long long)count);
        goto out;
    }
    m->migrations = calloc(count ? (size_t)count : 1, sizeof *m->migrations);
    if (!m->migrations) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    if (sqlite3_prepare_v2(db, "SELECT " MIGRATION_COLUMNS " FROM migration ORDER BY version", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: %s", sqlite3_errmsg(db));
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (m->n >= (size_t)count) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: row count changed while reading");
            goto out;
        }
        struct cmig_migration *mg = &m->migrations[m->n++];
        if ((rc = col_int(st, 0, &mg->version, "migration version", err))) {
            cmig_err_prefix(err, "manifest");
            goto out;
        }
        if (mg->version < 0) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: negative migration version %lld",
                              (long long)mg->version);
            goto out;
        }
        if ((rc = col_str(st, 1, 0, &m->strings, &mg->name, "name", err))) {
            cmig_err_prefix(err, "manifest: migration %lld", (long long)mg->version);
            goto out;
        }
        if (!mg->name[0]) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: migration %lld has an empty name",
                              (long long)mg->version);
            goto out;
        }
        if ((rc = read_file_cols(st, 2, 0, &m->strings, &mg->up, err)) ||
            (rc = read_file_cols(st, 9, 1, &m->strings, &mg->down, err))) {
            cmig_err_prefix(err, "manifest: migration %lld", (long long)mg->version);
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: %s", sqlite3_errmsg(db));
        goto out;
    }
    rc = check_unique_paths(m, err);
out:
    sqlite3_finalize(st);
    return rc;
}

int cmig_manifest_load(struct cmig_manifest **out, const uint8_t *image, size_t len,
                       struct cmig_err *err)
{
    struct cmig_zimage *z = NULL;
    *out = NULL;
    int rc = cmig_zimage_wrap(&z, image, len, err);
    if (!rc)
        rc = cmig_manifest_load_zimage(out, z, err);
    cmig_zimage_free(z);
    return rc;
}

int cmig_manifest_load_zimage(struct cmig_manifest **out, struct cmig_zimage *z,
                              struct cmig_err *err)
{
    sqlite3 *db = NULL;
    struct cmig_zvfs *vfs = NULL;
    struct cmig_manifest *m = NULL;
    int rc, fresh = err->code == CMIG_OK;
    uint8_t head[100];
    *out = NULL;

    uint64_t len = cmig_zimage_size(z);
    if (len < 512 || len > SIZE_MAX) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "manifest: not a SQLite database");
        goto out;
    }
    if ((rc = cmig_zimage_read(z, head, sizeof head, 0))) {
        rc = rc == CMIG_E_NOMEM ? cmig_err_nomem(err)
                                : cmig_err_set(err, rc, "manifest: image unreadable");
        goto out;
    }
    if ((rc = check_header(head, (size_t)len, err)))
        goto out;
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    /* One thread per handle: SQLite's mutexes would cost more than the rest
     * of a small manifest's load. The VFS serves the image and nothing
     * else, read-only and immutable. */
    int orc = cmig_zvfs_open(z, SQLITE_OPEN_NOMUTEX, &db, &vfs);
    if (orc != SQLITE_OK) {
        rc = (orc & 0xff) == SQLITE_NOMEM
                 ? cmig_err_set(err, CMIG_E_NOMEM, "manifest: out of memory")
                 : cmig_err_set(err, CMIG_E_VERIFY, "manifest: cannot open: %s",
                                db ? sqlite3_errmsg(db) : sqlite3_errstr(orc));
        goto out;
    }
    harden(db);
    /* The page cache is kept small: pages come from the image, which is
     * already in memory. Temp storage stays in memory too: the VFS opens
     * no other file. These read the schema, so a failure is the
     * manifest's. */
    if (sqlite3_exec(db, "PRAGMA cell_size_check=ON; PRAGMA cache_size=-64; PRAGMA temp_store=2",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc =
            sqlite3_errcode(db) == SQLITE_NOMEM
                ? cmig_err_set(err, CMIG_E_NOMEM, "manifest: out of memory")
                : cmig_err_set(err, CMIG_E_VERIFY, "manifest: cannot open: %s", sqlite3_errmsg(db));
        goto out;
    }
    if ((rc = check_schema(db, err)) || (rc = quick_check(db, err)) ||
        (rc = load_bundle_row(db, m, err)) || (rc = load_migrations(db, m, err)))
        goto out;
    *out = m;
    m = NULL;
out:
    /* A prepare or step that ran out of memory reads above as a damaged
     * manifest ("no bundle row", "database is corrupt"): a bundle refused
     * for that would be reported as tampered. The checks run on a handle
     * of their own, so its last error is theirs. */
    if (rc && fresh && rc != CMIG_E_NOMEM && db && sqlite3_errcode(db) == SQLITE_NOMEM) {
        cmig_err_clear(err);
        rc = cmig_err_set(err, CMIG_E_NOMEM, "manifest: out of memory");
    }
    cmig_zvfs_close(db, vfs);
    cmig_manifest_free(m);
    return rc;
}

static void free_file(struct cmig_file *f)
{
    free(f->path);
    free(f->tx_reason);
    free(f->source);
}

void cmig_manifest_free(struct cmig_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; !m->strings && i < m->n; i++) {
        free(m->migrations[i].name);
        free_file(&m->migrations[i].up);
        free_file(&m->migrations[i].down);
    }
    strings_free(m->strings);
    free(m->migrations);
    free(m->name);
    free(m->source_revision);
    free(m->builder);
    free(m->driver);
    free(m->dir_format);
    free(m);
}

const struct cmig_migration *cmig_manifest_find(const struct cmig_manifest *m, int64_t version)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = m->migrations[mid].version;
        if (v == version)
            return &m->migrations[mid];
        if (v < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
