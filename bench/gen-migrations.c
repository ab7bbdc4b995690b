/*
 * gen-migrations.c - writes a deterministic golang-migrate directory for
 * the bundler benchmark.
 *
 *   gen-migrations DIR [--files N] [--mb M] [--seed S]
 *
 * N files (N/2 migrations, each an .up.sql and a .down.sql) of plausible
 * PostgreSQL: CREATE TABLE, ALTER TABLE, indexes, comments, functions,
 * small INSERT and UPDATE batches, with identifiers and values drawn from
 * word lists and a seeded generator, so that gzip sees text that
 * compresses like real SQL (about 4-6x), not a repeated block. Almost
 * every file is 1-10 KB; one migration in 500 is a data seed whose up file
 * is several MB of INSERT rows, sized so the whole tree comes to about M
 * megabytes (10^6 bytes). The same arguments always give the same bytes:
 * only the seed drives the generator, never the clock or the environment.
 * It prints one line: files, bytes, seed files, largest file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OUT_BUF (256 * 1024)
#define SMALL_MIN 1024
#define SMALL_MAX 10240
#define SEED_EVERY 500 /* one seed migration per this many files */
#define FILES_MAX 2000000
#define MB_MAX 100000

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- deterministic randomness ------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
    /* splitmix64: tiny, fast and the same on every machine. */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rnd64() % n);
}

static unsigned rnd_between(unsigned lo, unsigned hi)
{
    return lo + rnd(hi - lo + 1);
}

/* ---- vocabulary ---------------------------------------------------------- */

static const char *const tables[] = {
    "users", "accounts", "customers", "orders", "order_items", "invoices", "payments",
    "refunds", "products", "product_variants", "categories", "inventory", "warehouses",
    "shipments", "carriers", "addresses", "sessions", "api_tokens", "audit_log", "events",
    "notifications", "subscriptions", "plans", "coupons", "discounts", "reviews", "ratings",
    "tags", "taggings", "comments", "attachments", "documents", "folders", "projects",
    "tasks", "milestones", "teams", "memberships", "roles", "permissions", "organizations",
    "tenants", "feature_flags", "settings", "webhooks", "webhook_deliveries", "jobs",
    "job_runs", "exports", "imports", "reports", "dashboards", "widgets", "metrics",
    "alerts", "incidents", "contacts", "leads", "opportunities", "campaigns", "emails",
    "email_templates", "sms_messages", "devices", "locations", "regions", "countries",
    "currencies", "exchange_rates", "tax_rates", "ledgers", "ledger_entries", "balances",
    "transfers", "payouts", "disputes", "chargebacks", "price_lists", "bundles", "licenses"};

static const char *const columns[] = {
    "name", "title", "description", "email", "phone", "status", "kind", "priority",
    "amount", "amount_cents", "currency", "quantity", "unit_price", "total", "tax",
    "discount", "notes", "slug", "code", "reference", "external_id", "source", "channel",
    "locale", "timezone", "country_code", "region", "city", "postal_code", "street",
    "latitude", "longitude", "score", "rank", "position", "weight", "height", "width",
    "color", "size", "sku", "barcode", "version", "revision", "checksum", "payload",
    "metadata", "settings", "flags", "is_active", "is_deleted", "is_verified", "is_primary",
    "starts_at", "ends_at", "expires_at", "confirmed_at", "cancelled_at", "archived_at",
    "last_seen_at", "processed_at", "due_date", "paid_at", "retry_count", "attempts",
    "error_message", "ip_address", "user_agent", "referrer", "owner_id", "parent_id",
    "created_by", "updated_by", "approved_by", "assigned_to", "duration_ms", "bytes",
    "mime_type", "url", "path", "hash", "token_digest", "secret_hint", "label", "summary"};

static const char *const types[] = {
    "text", "varchar(255)", "varchar(64)", "integer", "bigint", "smallint", "boolean",
    "numeric(12,2)", "numeric(18,6)", "timestamptz", "date", "jsonb", "uuid", "inet",
    "char(3)", "double precision", "bytea", "interval", "text[]", "citext"};

static const char *const first_names[] = {
    "Maria", "John", "Aisha", "Wei", "Olga", "Carlos", "Fatima", "Liam", "Yuki", "Noah",
    "Emma", "Mateo", "Sofia", "Arjun", "Chloe", "Hiro", "Amara", "Lucas", "Ines", "Omar",
    "Freya", "Diego", "Nina", "Tariq", "Elena", "Kofi", "Mia", "Pavel", "Leila", "Ravi",
    "Zoe", "Igor", "Anya", "Bruno", "Priya", "Sven", "Lena", "Jamal", "Rosa", "Kenji"};

static const char *const last_names[] = {
    "Lopez", "Smith", "Khan", "Zhang", "Ivanova", "Garcia", "Haddad", "Murphy", "Tanaka",
    "Brown", "Martin", "Rossi", "Silva", "Patel", "Dubois", "Sato", "Okafor", "Muller",
    "Costa", "Nasser", "Larsen", "Torres", "Novak", "Aziz", "Petrova", "Mensah", "Jensen",
    "Kowalski", "Rahimi", "Gupta", "Walker", "Sokolov", "Moreau", "Ferreira", "Iyer",
    "Berg", "Schmidt", "Owusu", "Romero", "Nakamura"};

static const char *const cities[] = {
    "Lisbon", "Porto", "Madrid", "Berlin", "Hamburg", "Lyon", "Paris", "Milan", "Turin",
    "Vienna", "Prague", "Warsaw", "Krakow", "Oslo", "Bergen", "Dublin", "Cork", "Leeds",
    "Austin", "Denver", "Toronto", "Montreal", "Osaka", "Kyoto", "Seoul", "Busan", "Pune",
    "Lagos", "Nairobi", "Accra", "Cairo", "Dubai", "Santiago", "Lima", "Bogota", "Quito"};

static const char *const domains[] = {"example.com", "example.org", "example.net", "mail.test",
                                      "corp.example", "shop.test"};

static const char *const statuses[] = {"active", "pending", "suspended", "closed", "draft",
                                       "archived", "failed", "settled", "refunded", "open"};

static const char *const words[] = {
    "account", "balance", "billing", "cache", "customer", "daily", "default", "delivery",
    "discount", "draft", "export", "fallback", "first", "free", "global", "gross", "import",
    "initial", "internal", "invoice", "legacy", "limit", "manual", "monthly", "net", "new",
    "order", "partner", "payment", "pending", "premium", "primary", "quarterly", "refund",
    "regional", "retry", "sales", "scheduled", "second", "shipping", "standard", "store",
    "support", "tax", "team", "trial", "usage", "vendor", "weekly", "yearly", "after",
    "before", "during", "with", "without", "for", "from", "the", "a", "an", "of", "to",
    "is", "was", "be", "when", "if", "not", "only", "each", "every", "per", "by"};

static const char *const verbs[] = {"create", "add", "alter", "backfill", "index", "rename",
                                    "extend", "split", "drop", "fix", "track"};

/* ---- buffered output with a byte count --------------------------------- */

struct out {
    FILE *f;
    char *buf;
    size_t n;
    uint64_t total; /* bytes of this file so far */
    char path[4096];
};

static int out_flush(struct out *o)
{
    if (o->n && fwrite(o->buf, 1, o->n, o->f) != o->n) {
        fprintf(stderr, "gen-migrations: cannot write '%s': %s\n", o->path, strerror(errno));
        return -1;
    }
    o->n = 0;
    return 0;
}

static void put(struct out *o, const char *s, size_t len)
{
    if (o->n + len > OUT_BUF && out_flush(o))
        exit(2);
    if (len > OUT_BUF) {
        /* Never happens with our vocabulary; guards the copy below. */
        fprintf(stderr, "gen-migrations: internal: piece too long\n");
        exit(2);
    }
    memcpy(o->buf + o->n, s, len);
    o->n += len;
    o->total += len;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "gen-migrations: internal: formatted piece too long\n");
        exit(2);
    }
    put(o, tmp, (size_t)n);
}

#define PICK(a) ((a)[rnd(N_OF(a))])

/* ---- values --------------------------------------------------------------- */

static void put_words(struct out *o, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (i)
            put(o, " ", 1);
        puts_(o, PICK(words));
    }
}

static void put_timestamp(struct out *o)
{
    putf(o, "'20%02u-%02u-%02u %02u:%02u:%02u+00'", rnd_between(15, 24), rnd_between(1, 12),
         rnd_between(1, 28), rnd(24), rnd(60), rnd(60));
}

static void put_lower(struct out *o, const char *s)
{
    for (; *s; s++) {
        char c = (char)(*s >= 'A' && *s <= 'Z' ? *s + ('a' - 'A') : *s);
        put(o, &c, 1);
    }
}

/* A literal that fits the column type, roughly. */
static void put_value(struct out *o, const char *type)
{
    if (strncmp(type, "varchar", 7) == 0 || strcmp(type, "text") == 0 ||
        strcmp(type, "citext") == 0) {
        put(o, "'", 1);
        put_words(o, rnd_between(1, 5));
        put(o, "'", 1);
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "smallint") == 0) {
        putf(o, "%u", rnd(10000));
    } else if (strcmp(type, "bigint") == 0) {
        putf(o, "%u", rnd(1000000));
    } else if (strcmp(type, "boolean") == 0) {
        puts_(o, rnd(2) ? "true" : "false");
    } else if (strncmp(type, "numeric", 7) == 0 || strcmp(type, "double precision") == 0) {
        putf(o, "%u.%02u", rnd(10000), rnd(100));
    } else if (strcmp(type, "timestamptz") == 0) {
        put_timestamp(o);
    } else if (strcmp(type, "date") == 0) {
        putf(o, "'20%02u-%02u-%02u'", rnd_between(15, 24), rnd_between(1, 12),
             rnd_between(1, 28));
    } else if (strcmp(type, "jsonb") == 0) {
        putf(o, "'{\"%s\": \"%s\", \"n\": %u}'", PICK(columns), PICK(words), rnd(1000));
    } else if (strcmp(type, "uuid") == 0) {
        puts_(o, rnd(2) ? "gen_random_uuid()" : "NULL");
    } else if (strcmp(type, "inet") == 0) {
        putf(o, "'10.%u.%u.%u'", rnd(256), rnd(256), rnd(256));
    } else if (strcmp(type, "char(3)") == 0) {
        putf(o, "'%c%c%c'", 'A' + rnd(26), 'A' + rnd(26), 'A' + rnd(26));
    } else if (strcmp(type, "interval") == 0) {
        putf(o, "'%u minutes'", rnd_between(1, 600));
    } else if (strcmp(type, "text[]") == 0) {
        putf(o, "ARRAY['%s', '%s']", PICK(words), PICK(words));
    } else {
        putf(o, "'\\x%08" PRIx64 "'", rnd64() & 0xffffffff);
    }
}

/* ---- statements ----------------------------------------------------------- */

struct col {
    const char *name;
    const char *type;
};

/* Picks n distinct-enough columns for a table. */
static unsigned pick_cols(struct col *c, unsigned n)
{
    unsigned k = 0;
    for (unsigned tries = 0; k < n && tries < 4 * n; tries++) {
        const char *name = PICK(columns);
        int dup = 0;
        for (unsigned j = 0; j < k; j++)
            dup |= c[j].name == name;
        if (dup)
            continue;
        c[k].name = name;
        c[k].type = PICK(types);
        k++;
    }
    return k;
}

static void stmt_create_table(struct out *o, const char *t, unsigned v)
{
    struct col c[24];
    unsigned n = pick_cols(c, rnd_between(4, 18));
    putf(o, "CREATE TABLE IF NOT EXISTS %s_%u (\n    id bigserial PRIMARY KEY,\n", t, v);
    for (unsigned i = 0; i < n; i++) {
        putf(o, "    %s %s", c[i].name, c[i].type);
        if (rnd(3) == 0)
            puts_(o, " NOT NULL");
        if (rnd(5) == 0) {
            puts_(o, " DEFAULT ");
            put_value(o, c[i].type);
        }
        puts_(o, ",\n");
    }
    if (rnd(2))
        putf(o, "    %s_id bigint REFERENCES %s (id) ON DELETE %s,\n", PICK(tables),
             PICK(tables), rnd(2) ? "CASCADE" : "SET NULL");
    puts_(o, "    created_at timestamptz NOT NULL DEFAULT now(),\n"
             "    updated_at timestamptz NOT NULL DEFAULT now()\n);\n\n");
}

static void stmt_alter(struct out *o, const char *t, unsigned v)
{
    const char *col = PICK(columns), *type = PICK(types);
    switch (rnd(4)) {
    case 0:
        putf(o, "ALTER TABLE %s_%u ADD COLUMN IF NOT EXISTS %s_%u %s;\n", t, v, col, rnd(50),
             type);
        break;
    case 1:
        putf(o, "ALTER TABLE %s_%u ALTER COLUMN %s SET DEFAULT ", t, v, col);
        put_value(o, type);
        puts_(o, ";\n");
        break;
    case 2:
        putf(o, "ALTER TABLE %s_%u ADD CONSTRAINT %s_%u_%s_check CHECK (%s IS NOT NULL);\n", t,
             v, t, v, col, col);
        break;
    default:
        putf(o, "ALTER TABLE %s_%u RENAME COLUMN %s TO %s_%s;\n", t, v, col, PICK(words), col);
        break;
    }
}

static void stmt_index(struct out *o, const char *t, unsigned v)
{
    const char *a = PICK(columns), *b = PICK(columns);
    if (rnd(2))
        putf(o, "CREATE INDEX IF NOT EXISTS idx_%s_%u_%s ON %s_%u (%s);\n", t, v, a, t, v, a);
    else
        putf(o, "CREATE UNIQUE INDEX IF NOT EXISTS uq_%s_%u_%s_%s ON %s_%u (%s, %s)%s;\n", t, v,
             a, b, t, v, a, b, rnd(2) ? " WHERE is_deleted = false" : "");
}

static void stmt_comment(struct out *o, const char *t, unsigned v)
{
    if (rnd(2)) {
        putf(o, "COMMENT ON COLUMN %s_%u.%s IS '", t, v, PICK(columns));
        put_words(o, rnd_between(4, 14));
        puts_(o, "';\n");
    } else {
        puts_(o, "-- ");
        put_words(o, rnd_between(5, 16));
        puts_(o, "\n");
    }
}

static void stmt_insert(struct out *o, const char *t, unsigned v, unsigned rows)
{
    struct col c[12];
    unsigned n = pick_cols(c, rnd_between(3, 8));
    putf(o, "INSERT INTO %s_%u (", t, v);
    for (unsigned i = 0; i < n; i++)
        putf(o, "%s%s", i ? ", " : "", c[i].name);
    puts_(o, ") VALUES\n");
    for (unsigned r = 0; r < rows; r++) {
        puts_(o, "    (");
        for (unsigned i = 0; i < n; i++) {
            if (i)
                puts_(o, ", ");
            put_value(o, c[i].type);
        }
        puts_(o, r + 1 < rows ? "),\n" : ")\nON CONFLICT DO NOTHING;\n\n");
    }
}

static void stmt_update(struct out *o, const char *t, unsigned v)
{
    const char *type = PICK(types);
    putf(o, "UPDATE %s_%u SET %s = ", t, v, PICK(columns));
    put_value(o, type);
    putf(o, ", updated_at = now() WHERE %s = '%s' AND id %% %u = %u;\n", PICK(columns),
         PICK(statuses), rnd_between(2, 64), rnd(2));
}

static void stmt_function(struct out *o, const char *t, unsigned v)
{
    const char *col = PICK(columns);
    putf(o,
         "CREATE OR REPLACE FUNCTION %s_%u_touch() RETURNS trigger AS $$\n"
         "BEGIN\n"
         "    NEW.updated_at := now();\n"
         "    IF NEW.%s IS DISTINCT FROM OLD.%s THEN\n"
         "        INSERT INTO audit_log (table_name, row_id, column_name, changed_at)\n"
         "        VALUES ('%s_%u', NEW.id, '%s', now());\n"
         "    END IF;\n"
         "    RETURN NEW;\n"
         "END;\n"
         "$$ LANGUAGE plpgsql;\n\n"
         "CREATE TRIGGER %s_%u_touch BEFORE UPDATE ON %s_%u\n"
         "    FOR EACH ROW EXECUTE FUNCTION %s_%u_touch();\n\n",
         t, v, col, col, t, v, col, t, v, t, v, t, v);
}

static void stmt_down(struct out *o, const char *t, unsigned v)
{
    switch (rnd(5)) {
    case 0:
        putf(o, "DROP TABLE IF EXISTS %s_%u CASCADE;\n", t, v);
        break;
    case 1:
        putf(o, "ALTER TABLE %s_%u DROP COLUMN IF EXISTS %s;\n", t, v, PICK(columns));
        break;
    case 2:
        putf(o, "DROP INDEX IF EXISTS idx_%s_%u_%s;\n", t, v, PICK(columns));
        break;
    case 3:
        putf(o, "DELETE FROM %s_%u WHERE %s = '%s';\n", t, v, PICK(columns), PICK(statuses));
        break;
    default:
        stmt_update(o, t, v);
        break;
    }
}

/* ---- files -------------------------------------------------------------- */

static int open_out(struct out *o, const char *path)
{
    o->f = fopen(path, "wb");
    o->n = 0;
    o->total = 0;
    snprintf(o->path, sizeof o->path, "%s", path);
    if (!o->f) {
        fprintf(stderr, "gen-migrations: cannot create '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int close_out(struct out *o)
{
    int rc = out_flush(o);
    if (fclose(o->f) != 0 && !rc) {
        fprintf(stderr, "gen-migrations: cannot write '%s': %s\n", o->path, strerror(errno));
        rc = -1;
    }
    return rc;
}

static void small_up(struct out *o, uint64_t target, const char *t, unsigned v)
{
    putf(o, "-- migration %u: ", v);
    put_words(o, rnd_between(3, 9));
    puts_(o, "\n\n");
    if (rnd(3))
        stmt_create_table(o, t, v);
    while (o->total < target) {
        unsigned k = rnd(100);
        if (k < 22)
            stmt_alter(o, t, v);
        else if (k < 40)
            stmt_index(o, t, v);
        else if (k < 55)
            stmt_comment(o, t, v);
        else if (k < 80)
            stmt_insert(o, t, v, rnd_between(2, 12));
        else if (k < 94)
            stmt_update(o, t, v);
        else if (k < 97)
            stmt_function(o, t, v);
        else
            stmt_create_table(o, PICK(tables), v);
    }
}

static void small_down(struct out *o, uint64_t target, const char *t, unsigned v)
{
    putf(o, "-- revert migration %u\n\n", v);
    while (o->total < target) {
        if (rnd(6) == 0)
            stmt_comment(o, t, v);
        else
            stmt_down(o, t, v);
    }
}

/* Several MB of rows, in INSERT batches of a few hundred, like a dump. */
static void seed_up(struct out *o, uint64_t target, const char *t, unsigned v)
{
    uint64_t id = 1;
    putf(o, "-- seed data for %s_%u\n\n", t, v);
    while (o->total < target) {
        unsigned rows = rnd_between(200, 500);
        putf(o, "INSERT INTO %s_%u (id, first_name, last_name, email, city, status, "
                "balance, created_on, note) VALUES\n",
             t, v);
        for (unsigned r = 0; r < rows; r++, id++) {
            const char *fn = PICK(first_names), *ln = PICK(last_names);
            putf(o, "    (%" PRIu64 ", '%s', '%s', '", id, fn, ln);
            put_lower(o, fn);
            put(o, ".", 1);
            put_lower(o, ln);
            putf(o, "%u@%s', '%s', '%s', %u.%02u, '20%02u-%02u-%02u'", rnd(100),
                 PICK(domains), PICK(cities), PICK(statuses), rnd(10000), rnd(4) * 25,
                 rnd_between(18, 24), rnd_between(1, 12), rnd_between(1, 28));
            puts_(o, ", '");
            put_words(o, rnd_between(1, 4));
            puts_(o, r + 1 < rows ? "'),\n" : "');\n\n");
        }
    }
}

static void seed_down(struct out *o, uint64_t target, const char *t, unsigned v)
{
    putf(o, "-- remove the seed data of %s_%u, in batches\n\n", t, v);
    for (uint64_t lo = 1; o->total < target; lo += 10000)
        putf(o, "DELETE FROM %s_%u WHERE id BETWEEN %" PRIu64 " AND %" PRIu64 ";\n", t, v, lo,
             lo + 9999);
}

struct totals {
    uint64_t bytes, largest;
    unsigned files, seeds;
    uint64_t small_bytes; /* every file but the seeds' up files */
    unsigned small_files;
};

static int write_migration(const char *dir, unsigned v, int is_seed, uint64_t seed_bytes,
                           struct out *o, struct totals *tot)
{
    const char *t = PICK(tables);
    char stem[256], path[4096];
    if (is_seed)
        snprintf(stem, sizeof stem, "%06u_seed_%s", v, t);
    else
        snprintf(stem, sizeof stem, "%06u_%s_%s_%s", v, PICK(verbs), t, PICK(columns));
    for (int down = 0; down < 2; down++) {
        uint64_t target = rnd_between(SMALL_MIN, SMALL_MAX);
        snprintf(path, sizeof path, "%s/%s.%s.sql", dir, stem, down ? "down" : "up");
        if (open_out(o, path))
            return -1;
        if (is_seed && !down)
            seed_up(o, seed_bytes, t, v);
        else if (is_seed)
            seed_down(o, target, t, v);
        else if (!down)
            small_up(o, target, t, v);
        else
            small_down(o, target, t, v);
        if (close_out(o))
            return -1;
        tot->files++;
        tot->bytes += o->total;
        if (!is_seed || down) {
            tot->small_files++;
            tot->small_bytes += o->total;
        }
        if (o->total > tot->largest)
            tot->largest = o->total;
    }
    return 0;
}

/* The size of the next seed file: what is left of the budget once the
 * small files still to come are counted at the average seen so far, split
 * over the seeds left, each within +-50% of that share (the last takes
 * exactly what is left). */
static uint64_t seed_size(const struct totals *tot, uint64_t budget, unsigned files,
                          unsigned n_seeds)
{
    unsigned seeds_left = n_seeds - tot->seeds;
    uint64_t small_left = files - tot->files - seeds_left;
    uint64_t avg = tot->small_files ? tot->small_bytes / tot->small_files
                                    : (SMALL_MIN + SMALL_MAX) / 2;
    uint64_t spoken = tot->bytes + small_left * avg;
    uint64_t share = budget > spoken ? (budget - spoken) / seeds_left : 0;
    if (share < SMALL_MAX)
        share = SMALL_MAX;
    return seeds_left == 1 ? share : share / 2 + rnd64() % (share + 1);
}

static int parse_num(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || s[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: gen-migrations DIR [--files N] [--mb M] [--seed S]\n"
                    "  N even, 2..%d (default 10000); M total megabytes (default 200)\n",
            FILES_MAX);
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    unsigned long files = 10000, mb = 200, seed = 1;
    for (int i = 1; i < argc; i++) {
        unsigned long *dst = NULL, max = 0;
        if (strcmp(argv[i], "--files") == 0)
            dst = &files, max = FILES_MAX;
        else if (strcmp(argv[i], "--mb") == 0)
            dst = &mb, max = MB_MAX;
        else if (strcmp(argv[i], "--seed") == 0)
            dst = &seed, max = ULONG_MAX;
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            return usage();
        if (dst && (i + 1 >= argc || parse_num(argv[++i], max, dst)))
            return usage();
    }
    if (!dir || files < 2 || files % 2)
        return usage();
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen-migrations: cannot create '%s': %s\n", dir, strerror(errno));
        return 2;
    }
    rng_state = seed;

    unsigned migrations = (unsigned)(files / 2);
    unsigned n_seeds = (unsigned)(files / SEED_EVERY);
    if (n_seeds == 0)
        n_seeds = 1;
    uint64_t budget = (uint64_t)mb * 1000000;

    struct out o = {0};
    o.buf = malloc(OUT_BUF);
    if (!o.buf)
        return 2;
    struct totals tot = {0};
    unsigned spacing = migrations / n_seeds;
    for (unsigned v = 1; v <= migrations; v++) {
        /* Seeds spread through the history, the first one early. */
        int is_seed = tot.seeds < n_seeds && (v - 1) % spacing == spacing / 4;
        uint64_t bytes = 0;
        if (is_seed)
            bytes = seed_size(&tot, budget, (unsigned)files, n_seeds);
        if (write_migration(dir, v, is_seed, bytes, &o, &tot)) {
            free(o.buf);
            return 2;
        }
        tot.seeds += (unsigned)is_seed;
    }
    free(o.buf);
    printf("files=%u bytes=%" PRIu64 " seed_files=%u largest=%" PRIu64 "\n", tot.files,
           tot.bytes, tot.seeds, tot.largest);
    return 0;
}
