/*
 * plan.h - deciding what to do: the bundle's manifest against the
 * database's history, and every rule that may refuse (dirty, drift, out of
 * order, unknown migrations, rollback). Pure logic, no I/O: the same rules
 * serve up, plan and status.
 */
#ifndef CMIG_RUNNER_PLAN_H
#define CMIG_RUNNER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/manifest.h"
#include "driver.h"

enum plan_verdict {
    PLAN_OK = 0,   /* pending holds the work (maybe none) */
    PLAN_ROLLBACK, /* older bundle, everything it has is applied: no-op */
    PLAN_REFUSED   /* err says why (CMIG_E_CONFLICT) */
};

struct plan {
    enum plan_verdict verdict;
    size_t n_pending;
    const struct cmig_migration **pending; /* ascending by version */
    size_t n_adopt;                        /* golang-migrate adoption: recorded, not run */
    const struct cmig_migration **adopt;
    int64_t adopt_version;
    int record_needed;  /* the per-bundle record must be written after the run */
    int complete_after; /* after applying pending, every bundle migration is applied */
    size_t n_applied;   /* bundle migrations already applied */
};

/* Computes the plan. to < 0: no --to. strict: an older bundle is refused
 * instead of being a no-op. Returns 0 with p filled (verdict PLAN_OK or
 * PLAN_ROLLBACK), or CMIG_E_CONFLICT with the reason in err and
 * p->verdict = PLAN_REFUSED. */
int plan_compute(struct plan *p, const struct cmig_manifest *m, const uint8_t manifest_sha256[32],
                 const struct cmig_history *h, int64_t to, int strict, struct cmig_err *err);
void plan_free(struct plan *p);

/* The history row of a version, or NULL. */
const struct cmig_applied *history_find(const struct cmig_history *h, int64_t version);

#endif
