/*
 * fuzz_archive.c - libFuzzer target for everything a bundle meets after its
 * signature: the gzip layer, the tar reader, every entry check, the
 * manifest loader, the full walk, and handing the files out again, whole
 * or streamed from the private compressed copy.
 *
 * The input is the bundle file itself, opened with CMIG_OPEN_SKIP_SIGNATURE
 * so that any mutation reaches the archive code (fuzz_bundle.c covers the
 * same path behind a real signature). Each input is opened twice: read once
 * into memory, and streamed from the file; both must reach the same
 * verdict with the same message. A refusal must be CMIG_E_VERIFY (or a
 * resource error). An accepted bundle must then hand out exactly the files
 * its manifest lists, in its order, each with the listed size and SHA-256,
 * through cmig_bundle_each_file and through cmig_bundle_each_content (with
 * a small whole_max, so that most files come as streams read back in
 * pieces of varying size).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cmig/bundle.h"
#include "fuzz_util.h"
#include "walk_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHOLE_MAX 48 /* files above this are handed out as streams */

static int open_bundle(struct cmig_bundle **b, const char *path, uint64_t in_memory_max,
                       struct cmig_err *err)
{
    struct cmig_limits lim;
    cmig_limits_default(&lim);
    lim.max_manifest_bytes = 1 << 20;
    lim.max_entry_bytes = 1 << 20;
    lim.max_total_bytes = 4 << 20;
    lim.max_entries = 1000;
    lim.in_memory_max = in_memory_max;
    lim.whole_max = WHOLE_MAX;
    struct cmig_open_opts o = {.flags = CMIG_OPEN_SKIP_SIGNATURE, .limits = &lim};
    cmig_err_clear(err);
    return cmig_bundle_open(b, path, &o, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    struct cmig_bundle *mem = NULL, *streamed = NULL;
    static struct cmig_err e1, e2; /* 1 KiB messages: keep them off the stack */
    int r1 = open_bundle(&mem, path, UINT64_MAX, &e1);
    int r2 = open_bundle(&streamed, path, 0, &e2);

    /* Read once or streamed, the same bytes get the same verdict. */
    REQUIRE((r1 == 0) == (r2 == 0));
    REQUIRE(e1.code == e2.code && strcmp(e1.msg, e2.msg) == 0);
    if (r1 != 0) {
        REQUIRE(r1 == e1.code && e1.msg[0] != '\0');
        REQUIRE(e1.code == CMIG_E_VERIFY || e1.code == CMIG_E_NOMEM || e1.code == CMIG_E_IO);
        close(fd);
        return 0;
    }
    REQUIRE(cmig_bundle_signer(mem) == NULL && cmig_bundle_claim(mem) == NULL);
    REQUIRE(cmig_bundle_size(mem) == size);
    const struct cmig_manifest *m = cmig_bundle_manifest(mem);
    const struct cmig_manifest *m2 = cmig_bundle_manifest(streamed);
    REQUIRE(m && m2 && m->n == m2->n);
    REQUIRE(memcmp(cmig_bundle_manifest_sha256(mem), cmig_bundle_manifest_sha256(streamed), 32) ==
            0);

    /* Both walks, with files handed out whole and as streams read back in
     * pieces, over one of the two (which one follows the input); a walk
     * that hands nothing out, and still checks every entry, over the
     * other. */
    unsigned mask = size ? data[size / 2] : 0;
    struct cmig_bundle *walked = (size & 1) ? mem : streamed;
    struct cmig_bundle *other = (size & 1) ? streamed : mem;
    check_walks(walked, mask, data + size / 3, size - size / 3, WHOLE_MAX);
    cmig_err_clear(&e1);
    REQUIRE(cmig_bundle_each_file(other, NULL, NULL, NULL, &e1) == 0);

    cmig_bundle_close(mem);
    cmig_bundle_close(streamed);
    close(fd);
    return 0;
}
