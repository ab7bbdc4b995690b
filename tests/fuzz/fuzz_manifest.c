/*
 * fuzz_manifest.c - libFuzzer target for the manifest loader: SQLite images
 * that were never written by cmig, opened the hardened way. The loader must
 * refuse (CMIG_E_VERIFY) or return a manifest whose invariants hold:
 * versions strictly ascending, every path safe. The same bytes loaded from
 * a chunked, compressed image (how a large manifest is read) must get the
 * same verdict and the same message.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../format/zimage.h"
#include "cmig/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The verdict of loading data from a chunked image: its code, and its
 * message into err. */
static int load_chunked(const uint8_t *data, size_t size, struct cmig_err *err)
{
    struct cmig_zimage *z = NULL;
    struct cmig_manifest *m = NULL;
    cmig_err_clear(err);
    int rc = cmig_zimage_open(&z, size, 0, err);
    if (!rc)
        rc = cmig_zimage_write(z, data, size, err);
    if (!rc)
        rc = cmig_zimage_seal(z, err);
    if (!rc)
        rc = cmig_manifest_load_zimage(&m, z, err);
    cmig_manifest_free(m);
    cmig_zimage_free(z);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmig_manifest *m = NULL;
    struct cmig_err err, zerr;
    cmig_err_clear(&err);
    int rc = cmig_manifest_load(&m, data, size, &err);
    int zrc = load_chunked(data, size, &zerr);
    if (rc != zrc || strcmp(err.msg, zerr.msg) != 0)
        __builtin_trap();
    if (rc != 0) {
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
