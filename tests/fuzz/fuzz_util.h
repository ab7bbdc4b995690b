/*
 * fuzz_util.h - what several fuzz targets share: the assertion that ends a
 * run on a broken invariant, inputs turned into files the code under test
 * can open by path, and a source of small numbers taken from the input.
 *
 * A violated property calls abort(), which libFuzzer reports as a crash
 * and writes out the input, and which the corpus replay in the ordinary
 * test run reports as a failed suite.
 */
#ifndef CMIG_FUZZ_UTIL_H
#define CMIG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #c);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An anonymous in-memory file holding data, and the path that opens it
 * (/proc/self/fd/N), so that code which takes a path reads exactly these
 * bytes and nothing on disk. Returns the descriptor (close it when done),
 * or -1. */
static inline int fuzz_memfile(const void *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, p + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Small numbers drawn in turn from a few bytes of the input (cycling; all
 * zero when there are none), to choose piece sizes and the like without
 * giving up determinism. */
struct fuzz_draw {
    const uint8_t *p;
    size_t n, i;
};

static inline unsigned fuzz_draw_byte(struct fuzz_draw *d)
{
    if (d->n == 0)
        return 0;
    unsigned v = d->p[d->i % d->n];
    d->i++;
    return v;
}

#endif
