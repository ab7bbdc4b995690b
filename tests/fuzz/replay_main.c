/*
 * replay_main.c - runs a libFuzzer target over every file of a corpus
 * directory without libFuzzer, so that any compiler (and the sanitizers)
 * can replay the corpus in the ordinary test run.
 *
 * It prints one TAP-like line. A crash or a sanitizer report ends the run
 * with a failing status, which the test runner counts as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INPUT_MAX (16u << 20) /* corpus files are small; refuse surprises */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole regular file into a malloc'd buffer of exactly its size,
 * so that a read past the end is caught by the sanitizers. */
static int read_input(int dirfd, const char *name, uint8_t **data, size_t *size)
{
    struct stat st;
    size_t got = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    *data = NULL;
    *size = 0;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > INPUT_MAX) {
        close(fd);
        return -1;
    }
    *data = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!*data) {
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, *data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *size = got;
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "";
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned long n = 0;
    int bad = 0;

    if (!d) {
        printf("not ok - corpus %s: no inputs\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        uint8_t *data;
        size_t size;
        if (e->d_name[0] == '.')
            continue;
        if (read_input(dirfd(d), e->d_name, &data, &size) != 0) {
            printf("# %s/%s: cannot read\n", dir, e->d_name);
            bad = 1;
            continue;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        n++;
    }
    closedir(d);
    if (n == 0) {
        printf("not ok - corpus %s: no inputs\n", dir);
        return 1;
    }
    if (bad) {
        printf("not ok - corpus %s: unreadable inputs\n", dir);
        return 1;
    }
    printf("ok - corpus %s: %lu inputs\n", dir, n);
    return 0;
}
