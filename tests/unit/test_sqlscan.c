/*
 * test_sqlscan.c - the SQL lexer: statement splitting with every quoting
 * form, positions, goose blocks, and transaction-mode detection with its
 * annotations, keywords and the places keywords must not be seen.
 */
#include "cmig/sqlscan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define MAX_STMTS 64

struct got {
    const char *sql;
    size_t n;
    struct cmig_sql_stmt st[MAX_STMTS];
    char text[MAX_STMTS][256];
    int stop_after; /* return non-zero from the callback after this many */
};

static int collect(void *ctx, const struct cmig_sql_stmt *st)
{
    struct got *g = ctx;
    if (g->n < MAX_STMTS) {
        g->st[g->n] = *st;
        size_t n = st->len < 255 ? st->len : 255;
        memcpy(g->text[g->n], g->sql + st->offset, n);
        g->text[g->n][n] = '\0';
    }
    g->n++;
    if (g->stop_after && (int)g->n == g->stop_after)
        return 42;
    return 0;
}

static size_t split_n(struct got *g, const char *sql, size_t len)
{
    memset(g, 0, sizeof *g);
    g->sql = sql;
    cmig_sql_split(sql, len, collect, g);
    /* has_statements must always agree with split */
    CHECK_EQ_INT(cmig_sql_has_statements(sql, len), g->n > 0);
    return g->n;
}

static size_t split(struct got *g, const char *sql)
{
    return split_n(g, sql, strlen(sql));
}

/* Splits sql and checks the statements' texts against the NULL-terminated
 * list that follows. */
static void expect_split(int line, const char *sql, ...);

#include <stdarg.h>

static void expect_split(int line, const char *sql, ...)
{
    struct got g;
    va_list ap;
    size_t i = 0;
    split(&g, sql);
    va_start(ap, sql);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        if (i >= g.n) {
            printf("#   line %d: missing statement %zu \"%s\"\n", line, i, want);
            harness_failed_now = 1;
            break;
        }
        if (strcmp(g.text[i], want) != 0) {
            printf("#   line %d: statement %zu is \"%s\", expected \"%s\"\n", line, i, g.text[i],
                   want);
            harness_failed_now = 1;
        }
    }
    va_end(ap);
    if (!harness_failed_now && i != g.n) {
        printf("#   line %d: %zu statements, expected %zu\n", line, g.n, i);
        harness_failed_now = 1;
    }
}

#define SPLIT(sql, ...) expect_split(__LINE__, sql, __VA_ARGS__, (const char *)NULL)

static void expect_mode(int line, const char *sql, enum cmig_txmode mode, const char *why)
{
    char reason[128];
    memset(reason, 'x', sizeof reason);
    enum cmig_txmode got = cmig_sql_detect_txmode(sql, strlen(sql), reason, sizeof reason);
    if (got != mode || strcmp(reason, why) != 0) {
        printf("#   line %d: \"%s\" -> %s \"%s\", expected %s \"%s\"\n", line, sql,
               cmig_txmode_name(got), reason, cmig_txmode_name(mode), why);
        harness_failed_now = 1;
    }
}

#define NONE(sql, why) expect_mode(__LINE__, sql, CMIG_TX_NONE, why)
#define TX(sql) expect_mode(__LINE__, sql, CMIG_TX_TRANSACTION, "")

TEST(split_basic)
{
    SPLIT("SELECT 1; SELECT 2;", "SELECT 1;", "SELECT 2;");
    SPLIT("SELECT 1;\nSELECT 2", "SELECT 1;", "SELECT 2");
    SPLIT("SELECT 1", "SELECT 1");
    SPLIT("  SELECT 1  ;  ", "SELECT 1  ;");
    SPLIT("SELECT 1 -- trailing\n", "SELECT 1");
    SPLIT("SELECT 1 /* trailing */", "SELECT 1");
    SPLIT("SELECT 1; ; ;SELECT 2;;", "SELECT 1;", "SELECT 2;");
    SPLIT("SELECT 1 -- x\n, 2;", "SELECT 1 -- x\n, 2;");
    SPLIT("a;b;c", "a;", "b;", "c");
}

TEST(split_empty_and_comment_only)
{
    struct got g;
    CHECK_EQ_INT(split(&g, ""), 0);
    CHECK_EQ_INT(split(&g, "   \n\t\r\n"), 0);
    CHECK_EQ_INT(split(&g, "-- only a comment"), 0);
    CHECK_EQ_INT(split(&g, "-- one\n-- two\n/* three\n */\n"), 0);
    CHECK_EQ_INT(split(&g, "/* /* nested */ still comment; SELECT 1; */"), 0);
    CHECK_EQ_INT(split(&g, ";;\n;"), 0);
    CHECK_EQ_INT(split(&g, "/* unterminated; SELECT 1;"), 0);
    CHECK_EQ_INT(split(&g, "-- +goose StatementBegin\n-- +goose StatementEnd\n"), 0);
    CHECK_EQ_INT(split(&g, "-- +goose StatementBegin\n;\n-- +goose StatementEnd\n"), 0);
    CHECK(!cmig_sql_has_statements(NULL, 0));
    CHECK_EQ_INT(cmig_sql_split(NULL, 0, collect, &g), 0);
}

TEST(split_single_quotes)
{
    SPLIT("SELECT 'a;b'; SELECT 2;", "SELECT 'a;b';", "SELECT 2;");
    SPLIT("SELECT 'it''s;'; SELECT 2;", "SELECT 'it''s;';", "SELECT 2;");
    SPLIT("SELECT ''; SELECT '''';", "SELECT '';", "SELECT '''';");
    /* standard_conforming_strings: a backslash is an ordinary character */
    SPLIT("SELECT 'a\\'; SELECT 2;", "SELECT 'a\\';", "SELECT 2;");
    SPLIT("SELECT 'a\\'';' ; SELECT 2;", "SELECT 'a\\'';' ;", "SELECT 2;");
    SPLIT("SELECT 'multi\nline;\n'; SELECT 2;", "SELECT 'multi\nline;\n';", "SELECT 2;");
    /* B'', X'', N'' are ordinary strings after a word */
    SPLIT("SELECT X'1;', N'x;'; SELECT 2;", "SELECT X'1;', N'x;';", "SELECT 2;");
    /* unterminated: runs to the end */
    SPLIT("SELECT 'abc; SELECT 2;", "SELECT 'abc; SELECT 2;");
}

TEST(split_escape_strings)
{
    SPLIT("SELECT E'a\\';b'; SELECT 2;", "SELECT E'a\\';b';", "SELECT 2;");
    SPLIT("SELECT e'a\\';b'; SELECT 2;", "SELECT e'a\\';b';", "SELECT 2;");
    SPLIT("SELECT E'\\\\'; SELECT 3;", "SELECT E'\\\\';", "SELECT 3;");
    SPLIT("SELECT E'it''s;'; SELECT 2;", "SELECT E'it''s;';", "SELECT 2;");
    SPLIT("SELECT E'\\x41;\\n'; SELECT 2;", "SELECT E'\\x41;\\n';", "SELECT 2;");
    /* only a lone E makes an escape string: here "xe" is a word */
    SPLIT("SELECT xe'\\'; SELECT 1;", "SELECT xe'\\';", "SELECT 1;");
    /* backslash at the very end */
    SPLIT("SELECT E'\\", "SELECT E'\\");
}

TEST(split_unicode_strings)
{
    SPLIT("SELECT U&'d\\0061t\\+000061;'; SELECT 2;", "SELECT U&'d\\0061t\\+000061;';",
          "SELECT 2;");
    SPLIT("SELECT u&'x;y' UESCAPE '!'; SELECT 2;", "SELECT u&'x;y' UESCAPE '!';", "SELECT 2;");
    /* no backslash escape of the quote in U& strings either */
    SPLIT("SELECT U&'\\'; SELECT 2;", "SELECT U&'\\';", "SELECT 2;");
    SPLIT("SELECT U&\"a;b\"; SELECT 2;", "SELECT U&\"a;b\";", "SELECT 2;");
}

TEST(split_quoted_identifiers)
{
    SPLIT("SELECT \"a;b\"; SELECT 2;", "SELECT \"a;b\";", "SELECT 2;");
    SPLIT("SELECT \"a;\"\"b;\" FROM t; SELECT 2;", "SELECT \"a;\"\"b;\" FROM t;", "SELECT 2;");
    SPLIT("SELECT \"it's;\"; SELECT ';\"';", "SELECT \"it's;\";", "SELECT ';\"';");
    SPLIT("SELECT \"-- not a comment\"; SELECT 2;", "SELECT \"-- not a comment\";", "SELECT 2;");
    SPLIT("SELECT \"unterminated; SELECT 2;", "SELECT \"unterminated; SELECT 2;");
}

TEST(split_dollar_quotes)
{
    SPLIT("SELECT $$a;b$$; SELECT 2;", "SELECT $$a;b$$;", "SELECT 2;");
    SPLIT("SELECT $fn$ a; $$ ; $f$ ; $fn$; SELECT 2;", "SELECT $fn$ a; $$ ; $f$ ; $fn$;",
          "SELECT 2;");
    SPLIT("SELECT $a1_$ x; $a1_$; SELECT 2;", "SELECT $a1_$ x; $a1_$;", "SELECT 2;");
    SPLIT("SELECT $$ 'not a string; $$; SELECT 2;", "SELECT $$ 'not a string; $$;", "SELECT 2;");
    SPLIT("SELECT $$ -- not a comment\n; $$; SELECT 2;", "SELECT $$ -- not a comment\n; $$;",
          "SELECT 2;");
    SPLIT("CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN $$x;$$; END; $body$ "
          "LANGUAGE plpgsql; SELECT 1;",
          "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN $$x;$$; END; $body$ "
          "LANGUAGE plpgsql;",
          "SELECT 1;");
    /* tags are case-sensitive */
    SPLIT("SELECT $A$ ; $a$ ; $A$; SELECT 2;", "SELECT $A$ ; $a$ ; $A$;", "SELECT 2;");
    /* $1 is a parameter, not a dollar quote */
    SPLIT("SELECT $1; SELECT $2;", "SELECT $1;", "SELECT $2;");
    SPLIT("SELECT $1$; SELECT 2;", "SELECT $1$;", "SELECT 2;");
    /* '$' continues an identifier: no dollar quote starts inside one */
    SPLIT("SELECT a$b$c; SELECT $b$;", "SELECT a$b$c;", "SELECT $b$;");
    SPLIT("SELECT x$$; SELECT 2;", "SELECT x$$;", "SELECT 2;");
    /* a lone '$' */
    SPLIT("SELECT $ ; SELECT 2;", "SELECT $ ;", "SELECT 2;");
    /* a near-miss closing tag, then the real one */
    SPLIT("SELECT $ab$ $a$ $abc$ $ab $ab$; SELECT 2;", "SELECT $ab$ $a$ $abc$ $ab $ab$;",
          "SELECT 2;");
    /* a failed closing delimiter leaves its '$' to start the real one */
    SPLIT("SELECT $a$ x$b$a$; SELECT 2;", "SELECT $a$ x$b$a$;", "SELECT 2;");
    /* unterminated */
    SPLIT("SELECT $x$ ; SELECT 2;", "SELECT $x$ ; SELECT 2;");
    SPLIT("SELECT $$", "SELECT $$");
}

TEST(split_comments)
{
    SPLIT("SELECT 1 -- ; x\n; SELECT 2;", "SELECT 1 -- ; x\n;", "SELECT 2;");
    SPLIT("SELECT 1 /* a /* b; */ c; */; SELECT 2;", "SELECT 1 /* a /* b; */ c; */;", "SELECT 2;");
    SPLIT("SELECT 1 /**/; SELECT 2;", "SELECT 1 /**/;", "SELECT 2;");
    SPLIT("SELECT 1 /*/ x; */; SELECT 2;", "SELECT 1 /*/ x; */;", "SELECT 2;");
    SPLIT("SELECT 1 --\r; SELECT 2;", "SELECT 1 --\r;", "SELECT 2;");
    SPLIT("SELECT 2-1; SELECT 4/2;", "SELECT 2-1;", "SELECT 4/2;");
    SPLIT("SELECT 'a' -- 'b\n; SELECT 2;", "SELECT 'a' -- 'b\n;", "SELECT 2;");
    SPLIT("SELECT 1 +/* x; */ 2; SELECT 3;", "SELECT 1 +/* x; */ 2;", "SELECT 3;");
    SPLIT("/* lead */ -- lead\nSELECT 1;", "SELECT 1;");
}

TEST(split_parentheses)
{
    /* a multi-action rule: ';' inside parentheses does not split */
    SPLIT("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b "
          "VALUES (2)); SELECT 1;",
          "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b "
          "VALUES (2));",
          "SELECT 1;");
    SPLIT("SELECT 1); SELECT 2;", "SELECT 1);", "SELECT 2;");
    SPLIT("SELECT (';'); SELECT 2;", "SELECT (';');", "SELECT 2;");
}

TEST(split_sql_standard_bodies)
{
    SPLIT("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN "
          "true THEN 1 END; END; SELECT 2;",
          "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN "
          "true THEN 1 END; END;",
          "SELECT 2;");
    SPLIT("create or replace procedure p() language sql begin atomic insert into t values (1); "
          "end; call p();",
          "create or replace procedure p() language sql begin atomic insert into t values (1); "
          "end;",
          "call p();");
    /* outside CREATE FUNCTION, BEGIN is a statement of its own */
    SPLIT("BEGIN; SELECT 1; END;", "BEGIN;", "SELECT 1;", "END;");
    SPLIT("CREATE TABLE t (a int); BEGIN; COMMIT;", "CREATE TABLE t (a int);", "BEGIN;", "COMMIT;");
    /* a plpgsql body is a string: its BEGIN is not counted */
    SPLIT("CREATE FUNCTION f() RETURNS void AS $$ BEGIN END $$ LANGUAGE plpgsql; SELECT 1;",
          "CREATE FUNCTION f() RETURNS void AS $$ BEGIN END $$ LANGUAGE plpgsql;", "SELECT 1;");
    SPLIT("DO $$ BEGIN PERFORM 1; END $$; SELECT 1;", "DO $$ BEGIN PERFORM 1; END $$;",
          "SELECT 1;");
}

TEST(split_positions)
{
    struct got g;
    const char *sql = "-- head\n  /* c */ SELECT 1;\n\tSELECT\n2; SELECT 3;\n\n  x";
    CHECK_EQ_INT(split(&g, sql), 4);
    CHECK_EQ_INT(g.st[0].line, 2);
    CHECK_EQ_INT(g.st[0].col, 11);
    CHECK_EQ_INT(g.st[0].offset, 18);
    CHECK_EQ_INT(g.st[0].len, 9);
    CHECK_EQ_INT(g.st[1].line, 3);
    CHECK_EQ_INT(g.st[1].col, 2);
    CHECK_STR(g.text[1], "SELECT\n2;");
    CHECK_EQ_INT(g.st[2].line, 4);
    CHECK_EQ_INT(g.st[2].col, 4);
    CHECK_EQ_INT(g.st[3].line, 6);
    CHECK_EQ_INT(g.st[3].col, 3);
    CHECK_STR(g.text[3], "x");

    /* newlines inside strings, comments and dollar quotes still count */
    sql = "SELECT 'a\nb', $$\n$$ /*\n*/;\n-- c\nSELECT \"x\ny\";\nSELECT 3;";
    CHECK_EQ_INT(split(&g, sql), 3);
    CHECK_EQ_INT(g.st[0].line, 1);
    CHECK_EQ_INT(g.st[1].line, 6);
    CHECK_EQ_INT(g.st[1].col, 1);
    CHECK_EQ_INT(g.st[2].line, 8);

    /* CRLF files: columns count bytes after the '\n' */
    sql = "SELECT 1;\r\n  SELECT 2;\r\n";
    CHECK_EQ_INT(split(&g, sql), 2);
    CHECK_EQ_INT(g.st[1].line, 2);
    CHECK_EQ_INT(g.st[1].col, 3);
    CHECK_STR(g.text[1], "SELECT 2;");

    /* first statement at the very start */
    CHECK_EQ_INT(split(&g, "X"), 1);
    CHECK_EQ_INT(g.st[0].line, 1);
    CHECK_EQ_INT(g.st[0].col, 1);
    CHECK_EQ_INT(g.st[0].offset, 0);
}

TEST(split_goose_blocks)
{
    SPLIT("-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
          "BEGIN RETURN 1; END;\n$$;\nSELECT 2;\n-- +goose StatementEnd\nSELECT 3;\n",
          "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN RETURN 1; END;\n$$;\n"
          "SELECT 2;",
          "SELECT 3;");
    /* case-insensitive, optional blanks */
    SPLIT("--+GOOSE statementbegin\nA; B;\n  --   +goose   STATEMENTEND  \nC;", "A; B;", "C;");
    SPLIT("\t-- +goose StatementBegin\r\nA; B;\r\n-- +goose StatementEnd\r\nC;", "A; B;", "C;");
    /* text before a block is its own statement even without ';' */
    SPLIT("A\n-- +goose StatementBegin\nB; C;\n-- +goose StatementEnd\n", "A", "B; C;");
    /* a block that is never closed runs to the end */
    SPLIT("A;\n-- +goose StatementBegin\nB; C;\n", "A;", "B; C;");
    /* an end without a begin is just a comment */
    SPLIT("A;\n-- +goose StatementEnd\nB;", "A;", "B;");
    /* a second begin inside a block is just a comment */
    SPLIT("-- +goose StatementBegin\nA;\n-- +goose StatementBegin\nB;\n-- +goose StatementEnd\n"
          "C;",
          "A;\n-- +goose StatementBegin\nB;", "C;");
    /* comments inside the block at its edges are not part of the statement */
    SPLIT("-- +goose StatementBegin\n-- lead\nA; B; -- tail\n-- +goose StatementEnd\n", "A; B;");
    /* a marker that does not start its line is an ordinary comment */
    SPLIT("SELECT 1; -- +goose StatementBegin\nSELECT 2; SELECT 3;", "SELECT 1;", "SELECT 2;",
          "SELECT 3;");
    /* markers must match exactly; inside strings or block comments they are text */
    SPLIT("-- +goose StatementBeginning\nA; B;", "A;", "B;");
    SPLIT("/*\n-- +goose StatementBegin\n*/\nA; B;", "A;", "B;");
    SPLIT("SELECT '\n-- +goose StatementBegin\n'; B;", "SELECT '\n-- +goose StatementBegin\n';",
          "B;");
    /* goose Up/Down markers are left to the caller: plain comments here */
    SPLIT("-- +goose Up\nA;\n-- +goose Down\nB;", "A;", "B;");
}

TEST(split_stops_early)
{
    struct got g;
    memset(&g, 0, sizeof g);
    g.sql = "A; B; C;";
    g.stop_after = 2;
    CHECK_EQ_INT(cmig_sql_split(g.sql, strlen(g.sql), collect, &g), 42);
    CHECK_EQ_INT(g.n, 2);
}

TEST(split_binary_input)
{
    static const char sql[] = "SELECT 1;\0SELECT '\0;';\xff\xfe;";
    struct got g;
    CHECK_EQ_INT(split_n(&g, sql, sizeof sql - 1), 3);
    CHECK_EQ_INT(g.st[1].offset, 9);
    CHECK_EQ_INT(g.st[1].len, 13);
    CHECK_EQ_INT(g.st[2].len, 3);
    /* length is honoured: nothing past it is read */
    CHECK_EQ_INT(split_n(&g, "SELECT 1; SELECT 2;", 9), 1);
    CHECK_EQ_INT(split_n(&g, "SELECT 'x", 8), 1);
}

TEST(has_statements)
{
    CHECK(cmig_sql_has_statements("SELECT 1", 8));
    CHECK(cmig_sql_has_statements("-- c\n/* d */ x", 14));
    CHECK(!cmig_sql_has_statements("-- c\n/* d */ ;", 14));
    CHECK(!cmig_sql_has_statements("SELECT 1", 0));
    CHECK(cmig_sql_has_statements("'", 1));
    CHECK(cmig_sql_has_statements("$$", 2));
}

TEST(detect_plain_is_transaction)
{
    TX("");
    TX("-- nothing\n");
    TX("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);");
    TX("CREATE INDEX i ON t (a);");
    TX("CREATE UNIQUE INDEX i ON t (a);");
    TX("DROP INDEX i;");
    TX("ANALYZE t;");
    TX("REFRESH MATERIALIZED VIEW CONCURRENTLY mv;");
    TX("ALTER TYPE mood ADD VALUE 'happy';");
    TX("SAVEPOINT a; RELEASE SAVEPOINT a; ROLLBACK TO SAVEPOINT a;");
    TX("ROLLBACK TO a; ROLLBACK WORK TO SAVEPOINT a; ROLLBACK TRANSACTION TO a;");
    TX("PREPARE q (int) AS SELECT $1; EXECUTE q(1); DEALLOCATE q;");
    TX("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;");
    TX("DISCARD PLANS; DISCARD TEMP;");
    TX("REINDEX TABLE t; REINDEX INDEX i;");
    TX("REINDEX (VERBOSE) TABLE t;");
    TX("REINDEX (CONCURRENTLY false) TABLE t;");
    TX("REINDEX (CONCURRENTLY off, VERBOSE) INDEX i;");
    TX("CLUSTER t; CLUSTER t USING i; CLUSTER VERBOSE t; CLUSTER (VERBOSE) t;");
    TX("CLUSTER i ON t;");
    TX("ALTER DATABASE d SET search_path = x;");
    TX("ALTER DATABASE d RENAME TO e;");
    TX("ALTER DATABASE d SET default_tablespace = ts;");
    TX("ALTER TABLESPACE ts RENAME TO u;");
    TX("ALTER SUBSCRIPTION s ENABLE; ALTER SUBSCRIPTION s DISABLE;");
    TX("ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false);");
    TX("ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (copy_data = true, refresh = off);");
    TX("ALTER SUBSCRIPTION s DROP PUBLICATION p WITH (refresh = 'false');");
    TX("ALTER SUBSCRIPTION s SET (slot_name = NONE);");
    TX("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = false);");
    TX("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (enabled = false, connect = off);");
    TX("ALTER SUBSCRIPTION s CONNECTION 'host=x';");
    TX("ALTER SUBSCRIPTION s OWNER TO bob;");
    TX("ALTER TABLE p DETACH PARTITION c;");
    TX("ALTER TABLE p DETACH PARTITION c FINALIZE;");
    TX("ALTER TABLE t ADD COLUMN concurrently int;");
    TX("ALTER INDEX i RENAME TO vacuum;");
    TX("CREATE TABLE vacuum (begin int, commit int);");
    TX("SELECT 1 AS begin; SELECT 'end';");
    TX("CHECKPOINT;");
    TX("START_REPLICATION;");
}

TEST(detect_hidden_keywords)
{
    TX("SELECT 'CREATE INDEX CONCURRENTLY i ON t(a)';");
    TX("SELECT E'\\'; VACUUM; ';");
    TX("SELECT U&'; VACUUM;';");
    TX("-- CREATE INDEX CONCURRENTLY i ON t(a);\nSELECT 1;");
    TX("/* VACUUM; */ SELECT 1;");
    TX("/* /* nested */ VACUUM; */ SELECT 1;");
    TX("SELECT $x$ ; VACUUM; $x$;");
    TX("CREATE FUNCTION f() RETURNS void AS $$ BEGIN VACUUM; COMMIT; END $$ LANGUAGE plpgsql;");
    TX("DO $$ BEGIN PERFORM 1; END $$;");
    TX("DO $body$\nBEGIN\n  COMMIT;\nEND\n$body$;");
    TX("CREATE INDEX \"concurrently\" ON t (a);");
    TX("CREATE \"INDEX\" CONCURRENTLY;");
    TX("\"VACUUM\";");
    TX("\"BEGIN\";");
    TX("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;");
    TX("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; "
       "COMMIT; END;");
    TX("SELECT 1 -- ; VACUUM\n;");
    TX("SELECT $1; SELECT x$vacuum;");
}

TEST(detect_index_keywords)
{
    NONE("CREATE INDEX CONCURRENTLY i ON t (a);", "line 1: CREATE INDEX CONCURRENTLY");
    NONE("create index concurrently on t (a);", "line 1: CREATE INDEX CONCURRENTLY");
    NONE("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a);",
         "line 1: CREATE UNIQUE INDEX CONCURRENTLY");
    NONE("CREATE\n  -- why\n  INDEX /* c */ CONCURRENTLY IF NOT EXISTS i ON t (a);",
         "line 1: CREATE INDEX CONCURRENTLY");
    NONE("DROP INDEX CONCURRENTLY IF EXISTS i;", "line 1: DROP INDEX CONCURRENTLY");
    NONE("REINDEX INDEX CONCURRENTLY i;", "line 1: REINDEX INDEX CONCURRENTLY");
    NONE("REINDEX TABLE CONCURRENTLY t;", "line 1: REINDEX TABLE CONCURRENTLY");
    NONE("REINDEX (VERBOSE) TABLE CONCURRENTLY x;", "line 1: REINDEX TABLE CONCURRENTLY");
    NONE("REINDEX (CONCURRENTLY) INDEX i;", "line 1: REINDEX INDEX CONCURRENTLY");
    NONE("reindex (verbose, concurrently true, tablespace ts) table t;",
         "line 1: REINDEX TABLE CONCURRENTLY");
    NONE("REINDEX SCHEMA s;", "line 1: REINDEX SCHEMA");
    NONE("REINDEX DATABASE d;", "line 1: REINDEX DATABASE");
    NONE("REINDEX SYSTEM;", "line 1: REINDEX SYSTEM");
    NONE("REINDEX (VERBOSE) DATABASE;", "line 1: REINDEX DATABASE");
    NONE("REINDEX SYSTEM CONCURRENTLY d;", "line 1: REINDEX SYSTEM");
}

TEST(detect_other_keywords)
{
    NONE("VACUUM;", "line 1: VACUUM");
    NONE("vacuum (full, analyze) t;", "line 1: VACUUM");
    NONE("VACUUM ANALYZE t;", "line 1: VACUUM");
    NONE("CREATE DATABASE d;", "line 1: CREATE DATABASE");
    NONE("DROP DATABASE IF EXISTS d WITH (FORCE);", "line 1: DROP DATABASE");
    NONE("ALTER DATABASE d SET TABLESPACE ts;", "line 1: ALTER DATABASE ... SET TABLESPACE");
    NONE("ALTER DATABASE \"My Db\" SET TABLESPACE ts;",
         "line 1: ALTER DATABASE ... SET TABLESPACE");
    NONE("CREATE TABLESPACE ts LOCATION '/x';", "line 1: CREATE TABLESPACE");
    NONE("DROP TABLESPACE ts;", "line 1: DROP TABLESPACE");
    NONE("ALTER SYSTEM SET work_mem = '1MB';", "line 1: ALTER SYSTEM");
    NONE("ALTER SYSTEM RESET ALL;", "line 1: ALTER SYSTEM");
    NONE("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p;", "line 1: CREATE SUBSCRIPTION");
    NONE("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = true);",
         "line 1: CREATE SUBSCRIPTION");
    NONE("CREATE SUBSCRIPTION s CONNECTION 'create_slot = false' PUBLICATION p;",
         "line 1: CREATE SUBSCRIPTION");
    NONE("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (slot_name = false);",
         "line 1: CREATE SUBSCRIPTION");
    NONE("DROP SUBSCRIPTION IF EXISTS s;", "line 1: DROP SUBSCRIPTION");
    NONE("ALTER SUBSCRIPTION s REFRESH PUBLICATION;",
         "line 1: ALTER SUBSCRIPTION ... REFRESH PUBLICATION");
    NONE("ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false);",
         "line 1: ALTER SUBSCRIPTION ... REFRESH PUBLICATION");
    NONE("ALTER SUBSCRIPTION s SET PUBLICATION p;",
         "line 1: ALTER SUBSCRIPTION ... SET PUBLICATION");
    NONE("ALTER SUBSCRIPTION s ADD PUBLICATION p, q WITH (copy_data = false);",
         "line 1: ALTER SUBSCRIPTION ... ADD PUBLICATION");
    NONE("ALTER SUBSCRIPTION s DROP PUBLICATION p WITH (refresh = true);",
         "line 1: ALTER SUBSCRIPTION ... DROP PUBLICATION");
    NONE("ALTER SUBSCRIPTION s SET (failover = true);",
         "line 1: ALTER SUBSCRIPTION ... SET (FAILOVER)");
    NONE("ALTER SUBSCRIPTION s SET (two_phase = false);",
         "line 1: ALTER SUBSCRIPTION ... SET (TWO_PHASE)");
    NONE("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;",
         "line 1: ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY");
    NONE("ALTER TABLE IF EXISTS ONLY s.p DETACH PARTITION s.\"c\" CONCURRENTLY;",
         "line 1: ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY");
    NONE("CLUSTER;", "line 1: CLUSTER");
    NONE("CLUSTER VERBOSE;", "line 1: CLUSTER");
    NONE("CLUSTER (VERBOSE)", "line 1: CLUSTER");
    NONE("DISCARD ALL;", "line 1: DISCARD ALL");
    NONE("COMMIT PREPARED 'x';", "line 1: COMMIT PREPARED");
    NONE("ROLLBACK PREPARED 'x';", "line 1: ROLLBACK PREPARED");
    NONE("PREPARE TRANSACTION 'x';", "line 1: PREPARE TRANSACTION");
}

TEST(detect_transaction_control)
{
    NONE("BEGIN;", "line 1: BEGIN");
    NONE("begin work;", "line 1: BEGIN");
    NONE("BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE;", "line 1: BEGIN");
    NONE("START TRANSACTION;", "line 1: START TRANSACTION");
    NONE("SELECT 1;\nCOMMIT;", "line 2: COMMIT");
    NONE("COMMIT AND CHAIN;", "line 1: COMMIT");
    NONE("END;", "line 1: END");
    NONE("END TRANSACTION", "line 1: END");
    NONE("ROLLBACK;", "line 1: ROLLBACK");
    NONE("ROLLBACK WORK AND NO CHAIN;", "line 1: ROLLBACK");
    NONE("ABORT;", "line 1: ABORT");
    /* a DO block is not a BEGIN, a later real one is */
    NONE("DO $$ BEGIN PERFORM 1; END $$;\nBEGIN;", "line 2: BEGIN");
}

TEST(detect_reason_line_and_order)
{
    NONE("SELECT 1;\n\nCREATE INDEX CONCURRENTLY i ON t (a);", "line 3: CREATE INDEX CONCURRENTLY");
    /* the first offending statement is reported, at the line it starts on */
    NONE("-- x\nSELECT 1;\n/* y\n*/ VACUUM\n  t;\nCREATE DATABASE d;", "line 4: VACUUM");
    NONE("CREATE TABLE t (a int);\nCREATE\nINDEX\nCONCURRENTLY i ON t (a);",
         "line 2: CREATE INDEX CONCURRENTLY");
    /* goose blocks do not hide statements from the analysis */
    NONE("-- +goose StatementBegin\nSELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
         "-- +goose StatementEnd\n",
         "line 3: CREATE INDEX CONCURRENTLY");
    /* statements without a final ';' */
    NONE("SELECT 1;\nVACUUM", "line 2: VACUUM");
}

TEST(detect_annotations)
{
    NONE("-- cmig:no-transaction\nSELECT 1;", "annotation -- cmig:no-transaction (line 1)");
    NONE("SELECT 1;\n--   CMIG : No-Transaction   \n",
         "annotation -- cmig:no-transaction (line 2)");
    NONE("SELECT 1; -- cmig:no-transaction because of the index\n",
         "annotation -- cmig:no-transaction (line 1)");
    NONE("--cmig:no-transaction", "annotation -- cmig:no-transaction (line 1)");
    expect_mode(__LINE__, "-- cmig:transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
                CMIG_TX_TRANSACTION, "annotation -- cmig:transaction (line 1)");
    expect_mode(__LINE__, "VACUUM;\n\n-- cmig: transaction\n", CMIG_TX_TRANSACTION,
                "annotation -- cmig:transaction (line 3)");
    /* both: no-transaction wins, whatever the order */
    NONE("-- cmig:transaction\n-- cmig:no-transaction\n",
         "annotation -- cmig:no-transaction (line 2)");
    NONE("-- cmig:no-transaction\n-- cmig:transaction\n",
         "annotation -- cmig:no-transaction (line 1)");
    /* the annotation wins over keyword analysis */
    NONE("VACUUM;\n-- cmig:no-transaction\n", "annotation -- cmig:no-transaction (line 2)");
    /* not annotations */
    TX("/* cmig:no-transaction */ SELECT 1;");
    TX("SELECT '-- cmig:no-transaction';");
    TX("SELECT $$\n-- cmig:no-transaction\n$$;");
    TX("-- cmig:no-transactions\nSELECT 1;");
    TX("-- cmig:no-transaction-please\n");
    TX("-- xcmig:no-transaction\n");
    TX("-- cmig no-transaction\n");
    TX("-- cmig:transactional\n");
    TX("-- +goose NO TRANSACTION\n");
}

TEST(detect_reason_buffer)
{
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK_EQ_INT(cmig_sql_detect_txmode("VACUUM;", 7, small, sizeof small), CMIG_TX_NONE);
    CHECK_STR(small, "line 1:");
    CHECK_EQ_INT(cmig_sql_detect_txmode("VACUUM;", 7, NULL, 0), CMIG_TX_NONE);
    CHECK_EQ_INT(cmig_sql_detect_txmode("VACUUM;", 7, small, 0), CMIG_TX_NONE);
    CHECK_EQ_INT(cmig_sql_detect_txmode("-- cmig:no-transaction", 22, NULL, 0), CMIG_TX_NONE);
    small[0] = 'x';
    CHECK_EQ_INT(cmig_sql_detect_txmode("SELECT 1", 8, small, sizeof small), CMIG_TX_TRANSACTION);
    CHECK_STR(small, "");
    small[0] = 'x';
    CHECK_EQ_INT(cmig_sql_detect_txmode(NULL, 0, small, sizeof small), CMIG_TX_TRANSACTION);
    CHECK_STR(small, "");
    /* length is honoured */
    CHECK_EQ_INT(cmig_sql_detect_txmode("SELECT 1; VACUUM;", 9, NULL, 0), CMIG_TX_TRANSACTION);
}

TEST(txmode_names)
{
    CHECK_STR(cmig_txmode_name(CMIG_TX_TRANSACTION), "transaction");
    CHECK_STR(cmig_txmode_name(CMIG_TX_NONE), "none");
    CHECK_EQ_INT(cmig_txmode_parse("transaction"), CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(cmig_txmode_parse("none"), CMIG_TX_NONE);
    CHECK_EQ_INT(cmig_txmode_parse("None"), -1);
    CHECK_EQ_INT(cmig_txmode_parse(""), -1);
    CHECK_EQ_INT(cmig_txmode_parse(NULL), -1);
}

static int count_cb(void *ctx, const struct cmig_sql_stmt *st)
{
    (void)st;
    (*(size_t *)ctx)++;
    return 0;
}

/* Inputs that would take hours with a quadratic scan: a long dollar-quote
 * tag whose body is full of near-miss tags, a script of nothing but
 * comments, and many unterminated openers. */
TEST(linear_on_hostile_input)
{
    size_t tag = 100000, n = 4 * 1024 * 1024;
    char *buf = malloc(n);
    CHECK(buf != NULL);
    if (!buf)
        return;
    clock_t t0 = clock();

    buf[0] = '$';
    memset(buf + 1, 'a', tag);
    buf[tag + 1] = '$';
    for (size_t i = tag + 2; i < n; i++)
        buf[i] = (i % 7 == 0) ? '$' : 'a';
    size_t count = 0;
    cmig_sql_split(buf, n, count_cb, &count);
    CHECK_EQ_INT(count, 1);
    CHECK_EQ_INT(cmig_sql_detect_txmode(buf, n, NULL, 0), CMIG_TX_TRANSACTION);

    for (size_t i = 0; i < n; i++)
        buf[i] = "-- x\n"[i % 5];
    CHECK(!cmig_sql_has_statements(buf, n));
    count = 0;
    cmig_sql_split(buf, n, count_cb, &count);
    CHECK_EQ_INT(count, 0);

    for (size_t i = 0; i < n; i++)
        buf[i] = "$a"[i % 2];
    count = 0;
    cmig_sql_split(buf, n, count_cb, &count);
    CHECK_EQ_INT(count, 1);

    for (size_t i = 0; i < n; i++)
        buf[i] = "/*"[i % 2];
    CHECK(!cmig_sql_has_statements(buf, n));

    for (size_t i = 0; i < n; i++)
        buf[i] = ";\n"[i % 2];
    CHECK(!cmig_sql_has_statements(buf, n));
    CHECK_EQ_INT(cmig_sql_detect_txmode(buf, n, NULL, 0), CMIG_TX_TRANSACTION);

    for (size_t i = 0; i < n; i++)
        buf[i] = "x;\n"[i % 3];
    count = 0;
    cmig_sql_split(buf, n, count_cb, &count);
    CHECK_EQ_INT(count, n / 3 + (n % 3 != 0));

    for (size_t i = 0; i < n; i++)
        buf[i] = "(\n"[i % 2];
    count = 0;
    cmig_sql_split(buf, n, count_cb, &count);
    CHECK_EQ_INT(count, 1);

    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 20)
        printf("#   hostile inputs took %.1f s\n", secs);
    CHECK(secs < 20);
    free(buf);
}

int main(void)
{
    SUITE("sqlscan");
    RUN(split_basic);
    RUN(split_empty_and_comment_only);
    RUN(split_single_quotes);
    RUN(split_escape_strings);
    RUN(split_unicode_strings);
    RUN(split_quoted_identifiers);
    RUN(split_dollar_quotes);
    RUN(split_comments);
    RUN(split_parentheses);
    RUN(split_sql_standard_bodies);
    RUN(split_positions);
    RUN(split_goose_blocks);
    RUN(split_stops_early);
    RUN(split_binary_input);
    RUN(has_statements);
    RUN(detect_plain_is_transaction);
    RUN(detect_hidden_keywords);
    RUN(detect_index_keywords);
    RUN(detect_other_keywords);
    RUN(detect_transaction_control);
    RUN(detect_reason_line_and_order);
    RUN(detect_annotations);
    RUN(detect_reason_buffer);
    RUN(txmode_names);
    RUN(linear_on_hostile_input);
    return harness_done();
}
