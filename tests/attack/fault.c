/*
 * fault.c - an LD_PRELOAD object that makes one chosen allocation or one
 * chosen file-system call fail, so that the error paths behind it run.
 *
 *   FAULT_ALLOC=N        the Nth allocation (malloc, calloc, realloc,
 *                        reallocarray, strdup, strndup, posix_memalign,
 *                        aligned_alloc, memalign) returns NULL with ENOMEM;
 *                        0 fails none and only counts
 *   FAULT_ALLOC_AFTER=1  and every allocation after it fails too
 *   FAULT_IO=CALL:N:ERR  the Nth CALL (write, fsync, fdatasync, close,
 *                        rename, mkostemp, fchmod) on a regular file open
 *                        for writing, a directory (fsync), or a path fails
 *                        with errno ERR (ENOSPC, EIO, EDQUOT or a number);
 *                        CALL may be "any" to count them all together
 *   FAULT_REPORT=FILE    at exit, "allocs A io I fired F" is written there
 *   FAULT_STACK=1        print the stack of the failing call (sanitizer
 *                        builds only)
 *
 * Counting starts when this object's constructor runs, after the C library
 * and any sanitizer runtime have started, so what fails is the program's
 * own work, not process start-up. Under AddressSanitizer it goes first in
 * LD_PRELOAD with ASAN_OPTIONS=verify_asan_link_order=0: the sanitizer's
 * allocator is then what dlsym(RTLD_NEXT) finds, and every block still
 * comes from it, so leak checking sees everything. strdup and strndup are
 * defined here because the sanitizer's own versions would not pass
 * through malloc.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Sanitizer runtimes provide this; other builds leave it NULL. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_close)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_mkostemp)(char *, int);
static int (*real_fchmod)(int, mode_t);

/* dlsym may allocate while the real functions are being looked up: those
 * few blocks come from here and are never given back. */
static _Alignas(16) unsigned char early[8192];
static size_t early_used;
static int resolving;

static int armed; /* set by the constructor */
static unsigned long alloc_fail_at, allocs;
static int alloc_fail_after;
static char io_call[16];
static unsigned long io_fail_at, ios;
static int io_errno;
static unsigned long fired;
static const char *report_path;
static int want_stack;

static void *early_alloc(size_t n)
{
    size_t at = (early_used + 15) & ~(size_t)15;
    if (at + n > sizeof early)
        return NULL;
    early_used = at + n;
    return early + at;
}

static int is_early(const void *p)
{
    return (const unsigned char *)p >= early && (const unsigned char *)p < early + sizeof early;
}

#define RESOLVE(name) (*(void **)&real_##name = dlsym(RTLD_NEXT, #name))

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = 1;
    RESOLVE(calloc);
    RESOLVE(realloc);
    RESOLVE(free);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(memalign);
    RESOLVE(write);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(close);
    RESOLVE(rename);
    RESOLVE(mkostemp);
    RESOLVE(fchmod);
    RESOLVE(malloc); /* last: its being set means the rest is */
    resolving = 0;
}

static void say_stack(const char *what)
{
    if (!want_stack)
        return;
    char line[96];
    int n = snprintf(line, sizeof line, "fault: %s fails here\n", what);
    if (n > 0 && real_write)
        real_write(2, line, (size_t)n);
    if (__sanitizer_print_stack_trace)
        __sanitizer_print_stack_trace();
}

/* Decides whether this allocation is the one that fails. */
static int alloc_fails(void)
{
    if (!armed)
        return 0;
    allocs++;
    if (alloc_fail_at &&
        (allocs == alloc_fail_at || (alloc_fail_after && allocs > alloc_fail_at))) {
        int first = allocs == alloc_fail_at;
        fired++;
        if (first) {
            armed = 0; /* the stack printer may allocate */
            say_stack("allocation");
            armed = 1;
        }
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

/* The same for a file-system call on a regular file (fd >= 0), or on a
 * path (fd < 0). */
static int io_fails(const char *call, int fd)
{
    if (!armed || !io_call[0])
        return 0;
    if (strcmp(io_call, "any") != 0 && strcmp(io_call, call) != 0)
        return 0;
    if (fd >= 0) {
        /* Only files being written, and directories being synced: a
         * read-only file's close cannot lose data, so its failure proves
         * nothing. */
        struct stat st;
        int fl = fcntl(fd, F_GETFL);
        if (fstat(fd, &st) != 0 || fl < 0)
            return 0;
        int dir_sync = S_ISDIR(st.st_mode) && strncmp(call, "fsync", 5) == 0;
        if (!dir_sync && (!S_ISREG(st.st_mode) || (fl & O_ACCMODE) == O_RDONLY))
            return 0;
    }
    if (++ios != io_fail_at)
        return 0;
    fired++;
    armed = 0;
    say_stack(call);
    armed = 1;
    return 1;
}

static unsigned long env_number(const char *name)
{
    const char *s = getenv(name);
    return s && *s ? strtoul(s, NULL, 10) : 0;
}

__attribute__((constructor)) static void fault_start(void)
{
    resolve();
    alloc_fail_at = env_number("FAULT_ALLOC");
    alloc_fail_after = env_number("FAULT_ALLOC_AFTER") != 0;
    want_stack = env_number("FAULT_STACK") != 0;
    report_path = getenv("FAULT_REPORT");
    const char *io = getenv("FAULT_IO");
    if (io && *io) {
        /* CALL:N:ERRNO */
        const char *c1 = strchr(io, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 && c2 && (size_t)(c1 - io) < sizeof io_call) {
            memcpy(io_call, io, (size_t)(c1 - io));
            io_call[c1 - io] = '\0';
            io_fail_at = strtoul(c1 + 1, NULL, 10);
            const char *e = c2 + 1;
            io_errno = strcmp(e, "ENOSPC") == 0   ? ENOSPC
                       : strcmp(e, "EIO") == 0    ? EIO
                       : strcmp(e, "EDQUOT") == 0 ? EDQUOT
                                                  : (int)strtol(e, NULL, 10);
        }
    }
    armed = 1;
}

/* The report is written while the counts are final, before the sanitizer
 * runtime's own exit work (leak checking) runs. */
__attribute__((destructor)) static void fault_end(void)
{
    armed = 0;
    if (!report_path)
        return;
    char line[128];
    int n = snprintf(line, sizeof line, "allocs %lu io %lu fired %lu\n", allocs, ios, fired);
    int fd = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (n > 0)
            real_write(fd, line, (size_t)n);
        real_close(fd);
    }
}

/* ---- allocation --------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
    resolve();
    if (!real_malloc)
        return early_alloc(n);
    return alloc_fails() ? NULL : real_malloc(n);
}

EXPORT void *calloc(size_t n, size_t size)
{
    resolve();
    if (!real_calloc) {
        /* early[] is static, so already zero */
        return size && n > SIZE_MAX / size ? NULL : early_alloc(n * size);
    }
    return alloc_fails() ? NULL : real_calloc(n, size);
}

EXPORT void *realloc(void *p, size_t n)
{
    resolve();
    if (is_early(p)) {
        /* Rare: an early block grows after start-up; copy it out. */
        size_t room = (size_t)(early + sizeof early - (unsigned char *)p);
        void *q = malloc(n);
        if (q)
            memcpy(q, p, n < room ? n : room);
        return q;
    }
    if (!real_realloc)
        return NULL;
    return alloc_fails() ? NULL : real_realloc(p, n);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

EXPORT void free(void *p)
{
    if (!p || is_early(p))
        return;
    resolve();
    if (real_free)
        real_free(p);
}

EXPORT char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

EXPORT char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (alloc_fails())
        return ENOMEM;
    return real_posix_memalign ? real_posix_memalign(out, align, n) : ENOMEM;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    return alloc_fails() || !real_aligned_alloc ? NULL : real_aligned_alloc(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    resolve();
    return alloc_fails() || !real_memalign ? NULL : real_memalign(align, n);
}

/* ---- file-system calls -------------------------------------------------- */

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    resolve();
    if (io_fails("write", fd)) {
        errno = io_errno;
        return -1;
    }
    return real_write(fd, buf, n);
}

EXPORT int fsync(int fd)
{
    resolve();
    if (io_fails("fsync", fd)) {
        errno = io_errno;
        return -1;
    }
    return real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
    resolve();
    if (io_fails("fdatasync", fd)) {
        errno = io_errno;
        return -1;
    }
    return real_fdatasync(fd);
}

/* A failing close still closes, as the kernel's does. */
EXPORT int close(int fd)
{
    resolve();
    int fails = io_fails("close", fd);
    int r = real_close(fd);
    if (fails) {
        errno = io_errno;
        return -1;
    }
    return r;
}

EXPORT int rename(const char *from, const char *to)
{
    resolve();
    if (io_fails("rename", -1)) {
        errno = io_errno;
        return -1;
    }
    return real_rename(from, to);
}

EXPORT int mkostemp(char *tmpl, int flags)
{
    resolve();
    if (io_fails("mkostemp", -1)) {
        errno = io_errno;
        return -1;
    }
    return real_mkostemp(tmpl, flags);
}

EXPORT int fchmod(int fd, mode_t mode)
{
    resolve();
    if (io_fails("fchmod", fd)) {
        errno = io_errno;
        return -1;
    }
    return real_fchmod(fd, mode);
}
