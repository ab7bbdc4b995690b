/*
 * test_manifest.c - unit tests for the SQLite manifest (format/manifest.c).
 *
 * A manifest is loaded only after its hash was checked against a signature,
 * yet the loader must still refuse anything cmig would not have written:
 * these tests write such images on purpose (by patching the header bytes,
 * or by altering a real image with SQLite, as an attacker holding a key
 * would) and check each is refused with its own message. The round trip
 * covers every field, and the writer must be deterministic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cmig/err.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"
#include "harness.h"
#include "manifest_fixture.h"

static void fill_file(struct cmig_file *f, const char *path, uint64_t size, uint8_t fill,
                      enum cmig_txmode tx, const char *reason, const char *source, uint32_t line)
{
    f->path = fixture_strdup(path);
    f->size = size;
    for (int i = 0; i < 32; i++)
        f->sha256[i] = (uint8_t)(fill + i * 7);
    f->tx = tx;
    f->tx_reason = fixture_strdup(reason);
    f->source = fixture_strdup(source);
    f->source_line = line;
}

/* A manifest using every field: pre-release and build metadata, a
 * migration without down, both transaction modes, reasons, sources, lines,
 * a 64-bit version and a UTF-8 name. */
static struct cmig_manifest *sample(void)
{
    struct cmig_manifest *m =
        fixture_manifest("shop-db", "2.1.0-rc.1+build.7", "goose", "cmig-bundle 0.1.0", 3);
    m->created_at = 1700000123;
    free(m->source_revision);
    m->source_revision = fixture_strdup("9f1c2e0");
    struct cmig_migration *a = &m->migrations[0], *b = &m->migrations[1], *c = &m->migrations[2];
    a->version = 1;
    a->name = fixture_strdup("create users");
    fill_file(&a->up, "migrations/1_create_users.up.sql", 120, 0x10, CMIG_TX_TRANSACTION, "",
              "00001_create_users.sql", 2);
    fill_file(&a->down, "migrations/1_create_users.down.sql", 18, 0x20, CMIG_TX_TRANSACTION, "",
              "00001_create_users.sql", 9);
    b->version = 20240101120000;
    b->name = fixture_strdup("index");
    fill_file(&b->up, "migrations/20240101120000_index.up.sql", 0, 0x30, CMIG_TX_NONE,
              "line 3: CREATE INDEX CONCURRENTLY", "20240101120000_index.sql", 4000000000u);
    c->version = INT64_MAX;
    c->name = fixture_strdup("a\xc3\xb1"
                             "adir caf\xc3\xa9");
    fill_file(&c->up, "migrations/9223372036854775807_last.up.sql", 7, 0x40, CMIG_TX_NONE,
              "annotation -- cmig:no-transaction (line 1)", "x.sql", 1);
    fill_file(&c->down, "migrations/9223372036854775807_last.down.sql", 268435456, 0x50,
              CMIG_TX_TRANSACTION, "", "x.sql", 0);
    return m;
}

static uint8_t *serialize(const struct cmig_manifest *m, size_t *len)
{
    struct cmig_err err;
    uint8_t *img = NULL;
    cmig_err_clear(&err);
    if (cmig_manifest_serialize(m, &img, len, &err)) {
        printf("#   serialize failed: %s\n", err.msg);
        return NULL;
    }
    return img;
}

static uint8_t *sample_image(size_t *len)
{
    struct cmig_manifest *m = sample();
    uint8_t *img = serialize(m, len);
    cmig_manifest_free(m);
    return img;
}

/* Runs sql on a writable copy of img (schema writes allowed) and returns
 * the new image, as someone forging a manifest would. */
static uint8_t *alter(const uint8_t *img, size_t len, const char *sql, size_t *out_len)
{
    sqlite3 *db = NULL;
    uint8_t *res = NULL;
    sqlite3_int64 n = 0;
    unsigned char *copy = sqlite3_malloc64(len), *ser = NULL;
    if (!copy || sqlite3_open(":memory:", &db) != SQLITE_OK)
        goto out;
    memcpy(copy, img, len);
    if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
        copy = NULL;
        goto out;
    }
    copy = NULL;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, NULL);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        printf("#   %s: %s\n", sql, sqlite3_errmsg(db));
        goto out;
    }
    ser = sqlite3_serialize(db, "main", &n, 0);
    if (!ser || n <= 0)
        goto out;
    res = malloc((size_t)n);
    if (res) {
        memcpy(res, ser, (size_t)n);
        *out_len = (size_t)n;
    }
out:
    sqlite3_free(copy);
    sqlite3_free(ser);
    sqlite3_close(db);
    return res;
}

/* Loads img and returns the code; err receives the message. */
static int load(const uint8_t *img, size_t len, struct cmig_err *err)
{
    struct cmig_manifest *m = NULL;
    cmig_err_clear(err);
    int rc = cmig_manifest_load(&m, img, len, err);
    if (rc == 0 && !m)
        rc = -1;
    if (rc != 0 && m)
        rc = -2; /* a refusal must not hand out a manifest */
    cmig_manifest_free(m);
    return rc;
}

/* The sample manifest altered by sql must be refused with needle. */
static void refuse_sql(const char *sql, const char *needle)
{
    size_t len = 0, alen = 0;
    uint8_t *img = sample_image(&len);
    uint8_t *bad = img ? alter(img, len, sql, &alen) : NULL;
    struct cmig_err err;
    CHECK(bad != NULL);
    if (bad) {
        CHECK_EQ_INT(load(bad, alen, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, needle);
        if (!strstr(err.msg, needle))
            printf("#   after: %s\n", sql);
    }
    free(img);
    free(bad);
}

/* The sample manifest changed by edit() before serialising must be
 * refused with needle. */
static void refuse_edit(void (*edit)(struct cmig_manifest *m), const char *needle)
{
    struct cmig_manifest *m = sample();
    size_t len = 0;
    struct cmig_err err;
    edit(m);
    uint8_t *img = serialize(m, &len);
    CHECK(img != NULL);
    if (img) {
        CHECK_EQ_INT(load(img, len, &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, needle);
    }
    free(img);
    cmig_manifest_free(m);
}

/* ---- round trip --------------------------------------------------------- */

TEST(roundtrip_every_field)
{
    struct cmig_manifest *m = sample(), *back = NULL;
    struct cmig_err err;
    size_t len = 0;
    cmig_err_clear(&err);
    uint8_t *img = serialize(m, &len);
    CHECK(img != NULL);
    CHECK_EQ_INT(cmig_manifest_load(&back, img, len, &err), 0);
    CHECK_STR(err.msg, "");
    if (back) {
        CHECK_EQ_INT(back->format_version, CMIG_FORMAT_VERSION);
        CHECK_STR(back->name, "shop-db");
        CHECK_STR(back->version.text, "2.1.0-rc.1+build.7");
        CHECK_EQ_INT(back->version.major, 2);
        CHECK_EQ_INT(back->version.minor, 1);
        CHECK_EQ_INT(back->version.pre_len, 4);
        CHECK_EQ_INT(back->version.build_len, 7);
        CHECK_EQ_INT(back->created_at, 1700000123);
        CHECK_STR(back->source_revision, "9f1c2e0");
        CHECK_STR(back->builder, "cmig-bundle 0.1.0");
        CHECK_STR(back->driver, "postgres");
        CHECK_STR(back->dir_format, "goose");
        CHECK_EQ_INT(back->n, 3);
        for (size_t i = 0; i < 3 && back->n == 3; i++) {
            const struct cmig_migration *a = &m->migrations[i], *b = &back->migrations[i];
            CHECK_EQ_INT(b->version, a->version);
            CHECK_STR(b->name, a->name);
            CHECK(fixture_same_file(&a->up, &b->up));
            CHECK(fixture_same_file(&a->down, &b->down));
        }
        if (back->n == 3) {
            CHECK(back->migrations[1].down.path == NULL);
            CHECK(back->migrations[1].down.tx_reason == NULL);
            CHECK(back->migrations[1].down.source == NULL);
            CHECK_EQ_INT(back->migrations[1].up.tx, CMIG_TX_NONE);
            CHECK_STR(back->migrations[1].up.tx_reason, "line 3: CREATE INDEX CONCURRENTLY");
            CHECK_EQ_INT(back->migrations[1].up.source_line, 4000000000u);
            CHECK_EQ_INT(back->migrations[2].version, INT64_MAX);
            CHECK_EQ_INT(back->migrations[2].down.size, 268435456);
        }
    }
    cmig_manifest_free(back);
    cmig_manifest_free(m);
    free(img);
}

TEST(roundtrip_empty)
{
    struct cmig_manifest *m = sample(), *back = NULL;
    struct cmig_err err;
    size_t len = 0;
    cmig_err_clear(&err);
    /* No migrations at all is a valid (if useless) manifest. */
    for (size_t i = 0; i < m->n; i++) {
        free(m->migrations[i].name);
        free(m->migrations[i].up.path);
        free(m->migrations[i].up.tx_reason);
        free(m->migrations[i].up.source);
        free(m->migrations[i].down.path);
        free(m->migrations[i].down.tx_reason);
        free(m->migrations[i].down.source);
    }
    m->n = 0;
    uint8_t *img = serialize(m, &len);
    CHECK_EQ_INT(cmig_manifest_load(&back, img, len, &err), 0);
    CHECK(back && back->n == 0);
    CHECK(back && cmig_manifest_find(back, 1) == NULL);
    cmig_manifest_free(back);
    cmig_manifest_free(m);
    free(img);
}

TEST(serialize_is_deterministic)
{
    struct cmig_manifest *m = sample(), *back = NULL;
    struct cmig_err err;
    size_t a_len = 0, b_len = 0, c_len = 0;
    cmig_err_clear(&err);
    uint8_t *a = serialize(m, &a_len);
    uint8_t *b = serialize(m, &b_len);
    CHECK(a && b);
    CHECK_EQ_INT(a_len, b_len);
    CHECK(a && b && a_len == b_len && memcmp(a, b, a_len) == 0);
    /* What is loaded serialises to the same bytes again. */
    CHECK_EQ_INT(cmig_manifest_load(&back, a, a_len, &err), 0);
    uint8_t *c = back ? serialize(back, &c_len) : NULL;
    CHECK(c && c_len == a_len && memcmp(a, c, a_len) == 0);
    /* Header: page size 4096, application_id, user_version. */
    CHECK(a && a[16] == 0x10 && a[17] == 0x00);
    CHECK(a && memcmp(a + 68, "CMIG", 4) == 0);
    CHECK(a && a[63] == CMIG_FORMAT_VERSION);
    cmig_manifest_free(back);
    cmig_manifest_free(m);
    free(a);
    free(b);
    free(c);
}

TEST(find_and_helpers)
{
    struct cmig_manifest *m = sample();
    CHECK(cmig_manifest_find(m, 1) == &m->migrations[0]);
    CHECK(cmig_manifest_find(m, 20240101120000) == &m->migrations[1]);
    CHECK(cmig_manifest_find(m, INT64_MAX) == &m->migrations[2]);
    CHECK(cmig_manifest_find(m, 0) == NULL);
    CHECK(cmig_manifest_find(m, 2) == NULL);
    CHECK(cmig_manifest_find(m, -1) == NULL);
    cmig_manifest_free(m);
    cmig_manifest_free(NULL);

    uint8_t d[32];
    char hex[65];
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)(i * 8 + 1);
    cmig_hex32(d, hex);
    CHECK_STR(hex, "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9");

    CHECK(cmig_path_safe("migrations/1_a.up.sql"));
    CHECK(cmig_path_safe("a"));
    CHECK(!cmig_path_safe(""));
    CHECK(!cmig_path_safe("/etc/passwd"));
    CHECK(!cmig_path_safe("../x"));
    CHECK(!cmig_path_safe("a/../b"));
    CHECK(!cmig_path_safe("a/.."));
    CHECK(!cmig_path_safe("./a"));
    CHECK(!cmig_path_safe("a/./b"));
    CHECK(!cmig_path_safe("a//b"));
    CHECK(!cmig_path_safe("a/"));
    CHECK(!cmig_path_safe("a b"));
    CHECK(!cmig_path_safe("a\\b"));
    CHECK(!cmig_path_safe("a\tb"));
    CHECK(!cmig_path_safe("caf\xc3\xa9"));
    CHECK(cmig_path_safe("..a/b.."));
    char longp[CMIG_PATH_MAX + 2];
    memset(longp, 'a', sizeof longp);
    longp[CMIG_PATH_MAX] = '\0';
    CHECK(cmig_path_safe(longp));
    longp[CMIG_PATH_MAX] = 'a';
    longp[CMIG_PATH_MAX + 1] = '\0';
    CHECK(!cmig_path_safe(longp));

    CHECK(cmig_bundle_name_valid("app-1.x_y"));
    CHECK(!cmig_bundle_name_valid(""));
    CHECK(!cmig_bundle_name_valid(".hidden"));
    CHECK(!cmig_bundle_name_valid("-flag"));
    CHECK(!cmig_bundle_name_valid("a/b"));
    CHECK(!cmig_bundle_name_valid("a b"));
    CHECK(cmig_driver_valid("postgres") && cmig_driver_valid("sqlite") &&
          cmig_driver_valid("mongodb"));
    CHECK(!cmig_driver_valid("mysql") && !cmig_driver_valid("") && !cmig_driver_valid("Postgres"));
}

/* ---- refusals: the header, checked before SQLite sees the image ---------- */

TEST(refuse_not_sqlite)
{
    struct cmig_err err;
    uint8_t junk[4096];
    memset(junk, 'x', sizeof junk);
    CHECK_EQ_INT(load(junk, sizeof junk, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "manifest: not a SQLite database");
    CHECK_EQ_INT(load(junk, 0, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "not a SQLite database");

    size_t len = 0;
    uint8_t *img = sample_image(&len);
    CHECK_EQ_INT(load(img, 511, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "not a SQLite database");
    free(img);
}

TEST(refuse_bad_header)
{
    struct cmig_err err;
    size_t len = 0;
    uint8_t *img = sample_image(&len);
    CHECK(img != NULL && len % 4096 == 0 && len >= 8192);
    if (!img)
        return;
    uint8_t *bad = malloc(len);
    if (!bad)
        return;

    memcpy(bad, img, len);
    bad[16] = 0x0c, bad[17] = 0x00; /* 3072: not a power of two */
    CHECK_EQ_INT(load(bad, len, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "manifest: invalid page size 3072");

    memcpy(bad, img, len);
    bad[16] = 0x01, bad[17] = 0x00; /* 256: too small */
    CHECK_EQ_INT(load(bad, len, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "invalid page size 256");

    /* A page size the length is not a multiple of. */
    CHECK_EQ_INT(load(img, len - 100, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "invalid page size 4096");

    /* Pages cut off the end: the header's page count disagrees. */
    CHECK_EQ_INT(load(img, len - 4096, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "does not match its size");

    memcpy(bad, img, len);
    bad[31] ^= 0x40;
    CHECK_EQ_INT(load(bad, len, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "manifest: page count");
    free(bad);
    free(img);
}

TEST(refuse_wrong_application_id)
{
    struct cmig_err err;
    size_t len = 0;
    uint8_t *img = sample_image(&len);
    if (!img)
        return;
    img[68] = 'X';
    CHECK_EQ_INT(load(img, len, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "manifest: not a cmig manifest (application_id 0x584d4947)");
    free(img);
    refuse_sql("PRAGMA application_id = 0", "not a cmig manifest (application_id 0x00000000)");
}

static void set_future(struct cmig_manifest *m)
{
    m->format_version = CMIG_FORMAT_VERSION + 1;
}

TEST(refuse_format_version)
{
    refuse_edit(set_future, "manifest: format version 2 is not supported (this cmig reads 1)");
    refuse_sql("PRAGMA user_version = 0", "manifest: format version 0 is not supported");
    refuse_sql("PRAGMA user_version = -1", "format version 4294967295 is not supported");
    /* The header and the bundle row must agree. */
    refuse_sql("UPDATE bundle SET format_version = 2",
               "manifest: format_version 2 is not supported");
    refuse_sql("UPDATE bundle SET format_version = 'one'",
               "manifest: bundle: format_version is not an integer");
}

/* Damage no query of the loader would trip over: only quick_check sees
 * it, and the message must say what it found. */
TEST(refuse_structural_damage)
{
    struct cmig_err err;
    size_t len = 0;
    uint8_t *img = sample_image(&len);
    uint8_t *bad = img ? malloc(len + 4096) : NULL;
    if (!bad) {
        free(img);
        return;
    }
    /* One more page, counted in the header and used by nothing. */
    memcpy(bad, img, len);
    memset(bad + len, 0, 4096);
    uint32_t pages = (uint32_t)(len / 4096 + 1);
    bad[28] = (uint8_t)(pages >> 24), bad[29] = (uint8_t)(pages >> 16);
    bad[30] = (uint8_t)(pages >> 8), bad[31] = (uint8_t)pages;
    CHECK_EQ_INT(load(bad, len + 4096, &err), CMIG_E_VERIFY);
    char want[96];
    snprintf(want, sizeof want, "manifest: database is corrupt: Page %u is never used",
             (unsigned)pages);
    CHECK_STR(err.msg, want);
    /* A free-list count that no free list backs. */
    memcpy(bad, img, len);
    bad[39] = 1;
    CHECK_EQ_INT(load(bad, len, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "manifest: database is corrupt: ");
    CHECK_CONTAINS(err.msg, "freelist");
    free(bad);
    free(img);
}

/* ---- refusals: the schema ----------------------------------------------- */

TEST(refuse_schema_changes)
{
    refuse_sql("CREATE TABLE extra (x TEXT)", "manifest: unexpected schema object 'extra'");
    refuse_sql("CREATE TABLE aaa (x TEXT)", "manifest: unexpected schema object 'aaa'");
    refuse_sql("ALTER TABLE migration ADD COLUMN evil TEXT",
               "manifest: unexpected schema object 'migration'");
    refuse_sql("ALTER TABLE bundle ADD COLUMN evil TEXT", "unexpected schema object 'bundle'");
    refuse_sql("CREATE INDEX by_name ON migration (name)", "unexpected schema object 'by_name'");
    refuse_sql("CREATE VIEW v AS SELECT * FROM migration", "unexpected schema object 'v'");
    refuse_sql("CREATE TRIGGER t AFTER INSERT ON bundle BEGIN SELECT 1; END",
               "unexpected schema object 't'");
    refuse_sql("DROP TABLE migration", "manifest: schema is incomplete or unreadable");
    refuse_sql("DROP TABLE bundle", "unexpected schema object 'migration'");
    refuse_sql("ALTER TABLE migration RENAME TO migrations",
               "unexpected schema object 'migrations'");
    /* Same columns, other spelling: the text must match byte for byte. */
    refuse_sql("PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = "
               "replace(sql, 'INTEGER NOT NULL', 'integer NOT NULL') WHERE name = 'bundle'",
               "unexpected schema object 'bundle'");
    refuse_sql("PRAGMA writable_schema = ON; UPDATE sqlite_schema SET type = 'view' WHERE "
               "name = 'bundle'",
               "manifest:");
}

/* ---- refusals: values ---------------------------------------------------- */

TEST(refuse_bad_hex)
{
    refuse_sql("UPDATE migration SET up_sha256 = upper(up_sha256) WHERE version = 1",
               "manifest: migration 1: up_sha256 is not 64 lower-case hex digits");
    refuse_sql("UPDATE migration SET up_sha256 = substr(up_sha256, 2) WHERE version = 1",
               "migration 1: up_sha256 is not 64 lower-case hex digits");
    refuse_sql("UPDATE migration SET down_sha256 = 'g' || substr(down_sha256, 2) WHERE version = 1",
               "migration 1: down_sha256 is not 64 lower-case hex digits");
    refuse_sql("UPDATE migration SET up_sha256 = up_sha256 || '0' WHERE version = 1",
               "not 64 lower-case hex digits");
    refuse_sql("UPDATE migration SET up_sha256 = x'00' WHERE version = 1",
               "migration 1: up_sha256 is not text");
}

static void set_path(struct cmig_manifest *m, int which, const char *p)
{
    struct cmig_file *f = which ? &m->migrations[0].down : &m->migrations[0].up;
    free(f->path);
    f->path = fixture_strdup(p);
}

static void up_dotdot(struct cmig_manifest *m)
{
    set_path(m, 0, "../x");
}
static void up_absolute(struct cmig_manifest *m)
{
    set_path(m, 0, "/etc/x");
}
static void up_nested(struct cmig_manifest *m)
{
    set_path(m, 0, "migrations/../../x");
}
static void up_manifest(struct cmig_manifest *m)
{
    set_path(m, 0, "manifest.db");
}
static void down_empty_component(struct cmig_manifest *m)
{
    set_path(m, 1, "migrations//x.sql");
}
static void down_backslash(struct cmig_manifest *m)
{
    set_path(m, 1, "migrations\\x.sql");
}
static void up_empty(struct cmig_manifest *m)
{
    set_path(m, 0, "");
}

TEST(refuse_unsafe_path)
{
    refuse_edit(up_dotdot, "manifest: migration 1: unsafe path '../x'");
    refuse_edit(up_absolute, "manifest: migration 1: unsafe path '/etc/x'");
    refuse_edit(up_nested, "unsafe path 'migrations/../../x'");
    refuse_edit(up_manifest, "unsafe path 'manifest.db'");
    refuse_edit(down_empty_component, "unsafe path 'migrations//x.sql'");
    refuse_edit(down_backslash, "unsafe path 'migrations\\x.sql'");
    refuse_edit(up_empty, "manifest: migration 1: unsafe path ''");
}

static void dup_across(struct cmig_manifest *m)
{
    free(m->migrations[1].up.path);
    m->migrations[1].up.path = fixture_strdup(m->migrations[0].up.path);
}
static void dup_up_down(struct cmig_manifest *m)
{
    set_path(m, 1, m->migrations[0].up.path);
}

TEST(refuse_duplicate_path)
{
    refuse_edit(dup_across, "manifest: path 'migrations/1_create_users.up.sql' is listed twice");
    refuse_edit(dup_up_down, "path 'migrations/1_create_users.up.sql' is listed twice");
}

static void negative_version(struct cmig_manifest *m)
{
    m->migrations[0].version = -1;
}
static void min_version(struct cmig_manifest *m)
{
    m->migrations[0].version = INT64_MIN;
}

TEST(refuse_negative_version)
{
    refuse_edit(negative_version, "manifest: negative migration version -1");
    refuse_edit(min_version, "negative migration version -9223372036854775808");
    refuse_sql("UPDATE migration SET version = -5 WHERE version = 1",
               "negative migration version -5");
}

TEST(refuse_bad_values)
{
    refuse_sql("UPDATE migration SET up_size = -1 WHERE version = 1",
               "manifest: migration 1: negative up_size");
    refuse_sql("UPDATE migration SET up_size = 'ten' WHERE version = 1",
               "manifest: migration 1: up_size is not an integer");
    refuse_sql("UPDATE migration SET up_size = 1.5 WHERE version = 1",
               "migration 1: up_size is not an integer");
    refuse_sql("UPDATE migration SET up_tx = 'maybe' WHERE version = 1",
               "manifest: migration 1: up_tx is not a transaction mode");
    refuse_sql("UPDATE migration SET down_tx = '' WHERE version = 1",
               "migration 1: down_tx is not a transaction mode");
    refuse_sql("UPDATE migration SET up_source_line = 4294967296 WHERE version = 1",
               "manifest: migration 1: up_source_line out of range");
    refuse_sql("UPDATE migration SET up_source_line = -1 WHERE version = 1",
               "migration 1: up_source_line out of range");
    refuse_sql("UPDATE migration SET down_size = 1 WHERE down_path IS NULL",
               "manifest: migration 20240101120000: down_size is set but down_path is not");
    refuse_sql("UPDATE migration SET name = '' WHERE version = 1",
               "manifest: migration 1 has an empty name");
    refuse_sql("UPDATE migration SET name = 'a' || char(9) || 'b' WHERE version = 1",
               "manifest: migration 1: name is not valid text");
    refuse_sql("UPDATE migration SET name = CAST(x'ff' AS TEXT) WHERE version = 1",
               "manifest: migration 1: name is not valid text");
    refuse_sql("UPDATE migration SET name = 'a' || char(0) || 'b' WHERE version = 1",
               "migration 1: name is not valid text");
    refuse_sql("UPDATE migration SET name = x'41' WHERE version = 1",
               "manifest: migration 1: name is not text");
    refuse_sql("UPDATE migration SET up_tx_reason = printf('%5000s', 'x') WHERE version = 1",
               "manifest: migration 1: up_tx_reason is not valid text");
    refuse_sql("UPDATE bundle SET name = 'bad name'", "manifest: invalid bundle name 'bad name'");
    refuse_sql("UPDATE bundle SET version = '1.0'", "manifest");
    refuse_sql("UPDATE bundle SET version = 'v1.0.0'", "v1.0.0");
    refuse_sql("UPDATE bundle SET driver = 'mysql'", "manifest: unknown driver 'mysql'");
    refuse_sql("UPDATE bundle SET dir_format = 'auto'",
               "manifest: unknown directory format 'auto'");
    refuse_sql("UPDATE bundle SET dir_format = 'svn'", "unknown directory format 'svn'");
    refuse_sql("UPDATE bundle SET created_at = 'soon'",
               "manifest: bundle: created_at is not an integer");
    refuse_sql("UPDATE bundle SET builder = x'41'", "manifest: bundle: builder is not text");
    refuse_sql("DELETE FROM bundle", "manifest: no bundle row");
    refuse_sql("INSERT INTO bundle SELECT * FROM bundle", "manifest: more than one bundle row");
}

/* A bad semver in the bundle row is a verification failure, not a usage
 * error, whatever the semver parser says. */
TEST(refuse_bad_semver_code)
{
    size_t len = 0, alen = 0;
    uint8_t *img = sample_image(&len);
    uint8_t *bad = img ? alter(img, len, "UPDATE bundle SET version = '01.2.3'", &alen) : NULL;
    struct cmig_err err;
    CHECK(bad != NULL);
    if (bad) {
        CHECK_EQ_INT(load(bad, alen, &err), CMIG_E_VERIFY);
        CHECK(strncmp(err.msg, "manifest", 8) == 0);
    }
    free(img);
    free(bad);
}

/* Every single-byte corruption of a real image is either refused as a
 * verification failure or loads; nothing else (and under the sanitizers,
 * nothing undefined). */
TEST(corruption_never_crashes)
{
    size_t len = 0;
    uint8_t *img = sample_image(&len);
    if (!img)
        return;
    uint8_t *bad = malloc(len);
    int refused = 0, loaded = 0, other = 0;
    for (size_t i = 0; bad && i < len; i += 3) {
        memcpy(bad, img, len);
        bad[i] ^= (uint8_t)(0x5a + i);
        struct cmig_err err;
        int rc = load(bad, len, &err);
        if (rc == CMIG_E_VERIFY)
            refused++;
        else if (rc == 0)
            loaded++;
        else
            other++;
    }
    printf("# corruption: %d refused, %d loaded, %d other\n", refused, loaded, other);
    CHECK_EQ_INT(other, 0);
    CHECK(refused > 0);
    free(bad);
    free(img);
}

int main(void)
{
    SUITE("test_manifest");
    RUN(roundtrip_every_field);
    RUN(roundtrip_empty);
    RUN(serialize_is_deterministic);
    RUN(find_and_helpers);
    RUN(refuse_not_sqlite);
    RUN(refuse_bad_header);
    RUN(refuse_wrong_application_id);
    RUN(refuse_structural_damage);
    RUN(refuse_format_version);
    RUN(refuse_schema_changes);
    RUN(refuse_bad_hex);
    RUN(refuse_unsafe_path);
    RUN(refuse_duplicate_path);
    RUN(refuse_negative_version);
    RUN(refuse_bad_values);
    RUN(refuse_bad_semver_code);
    RUN(corruption_never_crashes);
    return harness_done();
}
