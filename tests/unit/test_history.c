/*
 * test_history.c - unit tests for comparing releases (format/history.c):
 * the append-only rule behind `build --previous` and the walk behind
 * `cmig-bundle diff`.
 *
 * A database that applied release N trusts release N+1 only because of
 * this rule, so every way of breaking it is tried here, alone and
 * together, and each must be named in the message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/build.h"
#include "cmig/err.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"
#include "harness.h"
#include "manifest_fixture.h"

/* One migration: version, name, up content id, down content id (0: no
 * down). Equal ids mean equal files. */
struct spec {
    int64_t version;
    const char *name;
    int up;
    int down;
};

static void file_for(struct cmig_file *f, int64_t version, int is_down, int id)
{
    char path[96];
    snprintf(path, sizeof path, "migrations/%lld.%s.sql", (long long)version,
             is_down ? "down" : "up");
    f->path = fixture_strdup(path);
    f->size = 100 + (uint64_t)id;
    memset(f->sha256, id, 32);
    f->tx = CMIG_TX_TRANSACTION;
    f->tx_reason = fixture_strdup("");
    f->source = fixture_strdup(path + 11);
}

static struct cmig_manifest *mk(const char *name, const char *version, const struct spec *s,
                                size_t n)
{
    struct cmig_manifest *m = fixture_manifest(name, version, "golang-migrate", "test", n);
    for (size_t i = 0; i < n; i++) {
        struct cmig_migration *mg = &m->migrations[i];
        mg->version = s[i].version;
        mg->name = fixture_strdup(s[i].name);
        file_for(&mg->up, s[i].version, 0, s[i].up);
        if (s[i].down)
            file_for(&mg->down, s[i].version, 1, s[i].down);
    }
    return m;
}

#define MK(name, version, ...)                                                                     \
    mk(name, version, (const struct spec[]){__VA_ARGS__},                                          \
       sizeof((const struct spec[]){__VA_ARGS__}) / sizeof(struct spec))

static const struct spec BASE[] = {{1, "a", 1, 2}, {2, "b", 3, 0}, {5, "c", 4, 5}};
#define OLD() mk("app", "1.0.0", BASE, 3)

/* Runs the append-only check; returns the code, err holds the message. */
static int check(const struct cmig_manifest *old, const struct cmig_manifest *cur,
                 struct cmig_err *err)
{
    cmig_err_clear(err);
    return cmig_check_append_only(old, cur, err);
}

/* ---- cmig_check_append_only --------------------------------------------- */

TEST(append_ok)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *same = MK("app", "1.0.1", {1, "a", 1, 2}, {2, "b", 3, 0}, {5, "c", 4, 5});
    struct cmig_manifest *more = MK("app", "2.0.0", {1, "a", 1, 2}, {2, "b", 3, 0}, {5, "c", 4, 5},
                                    {6, "d", 6, 0}, {9000000000000, "e", 7, 8});
    CHECK_EQ_INT(check(old, same, &err), 0);
    CHECK_STR(err.msg, "");
    CHECK_EQ_INT(check(old, more, &err), 0);
    /* From an empty release, anything goes (version 0 included). */
    struct cmig_manifest *empty = mk("app", "0.1.0", NULL, 0);
    struct cmig_manifest *zero = MK("app", "0.2.0", {0, "z", 1, 0});
    CHECK_EQ_INT(check(empty, zero, &err), 0);
    CHECK_EQ_INT(check(empty, old, &err), 0);
    cmig_manifest_free(old);
    cmig_manifest_free(same);
    cmig_manifest_free(more);
    cmig_manifest_free(empty);
    cmig_manifest_free(zero);
}

TEST(refuse_removed)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur = MK("app", "1.1.0", {1, "a", 1, 2}, {5, "c", 4, 5});
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "not an append-only release of app 1.0.0 (1 problem): "
                            "migration 2 'b' was removed");
    cmig_manifest_free(cur);
    /* Removing the last one is no different. */
    cur = MK("app", "1.1.0", {1, "a", 1, 2}, {2, "b", 3, 0});
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "migration 5 'c' was removed");
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(refuse_changed)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct {
        struct cmig_manifest *cur;
        const char *needle;
    } cases[] = {
        {MK("app", "1.1.0", {1, "a", 9, 2}, {2, "b", 3, 0}, {5, "c", 4, 5}),
         "(1 problem): migration 1 'a' changed (up)"},
        {MK("app", "1.1.0", {1, "a", 1, 9}, {2, "b", 3, 0}, {5, "c", 4, 5}),
         "migration 1 'a' changed (down)"},
        {MK("app", "1.1.0", {1, "A", 1, 2}, {2, "b", 3, 0}, {5, "c", 4, 5}),
         "migration 1 'a' changed (name)"},
        {MK("app", "1.1.0", {1, "a", 1, 2}, {2, "b", 3, 0}, {5, "x", 8, 9}),
         "migration 5 'c' changed (name+up+down)"},
        /* A down added to a migration that had none, or taken away. */
        {MK("app", "1.1.0", {1, "a", 1, 2}, {2, "b", 3, 7}, {5, "c", 4, 5}),
         "migration 2 'b' changed (down)"},
        {MK("app", "1.1.0", {1, "a", 1, 0}, {2, "b", 3, 0}, {5, "c", 4, 5}),
         "migration 1 'a' changed (down)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(check(old, cases[i].cur, &err), CMIG_E_HISTORY);
        CHECK_CONTAINS(err.msg, cases[i].needle);
        cmig_manifest_free(cases[i].cur);
    }
    cmig_manifest_free(old);
}

/* Same hash, other size: still a change (sizes are part of the file). */
TEST(refuse_size_only_change)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur = mk("app", "1.0.1", BASE, 3);
    cur->migrations[0].up.size++;
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "migration 1 'a' changed (up)");
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(refuse_out_of_order_add)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur = MK("app", "1.1.0", {1, "a", 1, 2}, {2, "b", 3, 0},
                                   {3, "late", 6, 0}, {5, "c", 4, 5}, {6, "d", 7, 0});
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "(1 problem): new migration 3 'late' is numbered below the "
                            "previous release's highest (5)");
    cmig_manifest_free(cur);
    /* Below the lowest too. */
    cur = MK("app", "1.1.0", {0, "zero", 6, 0}, {1, "a", 1, 2}, {2, "b", 3, 0}, {5, "c", 4, 5});
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "new migration 0 'zero' is numbered below");
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(refuse_version_not_greater)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    const char *versions[] = {"1.0.0", "0.9.9", "1.0.0-rc.1", "1.0.0+build.2"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct cmig_manifest *cur = mk("app", versions[i], BASE, 3);
        char want[128];
        snprintf(want, sizeof want,
                 "(1 problem): version %s is not greater than the previous release's 1.0.0",
                 versions[i]);
        CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
        CHECK_CONTAINS(err.msg, want);
        cmig_manifest_free(cur);
    }
    cmig_manifest_free(old);
}

/* Build metadata does not count in SemVer precedence: a release that only
 * changes it is not a newer release. */
TEST(build_metadata_only)
{
    struct cmig_err err;
    struct cmig_manifest *old = mk("app", "1.0.0+a", BASE, 3);
    struct cmig_manifest *cur = mk("app", "1.0.0+b", BASE, 3);
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "version 1.0.0+b is not greater than the previous release's 1.0.0+a");
    cmig_manifest_free(cur);
    /* A pre-release is older than its release. */
    cmig_manifest_free(old);
    old = mk("app", "1.0.0-rc.1", BASE, 3);
    cur = mk("app", "1.0.0", BASE, 3);
    CHECK_EQ_INT(check(old, cur, &err), 0);
    CHECK_EQ_INT(check(cur, old, &err), CMIG_E_HISTORY);
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(refuse_other_bundle)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur = mk("shop", "2.0.0", BASE, 3);
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_STR(err.msg, "previous release is bundle 'app', not 'shop'");
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(several_problems)
{
    struct cmig_err err;
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur =
        MK("app", "1.0.0", {1, "a", 9, 2}, {3, "late", 6, 0}, {5, "c", 4, 5});
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_STR(err.msg, "not an append-only release of app 1.0.0 (4 problems): version 1.0.0 is not "
                       "greater than the previous release's 1.0.0; migration 1 'a' changed (up); "
                       "migration 2 'b' was removed; new migration 3 'late' is numbered below the "
                       "previous release's highest (5)");
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

/* Hundreds of problems: the message is cut to fit, the count is not. */
TEST(many_problems_fit)
{
    struct cmig_err err;
    struct spec s[400];
    char names[400][24];
    for (int i = 0; i < 400; i++) {
        snprintf(names[i], sizeof names[i], "migration_%d", i);
        s[i] = (struct spec){i + 1, names[i], i + 1, 0};
    }
    struct cmig_manifest *old = mk("app", "1.0.0", s, 400);
    struct cmig_manifest *cur = mk("app", "2.0.0", NULL, 0);
    CHECK_EQ_INT(check(old, cur, &err), CMIG_E_HISTORY);
    CHECK_CONTAINS(err.msg, "(400 problems): migration 1 'migration_0' was removed; ");
    CHECK(strlen(err.msg) < sizeof err.msg);
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

/* ---- cmig_manifest_diff / cmig_diff_what --------------------------------- */

struct seen {
    int n;
    enum cmig_diff_kind kind[16];
    int64_t version[16];
    char what[16][32];
    int bad_pointers;
};

static void record(void *ctx, enum cmig_diff_kind kind, const struct cmig_migration *a,
                   const struct cmig_migration *b)
{
    struct seen *s = ctx;
    if (s->n >= 16)
        return;
    s->kind[s->n] = kind;
    s->what[s->n][0] = '\0';
    switch (kind) {
    case CMIG_DIFF_ADDED:
        s->bad_pointers += a != NULL || b == NULL;
        s->version[s->n] = b ? b->version : -1;
        break;
    case CMIG_DIFF_REMOVED:
        s->bad_pointers += a == NULL || b != NULL;
        s->version[s->n] = a ? a->version : -1;
        break;
    case CMIG_DIFF_CHANGED:
        s->bad_pointers += a == NULL || b == NULL || (a && b && a->version != b->version);
        s->version[s->n] = a ? a->version : -1;
        if (a && b)
            cmig_diff_what(a, b, s->what[s->n], sizeof s->what[s->n]);
        break;
    }
    s->n++;
}

TEST(diff_lists_every_difference_in_order)
{
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *cur = MK("app", "0.1.0", {0, "first", 1, 0}, {1, "a", 1, 2},
                                   {3, "mid", 6, 0}, {5, "c", 4, 9}, {7, "end", 7, 0});
    struct seen s;
    memset(&s, 0, sizeof s);
    size_t n = cmig_manifest_diff(old, cur, record, &s);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(s.n, 5);
    CHECK_EQ_INT(s.bad_pointers, 0);
    CHECK(s.kind[0] == CMIG_DIFF_ADDED && s.version[0] == 0);
    CHECK(s.kind[1] == CMIG_DIFF_REMOVED && s.version[1] == 2);
    CHECK(s.kind[2] == CMIG_DIFF_ADDED && s.version[2] == 3);
    CHECK(s.kind[3] == CMIG_DIFF_CHANGED && s.version[3] == 5);
    CHECK_STR(s.what[3], "down");
    CHECK(s.kind[4] == CMIG_DIFF_ADDED && s.version[4] == 7);

    /* Nothing differs: no calls. Versions and names of the bundles do not
     * matter to the diff. */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(cmig_manifest_diff(old, old, record, &s), 0);
    CHECK_EQ_INT(s.n, 0);
    /* Reversed: additions become removals. */
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(cmig_manifest_diff(cur, old, record, &s), 5);
    CHECK(s.kind[0] == CMIG_DIFF_REMOVED && s.kind[1] == CMIG_DIFF_ADDED);
    CHECK_EQ_INT(s.bad_pointers, 0);
    cmig_manifest_free(cur);
    cmig_manifest_free(old);
}

TEST(diff_against_empty)
{
    struct cmig_manifest *old = OLD();
    struct cmig_manifest *empty = mk("app", "1.0.0", NULL, 0);
    struct seen s;
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(cmig_manifest_diff(empty, old, record, &s), 3);
    CHECK(s.kind[0] == CMIG_DIFF_ADDED && s.kind[2] == CMIG_DIFF_ADDED);
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(cmig_manifest_diff(old, empty, record, &s), 3);
    CHECK(s.kind[0] == CMIG_DIFF_REMOVED && s.kind[2] == CMIG_DIFF_REMOVED);
    CHECK_EQ_INT(cmig_manifest_diff(empty, empty, record, &s), 0);
    cmig_manifest_free(empty);
    cmig_manifest_free(old);
}

TEST(diff_what)
{
    struct cmig_manifest *a = MK("app", "1.0.0", {1, "x", 1, 2});
    struct cmig_manifest *b = MK("app", "1.0.0", {1, "y", 3, 4});
    struct cmig_manifest *c = MK("app", "1.0.0", {1, "x", 1, 0});
    char buf[32];
    cmig_diff_what(&a->migrations[0], &a->migrations[0], buf, sizeof buf);
    CHECK_STR(buf, "");
    cmig_diff_what(&a->migrations[0], &b->migrations[0], buf, sizeof buf);
    CHECK_STR(buf, "name+up+down");
    cmig_diff_what(&a->migrations[0], &c->migrations[0], buf, sizeof buf);
    CHECK_STR(buf, "down");
    /* A short buffer is cut, never overrun, and stays terminated. */
    memset(buf, '#', sizeof buf);
    cmig_diff_what(&a->migrations[0], &b->migrations[0], buf, 6);
    CHECK_STR(buf, "name+");
    CHECK(buf[6] == '#');
    cmig_diff_what(&a->migrations[0], &b->migrations[0], buf, 1);
    CHECK_STR(buf, "");
    cmig_manifest_free(a);
    cmig_manifest_free(b);
    cmig_manifest_free(c);
}

int main(void)
{
    SUITE("test_history");
    RUN(append_ok);
    RUN(refuse_removed);
    RUN(refuse_changed);
    RUN(refuse_size_only_change);
    RUN(refuse_out_of_order_add);
    RUN(refuse_version_not_greater);
    RUN(build_metadata_only);
    RUN(refuse_other_bundle);
    RUN(several_problems);
    RUN(many_problems_fit);
    RUN(diff_lists_every_difference_in_order);
    RUN(diff_against_empty);
    RUN(diff_what);
    return harness_done();
}
