/*
 * history.c - comparing two releases of a bundle.
 *
 * The append-only rule is what lets a database that applied release N trust
 * release N+1: nothing it already ran may disappear or change, and nothing
 * new may slip in below what it has seen. Both `cmig-bundle diff` and
 * `cmig-bundle build --previous` use the same walk, so they cannot disagree.
 */
#include <stdio.h>
#include <string.h>

#include "cmig/build.h"

static int file_same(const struct cmig_file *a, const struct cmig_file *b)
{
    if (!a->path || !b->path)
        return !a->path && !b->path;
    return a->size == b->size && memcmp(a->sha256, b->sha256, 32) == 0;
}

void cmig_diff_what(const struct cmig_migration *a, const struct cmig_migration *b, char *buf,
                    size_t cap)
{
    buf[0] = '\0';
    const char *parts[3];
    int n = 0;
    if (strcmp(a->name, b->name) != 0)
        parts[n++] = "name";
    if (!file_same(&a->up, &b->up))
        parts[n++] = "up";
    if (!file_same(&a->down, &b->down))
        parts[n++] = "down";
    size_t used = 0;
    for (int i = 0; i < n && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? "+" : "", parts[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

size_t cmig_manifest_diff(const struct cmig_manifest *old, const struct cmig_manifest *cur,
                          void (*fn)(void *ctx, enum cmig_diff_kind kind,
                                     const struct cmig_migration *old_m,
                                     const struct cmig_migration *new_m),
                          void *ctx)
{
    size_t i = 0, j = 0, count = 0;
    /* A merge of the two lists, both sorted by version. */
    while (i < old->n || j < cur->n) {
        if (j == cur->n ||
            (i < old->n && old->migrations[i].version < cur->migrations[j].version)) {
            fn(ctx, CMIG_DIFF_REMOVED, &old->migrations[i], NULL);
            count++;
            i++;
        } else if (i == old->n || cur->migrations[j].version < old->migrations[i].version) {
            fn(ctx, CMIG_DIFF_ADDED, NULL, &cur->migrations[j]);
            count++;
            j++;
        } else {
            const struct cmig_migration *a = &old->migrations[i], *b = &cur->migrations[j];
            if (strcmp(a->name, b->name) != 0 || !file_same(&a->up, &b->up) ||
                !file_same(&a->down, &b->down)) {
                fn(ctx, CMIG_DIFF_CHANGED, a, b);
                count++;
            }
            i++;
            j++;
        }
    }
    return count;
}

struct violations {
    char msg[CMIG_ERR_MSG_MAX];
    size_t used;
    size_t count;
    int64_t old_highest;
    const char *old_version;
};

static void add_violation(struct violations *v, const char *fmt, long long version,
                          const char *name, const char *extra)
{
    v->count++;
    if (v->used >= sizeof v->msg - 1)
        return;
    int w = snprintf(v->msg + v->used, sizeof v->msg - v->used, "%s", v->count > 1 ? "; " : "");
    if (w > 0)
        v->used += (size_t)w;
    if (v->used < sizeof v->msg - 1) {
        w = snprintf(v->msg + v->used, sizeof v->msg - v->used, fmt, version, name, extra);
        if (w > 0)
            v->used += (size_t)w;
    }
    if (v->used > sizeof v->msg - 1)
        v->used = sizeof v->msg - 1;
}

static void on_diff(void *ctx, enum cmig_diff_kind kind, const struct cmig_migration *a,
                    const struct cmig_migration *b)
{
    struct violations *v = ctx;
    char what[32];
    switch (kind) {
    case CMIG_DIFF_REMOVED:
        add_violation(v, "migration %lld '%s' was removed%s", (long long)a->version, a->name, "");
        break;
    case CMIG_DIFF_CHANGED:
        cmig_diff_what(a, b, what, sizeof what);
        add_violation(v, "migration %lld '%s' changed (%s)", (long long)a->version, a->name, what);
        break;
    case CMIG_DIFF_ADDED:
        if (b->version < v->old_highest) {
            char extra[96];
            snprintf(extra, sizeof extra, "%lld", (long long)v->old_highest);
            add_violation(v,
                          "new migration %lld '%s' is numbered below the previous release's "
                          "highest (%s)",
                          (long long)b->version, b->name, extra);
        }
        break;
    }
}

int cmig_check_append_only(const struct cmig_manifest *old, const struct cmig_manifest *cur,
                           struct cmig_err *err)
{
    struct violations v = {.used = 0, .count = 0, .old_version = old->version.text};
    v.msg[0] = '\0';
    v.old_highest = old->n ? old->migrations[old->n - 1].version : -1;
    if (strcmp(old->name, cur->name) != 0)
        return cmig_err_set(err, CMIG_E_HISTORY, "previous release is bundle '%s', not '%s'",
                            old->name, cur->name);
    if (cmig_semver_cmp(&cur->version, &old->version) <= 0) {
        char extra[CMIG_SEMVER_MAX + 1];
        snprintf(extra, sizeof extra, "%s", old->version.text);
        v.count++;
        v.used = (size_t)snprintf(v.msg, sizeof v.msg,
                                  "version %s is not greater than the previous release's %s",
                                  cur->version.text, extra);
    }
    cmig_manifest_diff(old, cur, on_diff, &v);
    if (v.count == 0)
        return 0;
    return cmig_err_set(err, CMIG_E_HISTORY,
                        "not an append-only release of %s %s (%zu problem%s): %s", old->name,
                        old->version.text, v.count, v.count == 1 ? "" : "s", v.msg);
}
