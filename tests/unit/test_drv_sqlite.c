/*
 * test_drv_sqlite.c - the built-in SQLite driver against real database
 * files: URL forms, history tables, every step kind, failure positions and
 * rollback, single-transaction runs, golang-migrate's schema_migrations,
 * busy waits, cancellation, and exactly-once application when several
 * processes race for the same file.
 *
 * The driver's source is included directly: unit tests link only the
 * format library, and the driver has no other dependency in runner/.
 */
#include "../../runner/drv_sqlite.c"

#include "harness.h"

#include <ftw.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

/* The core's (runner/plan.c); the test links no runner code. */
void cmig_history_free(struct cmig_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->rows[i].name);
        free(h->rows[i].bundle_version);
        free(h->rows[i].runner_version);
    }
    free(h->rows);
    free(h->record_version);
    memset(h, 0, sizeof *h);
}

static const struct cmig_driver *const D = &cmig_driver_sqlite;
static char tmpdir[256];
static volatile int g_interrupted;
static struct cmig_conn *volatile g_cancel_conn;
static int g_alarm_sets_flag;
static uint8_t SHA_A[32], SHA_B[32];

static void pathof(char *out, size_t cap, const char *file)
{
    snprintf(out, cap, "%s/%s", tmpdir, file);
}

static struct cmig_conn *open_opts(const char *file, int64_t db_lock_ms, int64_t stmt_ms)
{
    char url[600];
    snprintf(url, sizeof url, "sqlite:%s/%s", tmpdir, file);
    struct cmig_conn_opts o = {.url = url,
                               .lock_timeout_ms = db_lock_ms,
                               .statement_timeout_ms = stmt_ms,
                               .application_name = "test",
                               .interrupted = &g_interrupted};
    struct cmig_conn *c = NULL;
    struct cmig_err err;
    cmig_err_clear(&err);
    if (D->open(&c, &o, &err) != 0)
        printf("#   open '%s': %s\n", url, err.msg);
    return c;
}

static struct cmig_conn *open_db(const char *file)
{
    return open_opts(file, 0, 0);
}

static int open_url(const char *url, struct cmig_conn **c, struct cmig_err *err)
{
    struct cmig_conn_opts o = {.url = url, .interrupted = &g_interrupted};
    cmig_err_clear(err);
    *c = NULL;
    return D->open(c, &o, err);
}

/* A scalar from a separate plain SQLite connection; -999 on any failure. */
static long long q1(const char *file, const char *sql)
{
    char path[600];
    pathof(path, sizeof path, file);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int x1(const char *file, const char *sql)
{
    char path[600];
    pathof(path, sizeof path, file);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

static long long table_exists(const char *file, const char *name)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
    return q1(file, sql);
}

static struct cmig_step mk(enum cmig_step_kind kind, int64_t version, const char *sql,
                           enum cmig_txmode tx)
{
    struct cmig_step s = {.kind = kind,
                          .bundle = "app",
                          .bundle_version = "1.0.0",
                          .runner_version = "cmig-run test",
                          .version = version,
                          .name = "m",
                          .sha256 = SHA_A,
                          .sql = sql,
                          .len = sql ? strlen(sql) : 0,
                          .tx = tx,
                          .legacy_version = -1};
    return s;
}

static int apply(struct cmig_conn *c, const struct cmig_step *s, struct cmig_step_result *r,
                 struct cmig_err *err)
{
    cmig_err_clear(err);
    return D->apply(c, s, r, err);
}

/* Opens file, locks it and creates the tables: where most tests start. */
static struct cmig_conn *ready(const char *file)
{
    struct cmig_conn *c = open_db(file);
    struct cmig_err err;
    cmig_err_clear(&err);
    if (c && (D->lock(c, "app", 1000, &err) || D->ensure_schema(c, &err))) {
        printf("#   ready '%s': %s\n", file, err.msg);
        D->close(c);
        c = NULL;
    }
    return c;
}

static int64_t now(void)
{
    return mono_ms();
}

TEST(driver_table)
{
    CHECK_EQ_INT(D->abi, CMIG_DRIVER_ABI);
    CHECK_STR(D->name, "sqlite");
    CHECK_STR(D->schemes[0], "sqlite:");
    CHECK_STR(D->schemes[1], "sqlite3:");
    CHECK(D->schemes[2] == NULL);
    CHECK(D->caps & CMIG_CAP_TRANSACTIONAL_DDL);
    CHECK(D->caps & CMIG_CAP_SINGLE_TRANSACTION);
    D->close(NULL);
    D->cancel(NULL);
}

TEST(url_forms)
{
    struct cmig_conn *c = NULL;
    struct cmig_err err;
    char url[600], path[600], cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_EQ_INT(chdir(tmpdir), 0);

    CHECK_EQ_INT(open_url("sqlite:rel1.db", &c, &err), 0);
    D->close(c);
    CHECK_EQ_INT(access("rel1.db", F_OK), 0);
    CHECK_EQ_INT(open_url("sqlite3:rel2.db", &c, &err), 0);
    D->close(c);
    CHECK_EQ_INT(access("rel2.db", F_OK), 0);
    /* golang-migrate's form: "//" then a relative path. */
    CHECK_EQ_INT(open_url("sqlite3://rel3.db", &c, &err), 0);
    D->close(c);
    CHECK_EQ_INT(access("rel3.db", F_OK), 0);
    /* Three slashes: absolute. */
    snprintf(url, sizeof url, "sqlite://%s/abs.db", tmpdir);
    CHECK(strncmp(url, "sqlite:///", 10) == 0);
    CHECK_EQ_INT(open_url(url, &c, &err), 0);
    D->close(c);
    pathof(path, sizeof path, "abs.db");
    CHECK_EQ_INT(access(path, F_OK), 0);
    snprintf(url, sizeof url, "sqlite:%s/abs2.db", tmpdir);
    CHECK_EQ_INT(open_url(url, &c, &err), 0);
    D->close(c);
    pathof(path, sizeof path, "abs2.db");
    CHECK_EQ_INT(access(path, F_OK), 0);
    /* Never a URI, even with SQLITE_USE_URI. */
    CHECK_EQ_INT(open_url("sqlite:file:lit.db?", &c, &err), CMIG_E_USAGE);
    CHECK_EQ_INT(open_url("sqlite:file:lit.db", &c, &err), 0);
    D->close(c);
    CHECK_EQ_INT(access("file:lit.db", F_OK), 0);
    CHECK(access("lit.db", F_OK) != 0);

    CHECK_EQ_INT(open_url("sqlite:", &c, &err), CMIG_E_USAGE);
    CHECK(c == NULL);
    CHECK_EQ_INT(open_url("sqlite3://", &c, &err), CMIG_E_USAGE);
    CHECK_EQ_INT(open_url("postgres://u:pw@h/db", &c, &err), CMIG_E_USAGE);
    CHECK(!strstr(err.msg, "pw"));
    CHECK_EQ_INT(open_url("sqlite:x.db?_auth_pass=hunter2", &c, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "'x.db'");
    CHECK_CONTAINS(err.msg, "query parameters");
    CHECK(!strstr(err.msg, "hunter2"));
    CHECK(access("x.db", F_OK) != 0);

    CHECK_EQ_INT(open_url("sqlite:/nonexistent-cmig-dir/sub/a.db", &c, &err), CMIG_E_CONNECT);
    CHECK_CONTAINS(err.msg, "'/nonexistent-cmig-dir/sub/a.db'");
    CHECK_STR(err.native, "sqlite:14");
    snprintf(url, sizeof url, "sqlite:%s", tmpdir);
    CHECK_EQ_INT(open_url(url, &c, &err), CMIG_E_CONNECT);
    CHECK(c == NULL);

    /* A private in-memory database works end to end. */
    CHECK_EQ_INT(open_url("sqlite::memory:", &c, &err), 0);
    if (c) {
        struct cmig_step s = mk(CMIG_STEP_UP, 1, "CREATE TABLE t(x);", CMIG_TX_TRANSACTION);
        struct cmig_step_result r;
        struct cmig_history h;
        CHECK_EQ_INT(D->lock(c, "app", 0, &err), 0);
        CHECK_EQ_INT(D->ensure_schema(c, &err), 0);
        CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
        CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
        CHECK_EQ_INT(h.n, 1);
        cmig_history_free(&h);
        CHECK_EQ_INT(D->unlock(c, &err), 0);
        D->close(c);
    }
    CHECK_EQ_INT(chdir(cwd), 0);
}

TEST(history_on_empty_and_missing_file)
{
    struct cmig_err err;
    struct cmig_history h;
    char path[600];
    pathof(path, sizeof path, "fresh.db");
    CHECK(access(path, F_OK) != 0);
    struct cmig_conn *c = open_db("fresh.db");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(access(path, F_OK), 0); /* created */
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.schema_present, 0);
    CHECK_EQ_INT(h.n, 0);
    CHECK(h.rows == NULL);
    CHECK_EQ_INT(h.has_record, 0);
    CHECK_EQ_INT(h.legacy_present, 0);
    cmig_history_free(&h);
    /* Reading twice is fine, and ensure_schema is idempotent. */
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->lock(c, "app", 1000, &err), 0);
    CHECK_EQ_INT(D->ensure_schema(c, &err), 0);
    CHECK_EQ_INT(D->ensure_schema(c, &err), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.schema_present, 1);
    CHECK_EQ_INT(h.n, 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->unlock(c, &err), 0);
    D->close(c);
    CHECK_EQ_INT(table_exists("fresh.db", "cmig_history"), 1);
    CHECK_EQ_INT(table_exists("fresh.db", "cmig_bundles"), 1);
    CHECK_EQ_INT(q1("fresh.db", "SELECT count(*) FROM pragma_table_info('cmig_history')"), 9);

    /* A file that is not a database: an error naming it, not a crash. */
    pathof(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 200; i++)
            fputs("this is not a sqlite database\n", f);
        fclose(f);
    }
    c = open_db("garbage.db");
    CHECK(c != NULL);
    if (c) {
        cmig_err_clear(&err);
        CHECK_EQ_INT(D->read_history(c, "app", &h, &err), CMIG_E_DB);
        CHECK_CONTAINS(err.msg, "garbage.db");
        CHECK_STR(err.native, "sqlite:26");
        D->close(c);
    }
}

TEST(up_and_down)
{
    struct cmig_conn *c = ready("updown.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    struct cmig_step s = mk(CMIG_STEP_UP, 1,
                            "-- first\nCREATE TABLE t1(x INTEGER);\nINSERT INTO t1 VALUES (1);\n"
                            "SELECT * FROM t1; /* rows are stepped through */\n",
                            CMIG_TX_TRANSACTION);
    s.name = "create_t1";
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK(r.execution_ms >= 0);
    CHECK_EQ_INT(r.statement, 0);
    s = mk(CMIG_STEP_UP, 2, "CREATE TABLE t2(y);", CMIG_TX_TRANSACTION);
    s.name = "create_t2";
    s.sha256 = SHA_B;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE o1(z);", CMIG_TX_TRANSACTION);
    s.bundle = "other";
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    /* An empty migration (comments only) is fine too. */
    s = mk(CMIG_STEP_UP, 3, "-- nothing\n/* at all */\n", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);

    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.schema_present, 1);
    CHECK_EQ_INT(h.n, 3);
    if (h.n == 3) {
        CHECK_EQ_INT(h.rows[0].version, 1);
        CHECK_STR(h.rows[0].name, "create_t1");
        CHECK(memcmp(h.rows[0].sha256, SHA_A, 32) == 0);
        CHECK_EQ_INT(h.rows[0].dirty, 0);
        CHECK(h.rows[0].applied_at >= (int64_t)time(NULL) - 60);
        CHECK(h.rows[0].applied_at <= (int64_t)time(NULL) + 1);
        CHECK(h.rows[0].execution_ms >= 0);
        CHECK_STR(h.rows[0].bundle_version, "1.0.0");
        CHECK_STR(h.rows[0].runner_version, "cmig-run test");
        CHECK_EQ_INT(h.rows[1].version, 2);
        CHECK(memcmp(h.rows[1].sha256, SHA_B, 32) == 0);
        CHECK_EQ_INT(h.rows[2].version, 3);
    }
    cmig_history_free(&h);
    CHECK_EQ_INT(D->read_history(c, "other", &h, &err), 0);
    CHECK_EQ_INT(h.n, 1);
    cmig_history_free(&h);
    CHECK_EQ_INT(q1("updown.db", "SELECT count(*) FROM t1"), 1);

    s = mk(CMIG_STEP_DOWN, 2, "DROP TABLE t2;", CMIG_TX_TRANSACTION);
    s.sha256 = NULL;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(table_exists("updown.db", "t2"), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 2);
    if (h.n == 2)
        CHECK_EQ_INT(h.rows[1].version, 3);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->read_history(c, "other", &h, &err), 0);
    CHECK_EQ_INT(h.n, 1);
    cmig_history_free(&h);
    D->close(c);
}

TEST(sqlite_grammar_splits_triggers)
{
    static const char trig[] =
        "CREATE TABLE a(x);\nCREATE TABLE log(y);\n"
        "CREATE TRIGGER tr AFTER INSERT ON a BEGIN\n"
        "  INSERT INTO log VALUES (new.x);\n  INSERT INTO log VALUES (new.x * 2);\nEND;\n"
        "INSERT INTO a VALUES (5);\n";
    struct cmig_conn *c = ready("trigger.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_step s = mk(CMIG_STEP_UP, 1, trig, CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("trigger.db", "SELECT sum(y) FROM log"), 15);
    s = mk(CMIG_STEP_UP, 2, "INSERT INTO a VALUES (1);\nSELECT * FROM a;\n", CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("trigger.db", "SELECT sum(y) FROM log"), 18);
    /* SAVEPOINT and RELEASE nest inside our transaction. */
    s = mk(CMIG_STEP_UP, 3, "SAVEPOINT sp;\nCREATE TABLE b(z);\nRELEASE sp;\n",
           CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(table_exists("trigger.db", "b"), 1);
    D->close(c);
}

TEST(failing_transactional_migration_rolls_back)
{
    struct cmig_conn *c = ready("txfail.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    struct cmig_step s = mk(CMIG_STEP_UP, 1,
                            "CREATE TABLE f1(x);\nINSERT INTO f1 VALUES (1);\n"
                            "  INSERT INTO nope VALUES (2);\nCREATE TABLE f9(x);\n",
                            CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_EQ_INT(r.statement, 3);
    CHECK_EQ_INT(r.line, 3);
    CHECK_EQ_INT(r.col, 3);
    CHECK_STR(err.native, "sqlite:1");
    CHECK_CONTAINS(err.msg, "no such table: nope");
    CHECK_CONTAINS(err.msg, "txfail.db");
    CHECK_CONTAINS(err.msg, "txfail.db': no such table: nope");
    CHECK_EQ_INT(table_exists("txfail.db", "f1"), 0);
    CHECK_EQ_INT(q1("txfail.db", "SELECT count(*) FROM cmig_history"), 0);

    /* A parse error points at the token SQLite complains about. */
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE f2(x);\nSELECT * FROM f2 WHERE;\n", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_EQ_INT(r.statement, 2);
    CHECK_EQ_INT(r.line, 2);
    CHECK_EQ_INT(r.col, 23);
    CHECK_CONTAINS(err.msg, "syntax error");
    CHECK_EQ_INT(table_exists("txfail.db", "f2"), 0);

    /* A constraint failure at run time: the extended code. */
    s = mk(CMIG_STEP_UP, 1,
           "CREATE TABLE u(x UNIQUE);\nINSERT INTO u VALUES (1);\nINSERT INTO u VALUES (1);",
           CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_STR(err.native, "sqlite:2067");
    CHECK_EQ_INT(r.statement, 3);
    CHECK_EQ_INT(table_exists("txfail.db", "u"), 0);

    /* Its own transaction control would commit half a migration. */
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE c1(x);\n\nCOMMIT;\nCREATE TABLE c2(x);\n",
           CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "COMMIT is not allowed in a transactional migration");
    CHECK_EQ_INT(r.statement, 2);
    CHECK_EQ_INT(r.line, 3);
    CHECK_EQ_INT(table_exists("txfail.db", "c1"), 0);
    s = mk(CMIG_STEP_UP, 1, "BEGIN;\nCREATE TABLE c1(x);\nCOMMIT;\n", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "BEGIN is not allowed");
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE c1(x);\nROLLBACK;\n", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "ROLLBACK is not allowed");
    /* VACUUM cannot run in a transaction: SQLite says so. */
    s = mk(CMIG_STEP_UP, 1, "VACUUM;", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "VACUUM");

    /* A NUL byte is refused before anything runs. */
    static const char nul[] = "CREATE TABLE z(x);\0DROP TABLE cmig_history;";
    s = mk(CMIG_STEP_UP, 1, nul, CMIG_TX_TRANSACTION);
    s.len = sizeof nul - 1;
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_INPUT);
    CHECK_EQ_INT(table_exists("txfail.db", "z"), 0);

    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 0);
    cmig_history_free(&h);
    /* And the connection is still usable. */
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE ok(x);", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    D->close(c);
}

TEST(failing_nontransactional_migration_stays_dirty)
{
    struct cmig_conn *c = ready("nonefail.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    struct cmig_step s = mk(CMIG_STEP_UP, 4,
                            "CREATE TABLE d(x);\nINSERT INTO d VALUES (1);\n\n  bogus statement;\n"
                            "CREATE TABLE never(x);\n",
                            CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_EQ_INT(r.statement, 3);
    CHECK_EQ_INT(r.line, 4);
    CHECK_EQ_INT(r.col, 3);
    CHECK_CONTAINS(err.msg, "nonefail.db': near \"bogus\": syntax error");
    CHECK_EQ_INT(q1("nonefail.db", "SELECT count(*) FROM d"), 1);
    CHECK_EQ_INT(table_exists("nonefail.db", "never"), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 1);
    if (h.n == 1) {
        CHECK_EQ_INT(h.rows[0].version, 4);
        CHECK_EQ_INT(h.rows[0].dirty, 1);
    }
    cmig_history_free(&h);

    /* force: clean it, then remove it; a missing row is a conflict. */
    s = mk(CMIG_STEP_FORCE_CLEAN, 4, NULL, CMIG_TX_TRANSACTION);
    s.sha256 = NULL;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("nonefail.db", "SELECT dirty FROM cmig_history WHERE version = 4"), 0);
    s.kind = CMIG_STEP_FORCE_REMOVE;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("nonefail.db", "SELECT count(*) FROM cmig_history"), 0);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_CONFLICT);
    CHECK_CONTAINS(err.msg, "no history row for version 4");
    s.kind = CMIG_STEP_FORCE_CLEAN;
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_CONFLICT);

    /* A failing DOWN leaves its row dirty as well. */
    s = mk(CMIG_STEP_UP, 5, "CREATE TABLE e5(x);", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    s = mk(CMIG_STEP_DOWN, 5, "DROP TABLE e5;\nDROP TABLE e5;\n", CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_EQ_INT(r.statement, 2);
    CHECK_EQ_INT(r.line, 2);
    CHECK_EQ_INT(q1("nonefail.db", "SELECT dirty FROM cmig_history WHERE version = 5"), 1);
    CHECK_EQ_INT(table_exists("nonefail.db", "e5"), 0);

    /* A script that opens its own transaction and never commits: its work
     * is rolled back and the row stays dirty. */
    s = mk(CMIG_STEP_UP, 6, "CREATE TABLE e6(x);\nBEGIN;\nCREATE TABLE e7(x);\n", CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "left a transaction open");
    CHECK_EQ_INT(table_exists("nonefail.db", "e6"), 1);
    CHECK_EQ_INT(table_exists("nonefail.db", "e7"), 0);
    CHECK_EQ_INT(q1("nonefail.db", "SELECT dirty FROM cmig_history WHERE version = 6"), 1);
    D->close(c);
}

TEST(nontransactional_vacuum_and_own_transactions)
{
    struct cmig_conn *c = ready("vacuum.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_step s = mk(CMIG_STEP_UP, 1,
                            "CREATE TABLE v(x);\nINSERT INTO v VALUES (1);\nVACUUM;\n"
                            "BEGIN;\nINSERT INTO v VALUES (2);\nCOMMIT;\n",
                            CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK(r.execution_ms >= 0);
    CHECK_EQ_INT(q1("vacuum.db", "SELECT count(*) FROM v"), 2);
    CHECK_EQ_INT(q1("vacuum.db", "SELECT dirty FROM cmig_history WHERE version = 1"), 0);
    s = mk(CMIG_STEP_DOWN, 1, "DROP TABLE v;\nVACUUM;", CMIG_TX_NONE);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("vacuum.db", "SELECT count(*) FROM cmig_history"), 0);
    D->close(c);
}

TEST(baseline)
{
    struct cmig_conn *c = ready("baseline.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    struct cmig_step s = mk(CMIG_STEP_BASELINE, 7, NULL, CMIG_TX_TRANSACTION);
    s.name = "adopted";
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 1);
    if (h.n == 1) {
        CHECK_EQ_INT(h.rows[0].version, 7);
        CHECK_EQ_INT(h.rows[0].dirty, 0);
        CHECK_STR(h.rows[0].name, "adopted");
        CHECK_EQ_INT(h.rows[0].execution_ms, 0);
    }
    cmig_history_free(&h);
    s.sha256 = NULL;
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_INTERNAL);
    D->close(c);
}

TEST(single_transaction)
{
    struct cmig_conn *c = ready("single.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    struct cmig_step s1 = mk(CMIG_STEP_UP, 1, "CREATE TABLE s1(x);", CMIG_TX_TRANSACTION);
    struct cmig_step s2 = mk(CMIG_STEP_UP, 2, "CREATE TABLE s2(x);", CMIG_TX_TRANSACTION);
    s1.in_outer_tx = s2.in_outer_tx = 1;

    /* in_outer_tx without begin is the core's bug, reported as such. */
    CHECK_EQ_INT(apply(c, &s1, &r, &err), CMIG_E_INTERNAL);
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->commit(c, &err), CMIG_E_INTERNAL);
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->rollback(c, &err), 0);

    CHECK_EQ_INT(D->begin(c, &err), 0);
    CHECK_EQ_INT(apply(c, &s1, &r, &err), 0);
    CHECK_EQ_INT(apply(c, &s2, &r, &err), 0);
    CHECK_EQ_INT(D->rollback(c, &err), 0);
    CHECK_EQ_INT(table_exists("single.db", "s1"), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 0);
    cmig_history_free(&h);

    CHECK_EQ_INT(D->begin(c, &err), 0);
    CHECK_EQ_INT(apply(c, &s1, &r, &err), 0);
    CHECK_EQ_INT(apply(c, &s2, &r, &err), 0);
    /* Inside: history read in the same transaction sees our rows. */
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.n, 2);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->record_bundle(c, "app", "1.0.0", SHA_B, &err), 0);
    CHECK_EQ_INT(D->commit(c, &err), 0);
    CHECK_EQ_INT(table_exists("single.db", "s2"), 1);
    CHECK_EQ_INT(q1("single.db", "SELECT count(*) FROM cmig_history"), 2);
    CHECK_EQ_INT(q1("single.db", "SELECT count(*) FROM cmig_bundles"), 1);

    /* A failure inside: the core rolls back everything. */
    struct cmig_step s3 = mk(CMIG_STEP_UP, 3, "CREATE TABLE s3(x);", CMIG_TX_TRANSACTION);
    struct cmig_step s4 = mk(CMIG_STEP_UP, 4, "CREATE TABLE s3(x);", CMIG_TX_TRANSACTION);
    s3.in_outer_tx = s4.in_outer_tx = 1;
    CHECK_EQ_INT(D->begin(c, &err), 0);
    CHECK_EQ_INT(apply(c, &s3, &r, &err), 0);
    CHECK_EQ_INT(apply(c, &s4, &r, &err), CMIG_E_MIGRATION);
    CHECK_CONTAINS(err.msg, "already exists");
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->rollback(c, &err), 0);
    CHECK_EQ_INT(table_exists("single.db", "s3"), 0);
    CHECK_EQ_INT(q1("single.db", "SELECT count(*) FROM cmig_history"), 2);
    D->close(c);
}

TEST(record_bundle)
{
    struct cmig_conn *c = ready("record.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_history h;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.has_record, 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->record_bundle(c, "app", "1.0.0", SHA_A, &err), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.has_record, 1);
    CHECK_STR(h.record_version, "1.0.0");
    CHECK(memcmp(h.record_manifest_sha256, SHA_A, 32) == 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->record_bundle(c, "app", "1.2.0-rc.1", SHA_B, &err), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_STR(h.record_version, "1.2.0-rc.1");
    CHECK(memcmp(h.record_manifest_sha256, SHA_B, 32) == 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->read_history(c, "other", &h, &err), 0);
    CHECK_EQ_INT(h.has_record, 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(q1("record.db", "SELECT count(*) FROM cmig_bundles"), 1);
    D->close(c);

    /* A tampered hash is reported, not passed on as zeros. */
    CHECK_EQ_INT(x1("record.db", "UPDATE cmig_bundles SET manifest_sha256 = 'xyz'"), SQLITE_OK);
    c = open_db("record.db");
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_INT(D->read_history(c, "app", &h, &err), CMIG_E_DB);
        CHECK_CONTAINS(err.msg, "malformed manifest_sha256");
        CHECK(h.record_version == NULL);
        D->close(c);
    }
}

TEST(golang_migrate_legacy_table)
{
    CHECK_EQ_INT(x1("legacy.db",
                    "CREATE TABLE schema_migrations (version uint64, dirty bool);"
                    "CREATE UNIQUE INDEX version_unique ON schema_migrations (version);"
                    "CREATE TABLE users(id INTEGER);"
                    "INSERT INTO schema_migrations VALUES (3, 0);"),
                 SQLITE_OK);
    struct cmig_conn *c = open_db("legacy.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.schema_present, 0);
    CHECK_EQ_INT(h.legacy_present, 1);
    CHECK_EQ_INT(h.legacy_has_row, 1);
    CHECK_EQ_INT(h.legacy_version, 3);
    CHECK_EQ_INT(h.legacy_dirty, 0);
    cmig_history_free(&h);
    CHECK_EQ_INT(D->lock(c, "app", 1000, &err), 0);
    CHECK_EQ_INT(D->ensure_schema(c, &err), 0);

    struct cmig_step s = mk(CMIG_STEP_UP, 4, "CREATE TABLE t4(x);", CMIG_TX_TRANSACTION);
    s.keep_legacy = 1;
    s.legacy_version = 4;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("legacy.db", "SELECT count(*) FROM schema_migrations"), 1);
    CHECK_EQ_INT(q1("legacy.db", "SELECT version FROM schema_migrations"), 4);
    CHECK_EQ_INT(q1("legacy.db", "SELECT dirty FROM schema_migrations"), 0);

    /* Non-transactional and failing: golang-migrate sees it dirty too. */
    s = mk(CMIG_STEP_UP, 5, "CREATE TABLE t5(x);\nnonsense;", CMIG_TX_NONE);
    s.keep_legacy = 1;
    s.legacy_version = 5;
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.legacy_version, 5);
    CHECK_EQ_INT(h.legacy_dirty, 1);
    cmig_history_free(&h);
    s = mk(CMIG_STEP_FORCE_REMOVE, 5, NULL, CMIG_TX_TRANSACTION);
    s.keep_legacy = 1;
    s.legacy_version = 4;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(q1("legacy.db", "SELECT version FROM schema_migrations"), 4);
    CHECK_EQ_INT(q1("legacy.db", "SELECT dirty FROM schema_migrations"), 0);

    /* Down to nothing: golang-migrate's nil version is an empty table. */
    s = mk(CMIG_STEP_DOWN, 4, "DROP TABLE t4;", CMIG_TX_TRANSACTION);
    s.keep_legacy = 1;
    s.legacy_version = -1;
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.legacy_present, 1);
    CHECK_EQ_INT(h.legacy_has_row, 0);
    cmig_history_free(&h);
    D->close(c);

    /* A text "true" is dirty as well. */
    CHECK_EQ_INT(x1("legacy.db", "INSERT INTO schema_migrations VALUES (9, 'true')"), SQLITE_OK);
    c = open_db("legacy.db");
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
        CHECK_EQ_INT(h.legacy_version, 9);
        CHECK_EQ_INT(h.legacy_dirty, 1);
        cmig_history_free(&h);
        D->close(c);
    }
}

TEST(dbmate_schema_migrations_is_left_alone)
{
    CHECK_EQ_INT(x1("dbmate.db", "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY);"
                                 "INSERT INTO schema_migrations VALUES ('20240101120000');"),
                 SQLITE_OK);
    struct cmig_conn *c = ready("dbmate.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_history h;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
    CHECK_EQ_INT(h.legacy_present, 0);
    cmig_history_free(&h);
    struct cmig_step s = mk(CMIG_STEP_UP, 1, "CREATE TABLE t(x);", CMIG_TX_TRANSACTION);
    s.keep_legacy = 1;
    s.legacy_version = 1;
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_CONFLICT);
    CHECK_CONTAINS(err.msg, "not golang-migrate's");
    CHECK_EQ_INT(table_exists("dbmate.db", "t"), 0);
    CHECK_EQ_INT(q1("dbmate.db", "SELECT count(*) FROM schema_migrations"), 1);
    D->close(c);
}

TEST(lock_between_connections)
{
    struct cmig_conn *a = open_db("lock1.db"), *b = open_db("lock1.db");
    CHECK(a && b);
    if (!a || !b) {
        D->close(a);
        D->close(b);
        return;
    }
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->lock(a, "app", 0, &err), 0);
    CHECK_EQ_INT(D->lock(a, "app", 0, &err), 0); /* already held */
    int64_t t0 = now();
    CHECK_EQ_INT(D->lock(b, "app", 200, &err), CMIG_E_LOCK);
    int64_t took = now() - t0;
    CHECK(took >= 200);
    CHECK(took < 1500);
    CHECK_CONTAINS(err.msg, "lock1.db");
    CHECK_CONTAINS(err.msg, "within 200 ms");
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->lock(b, "app", 0, &err), CMIG_E_LOCK);
    cmig_err_clear(&err);
    g_interrupted = 1;
    t0 = now();
    CHECK_EQ_INT(D->lock(b, "app", 5000, &err), CMIG_E_INTERRUPTED);
    CHECK(now() - t0 < 1000);
    g_interrupted = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->unlock(a, &err), 0);
    CHECK_EQ_INT(D->unlock(a, &err), 0);
    CHECK_EQ_INT(D->lock(b, "app", 1000, &err), 0);
    /* Closing releases it. */
    D->close(b);
    CHECK_EQ_INT(D->lock(a, "app", 1000, &err), 0);
    D->close(a);
}

TEST(lock_between_processes)
{
    int up[2], down[2];
    CHECK_EQ_INT(pipe(up), 0);
    CHECK_EQ_INT(pipe(down), 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct cmig_err err;
        cmig_err_clear(&err);
        struct cmig_conn *c = open_db("lock2.db");
        char ch = c && D->lock(c, "app", 1000, &err) == 0 ? 'L' : 'E';
        if (write(up[1], &ch, 1) != 1)
            _exit(2);
        if (read(down[0], &ch, 1) < 0)
            _exit(2);
        D->close(c);
        _exit(0);
    }
    char ch = 0;
    CHECK_EQ_INT(read(up[0], &ch, 1), 1);
    CHECK_EQ_INT(ch, 'L');
    struct cmig_conn *c = open_db("lock2.db");
    CHECK(c != NULL);
    struct cmig_err err;
    cmig_err_clear(&err);
    int64_t t0 = now();
    if (c)
        CHECK_EQ_INT(D->lock(c, "app", 300, &err), CMIG_E_LOCK);
    int64_t took = now() - t0;
    CHECK(took >= 300);
    CHECK(took < 1300);
    CHECK_CONTAINS(err.msg, "another cmig-run holds it");
    /* The reader path needs no lock: it works meanwhile. */
    struct cmig_history h;
    cmig_err_clear(&err);
    if (c) {
        CHECK_EQ_INT(D->read_history(c, "app", &h, &err), 0);
        cmig_history_free(&h);
    }
    CHECK_EQ_INT(write(down[1], "x", 1), 1);
    int status = -1;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (c)
        CHECK_EQ_INT(D->lock(c, "app", 2000, &err), 0);
    D->close(c);

    /* A holder killed outright releases the lock with its process. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct cmig_err e2;
        cmig_err_clear(&e2);
        struct cmig_conn *k = open_db("lock2.db");
        ch = k && D->lock(k, "app", 1000, &e2) == 0 ? 'L' : 'E';
        if (write(up[1], &ch, 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    CHECK_EQ_INT(read(up[0], &ch, 1), 1);
    CHECK_EQ_INT(ch, 'L');
    c = open_db("lock2.db");
    cmig_err_clear(&err);
    if (c)
        CHECK_EQ_INT(D->lock(c, "app", 50, &err), CMIG_E_LOCK);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    cmig_err_clear(&err);
    if (c)
        CHECK_EQ_INT(D->lock(c, "app", 2000, &err), 0);
    D->close(c);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

/* A child that holds SQLite's write lock (not ours) for hold_ms. */
static pid_t hold_write_lock(const char *file, int hold_ms, int ready_fd)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char path[600];
    pathof(path, sizeof path, file);
    sqlite3 *db = NULL;
    char ch = 'E';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS app_data(x);", NULL, NULL,
                     NULL) == SQLITE_OK)
        ch = 'L';
    if (write(ready_fd, &ch, 1) != 1)
        _exit(2);
    sleep_ms(hold_ms);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    _exit(0);
}

TEST(busy_database_is_waited_for)
{
    struct cmig_conn *c = ready("busy.db");
    CHECK(c != NULL);
    if (!c)
        return;
    int p[2];
    CHECK_EQ_INT(pipe(p), 0);
    pid_t pid = hold_write_lock("busy.db", 400, p[1]);
    char ch = 0;
    CHECK_EQ_INT(read(p[0], &ch, 1), 1);
    CHECK_EQ_INT(ch, 'L');
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_step s = mk(CMIG_STEP_UP, 1, "CREATE TABLE w(x);", CMIG_TX_TRANSACTION);
    int64_t t0 = now();
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    CHECK(now() - t0 >= 250);
    int status;
    waitpid(pid, &status, 0);
    D->close(c);

    /* Bounded by --db-lock-timeout: a lock failure, nothing written. */
    c = open_opts("busy.db", 150, 0);
    CHECK(c != NULL);
    if (!c)
        return;
    cmig_err_clear(&err);
    CHECK_EQ_INT(D->lock(c, "app", 60000, &err), 0);
    pid = hold_write_lock("busy.db", 1500, p[1]);
    CHECK_EQ_INT(read(p[0], &ch, 1), 1);
    s = mk(CMIG_STEP_UP, 2, "CREATE TABLE w2(x);", CMIG_TX_TRANSACTION);
    t0 = now();
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_LOCK);
    CHECK(now() - t0 < 1200);
    CHECK_CONTAINS(err.msg, "database is locked");
    CHECK_CONTAINS(err.msg, "busy.db");
    CHECK_STR(err.native, "sqlite:5");
    waitpid(pid, &status, 0);
    CHECK_EQ_INT(table_exists("busy.db", "w2"), 0);
    CHECK_EQ_INT(q1("busy.db", "SELECT count(*) FROM cmig_history"), 1);
    close(p[0]);
    close(p[1]);
    D->close(c);
}

static void on_alarm(int sig)
{
    (void)sig;
    if (g_alarm_sets_flag)
        g_interrupted = 1;
    D->cancel(g_cancel_conn);
}

static void alarm_in(int ms)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

#define FOREVER                                                                                    \
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c;"

TEST(cancel_and_statement_timeout)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    struct cmig_conn *c = ready("cancel.db");
    CHECK(c != NULL);
    if (!c)
        return;
    struct cmig_err err;
    struct cmig_step_result r;
    struct cmig_step s = mk(CMIG_STEP_UP, 1, "CREATE TABLE cx(x);\n" FOREVER, CMIG_TX_TRANSACTION);
    /* SIGTERM as the core handles it: flag, then cancel. */
    g_cancel_conn = c;
    g_alarm_sets_flag = 1;
    int64_t t0 = now();
    alarm_in(150);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_INTERRUPTED);
    CHECK(now() - t0 < 3000);
    CHECK_EQ_INT(r.statement, 2);
    CHECK_EQ_INT(r.line, 2);
    CHECK_CONTAINS(err.msg, "interrupted");
    g_interrupted = 0;
    CHECK_EQ_INT(table_exists("cancel.db", "cx"), 0);
    CHECK_EQ_INT(q1("cancel.db", "SELECT count(*) FROM cmig_history"), 0);

    /* sqlite3_interrupt alone (no flag): the statement fails. */
    g_alarm_sets_flag = 0;
    alarm_in(150);
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK_STR(err.native, "sqlite:9");
    CHECK_EQ_INT(table_exists("cancel.db", "cx"), 0);
    g_cancel_conn = NULL;
    alarm_in(0);

    /* Nothing sticks: the next step runs. */
    s = mk(CMIG_STEP_UP, 1, "CREATE TABLE cx(x);", CMIG_TX_TRANSACTION);
    CHECK_EQ_INT(apply(c, &s, &r, &err), 0);
    D->close(c);

    /* --statement-timeout through the progress handler. */
    c = open_opts("cancel.db", 0, 150);
    CHECK(c != NULL);
    if (!c)
        return;
    s = mk(CMIG_STEP_UP, 2, "CREATE TABLE cy(x);\n" FOREVER, CMIG_TX_NONE);
    t0 = now();
    CHECK_EQ_INT(apply(c, &s, &r, &err), CMIG_E_MIGRATION);
    CHECK(now() - t0 < 3000);
    CHECK_CONTAINS(err.msg, "statement timeout exceeded (150 ms)");
    CHECK_EQ_INT(r.statement, 2);
    CHECK_EQ_INT(q1("cancel.db", "SELECT dirty FROM cmig_history WHERE version = 2"), 1);
    D->close(c);
    signal(SIGALRM, SIG_DFL);
}

#define STRESS_PROCS 8
#define STRESS_MIGRATIONS 16

/* One racing runner: the core's order, one migration per lock. */
static int stress_child(const char *file, int barrier)
{
    static char sql[STRESS_MIGRATIONS + 1][160];
    char ch;
    if (read(barrier, &ch, 1) != 0) /* start together: EOF when the parent lets go */
        return 1;
    struct cmig_conn *c = open_db(file);
    if (!c)
        return 1;
    int rc = 0;
    for (;;) {
        struct cmig_err err;
        struct cmig_history h;
        cmig_err_clear(&err);
        /* The lock-free fast path first, as every pod start does. */
        if ((rc = D->read_history(c, "app", &h, &err)))
            break;
        size_t done = h.n;
        cmig_history_free(&h);
        if (done == STRESS_MIGRATIONS)
            break;
        if ((rc = D->lock(c, "app", 60000, &err)) || (rc = D->ensure_schema(c, &err)) ||
            (rc = D->read_history(c, "app", &h, &err)))
            break;
        int64_t next = 1;
        for (size_t i = 0; i < h.n && h.rows[i].version == next; i++)
            next++;
        int dirty = 0;
        for (size_t i = 0; i < h.n; i++)
            dirty |= h.rows[i].dirty;
        cmig_history_free(&h);
        if (dirty) {
            rc = 1;
            break;
        }
        if (next <= STRESS_MIGRATIONS) {
            sleep_ms(5); /* planning: widens the window a broken lock would let others in */
            if (next == 1)
                snprintf(sql[next], sizeof sql[next],
                         "CREATE TABLE applied(v INTEGER NOT NULL, pid INTEGER);\n"
                         "INSERT INTO applied VALUES (1, %d);",
                         (int)getpid());
            else
                snprintf(sql[next], sizeof sql[next], "INSERT INTO applied VALUES (%lld, %d);",
                         (long long)next, (int)getpid());
            struct cmig_step s = mk(CMIG_STEP_UP, next, sql[next],
                                    next % 4 == 0 ? CMIG_TX_NONE : CMIG_TX_TRANSACTION);
            struct cmig_step_result r;
            if ((rc = apply(c, &s, &r, &err)))
                break;
        }
        if ((rc = D->unlock(c, &err)))
            break;
        sleep_ms(20 + getpid() % 30); /* let the waiters (polling) in */
    }
    D->close(c);
    return rc ? 1 : 0;
}

static void stress(const char *file)
{
    pid_t pids[STRESS_PROCS];
    int barrier[2];
    CHECK_EQ_INT(pipe(barrier), 0);
    fflush(stdout);
    for (int i = 0; i < STRESS_PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(barrier[1]);
            _exit(stress_child(file, barrier[0]));
        }
        CHECK(pids[i] > 0);
    }
    close(barrier[0]);
    close(barrier[1]);
    for (int i = 0; i < STRESS_PROCS; i++) {
        int status = -1;
        if (pids[i] > 0) {
            CHECK_EQ_INT(waitpid(pids[i], &status, 0), pids[i]);
            CHECK(WIFEXITED(status));
            CHECK_EQ_INT(WEXITSTATUS(status), 0);
        }
    }
    CHECK_EQ_INT(q1(file, "SELECT count(*) FROM applied"), STRESS_MIGRATIONS);
    CHECK_EQ_INT(q1(file, "SELECT count(DISTINCT v) FROM applied"), STRESS_MIGRATIONS);
    CHECK_EQ_INT(q1(file, "SELECT count(*) FROM cmig_history WHERE dirty = 0"), STRESS_MIGRATIONS);
    /* Informational: how many runners got to apply something. */
    printf("#   %s: %lld distinct processes applied migrations\n", file,
           q1(file, "SELECT count(DISTINCT pid) FROM applied"));
}

TEST(exactly_once_under_contention)
{
    stress("stress.db");
}

/* The file's journal mode is kept: the same race in WAL mode. */
TEST(exactly_once_under_contention_wal)
{
    CHECK_EQ_INT(x1("stress-wal.db", "PRAGMA journal_mode = WAL"), SQLITE_OK);
    stress("stress-wal.db");
    CHECK_EQ_INT(q1("stress-wal.db", "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    SUITE("drv_sqlite");
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/cmig-sqlite-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (int i = 0; i < 32; i++) {
        SHA_A[i] = (uint8_t)(i * 7 + 1);
        SHA_B[i] = (uint8_t)(0xff - i);
    }
    RUN(driver_table);
    RUN(url_forms);
    RUN(history_on_empty_and_missing_file);
    RUN(up_and_down);
    RUN(sqlite_grammar_splits_triggers);
    RUN(failing_transactional_migration_rolls_back);
    RUN(failing_nontransactional_migration_stays_dirty);
    RUN(nontransactional_vacuum_and_own_transactions);
    RUN(baseline);
    RUN(single_transaction);
    RUN(record_bundle);
    RUN(golang_migrate_legacy_table);
    RUN(dbmate_schema_migrations_is_left_alone);
    RUN(lock_between_connections);
    RUN(lock_between_processes);
    RUN(busy_database_is_waited_for);
    RUN(cancel_and_statement_timeout);
    RUN(exactly_once_under_contention);
    RUN(exactly_once_under_contention_wal);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return harness_done();
}
