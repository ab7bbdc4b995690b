/*
 * cmd_baseline.c - `cmig-run baseline VERSION`: adopt a database whose
 * schema already holds the bundle's migrations up to VERSION, by recording
 * them as applied without running them. Only on a database with no cmig
 * history for this bundle: baselining over real history would hide it.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "run.h"

int parse_version_arg(const char *s, int64_t *out, struct cmig_err *err);

int cmd_baseline(struct run_config *cfg)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err;
    struct cmig_history h;
    int64_t v = 0;
    const char *event = "baseline.failed";
    int rc;
    size_t n = 0;
    cmig_err_clear(&err);
    memset(&h, 0, sizeof h);
    if ((rc = parse_version_arg(cfg->arg, &v, &err)))
        return run_fail(cfg, "usage", &err);
    if ((rc = session_bundle(&s, BUNDLE_MANIFEST, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if ((rc = session_connect(&s, &err)) || (rc = session_lock(&s, &err)) ||
        (rc = s.drv->ensure_schema(s.conn, &err)) ||
        (rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    if (h.n) {
        rc = cmig_err_set(&err, CMIG_E_CONFLICT,
                          "bundle '%s' already has history in this database (%zu migrations); "
                          "baseline only adopts a database without it",
                          s.m->name, h.n);
        goto fail;
    }
    for (size_t i = 0; i < s.m->n && s.m->migrations[i].version <= v; i++) {
        const struct cmig_migration *mg = &s.m->migrations[i];
        struct cmig_step st;
        struct cmig_step_result r;
        memset(&st, 0, sizeof st);
        memset(&r, 0, sizeof r);
        st.kind = CMIG_STEP_BASELINE;
        st.bundle = s.m->name;
        st.bundle_version = s.m->version.text;
        st.runner_version = RUNNER_VERSION;
        st.version = mg->version;
        st.name = mg->name;
        st.sha256 = mg->up.sha256;
        st.tx = CMIG_TX_TRANSACTION;
        st.legacy_version = -1;
        if ((rc = s.drv->apply(s.conn, &st, &r, &err)))
            goto fail;
        n++;
    }
    if (n == 0) {
        rc = cmig_err_set(&err, CMIG_E_USAGE, "bundle '%s' has no migration at or below %lld",
                          s.m->name, (long long)v);
        goto fail;
    }
    LOGV(LOG_INFO, "history.baselined",
         (FS("bundle", s.m->name), FI("version", v), FI("migrations", n)),
         "recorded %zu migration%s up to %lld as applied, without running them", n,
         n == 1 ? "" : "s", (long long)v);
    cmig_history_free(&h);
    session_end(&s);
    return RUN_OK;
fail:
    cmig_history_free(&h);
    session_end(&s);
    return run_fail(cfg, event, &err);
}
