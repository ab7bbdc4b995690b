/*
 * run.h - what cmig-run's commands share: the verified bundle, the database
 * session, signals, exit codes, and the final report.
 */
#ifndef CMIG_RUNNER_RUN_H
#define CMIG_RUNNER_RUN_H

#include <stdint.h>

#include "cmig/bundle.h"
#include "config.h"
#include "driver.h"

/* Exit codes of cmig-run (docs/EXIT-CODES.md). */
enum {
    RUN_OK = 0, /* success, including nothing to do and a rollback no-op */
    RUN_MIGRATION_FAILED = 1,
    RUN_USAGE = 2,
    RUN_BUNDLE_REFUSED = 3,
    RUN_UNREACHABLE = 4,
    RUN_LOCK_TIMEOUT = 5,
    RUN_CONFLICT = 6,    /* dirty database, drift, history conflict */
    RUN_INTERRUPTED = 7, /* SIGTERM / SIGINT */
    RUN_ERROR = 8,       /* any other error (I/O, database outside a migration, ...) */
    RUN_PENDING = 10     /* plan --exit-code: migrations are pending */
};

#define RUNNER_VERSION "cmig-run " CMIG_VERSION

struct session {
    const struct run_config *cfg;
    struct cmig_bundle *bundle;
    const struct cmig_manifest *m;
    const struct cmig_driver *drv;
    void *plugin;
    struct cmig_conn *conn;
    int locked;
    int64_t t0_ms;
};

extern volatile int run_interrupted;

int64_t now_ms(void);

/* Installs the SIGTERM/SIGINT handlers that cancel the running statement. */
void signals_install(void);

enum bundle_depth {
    BUNDLE_SIGNATURE, /* the signature and its claim only: no byte decompressed */
    BUNDLE_MANIFEST,  /* and the manifest */
    BUNDLE_FULL       /* and every archive entry */
};

/* Verifies the bundle as deep as asked. Logs bundle.verified. With
 * BUNDLE_SIGNATURE, s->m stays NULL until session_load_manifest. */
int session_bundle(struct session *s, enum bundle_depth depth, struct cmig_err *err);
int session_load_manifest(struct session *s, struct cmig_err *err);

/* Checks the whole archive of an already opened bundle (before any change
 * is made to a database). */
int session_verify_archive(struct session *s, struct cmig_err *err);

/* Picks and loads the driver, connects (with --wait). Logs db.connected. */
int session_connect(struct session *s, struct cmig_err *err);

int session_lock(struct session *s, struct cmig_err *err);

/* Unlocks, closes, unloads; safe to call at any point. */
void session_end(struct session *s);

/* Maps an error code to the exit status. */
int exit_for(int code);

/* Logs a failure (event, summary), writes the termination log, returns the
 * exit status. */
int run_fail(const struct run_config *cfg, const char *event, const struct cmig_err *err);

struct cmig_step_result;
/* Puts "migration 3 'x' (file.sql:12:5)" in front of a driver's message,
 * mapping the position in the section back to the source file. */
void migration_error_context(struct cmig_err *err, const struct cmig_migration *mg,
                             const struct cmig_file *f, const struct cmig_step_result *r);

int cmd_up(struct run_config *cfg);
int cmd_plan(struct run_config *cfg);
int cmd_status(struct run_config *cfg);
int cmd_verify(struct run_config *cfg);
int cmd_down(struct run_config *cfg);
int cmd_force(struct run_config *cfg);
int cmd_baseline(struct run_config *cfg);

#endif
