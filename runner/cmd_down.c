/*
 * cmd_down.c - `cmig-run down --to VERSION`: revert applied migrations
 * above VERSION, newest first, with the bundle's down files.
 *
 * Only ever explicit: there is no default target. Every migration to be
 * reverted must be in the bundle, unchanged, and have a down file, or
 * nothing is reverted at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "run.h"

struct down_item {
    const struct cmig_migration *mg;
    uint8_t *sql;
    size_t len;
};

struct down_set {
    struct down_item *items; /* ascending by version */
    size_t n;
};

static struct down_item *find_item(struct down_set *d, const struct cmig_migration *mg)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].mg == mg)
            return &d->items[i];
    return NULL;
}

static int want_down(void *ctx, const struct cmig_migration *mg, int is_down)
{
    return is_down && find_item(ctx, mg) != NULL;
}

static int keep_down(void *ctx, const struct cmig_migration *mg, int is_down, const uint8_t *data,
                     size_t len, struct cmig_err *err)
{
    (void)is_down;
    struct down_item *it = find_item(ctx, mg);
    it->sql = malloc(len ? len : 1);
    if (!it->sql)
        return cmig_err_nomem(err);
    memcpy(it->sql, data, len);
    it->len = len;
    return 0;
}

static int collect(struct down_set *d, const struct session *s, const struct cmig_history *h,
                   int64_t to, struct cmig_err *err)
{
    d->items = calloc(h->n ? h->n : 1, sizeof *d->items);
    if (!d->items)
        return cmig_err_nomem(err);
    for (size_t i = 0; i < h->n; i++) {
        const struct cmig_applied *row = &h->rows[i];
        if (row->version <= to)
            continue;
        if (row->dirty)
            return cmig_err_set(err, CMIG_E_CONFLICT,
                                "migration %lld '%s' is dirty; repair it and run 'cmig-run "
                                "force' first",
                                (long long)row->version, row->name);
        const struct cmig_migration *mg = cmig_manifest_find(s->m, row->version);
        if (!mg)
            return cmig_err_set(err, CMIG_E_CONFLICT,
                                "applied migration %lld '%s' is not in bundle %s %s; cannot "
                                "revert it",
                                (long long)row->version, row->name, s->m->name, s->m->version.text);
        if (memcmp(mg->up.sha256, row->sha256, 32) != 0)
            return cmig_err_set(err, CMIG_E_CONFLICT,
                                "migration %lld '%s' changed after it was applied; refusing to "
                                "revert it with this bundle",
                                (long long)mg->version, mg->name);
        if (!mg->down.path)
            return cmig_err_set(err, CMIG_E_CONFLICT,
                                "migration %lld '%s' has no down migration in the bundle",
                                (long long)mg->version, mg->name);
        d->items[d->n++].mg = mg;
    }
    return 0;
}

static void free_set(struct down_set *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].sql);
    free(d->items);
}

int cmd_down(struct run_config *cfg)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err;
    struct cmig_history h;
    struct down_set d = {NULL, 0};
    const char *event = "run.failed";
    int rc;
    cmig_err_clear(&err);
    memset(&h, 0, sizeof h);
    if (!cfg->have_to) {
        cmig_err_set(&err, CMIG_E_USAGE, "down needs --to VERSION (use --to 0 to revert all)");
        return run_fail(cfg, "usage", &err);
    }
    if ((rc = session_bundle(&s, BUNDLE_MANIFEST, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if ((rc = session_connect(&s, &err)) || (rc = session_lock(&s, &err)) ||
        (rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    if ((rc = collect(&d, &s, &h, cfg->to, &err))) {
        event = "run.refused";
        goto fail;
    }
    if (d.n == 0) {
        LOGF(LOG_INFO, "run.finished", "%s %s: nothing to revert above %lld", s.m->name,
             s.m->version.text, (long long)cfg->to);
        goto done;
    }
    if ((rc = cmig_bundle_each_file(s.bundle, want_down, keep_down, &d, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    for (size_t k = d.n; k-- > 0;) {
        const struct down_item *it = &d.items[k];
        const struct cmig_migration *mg = it->mg;
        struct cmig_step st;
        struct cmig_step_result r;
        memset(&st, 0, sizeof st);
        memset(&r, 0, sizeof r);
        st.kind = CMIG_STEP_DOWN;
        st.bundle = s.m->name;
        st.bundle_version = s.m->version.text;
        st.runner_version = RUNNER_VERSION;
        st.version = mg->version;
        st.name = mg->name;
        st.sha256 = mg->up.sha256;
        st.sql = (const char *)it->sql;
        st.len = it->len;
        st.tx = mg->down.tx;
        if (cfg->keep_golang_migrate && h.legacy_present) {
            st.keep_legacy = 1;
            st.legacy_version = -1;
            for (size_t j = 0; j < h.n; j++)
                if (h.rows[j].version < mg->version)
                    st.legacy_version = h.rows[j].version;
        }
        if (run_interrupted) {
            rc = cmig_err_set(&err, CMIG_E_INTERRUPTED, "interrupted");
            goto fail;
        }
        if ((rc = s.drv->apply(s.conn, &st, &r, &err))) {
            migration_error_context(&err, mg, &mg->down, &r);
            goto fail;
        }
        LOGV(LOG_INFO, "migration.reverted",
             (FI("version", mg->version), FS("name", mg->name), FI("ms", r.execution_ms)),
             "reverted migration %lld '%s' in %lld ms", (long long)mg->version, mg->name,
             (long long)r.execution_ms);
    }
    LOGV(LOG_INFO, "run.finished",
         (FS("bundle", s.m->name), FI("reverted", d.n), FI("ms", now_ms() - s.t0_ms)),
         "%s %s: reverted %zu migration%s down to %lld", s.m->name, s.m->version.text, d.n,
         d.n == 1 ? "" : "s", (long long)cfg->to);
done:
    free_set(&d);
    cmig_history_free(&h);
    session_end(&s);
    return RUN_OK;
fail:
    free_set(&d);
    cmig_history_free(&h);
    session_end(&s);
    return run_fail(cfg, event, &err);
}
