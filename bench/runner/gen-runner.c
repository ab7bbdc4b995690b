/*
 * gen-runner.c - writes one deterministic set of migrations, in every form
 * the runner benchmark feeds to the programs it compares, so that they all
 * apply exactly the same SQL:
 *
 *   gen-runner OUT --migrations N [--mb M] [--seed S] [--json]
 *
 *   OUT/gm/NNNNNN_name.up.sql, .down.sql  golang-migrate layout (cmig-bundle)
 *   OUT/dbmate/NNNNNN_name.sql            the same files as dbmate sections
 *   OUT/psql-each.sql                     for `psql -f`: every migration in its
 *                                         own BEGIN ... COMMIT with its history
 *                                         insert, like cmig-run up
 *   OUT/psql-single.sql                   for `psql -1 -f`: the same without
 *                                         the per-migration transactions
 *   OUT/mongo/NNNNNN_name.up.json, .down.json   with --json: N small MongoDB
 *                                         migrations (golang-migrate's JSON
 *                                         command arrays) of the same shape, for
 *                                         the MongoDB no-op; nothing else
 *                                         is written then
 *
 * Unlike bench/gen-migrations.c (text that only has to compress like SQL),
 * every migration here really applies, in order, to a fresh PostgreSQL or
 * SQLite database: tables are created before they are altered, filled or
 * indexed, and every name and key is unique. Without --mb the migrations
 * are small (a few hundred bytes: CREATE TABLE, ALTER TABLE, a few rows, an
 * index, an UPDATE). With --mb each small migration also carries a batch of
 * rows to reach 1-10 KB, and one migration in 500 is a data seed of several
 * MB of INSERT batches, sized so the tree holds about M megabytes (10^6
 * bytes) of up files and down files together. Only the seed drives the
 * generator, so the same arguments always give the same bytes.
 *
 * The history table of the psql scripts has the shape of cmig_history and
 * its insert carries the same values (bundle, version, name, SHA-256 of the
 * up file, execution time, versions, dirty flag), so psql does the same
 * database work as the runner. It prints one line: migrations, bytes,
 * seeds, largest file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATIONS_MAX 1000000u
#define MB_MAX 100000u
#define SEED_EVERY 500u /* one seed migration per this many, with --mb */
#define SMALL_MIN 1024u /* padded size range of a small migration, with --mb */
#define SMALL_MAX 10240u
#define SEED_BATCH 500u /* rows per INSERT in a seed */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- deterministic randomness ------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
    /* splitmix64: tiny, and the same sequence on every machine. */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rnd64() % n);
}

static const char *const words[] = {
    "account", "active",  "archive", "billing", "cache",    "customer", "daily",    "delivery",
    "draft",   "export",  "failed",  "first",   "global",   "import",   "internal", "invoice",
    "legacy",  "monthly", "order",   "partner", "payment",  "pending",  "primary",  "refund",
    "retry",   "sales",   "second",  "settled", "standard", "tax",      "usage",    "weekly",
};
static const char *const firsts[] = {"ada",     "alan",   "grace",  "linus",    "ken",     "dennis",
                                     "barbara", "edsger", "donald", "margaret", "niklaus", "john"};
static const char *const cities[] = {"lisbon", "oslo", "lyon",   "porto", "graz",
                                     "turku",  "gent", "bergen", "malmo", "brno"};

static const char *word(void)
{
    return words[rnd(N_OF(words))];
}

/* ---- a growable text buffer --------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen-runner: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("formatting failed");
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p)
            die("out of memory");
        t->p = p;
        t->cap = cap;
    }
}

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        die("path too long: '%s/%s'", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write '%s': %s", path, strerror(errno));
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create '%s': %s", path, strerror(errno));
}

/* ---- the migrations ------------------------------------------------------- */

/* Rows of the table t_<table>, ids from base up. */
static void add_rows(struct text *t, unsigned table, uint64_t base, unsigned rows)
{
    putf(t, "INSERT INTO t_%u (id, name, qty) VALUES\n", table);
    for (unsigned i = 0; i < rows; i++)
        putf(t, "    (%" PRIu64 ", '%s %s %s', %u)%s\n", base + i, word(), word(), word(),
             rnd(1000), i + 1 < rows ? "," : ";");
}

/* A small migration: which kind follows from v, and its table is the one
 * created last (kinds cycle, so every table is created before it is used). */
static void small_migration(struct text *up, struct text *down, char *name, size_t name_cap,
                            unsigned v, size_t pad_to)
{
    unsigned table = v - (v - 1) % 5;
    switch (v % 5) {
    case 1:
        snprintf(name, name_cap, "create_t_%u", v);
        putf(up,
             "-- %s %s table\n"
             "CREATE TABLE t_%u (\n"
             "    id bigint PRIMARY KEY,\n"
             "    name text NOT NULL,\n"
             "    qty integer NOT NULL DEFAULT 0,\n"
             "    created_at timestamp DEFAULT CURRENT_TIMESTAMP\n"
             ");\n"
             "CREATE INDEX t_%u_name ON t_%u (name);\n",
             word(), word(), v, v, v);
        putf(down, "DROP TABLE IF EXISTS t_%u;\n", v);
        break;
    case 2:
        snprintf(name, name_cap, "add_c_%u", v);
        putf(up, "ALTER TABLE t_%u ADD COLUMN c_%u integer NOT NULL DEFAULT %u;\n", table, v,
             rnd(100));
        putf(down, "ALTER TABLE t_%u DROP COLUMN c_%u;\n", table, v);
        break;
    case 3:
        snprintf(name, name_cap, "fill_t_%u", table);
        add_rows(up, table, (uint64_t)v * 100000, 3 + rnd(6));
        putf(down, "DELETE FROM t_%u WHERE id BETWEEN %" PRIu64 " AND %" PRIu64 ";\n", table,
             (uint64_t)v * 100000, (uint64_t)v * 100000 + 99999);
        break;
    case 4:
        snprintf(name, name_cap, "index_t_%u_qty", table);
        putf(up, "CREATE INDEX ix_%u ON t_%u (qty, name);\n", v, table);
        putf(down, "DROP INDEX IF EXISTS ix_%u;\n", v);
        break;
    default:
        snprintf(name, name_cap, "bump_t_%u", table);
        putf(up, "UPDATE t_%u SET qty = qty + 1 WHERE id %% 3 = 0;\n", table);
        putf(down, "UPDATE t_%u SET qty = qty - 1 WHERE id %% 3 = 0;\n", table);
        break;
    }
    /* Padding is more rows in the same table (ids of this migration); a
     * row takes about 40 bytes. */
    if (pad_to > up->len + down->len + 200) {
        uint64_t base = (uint64_t)v * 100000 + 50000;
        unsigned rows = (unsigned)((pad_to - up->len - down->len - 200) / 40) + 1;
        add_rows(up, table, base, rows);
        putf(down, "DELETE FROM t_%u WHERE id >= %" PRIu64 " AND id < %" PRIu64 ";\n", table, base,
             base + rows);
    }
}

/* A data seed: its own table and INSERT batches to about target bytes. */
static void seed_migration(struct text *up, struct text *down, char *name, size_t name_cap,
                           unsigned v, uint64_t target)
{
    snprintf(name, name_cap, "seed_s_%u", v);
    putf(up,
         "-- seed data\n"
         "CREATE TABLE s_%u (\n"
         "    id bigint PRIMARY KEY,\n"
         "    first_name text NOT NULL,\n"
         "    city text NOT NULL,\n"
         "    email text NOT NULL,\n"
         "    amount integer NOT NULL,\n"
         "    note text\n"
         ");\n",
         v);
    uint64_t id = 1;
    while (up->len < target) {
        putf(up, "INSERT INTO s_%u (id, first_name, city, email, amount, note) VALUES\n", v);
        for (unsigned i = 0; i < SEED_BATCH; i++, id++) {
            const char *f = firsts[rnd(N_OF(firsts))];
            putf(up,
                 "    (%" PRIu64 ", '%s', '%s', '%s.%" PRIu64 "@example.org', %u, '%s %s %s')%s\n",
                 id, f, cities[rnd(N_OF(cities))], f, id, rnd(100000), word(), word(), word(),
                 i + 1 < SEED_BATCH ? "," : ";");
        }
    }
    putf(down, "DROP TABLE IF EXISTS s_%u;\n", v);
}

/* ---- MongoDB migrations (--json) ----------------------------------------- */

/* The same cycle of five kinds as small_migration, as database commands:
 * create a collection's first documents and an index, add a field, add
 * documents, add an index, bump a counter. Numbers that a filter could
 * compare are written as $numberLong so that servers strict about int32
 * against int64 see one type. */
static void json_migration(struct text *up, struct text *down, char *name, size_t name_cap,
                           unsigned v)
{
    unsigned coll = v - (v - 1) % 5;
    uint64_t base = (uint64_t)v * 100000;
    switch (v % 5) {
    case 1:
    case 3:
        snprintf(name, name_cap, v % 5 == 1 ? "create_c_%u" : "fill_c_%u", coll);
        putf(up, "[\n  {\"insert\": \"c_%u\", \"documents\": [\n", coll);
        for (unsigned i = 0, rows = 3 + rnd(6); i < rows; i++)
            putf(up,
                 "    {\"_id\": {\"$numberLong\": \"%" PRIu64 "\"}, \"name\": \"%s %s\", "
                 "\"qty\": {\"$numberLong\": \"%u\"}}%s\n",
                 base + i, word(), word(), rnd(1000), i + 1 < rows ? "," : "");
        putf(up, "  ]}");
        if (v % 5 == 1)
            putf(up,
                 ",\n  {\"createIndexes\": \"c_%u\", \"indexes\": [{\"key\": {\"name\": 1}, "
                 "\"name\": \"c_%u_name\"}]}",
                 coll, coll);
        putf(up, "\n]\n");
        putf(down,
             "[{\"delete\": \"c_%u\", \"deletes\": [{\"q\": {\"_id\": {\"$gte\": "
             "{\"$numberLong\": \"%" PRIu64 "\"}, \"$lt\": {\"$numberLong\": \"%" PRIu64
             "\"}}}, \"limit\": 0}]}]\n",
             coll, base, base + 100000);
        break;
    case 2:
        snprintf(name, name_cap, "add_f_%u", v);
        putf(up,
             "[{\"update\": \"c_%u\", \"updates\": [{\"q\": {}, \"u\": {\"$set\": "
             "{\"f_%u\": {\"$numberLong\": \"%u\"}}}, \"multi\": true}]}]\n",
             coll, v, rnd(100));
        putf(down,
             "[{\"update\": \"c_%u\", \"updates\": [{\"q\": {}, \"u\": {\"$unset\": "
             "{\"f_%u\": \"\"}}, \"multi\": true}]}]\n",
             coll, v);
        break;
    case 4:
        snprintf(name, name_cap, "index_c_%u_qty", coll);
        putf(up,
             "[{\"createIndexes\": \"c_%u\", \"indexes\": [{\"key\": {\"qty\": 1, "
             "\"name\": 1}, \"name\": \"ix_%u\"}]}]\n",
             coll, v);
        putf(down, "[{\"dropIndexes\": \"c_%u\", \"index\": \"ix_%u\"}]\n", coll, v);
        break;
    default:
        snprintf(name, name_cap, "bump_c_%u", coll);
        putf(up,
             "[{\"update\": \"c_%u\", \"updates\": [{\"q\": {}, \"u\": {\"$inc\": "
             "{\"qty\": {\"$numberLong\": \"1\"}}}, \"multi\": true}]}]\n",
             coll);
        putf(down,
             "[{\"update\": \"c_%u\", \"updates\": [{\"q\": {}, \"u\": {\"$inc\": "
             "{\"qty\": {\"$numberLong\": \"-1\"}}}, \"multi\": true}]}]\n",
             coll);
        break;
    }
}

static int write_json_set(const char *out, unsigned long n)
{
    char dir[PATH_MAX], name[64], file[128];
    struct text up = {0}, down = {0};
    if (snprintf(dir, sizeof dir, "%s/mongo", out) >= (int)sizeof dir)
        die("path too long");
    make_dir(out);
    make_dir(dir);
    uint64_t bytes = 0, largest = 0;
    for (unsigned v = 1; v <= n; v++) {
        up.len = down.len = 0;
        json_migration(&up, &down, name, sizeof name, v);
        snprintf(file, sizeof file, "%06u_%s.up.json", v, name);
        write_file(dir, file, up.p, up.len);
        snprintf(file, sizeof file, "%06u_%s.down.json", v, name);
        write_file(dir, file, down.p, down.len);
        bytes += up.len + down.len;
        if (up.len > largest)
            largest = up.len;
    }
    printf("migrations=%lu bytes=%" PRIu64 " seeds=0 largest=%" PRIu64 "\n", n, bytes, largest);
    free(up.p);
    free(down.p);
    return 0;
}

/* ---- psql scripts ----------------------------------------------------------- */

static const char HIST_DDL[] = "CREATE TABLE bench_history (\n"
                               "    bundle text NOT NULL,\n"
                               "    version bigint NOT NULL,\n"
                               "    name text NOT NULL,\n"
                               "    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),\n"
                               "    applied_at timestamptz NOT NULL DEFAULT now(),\n"
                               "    execution_ms bigint,\n"
                               "    bundle_version text,\n"
                               "    runner_version text,\n"
                               "    dirty boolean NOT NULL DEFAULT false,\n"
                               "    PRIMARY KEY (bundle, version)\n"
                               ");\n"
                               "CREATE TABLE bench_bundles (\n"
                               "    bundle text PRIMARY KEY,\n"
                               "    version text NOT NULL,\n"
                               "    manifest_sha256 text NOT NULL,\n"
                               "    updated_at timestamptz NOT NULL DEFAULT now()\n"
                               ");\n";

static void hist_insert(FILE *f, unsigned v, const char *name, const char *hex)
{
    fprintf(f,
            "INSERT INTO bench_history (bundle, version, name, sha256, execution_ms, "
            "bundle_version, runner_version, dirty) VALUES ('bench', %u, '%s', '%s', "
            "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint, "
            "'1.0.0', 'psql', false);\n",
            v, name, hex);
}

static FILE *open_script(const char *out, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", out, name) >= (int)sizeof path)
        die("path too long");
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write '%s': %s", path, strerror(errno));
    fputs(HIST_DDL, f);
    return f;
}

static void close_script(FILE *f)
{
    fputs("INSERT INTO bench_bundles (bundle, version, manifest_sha256) VALUES ('bench', "
          "'1.0.0', '0000000000000000000000000000000000000000000000000000000000000000') "
          "ON CONFLICT (bundle) DO UPDATE SET version = EXCLUDED.version;\n",
          f);
    if (ferror(f) || fclose(f) != 0)
        die("cannot write a psql script: %s", strerror(errno));
}

static unsigned long parse_num(const char *s, unsigned long max, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || !*s || v > max)
        die("%s: not a number up to %lu: '%s'", what, max, s);
    return v;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    unsigned long n = 1000, mb = 0, seed = 1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--migrations") == 0 && i + 1 < argc)
            n = parse_num(argv[++i], MIGRATIONS_MAX, "--migrations");
        else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            mb = parse_num(argv[++i], MB_MAX, "--mb");
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = parse_num(argv[++i], ULONG_MAX, "--seed");
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] != '-' && !out)
            out = argv[i];
        else
            die("usage: gen-runner OUT --migrations N [--mb M] [--seed S] [--json]");
    }
    if (!out || n == 0)
        die("usage: gen-runner OUT --migrations N [--mb M] [--seed S] [--json]");
    if (sodium_init() < 0)
        die("libsodium failed to initialise");
    rng_state = seed;
    if (json) {
        if (mb)
            die("--json writes small migrations only: no --mb");
        return write_json_set(out, n);
    }

    char gm[PATH_MAX], dbm[PATH_MAX];
    make_dir(out);
    if (snprintf(gm, sizeof gm, "%s/gm", out) >= (int)sizeof gm ||
        snprintf(dbm, sizeof dbm, "%s/dbmate", out) >= (int)sizeof dbm)
        die("path too long");
    make_dir(gm);
    make_dir(dbm);
    FILE *each = open_script(out, "psql-each.sql");
    FILE *single = open_script(out, "psql-single.sql");

    unsigned n_seeds = mb ? (unsigned)(n / SEED_EVERY) : 0;
    if (mb && n_seeds == 0)
        n_seeds = 1;
    uint64_t budget = (uint64_t)mb * 1000000u, bytes = 0, small_bytes = 0, largest = 0;
    unsigned seeds_done = 0, small_done = 0;
    struct text up = {0}, down = {0}, dbmate = {0};
    char name[64], file[128], hex[65];
    for (unsigned v = 1; v <= n; v++) {
        up.len = down.len = dbmate.len = 0;
        /* Seeds sit in the middle of each stretch of SEED_EVERY, in the
         * place of an UPDATE (v % 5 == 0), which nothing later needs. */
        int is_seed = seeds_done < n_seeds && v % 5 == 0 &&
                      (v % SEED_EVERY == SEED_EVERY / 2 || (n < SEED_EVERY && v >= n / 2));
        if (is_seed) {
            unsigned small_left = (unsigned)(n - v) - (n_seeds - seeds_done - 1);
            uint64_t avg = small_done ? small_bytes / small_done : (SMALL_MIN + SMALL_MAX) / 2;
            uint64_t spoken = bytes + (uint64_t)small_left * avg;
            uint64_t share = budget > spoken ? (budget - spoken) / (n_seeds - seeds_done) : 0;
            seed_migration(&up, &down, name, sizeof name, v, share);
            seeds_done++;
        } else {
            size_t pad = mb ? SMALL_MIN + rnd(SMALL_MAX - SMALL_MIN + 1) : 0;
            small_migration(&up, &down, name, sizeof name, v, pad);
            small_bytes += up.len + down.len;
            small_done++;
        }
        bytes += up.len + down.len;
        if (up.len > largest)
            largest = up.len;

        snprintf(file, sizeof file, "%06u_%s.up.sql", v, name);
        write_file(gm, file, up.p, up.len);
        snprintf(file, sizeof file, "%06u_%s.down.sql", v, name);
        write_file(gm, file, down.p, down.len);
        putf(&dbmate, "-- migrate:up\n%.*s\n-- migrate:down\n%.*s", (int)up.len, up.p,
             (int)down.len, down.p);
        snprintf(file, sizeof file, "%06u_%s.sql", v, name);
        write_file(dbm, file, dbmate.p, dbmate.len);

        uint8_t digest[32];
        crypto_hash_sha256(digest, (const unsigned char *)up.p, up.len);
        sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
        fputs("BEGIN;\n", each);
        fwrite(up.p, 1, up.len, each);
        hist_insert(each, v, name, hex);
        fputs("COMMIT;\n", each);
        fwrite(up.p, 1, up.len, single);
        hist_insert(single, v, name, hex);
    }
    close_script(each);
    close_script(single);
    printf("migrations=%lu bytes=%" PRIu64 " seeds=%u largest=%" PRIu64 "\n", n, bytes, seeds_done,
           largest);
    free(up.p);
    free(down.p);
    free(dbmate.p);
    return 0;
}
