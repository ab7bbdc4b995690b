/*
 * mutate.c - the mutation campaign's driver: thousands of damaged copies
 * of a signed bundle and of its signature, each given to the real
 * `cmig-run up` against SQLite and PostgreSQL.
 *
 *   mutate --run CMIG_RUN --bundle GOOD.cmig --pubkey K.pub --dir WORKDIR
 *          --pg-good URL --pg-refused URL --pg-comment URL --pg-log FILE
 *          [--jobs N] [--stride K] [--pg-every K]
 *
 * Damage: each byte replaced by several values (every single-bit flip,
 * the inverse, and a few fixed bytes: NUL, LF, CR, space, 'A', DEL; each
 * value once per offset), every truncation, and appended tails (one byte
 * up to more than 1 MiB, so that the bundle leaves the in-memory path).
 * The same for the .minisig, with tails up to past its 16 KiB cap.
 *
 * Expected: every damaged bundle is refused with exit 3 and an error
 * message, the SQLite file is never created, and the PostgreSQL server
 * logs no connection and no statement while they run. A damaged
 * signature is held to the same, except where the damage leaves the
 * signed part of the file unchanged - the untrusted comment, or how the
 * lines end - which minisign's format does not protect: those may be
 * refused or accepted, and when accepted the run must be the good one's
 * (exit 0, the same database afterwards; on PostgreSQL one connection
 * each, to a database where the good bundle is applied exactly once).
 * Whether the signed part is unchanged is decided here, from the text,
 * without asking cmig's parser.
 *
 * --stride K tries only every Kth damaged copy (a quick look while
 * working on this; the campaign is K = 1). --pg-every K sends only every
 * Kth damaged copy to PostgreSQL as well as to SQLite (the copies whose
 * signed part is intact always go to both): SQLite alone, every copy,
 * costs half the time where minutes matter. cmig-run is fork/exec'd
 * directly, N at a time (default 2), with an
 * environment holding only PATH, HOME, TMPDIR, LD_LIBRARY_PATH and the
 * sanitizer options. Prints "ok - mutate: ..." / "not ok - mutate: ..."
 * lines with the figures, and "# ..." lines with the exit-code
 * histograms. Exit 0 when every check passes, 1 when one fails, 2 on a
 * setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define MAX_JOBS 16
#define SHOW_MAX 6
#define TAIL_BIG ((1u << 20) + 1) /* past the 1 MiB read-into-memory size */
#define SIG_TAIL_BIG (16384 + 1)  /* past the signature file's cap */

extern char **environ;

static const uint8_t XORS[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
static const uint8_t REPLACE[] = {0x00, '\n', '\r', ' ', 'A', 0x7f};

enum kind { K_BYTE, K_TRUNC, K_TAIL };
enum file { F_BUNDLE, F_SIG };
enum dest { D_SQLITE, D_PG };

struct mutation {
    enum kind kind;
    enum file file;
    size_t off;  /* K_BYTE: offset; K_TRUNC: new length; K_TAIL: tail index */
    uint8_t val; /* K_BYTE: the new byte */
};

struct blob {
    uint8_t *p;
    size_t n;
};

/* An appended tail: name, bytes. */
struct tail {
    const char *name;
    struct blob b;
};

/* What one phase expects and saw. */
struct phase {
    const char *name;
    int may_accept; /* the signed part is intact: exit 0 allowed */
    int record;     /* the control: its database is the good one */
    const char *pg_url;
    size_t pg_every; /* PostgreSQL gets every Nth copy (SQLite all) */
    unsigned started_sqlite, started_pg;
    unsigned runs, refused, accepted, bad, created;
    unsigned pg_accepted;
    unsigned hist[256 + 65]; /* exit codes; 256 + n: killed by signal n */
    char shown[SHOW_MAX][160];
    unsigned n_shown;
};

static struct {
    const char *run, *bundle_path, *pubkey, *dir, *pg_good, *pg_refused, *pg_comment, *pg_log;
    int jobs;
    size_t stride, pg_every;
} cfg = {.jobs = 2, .stride = 1, .pg_every = 1};

static struct blob bundle, sig;
static struct tail bundle_tails[8], sig_tails[8];
static size_t n_bundle_tails, n_sig_tails;
static char good_fingerprint[2048];
static char **child_env;
static int failures;

static void report(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(int pass, const char *fmt, ...)
{
    va_list ap;
    printf("%s - mutate: ", pass ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (!pass)
        failures++;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("mutate: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct blob read_all(const char *path)
{
    struct blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open '%s': %s", path, strerror(errno));
    size_t cap = 0;
    for (;;) {
        if (b.n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *p = realloc(b.p, cap);
            if (!p)
                die("out of memory");
            b.p = p;
        }
        size_t got = fread(b.p + b.n, 1, cap - b.n, f);
        b.n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        die("cannot read '%s'", path);
    fclose(f);
    return b;
}

static void write_all(const char *path, const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot create '%s': %s", path, strerror(errno));
    const uint8_t *parts[2] = {a, b};
    size_t lens[2] = {na, nb};
    for (int i = 0; i < 2; i++) {
        size_t done = 0;
        while (done < lens[i]) {
            ssize_t w = write(fd, parts[i] + done, lens[i] - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                die("cannot write '%s': %s", path, strerror(errno));
            done += (size_t)w;
        }
    }
    if (close(fd) != 0)
        die("cannot write '%s': %s", path, strerror(errno));
}

/* ---- the damage ----------------------------------------------------------- */

/* The distinct new values tried at one offset, in a fixed order. */
static size_t values_at(uint8_t orig, uint8_t out[sizeof XORS + sizeof REPLACE])
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof XORS + sizeof REPLACE; i++) {
        uint8_t v = i < sizeof XORS ? (uint8_t)(orig ^ XORS[i]) : REPLACE[i - sizeof XORS];
        int seen = v == orig;
        for (size_t k = 0; k < n && !seen; k++)
            seen = out[k] == v;
        if (!seen)
            out[n++] = v;
    }
    return n;
}

static struct blob make_bytes(size_t n, uint8_t fill, uint32_t seed)
{
    struct blob b = {malloc(n ? n : 1), n};
    if (!b.p)
        die("out of memory");
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        if (seed) { /* xorshift32: the same "random" bytes every run */
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b.p[i] = (uint8_t)x;
        } else {
            b.p[i] = fill;
        }
    }
    return b;
}

static void make_tails(void)
{
    /* An empty gzip member, as a second `gzip -n` of nothing would add. */
    static const uint8_t empty_gzip[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3,
                                         3,    0,    0, 0, 0, 0, 0, 0, 0, 0};
    struct blob eg = make_bytes(sizeof empty_gzip, 0, 0);
    memcpy(eg.p, empty_gzip, sizeof empty_gzip);
    struct tail bt[] = {
        {"one NUL byte", make_bytes(1, 0, 0)},
        {"a newline", make_bytes(1, '\n', 0)},
        {"512 NUL bytes", make_bytes(512, 0, 0)},
        {"a 10240-byte NUL record", make_bytes(10240, 0, 0)},
        {"997 pseudo-random bytes", make_bytes(997, 0, 0x9e3779b9u)},
        {"an empty gzip member", eg},
        {"the bundle again", {bundle.p, bundle.n}},
        {"1 MiB + 1 pseudo-random bytes", make_bytes(TAIL_BIG, 0, 0x85ebca6bu)},
    };
    struct tail st[] = {
        {"a newline (an empty fifth line)", make_bytes(1, '\n', 0)},
        {"one 'x'", make_bytes(1, 'x', 0)},
        {"two newlines", make_bytes(2, '\n', 0)},
        {"a CR LF", make_bytes(2, '\r', 0)},
        {"the signature again", {sig.p, sig.n}},
        {"512 'A's", make_bytes(512, 'A', 0)},
        {"997 pseudo-random bytes", make_bytes(997, 0, 0xc2b2ae35u)},
        {"16 KiB + 1 'A's", make_bytes(SIG_TAIL_BIG, 'A', 0)},
    };
    st[3].b.p[1] = '\n';
    n_bundle_tails = sizeof bt / sizeof bt[0];
    n_sig_tails = sizeof st / sizeof st[0];
    memcpy(bundle_tails, bt, sizeof bt);
    memcpy(sig_tails, st, sizeof st);
}

/* Builds the damaged file into buf (capacity enough for the largest
 * tail); returns its length. */
static size_t apply(const struct mutation *m, uint8_t *buf)
{
    const struct blob *orig = m->file == F_BUNDLE ? &bundle : &sig;
    switch (m->kind) {
    case K_BYTE:
        memcpy(buf, orig->p, orig->n);
        buf[m->off] = m->val;
        return orig->n;
    case K_TRUNC:
        memcpy(buf, orig->p, m->off);
        return m->off;
    case K_TAIL: {
        const struct tail *t = m->file == F_BUNDLE ? &bundle_tails[m->off] : &sig_tails[m->off];
        memcpy(buf, orig->p, orig->n);
        memcpy(buf + orig->n, t->b.p, t->b.n);
        return orig->n + t->b.n;
    }
    }
    return 0;
}

static void describe(const struct mutation *m, char *out, size_t cap)
{
    const char *f = m->file == F_BUNDLE ? "bundle" : "signature";
    switch (m->kind) {
    case K_BYTE:
        snprintf(out, cap, "%s byte %zu: 0x%02x -> 0x%02x", f, m->off,
                 (m->file == F_BUNDLE ? bundle.p : sig.p)[m->off], m->val);
        break;
    case K_TRUNC:
        snprintf(out, cap, "%s cut to %zu bytes", f, m->off);
        break;
    case K_TAIL:
        snprintf(out, cap, "%s + %s", f,
                 m->file == F_BUNDLE ? bundle_tails[m->off].name : sig_tails[m->off].name);
        break;
    }
}

/* The signed part of a minisign signature file: lines 2 to 4 (the key id
 * and signature, the trusted comment, the global signature). Lines end
 * with LF or CR LF, the last one may lack it, and there must be exactly
 * four with a first one that is an untrusted comment. Returns 0 and the
 * three lines joined by LF into out, or -1 when the text does not have
 * that shape. */
static int signed_part(const uint8_t *t, size_t n, char *out, size_t cap)
{
    static const char prefix[] = "untrusted comment: ";
    size_t starts[5], ends[5], k = 0, pos = 0;
    while (pos < n && k < 5) {
        const uint8_t *nl = memchr(t + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - t) : n;
        starts[k] = pos;
        ends[k] = nl && end > pos && t[end - 1] == '\r' ? end - 1 : end;
        k++;
        pos = nl ? end + 1 : n;
    }
    if (k != 4 || pos != n || ends[0] - starts[0] < sizeof prefix - 1 ||
        memcmp(t, prefix, sizeof prefix - 1) != 0)
        return -1;
    size_t w = 0;
    for (size_t i = 1; i < 4; i++) {
        size_t len = ends[i] - starts[i];
        if (w + len + 1 >= cap)
            return -1;
        memcpy(out + w, t + starts[i], len);
        w += len;
        out[w++] = '\n';
    }
    out[w] = '\0';
    return 0;
}

/* ---- SQLite ----------------------------------------------------------------- */

/* What a cmig-run up left in the database, minus times; "" when the file
 * cannot be read as one. */
static void fingerprint(const char *path, char *out, size_t cap)
{
    static const char *const queries[] = {
        "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = "
        "'table' ORDER BY name)",
        "SELECT group_concat(x, ',') FROM canary",
        "SELECT group_concat(bundle || ' ' || version || ' ' || sha256 || ' ' || dirty, ';') "
        "FROM (SELECT * FROM cmig_history ORDER BY version)",
        "SELECT group_concat(bundle || ' ' || version || ' ' || manifest_sha256, ';') FROM "
        "cmig_bundles",
    };
    sqlite3 *db = NULL;
    size_t w = 0;
    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        sqlite3_stmt *st = NULL;
        const char *v = "(error)";
        if (sqlite3_prepare_v2(db, queries[i], -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "";
        int n = snprintf(out + w, cap - w, "%s|", v);
        sqlite3_finalize(st);
        if (n < 0 || (size_t)n >= cap - w)
            break;
        w += (size_t)n;
    }
    sqlite3_close(db);
}

/* ---- PostgreSQL's log ------------------------------------------------------- */

static long log_size(void)
{
    struct stat st;
    return stat(cfg.pg_log, &st) == 0 ? (long)st.st_size : -1;
}

/* Counts, in the log after offset from, the connections received and the
 * statements run (simple and extended protocol). */
static void log_counts(long from, unsigned *conns, unsigned *stmts)
{
    *conns = *stmts = 0;
    FILE *f = fopen(cfg.pg_log, "r");
    if (!f)
        return;
    if (fseek(f, from, SEEK_SET) == 0) {
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            if (strstr(line, "connection received"))
                ++*conns;
            if (strstr(line, "LOG:  statement: ") || strstr(line, "LOG:  execute "))
                ++*stmts;
        }
    }
    fclose(f);
}

/* ---- running cmig-run --------------------------------------------------------- */

struct slot {
    pid_t pid;
    char dir[512], bundle[560], sig[580], db[560], sqlite_url[600], err[560], out[560], term[560];
    struct mutation m;
    enum dest dest;
    struct phase *ph;
};

static uint8_t *scratch;

static void slot_init(struct slot *s, int i)
{
    /* Every name is made from a local copy: gcc's -Wrestrict cannot tell
     * the fields of one struct apart. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/slot%d", cfg.dir, i);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die("cannot create '%s': %s", dir, strerror(errno));
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->bundle, sizeof s->bundle, "%s/b.cmig", dir);
    snprintf(s->sig, sizeof s->sig, "%s/b.cmig.minisig", dir);
    snprintf(s->db, sizeof s->db, "%s/db.sqlite", dir);
    snprintf(s->sqlite_url, sizeof s->sqlite_url, "sqlite://%s/db.sqlite", dir);
    snprintf(s->err, sizeof s->err, "%s/stderr", dir);
    snprintf(s->out, sizeof s->out, "%s/stdout", dir);
    snprintf(s->term, sizeof s->term, "%s/termination-log", dir);
    s->pid = 0;
}

/* Whether the run left the SQLite file (or its journal) behind; removes
 * them when asked, for the next run. */
static int db_files_exist(const struct slot *s, int remove)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char p[600];
    int found = 0;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", s->db, suffix[i]);
        if (access(p, F_OK) == 0) {
            found = 1;
            if (remove)
                unlink(p);
        }
    }
    return found;
}

static void start(struct slot *s, const struct mutation *m, enum dest d, struct phase *ph)
{
    s->m = *m;
    s->dest = d;
    s->ph = ph;
    size_t n = apply(m, scratch);
    if (m->file == F_BUNDLE) {
        write_all(s->bundle, scratch, n, NULL, 0);
        write_all(s->sig, sig.p, sig.n, NULL, 0);
    } else {
        write_all(s->bundle, bundle.p, bundle.n, NULL, 0);
        write_all(s->sig, scratch, n, NULL, 0);
    }
    const char *url = d == D_SQLITE ? s->sqlite_url : ph->pg_url;
    int out = open(s->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = open(s->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || err < 0)
        die("cannot create the output files in '%s'", s->dir);
    char *argv[] = {(char *)cfg.run,
                    "--bundle",
                    s->bundle,
                    "--trusted-key",
                    (char *)cfg.pubkey,
                    "--database",
                    (char *)url,
                    "--termination-log",
                    s->term,
                    "up",
                    NULL};
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(125);
        execve(cfg.run, argv, child_env);
        _exit(127);
    }
    close(out);
    close(err);
    s->pid = pid;
    ++*(d == D_SQLITE ? &ph->started_sqlite : &ph->started_pg);
}

static void note_bad(struct phase *ph, const struct slot *s, const char *why)
{
    ph->bad++;
    if (ph->n_shown < SHOW_MAX) {
        char what[96];
        describe(&s->m, what, sizeof what);
        snprintf(ph->shown[ph->n_shown++], sizeof ph->shown[0], "%s (%s): %s", what,
                 s->dest == D_SQLITE ? "SQLite" : "PostgreSQL", why);
    }
}

static int stderr_has_error(const struct slot *s)
{
    char buf[4096];
    int fd = open(s->err, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, "cmig-run: error: ") != NULL;
}

static void finish(struct slot *s, int status)
{
    struct phase *ph = s->ph;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 256 + (WTERMSIG(status) & 63);
    char why[128];
    ph->runs++;
    ph->hist[code]++;
    s->pid = 0;
    int created = s->dest == D_SQLITE && db_files_exist(s, 0);
    if (created && !(code == 0 && ph->may_accept))
        db_files_exist(s, 1);
    if (code == 3) {
        ph->refused++;
        if (!stderr_has_error(s))
            note_bad(ph, s, "exit 3 without an error message");
        if (created) {
            ph->created++;
            note_bad(ph, s, "refused, yet the SQLite file was created");
        }
        return;
    }
    if (code == 0 && ph->may_accept) {
        ph->accepted++;
        if (s->dest == D_PG) {
            ph->pg_accepted++;
            return;
        }
        char fp[2048];
        fingerprint(s->db, fp, sizeof fp);
        db_files_exist(s, 1);
        if (ph->record)
            snprintf(good_fingerprint, sizeof good_fingerprint, "%s", fp);
        else if (strcmp(fp, good_fingerprint) != 0)
            note_bad(ph, s, "accepted, but the database differs from the good run's");
        return;
    }
    if (code >= 256)
        snprintf(why, sizeof why, "killed by signal %d", code - 256);
    else
        snprintf(why, sizeof why, "exit %d%s", code, code == 86 ? " (sanitizer report)" : "");
    note_bad(ph, s, why);
    if (created)
        ph->created++;
}

static struct slot slots[MAX_JOBS];

static void wait_one(void)
{
    int status;
    pid_t pid;
    do
        pid = wait(&status);
    while (pid < 0 && errno == EINTR);
    if (pid < 0)
        die("wait: %s", strerror(errno));
    for (int i = 0; i < cfg.jobs; i++)
        if (slots[i].pid == pid) {
            finish(&slots[i], status);
            return;
        }
}

/* Runs every mutation of the list against SQLite, and every pg_every-th
 * one against PostgreSQL as well (1: all of them). */
static void run_phase(struct phase *ph, const struct mutation *list, size_t n)
{
    size_t every = ph->pg_every ? ph->pg_every : 1, i = 0;
    int pg_turn = 0; /* the SQLite run of list[i] started; PostgreSQL's is next */
    while (i < n) {
        int free_slot = -1;
        for (int k = 0; k < cfg.jobs && free_slot < 0; k++)
            if (!slots[k].pid)
                free_slot = k;
        if (free_slot < 0) {
            wait_one();
            continue;
        }
        if (pg_turn) {
            start(&slots[free_slot], &list[i], D_PG, ph);
            pg_turn = 0;
            i++;
        } else {
            start(&slots[free_slot], &list[i], D_SQLITE, ph);
            if (i % every == 0)
                pg_turn = 1;
            else
                i++;
        }
    }
    for (int k = 0; k < cfg.jobs; k++)
        while (slots[k].pid)
            wait_one();
}

static void print_histogram(const struct phase *ph)
{
    printf("# %s: exit codes:", ph->name);
    for (int c = 0; c < 256 + 65; c++)
        if (ph->hist[c]) {
            if (c < 256)
                printf(" %d: %u", c, ph->hist[c]);
            else
                printf(" signal %d: %u", c - 256, ph->hist[c]);
        }
    putchar('\n');
}

static void show_bad(const struct phase *ph)
{
    for (unsigned i = 0; i < ph->n_shown; i++)
        printf("#   %s\n", ph->shown[i]);
}

/* ---- the phases ------------------------------------------------------------- */

static struct mutation *list;
static size_t list_n, list_cap;

static size_t pushed;

static void push(enum kind k, enum file f, size_t off, uint8_t val)
{
    if (pushed++ % cfg.stride != 0)
        return;
    if (list_n == list_cap) {
        list_cap = list_cap ? 2 * list_cap : 4096;
        struct mutation *l = realloc(list, list_cap * sizeof *l);
        if (!l)
            die("out of memory");
        list = l;
    }
    list[list_n++] = (struct mutation){k, f, off, val};
}

/* How many of the list are byte changes, truncations and tails. */
static void count_kinds(size_t *bytes, size_t *truncs, size_t *tails)
{
    *bytes = *truncs = *tails = 0;
    for (size_t i = 0; i < list_n; i++)
        ++*(list[i].kind == K_BYTE ? bytes : list[i].kind == K_TRUNC ? truncs : tails);
}

/* The good bundle through the same path: the detectors must see it. */
static void control(void)
{
    struct phase ph = {.name = "control", .may_accept = 1, .record = 1, .pg_url = cfg.pg_good};
    struct mutation none = {K_TRUNC, F_BUNDLE, 0, 0};
    none.off = bundle.n; /* "cut" to its own length: the untouched bundle */
    long mark = log_size();
    run_phase(&ph, &none, 1);
    unsigned conns, stmts;
    log_counts(mark, &conns, &stmts);
    report(ph.hist[0] == 2 && ph.bad == 0 && good_fingerprint[0] &&
               strstr(good_fingerprint, "|42|"),
           "control: the untouched bundle is applied (SQLite: %s; PostgreSQL: exit %s)",
           good_fingerprint, ph.hist[0] == 2 ? "0" : "not 0");
    report(conns >= 1 && stmts >= 1,
           "control: the server log shows its connection and statements (%u connections, %u "
           "statements)",
           conns, stmts);
}

/* Makes the list of damaged copies of one file: every single-byte change,
 * every truncation and every appended tail, and says how many of each. */
static void push_damage(enum file f, const struct blob *b, size_t n_tails, size_t *bytes,
                        size_t *truncs, size_t *tails)
{
    uint8_t vals[sizeof XORS + sizeof REPLACE];
    list_n = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t k = values_at(b->p[i], vals);
        for (size_t j = 0; j < k; j++)
            push(K_BYTE, f, i, vals[j]);
    }
    for (size_t len = 0; len < b->n; len++)
        push(K_TRUNC, f, len, 0);
    for (size_t t = 0; t < n_tails; t++)
        push(K_TAIL, f, t, 0);
    count_kinds(bytes, truncs, tails);
}

/* Runs the n copies of l, every one of which must be refused, and reports:
 * all refused with exit 3, the SQLite file never created, PostgreSQL never
 * reached. what opens the first report; the runs and refusals follow it. */
static void run_refused(struct phase *ph, const struct mutation *l, size_t n, const char *what)
{
    long mark = log_size();
    double t0 = now_s();
    run_phase(ph, l, n);
    double secs = now_s() - t0;
    unsigned conns, stmts;
    log_counts(mark, &conns, &stmts);
    print_histogram(ph);
    report(ph->refused == ph->runs && ph->bad == 0 && ph->started_sqlite == n &&
               ph->runs == ph->started_sqlite + ph->started_pg,
           "%s %u runs on SQLite + %u on PostgreSQL = %u, %u refused with exit 3 (%.0f s)", what,
           ph->started_sqlite, ph->started_pg, ph->runs, ph->refused, secs);
    show_bad(ph);
    report(ph->created == 0, "%s: the SQLite file was created %u times", ph->name, ph->created);
    report(conns == 0 && stmts == 0, "%s: PostgreSQL received %u connections and ran %u statements",
           ph->name, conns, stmts);
}

static void bundle_phase(void)
{
    struct phase ph = {.name = "bundle", .pg_url = cfg.pg_refused, .pg_every = cfg.pg_every};
    size_t bytes, truncs, tails;
    char what[256];
    push_damage(F_BUNDLE, &bundle, n_bundle_tails, &bytes, &truncs, &tails);
    snprintf(what, sizeof what,
             "bundle: %zu single-byte changes (%zu bytes), %zu truncations, %zu appended tails: "
             "%zu damaged bundles,",
             bytes, bundle.n, truncs, tails, list_n);
    run_refused(&ph, list, list_n, what);
}

static void sig_phases(void)
{
    struct phase strict = {.name = "signature", .pg_url = cfg.pg_refused, .pg_every = cfg.pg_every};
    struct phase loose = {
        .name = "signature, signed part intact", .may_accept = 1, .pg_url = cfg.pg_comment};
    char want[1024], got[1024], what[256];
    if (signed_part(sig.p, sig.n, want, sizeof want) != 0)
        die("the good signature file does not have four lines");
    uint8_t *buf = malloc(sig.n + SIG_TAIL_BIG);
    struct mutation *loose_list = NULL;
    size_t loose_n = 0, bytes, truncs, tails;
    if (!buf)
        die("out of memory");
    push_damage(F_SIG, &sig, n_sig_tails, &bytes, &truncs, &tails);
    /* Split: what must be refused, and what leaves the signed part. */
    loose_list = malloc(list_n * sizeof *loose_list);
    if (!loose_list)
        die("out of memory");
    size_t strict_n = 0;
    for (size_t i = 0; i < list_n; i++) {
        size_t n = apply(&list[i], buf);
        if (signed_part(buf, n, got, sizeof got) == 0 && strcmp(got, want) == 0)
            loose_list[loose_n++] = list[i];
        else
            list[strict_n++] = list[i];
    }
    free(buf);

    snprintf(what, sizeof what,
             "signature: %zu single-byte changes (%zu bytes), %zu truncations, %zu appended "
             "tails; the %zu that change the signed part:",
             bytes, sig.n, truncs, tails, strict_n);
    run_refused(&strict, list, strict_n, what);

    unsigned conns, stmts;
    long mark = log_size();
    double t0 = now_s();
    run_phase(&loose, loose_list, loose_n);
    double secs = now_s() - t0;
    log_counts(mark, &conns, &stmts);
    print_histogram(&loose);
    report(loose.bad == 0 && loose.runs == 2 * loose_n && loose_n > 0,
           "signature: the %zu changes outside the signed part (untrusted comment, line ends) "
           "x 2 databases = %u runs: %u accepted and run as the good bundle, %u refused "
           "with exit 3 (%.0f s)",
           loose_n, loose.runs, loose.accepted, loose.refused, secs);
    show_bad(&loose);
    report(loose.created == 0,
           "signature, signed part intact: a refused run created the SQLite file %u times",
           loose.created);
    report(conns == loose.pg_accepted,
           "signature, signed part intact: PostgreSQL connections %u = runs accepted %u", conns,
           loose.pg_accepted);
    free(loose_list);
}

/* Only what the sanitizers and a locale need reaches cmig-run. */
static void make_env(void)
{
    static const char *const keep[] = {
        "PATH=",         "HOME=",          "TMPDIR=",      "LD_LIBRARY_PATH=",
        "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
    size_t n = 0, cap = 16;
    child_env = calloc(cap + 1, sizeof *child_env);
    if (!child_env)
        die("out of memory");
    for (char **e = environ; *e && n < cap; e++)
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
            if (strncmp(*e, keep[k], strlen(keep[k])) == 0)
                child_env[n++] = *e;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"run", required_argument, NULL, 'r'},        {"bundle", required_argument, NULL, 'b'},
        {"pubkey", required_argument, NULL, 'k'},     {"dir", required_argument, NULL, 'd'},
        {"pg-good", required_argument, NULL, 'G'},    {"pg-refused", required_argument, NULL, 'R'},
        {"pg-comment", required_argument, NULL, 'C'}, {"pg-log", required_argument, NULL, 'L'},
        {"jobs", required_argument, NULL, 'j'},       {"stride", required_argument, NULL, 's'},
        {"pg-every", required_argument, NULL, 'P'},   {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            cfg.run = optarg;
            break;
        case 'b':
            cfg.bundle_path = optarg;
            break;
        case 'k':
            cfg.pubkey = optarg;
            break;
        case 'd':
            cfg.dir = optarg;
            break;
        case 'G':
            cfg.pg_good = optarg;
            break;
        case 'R':
            cfg.pg_refused = optarg;
            break;
        case 'C':
            cfg.pg_comment = optarg;
            break;
        case 'L':
            cfg.pg_log = optarg;
            break;
        case 'j':
            cfg.jobs = atoi(optarg);
            break;
        case 's':
            cfg.stride = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            cfg.pg_every = (size_t)strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!cfg.run || !cfg.bundle_path || !cfg.pubkey || !cfg.dir || !cfg.pg_good ||
        !cfg.pg_refused || !cfg.pg_comment || !cfg.pg_log || cfg.jobs < 1 || cfg.stride < 1 ||
        cfg.pg_every < 1 || cfg.jobs > MAX_JOBS) {
        fprintf(stderr, "usage: mutate --run CMIG_RUN --bundle GOOD.cmig --pubkey K.pub --dir "
                        "WORKDIR --pg-good URL --pg-refused URL --pg-comment URL --pg-log FILE "
                        "[--jobs N] [--stride K] [--pg-every K]\n");
        return 2;
    }
    char sig_path[4096];
    snprintf(sig_path, sizeof sig_path, "%s.minisig", cfg.bundle_path);
    bundle = read_all(cfg.bundle_path);
    sig = read_all(sig_path);
    if (bundle.n == 0 || sig.n == 0 || log_size() < 0)
        die("empty bundle or signature, or no PostgreSQL log at '%s'", cfg.pg_log);
    make_tails();
    make_env();
    size_t big = bundle.n + (bundle.n > TAIL_BIG ? bundle.n : TAIL_BIG) + sig.n + SIG_TAIL_BIG;
    scratch = malloc(big);
    if (!scratch)
        die("out of memory");
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < cfg.jobs; i++)
        slot_init(&slots[i], i);

    /* The good run's database is what an accepted signature must give. */
    double t0 = now_s();
    control();
    bundle_phase();
    sig_phases();
    printf("# mutate: %.0f s in all, %d at a time\n", now_s() - t0, cfg.jobs);
    return failures ? 1 : 0;
}
