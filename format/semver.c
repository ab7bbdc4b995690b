/*
 * semver.c - Semantic Versioning 2.0.0: strict parsing and precedence.
 *
 * A bundle's version decides whether a runner may apply it (an older
 * bundle never touches a newer database) and whether a new release may
 * follow the previous one, so two implementations must never disagree on
 * what a version is or on which of two versions is greater. Invariant: a
 * string is accepted only when it matches the grammar of semver.org 2.0.0
 * exactly (no leading "v", no leading zeros, no empty identifiers, numbers
 * that fit, nothing after the build metadata), and precedence follows
 * section 11 of that specification, ignoring build metadata.
 */
#include "cmig/semver.h"

#include <stdio.h>
#include <string.h>

/* Room for a quoted, escaped and possibly shortened copy of the input. */
#define SHOW_MAX 96
#define SHOW_IN_MAX 40 /* input bytes shown before "..." */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_char(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Renders untrusted bytes for an error message: printable ASCII as is,
 * anything else as \xHH, long strings cut with "...". */
static void show(char *dst, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t n = len > SHOW_IN_MAX ? SHOW_IN_MAX : len;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (n < len && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static int fail(struct cmig_err *err, const char *s, size_t len, const char *why)
{
    char shown[SHOW_MAX];
    show(shown, sizeof shown, s, len);
    return cmig_err_set(err, CMIG_E_INPUT, "invalid version '%s': %s", shown, why);
}

/* Same, for a reason that names one offending byte. */
static int fail_char(struct cmig_err *err, const char *s, size_t len, const char *what,
                     unsigned char c)
{
    char shown[SHOW_MAX], ch[8], why[96];
    show(shown, sizeof shown, s, len);
    show(ch, sizeof ch, (const char *)&c, 1);
    snprintf(why, sizeof why, "invalid character '%s' %s", ch, what);
    return cmig_err_set(err, CMIG_E_INPUT, "invalid version '%s': %s", shown, why);
}

/* Reads one of major/minor/patch at s[*pos]. */
static int parse_number(const char *s, size_t len, size_t *pos, const char *what, uint64_t *out,
                        struct cmig_err *err)
{
    char why[64];
    size_t i = *pos;
    if (i >= len || !is_digit((unsigned char)s[i])) {
        snprintf(why, sizeof why, "%s version is missing or not a number", what);
        return fail(err, s, len, why);
    }
    if (s[i] == '0' && i + 1 < len && is_digit((unsigned char)s[i + 1])) {
        snprintf(why, sizeof why, "leading zero in %s version", what);
        return fail(err, s, len, why);
    }
    uint64_t v = 0;
    for (; i < len && is_digit((unsigned char)s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            snprintf(why, sizeof why, "%s version does not fit in 64 bits", what);
            return fail(err, s, len, why);
        }
        v = v * 10 + d;
    }
    *out = v;
    *pos = i;
    return 0;
}

/* Reads dot-separated identifiers at s[*pos] up to the end or a '+' (the
 * '+' only ends a pre-release). Numeric pre-release identifiers may not have
 * leading zeros; build identifiers may. */
static int parse_idents(const char *s, size_t len, size_t *pos, int is_build, struct cmig_err *err)
{
    const char *what = is_build ? "build metadata" : "pre-release";
    char why[96];
    size_t i = *pos;
    for (;;) {
        size_t start = i;
        int all_digits = 1;
        while (i < len && is_ident_char((unsigned char)s[i])) {
            if (!is_digit((unsigned char)s[i]))
                all_digits = 0;
            i++;
        }
        if (i == start) {
            if (i < len && s[i] != '.' && !(s[i] == '+' && !is_build))
                return fail_char(err, s, len, is_build ? "in build metadata" : "in pre-release",
                                 (unsigned char)s[i]);
            snprintf(why, sizeof why, "empty %s identifier", what);
            return fail(err, s, len, why);
        }
        if (!is_build && all_digits && s[start] == '0' && i - start > 1) {
            snprintf(why, sizeof why, "leading zero in pre-release identifier '%.*s'",
                     (int)(i - start > 32 ? 32 : i - start), s + start);
            return fail(err, s, len, why);
        }
        if (i < len && s[i] == '.') {
            i++;
            continue;
        }
        if (i == len || (s[i] == '+' && !is_build))
            break;
        return fail_char(err, s, len, is_build ? "in build metadata" : "in pre-release",
                         (unsigned char)s[i]);
    }
    *pos = i;
    return 0;
}

int cmig_semver_parse(struct cmig_semver *out, const char *s, size_t len, struct cmig_err *err)
{
    struct cmig_semver v;
    size_t i = 0;
    int rc;

    memset(&v, 0, sizeof v);
    if (!s)
        return cmig_err_set(err, CMIG_E_INPUT, "invalid version: none given");
    if (len == 0)
        return fail(err, s, len, "empty string");
    if (len > CMIG_SEMVER_MAX) {
        char why[64];
        snprintf(why, sizeof why, "longer than %d bytes", CMIG_SEMVER_MAX);
        return fail(err, s, len, why);
    }
    if (memchr(s, '\0', len))
        return fail(err, s, len, "contains a NUL byte");
    if ((s[0] == 'v' || s[0] == 'V') && len > 1 && is_digit((unsigned char)s[1]))
        return fail(err, s, len, "leading 'v' is not part of a semantic version");

    if ((rc = parse_number(s, len, &i, "major", &v.major, err)))
        return rc;
    if (i >= len || s[i] != '.')
        return fail(err, s, len, "expected '.' after major version");
    i++;
    if ((rc = parse_number(s, len, &i, "minor", &v.minor, err)))
        return rc;
    if (i >= len || s[i] != '.')
        return fail(err, s, len, "expected '.' after minor version");
    i++;
    if ((rc = parse_number(s, len, &i, "patch", &v.patch, err)))
        return rc;

    if (i < len && s[i] == '-') {
        size_t start = ++i;
        if ((rc = parse_idents(s, len, &i, 0, err)))
            return rc;
        v.pre_off = (unsigned short)start;
        v.pre_len = (unsigned short)(i - start);
    }
    if (i < len && s[i] == '+') {
        size_t start = ++i;
        if ((rc = parse_idents(s, len, &i, 1, err)))
            return rc;
        v.build_off = (unsigned short)start;
        v.build_len = (unsigned short)(i - start);
    }
    if (i < len)
        return fail_char(err, s, len, "after patch version", (unsigned char)s[i]);

    memcpy(v.text, s, len);
    v.text[len] = '\0';
    *out = v;
    return 0;
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/* Compares one pre-release identifier of each side (section 11.4.1-3).
 * Numeric identifiers have no leading zeros, so the longer one is the
 * greater and no conversion (or overflow) is needed. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    int a_num = 1, b_num = 1;
    for (size_t i = 0; i < an; i++)
        if (!is_digit((unsigned char)a[i]))
            a_num = 0;
    for (size_t i = 0; i < bn; i++)
        if (!is_digit((unsigned char)b[i]))
            b_num = 0;
    if (a_num && b_num) {
        if (an != bn)
            return an < bn ? -1 : 1;
        return sign(memcmp(a, b, an));
    }
    if (a_num != b_num)
        return a_num ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return sign(c);
    return (an > bn) - (an < bn);
}

/* The pre-release of v, clamped to its text so a hand-made struct cannot
 * send the comparison outside the buffer. */
static void pre_of(const struct cmig_semver *v, const char **p, size_t *n)
{
    size_t off = v->pre_off, len = v->pre_len;
    if (off > CMIG_SEMVER_MAX)
        off = CMIG_SEMVER_MAX;
    if (len > CMIG_SEMVER_MAX - off)
        len = CMIG_SEMVER_MAX - off;
    *p = v->text + off;
    *n = len;
}

int cmig_semver_cmp(const struct cmig_semver *a, const struct cmig_semver *b)
{
    int c;
    if ((c = cmp_u64(a->major, b->major)) || (c = cmp_u64(a->minor, b->minor)) ||
        (c = cmp_u64(a->patch, b->patch)))
        return c;

    const char *ap, *bp;
    size_t an, bn;
    pre_of(a, &ap, &an);
    pre_of(b, &bp, &bn);
    /* A version without a pre-release outranks one with (11.3). */
    if (an == 0 || bn == 0)
        return (an == 0) - (bn == 0);

    size_t i = 0, j = 0;
    for (;;) {
        size_t ie = i, je = j;
        while (ie < an && ap[ie] != '.')
            ie++;
        while (je < bn && bp[je] != '.')
            je++;
        if ((c = cmp_ident(ap + i, ie - i, bp + j, je - j)))
            return c;
        int a_more = ie < an, b_more = je < bn;
        if (!a_more || !b_more)
            return a_more - b_more; /* more fields win when all before are equal */
        i = ie + 1;
        j = je + 1;
    }
}
