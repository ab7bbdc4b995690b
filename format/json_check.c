/*
 * json_check.c - parsing a MongoDB migration: one JSON array of database
 * commands in MongoDB extended JSON, read with libbson.
 *
 * Invariant: a migration is accepted only when the whole file is exactly
 * one array of non-empty objects. libbson's reader would otherwise take a
 * top-level object, or stop after the first value and ignore what follows
 * it; both are refused here, so the bundler and the runner can never
 * disagree about which commands a file holds. The position libbson reports
 * is a byte offset into what it was given, which is the whole file, so it
 * maps straight to a line and a column of that file.
 */
#include "cmig/jsoncheck.h"

#include <bson/bson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A migration file is bounded by the bundle's entry cap; this only keeps
 * every length below what libbson's signed sizes can hold. */
#define JSON_MAX ((size_t)1 << 30)

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

void cmig_json_line_col(const char *data, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (data[i] == '\n') {
            if (l < UINT_MAX)
                l++;
            c = 1;
        } else if (((unsigned char)data[i] & 0xC0) != 0x80 && c < UINT_MAX) {
            c++;
        }
    }
    if (line)
        *line = l;
    if (col)
        *col = c;
}

/* libbson's texts quote the offending input: keep them printable. */
static void clean(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        out[o++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* "... position 20: ..." -> 20; SIZE_MAX when the message has none. */
static size_t reported_offset(const char *msg)
{
    const char *p = strstr(msg, "position ");
    if (!p)
        return SIZE_MAX;
    p += 9;
    size_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 12) {
        v = v * 10 + (size_t)(*p - '0');
        p++;
        digits++;
    }
    return digits ? v : SIZE_MAX;
}

static int fail_at(struct cmig_err *err, const char *what, const char *data, size_t len, size_t off,
                   unsigned *line, unsigned *col, const char *native, const char *fmt,
                   const char *detail)
{
    char msg[CMIG_ERR_MSG_MAX], where[64] = "";
    unsigned l = 0, c = 0;
    if (off != SIZE_MAX && off <= len) {
        cmig_json_line_col(data, len, off, &l, &c);
        /* Without a file name the caller shows the position itself. */
        if (what)
            snprintf(where, sizeof where, "line %u, column %u: ", l, c);
    }
    if (line)
        *line = l;
    if (col)
        *col = c;
    snprintf(msg, sizeof msg, fmt, detail);
    int rc;
    if (what)
        rc = cmig_err_set(err, CMIG_E_INPUT, "'%s': %s%s", what, where, msg);
    else
        rc = cmig_err_set(err, CMIG_E_INPUT, "%s%s", where, msg);
    if (native && err && err->code == CMIG_E_INPUT && !err->native[0])
        cmig_err_native(err, native);
    return rc;
}

/* Where each element of the top-level array starts. The text has parsed
 * already, so strings, nesting and separators are well formed; a count
 * that does not match leaves every offset at 0 (position unknown). */
static void element_offsets(const char *data, size_t len, size_t start, size_t *offset, size_t n)
{
    size_t found = 0;
    int depth = 0, in_str = 0, esc = 0, want = 0;
    for (size_t i = start; i < len; i++) {
        char ch = data[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (ch == '\\')
                esc = 1;
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (is_ws(ch))
            continue;
        if (depth == 1 && want && ch != ']') {
            if (found < n)
                offset[found] = i;
            found++;
            want = 0;
        }
        switch (ch) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            depth++;
            if (depth == 1)
                want = 1;
            break;
        case ']':
        case '}':
            depth--;
            break;
        case ',':
            if (depth == 1)
                want = 1;
            break;
        default:
            break;
        }
        if (depth == 0)
            break;
    }
    if (found != n)
        memset(offset, 0, n * sizeof *offset);
}

static const char *type_name(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        return "a number";
    case BSON_TYPE_UTF8:
        return "a string";
    case BSON_TYPE_ARRAY:
        return "an array";
    case BSON_TYPE_BOOL:
        return "a boolean";
    case BSON_TYPE_NULL:
        return "null";
    default:
        return "not an object";
    }
}

int cmig_json_migration_parse(struct cmig_json_migration *out, const char *data, size_t len,
                              const char *what, unsigned *line, unsigned *col, struct cmig_err *err)
{
    bson_json_reader_t *reader = NULL;
    uint8_t *text = NULL;
    bson_t doc = BSON_INITIALIZER;
    bson_error_t be;
    char native[16], detail[CMIG_ERR_MSG_MAX / 2];
    int rc = 0;
    memset(out, 0, sizeof *out);
    memset(&be, 0, sizeof be);
    if (line)
        *line = 0;
    if (col)
        *col = 0;
    if (len && !data)
        return cmig_err_set(err, CMIG_E_INTERNAL, "migration without its data");
    if (len > JSON_MAX)
        return fail_at(err, what, data, len, SIZE_MAX, line, col, NULL,
                       "the migration is too large to parse%s", "");

    size_t start = 0;
    while (start < len && is_ws(data[start]))
        start++;
    if (start == len || data[start] != '[') {
        rc = fail_at(err, what, data, len, start, line, col, NULL,
                     "%sa MongoDB migration must be a JSON array of database commands",
                     start == len ? "empty file: " : "");
        goto out;
    }
    if (memchr(data, '\0', len)) {
        rc = fail_at(err, what, data, len, (size_t)((const char *)memchr(data, '\0', len) - data),
                     line, col, NULL, "the file contains a NUL byte%s", "");
        goto out;
    }

    reader = bson_json_data_reader_new(false, 0);
    if (!reader) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    /* The text and one newline after it: libbson's reader ends a token only
     * at a delimiter, so without it a last token cut short ("[],n") would
     * be silently dropped at the end of the input (fuzz_json). */
    text = malloc(len + 1);
    if (!text) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memcpy(text, data, len);
    text[len] = '\n';
    bson_json_data_reader_ingest(reader, text, len + 1);
    int r = bson_json_reader_read(reader, &doc, &be);
    if (r == 1) {
        /* Anything after the array is an error, not something to skip. */
        bson_t extra = BSON_INITIALIZER;
        bson_error_t be2;
        int r2 = bson_json_reader_read(reader, &extra, &be2);
        bson_destroy(&extra);
        if (r2 != 0) {
            if (r2 < 0) {
                be = be2;
                r = -1;
            } else {
                be.domain = 0;
                be.code = 0;
                snprintf(be.message, sizeof be.message, "more than one JSON value");
                r = -1;
            }
        }
    }
    if (r != 1) {
        if (r == 0)
            snprintf(be.message, sizeof be.message, "no JSON value");
        clean(detail, sizeof detail, be.message);
        snprintf(native, sizeof native, "bson:%u.%u", (unsigned)be.domain % 1000,
                 (unsigned)be.code % 1000);
        rc = fail_at(err, what, data, len, reported_offset(be.message), line, col, native,
                     "invalid MongoDB extended JSON: %s", detail);
        goto out;
    }

    bson_iter_t it;
    if (!bson_iter_init(&it, &doc)) {
        rc = cmig_err_set(err, CMIG_E_INTERNAL, "libbson returned an invalid document");
        goto out;
    }
    size_t n = 0;
    while (bson_iter_next(&it)) {
        if (n >= CMIG_JSON_COMMANDS_MAX) {
            snprintf(detail, sizeof detail, "more than %d commands in one migration",
                     CMIG_JSON_COMMANDS_MAX);
            rc = fail_at(err, what, data, len, SIZE_MAX, line, col, NULL, "%s", detail);
            goto out;
        }
        n++;
    }
    out->offset = calloc(n ? n : 1, sizeof *out->offset);
    if (!out->offset) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    element_offsets(data, len, start, out->offset, n);
    bson_iter_init(&it, &doc);
    for (size_t i = 0; bson_iter_next(&it); i++) {
        bson_type_t t = bson_iter_type(&it);
        if (t != BSON_TYPE_DOCUMENT) {
            snprintf(detail, sizeof detail, "command at index %zu is %s, not a JSON object", i,
                     type_name(t));
            rc = fail_at(err, what, data, len, out->offset[i] ? out->offset[i] : SIZE_MAX, line,
                         col, NULL, "%s", detail);
            goto out;
        }
        uint32_t dlen;
        const uint8_t *d;
        bson_iter_document(&it, &dlen, &d);
        if (dlen <= 5) { /* an empty document is its length and a NUL */
            snprintf(detail, sizeof detail,
                     "command at index %zu is an empty object (a command names itself with its "
                     "first key)",
                     i);
            rc = fail_at(err, what, data, len, out->offset[i] ? out->offset[i] : SIZE_MAX, line,
                         col, NULL, "%s", detail);
            goto out;
        }
    }
    out->bson = malloc(doc.len);
    if (!out->bson) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memcpy(out->bson, bson_get_data(&doc), doc.len);
    out->bson_len = doc.len;
    out->n = n;
out:
    bson_destroy(&doc);
    if (reader)
        bson_json_reader_destroy(reader);
    free(text);
    if (rc)
        cmig_json_migration_free(out);
    return rc;
}

void cmig_json_migration_free(struct cmig_json_migration *m)
{
    if (!m)
        return;
    free(m->bson);
    free(m->offset);
    memset(m, 0, sizeof *m);
}

int cmig_json_migration_check(const char *data, size_t len, const char *what, struct cmig_err *err)
{
    struct cmig_json_migration m;
    int rc = cmig_json_migration_parse(&m, data, len, what, NULL, NULL, err);
    cmig_json_migration_free(&m);
    return rc;
}
