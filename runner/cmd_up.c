/*
 * cmd_up.c - `cmig-run up` (apply what is pending) and `cmig-run plan`
 * (say what up would do).
 *
 * The no-op start is the hottest path of the product: every pod start pays
 * it. It verifies the signature and reads the manifest (nothing else of the
 * archive is decompressed), reads the history once without the lock, and
 * stops there when nothing is pending. Only when there is work does it
 * check every archive entry, take the lock, read the history again under
 * it and apply, so that of many replicas exactly one applies and the rest
 * find nothing to do.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "run.h"

struct apply_ctx {
    struct session *s;
    const struct plan *p;
    const struct cmig_history *h;
    size_t next;     /* index in p->pending of the next migration to apply */
    int in_outer_tx; /* --single-transaction */
    int64_t legacy;  /* golang-migrate version to keep, or -2 when not kept */
    int64_t *ms;     /* --single-transaction: each one's time, logged after the commit */
};

static void log_applied(const struct cmig_migration *mg, int64_t ms, int in_tx)
{
    enum cmig_txmode tx = in_tx ? CMIG_TX_TRANSACTION : mg->up.tx;
    LOGV(LOG_INFO, "migration.applied",
         (FI("version", mg->version), FS("name", mg->name), FI("ms", ms),
          FS("transaction", cmig_txmode_name(tx))),
         "applied migration %lld '%s' in %lld ms%s", (long long)mg->version, mg->name,
         (long long)ms, tx == CMIG_TX_NONE ? " (no transaction)" : "");
}

static void step_init(struct cmig_step *st, const struct session *s,
                      const struct cmig_migration *mg, enum cmig_step_kind kind)
{
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->bundle = s->m->name;
    st->bundle_version = s->m->version.text;
    st->runner_version = RUNNER_VERSION;
    st->version = mg->version;
    st->name = mg->name;
    st->sha256 = mg->up.sha256;
    st->tx = mg->up.tx;
    st->legacy_version = -1;
}

void migration_error_context(struct cmig_err *err, const struct cmig_migration *mg,
                             const struct cmig_file *f, const struct cmig_step_result *r)
{
    if (r->line) {
        unsigned line = f->source_line ? f->source_line + r->line - 1 : r->line;
        if (r->statement)
            cmig_err_prefix(err, "migration %lld '%s' (%s:%u:%u, statement %u)",
                            (long long)mg->version, mg->name, f->source, line, r->col,
                            r->statement);
        else
            cmig_err_prefix(err, "migration %lld '%s' (%s:%u:%u)", (long long)mg->version, mg->name,
                            f->source, line, r->col);
    } else {
        cmig_err_prefix(err, "migration %lld '%s' (%s)", (long long)mg->version, mg->name,
                        f->source);
    }
}

static int want_pending(void *ctx, const struct cmig_migration *m, int is_down)
{
    struct apply_ctx *a = ctx;
    return !is_down && a->next < a->p->n_pending && a->p->pending[a->next] == m;
}

/* A large file reaches the driver as a stream out of the bundle's checked
 * copy (cmig/bundle.h). */
static int content_read(void *src, char *buf, size_t cap, size_t *got, struct cmig_err *err)
{
    return cmig_file_bytes_read(src, (uint8_t *)buf, cap, got, err);
}

static int apply_one(void *ctx, const struct cmig_migration *mg, int is_down,
                     struct cmig_file_bytes *content, struct cmig_err *err)
{
    struct apply_ctx *a = ctx;
    struct session *s = a->s;
    (void)is_down;
    if (run_interrupted)
        return cmig_err_set(err, CMIG_E_INTERRUPTED, "interrupted before migration %lld '%s'",
                            (long long)mg->version, mg->name);
    struct cmig_step st;
    struct cmig_step_result r;
    memset(&r, 0, sizeof r);
    step_init(&st, s, mg, CMIG_STEP_UP);
    if (content->len > SIZE_MAX)
        return cmig_err_set(err, CMIG_E_MIGRATION, "migration %lld '%s' is too large",
                            (long long)mg->version, mg->name);
    st.len = (size_t)content->len;
    if (content->data) {
        st.sql = (const char *)content->data;
    } else {
        st.read = content_read;
        st.src = content;
    }
    st.in_outer_tx = a->in_outer_tx;
    if (a->legacy != -2) {
        st.keep_legacy = 1;
        st.legacy_version = mg->version;
    }
    LOGV(LOG_DEBUG, "migration.started",
         (FI("version", mg->version), FS("name", mg->name),
          FS("transaction", cmig_txmode_name(mg->up.tx))),
         "applying migration %lld '%s' (%s)", (long long)mg->version, mg->name,
         cmig_txmode_name(mg->up.tx));
    int64_t t = now_ms();
    int rc = s->drv->apply(s->conn, &st, &r, err);
    int64_t ms = r.execution_ms ? r.execution_ms : now_ms() - t;
    if (rc) {
        if (run_interrupted)
            err->code = CMIG_E_INTERRUPTED;
        migration_error_context(err, mg, &mg->up, &r);
        /* run_fail prints the same message: text logs get one error line. */
        if (log_json())
            LOGV(LOG_ERROR, "migration.failed",
                 (FI("version", mg->version), FS("name", mg->name), FI("ms", ms),
                  FS("native", err->native)),
                 "%s", err->msg);
        return rc;
    }
    /* Inside --single-transaction nothing is applied until the commit. */
    if (a->ms)
        a->ms[a->next] = ms;
    else
        log_applied(mg, ms, r.transaction);
    a->next++;
    return 0;
}

static int adopt_golang_migrate(struct session *s, const struct plan *p, struct cmig_err *err)
{
    for (size_t i = 0; i < p->n_adopt; i++) {
        struct cmig_step st;
        struct cmig_step_result r;
        memset(&r, 0, sizeof r);
        step_init(&st, s, p->adopt[i], CMIG_STEP_BASELINE);
        st.tx = CMIG_TX_TRANSACTION;
        int rc = s->drv->apply(s->conn, &st, &r, err);
        if (rc)
            return rc;
    }
    LOGV(LOG_INFO, "history.adopted",
         (FS("from", "golang-migrate"), FI("version", p->adopt_version),
          FI("migrations", p->n_adopt)),
         "adopted golang-migrate's schema_migrations at version %lld: %zu migrations recorded "
         "as applied (schema_migrations left in place)",
         (long long)p->adopt_version, p->n_adopt);
    return 0;
}

static int check_single_tx(const struct session *s, const struct plan *p, struct cmig_err *err)
{
    if (!(s->drv->caps & CMIG_CAP_SINGLE_TRANSACTION))
        return cmig_err_set(err, CMIG_E_USAGE,
                            "--single-transaction is not supported by the %s "
                            "driver",
                            s->drv->name);
    for (size_t i = 0; i < p->n_pending; i++)
        if (p->pending[i]->up.tx != CMIG_TX_TRANSACTION)
            return cmig_err_set(err, CMIG_E_USAGE,
                                "--single-transaction: migration %lld '%s' cannot run in a "
                                "transaction (%s)",
                                (long long)p->pending[i]->version, p->pending[i]->name,
                                p->pending[i]->up.tx_reason);
    return 0;
}

static int apply_pending(struct session *s, const struct plan *p, const struct cmig_history *h,
                         struct cmig_err *err)
{
    struct apply_ctx a = {.s = s, .p = p, .h = h, .next = 0, .legacy = -2};
    if (s->cfg->keep_golang_migrate && h->legacy_present)
        a.legacy = 0;
    int rc;
    if (s->cfg->single_tx) {
        a.ms = calloc(p->n_pending ? p->n_pending : 1, sizeof *a.ms);
        if (!a.ms)
            return cmig_err_nomem(err);
        if ((rc = s->drv->begin(s->conn, err))) {
            free(a.ms);
            return rc;
        }
        a.in_outer_tx = 1;
    }
    rc = cmig_bundle_each_content(s->bundle, want_pending, apply_one, &a, err);
    if (!rc && a.next != p->n_pending)
        rc = cmig_err_set(err, CMIG_E_INTERNAL, "applied %zu of %zu pending migrations", a.next,
                          p->n_pending);
    if (s->cfg->single_tx) {
        struct cmig_err ignored;
        cmig_err_clear(&ignored);
        if (!rc)
            rc = s->drv->commit(s->conn, err);
        if (rc)
            s->drv->rollback(s->conn, &ignored);
        if (rc)
            a.next = 0;
        for (size_t i = 0; i < a.next; i++)
            log_applied(p->pending[i], a.ms[i], 0);
        free(a.ms);
    }
    return rc;
}

static void print_plan(const struct session *s, const struct plan *p, int json)
{
    const struct cmig_manifest *m = s->m;
    if (json) {
        printf("{\"bundle\":\"%s\",\"version\":\"%s\",\"rollback\":%s,\"pending\":[", m->name,
               m->version.text, p->verdict == PLAN_ROLLBACK ? "true" : "false");
        for (size_t i = 0; i < p->n_pending; i++) {
            const struct cmig_migration *mg = p->pending[i];
            printf("%s{\"version\":%lld,\"name\":", i ? "," : "", (long long)mg->version);
            fputc('"', stdout);
            for (const char *c = mg->name; *c; c++) {
                if (*c == '"' || *c == '\\')
                    fputc('\\', stdout);
                fputc(*c, stdout);
            }
            printf("\",\"transaction\":\"%s\"}", cmig_txmode_name(mg->up.tx));
        }
        printf("],\"adopt\":%zu,\"applied\":%zu}\n", p->n_adopt, p->n_applied);
        return;
    }
    if (p->verdict == PLAN_ROLLBACK) {
        printf("bundle %s %s is older than the database; nothing to do\n", m->name,
               m->version.text);
        return;
    }
    if (p->n_adopt)
        printf("adopt golang-migrate history: %zu migrations up to version %lld\n", p->n_adopt,
               (long long)p->adopt_version);
    if (p->n_pending == 0) {
        printf("bundle %s %s: nothing to apply (%zu applied)\n", m->name, m->version.text,
               p->n_applied);
        return;
    }
    printf("bundle %s %s: %zu pending\n", m->name, m->version.text, p->n_pending);
    for (size_t i = 0; i < p->n_pending; i++) {
        const struct cmig_migration *mg = p->pending[i];
        printf("  %-16lld %-12s %s", (long long)mg->version, cmig_txmode_name(mg->up.tx), mg->name);
        if (mg->up.tx == CMIG_TX_NONE && mg->up.tx_reason[0])
            printf("  (%s)", mg->up.tx_reason);
        putchar('\n');
    }
}

static int finish_ok(struct session *s, size_t applied, const char *how)
{
    int64_t ms = now_ms() - s->t0_ms;
    const struct cmig_claim *claim = cmig_bundle_claim(s->bundle);
    const char *name = s->m ? s->m->name : claim->name;
    const char *version = s->m ? s->m->version.text : claim->version;
    LOGV(LOG_INFO, "run.finished",
         (FS("bundle", name), FS("version", version), FI("applied", applied), FI("ms", ms),
          FS("result", how)),
         "%s %s: %s (%lld ms)", name, version, how, (long long)ms);
    session_end(s);
    return RUN_OK;
}

/* The no-op fast path: this very bundle (same version, same manifest, by
 * its signed claim) was fully applied before, and the history still holds
 * exactly its migrations, none dirty. Then nothing in the archive needs to
 * be decompressed: one query decides. Anything else takes the full path,
 * which applies every rule. */
static int already_applied(struct session *s, int *yes, struct cmig_err *err)
{
    const struct cmig_claim *claim = cmig_bundle_claim(s->bundle);
    struct cmig_quick_state q;
    *yes = 0;
    if (!claim || !s->drv->quick_state)
        return 0;
    int rc = s->drv->quick_state(s->conn, claim->name, &q, err);
    if (rc)
        return rc;
    *yes = q.present && !q.dirty && strcmp(q.version, claim->version) == 0 &&
           memcmp(q.manifest_sha256, claim->manifest_sha256, 32) == 0 &&
           q.applied == claim->migrations && q.last == claim->last;
    return 0;
}

static int up_or_plan(struct run_config *cfg, int apply)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err;
    struct cmig_history h;
    struct plan p;
    const char *event = "run.failed";
    int64_t to = cfg->have_to ? cfg->to : -1;
    int rc;
    cmig_err_clear(&err);
    memset(&h, 0, sizeof h);
    memset(&p, 0, sizeof p);

    /* up without --to first checks whether there can be anything to do at
     * all, before it reads the manifest. */
    enum bundle_depth depth = apply && !cfg->have_to ? BUNDLE_SIGNATURE : BUNDLE_MANIFEST;
    if ((rc = session_bundle(&s, depth, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if ((rc = session_connect(&s, &err)))
        goto fail;
    if (!s.m) {
        int done = 0;
        if ((rc = already_applied(&s, &done, &err)))
            goto fail;
        if (done) {
            char how[96];
            snprintf(how, sizeof how, "nothing to do, %llu migrations applied",
                     (unsigned long long)cmig_bundle_claim(s.bundle)->migrations);
            return finish_ok(&s, 0, how);
        }
        if ((rc = session_load_manifest(&s, &err))) {
            event = "bundle.refused";
            goto fail;
        }
    }
    if ((rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    /* A dirty row seen without the lock may be another replica's
     * non-transactional migration in progress: up decides under the lock. */
    int busy = 0, archive_checked = 0;
    for (size_t i = 0; apply && i < h.n; i++)
        busy |= h.rows[i].dirty;
    if (busy)
        goto locked;
    rc = plan_compute(&p, s.m, cmig_bundle_manifest_sha256(s.bundle), &h, to, cfg->strict, &err);
    if (rc) {
        event = "run.refused";
        goto fail;
    }
    if (!apply) {
        print_plan(&s, &p, cfg->json_out);
        int pending = p.n_pending > 0 || p.n_adopt > 0;
        plan_free(&p);
        cmig_history_free(&h);
        session_end(&s);
        return cfg->exit_code && pending ? RUN_PENDING : RUN_OK;
    }
    if (p.verdict == PLAN_ROLLBACK) {
        LOGV(LOG_WARN, "run.rollback",
             (FS("bundle", s.m->name), FS("version", s.m->version.text),
              FS("database_version", h.record_version)),
             "bundle %s %s is older than the database (at %s); all of its migrations are "
             "applied: nothing to do",
             s.m->name, s.m->version.text, h.record_version);
        plan_free(&p);
        cmig_history_free(&h);
        return finish_ok(&s, 0, "older bundle, nothing to do");
    }
    if (p.n_pending == 0 && p.n_adopt == 0 && !p.record_needed) {
        size_t n = p.n_applied;
        plan_free(&p);
        cmig_history_free(&h);
        char how[96];
        snprintf(how, sizeof how, "nothing to do, %zu migrations applied", n);
        return finish_ok(&s, 0, how);
    }

    /* There is work: check every entry of the archive before any change. */
    if (p.n_pending) {
        if ((rc = session_verify_archive(&s, &err))) {
            event = "bundle.refused";
            goto fail;
        }
        archive_checked = 1;
    }
locked:
    if ((rc = session_lock(&s, &err)) || (rc = s.drv->ensure_schema(s.conn, &err)))
        goto fail;
    plan_free(&p);
    cmig_history_free(&h);
    if ((rc = s.drv->read_history(s.conn, s.m->name, &h, &err)))
        goto fail;
    rc = plan_compute(&p, s.m, cmig_bundle_manifest_sha256(s.bundle), &h, to, cfg->strict, &err);
    if (rc) {
        event = "run.refused";
        goto fail;
    }
    if (p.verdict == PLAN_ROLLBACK) {
        plan_free(&p);
        cmig_history_free(&h);
        return finish_ok(&s, 0, "older bundle, nothing to do");
    }
    if (p.n_pending && !archive_checked && (rc = session_verify_archive(&s, &err))) {
        event = "bundle.refused";
        goto fail;
    }
    if (p.n_adopt && (rc = adopt_golang_migrate(&s, &p, &err)))
        goto fail;
    if (cfg->single_tx && p.n_pending && (rc = check_single_tx(&s, &p, &err)))
        goto fail;
    if (p.n_pending && (rc = apply_pending(&s, &p, &h, &err))) {
        event = "run.failed";
        goto fail;
    }
    if (p.record_needed && (rc = s.drv->record_bundle(s.conn, s.m->name, s.m->version.text,
                                                      cmig_bundle_manifest_sha256(s.bundle), &err)))
        goto fail;
    size_t applied = p.n_pending;
    int recorded = p.record_needed || p.n_adopt;
    plan_free(&p);
    cmig_history_free(&h);
    char how[96];
    if (applied)
        snprintf(how, sizeof how, "applied %zu migration%s", applied, applied == 1 ? "" : "s");
    else if (recorded)
        snprintf(how, sizeof how, "nothing to apply; history updated");
    else
        snprintf(how, sizeof how, "nothing to do (applied by another runner)");
    return finish_ok(&s, applied, how);
fail:
    plan_free(&p);
    cmig_history_free(&h);
    session_end(&s);
    return run_fail(cfg, event, &err);
}

int cmd_up(struct run_config *cfg)
{
    return up_or_plan(cfg, 1);
}

int cmd_plan(struct run_config *cfg)
{
    return up_or_plan(cfg, 0);
}
