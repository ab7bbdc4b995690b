/*
 * cmd_status.c - `cmig-run status`: the bundle against the database, read
 * only. A database the rules would refuse is reported, not hidden: the
 * exit status is 6 then, as `up` would give.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "plan.h"
#include "run.h"

static const char *state_of(const struct cmig_migration *mg, const struct cmig_applied *row)
{
    if (!row)
        return "pending";
    if (row->dirty)
        return "dirty";
    if (memcmp(row->sha256, mg->up.sha256, 32) != 0)
        return "changed";
    return "applied";
}

static void when(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "-");
}

static void json_string(const char *s)
{
    putchar('"');
    for (const char *c = s ? s : ""; *c; c++) {
        if (*c == '"' || *c == '\\')
            putchar('\\');
        putchar(*c);
    }
    putchar('"');
}

static void print_json(const struct session *s, const struct cmig_history *h, const char *problem)
{
    const struct cmig_manifest *m = s->m;
    printf("{\"bundle\":");
    json_string(m->name);
    printf(",\"version\":");
    json_string(m->version.text);
    printf(",\"database_version\":");
    if (h->has_record)
        json_string(h->record_version);
    else
        printf("null");
    printf(",\"problem\":");
    if (problem)
        json_string(problem);
    else
        printf("null");
    printf(",\"migrations\":[");
    int first = 1;
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        const struct cmig_applied *row = history_find(h, mg->version);
        printf("%s{\"version\":%lld,\"name\":", first ? "" : ",", (long long)mg->version);
        json_string(mg->name);
        printf(",\"state\":\"%s\"", state_of(mg, row));
        if (row)
            printf(",\"applied_at\":%lld,\"execution_ms\":%lld,\"bundle_version\":",
                   (long long)row->applied_at, (long long)row->execution_ms);
        if (row)
            json_string(row->bundle_version);
        putchar('}');
        first = 0;
    }
    for (size_t i = 0; i < h->n; i++) {
        if (cmig_manifest_find(m, h->rows[i].version))
            continue;
        printf("%s{\"version\":%lld,\"name\":", first ? "" : ",", (long long)h->rows[i].version);
        json_string(h->rows[i].name);
        printf(",\"state\":\"%s\"}", h->rows[i].dirty ? "dirty" : "not_in_bundle");
        first = 0;
    }
    printf("]}\n");
}

static void print_text(const struct session *s, const struct cmig_history *h, const char *problem)
{
    const struct cmig_manifest *m = s->m;
    size_t applied = 0, pending = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (history_find(h, m->migrations[i].version))
            applied++;
        else
            pending++;
    }
    printf("bundle    %s %s (%zu migrations)\n", m->name, m->version.text, m->n);
    printf("database  %s; bundle version recorded: %s\n", s->drv->name,
           h->has_record ? h->record_version : "none");
    printf("applied   %zu\npending   %zu\n", applied, pending);
    printf("state     %s\n\n", problem ? problem : "ok");
    printf("%-16s %-10s %-21s %s\n", "VERSION", "STATE", "APPLIED", "NAME");
    for (size_t i = 0; i < m->n; i++) {
        const struct cmig_migration *mg = &m->migrations[i];
        const struct cmig_applied *row = history_find(h, mg->version);
        char at[32];
        when(row ? row->applied_at : 0, at, sizeof at);
        printf("%-16lld %-10s %-21s %s\n", (long long)mg->version, state_of(mg, row), at, mg->name);
    }
    for (size_t i = 0; i < h->n; i++) {
        if (cmig_manifest_find(m, h->rows[i].version))
            continue;
        char at[32];
        when(h->rows[i].applied_at, at, sizeof at);
        printf("%-16lld %-10s %-21s %s\n", (long long)h->rows[i].version,
               h->rows[i].dirty ? "dirty" : "unknown", at, h->rows[i].name);
    }
}

int cmd_status(struct run_config *cfg)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err, why;
    struct cmig_history h;
    struct plan p;
    const char *event = "status.failed";
    int rc;
    cmig_err_clear(&err);
    cmig_err_clear(&why);
    memset(&h, 0, sizeof h);
    memset(&p, 0, sizeof p);
    if ((rc = session_bundle(&s, BUNDLE_MANIFEST, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if ((rc = session_connect(&s, &err)) || (rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    int refused = plan_compute(&p, s.m, cmig_bundle_manifest_sha256(s.bundle), &h, -1, cfg->strict,
                               &why) != 0;
    if (refused && why.code != CMIG_E_CONFLICT) {
        err = why;
        rc = why.code;
        goto fail;
    }
    const char *problem = refused                      ? why.msg
                          : p.verdict == PLAN_ROLLBACK ? "bundle is older than the database"
                                                       : NULL;
    if (cfg->json_out)
        print_json(&s, &h, problem);
    else
        print_text(&s, &h, problem);
    plan_free(&p);
    cmig_history_free(&h);
    session_end(&s);
    return refused ? RUN_CONFLICT : RUN_OK;
fail:
    plan_free(&p);
    cmig_history_free(&h);
    session_end(&s);
    return run_fail(cfg, event, &err);
}
