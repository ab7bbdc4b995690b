/*
 * fuzz_manifest.c - libFuzzer target for the manifest loader: SQLite images
 * that were never written by cmig, opened the hardened way. The loader must
 * refuse (CMIG_E_VERIFY) or return a manifest whose invariants hold:
 * versions strictly ascending, every path safe.
 */
#include <stddef.h>
#include <stdint.h>

#include "cmig/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmig_manifest *m = NULL;
    struct cmig_err err;
    cmig_err_clear(&err);
    if (cmig_manifest_load(&m, data, size, &err) != 0) {
        if (err.code != CMIG_E_VERIFY && err.code != CMIG_E_NOMEM)
            __builtin_trap();
        return 0;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (i && m->migrations[i].version <= m->migrations[i - 1].version)
            __builtin_trap();
        if (!cmig_path_safe(m->migrations[i].up.path))
            __builtin_trap();
        if (m->migrations[i].down.path && !cmig_path_safe(m->migrations[i].down.path))
            __builtin_trap();
    }
    cmig_manifest_free(m);
    return 0;
}
