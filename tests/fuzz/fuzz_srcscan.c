/*
 * fuzz_srcscan.c - libFuzzer target for reading a migration directory by
 * its file names (cmig_srcdir_scan): the four layouts' name rules, format
 * detection from names and first lines, pairing ups with downs.
 *
 * Input: one byte choosing the format (value % 5: auto, golang-migrate,
 * goose, dbmate, flyway), then NUL-separated records, each a file name up
 * to its first newline and the file's content after it. The files are
 * created in a scratch directory (names holding '/', empty names and
 * names starting with '.' are skipped; a name ending in '/' makes a
 * subdirectory). Properties:
 *   - a refusal is CMIG_E_INPUT or CMIG_E_USAGE with a printable message;
 *   - a result names a concrete format (the one forced, if any), lists
 *     migrations by strictly ascending version, each with a non-empty
 *     printable name, an up file and at most a down file that exist among
 *     the files created, JSON content only for golang-migrate;
 *   - no file is used twice, except a goose or dbmate file as both
 *     directions of its own migration;
 *   - the same directory scanned again gives the same result.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmig/srcdir.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 24
#define NAME_MAX_BYTES 200

struct made {
    char name[NAME_MAX_BYTES + 1];
    int is_dir;
};

static char scratch[4096];

static void drop_scratch(void)
{
    rmdir(scratch);
}

/* One scratch directory per process, made on first use and removed at
 * exit (each input removes what it made). */
static int scratch_dir(void)
{
    if (scratch[0])
        return 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/cmig-fuzz-srcscan.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        scratch[0] = '\0';
        return -1;
    }
    atexit(drop_scratch);
    return 0;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static const struct made *find_made(const struct made *m, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!m[i].is_dir && strcmp(m[i].name, name) == 0)
            return &m[i];
    return NULL;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_result(const struct cmig_srcdir *d, enum cmig_dir_format forced,
                         const struct made *m, size_t n_made)
{
    REQUIRE(d->format != CMIG_DIR_AUTO);
    REQUIRE(forced == CMIG_DIR_AUTO || d->format == forced);
    size_t uses[MAX_FILES] = {0};
    for (size_t i = 0; i < d->n; i++) {
        const struct cmig_src_migration *g = &d->migrations[i];
        REQUIRE(i == 0 || g->version > d->migrations[i - 1].version);
        REQUIRE(g->name && g->name[0] && printable(g->name));
        REQUIRE(cmig_utf8_valid(g->name, strlen(g->name)));
        REQUIRE(g->content == CMIG_CONTENT_SQL ||
                (g->content == CMIG_CONTENT_JSON && d->format == CMIG_DIR_GOLANG_MIGRATE));
        const struct made *up = g->up_file ? find_made(m, n_made, g->up_file) : NULL;
        REQUIRE(up != NULL);
        uses[up - m]++;
        if (g->down_file) {
            const struct made *down = find_made(m, n_made, g->down_file);
            REQUIRE(down != NULL);
            int one_file = d->format == CMIG_DIR_GOOSE || d->format == CMIG_DIR_DBMATE;
            REQUIRE(one_file ? down == up : down != up);
            if (down != up)
                uses[down - m]++;
        }
    }
    for (size_t i = 0; i < n_made; i++)
        REQUIRE(uses[i] <= 1);
    for (size_t i = 0; i < d->n_warnings; i++)
        REQUIRE(d->warnings[i] && printable(d->warnings[i]));
}

static void require_same(const struct cmig_srcdir *a, const struct cmig_srcdir *b)
{
    REQUIRE(a->format == b->format && a->n == b->n && a->n_warnings == b->n_warnings);
    for (size_t i = 0; i < a->n; i++) {
        const struct cmig_src_migration *x = &a->migrations[i], *y = &b->migrations[i];
        REQUIRE(x->version == y->version && same_str(x->name, y->name) &&
                same_str(x->up_file, y->up_file) && same_str(x->down_file, y->down_file) &&
                x->content == y->content);
    }
}

static void remove_made(const struct made *m, size_t n)
{
    char path[8192];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", scratch, m[i].name);
        if (m[i].is_dir)
            rmdir(path);
        else
            unlink(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || scratch_dir() != 0)
        return 0;
    enum cmig_dir_format forced = (enum cmig_dir_format)(data[0] % 5);
    static struct made made[MAX_FILES];
    size_t n_made = 0;
    char path[8192];

    const uint8_t *p = data + 1, *end = data + size;
    while (p < end && n_made < MAX_FILES) {
        const uint8_t *rec_end = memchr(p, '\0', (size_t)(end - p));
        if (!rec_end)
            rec_end = end;
        const uint8_t *nl = memchr(p, '\n', (size_t)(rec_end - p));
        const uint8_t *name_end = nl ? nl : rec_end;
        size_t name_len = (size_t)(name_end - p);
        int is_dir = name_len > 1 && name_end[-1] == '/';
        if (is_dir)
            name_len--;
        int usable =
            name_len > 0 && name_len <= NAME_MAX_BYTES && p[0] != '.' && !memchr(p, '/', name_len);
        if (usable) {
            struct made *m = &made[n_made];
            memcpy(m->name, p, name_len);
            m->name[name_len] = '\0';
            m->is_dir = is_dir;
            snprintf(path, sizeof path, "%s/%s", scratch, m->name);
            int ok;
            if (is_dir) {
                ok = mkdir(path, 0700) == 0;
            } else {
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                ok = fd >= 0;
                if (ok) {
                    const uint8_t *c = nl ? nl + 1 : rec_end;
                    size_t len = (size_t)(rec_end - c);
                    ok = write(fd, c, len) == (ssize_t)len;
                    close(fd);
                    if (!ok)
                        unlink(path);
                }
            }
            if (ok)
                n_made++; /* a name given twice is created once */
        }
        p = rec_end + 1;
    }

    static struct cmig_err err;
    struct cmig_srcdir d, again;
    memset(&d, 0, sizeof d);
    memset(&again, 0, sizeof again);
    cmig_err_clear(&err);
    int rc = cmig_srcdir_scan(&d, scratch, forced, &err);
    if (rc != 0) {
        REQUIRE(rc == err.code && (err.code == CMIG_E_INPUT || err.code == CMIG_E_USAGE));
        REQUIRE(err.msg[0] && printable(err.msg));
    } else {
        check_result(&d, forced, made, n_made);
        cmig_err_clear(&err);
        REQUIRE(cmig_srcdir_scan(&again, scratch, forced, &err) == 0);
        require_same(&d, &again);
    }
    cmig_srcdir_free(&d);
    cmig_srcdir_free(&again);
    remove_made(made, n_made);
    return 0;
}
