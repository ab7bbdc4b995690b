/*
 * test_srcdir.c - reading migration directories: the committed example
 * directories under tests/data/dirs and examples/, directories built in a
 * temporary place (for names that must not be committed: non-UTF-8 names,
 * symbolic links, FIFOs), and the section splitting of goose and dbmate
 * files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmig/srcdir.h"
#include "harness.h"

/* ---- helpers ---- */

static const char *top(void)
{
    const char *t = getenv("CMIG_TOP");
    return t && *t ? t : ".";
}

static const char *data_dir(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/tests/data/dirs/%s", top(), name);
    return buf;
}

static const char *example_dir(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/examples/%s", top(), name);
    return buf;
}

static char tmp_path[4096];

static const char *tmp_new(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/cmig-srcdir.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_path)) {
        perror("mkdtemp");
        exit(2);
    }
    return tmp_path;
}

static void put(const char *dir, const char *name, const char *content)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

/* Removes dir, its files and its immediate subdirectories. */
static void tmp_rm(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0)
            unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
    }
    closedir(d);
    rmdir(dir);
}

static int scan(const char *dir, enum cmig_dir_format f, struct cmig_srcdir *d, struct cmig_err *e)
{
    cmig_err_clear(e);
    int rc = cmig_srcdir_scan(d, dir, f, e);
    if (rc == 0 && e->code != 0)
        return -1;
    return rc;
}

/* Scans dir expecting failure with code and a message containing needle. */
static void expect_fail(const char *dir, enum cmig_dir_format f, int code, const char *needle)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    int rc = scan(dir, f, &d, &e);
    CHECK_EQ_INT(rc, code);
    CHECK_EQ_INT(e.code, code);
    CHECK_CONTAINS(e.msg, needle);
    CHECK_EQ_INT(d.n, 0);
    CHECK(d.migrations == NULL);
    cmig_srcdir_free(&d);
}

static int has_warning(const struct cmig_srcdir *d, const char *needle)
{
    for (size_t i = 0; i < d->n_warnings; i++)
        if (strstr(d->warnings[i], needle))
            return 1;
    return 0;
}

static char *read_all(const char *dir, const char *name, size_t *len)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (!buf)
                exit(2);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    /* Exactly len bytes, no terminator: reads past the end are caught by
     * the sanitizers. */
    char *exact = malloc(n ? n : 1);
    if (!exact)
        exit(2);
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

/* Splits a string; the copy has no NUL after it. */
static int split(enum cmig_dir_format f, const char *text, int is_down, struct cmig_section *up,
                 struct cmig_section *down, struct cmig_err *e)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    if (!copy)
        exit(2);
    memcpy(copy, text, n);
    cmig_err_clear(e);
    int rc = cmig_srcdir_sections(f, "m.sql", copy, n, is_down, up, down, e);
    free(copy);
    return rc;
}

/* The text of a section of text. */
static const char *section_text(const char *text, const struct cmig_section *s)
{
    static char buf[4096];
    size_t n = s->len < sizeof buf - 1 ? s->len : sizeof buf - 1;
    memcpy(buf, text + s->offset, n);
    buf[n] = '\0';
    return buf;
}

static void expect_split_fail(enum cmig_dir_format f, const char *text, const char *needle)
{
    struct cmig_section up, down;
    struct cmig_err e;
    int rc = split(f, text, 0, &up, &down, &e);
    CHECK_EQ_INT(rc, CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, needle);
    CHECK_EQ_INT(up.present, 0);
    CHECK_EQ_INT(down.present, 0);
}

/* ---- format names, UTF-8 ---- */

TEST(format_names)
{
    const char *names[] = {"auto", "golang-migrate", "goose", "dbmate", "flyway"};
    for (int f = CMIG_DIR_AUTO; f <= CMIG_DIR_FLYWAY; f++) {
        CHECK_STR(cmig_dir_format_name((enum cmig_dir_format)f), names[f]);
        CHECK_EQ_INT(cmig_dir_format_parse(names[f]), f);
    }
    CHECK_EQ_INT(cmig_dir_format_parse("Goose"), -1);
    CHECK_EQ_INT(cmig_dir_format_parse("migrate"), -1);
    CHECK_EQ_INT(cmig_dir_format_parse(""), -1);
    CHECK_EQ_INT(cmig_dir_format_parse(NULL), -1);
}

TEST(utf8_validity)
{
    CHECK(cmig_utf8_valid("", 0));
    CHECK(cmig_utf8_valid("plain ascii", 11));
    CHECK(cmig_utf8_valid("caf\xC3\xA9", 5));
    CHECK(cmig_utf8_valid("\xE2\x82\xAC", 3));      /* U+20AC */
    CHECK(cmig_utf8_valid("\xF0\x9F\x90\xA6", 4));  /* U+1F426 */
    CHECK(cmig_utf8_valid("\xF4\x8F\xBF\xBF", 4));  /* U+10FFFF */
    CHECK(cmig_utf8_valid("\xEF\xBF\xBF", 3));      /* U+FFFF */
    CHECK(!cmig_utf8_valid("\xC0\x80", 2));         /* overlong NUL */
    CHECK(!cmig_utf8_valid("\xC1\xBF", 2));         /* overlong */
    CHECK(!cmig_utf8_valid("\xE0\x80\x80", 3));     /* overlong */
    CHECK(!cmig_utf8_valid("\xE0\x9F\xBF", 3));     /* overlong */
    CHECK(!cmig_utf8_valid("\xF0\x8F\xBF\xBF", 4)); /* overlong */
    CHECK(!cmig_utf8_valid("\xED\xA0\x80", 3));     /* surrogate D800 */
    CHECK(!cmig_utf8_valid("\xED\xBF\xBF", 3));     /* surrogate DFFF */
    CHECK(!cmig_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!cmig_utf8_valid("\xF5\x80\x80\x80", 4));
    CHECK(!cmig_utf8_valid("\xFF", 1));
    CHECK(!cmig_utf8_valid("\x80", 1));    /* lone continuation */
    CHECK(!cmig_utf8_valid("caf\xC3", 4)); /* truncated */
    CHECK(!cmig_utf8_valid("\xE2\x82", 2));
    CHECK(!cmig_utf8_valid("\xE2\x28\xA1", 3));
    /* the length is what counts, not a NUL */
    CHECK(cmig_utf8_valid("a\0b", 3));
    CHECK(cmig_utf8_valid("\xC3\xA9\xFF", 2));
}

/* ---- the committed example directories ---- */

TEST(data_golang_migrate)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    CHECK_EQ_INT(scan(data_dir("golang-migrate"), CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOLANG_MIGRATE);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_EQ_INT(d.migrations[0].version, 1);
        CHECK_STR(d.migrations[0].name, "create_users");
        CHECK_STR(d.migrations[0].up_file, "1_create_users.up.sql");
        CHECK_STR(d.migrations[0].down_file, "1_create_users.down.sql");
        CHECK_EQ_INT(d.migrations[0].content, CMIG_CONTENT_SQL);
        CHECK_EQ_INT(d.migrations[1].version, 2);
        CHECK_STR(d.migrations[1].name, "create_posts");
        CHECK_EQ_INT(d.migrations[2].version, 3);
        CHECK_STR(d.migrations[2].up_file, "3_index_posts_user.up.sql");
        CHECK(d.migrations[2].down_file == NULL);
    }
    CHECK_EQ_INT(d.n_warnings, 1);
    CHECK(has_warning(&d, "skipped 'README.md': not a golang-migrate file name"));
    cmig_srcdir_free(&d);

    /* Forcing the format gives the same result. */
    CHECK_EQ_INT(scan(data_dir("golang-migrate"), CMIG_DIR_GOLANG_MIGRATE, &d, &e), 0);
    CHECK_EQ_INT(d.n, 3);
    cmig_srcdir_free(&d);
}

TEST(data_golang_migrate_json)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    CHECK_EQ_INT(scan(data_dir("golang-migrate-json"), CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOLANG_MIGRATE);
    CHECK_EQ_INT(d.n, 2);
    for (size_t i = 0; i < d.n; i++) {
        CHECK_EQ_INT(d.migrations[i].content, CMIG_CONTENT_JSON);
        CHECK(d.migrations[i].down_file != NULL);
    }
    if (d.n == 2)
        CHECK_STR(d.migrations[1].up_file, "2_backfill_status.up.json");
    CHECK_EQ_INT(d.n_warnings, 0);
    cmig_srcdir_free(&d);
}

/* Runs cmig_srcdir_sections on a file of a directory. */
static int file_sections(const char *dir, enum cmig_dir_format f, const char *file, int is_down,
                         struct cmig_section *up, struct cmig_section *down, struct cmig_err *e,
                         char **text)
{
    size_t len = 0;
    char *data = read_all(dir, file, &len);
    if (!data)
        return -1;
    cmig_err_clear(e);
    int rc = cmig_srcdir_sections(f, file, data, len, is_down, up, down, e);
    if (text)
        *text = data;
    else
        free(data);
    return rc;
}

TEST(data_goose)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    const char *dir = data_dir("goose");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOOSE);
    CHECK_EQ_INT(d.n, 4);
    CHECK(has_warning(&d, "skipped 'README.md': not a goose migration file name"));
    for (size_t i = 0; i < d.n; i++) {
        CHECK_EQ_INT(d.migrations[i].version, (int64_t)i + 1);
        CHECK_STR(d.migrations[i].down_file, d.migrations[i].up_file);
    }
    if (d.n == 4) {
        CHECK_STR(d.migrations[0].name, "create_users");
        CHECK_STR(d.migrations[3].name, "seed_roles");
        struct cmig_section up, down;
        char *text = NULL;
        CHECK_EQ_INT(
            file_sections(dir, d.format, d.migrations[0].up_file, 0, &up, &down, &e, &text), 0);
        CHECK_EQ_INT(up.present, 1);
        CHECK_EQ_INT(up.line, 3);
        CHECK_EQ_INT(up.tx_override, -1);
        CHECK(text && strncmp(text + up.offset, "CREATE TABLE users", 18) == 0);
        CHECK_EQ_INT(down.present, 1);
        CHECK_EQ_INT(down.line, 9);
        CHECK_STR(section_text(text, &down), "DROP TABLE users;\n");
        free(text);

        CHECK_EQ_INT(
            file_sections(dir, d.format, d.migrations[1].up_file, 0, &up, &down, &e, &text), 0);
        CHECK(strstr(section_text(text, &up), "-- +goose StatementBegin\nCREATE FUNCTION"));
        CHECK(strstr(section_text(text, &up), "-- +goose StatementEnd\n"));
        free(text);

        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[2].up_file, 0, &up, &down, &e, NULL),
                     0);
        CHECK_EQ_INT(up.tx_override, CMIG_TX_NONE);
        CHECK_EQ_INT(down.tx_override, CMIG_TX_NONE);

        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[3].up_file, 0, &up, &down, &e, NULL),
                     0);
        CHECK_EQ_INT(up.present, 1);
        CHECK_EQ_INT(down.present, 0);
    }
    cmig_srcdir_free(&d);
}

TEST(data_dbmate)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    const char *dir = data_dir("dbmate");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_DBMATE);
    CHECK_EQ_INT(d.n, 3);
    CHECK(has_warning(&d, "skipped 'schema.sql.txt': not a dbmate migration file name"));
    if (d.n == 3) {
        CHECK_EQ_INT(d.migrations[0].version, 20240101120000LL);
        CHECK_STR(d.migrations[0].name, "create_users");
        CHECK_EQ_INT(d.migrations[2].version, 20240103100000LL);
        struct cmig_section up, down;
        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[1].up_file, 0, &up, &down, &e, NULL),
                     0);
        CHECK_EQ_INT(up.tx_override, CMIG_TX_NONE);
        CHECK_EQ_INT(down.tx_override, CMIG_TX_NONE);
        char *text = NULL;
        CHECK_EQ_INT(
            file_sections(dir, d.format, d.migrations[2].up_file, 0, &up, &down, &e, &text), 0);
        CHECK_EQ_INT(up.line, 4);
        CHECK_EQ_INT(up.tx_override, -1);
        CHECK_STR(section_text(text, &down), "DROP TABLE posts;\n");
        free(text);
    }
    cmig_srcdir_free(&d);
}

TEST(data_flyway)
{
    struct cmig_srcdir d;
    struct cmig_err e;
    CHECK_EQ_INT(scan(data_dir("flyway"), CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_FLYWAY);
    CHECK_EQ_INT(d.n, 3);
    CHECK(has_warning(&d, "skipped 'README.md': not a flyway migration file name"));
    if (d.n == 3) {
        CHECK_STR(d.migrations[0].name, "create_users");
        CHECK_STR(d.migrations[0].up_file, "V1__create_users.sql");
        CHECK(d.migrations[0].down_file == NULL);
        CHECK_STR(d.migrations[1].down_file, "U2__create_posts.sql");
        CHECK_STR(d.migrations[2].name, "index_posts_user");
    }
    cmig_srcdir_free(&d);
}

TEST(data_bad_dirs)
{
    expect_fail(data_dir("bad-duplicate-version"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "duplicate migration version 1: '001_create_accounts.up.sql' and "
                "'1_create_users.up.sql'");
    expect_fail(data_dir("bad-down-without-up"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'2_create_posts.down.sql': down migration without an up migration");
    expect_fail(data_dir("bad-version-overflow"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'99999999999999999999_x.up.sql': version does not fit in a 64-bit integer");
    expect_fail(data_dir("bad-mixed-sql-json"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "mixes .sql and .json migrations ('1_create_users.up.sql' and "
                "'2_create_index.up.json')");
    expect_fail(data_dir("bad-goose-go"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "goose Go migrations are not supported: '00002_backfill.go'");
    expect_fail(data_dir("bad-flyway-repeatable"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'R__active_users_view.sql': flyway repeatable migrations are not supported");
    expect_fail(data_dir("bad-flyway-dotted"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'V1.1__add_email.sql': version '1.1' is not an integer");
    expect_fail(data_dir("bad-ambiguous"), CMIG_DIR_AUTO, CMIG_E_INPUT, "--dir-format");
    expect_fail(data_dir("bad-ambiguous"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "golang-migrate ('1_create_users.down.sql') and flyway ('V2__create_posts.sql')");
    expect_fail(data_dir("bad-undetectable"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "cannot tell the format of");
    expect_fail(data_dir("bad-undetectable"), CMIG_DIR_AUTO, CMIG_E_INPUT, "--dir-format");
    expect_fail(data_dir("bad-empty"), CMIG_DIR_AUTO, CMIG_E_INPUT, "no migrations found in '");
    expect_fail(data_dir("bad-unknown-extension"), CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'2_seed_users.up.csv': unsupported migration file extension '.csv'");
    expect_fail(data_dir("no-such-directory"), CMIG_DIR_AUTO, CMIG_E_IO,
                "cannot open migration directory");
}

TEST(data_bad_contents)
{
    /* Names are fine; the content is what is wrong. */
    struct cmig_srcdir d;
    struct cmig_err e;
    struct cmig_section up, down;
    const char *dir = data_dir("bad-goose-no-up");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOOSE);
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[0].up_file, 0, &up, &down, &e, NULL),
                     0);
        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[1].up_file, 0, &up, &down, &e, NULL),
                     CMIG_E_INPUT);
        CHECK_STR(e.msg, "'00002_add_nickname.sql': line 2: statement before '-- +goose Up'");
    }
    cmig_srcdir_free(&d);

    dir = data_dir("bad-dbmate-option");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_DBMATE);
    CHECK_EQ_INT(d.n, 1);
    if (d.n == 1) {
        CHECK_EQ_INT(file_sections(dir, d.format, d.migrations[0].up_file, 0, &up, &down, &e, NULL),
                     CMIG_E_INPUT);
        CHECK_CONTAINS(e.msg, "'20240101120000_create_users.sql': line 1: unknown dbmate option "
                              "'transaction:maybe'");
    }
    cmig_srcdir_free(&d);
}

TEST(examples)
{
    const char *sets[] = {"migrations", "postgres"};
    for (size_t k = 0; k < 2; k++) {
        struct cmig_srcdir d;
        struct cmig_err e;
        CHECK_EQ_INT(scan(example_dir(sets[k]), CMIG_DIR_AUTO, &d, &e), 0);
        CHECK_EQ_INT(d.format, CMIG_DIR_GOLANG_MIGRATE);
        CHECK_EQ_INT(d.n, 4);
        CHECK_EQ_INT(d.n_warnings, 0);
        for (size_t i = 0; i < d.n; i++) {
            CHECK_EQ_INT(d.migrations[i].version, (int64_t)i + 1);
            CHECK(d.migrations[i].down_file != NULL);
            CHECK_EQ_INT(d.migrations[i].content, CMIG_CONTENT_SQL);
        }
        cmig_srcdir_free(&d);
    }
}

/* ---- directories built here ---- */

TEST(empty_directory)
{
    const char *dir = tmp_new();
    char want[4200];
    snprintf(want, sizeof want, "no migrations found in '%s'", dir);
    struct cmig_srcdir d;
    struct cmig_err e;
    for (int f = CMIG_DIR_AUTO; f <= CMIG_DIR_FLYWAY; f++) {
        CHECK_EQ_INT(scan(dir, (enum cmig_dir_format)f, &d, &e), CMIG_E_INPUT);
        CHECK_STR(e.msg, want);
        cmig_srcdir_free(&d);
    }
    /* Dot files do not count and are not even mentioned. */
    put(dir, ".gitkeep", "");
    put(dir, ".1_hidden.up.sql", "SELECT 1;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, want);
    CHECK_EQ_INT(d.n_warnings, 0);
    cmig_srcdir_free(&d);
    /* Only files a format skips: nothing found either. */
    put(dir, "README.md", "hello");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_GOLANG_MIGRATE, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, want);
    CHECK_EQ_INT(d.n_warnings, 1);
    cmig_srcdir_free(&d);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "--dir-format");
    cmig_srcdir_free(&d);
    tmp_rm(dir);
}

TEST(names_must_be_utf8)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    put(dir, "1_caf\xC3\xA9.up.sql", "SELECT 1;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.n, 1);
    if (d.n == 1)
        CHECK_STR(d.migrations[0].name, "caf\xC3\xA9");
    cmig_srcdir_free(&d);

    /* Latin-1 'é': not UTF-8. Even a file that would be skipped counts. */
    put(dir, "2_caf\xE9.up.sql", "SELECT 2;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'2_caf\\xE9.up.sql': file name is not valid UTF-8 or holds control "
                     "characters");
    cmig_srcdir_free(&d);
    char p[4200];
    snprintf(p, sizeof p, "%s/2_caf\xE9.up.sql", dir);
    unlink(p);

    put(dir, "notes\xFF.txt", "x");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "'notes\\xFF.txt'");
    cmig_srcdir_free(&d);
    snprintf(p, sizeof p, "%s/notes\xFF.txt", dir);
    unlink(p);

    put(dir, "3_a\tb.up.sql", "SELECT 3;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "'3_a\\x09b.up.sql'");
    cmig_srcdir_free(&d);
    snprintf(p, sizeof p, "%s/3_a\tb.up.sql", dir);
    unlink(p);

    /* C1 control U+0085 (NEL), well-formed UTF-8 but a control character. */
    put(dir, "4_a\xC2\x85.up.sql", "SELECT 4;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "'4_a\\xC2\\x85.up.sql'");
    cmig_srcdir_free(&d);
    tmp_rm(dir);
}

TEST(file_types)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    char p[4200], q[4200];
    put(dir, "1_init.up.sql", "CREATE TABLE t (id int);");
    snprintf(p, sizeof p, "%s/archive", dir);
    mkdir(p, 0700);
    /* a link to a regular file is read like the file */
    snprintf(p, sizeof p, "%s/1_init.down.sql", dir);
    CHECK_EQ_INT(symlink("1_init.up.sql", p), 0);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.n, 1);
    if (d.n == 1)
        CHECK_STR(d.migrations[0].down_file, "1_init.down.sql");
    CHECK_EQ_INT(d.n_warnings, 1);
    CHECK(has_warning(&d, "skipped 'archive': a directory"));
    cmig_srcdir_free(&d);

    /* a link to a directory is a directory */
    snprintf(p, sizeof p, "%s/current", dir);
    CHECK_EQ_INT(symlink("archive", p), 0);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK(has_warning(&d, "skipped 'current': a directory"));
    cmig_srcdir_free(&d);

    /* a dangling link is refused */
    snprintf(q, sizeof q, "%s/2_gone.up.sql", dir);
    CHECK_EQ_INT(symlink("nowhere.sql", q), 0);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'2_gone.up.sql': broken symbolic link");
    cmig_srcdir_free(&d);
    unlink(q);

    /* a FIFO is refused (and never opened: that could block) */
    snprintf(q, sizeof q, "%s/2_pipe.up.sql", dir);
    CHECK_EQ_INT(mkfifo(q, 0600), 0);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'2_pipe.up.sql': not a regular file");
    cmig_srcdir_free(&d);
    unlink(q);

    /* a link to a FIFO too */
    snprintf(q, sizeof q, "%s/archive/pipe", dir);
    CHECK_EQ_INT(mkfifo(q, 0600), 0);
    snprintf(q, sizeof q, "%s/2_via_link.up.sql", dir);
    CHECK_EQ_INT(symlink("archive/pipe", q), 0);
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'2_via_link.up.sql': symbolic link to not a regular file");
    cmig_srcdir_free(&d);
    unlink(q);
    snprintf(q, sizeof q, "%s/archive/pipe", dir);
    unlink(q);

    /* several bad names: the first in sorted order is reported */
    put(dir, "b_\x01.sql", "");
    put(dir, "a_\x02.sql", "");
    put(dir, "c_\x03.sql", "");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "'a_\\x02.sql'");
    cmig_srcdir_free(&d);
    tmp_rm(dir);
}

TEST(golang_migrate_names)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    put(dir, "10_ten.up.sql", "SELECT 10;");
    put(dir, "2_two.up.sql", "SELECT 2;");
    put(dir, "1_.up.sql", "SELECT 1;");
    put(dir, "1_.down.sql", "SELECT 1;");
    put(dir, "3_a.up.b.down.sql", "SELECT 3;"); /* greedy title: "a.up.b", a down */
    put(dir, "3_x.up.sql", "SELECT 3;");
    put(dir, "9223372036854775807_last.up.sql", "SELECT 0;");
    put(dir, "1.up.sql", "not a golang-migrate name (no '_')");
    put(dir, "x_1.up.sql", "not a golang-migrate name either");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.n, 5);
    if (d.n == 5) {
        CHECK_EQ_INT(d.migrations[0].version, 1);
        CHECK_STR(d.migrations[0].name, "1"); /* empty title: the version */
        CHECK_EQ_INT(d.migrations[1].version, 2);
        CHECK_EQ_INT(d.migrations[2].version, 3);
        CHECK_STR(d.migrations[2].name, "x");
        CHECK_STR(d.migrations[2].down_file, "3_a.up.b.down.sql");
        CHECK_EQ_INT(d.migrations[3].version, 10);
        CHECK_EQ_INT(d.migrations[4].version, INT64_MAX);
    }
    CHECK_EQ_INT(d.n_warnings, 2);
    CHECK(has_warning(&d, "skipped '1.up.sql': not a golang-migrate file name"));
    CHECK(has_warning(&d, "skipped 'x_1.up.sql': not a golang-migrate file name"));
    cmig_srcdir_free(&d);

    put(dir, "007_.down.sql", "SELECT 7;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'007_.down.sql': down migration without an up migration (version 7)");
    cmig_srcdir_free(&d);
    put(dir, "007_seven.up.sql", "SELECT 7;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.n, 6);
    cmig_srcdir_free(&d);

    put(dir, "7_again.down.sql", "SELECT 7;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "duplicate migration version 7: '007_.down.sql' and '7_again.down.sql'");
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    dir = tmp_new();
    put(dir, "9223372036854775808_x.up.sql", "SELECT 1;");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_GOLANG_MIGRATE, &d, &e), CMIG_E_INPUT);
    CHECK_STR(e.msg, "'9223372036854775808_x.up.sql': version does not fit in a 64-bit integer");
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    dir = tmp_new();
    put(dir, "1_x.up.sql", "SELECT 1;");
    put(dir, "1_x.up.", "golang-migrate would run this one");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_GOLANG_MIGRATE, &d, &e), CMIG_E_INPUT);
    CHECK_CONTAINS(e.msg, "'1_x.up.': unsupported migration file extension '.'");
    cmig_srcdir_free(&d);
    tmp_rm(dir);
}

TEST(goose_names)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    put(dir, "00001_init.sql", "-- +goose Up\nSELECT 1;\n");
    put(dir, "2_.sql", "-- +goose Up\nSELECT 2;\n");
    put(dir, "main.go", "package main");
    put(dir, "00003_x_test.go", "package migrations");
    put(dir, "notes.txt", "x");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOOSE);
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK_STR(d.migrations[0].name, "init");
        CHECK_STR(d.migrations[1].name, "2");
        CHECK_STR(d.migrations[1].down_file, "2_.sql");
    }
    CHECK_EQ_INT(d.n_warnings, 3);
    CHECK(has_warning(&d, "skipped 'main.go'"));
    CHECK(has_warning(&d, "skipped '00003_x_test.go'"));
    CHECK(has_warning(&d, "skipped 'notes.txt'"));
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    const struct {
        const char *name, *msg;
    } bad[] = {
        {"0_zero.sql", "'0_zero.sql': goose versions must be greater than zero"},
        {"1init.sql", "'1init.sql': not a goose migration file name (no '_' after the version)"},
        {"schema.sql", "'schema.sql': not a goose migration file name"},
        {"v1_x.sql", "'v1_x.sql': not a goose migration file name (the version before '_' must "
                     "be decimal digits)"},
        {"00002_seed.go", "goose Go migrations are not supported: '00002_seed.go'"},
        {"99999999999999999999_big.sql", "version does not fit in a 64-bit integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dir = tmp_new();
        put(dir, "00001_init.sql", "-- +goose Up\nSELECT 1;\n");
        put(dir, bad[i].name, "-- +goose Up\nSELECT 1;\n");
        expect_fail(dir, CMIG_DIR_GOOSE, CMIG_E_INPUT, bad[i].msg);
        tmp_rm(dir);
    }

    dir = tmp_new();
    put(dir, "1_a.sql", "-- +goose Up\nSELECT 1;\n");
    put(dir, "01_b.sql", "-- +goose Up\nSELECT 1;\n");
    expect_fail(dir, CMIG_DIR_AUTO, CMIG_E_INPUT,
                "duplicate migration version 1: '01_b.sql' and '1_a.sql'");
    tmp_rm(dir);
}

TEST(dbmate_names)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    put(dir, "20240101000000_init.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n");
    put(dir, "20240102.sql", "-- migrate:up\nSELECT 2;\n");
    put(dir, "20240103add.sql", "-- migrate:up\nSELECT 3;\n");
    put(dir, "schema.sql", "-- dump, not a migration");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_DBMATE);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_EQ_INT(d.migrations[0].version, 20240102);
        CHECK_STR(d.migrations[0].name, "20240102");
        CHECK_EQ_INT(d.migrations[1].version, 20240103);
        CHECK_STR(d.migrations[1].name, "add");
        CHECK_EQ_INT(d.migrations[2].version, 20240101000000LL);
        CHECK_STR(d.migrations[2].name, "init");
        CHECK_STR(d.migrations[2].down_file, "20240101000000_init.sql");
    }
    CHECK(has_warning(&d, "skipped 'schema.sql': not a dbmate migration file name"));
    cmig_srcdir_free(&d);
    put(dir, "020240102_again.sql", "-- migrate:up\n");
    expect_fail(dir, CMIG_DIR_DBMATE, CMIG_E_INPUT,
                "duplicate migration version 20240102: '020240102_again.sql' and "
                "'20240102.sql'");
    tmp_rm(dir);
}

TEST(flyway_names)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    put(dir, "V1__.sql", "SELECT 1;");
    put(dir, "V002__Add_Users_Table.sql", "SELECT 2;");
    put(dir, "U002__Add_Users_Table.sql", "SELECT 2;");
    put(dir, "Vacuum.sql", "VACUUM;");
    put(dir, "v3__lowercase.sql", "SELECT 3;");
    put(dir, "flyway.conf", "flyway.url=jdbc:postgresql://db/app");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_FLYWAY);
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK_STR(d.migrations[0].name, "1");
        CHECK_EQ_INT(d.migrations[1].version, 2);
        CHECK_STR(d.migrations[1].name, "Add_Users_Table");
        CHECK_STR(d.migrations[1].down_file, "U002__Add_Users_Table.sql");
    }
    CHECK_EQ_INT(d.n_warnings, 3);
    CHECK(has_warning(&d, "skipped 'Vacuum.sql': not a flyway migration file name"));
    CHECK(has_warning(&d, "skipped 'v3__lowercase.sql': not a flyway migration file name "
                          "(flyway prefixes are case-sensitive: 'V' and 'U')"));
    CHECK(has_warning(&d, "skipped 'flyway.conf': not a flyway migration file name"));
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    const struct {
        const char *name, *msg;
    } bad[] = {
        {"U3__gone.sql", "'U3__gone.sql': down migration without an up migration (version 3)"},
        {"V2.sql", "'V2.sql': no '__' between the flyway version and description"},
        {"V1_1__x.sql", "'V1_1__x.sql': version '1_1' is not an integer"},
        {"V1a__x.sql", "'V1a__x.sql': invalid flyway version '1a'"},
        {"R__views.sql", "'R__views.sql': flyway repeatable migrations are not supported"},
        {"afterMigrate.sql", "'afterMigrate.sql': flyway callback scripts are not supported"},
        {"V1__init.sql.conf", "'V1__init.sql.conf': flyway per-script configuration files are "
                              "not supported"},
        {"V01__again.sql", "duplicate migration version 1: 'V01__again.sql' and 'V1__init.sql'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dir = tmp_new();
        put(dir, "V1__init.sql", "SELECT 1;");
        put(dir, bad[i].name, "SELECT 1;");
        expect_fail(dir, CMIG_DIR_FLYWAY, CMIG_E_INPUT, bad[i].msg);
        tmp_rm(dir);
    }
}

TEST(detection)
{
    const char *dir = tmp_new();
    struct cmig_srcdir d;
    struct cmig_err e;
    /* goose and dbmate name files alike: the content decides */
    put(dir, "1_a.sql", "-- +goose Up\nSELECT 1;\n");
    put(dir, "2_b.sql", "-- migrate:up\nSELECT 2;\n");
    expect_fail(dir, CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'1_a.sql' looks like goose and '2_b.sql' like "
                "dbmate; use --dir-format");
    /* forcing a format settles it (each file is then checked by sections) */
    CHECK_EQ_INT(scan(dir, CMIG_DIR_DBMATE, &d, &e), 0);
    CHECK_EQ_INT(d.n, 2);
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    /* a marker beyond the first 64 KiB is not looked for */
    dir = tmp_new();
    size_t pad = 70 * 1024;
    char *big = malloc(pad + 64);
    if (!big)
        exit(2);
    for (size_t i = 0; i < pad; i += 64) {
        memset(big + i, '-', 63);
        big[i + 63] = '\n';
    }
    strcpy(big + pad, "-- +goose Up\nSELECT 1;\n");
    put(dir, "1_late.sql", big);
    expect_fail(dir, CMIG_DIR_AUTO, CMIG_E_INPUT,
                "'1_late.sql' has neither a '-- +goose Up' annotation nor a '-- migrate:up' "
                "marker in its first 64 KiB");
    /* with the marker in the first lines of another file, detection works */
    put(dir, "2_early.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;\n");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOOSE);
    cmig_srcdir_free(&d);
    free(big);
    tmp_rm(dir);

    /* names decide before content */
    dir = tmp_new();
    put(dir, "1_a.up.sql", "-- migrate:up\nSELECT 1;\n");
    put(dir, "2_b.sql", "-- migrate:up\nSELECT 2;\n");
    CHECK_EQ_INT(scan(dir, CMIG_DIR_AUTO, &d, &e), 0);
    CHECK_EQ_INT(d.format, CMIG_DIR_GOLANG_MIGRATE);
    CHECK_EQ_INT(d.n, 1);
    CHECK(has_warning(&d, "skipped '2_b.sql'"));
    cmig_srcdir_free(&d);
    tmp_rm(dir);

    /* an indented or unknown goose annotation does not count */
    dir = tmp_new();
    put(dir, "1_a.sql", "  -- +goose Up\n-- see +goose docs\nSELECT 1;\n");
    expect_fail(dir, CMIG_DIR_AUTO, CMIG_E_INPUT, "cannot tell the format");
    tmp_rm(dir);

    /* a goose directory with only Go migrations is still recognised, so
     * that the error says what is wrong */
    dir = tmp_new();
    put(dir, "00001_init.go", "package migrations");
    expect_fail(dir, CMIG_DIR_AUTO, CMIG_E_INPUT,
                "goose Go migrations are not supported: '00001_init.go'");
    tmp_rm(dir);

    expect_fail(data_dir("golang-migrate"), (enum cmig_dir_format)42, CMIG_E_USAGE,
                "unknown directory format");
}

/* ---- sections ---- */

TEST(sections_whole_file)
{
    struct cmig_section up, down;
    struct cmig_err e;
    const char *text = "-- +goose Up\nSELECT 1;\n";
    enum cmig_dir_format fs[] = {CMIG_DIR_GOLANG_MIGRATE, CMIG_DIR_FLYWAY};
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ_INT(split(fs[i], text, 0, &up, &down, &e), 0);
        CHECK_EQ_INT(up.present, 1);
        CHECK_EQ_INT(up.offset, 0);
        CHECK_EQ_INT(up.len, strlen(text));
        CHECK_EQ_INT(up.line, 1);
        CHECK_EQ_INT(up.tx_override, -1);
        CHECK_EQ_INT(down.present, 0);
        CHECK_EQ_INT(split(fs[i], text, 1, &up, &down, &e), 0);
        CHECK_EQ_INT(up.present, 0);
        CHECK_EQ_INT(down.present, 1);
        CHECK_EQ_INT(down.len, strlen(text));
        CHECK_EQ_INT(split(fs[i], "", 0, &up, &down, &e), 0);
        CHECK_EQ_INT(up.present, 1);
        CHECK_EQ_INT(up.len, 0);
    }
    CHECK_EQ_INT(cmig_srcdir_sections(CMIG_DIR_GOLANG_MIGRATE, "x", NULL, 0, 0, &up, &down, &e), 0);
    cmig_err_clear(&e);
    CHECK_EQ_INT(cmig_srcdir_sections(CMIG_DIR_AUTO, "x", "a", 1, 0, &up, &down, &e), CMIG_E_USAGE);
}

TEST(sections_goose)
{
    struct cmig_section up, down;
    struct cmig_err e;
    const char *t = "-- a comment\n\n-- +goose Up\nA;\n-- +goose Down\nB;\n";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "A;\n");
    CHECK_EQ_INT(up.line, 4);
    CHECK_STR(section_text(t, &down), "B;\n");
    CHECK_EQ_INT(down.line, 6);
    CHECK_EQ_INT(up.tx_override, -1);
    CHECK_EQ_INT(down.tx_override, -1);

    /* CRLF line ends; no newline at the end */
    t = "-- +goose Up\r\nA;\r\n-- +goose Down\r\nB;";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "A;\r\n");
    CHECK_STR(section_text(t, &down), "B;");
    CHECK_EQ_INT(down.line, 4);

    /* letter case, blanks around and inside the annotation */
    t = "--+goose up   \n-- +goose no transaction\nA;\n--   +goose DOWN\t\n";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "-- +goose no transaction\nA;\n");
    CHECK_EQ_INT(up.tx_override, CMIG_TX_NONE);
    CHECK_EQ_INT(down.present, 1);
    CHECK_EQ_INT(down.len, 0);
    CHECK_EQ_INT(down.tx_override, CMIG_TX_NONE);

    /* NO TRANSACTION before Up; no Down */
    t = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_EQ_INT(up.tx_override, CMIG_TX_NONE);
    CHECK_EQ_INT(down.present, 0);
    CHECK_EQ_INT(down.tx_override, -1);

    /* empty and comment-only sections; marker on the last line */
    t = "-- +goose Up\n-- +goose Down";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_EQ_INT(up.len, 0);
    CHECK_EQ_INT(down.present, 1);
    CHECK_EQ_INT(down.offset, strlen(t));
    CHECK_EQ_INT(down.len, 0);
    t = "-- +goose Up\n-- nothing to do\n";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "-- nothing to do\n");

    /* StatementBegin/End stay in the section */
    t = "-- +goose Up\n-- +goose StatementBegin\nDO $$ BEGIN END; $$;\n-- +goose StatementEnd\n"
        "-- +goose Down\n-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n";
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up),
              "-- +goose StatementBegin\nDO $$ BEGIN END; $$;\n-- +goose StatementEnd\n");
    CHECK_EQ_INT(down.line, 6);

    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, "\v\n-- +goose Up\n", 0, &up, &down, &e), 0);
    /* ENVSUB OFF is harmless */
    CHECK_EQ_INT(
        split(CMIG_DIR_GOOSE, "-- +goose ENVSUB OFF\n-- +goose Up\nA;\n", 0, &up, &down, &e), 0);
    /* "+GOOSE" is not an annotation: a plain comment */
    CHECK_EQ_INT(split(CMIG_DIR_GOOSE, "-- +GOOSE Up\n-- +goose Up\nA;\n", 0, &up, &down, &e), 0);
    CHECK_EQ_INT(up.line, 3);
}

TEST(sections_goose_errors)
{
    expect_split_fail(CMIG_DIR_GOOSE, "SELECT 1;\n",
                      "'m.sql': line 1: statement before "
                      "'-- +goose Up'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- only comments\n\n",
                      "'m.sql': no '-- +goose Up' "
                      "annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "", "no '-- +goose Up' annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "/* block */\n-- +goose Up\n",
                      "line 1: statement before '-- +goose Up'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- +goose Up\n",
                      "line 2: duplicate '-- +goose Up' annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Down\n-- +goose Up\n",
                      "line 1: '-- +goose Down' before '-- +goose Up'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
                      "line 3: duplicate '-- +goose Down' annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- +goose StatementEnd\n",
                      "line 2: '-- +goose StatementEnd' without '-- +goose StatementBegin'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- +goose StatementBegin\nA;\n",
                      "line 2: '-- +goose StatementBegin' without '-- +goose StatementEnd'");
    expect_split_fail(CMIG_DIR_GOOSE,
                      "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n",
                      "line 3: '-- +goose StatementBegin' inside the block of line 2");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose StatementBegin\n-- +goose Up\n",
                      "line 1: '-- +goose StatementBegin' before '-- +goose Up'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- +goose StatementBegin\n-- +goose Down\n",
                      "line 3: '-- +goose Down' inside the '-- +goose StatementBegin' block of "
                      "line 2");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose ENVSUB ON\n-- +goose Up\n",
                      "line 1: '-- +goose ENVSUB ON' is not supported");
    expect_split_fail(CMIG_DIR_GOOSE, "  -- +goose Up\n",
                      "line 1: goose annotation must start at the beginning of the line");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\nA;\n\t-- +goose Down\n",
                      "line 3: goose annotation must start");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Upp\n",
                      "line 1: unknown goose annotation "
                      "'-- +goose Upp'");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\n-- uses +goose annotations\n",
                      "line 2: unknown goose annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up +goose\n", "unknown goose annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose NO  TRANSACTION\n", "unknown goose annotation");
    expect_split_fail(CMIG_DIR_GOOSE, "-- +goose Up\x1b[2J\n",
                      "unknown goose annotation '-- +goose Up\\x1B[2J'");
}

TEST(sections_dbmate)
{
    struct cmig_section up, down;
    struct cmig_err e;
    const char *t = "-- header\n\n-- migrate:up\nA;\n-- migrate:down\nB;\n";
    CHECK_EQ_INT(split(CMIG_DIR_DBMATE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "A;\n");
    CHECK_EQ_INT(up.line, 4);
    CHECK_STR(section_text(t, &down), "B;\n");
    CHECK_EQ_INT(down.line, 6);
    CHECK_EQ_INT(up.tx_override, -1);

    t = "--migrate:up transaction:false\r\nCREATE INDEX CONCURRENTLY i ON t (c);\r\n"
        "--  migrate:down   transaction:true  \r\nDROP INDEX i;\r\n";
    CHECK_EQ_INT(split(CMIG_DIR_DBMATE, t, 0, &up, &down, &e), 0);
    CHECK_EQ_INT(up.tx_override, CMIG_TX_NONE);
    CHECK_EQ_INT(down.tx_override, CMIG_TX_TRANSACTION);
    CHECK_STR(section_text(t, &up), "CREATE INDEX CONCURRENTLY i ON t (c);\r\n");
    CHECK_STR(section_text(t, &down), "DROP INDEX i;\r\n");

    /* no down block: no down migration */
    t = "-- migrate:up\nA;\n";
    CHECK_EQ_INT(split(CMIG_DIR_DBMATE, t, 0, &up, &down, &e), 0);
    CHECK_EQ_INT(down.present, 0);
    CHECK_STR(section_text(t, &up), "A;\n");

    /* "migrate:upx" is no marker; here it is a comment inside the up block */
    t = "-- migrate:up\n-- migrate:upgrade notes\n-- migrate:down";
    CHECK_EQ_INT(split(CMIG_DIR_DBMATE, t, 0, &up, &down, &e), 0);
    CHECK_STR(section_text(t, &up), "-- migrate:upgrade notes\n");
    CHECK_EQ_INT(down.len, 0);
    /* goose annotations mean nothing to dbmate */
    t = "-- +goose Up\n-- migrate:up\nA;\n";
    CHECK_EQ_INT(split(CMIG_DIR_DBMATE, t, 0, &up, &down, &e), 0);
    CHECK_EQ_INT(up.line, 3);
}

TEST(sections_dbmate_errors)
{
    expect_split_fail(CMIG_DIR_DBMATE, "A;\n-- migrate:up\n",
                      "'m.sql': line 1: statement before '-- migrate:up'");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:upx\nA;\n", "line 2: statement before");
    /* dbmate's \s has no vertical tab; goose's TrimSpace has */
    expect_split_fail(CMIG_DIR_DBMATE, "\v\n-- migrate:up\n", "line 1: statement before");
    expect_split_fail(CMIG_DIR_DBMATE, "", "'m.sql': no '-- migrate:up' block");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:down\n-- migrate:up\n",
                      "line 1: '-- migrate:down' before '-- migrate:up'");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
                      "line 3: duplicate '-- migrate:down' block");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:up\nA;\n-- migrate:down\nB;\n-- migrate:up\n",
                      "line 5: second '-- migrate:up' block (the first is on line 1");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:up transaction:False\n",
                      "line 1: unknown dbmate option 'transaction:False'");
    expect_split_fail(CMIG_DIR_DBMATE, "-- migrate:up\n-- migrate:down transaction:false foo\n",
                      "line 2: unknown dbmate option 'foo'");
}

int main(void)
{
    SUITE("srcdir");
    RUN(format_names);
    RUN(utf8_validity);
    RUN(data_golang_migrate);
    RUN(data_golang_migrate_json);
    RUN(data_goose);
    RUN(data_dbmate);
    RUN(data_flyway);
    RUN(data_bad_dirs);
    RUN(data_bad_contents);
    RUN(examples);
    RUN(empty_directory);
    RUN(names_must_be_utf8);
    RUN(file_types);
    RUN(golang_migrate_names);
    RUN(goose_names);
    RUN(dbmate_names);
    RUN(flyway_names);
    RUN(detection);
    RUN(sections_whole_file);
    RUN(sections_goose);
    RUN(sections_goose_errors);
    RUN(sections_dbmate);
    RUN(sections_dbmate_errors);
    return harness_done();
}
