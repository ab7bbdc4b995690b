/*
 * srcdir.c - finding the migrations in a directory: listing, format
 * detection, and the file name rules of golang-migrate, goose, dbmate and
 * Flyway.
 *
 * Invariant: a directory is accepted only when every file that its tool
 * would run is understood by cmig, and each is assigned to exactly one
 * migration. A file the tool would run but cmig cannot (goose .go
 * migrations, Flyway repeatable or dotted-version migrations, a
 * golang-migrate file with an unknown extension, versions beyond int64) is
 * an error, never a silent skip; a file the tool itself ignores is skipped
 * with a warning. Results are sorted, so they do not depend on readdir
 * order.
 *
 * Choices where the tools leave room:
 *  - Only regular files directly in the directory are read. Names starting
 *    with '.' are ignored silently, subdirectories with a warning. A
 *    symbolic link to a regular file is followed (the file is read like any
 *    other); a link to anything else, or a dangling link, is an error, as
 *    are FIFOs, sockets and devices.
 *  - Every other name must be well-formed UTF-8 without control characters,
 *    because names end up in the manifest and in log lines.
 *  - A migration's name is the title (golang-migrate), name (goose,
 *    dbmate) or description (Flyway) from the file name, kept as written:
 *    Flyway shows underscores as spaces, cmig keeps them so that the name
 *    reads the same for every layout and maps back to the file. When the
 *    file name has no title ("1_.up.sql"), the version in decimal is used.
 *  - Versions are decimal digits only and must fit a signed 64-bit
 *    integer; "1" and "001" are the same version.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmig/srcdir.h"
#include "srcdir_int.h"

/* No real migration directory comes close; a bigger one is refused rather
 * than listed into memory. */
#define MAX_ENTRIES 100000
/* How much of each file auto-detection reads. */
#define PEEK_MAX (64 * 1024)

const char *cmig_dir_format_name(enum cmig_dir_format f)
{
    switch (f) {
    case CMIG_DIR_AUTO:
        return "auto";
    case CMIG_DIR_GOLANG_MIGRATE:
        return "golang-migrate";
    case CMIG_DIR_GOOSE:
        return "goose";
    case CMIG_DIR_DBMATE:
        return "dbmate";
    case CMIG_DIR_FLYWAY:
        return "flyway";
    }
    return "unknown";
}

int cmig_dir_format_parse(const char *s)
{
    if (!s)
        return -1;
    for (int f = CMIG_DIR_AUTO; f <= CMIG_DIR_FLYWAY; f++)
        if (strcmp(s, cmig_dir_format_name((enum cmig_dir_format)f)) == 0)
            return f;
    return -1;
}

/* One file that names a migration direction. */
struct entry {
    int64_t version;
    int is_down;
    enum cmig_content content;
    char *file;
    char *title; /* may be "" */
};

struct scan {
    struct cmig_srcdir *out;
    const char *dir;
    DIR *dirp;
    int dirfd;    /* dirfd(dirp), or -1 */
    char **names; /* regular files (or links to them), sorted */
    size_t n_names, cap_names;
    struct entry *ents;
    size_t n_ents, cap_ents;
    const char *first_sql, *first_json; /* golang-migrate: mixing is an error */
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int warn(struct scan *s, struct cmig_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int warn(struct scan *s, struct cmig_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cmig_err_nomem(err);
    char **w = realloc(s->out->warnings, (s->out->n_warnings + 1) * sizeof *w);
    if (!w) {
        free(msg);
        return cmig_err_nomem(err);
    }
    w[s->out->n_warnings++] = msg;
    s->out->warnings = w;
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t digits(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(s[i]))
        i++;
    return i;
}

/* Decimal digits to int64; -1 when they do not fit. */
static int parse_version(const char *s, size_t n, int64_t *v)
{
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static int version_of(const char *file, const char *s, size_t n, int64_t *v, struct cmig_err *err)
{
    if (parse_version(s, n, v))
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': version does not fit in a 64-bit integer",
                            file);
    return 0;
}

static int add_entry(struct scan *s, const char *file, int64_t version, int is_down,
                     enum cmig_content content, const char *title, size_t title_len,
                     struct cmig_err *err)
{
    if (grow((void **)&s->ents, &s->cap_ents, s->n_ents + 1, sizeof *s->ents))
        return cmig_err_nomem(err);
    struct entry *e = &s->ents[s->n_ents];
    e->version = version;
    e->is_down = is_down;
    e->content = content;
    e->file = strdup(file);
    e->title = strndup(title, title_len);
    if (!e->file || !e->title) {
        free(e->file);
        free(e->title);
        return cmig_err_nomem(err);
    }
    s->n_ents++;
    return 0;
}

/* golang-migrate: ^([0-9]+)_(.*)\.(down|up)\.(.*)$ with a greedy title, so
 * the direction is the last ".up." or ".down." in the name. Returns 0 when
 * the name does not match; else fills the parts. */
struct gm_name {
    size_t ver_len;
    size_t title_off, title_len;
    int is_down;
    size_t ext_off;
};

static int gm_match(const char *name, size_t n, struct gm_name *g)
{
    size_t d = digits(name, n);
    if (d == 0 || d >= n || name[d] != '_')
        return 0;
    size_t t = d + 1;
    for (size_t p = n; p-- > t;) {
        if (name[p] != '.')
            continue;
        if (n - p >= 4 && memcmp(name + p, ".up.", 4) == 0) {
            g->is_down = 0;
            g->ext_off = p + 4;
        } else if (n - p >= 6 && memcmp(name + p, ".down.", 6) == 0) {
            g->is_down = 1;
            g->ext_off = p + 6;
        } else {
            continue;
        }
        g->ver_len = d;
        g->title_off = t;
        g->title_len = p - t;
        return 1;
    }
    return 0;
}

static int gm_known_ext(const char *name, size_t n, const struct gm_name *g)
{
    const char *ext = name + g->ext_off;
    size_t el = n - g->ext_off;
    return (el == 3 && memcmp(ext, "sql", 3) == 0) || (el == 4 && memcmp(ext, "json", 4) == 0);
}

static int classify_golang_migrate(struct scan *s, const char *name, struct cmig_err *err)
{
    size_t n = strlen(name);
    struct gm_name g;
    if (!gm_match(name, n, &g))
        return warn(s, err, "skipped '%s': not a golang-migrate file name", name);
    if (!gm_known_ext(name, n, &g))
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': unsupported migration file extension '.%s' (golang-migrate "
                            "would run it; cmig reads .sql and .json)",
                            name, name + g.ext_off);
    int json = name[g.ext_off] == 'j';
    int64_t v = 0;
    int rc;
    if ((rc = version_of(name, name, g.ver_len, &v, err)))
        return rc;
    if (json && !s->first_json)
        s->first_json = name;
    if (!json && !s->first_sql)
        s->first_sql = name;
    return add_entry(s, name, v, g.is_down, json ? CMIG_CONTENT_JSON : CMIG_CONTENT_SQL,
                     name + g.title_off, g.title_len, err);
}

/* goose (NumericComponent): only .sql and .go files are migrations; the
 * version is what comes before the first '_' and must be > 0. goose fails
 * on a .sql file whose name it cannot parse and skips such .go files. */
static int classify_goose(struct scan *s, const char *name, struct cmig_err *err)
{
    size_t n = strlen(name);
    int sql = ends_with(name, n, ".sql");
    int go = ends_with(name, n, ".go");
    if (!sql && !go)
        return warn(s, err, "skipped '%s': not a goose migration file name", name);
    const char *us = memchr(name, '_', n);
    size_t d = us ? (size_t)(us - name) : 0;
    int numeric = us && d > 0 && digits(name, d) == d;
    if (go) {
        if (ends_with(name, n, "_test.go") || !numeric)
            return warn(s, err, "skipped '%s': not a goose migration file name", name);
        return cmig_err_set(err, CMIG_E_INPUT, "goose Go migrations are not supported: '%s'", name);
    }
    if (!us)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': not a goose migration file name (no '_' after the version)",
                            name);
    if (!numeric)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': not a goose migration file name (the version before '_' "
                            "must be decimal digits)",
                            name);
    int64_t v = 0;
    int rc;
    if ((rc = version_of(name, name, d, &v, err)))
        return rc;
    if (v < 1)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': goose versions must be greater than zero",
                            name);
    return add_entry(s, name, v, 0, CMIG_CONTENT_SQL, name + d + 1, n - 4 - (d + 1), err);
}

/* dbmate: ^(\d+).*\.sql$, other files are ignored. The name is what
 * follows the digits, without one leading '_'. */
static int classify_dbmate(struct scan *s, const char *name, struct cmig_err *err)
{
    size_t n = strlen(name);
    size_t d = digits(name, n);
    if (d == 0 || !ends_with(name, n, ".sql") || n - 4 < d)
        return warn(s, err, "skipped '%s': not a dbmate migration file name", name);
    int64_t v = 0;
    int rc;
    if ((rc = version_of(name, name, d, &v, err)))
        return rc;
    size_t t = d < n - 4 && name[d] == '_' ? d + 1 : d;
    return add_entry(s, name, v, 0, CMIG_CONTENT_SQL, name + t, n - 4 - t, err);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Flyway: V<version>__<description>.sql, U<version>__... (undo: the down),
 * R__<description>.sql (repeatable). Flyway skips other names by default. */
static int classify_flyway(struct scan *s, const char *name, struct cmig_err *err)
{
    size_t n = strlen(name);
    if (ends_with(name, n, ".sql.conf"))
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': flyway per-script configuration files are not supported "
                            "(put '-- cmig:no-transaction' in the script instead)",
                            name);
    if (!ends_with(name, n, ".sql"))
        return warn(s, err, "skipped '%s': not a flyway migration file name", name);
    if (starts_with(name, "R__"))
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': flyway repeatable migrations are not supported", name);
    if (starts_with(name, "before") || starts_with(name, "after"))
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': flyway callback scripts are not supported",
                            name);
    if ((name[0] == 'v' || name[0] == 'u') && is_digit(name[1]))
        return warn(s, err,
                    "skipped '%s': not a flyway migration file name (flyway prefixes are "
                    "case-sensitive: 'V' and 'U')",
                    name);
    if ((name[0] != 'V' && name[0] != 'U') || !is_digit(name[1]))
        return warn(s, err, "skipped '%s': not a flyway migration file name", name);
    const char *sep = strstr(name + 1, "__");
    if (!sep || (size_t)(sep - name) > n - 4)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': no '__' between the flyway version and description", name);
    size_t vl = (size_t)(sep - name) - 1;
    const char *ver = name + 1;
    if (digits(ver, vl) != vl) {
        size_t k = 0;
        while (k < vl && (is_digit(ver[k]) || ver[k] == '.' || ver[k] == '_'))
            k++;
        if (k == vl)
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': version '%.*s' is not an integer (cmig needs integer "
                                "versions; dotted flyway versions are not supported)",
                                name, (int)vl, ver);
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': invalid flyway version '%.*s'", name, (int)vl,
                            ver);
    }
    int64_t v = 0;
    int rc;
    if ((rc = version_of(name, ver, vl, &v, err)))
        return rc;
    size_t t = (size_t)(sep - name) + 2;
    return add_entry(s, name, v, name[0] == 'U', CMIG_CONTENT_SQL, name + t, n - 4 - t, err);
}

/* Reads at most PEEK_MAX bytes of a file of the directory into buf. */
static int peek(struct scan *s, const char *name, char *buf, size_t *len, struct cmig_err *err)
{
    int rc = 0;
    *len = 0;
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open '%s'", name);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot stat '%s'", name);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cmig_err_set(err, CMIG_E_INPUT, "'%s': not a regular file", name);
        goto out;
    }
    while (*len < PEEK_MAX) {
        ssize_t r = read(fd, buf + *len, PEEK_MAX - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot read '%s'", name);
            goto out;
        }
        if (r == 0)
            break;
        *len += (size_t)r;
    }
out:
    close(fd);
    return rc;
}

/* Which marker lines a file's first bytes hold: 1 goose, 2 dbmate, 3 both. */
static int markers(const char *buf, size_t len)
{
    int found = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *p = buf + pos;
        size_t n = end - pos;
        enum cmig_goose_ann a = cmig_goose_annotation(p, n);
        if (a != CMIG_GOOSE_NONE && a != CMIG_GOOSE_INDENTED && a != CMIG_GOOSE_UNKNOWN)
            found |= 1;
        if (cmig_dbmate_marker(p, n, NULL) != CMIG_DBMATE_NONE)
            found |= 2;
        if (found == 3)
            break;
        pos = nl ? end + 1 : len;
    }
    return found;
}

static int flyway_like(const char *name, size_t n)
{
    if (!ends_with(name, n, ".sql"))
        return 0;
    if (starts_with(name, "R__"))
        return 1;
    return (name[0] == 'V' || name[0] == 'U') && is_digit(name[1]) && strstr(name, "__");
}

/* Decides the format: from names first, then from the first lines of
 * plain numbered .sql files (goose and dbmate name files alike). */
static int detect(struct scan *s, enum cmig_dir_format *f, struct cmig_err *err)
{
    const char *gm = NULL, *fw = NULL, *numbered = NULL, *goose_go = NULL;
    for (size_t i = 0; i < s->n_names; i++) {
        const char *name = s->names[i];
        size_t n = strlen(name);
        struct gm_name g;
        if (!gm && gm_match(name, n, &g) && gm_known_ext(name, n, &g))
            gm = name;
        if (!fw && flyway_like(name, n))
            fw = name;
        size_t d = digits(name, n);
        if (!numbered && d > 0 && ends_with(name, n, ".sql"))
            numbered = name;
        if (!goose_go && d > 0 && d < n && name[d] == '_' && ends_with(name, n, ".go") &&
            !ends_with(name, n, "_test.go"))
            goose_go = name;
    }
    if (gm && fw)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "cannot tell the format of '%s': it holds golang-migrate ('%s') and "
                            "flyway ('%s') file names; use --dir-format",
                            s->dir, gm, fw);
    if (gm) {
        *f = CMIG_DIR_GOLANG_MIGRATE;
        return 0;
    }
    if (fw) {
        *f = CMIG_DIR_FLYWAY;
        return 0;
    }
    if (!numbered && !goose_go) {
        if (s->n_names == 0)
            return cmig_err_set(err, CMIG_E_INPUT, "no migrations found in '%s'", s->dir);
        return cmig_err_set(err, CMIG_E_INPUT,
                            "no migrations found in '%s': no file name there looks like a "
                            "golang-migrate, goose, dbmate or flyway migration; use --dir-format "
                            "to read it as one",
                            s->dir);
    }
    const char *goose = goose_go, *dbmate = NULL;
    int rc = 0;
    char *buf = malloc(PEEK_MAX);
    if (!buf)
        return cmig_err_nomem(err);
    for (size_t i = 0; i < s->n_names && !(goose && dbmate); i++) {
        const char *name = s->names[i];
        size_t n = strlen(name);
        if (digits(name, n) == 0 || !ends_with(name, n, ".sql"))
            continue;
        size_t len;
        if ((rc = peek(s, name, buf, &len, err)))
            goto out;
        int m = markers(buf, len);
        if ((m & 1) && !goose)
            goose = name;
        if ((m & 2) && !dbmate)
            dbmate = name;
    }
    if (goose && dbmate) {
        rc = cmig_err_set(err, CMIG_E_INPUT,
                          "cannot tell the format of '%s': '%s' looks like goose and '%s' like "
                          "dbmate; use --dir-format",
                          s->dir, goose, dbmate);
    } else if (goose) {
        *f = CMIG_DIR_GOOSE;
    } else if (dbmate) {
        *f = CMIG_DIR_DBMATE;
    } else {
        rc = cmig_err_set(err, CMIG_E_INPUT,
                          "cannot tell the format of '%s': '%s' has neither a '-- +goose Up' "
                          "annotation nor a '-- migrate:up' marker in its first %d KiB; use "
                          "--dir-format",
                          s->dir, numbered, PEEK_MAX / 1024);
    }
out:
    free(buf);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    if (x->is_down != y->is_down)
        return x->is_down - y->is_down;
    return strcmp(x->file, y->file);
}

/* Lists the directory into s->names (sorted), warning about what is
 * skipped and refusing what cannot be read safely. Names are checked in
 * sorted order, so that the error reported does not depend on readdir. */
static int list(struct scan *s, struct cmig_err *err)
{
    int rc = 0;
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open migration directory '%s'",
                              s->dir);
    /* Files are then opened relative to this handle, so that a rename of
     * the path during the scan cannot switch directories under us. */
    DIR *d = s->dirp = fdopendir(fd);
    if (!d) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "cannot open migration directory '%s'", s->dir);
        close(fd);
        return rc;
    }
    s->dirfd = dirfd(d);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                return cmig_err_errno(err, CMIG_E_IO, errno, "cannot list '%s'", s->dir);
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        if (s->n_names == MAX_ENTRIES)
            return cmig_err_set(err, CMIG_E_INPUT, "'%s': more than %d entries", s->dir,
                                MAX_ENTRIES);
        if (grow((void **)&s->names, &s->cap_names, s->n_names + 1, sizeof *s->names))
            return cmig_err_nomem(err);
        if (!(s->names[s->n_names] = strdup(de->d_name)))
            return cmig_err_nomem(err);
        s->n_names++;
    }
    if (s->n_names > 1)
        qsort(s->names, s->n_names, sizeof *s->names, name_cmp);

    /* Keep only regular files (and links to them) in s->names. */
    size_t kept = 0;
    for (size_t i = 0; i < s->n_names; i++) {
        char *name = s->names[i];
        size_t n = strlen(name);
        if (!cmig_name_printable(name, n)) {
            char shown[256];
            cmig_escape_name(shown, sizeof shown, name, n);
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': file name is not valid UTF-8 or holds control characters",
                                shown);
        }
        struct stat st;
        if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return cmig_err_errno(err, CMIG_E_IO, errno, "cannot stat '%s'", name);
        int link = S_ISLNK(st.st_mode);
        if (link && fstatat(s->dirfd, name, &st, 0) != 0) {
            if (errno == ENOENT || errno == ELOOP)
                return cmig_err_set(err, CMIG_E_INPUT, "'%s': broken symbolic link", name);
            return cmig_err_errno(err, CMIG_E_IO, errno, "cannot stat '%s'", name);
        }
        if (S_ISDIR(st.st_mode)) {
            if ((rc =
                     warn(s, err, "skipped '%s': a directory (subdirectories are not read)", name)))
                return rc;
            free(name);
            s->names[i] = NULL;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            return cmig_err_set(err, CMIG_E_INPUT, "'%s': %snot a regular file", name,
                                link ? "symbolic link to " : "");
        s->names[i] = NULL;
        s->names[kept++] = name;
    }
    s->n_names = kept;
    return 0;
}

/* Turns the sorted entries into migrations: one up (and at most one down)
 * per version. */
static int pair(struct scan *s, struct cmig_err *err)
{
    struct cmig_srcdir *out = s->out;
    if (s->n_ents > 1)
        qsort(s->ents, s->n_ents, sizeof *s->ents, entry_cmp);
    out->migrations = calloc(s->n_ents ? s->n_ents : 1, sizeof *out->migrations);
    if (!out->migrations)
        return cmig_err_nomem(err);
    int same_file = out->format == CMIG_DIR_GOOSE || out->format == CMIG_DIR_DBMATE;
    size_t i = 0;
    while (i < s->n_ents) {
        size_t j = i;
        while (j < s->n_ents && s->ents[j].version == s->ents[i].version)
            j++;
        struct entry *up = NULL, *down = NULL;
        for (size_t k = i; k < j; k++) {
            struct entry *e = &s->ents[k];
            struct entry **slot = e->is_down ? &down : &up;
            if (*slot)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "duplicate migration version %" PRId64 ": '%s' and '%s'",
                                    e->version, (*slot)->file, e->file);
            *slot = e;
        }
        if (!up)
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': down migration without an up migration (version %" PRId64
                                ")",
                                down->file, down->version);
        struct cmig_src_migration *m = &out->migrations[out->n];
        m->version = up->version;
        m->content = up->content;
        if (up->title[0]) {
            m->name = up->title;
            up->title = NULL;
        } else if (asprintf(&m->name, "%" PRId64, up->version) < 0) {
            m->name = NULL;
            return cmig_err_nomem(err);
        }
        m->up_file = up->file;
        up->file = NULL;
        if (down) {
            m->down_file = down->file;
            down->file = NULL;
        } else if (same_file && !(m->down_file = strdup(m->up_file))) {
            out->n++;
            return cmig_err_nomem(err);
        }
        out->n++;
        i = j;
    }
    return 0;
}

static void scan_free(struct scan *s)
{
    for (size_t i = 0; i < s->n_names; i++)
        free(s->names[i]);
    free(s->names);
    for (size_t i = 0; i < s->n_ents; i++) {
        free(s->ents[i].file);
        free(s->ents[i].title);
    }
    free(s->ents);
    if (s->dirp)
        closedir(s->dirp);
}

static void migrations_free(struct cmig_srcdir *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->migrations[i].name);
        free(d->migrations[i].up_file);
        free(d->migrations[i].down_file);
    }
    free(d->migrations);
    d->migrations = NULL;
    d->n = 0;
}

int cmig_srcdir_scan(struct cmig_srcdir *out, const char *dir, enum cmig_dir_format format,
                     struct cmig_err *err)
{
    if (!out)
        return cmig_err_set(err, CMIG_E_USAGE, "cmig_srcdir_scan: no output");
    memset(out, 0, sizeof *out);
    if (!dir || !*dir)
        return cmig_err_set(err, CMIG_E_USAGE, "no migration directory given");
    if ((int)format < CMIG_DIR_AUTO || (int)format > CMIG_DIR_FLYWAY)
        return cmig_err_set(err, CMIG_E_USAGE, "unknown directory format %d", (int)format);
    struct scan s = {.out = out, .dir = dir, .dirfd = -1};
    int rc;
    if ((rc = list(&s, err)))
        goto out;
    if (format == CMIG_DIR_AUTO && (rc = detect(&s, &format, err)))
        goto out;
    out->format = format;
    for (size_t i = 0; i < s.n_names && !rc; i++) {
        const char *name = s.names[i];
        switch (format) {
        case CMIG_DIR_GOLANG_MIGRATE:
            rc = classify_golang_migrate(&s, name, err);
            break;
        case CMIG_DIR_GOOSE:
            rc = classify_goose(&s, name, err);
            break;
        case CMIG_DIR_DBMATE:
            rc = classify_dbmate(&s, name, err);
            break;
        case CMIG_DIR_FLYWAY:
            rc = classify_flyway(&s, name, err);
            break;
        case CMIG_DIR_AUTO:
            break;
        }
    }
    if (rc)
        goto out;
    if (s.first_sql && s.first_json) {
        rc = cmig_err_set(err, CMIG_E_INPUT,
                          "'%s' mixes .sql and .json migrations ('%s' and '%s'); a directory "
                          "holds migrations for one kind of database",
                          dir, s.first_sql, s.first_json);
        goto out;
    }
    if (s.n_ents == 0) {
        rc = cmig_err_set(err, CMIG_E_INPUT, "no migrations found in '%s'", dir);
        goto out;
    }
    rc = pair(&s, err);
out:
    scan_free(&s);
    if (rc)
        migrations_free(out); /* warnings stay: they may explain the failure */
    return rc;
}

void cmig_srcdir_free(struct cmig_srcdir *d)
{
    if (!d)
        return;
    migrations_free(d);
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    free(d->warnings);
    d->warnings = NULL;
    d->n_warnings = 0;
}
