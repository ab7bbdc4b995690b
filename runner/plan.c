/*
 * plan.c - the rules that decide whether a bundle may touch a database.
 *
 * Order matters and is the documented one: a dirty database is refused
 * first (nothing else can be trusted), then drift (an applied migration
 * whose file changed), then the per-bundle record (same version with
 * another manifest; an older bundle meeting a newer database), then
 * migrations the database has but the bundle lacks, then out-of-order
 * pending migrations. Every refusal lists the versions concerned.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const struct cmig_applied *history_find(const struct cmig_history *h, int64_t version)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->rows[mid].version == version)
            return &h->rows[mid];
        if (h->rows[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Appends ", 3 'name'" style items to a bounded list. */
struct list {
    char text[700];
    size_t used;
    size_t count;
};

static void list_add(struct list *l, int64_t version, const char *name, const char *extra)
{
    l->count++;
    if (l->used >= sizeof l->text - 1)
        return;
    int w = snprintf(l->text + l->used, sizeof l->text - l->used, "%s%lld '%s'%s",
                     l->count > 1 ? ", " : "", (long long)version, name, extra ? extra : "");
    if (w > 0)
        l->used += (size_t)w;
    if (l->used >= sizeof l->text - 1) {
        l->used = sizeof l->text - 1;
        memcpy(l->text + sizeof l->text - 5, "...", 4);
    }
}

static int refuse(struct plan *p, struct cmig_err *err, const char *fmt, const char *a,
                  const char *b)
{
    p->verdict = PLAN_REFUSED;
    return cmig_err_set(err, CMIG_E_CONFLICT, fmt, a, b);
}

int plan_compute(struct plan *p, const struct cmig_manifest *m, const uint8_t manifest_sha256[32],
                 const struct cmig_history *h, int64_t to, int strict, struct cmig_err *err)
{
    memset(p, 0, sizeof *p);
    struct list l = {.used = 0, .count = 0};
    l.text[0] = '\0';
    char buf[128];

    /* 1. dirty */
    for (size_t i = 0; i < h->n; i++)
        if (h->rows[i].dirty)
            list_add(&l, h->rows[i].version, h->rows[i].name, NULL);
    if (l.count) {
        snprintf(buf, sizeof buf, "%zu", l.count);
        return refuse(p, err,
                      "database is dirty: migration %s did not finish; repair the database by "
                      "hand, then run 'cmig-run force VERSION' (%s dirty)",
                      l.text, buf);
    }

    /* 2. drift */
    for (size_t i = 0; i < h->n; i++) {
        const struct cmig_migration *mg = cmig_manifest_find(m, h->rows[i].version);
        if (mg && memcmp(mg->up.sha256, h->rows[i].sha256, 32) != 0) {
            char hex_db[65], hex_b[65], extra[64];
            cmig_hex32(h->rows[i].sha256, hex_db);
            cmig_hex32(mg->up.sha256, hex_b);
            snprintf(extra, sizeof extra, " (database %.12s, bundle %.12s)", hex_db, hex_b);
            list_add(&l, mg->version, mg->name, extra);
        }
    }
    if (l.count)
        return refuse(p, err,
                      "migrations changed after they were applied: %s%s; a released migration "
                      "must never be edited: add a new one",
                      l.text, "");

    /* 3. the per-bundle record */
    int older = 0;
    if (h->has_record && h->record_version) {
        struct cmig_semver rec;
        struct cmig_err ignored;
        cmig_err_clear(&ignored);
        int parsed =
            cmig_semver_parse(&rec, h->record_version, strlen(h->record_version), &ignored) == 0;
        if (strcmp(h->record_version, m->version.text) == 0) {
            if (memcmp(h->record_manifest_sha256, manifest_sha256, 32) != 0)
                return refuse(p, err,
                              "bundle version %s was already applied from a different manifest "
                              "(%s); a released version must never be rebuilt with other "
                              "contents",
                              m->version.text, "manifest hash differs");
        } else if (parsed && cmig_semver_cmp(&m->version, &rec) < 0) {
            older = 1;
        } else if (parsed && cmig_semver_cmp(&m->version, &rec) > 0) {
            p->record_needed = 1;
        }
    } else {
        p->record_needed = 1;
    }

    /* 4. migrations the database has and the bundle lacks */
    for (size_t i = 0; i < h->n; i++)
        if (!cmig_manifest_find(m, h->rows[i].version))
            list_add(&l, h->rows[i].version, h->rows[i].name, NULL);
    if (l.count && !older)
        return refuse(p, err,
                      "the database has migrations this bundle does not know: %s%s (is a "
                      "migration missing from the bundle?)",
                      l.text, "");
    l.count = 0;
    l.used = 0;
    l.text[0] = '\0';

    /* golang-migrate adoption: no cmig rows yet, schema_migrations present */
    int64_t adopt_to = -1;
    if (h->n == 0 && h->legacy_present && h->legacy_has_row && !h->other_bundles) {
        if (h->legacy_dirty) {
            snprintf(buf, sizeof buf, "%lld", (long long)h->legacy_version);
            return refuse(p, err,
                          "golang-migrate's schema_migrations is dirty at version %s; fix it "
                          "with golang-migrate's force first%s",
                          buf, "");
        }
        adopt_to = h->legacy_version;
    }

    p->pending = calloc(m->n ? m->n : 1, sizeof *p->pending);
    p->adopt = calloc(m->n ? m->n : 1, sizeof *p->adopt);
    if (!p->pending || !p->adopt)
        return cmig_err_nomem(err);
    int64_t highest = h->n ? h->rows[h->n - 1].version : -1;
    size_t not_applied_total = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        if (history_find(h, mg->version)) {
            p->n_applied++;
            continue;
        }
        if (adopt_to >= 0 && mg->version <= adopt_to) {
            p->adopt[p->n_adopt++] = mg;
            continue;
        }
        not_applied_total++;
        if (mg->version < highest)
            list_add(&l, mg->version, mg->name, NULL);
        if (to >= 0 && mg->version > to)
            continue;
        p->pending[p->n_pending++] = mg;
    }
    p->adopt_version = adopt_to;

    /* 5. rollback: an older bundle meeting a newer database */
    if (older) {
        if (not_applied_total == 0 && p->n_adopt == 0) {
            if (strict)
                return refuse(p, err,
                              "bundle %s is older than the version the database is at (%s) and "
                              "--strict is set",
                              m->version.text, h->record_version);
            p->verdict = PLAN_ROLLBACK;
            p->n_pending = 0;
            p->record_needed = 0;
            return 0;
        }
        return refuse(p, err,
                      "bundle %s is older than the version the database is at (%s), and has "
                      "migrations the database never applied",
                      m->version.text, h->record_version);
    }

    /* 6. out of order */
    if (l.count)
        return refuse(p, err,
                      "migrations numbered below the highest applied one were never applied "
                      "(out of order): %s%s",
                      l.text, "");
    p->complete_after = not_applied_total == p->n_pending;
    if (!p->complete_after)
        p->record_needed = 0;
    p->verdict = PLAN_OK;
    return 0;
}

void plan_free(struct plan *p)
{
    free(p->pending);
    free(p->adopt);
    p->pending = NULL;
    p->adopt = NULL;
}
