/*
 * test_sqlstream.c - SQL read through a window (format/sqlstream.c): for
 * every script and every window size from one byte up, read in pieces of
 * every size, the statements handed out are exactly those of one split of
 * the whole text, with the same positions; chunks respect their target;
 * NUL bytes are refused.
 */
#include "cmig/sqlstream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/sqlscan.h"
#include "harness.h"

#define MAX_STMTS 128

struct stmt {
    char text[512];
    size_t offset, len;
    unsigned line, col;
    int terminated;
};

struct list {
    size_t n;
    struct stmt v[MAX_STMTS];
};

struct ref_ctx {
    const char *sql;
    struct list *l;
};

static int add_ref(void *ctx, const struct cmig_sql_stmt *st)
{
    struct ref_ctx *r = ctx;
    if (r->l->n < MAX_STMTS) {
        struct stmt *s = &r->l->v[r->l->n];
        size_t n = st->len < sizeof s->text - 1 ? st->len : sizeof s->text - 1;
        memcpy(s->text, r->sql + st->offset, n);
        s->text[n] = '\0';
        s->offset = st->offset;
        s->len = st->len;
        s->line = st->line;
        s->col = st->col; /* ASCII scripts: bytes == characters */
        s->terminated = st->terminated;
    }
    r->l->n++;
    return 0;
}

static void reference(const char *sql, struct list *l)
{
    struct ref_ctx r = {sql, l};
    memset(l, 0, sizeof *l);
    cmig_sql_split(sql, strlen(sql), add_ref, &r);
}

/* A reader that hands out at most piece bytes per call. */
struct pieces {
    const char *text;
    size_t len, pos, piece;
};

static int read_pieces(void *src, char *buf, size_t cap, size_t *got, struct cmig_err *err)
{
    (void)err;
    struct pieces *p = src;
    size_t n = p->len - p->pos;
    if (n > cap)
        n = cap;
    if (n > p->piece)
        n = p->piece;
    memcpy(buf, p->text + p->pos, n);
    p->pos += n;
    *got = n;
    return 0;
}

/* Chunks through a reader with this window and piece size, checked
 * against the reference split of the whole text: each chunk must be
 * exactly the text from its first statement's start to its last one's end.
 * Returns 0, or which check failed. */
static int streamed(const char *sql, size_t window, size_t piece, size_t target, struct list *l)
{
    struct pieces p = {sql, strlen(sql), 0, piece};
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    struct list ref;
    reference(sql, &ref);
    cmig_err_clear(&err);
    memset(l, 0, sizeof *l);
    cmig_sqlstream_init_reader(&ss, p.len, read_pieces, &p);
    ss.window = window;
    int rc;
    while ((rc = cmig_sqlstream_next(&ss, target, &ch, &err)) == 0 && ch.n) {
        if (target == 0 && ch.n != 1)
            return -1;
        if (ch.n > 1 && ch.len > target)
            return -2;
        if (ch.first != l->n + 1 || l->n + ch.n > ref.n)
            return -3;
        const struct stmt *a = &ref.v[l->n], *z = &ref.v[l->n + ch.n - 1];
        if (ch.offset != a->offset || ch.offset + ch.len != z->offset + z->len ||
            memcmp(ch.text, sql + ch.offset, ch.len) != 0)
            return -4;
        for (unsigned i = 0; i < ch.n; i++) {
            l->v[l->n] = ref.v[l->n];
            if (i == 0) {
                l->v[l->n].line = ch.line;
                l->v[l->n].col = ch.col;
            }
            if (i + 1 == ch.n)
                l->v[l->n].terminated = ch.terminated;
            l->n++;
        }
    }
    cmig_sqlstream_free(&ss);
    return rc;
}

static int same(const struct list *a, const struct list *b, char *why, size_t cap)
{
    if (a->n != b->n) {
        snprintf(why, cap, "%zu statements, expected %zu", a->n, b->n);
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct stmt *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->text, y->text) != 0 || x->line != y->line || x->col != y->col ||
            x->terminated != y->terminated) {
            snprintf(why, cap, "statement %zu: '%.60s' %u:%u t%d, expected '%.60s' %u:%u t%d",
                     i + 1, x->text, x->line, x->col, x->terminated, y->text, y->line, y->col,
                     y->terminated);
            return 0;
        }
    }
    return 1;
}

static const char *const scripts[] = {
    "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2);\n",
    "SELECT 1;SELECT 2;  SELECT 3",
    "-- a comment; with a semicolon\nSELECT 'it''s; fine';\n/* block; /* nested; */ still */ "
    "SELECT 2;\n",
    "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;\n"
    "CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END $body$ LANGUAGE plpgsql;\n",
    "SELECT E'back\\\\slash\\'; quote';\nSELECT \"quoted;ident\" FROM t;\n",
    "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION h() RETURNS trigger AS '\n"
    "BEGIN NEW.x := 1; RETURN NEW; END' LANGUAGE plpgsql;\nSELECT 1;\n"
    "-- +goose StatementEnd\nSELECT 2;\n-- +goose StatementBegin\nSELECT 3; SELECT 4;\n"
    "-- +goose StatementEnd\n",
    "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END;\n"
    "SELECT 5;\n",
    "SELECT 1;\r\nSELECT 2;\r\n-- trailing comment without newline",
    "SELECT 'never closed; SELECT 2;\n",
    "SELECT 1; /* never closed ; SELECT 2;",
    "INSERT INTO t VALUES (1,\n2,\n3);\n\n\n   SELECT "
    "verylongidentifiername_that_gets_cut_somewhere_in_the_middle;\n",
    "",
    "   \n  -- only comments\n /* and this */ ",
    ";;;SELECT 1;;;",
    /* not goose markers: they do not stand on a line of their own */
    "SELECT 2; -- +goose StatementBegin\nSELECT 3; SELECT 4;\n-- +goose StatementEnd\n",
    "SELECT 2\n;-- +goose StatementBegin\nSELECT 3; SELECT 4;\n",
};

TEST(windows_and_pieces_match_one_split)
{
    char why[400];
    for (size_t k = 0; k < sizeof scripts / sizeof scripts[0]; k++) {
        struct list ref, got;
        reference(scripts[k], &ref);
        for (size_t window = 1; window <= 80; window++) {
            for (size_t piece = 1; piece <= 9; piece += 4) {
                int rc = streamed(scripts[k], window, piece, 0, &got);
                if (rc != 0 || !same(&got, &ref, why, sizeof why)) {
                    printf("#   script %zu, window %zu, piece %zu: rc %d: %s\n", k, window, piece,
                           rc, rc ? "" : why);
                    CHECK(0);
                    return;
                }
            }
        }
    }
}

TEST(chunks_hold_whole_statements_within_target)
{
    char why[400];
    for (size_t k = 0; k < sizeof scripts / sizeof scripts[0]; k++) {
        struct list ref, got;
        reference(scripts[k], &ref);
        for (size_t target = 1; target < 200; target += 17) {
            for (size_t window = 4; window <= 64; window *= 2) {
                int rc = streamed(scripts[k], window, 7, target, &got);
                if (rc != 0 || !same(&got, &ref, why, sizeof why)) {
                    printf("#   script %zu, target %zu, window %zu: rc %d: %s\n", k, target, window,
                           rc, rc ? "" : why);
                    CHECK(0);
                    return;
                }
            }
        }
    }
}

/* A goose marker cut by the window must not be taken for a marker. */
TEST(marker_cut_at_the_window_is_not_a_marker)
{
    const char *sql = "-- +goose StatementBegin\nSELECT 1; SELECT 2;\n-- +goose StatementEndless\n"
                      "SELECT 3;\n-- +goose StatementEnd\n";
    struct list ref, got;
    char why[400];
    reference(sql, &ref);
    CHECK_EQ_INT(ref.n, 1);
    for (size_t window = 1; window <= 90; window++) {
        CHECK_EQ_INT(streamed(sql, window, 3, 0, &got), 0);
        if (!same(&got, &ref, why, sizeof why)) {
            printf("#   window %zu: %s\n", window, why);
            CHECK(0);
            return;
        }
    }
}

TEST(whole_text_is_not_copied)
{
    const char *sql = "SELECT 1;\nSELECT 2;\n";
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, CMIG_SQLSTREAM_WINDOW, &ch, &err), 0);
    CHECK(ch.text == sql);
    CHECK_EQ_INT(ch.n, 2);
    CHECK_EQ_INT(ch.len, strlen("SELECT 1;\nSELECT 2;"));
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, CMIG_SQLSTREAM_WINDOW, &ch, &err), 0);
    CHECK_EQ_INT(ch.n, 0);
    CHECK(ss.buf == NULL);
    cmig_sqlstream_free(&ss);
}

TEST(positions_count_characters)
{
    /* "é" is two bytes, one column. */
    const char *sql = "SELECT 'é'; SELECT 2;\n  SELECT 3;";
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    unsigned line, col, stmt;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 0, &ch, &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 0, &ch, &err), 0);
    CHECK_EQ_INT(ch.line, 1);
    CHECK_EQ_INT(ch.col, 13);
    CHECK_EQ_INT(ch.first, 2);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 0, &ch, &err), 0);
    CHECK_EQ_INT(ch.line, 2);
    CHECK_EQ_INT(ch.col, 3);
    cmig_sqlstream_free(&ss);
    /* Inside a chunk of several statements. */
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 1000, &ch, &err), 0);
    CHECK_EQ_INT(ch.n, 3);
    cmig_sql_chunk_locate(&ch, (size_t)(strstr(sql, "3;") - sql), &line, &col, &stmt);
    CHECK_EQ_INT(line, 2);
    CHECK_EQ_INT(col, 10);
    CHECK_EQ_INT(stmt, 3);
    cmig_sql_chunk_locate(&ch, (size_t)(strstr(sql, "2;") - sql), &line, &col, &stmt);
    CHECK_EQ_INT(line, 1);
    CHECK_EQ_INT(col, 20);
    CHECK_EQ_INT(stmt, 2);
    cmig_sqlstream_free(&ss);
}

/* A goose block that opens a chunk is one statement: its inner ';' do not
 * move the statement numbers of what follows, read whole or through a
 * window that holds it all. */
TEST(goose_block_opening_a_chunk_is_one_statement)
{
    const char *sql = "-- +goose Up\n-- +goose StatementBegin\nSELECT 1; SELECT oops;\n"
                      "-- +goose StatementEnd\nSELECT 2; SELECT fail;\n";
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    unsigned line, col, stmt;
    for (size_t window = 0; window <= strlen(sql); window += strlen(sql)) {
        struct pieces p = {sql, strlen(sql), 0, 3};
        cmig_err_clear(&err);
        if (window == 0) {
            CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
        } else {
            cmig_sqlstream_init_reader(&ss, p.len, read_pieces, &p);
            ss.window = window;
        }
        CHECK_EQ_INT(cmig_sqlstream_next(&ss, 1000, &ch, &err), 0);
        CHECK_EQ_INT(ch.first, 1);
        CHECK_EQ_INT(ch.n, 3);
        size_t oops = (size_t)(strstr(sql, "oops") - sql) - ch.offset;
        size_t fail = (size_t)(strstr(sql, "fail") - sql) - ch.offset;
        cmig_sql_chunk_locate(&ch, oops, &line, &col, &stmt);
        CHECK_EQ_INT(line, 3);
        CHECK_EQ_INT(col, 18);
        CHECK_EQ_INT(stmt, 1);
        cmig_sql_chunk_locate(&ch, fail, &line, &col, &stmt);
        CHECK_EQ_INT(line, 5);
        CHECK_EQ_INT(col, 18);
        CHECK_EQ_INT(stmt, 3);
        cmig_sqlstream_free(&ss);
    }
}

/* Read whole, each statement is lexed from where the last one ended: a
 * marker comment there is on that statement's line, so it is no marker. */
TEST(marker_on_a_statements_line_is_not_a_marker)
{
    const char *sql = "SELECT 2; -- +goose StatementBegin\nSELECT 3; SELECT 4;\n";
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    unsigned n = 0, line, col, stmt;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
    while (cmig_sqlstream_next(&ss, 0, &ch, &err) == 0 && ch.n) {
        CHECK_EQ_INT(ch.n, 1);
        CHECK_EQ_INT(ch.len, 9);
        n++;
    }
    CHECK_EQ_INT(n, 3);
    cmig_sqlstream_free(&ss);
    /* Nor when a chunk's statements are counted. */
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, strlen(sql), &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 0, &ch, &err), 0);
    CHECK_EQ_INT(cmig_sqlstream_next(&ss, 1000, &ch, &err), 0);
    CHECK_EQ_INT(ch.first, 2);
    CHECK_EQ_INT(ch.n, 2);
    cmig_sql_chunk_locate(&ch, ch.len - 2, &line, &col, &stmt);
    CHECK_EQ_INT(line, 2);
    CHECK_EQ_INT(stmt, 3);
    cmig_sqlstream_free(&ss);
}

TEST(nul_bytes_are_refused)
{
    const char sql[] = "SELECT 1;\nSELECT '\0';\n";
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sqlstream_init_whole(&ss, sql, sizeof sql - 1, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "NUL byte (offset 18)");
    struct pieces p = {sql, sizeof sql - 1, 0, 5};
    cmig_err_clear(&err);
    cmig_sqlstream_init_reader(&ss, p.len, read_pieces, &p);
    ss.window = 8;
    int rc;
    unsigned seen = 0;
    while ((rc = cmig_sqlstream_next(&ss, 0, &ch, &err)) == 0 && ch.n)
        seen++;
    CHECK_EQ_INT(rc, CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "NUL byte (offset 18)");
    CHECK(seen <= 1);
    cmig_sqlstream_free(&ss);
}

/* A source that ends before its declared size is an error, not a short text. */
TEST(short_source_is_an_error)
{
    const char *sql = "SELECT 1;\nSELECT 2;\n";
    struct pieces p = {sql, strlen(sql), 0, 100};
    struct cmig_sqlstream ss;
    struct cmig_sql_chunk ch;
    struct cmig_err err;
    cmig_err_clear(&err);
    cmig_sqlstream_init_reader(&ss, p.len + 10, read_pieces, &p);
    int rc;
    while ((rc = cmig_sqlstream_next(&ss, 0, &ch, &err)) == 0 && ch.n)
        ;
    CHECK_EQ_INT(rc, CMIG_E_INTERNAL);
    CHECK_CONTAINS(err.msg, "ended after 20 of 30 bytes");
    cmig_sqlstream_free(&ss);
}

/* Random scripts made of the fragments above, cut at random. */
TEST(random_scripts_match_one_split)
{
    static const char *const parts[] = {
        "SELECT 1;",
        "\n",
        " ",
        "-- c;\n",
        "/* b; */",
        "'s;q'",
        "$$ a; b $$",
        "$t$ ; $t$",
        "E'\\\\';",
        "\"i;d\"",
        "(",
        ")",
        ";",
        "BEGIN",
        "END",
        "CREATE FUNCTION x() ",
        "\n-- +goose StatementBegin\n",
        "\n-- +goose StatementEnd\n",
        "x",
        "é",
    };
    char sql[600], why[400];
    uint64_t seed = 12345;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        int n = (int)(seed % 40);
        for (int i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = parts[(seed >> 33) % (sizeof parts / sizeof parts[0])];
            size_t pl = strlen(p);
            if (len + pl >= sizeof sql)
                break;
            memcpy(sql + len, p, pl);
            len += pl;
        }
        sql[len] = '\0';
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        struct list ref, got;
        reference(sql, &ref);
        /* Non-ASCII columns differ (bytes vs characters): compare lines only then. */
        int ascii = !strstr(sql, "é");
        size_t window = (size_t)(seed >> 40) % 48 + 1;
        size_t target = (size_t)(seed >> 20) % 3 == 0 ? 0 : (size_t)(seed >> 24) % 120;
        int rc = streamed(sql, window, (size_t)(seed >> 50) % 11 + 1, target, &got);
        if (!ascii)
            for (size_t i = 0; i < got.n && i < ref.n; i++)
                got.v[i].col = ref.v[i].col;
        if (rc != 0 || !same(&got, &ref, why, sizeof why)) {
            printf("#   round %d (window %zu, target %zu): rc %d: %s\n#   script: %s\n", round,
                   window, target, rc, rc ? "" : why, sql);
            CHECK(0);
            return;
        }
    }
}

int main(void)
{
    SUITE("sqlstream");
    RUN(windows_and_pieces_match_one_split);
    RUN(chunks_hold_whole_statements_within_target);
    RUN(marker_cut_at_the_window_is_not_a_marker);
    RUN(whole_text_is_not_copied);
    RUN(positions_count_characters);
    RUN(goose_block_opening_a_chunk_is_one_statement);
    RUN(marker_on_a_statements_line_is_not_a_marker);
    RUN(nul_bytes_are_refused);
    RUN(short_source_is_an_error);
    RUN(random_scripts_match_one_split);
    return harness_done();
}
