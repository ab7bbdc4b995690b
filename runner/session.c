/*
 * session.c - the steps every database command takes, in the one order
 * that is allowed: verify the bundle, then (and only then) connect, then
 * lock. A bundle that fails verification never causes a connection.
 */
#include "run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "plugins.h"

volatile int run_interrupted;
static struct session *volatile active_session;

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    (void)sig;
    run_interrupted = 1;
    struct session *s = active_session;
    if (s && s->drv && s->conn && s->drv->cancel)
        s->drv->cancel(s->conn);
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking wait should notice the signal. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int exit_for(int code)
{
    switch (code) {
    case CMIG_OK:
        return RUN_OK;
    case CMIG_E_MIGRATION:
        return RUN_MIGRATION_FAILED;
    case CMIG_E_USAGE:
        return RUN_USAGE;
    case CMIG_E_VERIFY:
        return RUN_BUNDLE_REFUSED;
    case CMIG_E_CONNECT:
        return RUN_UNREACHABLE;
    case CMIG_E_LOCK:
        return RUN_LOCK_TIMEOUT;
    case CMIG_E_CONFLICT:
        return RUN_CONFLICT;
    case CMIG_E_INTERRUPTED:
        return RUN_INTERRUPTED;
    default:
        return RUN_ERROR;
    }
}

int run_fail(const struct run_config *cfg, const char *event, const struct cmig_err *err)
{
    int code = err->code;
    if (run_interrupted && code != CMIG_E_USAGE && code != CMIG_E_VERIFY)
        code = CMIG_E_INTERRUPTED;
    const char *msg = err->msg[0] ? err->msg : "unknown error";
    LOGV(LOG_ERROR, event, (FS("error", cmig_code_name(code)), FS("native", err->native)), "%s",
         msg);
    char summary[CMIG_ERR_MSG_MAX + 64];
    snprintf(summary, sizeof summary, "cmig-run: %s: %s", cmig_code_name(code), msg);
    log_termination(cfg->termination_log, summary);
    return exit_for(code);
}

/* A SQL bundle may run on another SQL database (with a warning); never on
 * MongoDB, nor the reverse. */
static int check_driver(const struct session *s, struct cmig_err *err)
{
    if (!s->m || !s->drv || strcmp(s->m->driver, s->drv->name) == 0)
        return 0;
    int both_sql = strcmp(s->m->driver, "mongodb") != 0 && strcmp(s->drv->name, "mongodb") != 0;
    if (!both_sql)
        return cmig_err_set(err, CMIG_E_USAGE, "bundle '%s' was built for %s, not %s", s->m->name,
                            s->m->driver, s->drv->name);
    LOGF(LOG_WARN, "bundle.driver_mismatch", "bundle '%s' was built for %s; running it on %s",
         s->m->name, s->m->driver, s->drv->name);
    return 0;
}

int session_load_manifest(struct session *s, struct cmig_err *err)
{
    if (s->m)
        return 0;
    int rc = cmig_bundle_load_manifest(s->bundle, err);
    if (rc)
        return rc;
    s->m = cmig_bundle_manifest(s->bundle);
    return check_driver(s, err);
}

int session_bundle(struct session *s, enum bundle_depth depth, struct cmig_err *err)
{
    const struct run_config *cfg = s->cfg;
    struct cmig_keyring ring = {0, NULL};
    int rc = 0;
    if (!cfg->bundle)
        return cmig_err_set(err, CMIG_E_USAGE, "no bundle: give --bundle FILE or set CMIG_BUNDLE");
    unsigned flags = depth == BUNDLE_FULL       ? 0
                     : depth == BUNDLE_MANIFEST ? CMIG_OPEN_MANIFEST_ONLY
                                                : CMIG_OPEN_SIGNATURE_ONLY;
    if (cfg->skip_verify) {
        const char *confirm = getenv("CMIG_INSECURE_SKIP_VERIFY");
        int confirmed = cfg->skip_verify >= 2 || (confirm && strcmp(confirm, "i-understand") == 0);
        if (!confirmed)
            return cmig_err_set(err, CMIG_E_USAGE,
                                "--insecure-skip-verify runs an unverified bundle: give it twice, "
                                "or set CMIG_INSECURE_SKIP_VERIFY=i-understand");
        LOGF(LOG_WARN, "bundle.unverified",
             "signature NOT verified (--insecure-skip-verify): '%s' is trusted blindly",
             cfg->bundle);
        /* Nothing signed to go by: always read the manifest. */
        flags = (flags & ~CMIG_OPEN_SIGNATURE_ONLY) | CMIG_OPEN_SKIP_SIGNATURE;
        if (depth == BUNDLE_SIGNATURE)
            flags |= CMIG_OPEN_MANIFEST_ONLY;
    } else {
        for (int i = 0; i < cfg->n_trusted && !rc; i++)
            rc = cmig_keyring_add_spec(&ring, cfg->trusted[i], err);
        if (!rc && cfg->n_trusted == 0 && cfg->trusted_env)
            rc = cmig_keyring_add_list(&ring, cfg->trusted_env, err);
        if (!rc && ring.n == 0)
            rc = cmig_err_set(err, CMIG_E_USAGE,
                              "no trusted key: give --trusted-key or set CMIG_TRUSTED_KEYS");
        if (rc) {
            cmig_keyring_free(&ring);
            return rc;
        }
    }
    struct cmig_open_opts o = {.keys = &ring, .sig_path = cfg->signature, .flags = flags};
    rc = cmig_bundle_open(&s->bundle, cfg->bundle, &o, err);
    cmig_keyring_free(&ring);
    if (rc)
        return rc;
    s->m = cmig_bundle_manifest(s->bundle);
    const struct cmig_pubkey *signer = cmig_bundle_signer(s->bundle);
    const struct cmig_claim *claim = cmig_bundle_claim(s->bundle);
    char id[17] = "none";
    if (signer)
        cmig_keyid_hex(signer->id, id);
    const char *name = s->m ? s->m->name : claim->name;
    const char *version = s->m ? s->m->version.text : claim->version;
    long long n = s->m ? (long long)s->m->n : (long long)claim->migrations;
    LOGV(LOG_DEBUG, "bundle.verified",
         (FS("bundle", name), FS("version", version), FI("migrations", n), FS("key_id", id)),
         "bundle %s %s verified (%lld migrations, key %s)", name, version, n, id);
    return 0;
}

/* A NULL want selects every file; this one selects none. */
static int want_none(void *ctx, const struct cmig_migration *m, int is_down)
{
    (void)ctx;
    (void)m;
    (void)is_down;
    return 0;
}

int session_verify_archive(struct session *s, struct cmig_err *err)
{
    /* Walks every entry against the manifest; selects none to keep. */
    return cmig_bundle_each_file(s->bundle, want_none, NULL, NULL, err);
}

static void driver_log(void *ctx, int level, const char *event, const char *msg)
{
    (void)ctx;
    log_event(level >= 2 ? LOG_WARN : level == 1 ? LOG_INFO : LOG_DEBUG, event, NULL, "%s", msg);
}

int session_connect(struct session *s, struct cmig_err *err)
{
    const struct run_config *cfg = s->cfg;
    int rc;
    if (!cfg->database_url)
        return cmig_err_set(err, CMIG_E_USAGE,
                            "no database: give --database URL, or set CMIG_DATABASE_URL or "
                            "CMIG_DATABASE_URL_FILE");
    if ((rc = driver_for_url(cfg->database_url, &s->drv, &s->plugin, err)))
        return rc;
    if ((rc = check_driver(s, err)))
        return rc;
    struct cmig_conn_opts o = {
        .url = cfg->database_url,
        .wait_ms = cfg->wait_ms,
        .statement_timeout_ms = cfg->statement_timeout_ms,
        .lock_timeout_ms = cfg->db_lock_timeout_ms,
        .application_name = "cmig-run",
        .log = driver_log,
        .interrupted = &run_interrupted,
    };
    active_session = s;
    if ((rc = s->drv->open(&s->conn, &o, err)))
        return rc;
    char where[512];
    redact_url(cfg->database_url, where, sizeof where);
    LOGV(LOG_DEBUG, "db.connected", (FS("driver", s->drv->name), FS("database", where)),
         "connected to %s (%s)", s->drv->name, where);
    return 0;
}

int session_lock(struct session *s, struct cmig_err *err)
{
    int64_t t = now_ms();
    int rc = s->drv->lock(s->conn, s->m->name, s->cfg->lock_timeout_ms, err);
    if (rc)
        return rc;
    s->locked = 1;
    LOGV(LOG_DEBUG, "lock.acquired", (FS("bundle", s->m->name), FI("ms", now_ms() - t)),
         "migration lock of bundle '%s' acquired in %lld ms", s->m->name,
         (long long)(now_ms() - t));
    return 0;
}

void session_end(struct session *s)
{
    if (s->conn && s->locked) {
        struct cmig_err ignored;
        cmig_err_clear(&ignored);
        s->drv->unlock(s->conn, &ignored);
        s->locked = 0;
    }
    active_session = NULL;
    if (s->conn)
        s->drv->close(s->conn);
    s->conn = NULL;
    driver_unload(s->plugin);
    s->plugin = NULL;
    cmig_bundle_close(s->bundle);
    s->bundle = NULL;
}
