/*
 * fuzz_archive.c - libFuzzer target for everything a bundle meets after its
 * signature: the gzip layer, the tar reader, every entry check, the
 * manifest loader and the full walk.
 *
 * The input is the bundle file itself, opened with CMIG_OPEN_SKIP_SIGNATURE
 * so that fuzzing reaches past the signature check (which would otherwise
 * refuse every mutated input). Small caps keep each run fast. Whatever the
 * input, the reader must refuse cleanly (CMIG_E_VERIFY or a resource error)
 * or accept a bundle whose every file it can hand out again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmig/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_file(void *ctx, const struct cmig_migration *m, int is_down,
                      const uint8_t *bytes, size_t len, struct cmig_err *err)
{
    (void)m;
    (void)is_down;
    (void)bytes;
    (void)len;
    (void)err;
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("bundle", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct cmig_limits lim;
    cmig_limits_default(&lim);
    lim.max_manifest_bytes = 1 << 20;
    lim.max_entry_bytes = 1 << 20;
    lim.max_total_bytes = 4 << 20;
    lim.max_entries = 1000;
    struct cmig_open_opts o = {.flags = CMIG_OPEN_SKIP_SIGNATURE, .limits = &lim};
    struct cmig_bundle *b = NULL;
    struct cmig_err err;
    cmig_err_clear(&err);
    if (cmig_bundle_open(&b, path, &o, &err) == 0) {
        const struct cmig_manifest *m = cmig_bundle_manifest(b);
        size_t files = 0, expected = 0;
        for (size_t i = 0; i < m->n; i++)
            expected += m->migrations[i].down.path ? 2 : 1;
        cmig_err_clear(&err);
        /* An accepted bundle must give back exactly its files. */
        if (cmig_bundle_each_file(b, NULL, count_file, &files, &err) != 0 || files != expected)
            __builtin_trap();
        cmig_bundle_close(b);
    } else if (err.code != CMIG_E_VERIFY && err.code != CMIG_E_NOMEM && err.code != CMIG_E_IO) {
        __builtin_trap();
    }
    close(fd);
    return 0;
}
