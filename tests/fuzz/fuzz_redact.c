/*
 * fuzz_redact.c - libFuzzer target for redact_url (runner/log.c), the one
 * step between a database URL and cmig-run's log.
 *
 * The input is a database URL (a NUL ends it, as it would end an
 * argument). What counts as the password is decided by the parsers that
 * will really read the URL: libpq's PQconninfoParse for postgres://,
 * postgresql:// and libpq's key=value strings (the call the PostgreSQL
 * driver makes; cmig-run picks drivers the same way), libmongoc's URI
 * parser for mongodb:// and mongodb+srv://. Each secret they find - the
 * password; for libpq sslpassword; for libmongoc the passphrase of the TLS
 * key and every value of authMechanismProperties (AWS_SESSION_TOKEN:...) -
 * must not survive redaction:
 *   - the redacted URL, read back by the same parser, carries no such
 *     secret or "***" in its place (this catches a secret the URL spells
 *     with percent escapes, or one only partly masked), and no
 *     authMechanismProperties value at all;
 *   - when the URL has no percent escape and holds the secret literally
 *     exactly once, the redacted URL does not contain it at all;
 *   - a short output buffer gets a prefix of the full result, NUL-ended.
 */
#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define URL_MAX 4096 /* longer inputs only slow the search down */
#define MASK "***"

enum parser { PARSE_NONE, PARSE_LIBPQ, PARSE_MONGOC };

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static enum parser parser_for(const char *url)
{
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"))
        return PARSE_LIBPQ;
    if (has_prefix(url, "mongodb://") || has_prefix(url, "mongodb+srv://"))
        return PARSE_MONGOC;
    /* cmig-run hands libpq's key=value form to the PostgreSQL driver too */
    if (!strstr(url, "://") && strchr(url, '='))
        return PARSE_LIBPQ;
    return PARSE_NONE;
}

#define SECRETS 8        /* at most this many found in one URL */
#define FIRST_PROPERTY 2 /* out[] index of the first authMechanismProperties value */

/* Each string value of doc into out[*n...], as long as there is room. */
static void property_values(const bson_t *doc, char *out[SECRETS], int *n)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return;
    while (*n < SECRETS && bson_iter_next(&it))
        if (BSON_ITER_HOLDS_UTF8(&it))
            out[(*n)++] = strdup(bson_iter_utf8(&it, NULL));
}

/* The secrets the parser reads from url, each a malloc'd copy or NULL:
 * out[0] the password, out[1] libpq's sslpassword or libmongoc's TLS key
 * passphrase, out[2...] the values of libmongoc's authMechanismProperties.
 * Returns 0 when the parser accepts url, -1 when it refuses it. */
static int secrets_of(enum parser p, const char *url, char *out[SECRETS])
{
    for (int i = 0; i < SECRETS; i++)
        out[i] = NULL;
    if (p == PARSE_LIBPQ) {
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(url, &why);
        PQfreemem(why);
        if (!opts)
            return -1;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!o->val)
                continue;
            if (strcmp(o->keyword, "password") == 0)
                out[0] = strdup(o->val);
            else if (strcmp(o->keyword, "sslpassword") == 0)
                out[1] = strdup(o->val);
        }
        PQconninfoFree(opts);
        return 0;
    }
    bson_error_t be;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &be);
    if (!uri)
        return -1;
    const char *pw = mongoc_uri_get_password(uri);
    if (pw)
        out[0] = strdup(pw);
    const char *key_pw =
        mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD, NULL);
    if (key_pw)
        out[1] = strdup(key_pw);
    bson_t props;
    int n = FIRST_PROPERTY;
    if (mongoc_uri_get_mechanism_properties(uri, &props))
        property_values(&props, out, &n);
    mongoc_uri_destroy(uri);
    return 0;
}

/* How many times needle occurs in hay, overlapping occurrences counted. */
static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Whether url, with the letters and digits of its one spelling of s
 * changed (a letter for a letter, a digit for a digit, the rest kept, so
 * that nothing the redactor goes by moves), redacts to red. */
static int same_redaction(const char *url, const char *s, const char *red, size_t cap)
{
    char *other = strdup(url), *out = malloc(cap);
    REQUIRE(other && out);
    char *at = strstr(other, s);
    for (size_t i = 0; at[i] && i < strlen(s); i++) {
        char ch = at[i];
        if (ch >= '0' && ch <= '9')
            at[i] = ch == '0' ? '1' : '0';
        else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
            at[i] = ch == 'a' ? 'b' : 'a';
    }
    redact_url(other, out, cap);
    int same = strcmp(out, red) == 0;
    free(other);
    free(out);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        /* libmongoc reports odd options on stderr; they are not findings. */
        mongoc_log_set_handler(NULL, NULL);
        ready = 1;
    }
    size_t n = strnlen((const char *)data, size < URL_MAX ? size : URL_MAX);
    char *url = malloc(n + 1);
    if (!url)
        return 0;
    memcpy(url, data, n);
    url[n] = '\0';

    /* redact_url can grow a URL by a few bytes per masked secret: this is
     * more room than it may use, so the result is never cut here. */
    size_t cap = 2 * n + 64;
    char *red = malloc(cap);
    REQUIRE(red != NULL);
    redact_url(url, red, cap);
    REQUIRE(strlen(red) + 1 < cap);

    /* A short buffer holds the start of the same text. */
    char small[24];
    size_t k = size ? data[0] % sizeof small + 1 : sizeof small;
    memset(small, 'x', sizeof small);
    redact_url(url, small, k);
    REQUIRE(strnlen(small, k) < k && strncmp(small, red, strlen(small)) == 0);
    REQUIRE(strlen(small) == k - 1 || strlen(small) == strlen(red));

    enum parser p = parser_for(url);
    char *before[SECRETS] = {NULL}, *after[SECRETS] = {NULL};
    if (p != PARSE_NONE && secrets_of(p, url, before) == 0) {
        int read_back = secrets_of(p, red, after) == 0;
        for (int i = 0; i < SECRETS; i++) {
            const char *s = before[i];
            if (!s || !*s || strcmp(s, MASK) == 0)
                continue;
            /* The properties are masked whole: none may be read back, in
             * any place. */
            if (read_back && i < FIRST_PROPERTY)
                REQUIRE(!after[i] || !*after[i] || strcmp(after[i], MASK) == 0);
            for (int j = FIRST_PROPERTY; read_back && i >= FIRST_PROPERTY && j < SECRETS; j++)
                REQUIRE(!after[j] || !*after[j] || strcmp(after[j], MASK) == 0);
            /* Without escapes (percent escapes, and the backslashes of
             * the key=value form) a secret is spelled as it is, so when it
             * occurs once that one place is the secret. Else it may be
             * spelled by its escapes ("ab\\cd" for "abcd") and match other
             * text ("host=abcd"), which is no leak. In a URL a backslash
             * spells itself: libmongoc keeps it in the value it reads
             * ("p\\/w"), and libpq gives it no meaning there. */
            int keyword_form = !strstr(url, "://");
            if (strchr(url, '%') || (keyword_form && strchr(url, '\\')) || occurrences(url, s) != 1)
                continue;
            /* It must be gone; a '*' in it could be rebuilt from the mask
             * and the text around it. */
            if (!strchr(s, '*'))
                REQUIRE(strstr(red, s) == NULL);
            /* Not one byte of it may be left either: with its letters and
             * digits changed, the URL redacts to the same text. Only for
             * a secret without '?' or '&', which could start a query
             * parameter of its own and so change what else is masked. */
            if (!strpbrk(s, "?&"))
                REQUIRE(same_redaction(url, s, red, cap));
        }
    }
    for (int i = 0; i < SECRETS; i++) {
        free(before[i]);
        free(after[i]);
    }
    free(red);
    free(url);
    return 0;
}
