/*
 * cmd_verify.c - `cmig-run verify`: the bundle alone, every byte of it;
 * no database is contacted.
 */
#include <stdio.h>

#include "log.h"
#include "run.h"

int cmd_verify(struct run_config *cfg)
{
    struct session s = {.cfg = cfg, .t0_ms = now_ms()};
    struct cmig_err err;
    cmig_err_clear(&err);
    int rc = session_bundle(&s, BUNDLE_FULL, &err);
    if (rc) {
        session_end(&s);
        return run_fail(cfg, "bundle.refused", &err);
    }
    const struct cmig_pubkey *k = cmig_bundle_signer(s.bundle);
    char id[17] = "none";
    if (k)
        cmig_keyid_hex(k->id, id);
    LOGV(LOG_INFO, "bundle.verified",
         (FS("bundle", s.m->name), FS("version", s.m->version.text), FI("migrations", s.m->n),
          FS("key_id", id)),
         "bundle %s %s verified: %zu migrations, signed by key %s", s.m->name, s.m->version.text,
         s.m->n, id);
    session_end(&s);
    return RUN_OK;
}
