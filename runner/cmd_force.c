/*
 * cmd_force.c - `cmig-run force VERSION`: an operator's word that a dirty
 * migration has been dealt with.
 *
 * VERSION equal to the dirty migration: it is now complete (finished by
 * hand); it stays recorded as applied, clean. VERSION below it: the dirty
 * migration is considered not applied (its effects were undone by hand);
 * its row is removed and the next `up` runs it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "run.h"

int parse_version_arg(const char *s, int64_t *out, struct cmig_err *err);
int parse_version_arg(const char *s, int64_t *out, struct cmig_err *err)
{
    char *end;
    if (!s)
        return cmig_err_set(err, CMIG_E_USAGE, "a migration VERSION is required");
    long long v = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || v < 0)
        return cmig_err_set(err, CMIG_E_USAGE, "'%s' is not a migration version", s);
    *out = v;
    return 0;
}

int cmd_force(struct run_config *cfg)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err;
    struct cmig_history h;
    int64_t v = 0;
    const char *event = "force.failed";
    int rc;
    cmig_err_clear(&err);
    memset(&h, 0, sizeof h);
    if ((rc = parse_version_arg(cfg->arg, &v, &err)))
        return run_fail(cfg, "usage", &err);
    if ((rc = session_bundle(&s, BUNDLE_MANIFEST, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if ((rc = session_connect(&s, &err)) || (rc = session_lock(&s, &err)) ||
        (rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    const struct cmig_applied *dirty = NULL;
    for (size_t i = 0; i < h.n; i++)
        if (h.rows[i].dirty)
            dirty = &h.rows[i];
    if (!dirty) {
        rc = cmig_err_set(&err, CMIG_E_USAGE, "bundle '%s' has no dirty migration to force",
                          s.m->name);
        goto fail;
    }
    if (v > dirty->version) {
        rc = cmig_err_set(&err, CMIG_E_USAGE,
                          "the dirty migration is %lld '%s'; force takes it or a lower version",
                          (long long)dirty->version, dirty->name);
        goto fail;
    }
    struct cmig_step st;
    struct cmig_step_result r;
    memset(&st, 0, sizeof st);
    memset(&r, 0, sizeof r);
    st.kind = v == dirty->version ? CMIG_STEP_FORCE_CLEAN : CMIG_STEP_FORCE_REMOVE;
    st.bundle = s.m->name;
    st.bundle_version = s.m->version.text;
    st.runner_version = RUNNER_VERSION;
    st.version = dirty->version;
    st.name = dirty->name;
    st.sha256 = dirty->sha256;
    st.tx = CMIG_TX_TRANSACTION;
    st.legacy_version = -1;
    if ((rc = s.drv->apply(s.conn, &st, &r, &err)))
        goto fail;
    LOGV(LOG_WARN, "history.forced",
         (FI("version", dirty->version), FS("name", dirty->name),
          FS("action", st.kind == CMIG_STEP_FORCE_CLEAN ? "marked_applied" : "removed")),
         "migration %lld '%s' %s by force", (long long)dirty->version, dirty->name,
         st.kind == CMIG_STEP_FORCE_CLEAN ? "marked as applied"
                                          : "marked as not applied (it will run again)");
    cmig_history_free(&h);
    session_end(&s);
    return RUN_OK;
fail:
    cmig_history_free(&h);
    session_end(&s);
    return run_fail(cfg, event, &err);
}
